"""The forward of a range preset on the backward cores (rtl/bn/normalize.py, ``nested``).

Normalize computes the forward's ``a*x`` and ``+ b`` (format P) on the backward's PB cores: the
operands widened exactly into PB, the PB result narrowed into P.  That equals the golden model's
operation in P only where :func:`nested_rounding` says so; these tests check the property the
design relies on, exhaustively over every pair of P words, with the golden model's arithmetic
(the RTL itself is compared with the golden model in test_bn.py).
"""

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from lightnorm.golden import fp
from lightnorm.golden.bnconfig import BN_PRESETS
from lightnorm.golden.formats import FloatFormat
from lightnorm.rtl.bn.common import fp_onto_grid, onto_grid_applies
from lightnorm.rtl.bn.normalize import nested_forward, nested_rounding


def _twice(P, PB, op):
    """op in P directly, and op in PB on exactly widened operands narrowed into P."""
    a, b = np.meshgrid(np.arange(1 << P.width), np.arange(1 << P.width), indexing="ij")
    a, b = a.ravel(), b.ravel()
    direct = getattr(fp, op)(P, a, b)
    wa, wb = fp.convert(P, a, PB), fp.convert(P, b, PB)
    twice = fp.convert(PB, getattr(fp, op)(PB, wa, wb), P)
    return direct.astype(np.int64), twice.astype(np.int64)


@pytest.mark.parametrize("op", ["mul", "add"])
@pytest.mark.parametrize("P,PB", [
    (FloatFormat(5, 4, rounding="rtz"), FloatFormat(6, 4, rounding="rtz")),       # LIGHTNORM
    (FloatFormat(4, 3, rounding="rtz"), FloatFormat(5, 4, rounding="rtz")),
    (FloatFormat(4, 3, subnormals=False, rounding="rtz"),
     FloatFormat(5, 3, subnormals=False, rounding="rtz")),
])
def test_nested_rtz_is_exact(P, PB, op):
    assert nested_rounding(P, PB)
    direct, twice = _twice(P, PB, op)
    np.testing.assert_array_equal(twice, direct)


@pytest.mark.parametrize("op", ["mul", "add"])
def test_rne_is_not_nested(op):
    """Round to nearest breaks it (double rounding below P's smallest normal): no sharing."""
    P, PB = FloatFormat(5, 4), FloatFormat(6, 4)
    assert not nested_rounding(P, PB)
    direct, twice = _twice(P, PB, op)
    if op == "mul":
        assert (direct != twice).any()


def test_predicate_refuses_coarser_grids():
    rtz = dict(rounding="rtz")
    assert not nested_rounding(FloatFormat(5, 4, **rtz), FloatFormat(6, 3, **rtz))   # mantissa
    assert not nested_rounding(FloatFormat(6, 4, **rtz), FloatFormat(5, 4, **rtz))   # range
    assert not nested_rounding(FloatFormat(5, 4, **rtz), FloatFormat(5, 4, **rtz))   # same


def test_presets_share_where_exact():
    """LIGHTNORM (rtz) shares; LIGHTNORM_RNE and the conventional presets do not take this path."""
    shared = {name for name, cfg in BN_PRESETS.items() if nested_forward(cfg)}
    assert "lightnorm" in shared
    assert "lightnorm_rne" not in shared
    assert not {n for n in shared if BN_PRESETS[n].algorithm == "conventional"}


@pytest.mark.parametrize("wide,narrow", [
    (FloatFormat(6, 4, rounding="rtz"), FloatFormat(5, 4, rounding="rtz")),      # LIGHTNORM
    (FloatFormat(6, 5, rounding="rtz"), FloatFormat(4, 3, rounding="rtz")),
    (FloatFormat(6, 4, subnormals=False, rounding="rtz"),
     FloatFormat(4, 2, subnormals=False, rounding="rtz")),
    (FloatFormat(6, 4, rounding="rtz"), FloatFormat(6, 2, rounding="rtz")),    # same emin
    (FloatFormat(5, 6), FloatFormat(5, 3, subnormals=False, rounding="rtz")),
    (FloatFormat(5, 6, subnormals=False), FloatFormat(4, 3, rounding="rtz")),
])
def test_onto_grid_is_two_conversions(wide, narrow):
    """fp_onto_grid (the L2 product kept as a PB word) on every wide word, against golden
    convert wide -> narrow -> wide."""
    m = Module()
    a = Signal(wide.width)
    out = fp_onto_grid(m, "t", wide, narrow, a)
    words = np.arange(1 << wide.width, dtype=np.int64)
    want = fp.convert(narrow, fp.convert(wide, words, narrow), wide).astype(np.int64)
    got = []

    async def bench(ctx):
        for w in words:
            ctx.set(a, int(w))
            got.append(ctx.get(out))
    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    bad = np.flatnonzero(np.array(got) != want)
    assert not bad.size, [(hex(words[i]), hex(got[i]), hex(want[i])) for i in bad[:8]]


def test_onto_grid_refuses_rne_and_coarser_wide_formats():
    assert not onto_grid_applies(FloatFormat(6, 4), FloatFormat(5, 4))              # rne
    assert not onto_grid_applies(FloatFormat(6, 3), FloatFormat(5, 4, rounding="rtz"))
    # E5M4's range is not inside E4M6's
    assert not onto_grid_applies(FloatFormat(4, 6), FloatFormat(5, 4, rounding="rtz"))
    m = Module()
    m._MustUse__silence = True
    with pytest.raises(ValueError, match="truncating"):
        fp_onto_grid(m, "t", FloatFormat(6, 4), FloatFormat(5, 4), Signal(11))
