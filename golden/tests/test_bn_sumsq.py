"""The one-pass conventional forward (``BNConfig.variance == "sumsq"``, docs/bn-spec.md section 4,
"One-pass variance"): configuration rules, bit-exactness against an independent float32
evaluation, closeness to the float64 reference, the documented error bound of
``var = max(E[x^2] - mu^2, +0)`` and its cancellation when |mu| >> sigma, the clamp, specials.
"""

import numpy as np
import pytest

from lightnorm.golden import bn, fp, reference as ref
from lightnorm.golden.bnconfig import (BN_PRESETS, SUMSQ_PRESETS, FP32_BN, BF16_BN,
                                       FP32_BN_SUMSQ, BF16_BN_SUMSQ, LIGHTNORM, VARIANCES)
from lightnorm.golden.formats import FloatFormat

from test_bn_reference import acc32, layer, rel_rms, sum32  # golden/tests/test_bn_reference.py


def unit_roundoff(fmt):
    """``u``: |round(v) - v| <= u |v| in ``fmt`` (normal range): 2^-p (rne), 2^(1-p) (rtz)."""
    return 2.0 ** (-fmt.precision + (fmt.rounding == "rtz"))


def offset_layer(ratio, seed=4, c=16, shape=(2, 6, 5)):
    """Channels with sigma = 2^-3..2^3 and mean +-ratio * sigma (float64, NCHW)."""
    rng = np.random.default_rng(seed)
    sigma = 2.0 ** rng.uniform(-3, 3, c)
    mu = ratio * sigma * rng.choice([-1, 1], c)
    x = rng.standard_normal((shape[0], c, *shape[1:])) * sigma[None, :, None, None]
    return x + mu[None, :, None, None]


# -- configuration ------------------------------------------------------------------------------
def test_variance_option_config():
    assert VARIANCES == ("centered", "sumsq")
    for cfg in BN_PRESETS.values():                  # the presets keep the two-pass variance
        assert cfg.variance == "centered"
    assert FP32_BN.forward_passes == 3 and FP32_BN_SUMSQ.forward_passes == 2
    assert FP32_BN_SUMSQ == FP32_BN.replace(variance="sumsq")
    assert BF16_BN_SUMSQ == BF16_BN.replace(variance="sumsq")
    assert set(SUMSQ_PRESETS) == {"fp32_bn_sumsq", "bf16_bn_sumsq"}
    assert not set(SUMSQ_PRESETS) & set(BN_PRESETS)
    # the name tells them apart; the existing names are unchanged
    assert FP32_BN_SUMSQ.name == FP32_BN.name.replace("_g8k8", "_sq_g8k8")
    assert "_sq" not in FP32_BN.name and "_sq" not in LIGHTNORM.name
    assert FP32_BN_SUMSQ.as_dict()["variance"] == "sumsq"
    # the squares are P terms in the dgamma accumulator: its exact register covers them
    t = BF16_BN_SUMSQ.replace(sum_mode="exact").sum_term_fmts()
    assert t["f"] == [BF16_BN.fwd_fmt] and t["g"] == [BF16_BN.fwd_op, BF16_BN.bwd_op]


@pytest.mark.parametrize("changes, match", [
    (dict(variance="onepass"), "variance must be one of"),
    (dict(variance="sumsq", algorithm="range", grad="range"), "variance 'sumsq' needs algorithm"),
    # wide sums of x*x in the dgamma accumulator need AB = A
    (dict(variance="sumsq", bwd_acc_fmt=FloatFormat(9, 16)), "bwd_acc_fmt .* must equal"),
    # PB must hold P
    (dict(variance="sumsq", sum_mode="exact", fwd_op_fmt=FloatFormat(8, 9),
          fwd_acc_fmt=FloatFormat(9, 16)), "bwd_op_fmt .* must hold every value of fwd_op_fmt"),
])
def test_variance_option_validation(changes, match):
    with pytest.raises(ValueError, match=match):
        BF16_BN.replace(**changes)


