"""The area report's headline, per-block contents and policy table (synth/report.py, flow.py).

The numbers are checked on hand-built netlists and result dicts (every ratio recomputed here
from the inputs), on the hierarchy of small real designs (no Yosys), and once on a synthesized
registered adder (a few seconds of CPU); verif/test_synth_flow.py checks the contents of every
design it synthesizes (``_check_contents``: the parts add up, cell for cell).
"""

import gc
import json
import math
import types

import pytest
from amaranth.back import rtlil

from lightnorm.golden.formats import E5M2, FP32, BfpFormat, FloatFormat
from lightnorm.synth import designs, flow, liberty, report
from lightnorm.synth.designs import HEADLINE, HEADLINE_M, TOP_BLOCK, Design
from lightnorm.synth.example import AdderLanes, RegisteredAdder


# --- elaboration and what a module is -------------------------------------------------------

def test_elaborate_writes_what_rtlil_convert_writes():
    """One elaboration, kept hierarchy: the RTLIL text is rtlil.convert's, byte for byte, and
    every module path names its elaboratable."""
    for build, name in ((lambda: AdderLanes(E5M2, 3), "lanes3"),
                        (lambda: RegisteredAdder(4), "radd4")):
        text, hierarchy = flow.elaborate(build(), name)
        assert text == rtlil.convert(build(), name=name)
        modules = {line.split()[1].lstrip("\\") for line in text.splitlines()
                   if line.startswith("module ")}
        assert modules <= set(hierarchy)
    _, hierarchy = flow.elaborate(AdderLanes(E5M2, 2), "lanes2")
    assert hierarchy["lanes2"] == {"class": "AdderLanes", "core": None}
    assert hierarchy["lanes2.add_l1"]["core"] == {
        "unit": "FPAddSub", "format": "E5M2", "rounding": "rne", "stages": 0,
        "label": "FPAddSub E5M2 s0"}
    assert hierarchy["lanes2.add_l1.round"] == {"class": "RoundPack", "core": None}


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_core_labels():
    from lightnorm.rtl.bfp import BfpEncoder
    from lightnorm.rtl.fpconvert import FPConvert
    from lightnorm.rtl.fpmul import FPMul
    e5m12 = FloatFormat(5, 12, rounding="rtz")
    assert flow.core_info(FPMul(e5m12, stages=2))["label"] == "FPMul E5M12 s2"
    assert flow.core_info(FPMul(e5m12, stages=2))["rounding"] == "rtz"
    assert flow.core_info(FPConvert(FP32, E5M2, stages=1))["format"] == "E8M23->E5M2"
    enc = flow.core_info(BfpEncoder(BfpFormat(8, 5), FloatFormat(5, 4), stages=1))
    assert enc["unit"] == "BfpEncoder" and enc["format"] == "bfp8x5e8/E5M4"
    # Not a StreamUnit (a format and stages are not enough): not a core.
    assert flow.core_info(types.SimpleNamespace(fmt=E5M2, stages=1)) is None
    gc.collect()            # the units above, never elaborated, inside the warning filter


# --- block contents on a hand-built netlist ---------------------------------------------------

def _net():
    # top: block "stats" (a wrapper with a core, a core holding a core, a flip-flop and an
    # inverter), block "bfp" (itself a core), two cells of the top module.
    return {"modules": {
        "t": {"cells": {"stats": {"type": "t.stats"}, "bfp": {"type": "t.bfp"},
                        "g": {"type": "INV_X1"}, "f": {"type": "DFF_X1"}}},
        "t.stats": {"cells": {"a0": {"type": "t.stats.a0"}, "a1": {"type": "t.stats.a0"},
                              "d": {"type": "t.stats.d"}, "r": {"type": "DFFR_X1"},
                              "n": {"type": "NAND2_X1"}}},
        "t.stats.a0": {"cells": {"x": {"type": "XOR2_X1"}, "q": {"type": "DFF_X1"}}},
        "t.stats.d": {"cells": {"inner": {"type": "t.stats.a0"}, "m": {"type": "MUX2_X1"}}},
        "t.bfp": {"cells": {"o": {"type": "OR2_X1"}}},
    }}


