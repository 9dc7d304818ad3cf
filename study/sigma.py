"""Part 1: how well does the range estimate stand in for the standard deviation?

Range BN (background note; Banner et al. 2018) replaces the per-channel standard deviation by
``sigma_hat = C * (mean of chunk maxima - mean of chunk minima)`` over ``K`` chunks of consecutive
elements, with ``C = 1 / sqrt(2 ln(m / K))``.  For each data shape this module draws ``reps``
channels of ``m`` elements, computes ``sigma_hat`` in float64 and reports its ratio to

* the channel's own (biased) standard deviation, which is what conventional BN divides by, and
* the population standard deviation of the distribution.

A ratio of 1 means range BN normalizes like BN; a bias b means range BN's outputs are 1/b times
smaller than BN's (a per-layer scale that gamma can learn back); the spread across draws is noise
that gamma cannot absorb.

The constant comes from the float64 reference model (:mod:`lightnorm.golden.reference`); the
vectorized estimator here is checked against ``reference.range_bn_forward`` by the smoke tests,
so this study measures the project's own definition.

For Gaussian data the expected ratio has a closed form: ``C(n) * d2(n)`` with ``n = m / K`` and
``d2(n) = E[range of n standard normal samples]``, computed by quadrature
(:func:`gaussian_expected_range`).  The Monte-Carlo means must sit on that curve, which checks the
simulation itself.
"""

import math

import numpy as np

from .common import write_csv, write_json, pyplot

__all__ = ["DISTRIBUTIONS", "range_constant", "range_sigma", "gaussian_expected_range",
           "run_sigma_study"]


def _relu_sigma():
    # x = max(0, z), z ~ N(0, 1): E[x] = 1/sqrt(2 pi), E[x^2] = 1/2.
    return math.sqrt(0.5 - 1 / (2 * math.pi))


#: name -> (sampler(rng, shape), population standard deviation)
DISTRIBUTIONS = {
    "gaussian": (lambda rng, s: rng.standard_normal(s), 1.0),
    "uniform": (lambda rng, s: rng.uniform(-math.sqrt(3), math.sqrt(3), s), 1.0),
    "laplace": (lambda rng, s: rng.laplace(0.0, 1 / math.sqrt(2), s), 1.0),
    "relu": (lambda rng, s: np.maximum(rng.standard_normal(s), 0.0), _relu_sigma()),
}


def range_constant(m, k):
    """The range-BN constant ``C = 1 / sqrt(2 ln(m / K))``, from the float64 reference model.

    Parameters
    ----------
    m : int
        Elements per channel.
    k : int
        Chunks.
    """
    if m < 2 * k:
        raise ValueError(f"m must be at least 2*K (as in the BN unit), not m={m}, K={k}")
    from lightnorm.golden.reference import range_constant as ref_constant
    return ref_constant(m, k)