def test_variance_sumsq_overflow_rule():
    """The sum of squares (P terms) must not overflow A at max_m, like the variance sum: E9M7
    op formats in BF16_BN's E9M15 accumulators overflow either form, each message naming its
    sum."""
    E9M7 = FloatFormat(9, 7)
    wide_ops = dict(fwd_op_fmt=E9M7, bwd_op_fmt=E9M7, fwd_const_fmt=E9M7, bwd_const_fmt=E9M7)
    with pytest.raises(ValueError, match="fwd_acc_fmt .* overflows on the sum of squares"):
        BF16_BN.replace(variance="sumsq", **wide_ops)
    with pytest.raises(ValueError, match="fwd_acc_fmt .* overflows on the variance sum"):
        BF16_BN.replace(**wide_ops)


# -- bits ---------------------------------------------------------------------------------------
def test_fp32_sumsq_matches_numpy_float32_sequence():
    """An independent float32 evaluation of the one-pass forward (bn-spec section 4) gives the
    same bits; the backward is the conventional one."""
    f32 = np.float32
    x, dy, gamma, beta = layer(shape=(2, 8, 3, 5), seed=5)
    cfg = FP32_BN_SUMSQ
    fwd = bn.forward(cfg, x, gamma, beta)
    bwd = bn.backward(cfg, dy, gamma, fwd)
    xs = bn.layer_to_stream(x).astype(f32)
    m = xs.shape[0]
    inv_m = f32(1.0 / m)
    mu = sum32(xs) * inv_m
    e2 = sum32(xs * xs) * inv_m
    var = np.maximum(e2 - mu * mu, f32(0))
    s = f32(1) / np.sqrt(var + f32(cfg.eps))
    a = gamma.astype(f32) * s
    b = beta.astype(f32) - mu * a
    y = a * xs + b
    np.testing.assert_array_equal(fwd.stats["mu"], mu.view(np.uint32))
    np.testing.assert_array_equal(acc32(cfg, fwd.stats["sig"]), var)
    np.testing.assert_array_equal(fwd.stats["s"], s.view(np.uint32))
    np.testing.assert_array_equal(bn.layer_to_stream(fwd.y), y)
    # the backward is the conventional one, from this forward's mu and s
    dys = bn.layer_to_stream(dy).astype(f32)
    ga = gamma.astype(f32)
    d = xs - mu
    dgamma = sum32(dys * (d * s))
    dbeta = sum32(dys)
    a2 = ga * s
    dx = (a2 * dys - a2 * (dbeta * inv_m)) - ((a2 * s) * (dgamma * inv_m)) * d
    np.testing.assert_array_equal(acc32(cfg, bwd.dgamma_bits), dgamma)
    np.testing.assert_array_equal(acc32(cfg, bwd.dbeta_bits), dbeta)
    np.testing.assert_array_equal(bn.layer_to_stream(bwd.dx), dx)


def test_sumsq_op_counts():
    """Pass 1 squares x in P and adds the squares in W; no variance pass."""
    cfg = FP32_BN_SUMSQ
    counts = bn.op_counts(cfg, m=16)
    assert "fwd_pass3" not in counts
    assert counts["fwd_pass1"]["mul e8m23"] == 1 and counts["fwd_pass1"]["add e9m42"] == 2
    assert counts["fwd_pass2"] == bn.op_counts(FP32_BN, m=16)["fwd_pass3"]


# -- accuracy -----------------------------------------------------------------------------------
@pytest.mark.parametrize("cfg, bounds", [
    (FP32_BN_SUMSQ, dict(y=1e-6, dx=1e-5, dgamma=1e-5, dbeta=1e-5)),
    (BF16_BN_SUMSQ, dict(y=0.01, dx=0.01, dgamma=0.01, dbeta=0.01)),
], ids=["fp32_bn_sumsq", "bf16_bn_sumsq"])
def test_sumsq_close_to_float64_reference(cfg, bounds):
    """On the data of the centered presets' tests (mean 0.5, sigma 2) the one-pass unit meets
    the same bounds (test_bn_reference: FP32_BN 1e-6 / 1e-5, BF16_BN 0.01)."""
    x, dy, gamma, beta = layer(shape=(4, 10, 8, 8), seed=9)
    fwd = bn.forward(cfg, x, gamma, beta)
    bwd = bn.backward(cfg, dy, gamma, fwd)
    y, cache = ref.bn_forward(x, gamma, beta, cfg.eps)
    dx, dg, db = ref.bn_backward(dy, gamma, cache)
    got = dict(y=rel_rms(fwd.y, y), dx=rel_rms(bwd.dx, dx), dgamma=rel_rms(bwd.dgamma, dg),
               dbeta=rel_rms(bwd.dbeta, db))
    for key, bound in bounds.items():
        assert got[key] < bound, (key, got)


