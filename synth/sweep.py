"""``make sweep``: BN-unit area as formats, BFP group and lanes vary (CSV + plot).

Starting from the LIGHTNORM preset, one axis changes at a time:

* ``man``: mantissa bits m of both data formats (forward E5Mm, backward E6Mm), accumulators with
  the "+8" rule (m + 8), BFP magnitudes m + 1 (the element precision);
* ``exp``: exponent bits e of all four formats (forward EeM4 / EeM12, backward EeM3 / EeM11);
* ``group``: BFP group size G, which BNConfig ties to the lane count (``group == lanes``), so this
  axis varies both.

Every point goes through the same area flow as ``make synth`` (:mod:`lightnorm.synth.flow`).
Without the BN unit the sweep falls back to the FP multiplier over the same exponent and mantissa
widths.  Writes sweep.csv, sweep.json and sweep.png into the report directory.
"""

import csv
import json
import os
import sys
import time
from functools import partial

from . import designs as designs_mod, liberty, report
from .designs import Design
from .flow import synthesize_all

__all__ = ["MAN_BITS", "EXP_BITS", "GROUPS", "sweep_designs", "main"]

MAN_BITS = (2, 3, 4, 5, 7)
EXP_BITS = (4, 5, 6, 8)
GROUPS = (4, 8, 16)


def _bn_points():
    from ..golden.bnconfig import LIGHTNORM
    from ..golden.formats import FloatFormat

    from ..golden.bnconfig import lightnorm_policy

    def with_bfp(cfg_kw, group, man_f, man_b):
        base = LIGHTNORM
        kw = dict(cfg_kw)
        for t, man in (("x", man_f), ("y", man_f), ("dy", man_b), ("dx", man_b)):
            kw[f"{t}_bfp"] = getattr(base, f"{t}_bfp").replace(group=group, man_bits=man + 1)
        # LIGHTNORM's precision policy for the data formats (ops and constants in them, "+8"
        # accumulators with the exponent every sum needs)
        fmts = {k: kw.pop(k) for k in ("fwd_fmt", "bwd_fmt") if k in kw}
        for k in ("fwd_acc_fmt", "bwd_acc_fmt"):
            kw.pop(k, None)
        return lightnorm_policy(base, fmts.get("fwd_fmt"), fmts.get("bwd_fmt"), lanes=group,
                                **kw)

    pts = []
    for m in MAN_BITS:
        pts.append(("man", m, with_bfp({"fwd_fmt": FloatFormat(5, m), "bwd_fmt": FloatFormat(6, m),
                                        "fwd_acc_fmt": FloatFormat(5, m + 8),
                                        "bwd_acc_fmt": FloatFormat(6, m + 8)}, 8, m, m)))
    for e in EXP_BITS:
        pts.append(("exp", e, with_bfp({"fwd_fmt": FloatFormat(e, 4), "bwd_fmt": FloatFormat(e, 3),
                                        "fwd_acc_fmt": FloatFormat(e, 12),
                                        "bwd_acc_fmt": FloatFormat(e, 11)}, 8, 4, 3)))
    for g in GROUPS:
        pts.append(("group", g, with_bfp({}, g, 4, 3)))
    return pts


def sweep_designs():
    """(designs, points): unique :class:`Design` s and ``{design name: [(axis, value), ...]}``.

    The base point appears on every axis; it is synthesized once.
    """
    unit = designs_mod._bn_unit()
    out, axes = [], {}
    if unit is not None:
        seen = {}
        for axis, value, cfg in _bn_points():
            if cfg in seen:
                axes[seen[cfg]].append((axis, value))
                continue
            name = seen[cfg] = f"sweep_{axis}{value}"
            out.append(Design(name, "sweep", unit.__name__, cfg.name, partial(unit, cfg),
                              {"lanes": cfg.lanes}))
            axes[name] = [(axis, value)]
        return out, axes
    from ..golden.formats import FloatFormat
    from ..rtl.fpmul import FPMul
    for axis, values in (("man", MAN_BITS), ("exp", EXP_BITS)):
        for v in values:
            fmt = FloatFormat(5, v) if axis == "man" else FloatFormat(v, 4)
            name = f"sweep_fpmul_{axis}{v}"
            out.append(Design(name, "sweep", "FPMul", fmt.name, partial(FPMul, fmt, stages=1)))
            axes[name] = [(axis, v)]
    return out, axes