def range_sigma(x, k):
    """``sigma_hat`` of each row of ``x`` (shape ``(reps, m)``) with ``k`` consecutive chunks.

    ``m`` must be a multiple of ``k`` here (the study picks such m), so every chunk has the same
    length; then this is the reference's definition (equal ``array_split`` chunks), vectorized
    over rows so that 10^6-element channels stay cheap.
    """
    reps, m = x.shape
    if m % k:
        raise ValueError(f"m must be a multiple of K, not m={m}, K={k}")
    c = x.reshape(reps, k, m // k)
    rng_ = c.max(axis=2).mean(axis=1) - c.min(axis=2).mean(axis=1)
    return range_constant(m, k) * rng_


def gaussian_expected_range(n):
    """``d2(n)``: expected range of ``n`` i.i.d. standard normal samples (numerical quadrature).

    ``E[R] = integral over x of 1 - Phi(x)^n - (1 - Phi(x))^n``.
    """
    from scipy import integrate, special
    f = lambda t: 1 - special.ndtr(t) ** n - special.ndtr(-t) ** n
    val, _ = integrate.quad(f, -12, 12, limit=400, points=[0.0])
    return val


def _reps_for(m, budget, lo, hi):
    return int(min(hi, max(lo, budget // m)))


def run_sigma_study(out, sizes=(64, 256, 1024, 4096, 16384, 65536, 262144, 1_000_000),
                    chunks=(1, 8, 16), budget=40_000_000, min_reps=40, max_reps=1000, seed=1):
    """Monte-Carlo bias and spread of ``sigma_hat / sigma``; writes CSV, JSON and a plot.

    Parameters
    ----------
    out : str
        Output folder (``sigma.csv``, ``sigma.json``, ``sigma.png``).
    sizes : sequence of int
        Elements per channel ``m``; each must be a multiple of every K.
    chunks : sequence of int
        Chunk counts K.
    budget : int
        Samples drawn per (distribution, m): ``reps = clip(budget // m, min_reps, max_reps)``.
    seed : int
        Seed of the NumPy generator.

    Returns
    -------
    list of dict
        One row per (distribution, m, K).
    """
    rng = np.random.default_rng(seed)
    rows = []
    theory = {}
    for dist, (sample, pop_sigma) in DISTRIBUTIONS.items():
        for m in sizes:
            reps = _reps_for(m, budget, min_reps, max_reps)
            # Draw in blocks so m = 10^6 stays within a few tens of MB.
            block = max(1, 10_000_000 // m)
            est = {k: [] for k in chunks}
            sd = []
            for start in range(0, reps, block):
                x = sample(rng, (min(block, reps - start), m))
                sd.append(x.std(axis=1))
                for k in chunks:
                    est[k].append(range_sigma(x, k))
            sd = np.concatenate(sd)
            for k in chunks:
                s_hat = np.concatenate(est[k])
                rb = s_hat / sd
                rp = s_hat / pop_sigma
                n = m // k
                if n not in theory:
                    theory[n] = range_constant(m, k) * gaussian_expected_range(n)
                rows.append({
                    "distribution": dist, "m": m, "K": k, "chunk": n, "C": range_constant(m, k),
                    "reps": reps,
                    "ratio_batch_mean": float(rb.mean()), "ratio_batch_std": float(rb.std()),
                    "ratio_batch_p05": float(np.quantile(rb, 0.05)),
                    "ratio_batch_p95": float(np.quantile(rb, 0.95)),
                    "ratio_pop_mean": float(rp.mean()), "ratio_pop_std": float(rp.std()),
                    "gaussian_theory": theory[n],
                })
    write_csv(f"{out}/sigma.csv", rows)
    write_json(f"{out}/sigma.json", rows)
    _plot(rows, f"{out}/sigma.png", chunks)
    return rows


def _plot(rows, path, chunks):
    plt = pyplot()
    dists = list(DISTRIBUTIONS)
    fig, axes = plt.subplots(1, len(dists), figsize=(4 * len(dists), 3.6), sharey=True)
    for ax, dist in zip(axes, dists):
        for k, color in zip(chunks, ["C0", "C1", "C2", "C3"]):
            r = [x for x in rows if x["distribution"] == dist and x["K"] == k]
            m = [x["m"] for x in r]
            ax.plot(m, [x["ratio_batch_mean"] for x in r], "o-", color=color, label=f"K={k}")
            ax.fill_between(m, [x["ratio_batch_p05"] for x in r],
                            [x["ratio_batch_p95"] for x in r], color=color, alpha=0.2)
            if dist == "gaussian":
                ax.plot(m, [x["gaussian_theory"] for x in r], ":", color="k", lw=1)
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_xscale("log")
        ax.set_title(dist)
        ax.set_xlabel("m (elements per channel)")
    axes[0].set_ylabel("sigma_hat / batch std  (mean, 5-95 %)")
    axes[0].legend()
    fig.suptitle("Range estimate of sigma, C = 1/sqrt(2 ln(m/K)); dotted: Gaussian theory")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
