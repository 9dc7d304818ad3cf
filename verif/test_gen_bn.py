"""The BN entries of the manifest, without converting the unit (seconds, in ``make test``).

* the stream layouts (:func:`lightnorm.gen.generate.bn_layouts`) follow docs/bn-spec.md section
  7 and read the golden packers' beats back field by field; the bit-probing fails on a decoder
  whose fields overlap or are not contiguous;
* the cycle model (:mod:`lightnorm.verif.bntiming`, read from the component) gives every cycle
  count docs/interface.md and docs/architecture.md state -- the closed-form table, the generic
  formula, the timing example line by line, the "next header" sentences, L and the segment
  lengths, the small-unit measurement and the ``make bench`` table -- so the pages cannot go
  stale silently (the regression checks the model against measured cycles: ``test_bn``,
  ``make bench``);
* the mode names of the golden model are the header codes of the RTL.
"""

import functools
import re
from pathlib import Path

import numpy as np
import pytest

from lightnorm.gen.generate import _probe, bn_layouts
from lightnorm.golden import bn as gbn
from lightnorm.golden.bnconfig import BN_PRESETS, SUMSQ_PRESETS

_DOCS = Path(__file__).resolve().parent.parent / "docs"


def _field(beat, layout, name):
    f = next(f for f in layout if f["field"] == name)
    return (beat >> f["offset"]) & ((1 << f["width"]) - 1)


@pytest.mark.parametrize("preset", list(BN_PRESETS))
def test_layouts_follow_the_spec(preset):
    cfg = BN_PRESETS[preset]
    lay = bn_layouts(cfg)
    mb, cw, kb = cfg.m_bits, cfg.const_width, cfg.r_bits
    header = [(f["field"], f["width"]) for f in lay["cmd"]["header"] if f["field"] != "(unused)"]
    assert header == [("mode", 2), ("m", mb), ("q", mb), ("r", kb), ("inv_m", cw), ("ck", cw),
                      ("eps", cw)]
    lane = [f["field"] for f in lay["cmd"]["lane"] if f["field"] != "(unused)"]
    assert lane == ["p0", "p1", "p2"]             # no position fields (bn-spec section 5)
    assert [f["field"] for f in lay["res"]["forward"]] == ["mu", "sig", "s"]
    assert cfg.result_width == cfg.lane_width == 3 * cw
    # din: x in the low bits, dy above it; every layout spans its port exactly
    assert lay["din"][0]["field"].startswith("x.") and lay["din"][-1]["field"].startswith("dy.")
    for stream, width in (("din", cfg.din_width),):
        assert lay[stream][-1]["offset"] + lay[stream][-1]["width"] == width
    for kinds, width in ((lay["cmd"], cfg.cmd_width), (lay["dout"], cfg.dout_width),
                         (lay["res"], cfg.result_width)):
        for fields in kinds.values():
            assert fields[-1]["offset"] + fields[-1]["width"] == width
            assert sum(f["width"] for f in fields) == width


@pytest.mark.parametrize("preset", ["lightnorm", "bf16_bn"])
def test_layouts_read_golden_beats(preset):
    """Fields cut out of golden command/din beats by the layout equal the golden values."""
    cfg = BN_PRESETS[preset]
    lay = bn_layouts(cfg)
    rng = np.random.default_rng(3)
    m, cp = 40, cfg.lanes
    words = [rng.integers(0, 1 << cfg.bwd_acc_fmt.width, cp) for _ in range(3)]
    beats = gbn.command_beats(cfg, "backward", m,
                              **dict(zip(gbn.LANE_WORDS["backward"], words)))[0]
    consts = gbn.host_constants(cfg, m, "backward")
    assert _field(beats[0], lay["cmd"]["header"], "m") == m
    assert _field(beats[0], lay["cmd"]["header"], "mode") == gbn.MODES["backward"]
    assert _field(beats[0], lay["cmd"]["header"], "inv_m") == consts["inv_m"]
    for lane in range(cfg.lanes):
        for k in range(3):
            assert _field(beats[1 + lane], lay["cmd"]["lane"], f"p{k}") == words[k][lane]
    # one din beat: x and dy words/groups at the offsets the layout gives
    x = rng.standard_normal((1, cp, 1, m))
    fwd = gbn.forward(cfg, x, np.ones(cp), np.zeros(cp))
    bwd = gbn.backward(cfg, rng.standard_normal((1, cp, 1, m)), np.ones(cp), fwd)
    din = gbn.din_beats(cfg, "backward", fwd.x_beats, bwd.dy_beats)[0, 5]
    if cfg.x_bfp is None:
        assert _field(din, lay["din"], "x.2") == fwd.x_bits[5, 2]     # x_bits: (m, Cp)
        assert _field(din, lay["din"], "dy.7") == (int(bwd.dy_beats[0, 5]) >> (
            7 * cfg.bwd_fmt.width)) & ((1 << cfg.bwd_fmt.width) - 1)
    else:
        assert _field(din, lay["din"], "x.exp") == int(fwd.x_beats[0, 5]) & 0xFF


