"""The Yosys area flow (lightnorm.synth): reports complete and self-consistent, models checked.

The flow is exercised on :class:`lightnorm.synth.example.RegisteredAdder` (known register bits),
independently of the arithmetic units, and on the smallest real unit that exists.
"""

import csv
import json
import math
import os
from collections import Counter
from functools import partial

import pytest

from lightnorm.golden.formats import E5M2
from lightnorm.synth import designs, energy, flow, liberty, report
from lightnorm.synth.designs import Design
from lightnorm.synth.example import RegisteredAdder


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    return liberty.write_liberty(str(tmp_path_factory.mktemp("lib") / "nangate45_min.lib"))


def _check_report(r, workdir):
    """Completeness and self-consistency of one design's report."""
    for key in ("area_um2", "area_ge", "ff_count", "ff_area_um2", "comb_area_um2", "cells",
                "blocks", "logic_depth", "transistors", "yosys_area_um2"):
        assert key in r, key
    assert r["area_um2"] > 0
    # GE = um^2 / NAND2_X1 area, for the design and each block.
    assert math.isclose(r["area_ge"], r["area_um2"] / 0.798, rel_tol=1e-12)
    for b in r["blocks"].values():
        assert math.isclose(b["area_ge"], b["area_um2"] / 0.798, rel_tol=1e-12)
    # Blocks partition the design: areas, flip-flops and cell counts add up to the totals.
    assert math.isclose(sum(b["area_um2"] for b in r["blocks"].values()), r["area_um2"],
                        rel_tol=1e-9)
    assert sum(b["ff_count"] for b in r["blocks"].values()) == r["ff_count"]
    assert sum(sum(b["cells"].values()) for b in r["blocks"].values()) == r["cell_count"]
    # Areas recomputed from cell counts and the published table agree with Yosys' own total.
    assert math.isclose(sum(liberty.CELL_AREAS[c] * n for c, n in r["cells"].items()),
                        r["area_um2"], rel_tol=1e-9)
    assert math.isclose(r["yosys_area_um2"], r["area_um2"], rel_tol=1e-6)
    assert math.isclose(r["ff_area_um2"] + r["comb_area_um2"], r["area_um2"], rel_tol=1e-12)
    # No unmapped cells: every cell of the mapped netlist is a liberty cell or a design module,
    # and only published cells are used (no BUF_X1 with its derived area).
    with open(os.path.join(workdir, "mapped.json")) as f:
        mapped = json.load(f)
    for mod in mapped["modules"].values():
        for cell in mod["cells"].values():
            assert cell["type"] in liberty.CELL_AREAS or cell["type"] in mapped["modules"], \
                cell["type"]
    assert set(r["cells"]) <= set(liberty.CELL_AREAS)
    # The transistor count is of the same netlist: its CMOS gates are the liberty cells, 1:1.
    with open(os.path.join(workdir, "cmos.json")) as f:
        gates = {c: n for c, n in json.load(f)["design"]["num_cells_by_type"].items()
                 if c.startswith("$")}
    gate_of = {c.name: c.gate[0] for c in liberty.CELLS}
    assert gates == {gate_of[c]: n for c, n in r["cells"].items()}
    assert isinstance(r["transistors"], int) and r["transistors"] > 0
    assert r["logic_depth"]["any"] >= 1
    _check_contents(r)


def _check_contents(r):
    """Each block's cores + flip-flops outside them + the rest account for its cells and area."""
    for name, b in r["blocks"].items():
        c = b["contents"]
        # Cell for cell: the cores' cells (times their count), the flip-flops and the rest
        # are the block's cells.
        cells = Counter(c["ff_cells"]) + Counter(c["rest_cells"])
        for core in c["cores"]:
            assert core["count"] >= 1
            for k, n in core["cells_each"].items():
                cells[k] += core["count"] * n
            assert math.isclose(core["area_um2_each"], sum(liberty.CELL_AREAS[k] * n for k, n
                                                           in core["cells_each"].items()))
            assert math.isclose(core["area_um2"], core["count"] * core["area_um2_each"])
            assert math.isclose(core["area_ge"], core["area_um2"] / 0.798)
        assert dict(cells) == b["cells"], name
        assert set(c["ff_cells"]) <= set(liberty.FLIP_FLOPS)
        assert not set(c["rest_cells"]) & set(liberty.FLIP_FLOPS)
        assert math.isclose(c["ff_area_um2"], sum(liberty.CELL_AREAS[k] * n
                                                  for k, n in c["ff_cells"].items()))
        assert math.isclose(c["rest_area_um2"], sum(liberty.CELL_AREAS[k] * n
                                                    for k, n in c["rest_cells"].items()))
        assert math.isclose(c["cores_area_um2"] + c["ff_area_um2"] + c["rest_area_um2"],
                            b["area_um2"], rel_tol=1e-9), name
        assert math.isclose(c["cores_ge"] + c["ff_ge"] + c["rest_ge"], b["area_ge"],
                            rel_tol=1e-9), name
        assert c["cores_ff_count"] + c["ff_count"] == b["ff_count"], name


