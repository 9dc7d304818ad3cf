"""Smoke tests of the numerics study: tiny sizes, every part end to end, plus the checks the full
study rests on (NumPy layer gradients, the BN adapters against the float64 reference, the
lock-step batching of seeds).  The full study is ``make study``."""

import csv
import math

import numpy as np
import pytest

from lightnorm.golden import reference
from lightnorm.golden.bnconfig import FP32_BN, LIGHTNORM
from lightnorm.study import bnerror, nn, sigma, train


def _nchw(x2):
    """(m, C) stream-order matrix -> NCHW (m, C, 1, 1), the layout the golden API takes."""
    return np.asarray(x2)[:, :, None, None]


# -- NumPy network ---------------------------------------------------------------------------
def test_layer_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    net = nn.build_cnn(nn.FloatBN, rng, widths=(2, 3), dtype=np.float64, classes=5)
    # Move BN away from gamma = 1, beta = 0 so their gradients are generic.
    for layer, name in net.parameters():
        if name in ("gamma", "beta"):
            layer.params[name] += rng.uniform(-0.5, 0.5, layer.params[name].shape)
    x = rng.standard_normal((5, 8, 8, 1))
    y = rng.integers(0, 5, 5)

    def loss():
        return nn.softmax_cross_entropy(net.forward(x), y)[0]

    _, d = nn.softmax_cross_entropy(net.forward(x), y)
    dx = net.backward(d)
    h = 1e-6
    checked = 0
    for target, grad in [(layer.params[n], layer.grads[n]) for layer, n in net.parameters()] + \
            [(x, dx)]:
        grad = grad.copy()
        num = np.zeros_like(target)
        for i in np.ndindex(target.shape):
            old = target[i]
            target[i] = old + h
            lp = loss()
            target[i] = old - h
            lm = loss()
            target[i] = old
            num[i] = (lp - lm) / (2 * h)
        scale = max(np.abs(num).max(), 1e-8)
        assert np.abs(num - grad).max() / scale < 1e-5
        checked += target.size
    assert checked > 200


def test_maxpool_routes_gradient_to_first_maximum():
    pool = nn.MaxPool2()
    x = np.zeros((1, 2, 2, 1))
    x[0, 1, 0, 0] = 3.0
    x[0, 1, 1, 0] = 3.0          # tie: the gradient goes to the first maximum in row order
    assert pool.forward(x)[0, 0, 0, 0] == 3.0
    g = pool.backward(np.ones((1, 1, 1, 1)))
    assert g[0, 1, 0, 0] == 1.0 and g.sum() == 1.0