@pytest.mark.parametrize("name", sorted(SUMSQ_PRESETS))
@pytest.mark.parametrize("ratio", [0, 1, 10, 100, 1000, 1e4, 1e5])
def test_sumsq_variance_within_documented_bound(name, ratio):
    """bn-spec 4, "Numerical cost": |sig - sigma^2| <= (u_P + 9 u_A) (sigma^2 + mu^2) for
    every channel (sigma^2, mu of the F words in float64), whatever mu/sigma is; the clamp
    keeps sig >= +0."""
    cfg = SUMSQ_PRESETS[name]
    x = offset_layer(ratio)
    fwd = bn.forward(cfg, x, np.ones(16), np.zeros(16))
    xq = fp.decode(cfg.fwd_fmt, fp.encode(cfg.fwd_fmt, x))
    var, mu = xq.var(axis=(0, 2, 3)), xq.mean(axis=(0, 2, 3))
    bound = (unit_roundoff(cfg.fwd_op) + 9 * unit_roundoff(cfg.fwd_acc_fmt)) * (var + mu ** 2)
    err = np.abs(fwd.sig[:16] - var)
    assert np.all(err <= bound), (err / bound).max()
    sig_bits = fwd.stats["sig"][:16].astype(np.int64)
    assert np.all(sig_bits & cfg.fwd_acc_fmt.sign_mask == 0)     # never negative, never -0


@pytest.mark.parametrize("base, sumsq, ratio, centered_max, sumsq_min", [
    (FP32_BN, FP32_BN_SUMSQ, 1000, 1e-6, 1e-2),
    (BF16_BN, BF16_BN_SUMSQ, 10, 5e-3, 2e-2),
], ids=["fp32", "bf16"])
def test_sumsq_cancellation_against_centered(base, sumsq, ratio, centered_max, sumsq_min):
    """The expected cost, measured: at mu/sigma = ``ratio`` the centered unit's variance is
    still accurate (relative error < ``centered_max``) while the one-pass unit's has grown with
    (mu/sigma)^2 (worst channel > ``sumsq_min``), and at mu/sigma = 1 both are accurate."""
    def worst(cfg, r):
        x = offset_layer(r)
        xq = fp.decode(cfg.fwd_fmt, fp.encode(cfg.fwd_fmt, x))
        var = xq.var(axis=(0, 2, 3))
        sig = bn.forward(cfg, x, np.ones(16), np.zeros(16)).sig[:16]
        return np.max(np.abs(sig - var) / var)
    assert worst(base, ratio) < centered_max
    assert worst(sumsq, ratio) > sumsq_min
    low = 10 * (unit_roundoff(sumsq.fwd_op) + 9 * unit_roundoff(sumsq.fwd_acc_fmt))
    assert worst(sumsq, 1) < low and worst(base, 1) < low


@pytest.mark.parametrize("name", sorted(SUMSQ_PRESETS))
def test_sumsq_clamp_and_cancelled_channels(name):
    """Far beyond the bound's useful range (mu/sigma = 1e5) some channels' E[x^2] - mu^2 comes
    out negative: sig is then +0 exactly (the zero-spread rule gives s = +0), the others are a
    positive rounding residue, and s never exceeds 1/sqrt(eps) (eps = 1e-5): everything stays
    finite."""
    cfg = SUMSQ_PRESETS[name]
    x = offset_layer(1e5)
    fwd = bn.forward(cfg, x, np.ones(16), np.zeros(16))
    zero = fwd.stats["sig"][:16] == 0
    assert zero.any() and not zero.all()
    assert np.all(fwd.s[:16][zero] == 0)
    assert np.all(np.isfinite(fwd.y)) and np.all(np.isfinite(fwd.s))
    assert np.all(fwd.s <= 1.01 / np.sqrt(cfg.eps))