def test_registered_adder_report(tmp_path, lib):
    dut = RegisteredAdder(8)
    d = Design("radd8", "test", "RegisteredAdder", "8b", lambda: dut)
    r = flow.synthesize(d, str(tmp_path / "radd8"), lib)
    _check_report(r, str(tmp_path / "radd8"))
    # Flip-flop count equals the design's register bits; their area is the DFF cell area.
    assert r["ff_count"] == dut.register_bits == 25
    assert math.isclose(r["ff_area_um2"], 25 * liberty.CELL_AREAS["DFF_X1"], rel_tol=1e-12)
    assert r["latency"] == 2
    # The adder submodule is its own block, with no flip-flops; the registers sit in "top".
    assert set(r["blocks"]) == {"add", designs.TOP_BLOCK}
    assert r["blocks"]["add"]["ff_count"] == 0
    # An 8-bit ripple/prefix adder needs at least a few levels between the registers.
    assert r["logic_depth"]["reg_to_reg"] >= 4
    # Reports: four files, CSV totals agree with the JSON.
    paths = report.write_reports(str(tmp_path / "rep"), [r], {"jobs": 1, "elapsed_s": 1.0,
                                                             "pending": {}, "failures": {}})
    for p in paths.values():
        assert os.path.getsize(p) > 0
    with open(paths["csv"]) as f:
        rows = list(csv.DictReader(f))
    total = [row for row in rows if row["block"] == "total"]
    assert len(total) == 1 and int(total[0]["ff_count"]) == 25
    assert math.isclose(sum(float(row["area_um2"]) for row in rows if row["block"] != "total"),
                        float(total[0]["area_um2"]), abs_tol=0.01)
    with open(paths["md"]) as f:
        assert "PLACEHOLDER" in f.read()      # no BN designs in this result set


def test_smallest_real_unit(tmp_path, lib):
    table = designs.unit_designs({"e5m2": E5M2})
    if not table:
        pytest.fail("no arithmetic unit is importable: " + repr(designs.pending()))
    d = table[0]
    r = flow.synthesize(d, str(tmp_path / d.name), lib)
    _check_report(r, str(tmp_path / d.name))
    assert r["ff_count"] > 0 and r["latency"] == 1


def _netlist(cells, ports):
    return {"modules": {"t": {"cells": cells, "ports": ports}}}


def test_logic_depth_counts_cells_between_registers():
    # q(2) -> INV(3) -> INV(4) -> NAND2(5, with input 6) -> D of a flip-flop; input 6 direct.
    cells = {
        "ff0": {"type": "DFF_X1", "connections": {"D": [5], "CK": [7], "Q": [2]}},
        "i1": {"type": "INV_X1", "connections": {"A": [2], "ZN": [3]}},
        "i2": {"type": "INV_X1", "connections": {"A": [3], "ZN": [4]}},
        "n1": {"type": "NAND2_X1", "connections": {"A1": [4], "A2": [6], "ZN": [5]}},
        "o1": {"type": "XOR2_X1", "connections": {"A": [6], "B": ["0"], "Z": [8]}},
    }
    ports = {"a": {"direction": "input", "bits": [6]}, "clk": {"direction": "input", "bits": [7]},
             "y": {"direction": "output", "bits": [8]}}
    assert flow.logic_depth(_netlist(cells, ports), "t") == {"reg_to_reg": 3, "any": 3}
    # Without the flip-flop's feedback there is no register-to-register path.
    cells["ff0"]["connections"]["D"] = [6]
    assert flow.logic_depth(_netlist(cells, ports), "t")["reg_to_reg"] is None