def test_float_bn_matches_float64_reference():
    rng = np.random.default_rng(1)
    x = 0.5 + 2 * rng.standard_normal((64, 6))
    dy = rng.standard_normal((64, 6))
    gamma, beta = rng.uniform(0.5, 1.5, 6), rng.normal(0, 0.5, 6)
    be = nn.FloatBN()
    y, mu, sig = be.forward(x, gamma, beta)
    dx, dg, db = be.backward(dy)
    y_ref, cache = reference.bn_forward(_nchw(x), gamma, beta)
    dx_ref, dg_ref, db_ref = reference.bn_backward(_nchw(dy), gamma, cache)
    np.testing.assert_allclose(y, y_ref[:, :, 0, 0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, dx_ref[:, :, 0, 0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dg, dg_ref, rtol=1e-12)
    np.testing.assert_allclose(db, db_ref, rtol=1e-12)
    np.testing.assert_allclose(sig, 1 / cache["s"], rtol=1e-12)


# -- golden-model adapter ----------------------------------------------------------------------
def test_golden_fp32_adapter_agrees_with_float_bn():
    """The adapter's layout handling: FP32 golden BN is float64 BN to ~1e-6."""
    rng = np.random.default_rng(2)
    x = (0.5 + 2 * rng.standard_normal((32, 8))).astype(np.float32)
    dy = rng.standard_normal((32, 8)).astype(np.float32)
    gamma, beta = rng.uniform(0.5, 1.5, 8), rng.normal(0, 0.5, 8)
    gold, ref = train.GoldenBN(FP32_BN), nn.FloatBN()
    y, mu, sig = gold.forward(x, gamma, beta)
    y_ref, mu_ref, sig_ref = ref.forward(x.astype(np.float64), gamma, beta)
    dx, dg, db = gold.backward(dy)
    dx_ref, dg_ref, db_ref = ref.backward(dy.astype(np.float64))
    for got, want in ((y, y_ref), (mu, mu_ref), (sig, sig_ref), (dx, dx_ref), (dg, dg_ref),
                      (db, db_ref)):
        assert np.abs(got - want).max() <= 1e-5 * max(np.abs(want).max(), 1.0)


def test_lockstep_batching_is_bit_identical_for_golden_bn():
    """Concatenating the channels of two networks in one golden call changes no bit."""
    rng = np.random.default_rng(3)
    xs = [rng.standard_normal((32, 8)) for _ in range(2)]
    dys = [rng.standard_normal((32, 8)) * 1e-2 for _ in range(2)]
    gs = [rng.uniform(0.5, 1.5, 8) for _ in range(2)]
    bs = [rng.normal(0, 0.5, 8) for _ in range(2)]
    joint = train.GoldenBN(LIGHTNORM)
    y, mu, sig = joint.forward(np.concatenate(xs, 1), np.concatenate(gs), np.concatenate(bs))
    dx, dg, db = joint.backward(np.concatenate(dys, 1))
    for k in range(2):
        one = train.GoldenBN(LIGHTNORM)
        y1, mu1, sig1 = one.forward(xs[k], gs[k], bs[k])
        dx1, dg1, db1 = one.backward(dys[k])
        sl = slice(8 * k, 8 * k + 8)
        for a, b in ((y[:, sl], y1), (mu[sl], mu1), (sig[sl], sig1), (dx[:, sl], dx1),
                     (dg[sl], dg1), (db[sl], db1)):
            np.testing.assert_array_equal(a, b)


# -- part 1: range sigma --------------------------------------------------------------------
def test_gaussian_expected_range_closed_form():
    assert sigma.gaussian_expected_range(2) == pytest.approx(2 / math.sqrt(math.pi), rel=1e-8)
    assert sigma.gaussian_expected_range(3) == pytest.approx(3 / math.sqrt(math.pi), rel=1e-8)


def test_range_sigma_matches_reference_range_bn():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 256))
    for k in (1, 8, 16):
        _, cache = reference.range_bn_forward(x.T[:, :, None, None], np.ones(3), np.zeros(3),
                                              eps=0.0, chunks=k)
        np.testing.assert_allclose(sigma.range_sigma(x, k), cache["sigma"], rtol=1e-12)
    with pytest.raises(ValueError, match="multiple of K"):
        sigma.range_sigma(x[:, :100], 8)


def test_sigma_study_small(tmp_path):
    rows = sigma.run_sigma_study(str(tmp_path), sizes=(64, 1024), budget=100_000, min_reps=100,
                                 max_reps=400)
    assert (tmp_path / "sigma.png").stat().st_size > 0
    assert len(list(csv.DictReader(open(tmp_path / "sigma.csv")))) == len(rows) == 4 * 2 * 3
    for r in rows:
        if r["distribution"] == "gaussian":
            # Monte-Carlo mean of sigma_hat / sigma on the quadrature curve C * d2(m/K).
            se = r["ratio_pop_std"] / math.sqrt(r["reps"])
            assert abs(r["ratio_pop_mean"] - r["gaussian_theory"]) < 5 * se + 1e-3