def _hier():
    core = lambda unit: {"unit": unit, "format": "E5M2", "rounding": "rne",  # noqa: E731
                         "stages": 1, "label": f"{unit} E5M2 s1"}
    return {"t": {"class": "T", "core": None}, "t.stats": {"class": "Stats", "core": None},
            "t.stats.a0": {"class": "FPAddSub", "core": core("FPAddSub")},
            "t.stats.a1": {"class": "FPAddSub", "core": core("FPAddSub")},
            "t.stats.d": {"class": "FPDiv", "core": core("FPDiv")},
            "t.stats.d.inner": {"class": "FPAddSub", "core": core("FPAddSub")},
            "t.bfp": {"class": "BfpEncoder", "core": core("BfpEncoder")}}


def test_block_contents_counts_cores_flip_flops_and_the_rest():
    A = liberty.CELL_AREAS
    c = flow.block_contents(_net(), "t", _hier())
    assert set(c) == {"stats", "bfp", TOP_BLOCK}
    st = c["stats"]
    # Two identical adders are one entry; the divider holds an adder, counted as the divider.
    # Largest total first.
    assert [(k["label"], k["count"]) for k in st["cores"]] == [("FPAddSub E5M2 s1", 2),
                                                              ("FPDiv E5M2 s1", 1)]
    add, div = st["cores"]
    assert math.isclose(add["area_um2_each"], A["XOR2_X1"] + A["DFF_X1"])
    assert math.isclose(div["area_um2_each"], A["XOR2_X1"] + A["DFF_X1"] + A["MUX2_X1"])
    assert add["ff_count_each"] == 1 and st["cores_ff_count"] == 3
    assert st["ff_cells"] == {"DFFR_X1": 1} and st["rest_cells"] == {"NAND2_X1": 1}
    assert math.isclose(st["cores_area_um2"], 3 * (A["XOR2_X1"] + A["DFF_X1"]) + A["MUX2_X1"])
    assert math.isclose(st["ff_ge"], A["DFFR_X1"] / liberty.NAND2_AREA)
    # The parts are the block of hierarchy_areas, to the um^2 and the flip-flop.
    _, blocks, _ = flow.hierarchy_areas(_net(), "t")
    for name, part in c.items():
        assert math.isclose(part["cores_area_um2"] + part["ff_area_um2"] + part["rest_area_um2"],
                            blocks[name]["area_um2"])
        assert part["cores_ff_count"] + part["ff_count"] == blocks[name]["ff_count"]
    assert c["bfp"]["cores"][0]["label"] == "BfpEncoder E5M2 s1" and c["bfp"]["rest_cells"] == {}
    assert c[TOP_BLOCK]["ff_cells"] == {"DFF_X1": 1} and c[TOP_BLOCK]["rest_cells"] == {"INV_X1": 1}
    # No core information: everything is flip-flops and the rest.
    plain = {k: {"class": v["class"], "core": None} for k, v in _hier().items()}
    st = flow.block_contents(_net(), "t", plain)["stats"]
    assert st["cores"] == [] and st["ff_cells"] == {"DFF_X1": 3, "DFFR_X1": 1}


def test_block_contents_needs_the_designs_hierarchy():
    hier = _hier()
    del hier["t.stats.a1"]
    with pytest.raises(flow.SynthError, match=r"instance t\.stats\.a1 .* not in the elaborated"):
        flow.block_contents(_net(), "t", hier)


def test_collect_checks_that_the_parts_add_up(tmp_path, monkeypatch):
    """On a synthesized design: the contents are recorded; contents that miss a cell stop the
    flow; a work directory without hierarchy.json (an older flow) gives none."""
    lib = liberty.write_liberty(str(tmp_path / "lib" / "nangate45_min.lib"))
    d = Design("radd4", "test", "RegisteredAdder", "4b", lambda: RegisteredAdder(4))
    work = str(tmp_path / "radd4")
    r = flow.synthesize(d, work, lib)
    assert r["blocks"]["add"]["contents"]["cores"] == []         # Adder: not a StreamUnit
    assert r["blocks"][TOP_BLOCK]["contents"]["ff_count"] == r["ff_count"] == 13
    good = flow.block_contents

    def lossy(*args):
        out = good(*args)
        out["add"]["rest_area_um2"] -= liberty.CELL_AREAS["INV_X1"]
        return out
    monkeypatch.setattr(flow, "block_contents", lossy)
    with pytest.raises(flow.SynthError, match=r"block add: cores \+ flip-flops \+ rest"):
        flow.collect(d, work)
    monkeypatch.setattr(flow, "block_contents", good)
    (tmp_path / "radd4" / "hierarchy.json").unlink()
    old = flow.collect(d, work)
    assert all("contents" not in b for b in old["blocks"].values())
    assert old["area_um2"] == r["area_um2"]