def test_hierarchy_areas_expands_repeated_submodules():
    inv, dff = liberty.CELL_AREAS["INV_X1"], liberty.CELL_AREAS["DFF_X1"]
    net = {"modules": {
        "top": {"cells": {"u0": {"type": "leaf"}, "u1": {"type": "leaf"},
                          "stats_a": {"type": "mid"}, "g": {"type": "INV_X1"}}},
        "mid": {"cells": {"l": {"type": "leaf"}, "f": {"type": "DFF_X1"}}},
        "leaf": {"cells": {"x": {"type": "INV_X1"}, "y": {"type": "INV_X1"}}},
    }}
    total, blocks, unmapped = flow.hierarchy_areas(net, "top")
    assert unmapped == {}
    assert total["cells"] == {"INV_X1": 7, "DFF_X1": 1}
    assert math.isclose(total["area_um2"], 7 * inv + dff)
    assert blocks["u0"]["cells"] == {"INV_X1": 2}
    assert blocks["stats"]["cells"] == {"INV_X1": 2, "DFF_X1": 1}   # stats_a -> block "stats"
    assert blocks[designs.TOP_BLOCK]["cells"] == {"INV_X1": 1}
    net["modules"]["leaf"]["cells"]["z"] = {"type": "$_AND_"}
    assert flow.hierarchy_areas(net, "top")[2] == {"$_AND_": 3}   # three leaf instances


def test_liberty_file_has_published_areas(tmp_path):
    text = liberty.liberty_text()
    for cell, area in liberty.CELL_AREAS.items():
        assert f"cell({cell}) {{\n    area : {area:.3f};" in text
    assert 'clear : "!RN";' in text          # DFFR_X1: active-low reset
    assert liberty.NAND2_AREA == 0.798


def test_headline_ratios():
    def fake(name, blocks):
        b = {k: {"area_um2": v, "area_ge": v / 0.798} for k, v in blocks.items()}
        total = sum(blocks.values())
        return {"name": f"bn_{name}", "group": "bn", "format": name, "area_um2": total,
                "area_ge": total / 0.798, "ff_count": 0, "blocks": b}
    h = report.headline([fake("lightnorm", {"stats": 10.0, "recip": 30.0}),
                         fake("fp32_bn", {"stats": 40.0, "recip": 60.0}),
                         fake("bf16_bn", {"stats": 20.0, "recip": 60.0})])
    assert math.isclose(h["baselines"]["fp32_bn"]["ratio"], 0.4)
    assert math.isclose(h["baselines"]["bf16_bn"]["saving"], 0.5)
    assert math.isclose(h["blocks"]["stats"]["fp32_bn_saving"], 0.75)
    assert math.isclose(h["presets"]["lightnorm"]["area_ratio"]["bf16_bn"], 0.5)
    # Only the main preset: its numbers, no ratios, the baselines listed as missing
    # (verif/test_report.py covers the rest of the headline).
    h = report.headline([fake("lightnorm", {"stats": 1.0})])
    assert h["missing_baselines"] == ["fp32_bn", "bf16_bn"] and h["baselines"] == {}
    assert h["presets"]["lightnorm"]["area_ratio"] == {"fp32_bn": None, "bf16_bn": None}
    assert report.headline([]) is None


def test_traffic_model_counts_stream_bits():
    from lightnorm.golden.bnconfig import FP32_BN, LIGHTNORM
    bits = energy.traffic_bits(FP32_BN)
    # conventional: x read 3x forward, y once; backward x and dy twice, dx once (32-bit words)
    assert bits["x_fwd"] == 96 and bits["y"] == 32 and bits["x_bwd"] == 64
    assert bits["dy"] == 64 and bits["dx"] == 32
    ln = energy.traffic_bits(LIGHTNORM)
    # BFP8 with 5-bit magnitudes: 6 bits per element + 8-bit exponent / 8 = 7 bits
    assert ln["y"] == 7 and ln["x_fwd"] == 14


@pytest.mark.parametrize("preset", ["fp32_bn", "bf16_bn", "fp32_bn_sumsq", "bf16_bn_sumsq",
                                    "bf16_bn_sumsq_exact"])
