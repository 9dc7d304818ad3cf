"""The compiled fast path (golden/fastfp.py) gives the same bits as the NumPy golden model.

* the scalar add/max/min kernels against fp.add/fp.max/fp.min: exhaustively on every pair of
  small formats (both roundings, with and without subnormals), and on random and corner
  operand pairs (golden.vectors) of every format a BN preset uses;
* the BN model with the fast path against its NumPy loops (``LIGHTNORM_GOLDEN_FAST=0``), for
  every preset and gradient form, on stream bit patterns that include NaN, Inf, subnormals and
  zeros, and on layer data with unequal chunks: every output word, position and op count.
"""

import numpy as np
import pytest

from lightnorm.golden import bn, fastfp, fp
from lightnorm.golden.bnconfig import BN_PRESETS
from lightnorm.golden.formats import FloatFormat
from lightnorm.golden.vectors import corners, random_bits, random_pairs

pytestmark = pytest.mark.skipif(not fastfp.AVAILABLE, reason="numba is not installed")


def _preset_formats():
    fmts = {}
    for cfg in BN_PRESETS.values():
        # data, op, constant and accumulator formats, and the wide sum formats W (up to 52 bits)
        for f in (cfg.fwd_fmt, cfg.bwd_fmt, cfg.fwd_op, cfg.bwd_op, cfg.fwd_const,
                  cfg.bwd_const, cfg.fwd_acc_fmt, cfg.bwd_acc_fmt, cfg.fwd_sum_fmt,
                  cfg.bwd_sum_fmt):
            fmts[f.name] = f
    return list(fmts.values())


SMALL = [FloatFormat(e, m, rounding=r, subnormals=s)
         for e, m in ((2, 1), (3, 2), (4, 3), (5, 2)) for r in ("rne", "rtz") for s in (True, False)]


@pytest.mark.parametrize("fmt", SMALL, ids=lambda f: f.name)
def test_kernels_exhaustive_small_formats(fmt):
    n = 1 << fmt.width
    a, b = (v.ravel() for v in np.meshgrid(np.arange(n), np.arange(n)))
    for op in ("add", "max", "min"):
        ref = getattr(fp, op)(fmt, a, b)
        got = getattr(fastfp, op)(fmt, a, b)
        assert got.dtype == ref.dtype
        bad = np.flatnonzero(got != ref)
        assert bad.size == 0, f"{op}: {a[bad[:4]]} {b[bad[:4]]} -> {got[bad[:4]]} != {ref[bad[:4]]}"


@pytest.mark.parametrize("fmt", _preset_formats(), ids=lambda f: f.name)
def test_kernels_random_and_corners_preset_formats(fmt):
    rng = np.random.default_rng(5)
    c = corners(fmt).astype(np.int64)
    ca, cb = (v.ravel() for v in np.meshgrid(c, c))
    ra, rb = random_pairs(fmt, 100_000, rng)
    xa, xb = random_bits(fmt, 50_000, rng), random_bits(fmt, 50_000, rng)
    a = np.concatenate([ca, np.asarray(ra, np.int64), np.asarray(xa, np.int64)])
    b = np.concatenate([cb, np.asarray(rb, np.int64), np.asarray(xb, np.int64)])
    for op in ("add", "max", "min"):
        ref = getattr(fp, op)(fmt, a, b)
        got = getattr(fastfp, op)(fmt, a, b)
        bad = np.flatnonzero(got != ref)
        assert bad.size == 0, f"{op}: {a[bad[:4]]} {b[bad[:4]]} -> {got[bad[:4]]} != {ref[bad[:4]]}"


@pytest.mark.parametrize("fmt", [BN_PRESETS["lightnorm"].fwd_acc_fmt,
                                 BN_PRESETS["lightnorm"].fwd_sum_fmt,
                                 BN_PRESETS["fp32_bn"].fwd_sum_fmt], ids=lambda f: f.name)