# --- the headline from result dicts -----------------------------------------------------------

def _result(fmt, area_um2, *, lanes=8, fwd=None, bwd=None, cycles=True, blocks=None):
    """A BN result as flow.collect writes it, with a cycle model of formulas fwd / bwd
    ``(a, b)``: group cycles a*m + b, header period one more."""
    blocks = blocks or {"stats": area_um2}
    params = {"lanes": lanes, "config": {}, "policy": {}}
    if cycles is True:
        modes = {}
        for mode, (a, b) in (("forward", fwd), ("backward", bwd)):
            g = a * HEADLINE_M + b
            modes[mode] = {"formula": f"{a}*m + {b}", "passes": a, "group_cycles": g,
                           "header_period": g + 1}
        params["cycles"] = {"m": HEADLINE_M, "lanes": lanes, "stream_latency": 5,
                            "modes": modes}
    elif cycles is not None:
        params["cycles"] = cycles
    return {"name": f"bn_{fmt}", "group": "bn", "unit": "BNUnit", "format": fmt,
            "params": params, "area_um2": area_um2, "area_ge": area_um2 / 0.798,
            "ff_count": 7, "blocks": {k: {"area_um2": v, "area_ge": v / 0.798}
                                      for k, v in blocks.items()}}


def test_headline_area_cycles_and_their_ratios():
    main, (fp32, bf16) = HEADLINE
    res = [_result(main, 800.0, fwd=(2, 247), bwd=(2, 85)),
           _result(fp32, 1000.0, fwd=(3, 114), bwd=(2, 78)),
           _result(bf16, 640.0, fwd=(3, 114), bwd=(2, 78)),
           _result("other", 400.0, fwd=(2, 10), bwd=(2, 10), lanes=4)]
    h = report.headline(res)
    assert h["m"] == HEADLINE_M == 4096 and set(h["definitions"]) >= {"cycles_per_element"}
    assert list(h["presets"]) == [main, fp32, bf16, "other"] and h["missing_baselines"] == []
    m = HEADLINE_M
    per_elem = {main: (2 * m + 248 + 2 * m + 86) / (8 * m),
                fp32: (3 * m + 115 + 2 * m + 79) / (8 * m),
                "other": (2 * m + 11 + 2 * m + 11) / (4 * m)}
    per_elem[bf16] = per_elem[fp32]
    areas = {main: 800.0, fp32: 1000.0, bf16: 640.0, "other": 400.0}
    for name, p in h["presets"].items():
        c = p["cycles"]
        assert c["per_group"] == c["forward"] + c["backward"]
        assert math.isclose(c["per_element"], per_elem[name])
        assert math.isclose(p["area_x_cycles_per_element"],
                            areas[name] / 0.798 * per_elem[name])
        for b in (fp32, bf16):
            assert math.isclose(p["area_ratio"][b], areas[name] / areas[b])
            assert math.isclose(p["area_x_cycles_ratio"][b], areas[name] * per_elem[name]
                                / (areas[b] * per_elem[b]))
    assert h["presets"][main]["cycles"]["forward"] == 2 * m + 248
    assert h["presets"][main]["cycles"]["forward_formula"] == "2*m + 247"
    assert math.isclose(h["baselines"][bf16]["ratio"], 1.25)
    # area.json holds the same object.
    json.dumps(h)


def test_headline_additional_baselines(tmp_path):
    """The one-pass baselines (designs.ADDITIONAL_BASELINES) are presets of the table like any
    other, keep the main ratios against HEADLINE's baselines, and get the main preset's ratios
    against them in ``additional_baselines`` and their own table in area.md; a missing one is
    named."""
    from lightnorm.synth.designs import ADDITIONAL_BASELINES
    main, (fp32, bf16) = HEADLINE
    fp32_sq, bf16_sq = ADDITIONAL_BASELINES
    res = [_result(main, 800.0, fwd=(2, 247), bwd=(2, 85)),
           _result(fp32, 1000.0, fwd=(3, 114), bwd=(2, 78)),
           _result(bf16, 640.0, fwd=(3, 114), bwd=(2, 78)),
           _result(fp32_sq, 1100.0, fwd=(2, 180), bwd=(2, 78))]
    h = report.headline(res)
    assert h["additional_baseline_names"] == [fp32_sq, bf16_sq]
    assert h["missing_additional_baselines"] == [bf16_sq]
    assert list(h["baselines"]) == [fp32, bf16] and list(h["additional_baselines"]) == [fp32_sq]
    a = h["additional_baselines"][fp32_sq]
    m = HEADLINE_M
    assert math.isclose(a["ratio"], 800 / 1100) and math.isclose(a["saving"], 1 - 800 / 1100)
    per = {main: 2 * m + 248 + 2 * m + 86, fp32_sq: 2 * m + 181 + 2 * m + 79}
    assert math.isclose(a["area_x_cycles_ratio"], 800 * per[main] / (1100 * per[fp32_sq]))
    assert a["cycles"]["forward_formula"] == "2*m + 180" and a["ff_count"] == 7
    assert set(h["presets"][fp32_sq]["area_ratio"]) == {fp32, bf16}
    json.dumps(h)
    md = "\n".join(report._md_headline(res, {}))
    assert f"| {fp32_sq} | 1,378 | 7 | 8,373 (2*m + 180) | 0.73 |" in md
    assert f"Additional baselines not in this run: {bf16_sq}." in md


