"""Backward argmax/argmin re-detection flags exactly the element the position rule picked.

The unit no longer stores or sends chunk argmax/argmin positions: a grad "range" backward
re-tracks each chunk's max/min of x in pass 1 and flags, in pass 2, the chunk's first position
whose word (as the comparators see it, ``fp.max(F, x, x)``) equals the stored extremum
(docs/bn-spec.md section 5).  The oracle here is the rule it replaces, kept only in this file:
the forward's running ``fp.max``/``fp.min`` take position p when the result changes as a bit
pattern (first occurrence of ties, -0 < +0, NaN ignored, FTZ subnormals flushed).

Checked on: every sequence of 3 words (and of 4 words from a tie-heavy alphabet) of small
formats with and without subnormals, both roundings; corner words (zeros, subnormals, Inf,
canonical and non-canonical NaN, extremes) of every preset data format and of FP8-style
formats; random bit patterns and tie-heavy random data with unequal chunks; the BN model's
backward (internals and dx) against the old rule on stream bit patterns.
"""

import itertools
from types import SimpleNamespace

import numpy as np
import pytest

from lightnorm.golden import bn, fp
from lightnorm.golden.bnconfig import BN_PRESETS
from lightnorm.golden.formats import FloatFormat
from lightnorm.golden.vectors import corners, random_bits

SMALL = [FloatFormat(e, m, rounding=r, subnormals=s)
         for e, m in ((2, 1), (3, 2)) for r in ("rne", "rtz") for s in (True, False)]
DATA = {f.name: f for f in [c.fwd_fmt for c in BN_PRESETS.values()] +
        [FloatFormat(4, 3, subnormals=False), FloatFormat(5, 2), FloatFormat(8, 7)]}


def old_positions(fmt, x, starts, lengths):
    """The forward's former argmax/argmin rule (bn-spec before issue 9, the test oracle).

    At a chunk's first position ``cur = max(x, x)`` and the position is the start; at each later
    position ``new = max(cur, x)`` and the position moves to p iff ``new != cur`` as a bit
    pattern.  Returns ``amax, amin`` (Cp, K) absolute positions.
    """
    k, cp = len(starts), x.shape[1]
    amax = np.empty((cp, k), np.int64)
    amin = np.empty((cp, k), np.int64)
    for j, (s, n) in enumerate(zip(starts, lengths)):
        mx = fp.max(fmt, x[s], x[s])
        mn = fp.min(fmt, x[s], x[s])
        imx = np.full(cp, s, np.int64)
        imn = imx.copy()
        for p in range(s + 1, s + n):
            nmx, nmn = fp.max(fmt, mx, x[p]), fp.min(fmt, mn, x[p])
            imx = np.where(nmx != mx, p, imx)
            imn = np.where(nmn != mn, p, imn)
            mx, mn = nmx, nmn
        amax[:, j], amin[:, j] = imx, imn
    return amax, amin


def new_flags(fmt, x, starts, lengths):
    """The golden model's re-detection: pass-1 extrema, then the pass-2 flags."""
    cfg = SimpleNamespace(fwd_fmt=fmt, chunks=len(starts))
    mx, mn = bn._chunk_extrema_loop(bn._Ops(), cfg, x, starts, lengths)
    return bn._extremum_flags(cfg, x, mx, mn, starts, lengths)


def assert_same_element(fmt, x, starts, lengths):
    x = np.asarray(x).astype(fmt.dtype)
    starts, lengths = np.asarray(starts, np.int64), np.asarray(lengths, np.int64)
    amax, amin = old_positions(fmt, x, starts, lengths)
    ismax, ismin = new_flags(fmt, x, starts, lengths)
    chunk_of = np.repeat(np.arange(len(starts)), lengths)
    pos = np.arange(x.shape[0])[:, None]
    for name, flags, ref in (("max", ismax, amax), ("min", ismin, amin)):
        want = pos == ref.T[chunk_of]
        bad = np.argwhere(flags != want)
        assert bad.size == 0, (
            f"{fmt.name} {name}: position {bad[0, 0]} of column {bad[0, 1]} "
            f"(words {x[:, bad[0, 1]].tolist()}): flag {flags[tuple(bad[0])]}, old rule "
            f"{ref[bad[0, 1]].tolist()}")
        # exactly one flag per chunk and lane: the property the hardware's "seen" bit gives
        np.testing.assert_array_equal(np.add.reduceat(flags.astype(np.int64), starts, axis=0), 1)


@pytest.mark.parametrize("fmt", SMALL, ids=lambda f: f.name)
def test_every_sequence_of_small_formats(fmt):
    n = 1 << fmt.width
    for length in (1, 2, 3):
        x = np.array(list(itertools.product(range(n), repeat=length))).T     # (length, n^L)
        assert_same_element(fmt, x, [0], [length])
    # length 4 from a tie-heavy alphabet: +-0, the smallest subnormal, 1, +-Inf, two NaNs
    alpha = sorted({0, fmt.sign_mask, 1, fmt.sign_mask | 1, int(fp.encode(fmt, 1.0)),
                    fmt.exp_all_ones << fmt.man_bits, fmt.canonical_nan, n - 1})
    x = np.array(list(itertools.product(alpha, repeat=4))).T
    assert_same_element(fmt, x, [0], [4])
    assert_same_element(fmt, x, [0, 2], [2, 2])                 # two chunks of 2