def test_documented_op_counts_match_golden_energy(preset):
    # The fallback counts (from docs/bn-spec.md) must price the same as the golden model's.
    from lightnorm.golden import bn
    from lightnorm.golden.bnconfig import BN_PRESETS, SUMSQ_PRESETS
    presets = {**BN_PRESETS, **SUMSQ_PRESETS}
    cfg = (presets[preset] if preset in presets
           else SUMSQ_PRESETS[preset.removesuffix("_exact")].replace(sum_mode="exact"))
    golden = energy._energy_of(bn.op_counts(cfg, m=64), energy.DEFAULT_M)
    documented = energy._energy_of(energy.documented_op_counts(cfg), energy.DEFAULT_M)
    assert math.isclose(golden, documented, rel_tol=1e-9)


def test_shared_modules_give_the_full_netlist(tmp_path, lib):
    """Synthesizing each unique module once (synth/dedup.py) and multiplying by its instance
    count gives the same netlist totals, cell for cell, as synthesizing every copy."""
    from amaranth.back import rtlil
    from lightnorm.synth.dedup import dedup_rtlil
    from lightnorm.synth.example import AdderLanes
    lanes = 3
    text, stats = dedup_rtlil(rtlil.convert(AdderLanes(E5M2, lanes), name="lanes3"))
    # The three lane adders (and their identical operand unpackers) became one module each.
    assert stats["unique"] < stats["modules"]
    assert stats["instances"]["\\lanes3.add_l0"] == lanes
    assert "module \\lanes3.add_l1\n" not in text
    results = {}
    for dedup in (False, True):
        d = Design("lanes3", "test", "AdderLanes", "e5m2", partial(AdderLanes, E5M2, lanes))
        work = str(tmp_path / f"dedup{int(dedup)}")
        results[dedup] = r = flow.synthesize(d, work, lib, dedup=dedup)
        _check_report(r, work)
        assert r["ff_count"] == 3 * lanes * E5M2.width
    full, shared = results[False], results[True]
    assert full["modules"] is None and shared["modules"]["synthesized"] == stats["unique"]
    for key in ("cells", "area_um2", "ff_count", "logic_depth", "transistors"):
        assert shared[key] == full[key], key
    assert {b: v["cells"] for b, v in shared["blocks"].items()} == \
        {b: v["cells"] for b, v in full["blocks"].items()}
    # What each block contains: every lane block is one combinational FPAddSub core and
    # nothing else; the 3 x lanes x width register bits are flip-flops of the top module.
    assert {b: v["contents"] for b, v in shared["blocks"].items()} == \
        {b: v["contents"] for b, v in full["blocks"].items()}
    for l in range(lanes):
        c = shared["blocks"][f"add_l{l}"]["contents"]
        assert [(k["label"], k["count"]) for k in c["cores"]] == [("FPAddSub E5M2 s0", 1)]
        assert c["cores"][0]["unit"] == "FPAddSub" and c["cores"][0]["stages"] == 0
        assert c["ff_count"] == 0 and c["rest_area_um2"] == 0
    top = shared["blocks"][designs.TOP_BLOCK]["contents"]
    assert top["cores"] == [] and top["ff_count"] == 3 * lanes * E5M2.width
    # The depth counter flattens the shared hierarchy in Python; Yosys' own flatten of the same
    # mapped netlist gives the same cells and the same depths.
    work = str(tmp_path / "dedup1")
    with open(os.path.join(work, "flat.ys"), "w") as f:
        # mapped.json holds the liberty cells as blackbox modules already.
        f.write("read_json mapped.json\nhierarchy -top lanes3\nflatten\n"
                "delete t:$scopeinfo\nwrite_json flat.json\n")
    flow.run_yosys("flat.ys", "flat.log", work)
    with open(os.path.join(work, "flat.json")) as f:
        yosys_flat = json.load(f)
    with open(os.path.join(work, "mapped.json")) as f:
        ours = flow.flatten_netlist(json.load(f), "lanes3")
    assert flow.logic_depth(ours, "lanes3") == flow.logic_depth(yosys_flat, "lanes3")
    count = lambda net: Counter(c["type"] for c in net["modules"]["lanes3"]["cells"].values())
    assert count(ours) == count(yosys_flat)


def test_dedup_rejects_unknown_rtlil():
    from lightnorm.synth.dedup import dedup_rtlil
    with pytest.raises(ValueError, match="expected 'attribute' or 'module'"):
        dedup_rtlil("wire width 1 \\x\n")
    with pytest.raises(ValueError, match="ends inside a module"):
        dedup_rtlil("module \\m\n  wire width 1 \\x\n")


