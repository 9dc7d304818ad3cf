"""The BN entries of the manifest, without converting the unit (seconds, in ``make test``).

* the stream layouts (:func:`lightnorm.gen.generate.bn_layouts`) follow docs/bn-spec.md section
  7 and read the golden packers' beats back field by field; the bit-probing fails on a decoder
  whose fields overlap or are not contiguous;
* the cycle model (:mod:`lightnorm.verif.bntiming`, read from the component) gives the closed
  forms docs/interface.md states for the presets, so the page cannot go stale silently (the
  regression checks the model against measured cycles: ``test_bn``, ``make bench``).
"""

import re
from pathlib import Path

import numpy as np
import pytest

from lightnorm.gen.generate import _probe, bn_layouts
from lightnorm.golden import bn as gbn
from lightnorm.golden.bnconfig import BN_PRESETS

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
    pos = ([f"amax.{j}" for j in range(cfg.chunks)] + [f"amin.{j}" for j in range(cfg.chunks)]
           if cfg.has_positions else [])
    assert lane == ["p0", "p1", "p2"] + pos
    assert [f["field"] for f in lay["res"]["forward"]][:3] == ["mu", "sig", "s"]
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
    amax = rng.integers(0, m, (cp, cfg.chunks))
    amin = rng.integers(0, m, (cp, cfg.chunks))
    pos = {"amax": amax, "amin": amin} if cfg.has_positions else {}
    beats = gbn.command_beats(cfg, "backward", m, **dict(zip(gbn.LANE_WORDS["backward"], words)),
                              **pos)[0]
    consts = gbn.host_constants(cfg, m, "backward")
    assert _field(beats[0], lay["cmd"]["header"], "m") == m
    assert _field(beats[0], lay["cmd"]["header"], "mode") == gbn.MODES["backward"]
    assert _field(beats[0], lay["cmd"]["header"], "inv_m") == consts["inv_m"]
    for lane in range(cfg.lanes):
        for k in range(3):
            assert _field(beats[1 + lane], lay["cmd"]["lane"], f"p{k}") == words[k][lane]
        if cfg.has_positions:
            assert _field(beats[1 + lane], lay["cmd"]["lane"], "amin.3") == amin[lane, 3]
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


_NAMES = {"LIGHTNORM": "lightnorm", "FP32_BN": "fp32_bn", "BF16_BN": "bf16_bn"}


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
                model = cycle_model(BN_PRESETS[_NAMES[name]])["modes"][mode]
                assert (model["m_coeff"], model["constant"]) == (int(a or 1), int(b)), (
                    f"docs/interface.md says {name} {mode}: {a}m + {b}; the unit gives "
                    f"{model['formula']}")
                checked += 1
    assert checked >= 7, f"only {checked} closed forms found in docs/interface.md"