# -- part 2: BN error --------------------------------------------------------------------------
def test_error_study_presets_small(tmp_path):
    rows = bnerror.run_error_study(str(tmp_path), jobs=1, kinds=("standard",),
                                   shape=(2, 16, 4, 4), sweep=False, sizes=((4, 16, 4, 4),))
    by = {r["point"]: r for r in rows if r["group"] == "preset"}
    names = {n for n in train.training_configs() if n != "float32"}
    assert set(by) == names and all(r["m"] == 32 for r in by.values())
    size = {r["point"]: r for r in rows if r["group"] == "size"}
    assert set(size) == names and all(r["m"] == 64 for r in size.values())
    assert len(rows) == 2 * len(names)
    for o in bnerror.OUTPUTS:
        assert by["fp32_bn/bn"][f"same_{o}_rel_rms"] < 1e-5
        assert by["bf16_bn/bn"][f"same_{o}_rel_rms"] < 3e-2
        assert 1e-3 < by["lightnorm/range"][f"same_{o}_rel_rms"] < 0.5
    assert all(r["nan_outputs"] == 0 for r in rows)
    assert (tmp_path / "bn_errors.png").stat().st_size > 0


def test_error_study_covers_realistic_layer_sizes():
    """Part 2 measures the presets at m >= 25,000 (issue 9) and only at sizes every preset
    accepts, with whole BFP groups of channels."""
    from lightnorm.golden.bnconfig import BN_PRESETS
    ms = [n * h * w for n, c, h, w in bnerror.SIZE_SHAPES]
    assert max(ms) >= 25_000 and 25_088 in ms
    for cfg in BN_PRESETS.values():
        assert max(ms) <= cfg.max_m
        groups = {b.group for b in (cfg.x_bfp, cfg.y_bfp, cfg.dy_bfp, cfg.dx_bfp) if b}
        assert all(c % g == 0 for _, c, _, _ in bnerror.SIZE_SHAPES for g in groups)


def test_error_sweep_records_rejected_configs():
    pts = {(g, l): b for g, l, b in bnerror.sweep_points()}
    assert len(pts) == 4 * 6 + 5 + 6 + 7 + 6
    # LightNorm's reference point is in the sweep and builds for both roundings.
    assert pts["bfp_group", "G8"]("rtz") == LIGHTNORM
    row = bnerror.measure_point(("x", "y", "eps rounds to zero", "rne", "standard", None))
    assert row["valid"] is False and "eps" in row["note"]


# -- part 3: training ----------------------------------------------------------------------------
def test_float32_training_learns_above_chance():
    data = train.load_digits_split()
    recs, _ = train.train_config("float32", None, (0,), data, epochs=1)
    assert recs[-1]["test_acc"] > 0.6          # chance is 0.1


def test_golden_training_and_study_outputs(tmp_path):
    data = train.load_digits_split()
    cfg = train.training_configs(["lightnorm/range"])["lightnorm/range"]
    recs, _ = train.train_config("lightnorm/range", cfg, (0, 1), data, epochs=1, batch=8,
                                 max_steps=2)
    assert len(recs) == 2 and all(np.isfinite(r["train_loss"]) for r in recs)
    res = train.run_training_study(str(tmp_path), configs=["float32"], seeds=(0, 1), jobs=1,
                                   epochs=2, max_steps=3)
    assert res["summary"][0]["diff_vs_float32_pp"] == 0
    for f in ("train_curves.csv", "train_summary.csv", "train.json", "train.png"):
        assert (tmp_path / f).stat().st_size > 0
    with pytest.raises(ValueError, match="unknown training configuration"):
        train.training_configs(["lightnorm/bogus"])


def test_sweep_points_as_training_configs():
    # The extra training runs of docs/study.md name part-2 sweep points.
    cfgs = train.training_configs(["float32", "sweep/bfp_group/G8/rtz", "sweep/acc_extra/+2/rne"])
    assert cfgs["sweep/bfp_group/G8/rtz"] == LIGHTNORM
    acc = cfgs["sweep/acc_extra/+2/rne"]
    assert acc.rounding == "rne" and acc.fwd_acc_fmt.man_bits == LIGHTNORM.fwd_fmt.man_bits + 2
    assert not any(n.startswith("sweep/") for n in train.training_configs())   # not default
    for bad in ("sweep/acc_extra/+3/rtz", "sweep/acc_extra"):
        with pytest.raises(ValueError, match="sweep"):
            train.training_configs([bad])