def test_headline_without_baselines_or_cycles():
    main, (fp32, bf16) = HEADLINE
    res = [_result(main, 800.0, fwd=(2, 1), bwd=(2, 1)),
           _result(bf16, 640.0, cycles={"m": HEADLINE_M, "error": "ValueError: no unit"}),
           _result("old", 500.0, cycles=None)]
    h = report.headline(res)
    assert h["missing_baselines"] == [fp32]
    p = h["presets"][main]
    assert p["area_ratio"][fp32] is None and math.isclose(p["area_ratio"][bf16], 1.25)
    # bf16 has no cycle numbers, so no area x cycles ratio against it.
    assert p["area_x_cycles_per_element"] is not None
    assert p["area_x_cycles_ratio"] == {fp32: None, bf16: None}
    assert h["presets"][bf16]["cycles"] is None
    assert "cycle model failed: ValueError: no unit" in h["presets"][bf16]["cycles_note"]
    assert "older flow" in h["presets"]["old"]["cycles_note"]
    assert list(h["baselines"]) == [bf16]
    # Without the main preset there is no per-block comparison, but every preset's numbers.
    h = report.headline([_result(fp32, 1.0, fwd=(3, 1), bwd=(2, 1))])
    assert "blocks" not in h and h["presets"][fp32]["area_ratio"][fp32] == 1.0
    text = "\n".join(report._md_headline(res, {}))
    assert f"Baselines not in this run (their ratios are n/a): {fp32}." in text
    assert f"| {bf16} | 802 | 7 | n/a | 1.00 | n/a | n/a | n/a | n/a | n/a | n/a |" in text


# --- the policy table and the parameters it reads ----------------------------------------------

def _policy_result(config, policy=None):
    params = {"config": config}
    if policy is not None:
        params["policy"] = policy
    return {"params": params}


def test_policy_rows():
    cfg = {"algorithm": "range", "grad": "range", "lanes": 8, "chunks": 8, "rounding": "rtz",
           "fwd_fmt": "e5m4_rtz", "bwd_fmt": "e6m3_rtz", "fwd_acc_fmt": "e6m12_rtz",
           "bwd_acc_fmt": "e7m11_rtz", "x_bfp": "bfp8x5e8_rtz", "y_bfp": "bfp8x5e8_rtz",
           "dy_bfp": None, "dx_bfp": "bfp8x4e8_rtz"}
    # A config without the policy fields (before they exist): "= A (...)" everywhere.
    rows = dict(report.policy_rows(_policy_result(cfg)))
    assert rows["per-element ops, forward (P)"] == "= A (E6M12)"
    assert rows["per-channel constants, backward (CB)"] == "= AB (E7M11)"
    assert rows["streamed data, forward (x, y)"] == "E5M4; x bfp8x5e8, y bfp8x5e8"
    assert rows["streamed data, backward (dy, dx)"] == "E6M3; dx bfp8x4e8"
    assert rows["accumulators, forward / backward (A / AB)"] == "E6M12 / E7M11"
    assert rows["algorithm / gradient"] == "range / range" and rows["rounding"] == "rtz"
    assert not any(k.startswith("internal sums") for k in rows)
    # Policy fields: None, the accumulator itself, another format; sums when recorded.
    pol = {"fwd_op_fmt": "e5m4_rtz", "bwd_op_fmt": None, "fwd_const_fmt": "e6m12_rtz",
           "bwd_const_fmt": "e6m4_rtz", "fwd_sum_fmt": "e6m31_rtz", "bwd_sum_fmt": "e7m30_rtz"}
    rows = dict(report.policy_rows(_policy_result({**cfg, "bwd_op_fmt": "e7m11_rtz"}, pol)))
    assert rows["per-element ops, forward (P)"] == "E5M4"
    assert rows["per-element ops, backward (PB)"] == "= AB (E7M11)"    # policy says None
    assert rows["per-channel constants, forward (C)"] == "E6M12 (= A)"
    assert rows["per-channel constants, backward (CB)"] == "E6M4"
    assert rows["internal sums, forward / backward (W / WB)"] == "E6M31 / E7M30"
    # The Markdown table has one column per preset, in result order.
    res = [dict(_result("lightnorm", 1.0, fwd=(2, 1), bwd=(2, 1)), params={"config": cfg}),
           dict(_result("fp32_bn", 1.0, fwd=(2, 1), bwd=(2, 1)),
                params={"config": {**cfg, "fwd_fmt": "e8m23"}, "policy": pol})]
    text = "\n".join(report._md_policy(res))
    assert "| class | lightnorm | fp32_bn |" in text
    assert "| streamed data, forward (x, y) | E5M4; x bfp8x5e8, y bfp8x5e8 | E8M23; x " in text
    assert "| internal sums, forward / backward (W / WB) | - | E6M31 / E7M30 |" in text