@pytest.mark.parametrize("name", list(DATA))
def test_corner_words_and_random_data(name):
    fmt = DATA[name]
    rng = np.random.default_rng(11)
    c = np.unique(corners(fmt).astype(np.int64))
    # non-canonical NaNs (both signs, other payloads) beside the canonical one
    nan_any = (fmt.exp_all_ones << fmt.man_bits) | 1
    pool = np.unique(np.concatenate([c, [nan_any, nan_any | fmt.sign_mask, fmt.canonical_nan,
                                         fmt.canonical_nan | fmt.sign_mask]]))
    # every pair and triple of corner words as one chunk
    for length in (2, 3):
        if len(pool) ** length > 200_000:
            sel = rng.choice(pool, (length, 200_000))
        else:
            sel = np.array(list(itertools.product(pool, repeat=length))).T
        assert_same_element(fmt, sel, [0], [length])
    # unequal chunks (m = 53, K = 8) of: random bit patterns, corner words, and heavy ties
    m, k, cp = 53, 8, 64
    q, r = divmod(m, k)
    lengths = np.array([q + 1 if j < r else q for j in range(k)])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    few = rng.choice(pool, 4)
    for x in (random_bits(fmt, m * cp, rng).reshape(m, cp),
              rng.choice(pool, (m, cp)),
              rng.choice(few, (m, cp)),
              np.full((m, cp), fmt.canonical_nan) ^ rng.integers(0, 2, (m, cp)) * fmt.sign_mask):
        assert_same_element(fmt, x, starts, lengths)


@pytest.mark.parametrize("name", ["lightnorm", "lightnorm_rne"])
def test_backward_model_flags_the_old_positions(name):
    """The BN model's backward (stream level, NaN/Inf/subnormal/zero words, unequal chunks)
    flags the old rule's positions, and its dx is the old rule's dx."""
    cfg = BN_PRESETS[name]
    rng = np.random.default_rng(4)
    m, cp = 61, 2 * cfg.lanes
    F, B, AB, PB, CB = cfg.fwd_fmt, cfg.bwd_fmt, cfg.bwd_acc_fmt, cfg.bwd_op, cfg.bwd_const
    x = random_bits(F, m * cp, rng).reshape(m, cp)
    x[:, :4] = rng.choice(corners(F), (m, 4))                    # ties of specials
    x[:, 4] = 0                                                  # a constant channel (+0)
    dy = random_bits(B, m * cp, rng).reshape(m, cp)
    gamma, mu, s = (fp.encode(AB, rng.uniform(-2, 2, cp)) for _ in range(3))
    out = bn.backward_stream(cfg, x, dy, gamma, mu, s)
    starts, lengths = bn.chunk_layout(cfg, m)
    amax, amin = old_positions(F, x.astype(F.dtype), starts, lengths)
    chunk_of = np.repeat(np.arange(cfg.chunks), lengths)
    pos = np.arange(m)[:, None]
    ismax, ismin = pos == amax.T[chunk_of], pos == amin.T[chunk_of]
    np.testing.assert_array_equal(out["ismax"], ismax)
    np.testing.assert_array_equal(out["ismin"], ismin)
    # dx with the old rule's selection (bn-spec section 5 before the change)
    sel = np.where(ismax & ~ismin, out["c0p"], np.where(ismin & ~ismax, out["c0m"], out["c0"]))
    t = fp.mul(PB, fp.convert(CB, out["a"], PB), fp.convert(B, dy, PB))
    np.testing.assert_array_equal(out["dx_acc"], fp.sub(PB, t, fp.convert(CB, sel, PB)))
    assert fp.is_nan(F, x).any() and (out["ismax"] & out["ismin"]).any()


def test_checker_catches_a_wrong_rule():
    """The comparison can fail: the LAST occurrence of a tie, or comparing raw words (without
    the comparators' canonicalization), flags other elements on these inputs."""
    fmt = FloatFormat(2, 1, subnormals=False)
    x = np.array(list(itertools.product(range(16), repeat=3))).T.astype(fmt.dtype)
    starts, lengths = np.array([0]), np.array([3])
    amax, _ = old_positions(fmt, x, starts, lengths)
    ismax, _ = new_flags(fmt, x, starts, lengths)
    ref = np.arange(3)[:, None] == amax.T[[0, 0, 0]]
    assert (ismax == ref).all()
    cfg = SimpleNamespace(fwd_fmt=fmt, chunks=1)
    mx, _ = bn._chunk_extrema_loop(bn._Ops(), cfg, x, starts, lengths)
    last = (fp.max(fmt, x, x) == mx[[0, 0, 0]])[::-1]
    last = (np.cumsum(last, axis=0) == 1) & last
    assert not (last[::-1] == ref).all()                          # last occurrence of a tie
    raw = x == mx[[0, 0, 0]]
    raw = (np.cumsum(raw, axis=0) == 1) & raw
    assert not (raw == ref).all()                                 # FTZ subnormal vs its zero