def test_probe_rejects_overlaps_and_gaps():
    """The bit-probing cannot silently describe a decoder that is not plain bit fields."""
    assert _probe(6, lambda b: {"a": b & 3, "b": (b >> 3) & 7}) == [
        {"field": "a", "offset": 0, "width": 2}, {"field": "(unused)", "offset": 2, "width": 1},
        {"field": "b", "offset": 3, "width": 3}]
    with pytest.raises(ValueError, match="bit 1 decodes into"):
        _probe(4, lambda b: {"a": b & 3, "b": b & 2})                  # overlapping
    with pytest.raises(ValueError, match="field a starts at bit 1"):
        _probe(4, lambda b: {"a": (b & 3) << 1})                        # not from bit 0
    with pytest.raises(ValueError, match="split into several runs"):
        _probe(4, lambda b: {"a": (b & 1) | ((b >> 2) & 1), "b": (b >> 1) & 1})   # a twice


_NAMES = {"LIGHTNORM": "lightnorm", "FP32_BN": "fp32_bn", "BF16_BN": "bf16_bn",
          "FP32_BN_SUMSQ": "fp32_bn_sumsq", "BF16_BN_SUMSQ": "bf16_bn_sumsq"}


def test_docs_closed_forms_match_the_model():
    """Every ``(PRESET: `a m + b`)`` of the closed-form table in docs/interface.md."""
    from .bntiming import cycle_model
    text = (_DOCS / "interface.md").read_text()
    table = text[text.index("| command | cycles per channel group |"):]
    table = table[:table.index("\n\n")]
    checked = 0
    for row in table.splitlines()[2:]:
        mode = row.split("|")[1].strip().split(",")[0]
        for names, a, b in re.findall(r"([A-Z0-9_, ]+): `(\d*)m \+ (\d+)`", row):
            for name in (n.strip() for n in names.split(",")):
                cfg = {**BN_PRESETS, **SUMSQ_PRESETS}[_NAMES[name]]
                model = cycle_model(cfg)["modes"][mode]
                assert (model["m_coeff"], model["constant"]) == (int(a or 1), int(b)), (
                    f"docs/interface.md says {name} {mode}: {a}m + {b}; the unit gives "
                    f"{model['formula']}")
                checked += 1
    assert checked >= 9, f"only {checked} closed forms found in docs/interface.md"


@functools.lru_cache(maxsize=None)
def _model(name):
    from .bntiming import cycle_model
    if name == "lightnorm_g2k2":           # test_bn_small_hdl's unit
        from .test_bn import small_config
        return cycle_model(small_config(BN_PRESETS["lightnorm"], 2, 2))
    return cycle_model(BN_PRESETS[name])


def _doc(name):
    return (_DOCS / name).read_text()


def test_mode_names_are_the_header_codes():
    from lightnorm.rtl.bn.control import MODE_BWD, MODE_FWD, MODE_INFER
    from .bntiming import MODES
    assert gbn.MODES == {"forward": MODE_FWD, "backward": MODE_BWD, "inference": MODE_INFER}
    assert MODES == ("forward", "backward", "inference")
    assert set(gbn.LANE_WORDS) == set(gbn.MODES)


_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4}


def _number(word):
    return int(word) if word.isdigit() else _WORDS[word]


@pytest.mark.parametrize("doc", ["interface.md", "architecture.md"])
def test_docs_generic_formula_and_next_header(doc):
    """The generic group formula, evaluated, gives the model's group cycles for every preset and
    mode; "the next header is accepted N cycles after the last dout beat" gives its N."""
    from .bntiming import group_cycles, group_schedule
    text = " ".join(_doc(doc).split())              # sentences may wrap
    formulas = set(re.findall(r"`(\(1 \+ G\)[^`]*)`", text))
    assert formulas, f"docs/{doc} states no `(1 + G) + ...` formula"
    for formula in formulas:
        for name in BN_PRESETS:
            model = _model(name)
            for mode, md in model["modes"].items():
                for m in (64, 1000):
                    names = {"G": model["lanes"], "m": m, "L": model["stream_latency"],
                             "passes": len(md["passes"]),
                             "segments": sum(p["segment_cycles"] for p in md["passes"])}
                    got = eval(formula, {"__builtins__": {}}, names)
                    assert got == group_cycles(model, mode, m), (
                        f"docs/{doc}: `{formula}` gives {got} cycles for {name} {mode} m={m}, "
                        f"the unit takes {group_cycles(model, mode, m)} (header to last dout "
                        f"beat)")
    claims = re.findall(r"header (?:is|may be) accepted (\w+) cycles? after the last `?dout`? beat",
                        text)
    assert claims, f"docs/{doc} does not say when the next header is accepted"
    for word in claims:
        for name in BN_PRESETS:
            sch = group_schedule(_model(name), "forward", 64)
            assert _number(word) == sch["next_header"] - sch["dout"][1], (
                f"docs/{doc}: next header {word} cycles after the last dout beat; the model "
                f"(measured by the regression) gives {sch['next_header'] - sch['dout'][1]}")