def test_clamp_keeps_nan_and_maps_negatives_to_plus_zero():
    A = FP32_BN_SUMSQ.fwd_acc_fmt
    words = fp.encode(A, np.array([-1.0, -0.0, 0.0, 2.0, -np.inf, np.inf, np.nan, -1e-40]))
    words = np.concatenate([words, np.array([A.canonical_nan | A.sign_mask],  # signed NaN
                                            dtype=words.dtype)])
    got = bn._clamp_negative(A, words)
    want = np.array([0, 0, 0, words[3], 0, words[5], words[6], 0, words[8]], dtype=A.dtype)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", sorted(SUMSQ_PRESETS))
def test_sumsq_specials_and_padding(name):
    """A NaN or Inf x poisons its channel (sig NaN: the clamp lets NaN through, Inf - Inf),
    the other channels are untouched; padding lanes and all-zero channels give sig = s = +0."""
    cfg = SUMSQ_PRESETS[name]
    x, _, gamma, beta = layer(shape=(2, 10, 4, 4), seed=13)
    x[:, 4] = 0.0
    clean = bn.forward(cfg, x, gamma, beta)
    x[1, 2, 0, 0] = np.nan
    x[0, 6, 1, 1] = np.inf
    fwd = bn.forward(cfg, x, gamma, beta)
    assert np.isnan(fwd.sig[2]) and np.isnan(fwd.sig[6])
    assert np.all(np.isnan(fwd.y[:, 2])) and np.all(np.isnan(fwd.y[:, 6]))
    ok = [c for c in range(10) if c not in (2, 6)]
    np.testing.assert_array_equal(fwd.y[:, ok], clean.y[:, ok])
    assert fwd.sig[4] == 0 and fwd.s[4] == 0
    assert np.all(fwd.y_acc[:, 4] == fwd.y_acc[0, 4])              # y = b_c = beta (in C)
    assert np.all(fwd.stats["sig"][10:] == 0) and np.all(fwd.stats["s"][10:] == 0)
    assert np.all(fwd.y_acc[:, 10:] == 0)


@pytest.mark.parametrize("name", sorted(SUMSQ_PRESETS))
@pytest.mark.parametrize("m_w", [4, 5])
def test_sumsq_constant_channel_defined(name, m_w):
    """A constant channel: with m a power of two (m_w = 4: m = 32) mu and E[x^2] are exact and
    var = +0 (s = +0, y = beta); otherwise (m = 40) 1/m rounds and sig is a rounding residue
    or +0 -- y stays within the output rounding of beta plus that residue's share, and
    nothing is NaN (bn-spec 4, "Numerical cost")."""
    cfg = SUMSQ_PRESETS[name]
    x, dy, gamma, beta = layer(shape=(2, 8, 4, m_w), seed=12)
    x[:, 3] = 1.5
    x[:, 5] = 0.0
    fwd = bn.forward(cfg, x, gamma, beta)
    bwd = bn.backward(cfg, dy, gamma, fwd)
    for v in (fwd.y, bwd.dx, bwd.dgamma, bwd.dbeta, fwd.mu, fwd.sig, fwd.s):
        assert not np.any(np.isnan(v)), name
    assert fwd.sig[5] == 0 and fwd.s[5] == 0
    if m_w == 4:
        assert fwd.sig[3] == 0 and fwd.s[3] == 0
    ymax = np.abs(fwd.y).max()
    for c in (3, 5):
        np.testing.assert_allclose(fwd.y[:, c], beta[c], atol=0.07 * ymax)


@pytest.mark.parametrize("name", sorted(SUMSQ_PRESETS))
def test_sumsq_compiled_and_loop_paths_agree(name, monkeypatch):
    """The one-pass sums run through the same sequential-sum kernel as every wide sum: with
    numba (lightnorm.golden.fastfp) and without it (LIGHTNORM_GOLDEN_FAST=0) the bits agree."""
    from lightnorm.golden import fastfp
    cfg = SUMSQ_PRESETS[name]
    x, _, gamma, beta = layer(shape=(2, 10, 4, 4), seed=15, offset=3.0)
    fast = bn.forward(cfg, x, gamma, beta)
    monkeypatch.setenv("LIGHTNORM_GOLDEN_FAST", "0")
    assert not fastfp.enabled()
    slow = bn.forward(cfg, x, gamma, beta)
    np.testing.assert_array_equal(fast.y_beats, slow.y_beats)
    for key in ("mu", "sig", "s"):
        np.testing.assert_array_equal(fast.stats[key], slow.stats[key])