# --- make fpga's step reuse and reports, --only (no FPGA tools needed) --------------------------

def test_fpga_step_reuse_rules(tmp_path):
    """A step reruns exactly when an input, an option or an output changed, or it never
    finished; identical inputs reuse it."""
    from lightnorm.synth.fpga import run_step
    runs = []
    (tmp_path / "in.txt").write_text("a")

    def tool(fail=False):
        def run():
            runs.append(1)
            if fail:
                raise RuntimeError("tool crashed")
            (tmp_path / "out.txt").write_text((tmp_path / "in.txt").read_text().upper())
        return run

    def step(run=None, **kw):
        return run_step(str(tmp_path), "t", ("in.txt",), ("out.txt",), run or tool(), **kw)

    assert step(extra=("v1",))[1] is False and len(runs) == 1
    assert step(extra=("v1",)) == (json.loads((tmp_path / "t.stamp").read_text())["seconds"], True)
    assert len(runs) == 1
    step(extra=("v2",))                          # another tool version or option
    assert len(runs) == 2
    (tmp_path / "in.txt").write_text("b")        # a changed input
    step(extra=("v2",))
    assert len(runs) == 3 and (tmp_path / "out.txt").read_text() == "B"
    (tmp_path / "out.txt").unlink()              # a missing output
    step(extra=("v2",))
    assert len(runs) == 4
    step(extra=("v2",), force=True)              # --force
    assert len(runs) == 5
    (tmp_path / "in.txt").write_text("c")        # a failed run leaves no stamp, no stale output
    with pytest.raises(RuntimeError):
        step(tool(fail=True), extra=("v2",))
    assert not (tmp_path / "t.stamp").exists() and not (tmp_path / "out.txt").exists()
    assert step(extra=("v2",))[1] is False and len(runs) == 7


def test_fpga_step_without_output_is_an_error(tmp_path):
    from lightnorm.synth.fpga import run_step
    (tmp_path / "in.txt").write_text("a")
    with pytest.raises(flow.SynthError, match="without writing out.txt"):
        run_step(str(tmp_path), "t", ("in.txt",), ("out.txt",), lambda: None)
    assert not (tmp_path / "t.stamp").exists()


def _segment(kind, delay, src, dst, net=None):
    seg = {"type": kind, "delay": delay, "from": {"cell": src, "port": "X", "loc": [0, 0]},
           "to": {"cell": dst, "port": "Y", "loc": [0, 0]}}
    if net:
        seg["net"] = net
    return seg


def test_fpga_critical_path_summary():
    """The slowest clock domain's path: start and end register, LUT levels, logic vs routing."""
    from lightnorm.synth.fpga import critical_path_summary
    fast = [_segment("clk-to-q", 0.5, "a_TRELLIS_FF_Q", "a_TRELLIS_FF_Q"),
            _segment("routing", 0.5, "a_TRELLIS_FF_Q", "b_TRELLIS_FF_Q", "a"),
            _segment("setup", 0.1, "b_TRELLIS_FF_Q", "b_TRELLIS_FF_Q")]
    slow = [_segment("clk-to-q", 0.5, "cnt_TRELLIS_FF_Q_3", "cnt_TRELLIS_FF_Q_3"),
            _segment("routing", 2.0, "cnt_TRELLIS_FF_Q_3", "l1_LUT4_Z", "x_LUT4_C_D[1]"),
            _segment("logic", 0.25, "l1_LUT4_Z", "l1_LUT4_Z"),
            _segment("routing", 3.0, "l1_LUT4_Z", "c_CCU2C_S0", "l1"),
            _segment("logic", 0.5, "c_CCU2C_S0", "c_CCU2C_S0"),
            _segment("routing", 1.0, "c_CCU2C_S0", "acc.sum_TRELLIS_FF_Q_12", "c"),
            _segment("setup", 0.25, "acc.sum_TRELLIS_FF_Q_12", "acc.sum_TRELLIS_FF_Q_12")]
    report = {"critical_paths": [{"from": "posedge clk", "to": "posedge clk", "path": fast},
                                 {"from": "posedge clk2", "to": "posedge clk2", "path": slow}]}
    assert critical_path_summary(report) == {
        "from": "cnt", "from_net": "x_LUT4_C_D[1]", "to": "acc.sum", "logic_levels": 2, "total_ns": 7.5, "logic_ns": 1.5,
        "routing_ns": 6.0}
    assert critical_path_summary({"critical_paths": []}) is None
    assert critical_path_summary({}) is None


