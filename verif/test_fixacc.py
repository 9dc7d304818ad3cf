"""Amaranth-simulator checks of the exact-sum units (rtl/fixacc.py) against the golden model.

A :class:`FixedAccumulator` sized by ``exact_sum_format(term, n)`` feeds two combinational
:class:`FixedToFloat` converters (the accumulator format in rne and in rtz); every sequence of
terms is compared bit for bit with :func:`lightnorm.golden.bn._exact_sum` (itself checked
against a gfloat rounding of the exact sum in golden/tests/test_bn_sums.py).  Sequences: n terms
of the largest magnitude (both signs: the register's extremes), alternating +-max (cancels to
+0), all -0 (+0), subnormals of random sign, any finite words, a cancellation that leaves
subnormals, and Inf/NaN mixtures.  A register one bit narrower than the width rule is shown to
fail the same check.
"""

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from lightnorm.golden import bn
from lightnorm.golden.bnconfig import FixedFormat, exact_sum_format
from lightnorm.golden.formats import FloatFormat
from lightnorm.rtl.fixacc import FixedAccumulator, FixedToFloat, word_width


def sequences(fmt, n, rng):
    big, sgn, inf = int(fmt.max_finite), int(fmt.sign_mask), int(fmt.pos_inf)
    nan = int(fmt.canonical_nan)
    sub = 1 << fmt.man_bits
    seqs = [
        [big] * n, [big | sgn] * n,
        [big if k % 2 else big | sgn for k in range(n)],
        [sgn] * n,
        list(rng.integers(0, sub, n) | (rng.integers(0, 2, n) * sgn)),
        list(rng.integers(0, inf, n) | (rng.integers(0, 2, n) * sgn)),
        [3, 5, sgn | 1] + [big if k % 2 else big | sgn for k in range(n - 3)],
        [big, inf, big | sgn], [inf, inf | sgn, 1], [1, nan, 2], [inf | sgn, big, inf | sgn],
        [0], [sgn | 1],
    ]
    return [[int(v) for v in s] for s in seqs]


def run(term_fmt, fix, accs, seqs, *, segment=0, pauses=False, early=0):
    """Each sequence through one accumulator (cleared between sequences); the converters'
    outputs ``acc.latency - early`` cycles after its last term, per accumulator format.
    ``pauses``: a cycle without a term after every third one."""
    top = Module()
    top.submodules.acc = acc = FixedAccumulator(term_fmt, fix, segment=segment)
    convs = []
    for k, a in enumerate(accs):
        cv = FixedToFloat(fix, a, stages=0)
        top.submodules[f"cv{k}"] = cv
        top.d.comb += [cv.i.payload.eq(acc.acc), cv.i.valid.eq(1), cv.o.ready.eq(1)]
        convs.append(cv)
    sim = Simulator(top)
    sim.add_clock(1e-6)
    out = []

    async def bench(ctx):
        for seq in seqs:
            ctx.set(acc.clear, 1)
            await ctx.tick()
            ctx.set(acc.clear, 0)
            for k, t in enumerate(seq):
                ctx.set(acc.take, 1)
                ctx.set(acc.term, t)
                await ctx.tick()
                if pauses and k % 3 == 2:
                    ctx.set(acc.take, 0)
                    ctx.set(acc.term, t ^ 1)          # not taken: must not count
                    await ctx.tick()
            ctx.set(acc.take, 0)
            for _ in range(acc.latency - early):
                await ctx.tick()
            out.append([ctx.get(cv.o.payload) for cv in convs])

    sim.add_testbench(bench)
    sim.run()
    return out


def expected(term_fmt, accs, seqs):
    return [[int(bn._exact_sum(term_fmt, np.array(s, dtype=term_fmt.dtype)[:, None], a)[0])
             for a in accs] for s in seqs]


CASES = [(FloatFormat(5, 4), FloatFormat(6, 12), 1024),      # LIGHTNORM's x -> A
         (FloatFormat(6, 4), FloatFormat(7, 11), 256),       # its dgamma terms -> AB
         (FloatFormat(4, 2, subnormals=False), FloatFormat(4, 2), 64)]   # FTZ, into itself


@pytest.mark.parametrize("segment", [0, 5, 16])
@pytest.mark.parametrize("term_fmt,acc_fmt,n", CASES, ids=lambda v: getattr(v, "name", v))
def test_fixacc_against_golden(term_fmt, acc_fmt, n, segment):
    """Also pipelined (``segment``: carry-save segments of 5 or 16 bits, terms with pauses),
    read exactly ``latency`` cycles after the last term."""
    rng = np.random.default_rng(n)
    fix = exact_sum_format([term_fmt], n)
    accs = [acc_fmt.replace(rounding=r) for r in ("rne", "rtz")]
    seqs = sequences(term_fmt, n, rng)
    got = run(term_fmt, fix, accs, seqs, segment=segment, pauses=segment == 5)
    want = expected(term_fmt, accs, seqs)
    bad = [(k, g, w) for k, (g, w) in enumerate(zip(got, want)) if g != w]
    assert not bad, f"{term_fmt.name} -> {fix.name}: sequences (index, got, want) {bad[:4]}"
    assert want[2] == [0, 0] and want[3] == [0, 0]            # cancellation and -0s give +0


def test_fixacc_fault_is_caught():
    """A register one bit narrower than exact_sum_format wraps on n terms of the largest
    magnitude: the comparison reports it."""
    term_fmt, acc_fmt, n = FloatFormat(5, 4), FloatFormat(6, 12), 1024
    fix = exact_sum_format([term_fmt], n)
    narrow = FixedFormat(fix.width - 1, fix.lsb_exp)
    seqs = sequences(term_fmt, n, np.random.default_rng(0))[:2]
    got = run(term_fmt, narrow, [acc_fmt], seqs)
    assert got != expected(term_fmt, [acc_fmt], seqs)


def test_fixacc_pipelined_latency_is_needed():
    """Read one cycle before ``latency``, the pipelined accumulator is not yet the sum for
    some sequence (a carry still pending, or the last term still staged): the latency the
    sequencer waits is not padding."""
    term_fmt, acc_fmt, n = FloatFormat(5, 4), FloatFormat(6, 12), 1024
    fix = exact_sum_format([term_fmt], n)
    seqs = sequences(term_fmt, n, np.random.default_rng(1))
    acc = FixedAccumulator(term_fmt, fix, segment=5)
    assert acc.latency == len(acc.bounds) == -(-fix.width // 5)
    assert run(term_fmt, fix, [acc_fmt], seqs, segment=5, early=1) != \
        expected(term_fmt, [acc_fmt], seqs)


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_fixacc_errors():
    f = FloatFormat(5, 4)
    with pytest.raises(TypeError, match="fix_fmt must be a FixedFormat"):
        FixedAccumulator(f, 51)
    with pytest.raises(ValueError, match="lsb_exp"):
        FixedAccumulator(f, FixedFormat(60, -17))
    with pytest.raises(ValueError, match="width"):
        FixedAccumulator(f, FixedFormat(30, -18))
    with pytest.raises(ValueError, match="segment must be a non-negative int"):
        FixedAccumulator(f, FixedFormat(51, -18), segment=-1)
    with pytest.raises(TypeError, match="dst_fmt must be a FloatFormat"):
        FixedToFloat(FixedFormat(51, -18), "E6M12")
    with pytest.raises(ValueError, match="width must be between"):
        FixedFormat(1, 0)
    assert word_width(FixedFormat(51, -18)) == 54
    assert exact_sum_format([f], 65536) == FixedFormat(51, -18)
    assert exact_sum_format([FloatFormat(6, 4)], 65536).width == 83