def _plot(path, rows):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    axes_names = [a for a in ("man", "exp", "group") if any(r["axis"] == a for r in rows)]
    labels = {"man": "mantissa bits", "exp": "exponent bits", "group": "BFP group = lanes G"}
    blocks = report._block_order({b for r in rows for b in r["blocks"]})
    fig, axs = plt.subplots(1, len(axes_names), figsize=(4.5 * len(axes_names), 4), squeeze=False)
    cmap = plt.get_cmap("tab20")
    for ax, a in zip(axs[0], axes_names):
        pts = sorted((r for r in rows if r["axis"] == a), key=lambda r: r["value"])
        xs = [str(r["value"]) for r in pts]
        bottom = [0.0] * len(pts)
        for i, b in enumerate(blocks):
            vals = [r["blocks"].get(b, {}).get("area_ge", 0.0) for r in pts]
            ax.bar(xs, vals, bottom=bottom, label=b, color=cmap(i % 20))
            bottom = [x + v for x, v in zip(bottom, vals)]
        ax.set_xlabel(labels[a])
        ax.set_ylabel("area (GE)")
    axs[0][0].legend(fontsize=7)
    fig.suptitle("Area sweep around the LIGHTNORM preset (one axis at a time)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _merge_points(path, rows, ran, order):
    """``rows`` plus the points of an earlier sweep.json whose design is not in ``ran``,
    sorted by the sweep table ``order`` (design names); points no longer in it are dropped."""
    try:
        with open(path) as f:
            old = json.load(f)["points"]
    except (OSError, ValueError, KeyError):
        old = []
    rank = {name: i for i, name in enumerate(order)}
    keep = [r for r in old if r["name"] not in ran and r["name"] in rank]
    return sorted(keep + rows, key=lambda r: rank[r["name"]])


def main(argv=None):
    ap = designs_mod.flow_parser("python -m lightnorm.synth.sweep", __doc__, "sweep",
                                 what="sweep points")
    args = ap.parse_args(argv)
    table, axes = sweep_designs()
    table = designs_mod.select_or_exit(ap, table, args.only)
    if args.list:
        for d in table:
            print(f"{d.name:20s} {', '.join(f'{a}={v}' for a, v in axes[d.name]):24s} {d.fmt}")
        return 0
    lib = liberty.write_liberty(os.path.join(args.work, "nangate45_min.lib"))
    start = time.monotonic()
    results, failures = synthesize_all(
        table, args.work, lib, jobs=args.jobs,
        progress=lambda n, r, e: print(f"{n:24s} " + (f"{r['area_ge']:10,.0f} GE" if e is None
                                                       else "FAILED: " + e.splitlines()[0]),
                                       flush=True))
    rows = [dict(r, axis=a, value=v) for r in results for a, v in axes[r["name"]]]
    # Points of earlier runs (another --only subset) stay unless this run has them, so a long
    # sweep can be run in pieces; they are kept in the order of the sweep table.
    ran = {d.name for d in table}
    rows = _merge_points(os.path.join(args.out, "sweep.json"), rows, ran, list(axes))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "sweep.json"), "w") as f:
        json.dump({"elapsed_s": round(time.monotonic() - start, 1), "failures": failures,
                   "points": rows}, f, indent=1)
    blocks = report._block_order({b for r in rows for b in r["blocks"]})
    with open(os.path.join(args.out, "sweep.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["axis", "value", "design", "config", "area_um2", "area_ge", "ff_count",
                    *[f"{b}_ge" for b in blocks]])
        for r in rows:
            w.writerow([r["axis"], r["value"], r["name"], r["format"], f"{r['area_um2']:.3f}",
                        f"{r['area_ge']:.1f}", r["ff_count"],
                        *[f"{r['blocks'].get(b, {}).get('area_ge', 0.0):.1f}" for b in blocks]])
    if rows:
        _plot(os.path.join(args.out, "sweep.png"), rows)
    print(f"{len(rows)} points; {args.out}/sweep.{{csv,json,png}}")
    for n, e in failures.items():
        print(f"FAILED {n}: {e.splitlines()[0]}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