def _example_rows(model, m):
    """(label pattern, (first, last)) of every line the timing example must have, in order."""
    from .bntiming import group_schedule
    sch = group_schedule(model, "forward", m)
    G, L = model["lanes"], model["stream_latency"]
    rows = [(r"header H$", (0, 0)),
            (rf"lane beats L0\.\.L{G - 1}$", sch["lanes"])]
    for k, p in enumerate(sch["passes"], 1):
        rows.append((rf"pass {k}: din p=0\.\.{m - 1}\b", p["din"]))
        if p["segment"] is not None:
            rows.append((rf"drain \(L = {L}\)", p["drain"]))
            name, first, last = p["segment"]
            rows.append((rf"scalar segment {name} \({last - first + 1} cycles\)", (first, last)))
    rows += [(rf"res lanes 0\.\.{G - 1}\b", sch["res"]),
             (rf"dout y p=0\.\.{m - 1} \(each L = {L} cycles after", sch["dout"]),
             (r"idle \(FINISH\)$", sch["finish"]),
             (rf"next header accepted \(group: {sch['dout'][1] + 1} cycles = "
              rf"{model['modes']['forward']['m_coeff']}m \+ "
              rf"{model['modes']['forward']['constant']}\)$", (sch["next_header"],) * 2)]
    return rows


def test_docs_timing_example_matches_the_model():
    """Every line of docs/interface.md's timing example: the cycles and the numbers in it."""
    text = _doc("interface.md")
    head = re.search(r"Timing example, (\w+) forward, one group, m = (\d+)", text)
    assert head, "docs/interface.md has no 'Timing example, PRESET forward, one group, m = M'"
    preset, m = head.group(1), int(head.group(2))
    block = text[head.end():]
    block = block[block.index("```\n") + 4:]
    block = block[:block.index("```")]
    lines = [ln for ln in block.splitlines() if ln.startswith("cycle")]
    rows = _example_rows(_model(_NAMES[preset].lower()), m)
    assert len(lines) == len(rows), (
        f"the timing example has {len(lines)} cycle lines, the model {len(rows)}:\n"
        + "\n".join(lines))
    for line, (label, (first, last)) in zip(lines, rows):
        got = re.match(r"cycle\s+(\d+)(?:\.\.(\d+))?\s+(.*)$", line)
        assert got, f"cannot read {line!r}"
        a, b, rest = int(got.group(1)), int(got.group(2) or got.group(1)), got.group(3)
        assert re.match(label, rest.strip()), f"{line!r}: expected a line like {label!r}"
        assert (a, b) == (first, last), (
            f"docs/interface.md: {line!r}; the cycle model gives {first}..{last}")


def test_docs_timing_terms_match_the_model():
    """L, the segment lengths, the small-unit measurement, the layer rule and the bench table."""
    from .bntiming import group_cycles
    text = " ".join(_doc("interface.md").split())
    arch = " ".join(_doc("architecture.md").split())
    ln = _model("lightnorm")
    seg, lat = ln["scalar_cycles"], ln["stream_latency"]
    assert re.findall(r"LIGHTNORM: L = (\d+)", text) == [str(lat)]
    assert re.findall(r"LIGHTNORM, G = 8, K = 8: forward (\d+), backward (\d+)", text) == [
        (str(seg["fwd_final"]), str(seg["bwd_final"]))]
    assert re.findall(r"LIGHTNORM: (\d+) forward, (\d+) backward", arch) == [
        (str(seg["fwd_final"]), str(seg["bwd_final"]))]
    gap = re.findall(r"Consecutive groups of one layer add (\w+) cycles? each", text)
    assert [_number(w) for w in gap] == [ln["gap_between_groups"]]
    # test_bn_small_hdl's unit
    small = _model("lightnorm_g2k2")
    got = re.search(r"G = 2, K = 2, L = (\d+), fwd_final = (\d+), bwd_final = (\d+)", text)
    assert got and tuple(map(int, got.groups())) == (
        small["stream_latency"], small["scalar_cycles"]["fwd_final"],
        small["scalar_cycles"]["bwd_final"])
    stated = re.findall(r"(forward|backward|inference) m = (\d+): (\d+)", text)
    assert len(stated) == 3
    for mode, m, cycles in stated:
        assert int(cycles) == group_cycles(small, mode, int(m)), (mode, m, cycles)
    # the make bench table: group cycles per preset, mode and m
    raw = _doc("interface.md")
    rows = raw[raw.index("| preset | m | forward (floor) |"):].split("\n\n")[0].splitlines()[2:]
    names, checked = None, 0
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        names = cells[0] or names
        m = int(cells[1])
        for mode, cell in (("forward", cells[2]), ("backward", cells[4]),
                           ("inference", cells[6])):
            for name in names.split(", "):
                want = group_cycles(_model(_NAMES.get(name, name.lower())), mode, m)
                assert int(cell.split()[0]) == want, (
                    f"docs/interface.md bench table: {name} {mode} m={m}: {cell}, model {want}")
                checked += 1
    assert checked >= 24, f"only {checked} bench numbers found in docs/interface.md"