def test_seq_add_matches_fp_loop(fmt):
    rng = np.random.default_rng(1)
    terms = random_bits(fmt, 300 * 6, rng).reshape(300, 2, 3)
    acc = np.zeros((2, 3), dtype=fmt.dtype)
    for p in range(terms.shape[0]):
        acc = fp.add(fmt, acc, terms[p])
    np.testing.assert_array_equal(fastfp.seq_add(fmt, terms), acc)
    with pytest.raises(ValueError, match="outside"):
        fastfp.seq_add(fmt, np.full((3, 1), 1 << fmt.width))


CONFIGS = {f"{name}/{g}": cfg.replace(grad=g)
           for name, cfg in BN_PRESETS.items()
           for g in (("range", "bn") if cfg.algorithm == "range" else ("bn",))}


def _run(cfg, x, dy, gamma, beta):
    ops = bn._Ops()
    fwd = bn.forward(cfg, x, gamma, beta, ops=ops)
    bwd = bn.backward(cfg, dy, gamma, fwd, ops=ops)
    return fwd, bwd, ops.counts


def _run_stream(cfg, xb, dyb, gamma, beta):
    f = bn.forward_stream(cfg, xb, gamma, beta)
    b = bn.backward_stream(cfg, xb, dyb, gamma, f["mu"], f["s"])
    return f, b


def _assert_same_dict(got, ref):
    assert got.keys() == ref.keys()
    for k in ref:
        if isinstance(ref[k], np.ndarray):
            assert got[k].dtype == ref[k].dtype, k
            np.testing.assert_array_equal(got[k], ref[k], err_msg=k)
        else:
            assert got[k] == ref[k], k


@pytest.mark.parametrize("name", list(CONFIGS))
def test_bn_model_fast_equals_loops(name, monkeypatch):
    cfg = CONFIGS[name]
    rng = np.random.default_rng(7)
    c = 2 * cfg.lanes
    # Layer level: m = 3 * 7 * 5 = 105 positions, not a multiple of K (unequal chunks);
    # channels of very different scales, one constant channel (zero-spread rule).
    x = rng.standard_normal((3, c, 7, 5)) * np.logspace(-3, 3, c)[None, :, None, None]
    x[:, 1] = 0.25
    dy = rng.standard_normal(x.shape)
    gamma, beta = rng.uniform(0.5, 2, c), rng.uniform(-1, 1, c)
    # Stream level: arbitrary bit patterns (NaN, Inf, subnormals, zeros, huge values).
    m = 203
    xb = random_bits(cfg.fwd_fmt, m * c, rng).reshape(m, c)
    dyb = random_bits(cfg.bwd_fmt, m * c, rng).reshape(m, c)
    gb = fp.encode(cfg.fwd_acc_fmt, gamma)
    bb = fp.encode(cfg.fwd_acc_fmt, beta)

    assert fastfp.enabled()
    fast = _run(cfg, x, dy, gamma, beta)
    fast_s = _run_stream(cfg, xb, dyb, gb, bb)
    monkeypatch.setenv("LIGHTNORM_GOLDEN_FAST", "0")
    assert not fastfp.enabled()
    ref = _run(cfg, x, dy, gamma, beta)
    ref_s = _run_stream(cfg, xb, dyb, gb, bb)

    (ff, fb, fc), (rf, rb, rc) = fast, ref
    for k in ("x_bits", "y_acc"):
        np.testing.assert_array_equal(getattr(ff, k), getattr(rf, k), err_msg=k)
    _assert_same_dict(ff.stats, rf.stats)
    assert (ff.y_beats == rf.y_beats).all()
    for k in ("dx_acc", "dgamma_bits", "dbeta_bits"):
        np.testing.assert_array_equal(getattr(fb, k), getattr(rb, k), err_msg=k)
    _assert_same_dict(fb.internals, rb.internals)
    assert (fb.dx_beats == rb.dx_beats).all()
    assert fc == rc                                    # the energy model's op counts
    for got, want in zip(fast_s, ref_s):
        _assert_same_dict({k: v for k, v in got.items() if k != "consts"},
                          {k: v for k, v in want.items() if k != "consts"})
    # The stream test exercised special operands (otherwise it would prove little).
    assert fp.is_nan(cfg.fwd_fmt, xb).any() and fp.is_nan(cfg.fwd_acc_fmt, ref_s[0]["sum"]).any()