def test_only_errors_name_the_pattern_and_the_designs():
    table = [Design(n, "test", "X", "f", None, {}) for n in ("fpadd_a", "fpmul_a", "fpmul_b")]
    assert [d.name for d in designs.select(table, "fpmul_.*")] == ["fpmul_a", "fpmul_b"]
    assert designs.select(table, None) == table
    with pytest.raises(ValueError, match=r"'fpmull_.\*' matches none of the designs: "
                                         r"fpadd_a, fpmul_a, fpmul_b"):
        designs.select(table, "fpmull_.*")
    with pytest.raises(ValueError, match=r"'fpmul\(' is not a regular expression"):
        designs.select(table, "fpmul(")
    # Every flow turns it into a usage error (exit 2) that names the pattern.
    from lightnorm.synth import __main__ as synth_main, fpga, sweep
    for entry in (synth_main.main, sweep.main, lambda a: fpga.main(["--units", *a])):
        with pytest.raises(SystemExit) as exc:
            entry(["--only", "no_such_design", "--list"])
        assert exc.value.code == 2


def test_sweep_pieces_merge(tmp_path):
    """A sweep run in pieces (--only) keeps the other pieces' points, in table order."""
    from lightnorm.synth.sweep import _merge_points
    path = tmp_path / "sweep.json"
    order = ["sweep_man2", "sweep_man4", "sweep_group4"]
    first = [{"name": "sweep_group4", "axis": "group", "value": 4, "area_ge": 1.0}]
    path.write_text(json.dumps({"points": first + [{"name": "gone", "axis": "x", "value": 0}]}))
    second = [{"name": "sweep_man4", "axis": a, "value": v, "area_ge": 2.0}
              for a, v in (("man", 4), ("group", 8))]
    merged = _merge_points(str(path), second, {"sweep_man4"}, order)
    assert [r["name"] for r in merged] == ["sweep_man4", "sweep_man4", "sweep_group4"]
    # A rerun of a point replaces it.
    again = _merge_points(str(path), [dict(first[0], area_ge=3.0)], {"sweep_group4"}, order)
    assert [r["area_ge"] for r in again] == [3.0]
    assert _merge_points(str(tmp_path / "missing.json"), second, {"sweep_man4"}, order) == second


@pytest.mark.long
def test_fpga_flow_on_smallest_unit(tmp_path):
    """``make fpga`` end to end on one small unit (``make test-long``, which installs the fpga
    extra): counts, Fmax and critical path read from the tools' files, then a rerun reuses
    both steps and gives the same report."""
    from lightnorm.golden.formats import FLOAT_PRESETS
    from lightnorm.synth import fpga
    table = designs.unit_designs({"fp10_154": FLOAT_PRESETS["fp10_154"]})
    d = next(x for x in table if x.name == "fpaddsub_fp10_154")
    work = str(tmp_path / d.name)
    r = fpga.implement(d, work)
    assert r["luts"] > 0 and r["ffs"] > 0 and r["fmax_mhz"] > 0 and r["reused"] == []
    assert r["luts"] == r["lut4"] + 2 * r["ccu2c"]
    cp = r["critical_path"]
    assert cp["logic_levels"] >= 1 and math.isclose(cp["logic_ns"] + cp["routing_ns"],
                                                    cp["total_ns"], abs_tol=2e-3)
    # 1000 / Fmax is the critical path's delay (nextpnr's report, read twice).
    assert math.isclose(1000.0 / r["fmax_mhz"], cp["total_ns"], rel_tol=0.02)
    again = fpga.implement(d, work)
    assert again["reused"] == ["yosys", "nextpnr"]
    assert {k: v for k, v in again.items() if k not in ("reused", "elaborate_s")} == \
        {k: v for k, v in r.items() if k not in ("reused", "elaborate_s")}
    fpga._write(str(tmp_path / "reports"), [r], {})
    md = (tmp_path / "reports" / "fpga.md").read_text()
    assert "| fpaddsub_fp10_154 |" in md and "## Critical paths" in md