def test_bn_params_reads_the_policy_and_the_cycle_model():
    from lightnorm.golden.bnconfig import LIGHTNORM
    from lightnorm.verif.bntiming import cycle_model, group_cycles, header_period
    cfg = LIGHTNORM.replace(lanes=2, chunks=2, **{
        f: getattr(LIGHTNORM, f).replace(group=2) for f in ("x_bfp", "y_bfp", "dy_bfp", "dx_bfp")})
    p = designs.bn_params(cfg)
    assert p["lanes"] == 2 and p["config"] == cfg.as_dict()
    assert set(p["policy"]) == set(designs.POLICY_FIELDS)
    for name, v in p["policy"].items():
        want = getattr(cfg, name, None)
        assert v == getattr(want, "name", want)
    model = cycle_model(cfg)
    for mode in ("forward", "backward"):
        c = p["cycles"]["modes"][mode]
        assert c["group_cycles"] == group_cycles(model, mode, HEADLINE_M)
        assert c["header_period"] == header_period(model, mode, HEADLINE_M)
        assert c["formula"] == model["modes"][mode]["formula"]
    # Not a BN configuration: no policy attributes, and the failed cycle model is recorded.
    fake = types.SimpleNamespace(lanes=2, as_dict=lambda: {"lanes": 2}, fwd_op_fmt=E5M2)
    p = designs.bn_params(fake)
    assert p["policy"]["fwd_op_fmt"] == E5M2.name and p["policy"]["bwd_op_fmt"] is None
    assert p["cycles"]["m"] == HEADLINE_M and "error" in p["cycles"]


def test_markdown_contents_table():
    core = {"unit": "FPAddSub", "format": "E5M12", "rounding": "rtz", "stages": 1,
            "label": "FPAddSub E5M12 s1", "count": 8, "cells_each": {"XOR2_X1": 1},
            "area_um2_each": 1.2, "area_ge_each": 1.2 / 0.798, "ff_count_each": 0,
            "area_um2": 0.798 * 12408, "area_ge": 12408.0}
    r = _result("lightnorm", 0.798 * 20000, fwd=(2, 1), bwd=(2, 1),
                blocks={"stats": 0.798 * 20000})
    r["blocks"]["stats"]["contents"] = {
        "cores": [core], "cores_area_um2": 0.798 * 12408, "cores_ge": 12408.0,
        "cores_ff_count": 0, "ff_cells": {"DFF_X1": 1000}, "ff_count": 1000,
        "ff_area_um2": 4522.0, "ff_ge": 4522.0 / 0.798, "rest_cells": {"NAND2_X1": 1925},
        "rest_area_um2": 0.798 * 1925, "rest_ge": 1925.0}
    text = "\n".join(report._md_contents([r]))
    ff_ge = liberty.CELL_AREAS["DFF_X1"] / liberty.NAND2_AREA
    assert (f"| stats | 20,000 | 8 x FPAddSub E5M12 s1 = 12,408 GE | 12,408 | 1,000 x DFF_X1 "
            f"({ff_ge:.2f} GE) | {1000 * ff_ge:,.0f} | 1,925 |") in text
    del r["blocks"]["stats"]["contents"]
    assert "Not recorded: a run of an older flow" in "\n".join(report._md_contents([r]))
