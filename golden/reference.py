"""Float64 reference batch normalization: the yardstick for the golden model's error.

* :func:`bn_forward` / :func:`bn_backward`: PyTorch ``BatchNorm2d`` training semantics (batch
  statistics over N, H, W; biased variance for the normalization), closed-form backward.
* :func:`range_bn_forward` / :func:`range_bn_backward`: range BN (Banner et al. 2018 as used by
  LightNorm) with the same chunking as the hardware (docs/bn-spec.md section 3): sigma_hat =
  Cr/K * sum over chunks of (max - min), s = 1/(sigma_hat + eps); backward in both gradient
  forms, ``"bn"`` (the standard formula with sigma_hat) and ``"range"`` (the exact gradient
  through the chunk argmax/argmin, first occurrence on ties).

All functions take and return NCHW float64 arrays and per-channel (C,) vectors.  No rounding
anywhere: these are the mathematical definitions the low-precision hardware approximates.
"""

import math

import numpy as np

__all__ = ["bn_forward", "bn_backward", "range_bn_forward", "range_bn_backward",
           "range_chunks", "range_constant"]


def _layer(name, x):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 4:
        raise ValueError(f"{name} must be NCHW (4 dimensions), not shape {x.shape}")
    return x


def _chan(v):
    return np.asarray(v, dtype=np.float64)[None, :, None, None]


def bn_forward(x, gamma, beta, eps=1e-5):
    """BatchNorm2d training forward.

    Returns
    -------
    y : ndarray (N, C, H, W)
    cache : dict
        ``mu, var`` (biased), ``s = 1/sqrt(var + eps)``, ``xhat``, ``m``.
    """
    x = _layer("x", x)
    m = x.shape[0] * x.shape[2] * x.shape[3]
    mu = x.mean(axis=(0, 2, 3))
    var = ((x - _chan(mu)) ** 2).mean(axis=(0, 2, 3))
    s = 1.0 / np.sqrt(var + eps)
    xhat = (x - _chan(mu)) * _chan(s)
    y = _chan(gamma) * xhat + _chan(beta)
    return y, {"mu": mu, "var": var, "s": s, "xhat": xhat, "m": m}


def bn_backward(dy, gamma, cache):
    """BatchNorm2d backward (closed form): ``dx = a*(dy - dbeta/m - xhat*dgamma/m)``, a = gamma*s.

    Returns
    -------
    dx : ndarray (N, C, H, W)
    dgamma, dbeta : ndarray (C,)
    """
    dy = _layer("dy", dy)
    xhat, m = cache["xhat"], cache["m"]
    dbeta = dy.sum(axis=(0, 2, 3))
    dgamma = (dy * xhat).sum(axis=(0, 2, 3))
    a = np.asarray(gamma, dtype=np.float64) * cache["s"]
    dx = _chan(a) * (dy - _chan(dbeta) / m - xhat * _chan(dgamma) / m)
    return dx, dgamma, dbeta


def range_chunks(m, chunks):
    """Chunk boundaries of the hardware: lengths ``m//K + 1`` for the first ``m % K`` chunks,
    ``m//K`` for the rest.  Returns a list of (start, stop)."""
    q, r = divmod(m, chunks)
    out, start = [], 0
    for j in range(chunks):
        stop = start + q + (1 if j < r else 0)
        out.append((start, stop))
        start = stop
    return out


def range_constant(m, chunks):
    """``Cr = 1/sqrt(2 ln(m/K))``: expected range of m/K Gaussian samples is about sigma/Cr."""
    return 1.0 / math.sqrt(2.0 * math.log(m / chunks))


def range_bn_forward(x, gamma, beta, eps=1e-5, chunks=8):
    """Range-BN training forward in float64.

    Positions are taken in (n, h, w) order (the stream order) and split into ``chunks``
    consecutive chunks.  A channel with zero range gets s = 0 (the hardware's zero-spread rule,
    docs/bn-spec.md section 4); ``eps`` is added to sigma_hat otherwise.

    Returns
    -------
    y : ndarray (N, C, H, W)
    cache : dict
        ``mu, sigma, s, xhat, m, ck`` (= Cr/K) and ``amax, amin`` (C, K) positions.
    """
    x = _layer("x", x)
    n, c, h, w = x.shape
    m = n * h * w
    if m < 2 * chunks:
        raise ValueError(f"m must be at least 2*chunks ({2 * chunks}) for range BN, not {m}")
    xs = x.transpose(0, 2, 3, 1).reshape(m, c)
    mu = xs.mean(axis=0)
    amax = np.empty((c, chunks), dtype=np.int64)
    amin = np.empty((c, chunks), dtype=np.int64)
    total = np.zeros(c)
    for j, (lo, hi) in enumerate(range_chunks(m, chunks)):
        amax[:, j] = lo + np.argmax(xs[lo:hi], axis=0)     # argmax: first occurrence
        amin[:, j] = lo + np.argmin(xs[lo:hi], axis=0)
        total += xs[lo:hi].max(axis=0) - xs[lo:hi].min(axis=0)
    ck = range_constant(m, chunks) / chunks
    sigma = ck * total
    with np.errstate(divide="ignore"):
        s = np.where(total == 0, 0.0, 1.0 / (sigma + eps))
    xhat = (x - _chan(mu)) * _chan(s)
    y = _chan(gamma) * xhat + _chan(beta)
    return y, {"mu": mu, "sigma": sigma, "s": s, "xhat": xhat, "m": m, "ck": ck,
               "amax": amax, "amin": amin}


def range_bn_backward(dy, gamma, cache, grad="range"):
    """Range-BN backward in float64.

    Parameters
    ----------
    dy : array (N, C, H, W)
    gamma : array (C,)
    cache : dict
        From :func:`range_bn_forward`.
    grad : str
        ``"bn"``: ``dx = a*(dy - dbeta/m - xhat*dgamma/m)``;
        ``"range"``: the exact gradient of range BN,
        ``dx = a*(dy - dbeta/m) - a*dgamma*(Cr/K)*(is_argmax - is_argmin)``.

    Returns
    -------
    dx, dgamma, dbeta
    """
    if grad not in ("bn", "range"):
        raise ValueError(f"grad must be 'bn' or 'range', not {grad!r}")
    dy = _layer("dy", dy)
    n, c, h, w = dy.shape
    xhat, m = cache["xhat"], cache["m"]
    dbeta = dy.sum(axis=(0, 2, 3))
    dgamma = (dy * xhat).sum(axis=(0, 2, 3))
    a = np.asarray(gamma, dtype=np.float64) * cache["s"]
    if grad == "bn":
        dx = _chan(a) * (dy - _chan(dbeta) / m - xhat * _chan(dgamma) / m)
        return dx, dgamma, dbeta
    ind = np.zeros((m, c))
    cols = np.arange(c)
    for j in range(cache["amax"].shape[1]):
        ind[cache["amax"][:, j], cols] += 1.0
        ind[cache["amin"][:, j], cols] -= 1.0
    ind = ind.reshape(n, h, w, c).transpose(0, 3, 1, 2)
    dx = (_chan(a) * (dy - _chan(dbeta) / m)
          - _chan(a * dgamma * cache["ck"]) * ind)
    return dx, dgamma, dbeta
