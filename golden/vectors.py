"""Stimulus for the FP operators: corner-case bit patterns and biased random operands.

The golden tests and the cocotb testbenches draw operands from here, so that every unit sees the
same interesting cases: both zeros, subnormals, the normal/subnormal boundary, Inf, NaN, the
largest finite numbers, exact rounding ties and massive cancellation.

All functions return arrays of ``fmt.dtype`` bit patterns.
"""

import numpy as np

from .formats import FloatFormat

__all__ = ["corners", "random_bits", "random_pairs"]


def _check(fmt, n=None):
    if not isinstance(fmt, FloatFormat):
        raise TypeError(f"fmt must be a FloatFormat, not {fmt!r}")
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0):
        raise ValueError(f"n must be a non-negative integer, not {n!r}")


def _pack(fmt, sign, exp_field, man):
    sign = np.asarray(sign, dtype=np.int64)
    exp_field = np.asarray(exp_field, dtype=np.int64)
    man = np.asarray(man, dtype=np.int64)
    return ((sign << (fmt.width - 1)) | (exp_field << fmt.man_bits) | man).astype(fmt.dtype)


def corners(fmt):
    """Sorted, unique corner-case bit patterns of ``fmt``, both signs.

    Zeros; smallest, second-smallest, largest subnormal; smallest normal and its neighbours;
    1.0 and its neighbours, 1.5, 2.0 - ulp (ties and carries in add/mul); powers of two across
    the range; the largest finite number and its predecessor; 1/2 and 2 times the largest
    finite (overflow boundary); Inf; the canonical NaN and NaNs with other payloads.
    """
    _check(fmt)
    m, top = fmt.man_bits, fmt.exp_all_ones
    full = (1 << m) - 1
    mags = [
        0, 1, 2, 3, full - 1, full,                       # zero, subnormals
        fmt.min_normal, fmt.min_normal + 1, fmt.min_normal + full,
        (fmt.bias << m), (fmt.bias << m) + 1, (fmt.bias << m) - 1,    # 1.0, 1+ulp, 1-ulp/2
        (fmt.bias << m) | (1 << (m - 1)),                 # 1.5
        (fmt.bias << m) + full,                           # 2 - ulp
        ((fmt.bias + 1) << m),                            # 2.0
        ((top - 2) << m), ((top - 2) << m) | full,        # max/2 region
        fmt.max_finite - 1, fmt.max_finite,
        fmt.pos_inf,
        fmt.canonical_nan, fmt.pos_inf | 1, fmt.pos_inf | full,
    ]
    # Powers of two over the whole exponent range (a few, evenly spread).
    mags += [int(e) << m for e in np.unique(np.linspace(1, top - 1, 9).astype(int))]
    mags = np.array(sorted(set(mags)), dtype=np.int64)
    both = np.concatenate([mags, mags | fmt.sign_mask])
    return np.unique(both).astype(fmt.dtype)


def random_bits(fmt, n, rng):
    """``n`` random bit patterns of ``fmt``: uniform patterns mixed with interesting values.

    Mix (by expected fraction): 40 % uniform over all bit patterns; 10 % subnormals; 10 % near
    the overflow boundary (top two finite exponents); 15 % short significands (only the top
    few mantissa bits random, the rest zero, so sums and products hit exact results and exact
    rounding ties); 10 % long runs of mantissa ones or a one followed by zeros (carry
    propagation, values next to ties); 5 % Inf/NaN/zeros; 10 % exponents near the bias.
    Signs are random throughout.

    Parameters
    ----------
    fmt : FloatFormat
    n : int
    rng : numpy.random.Generator
    """
    _check(fmt, n)
    m, top = fmt.man_bits, fmt.exp_all_ones
    full = (1 << m) - 1
    kind = rng.choice(7, size=n, p=[0.40, 0.10, 0.10, 0.15, 0.10, 0.05, 0.10])
    sign = rng.integers(0, 2, n)
    exp = rng.integers(0, top + 1, n)
    man = rng.integers(0, full + 1, n, dtype=np.int64)

    sub = kind == 1
    exp[sub] = 0
    man[sub] = rng.integers(1, full + 1, sub.sum())

    ovf = kind == 2
    exp[ovf] = top - 1 - rng.integers(0, 2, ovf.sum())

    short = kind == 3
    keep = rng.integers(0, min(m, 3) + 1, short.sum())
    exp[short] = rng.integers(1, top, short.sum())
    man[short] = man[short] & ~((np.int64(1) << (m - keep)) - 1) & full

    runs = kind == 4
    r = rng.integers(0, m + 1, runs.sum())
    pattern = np.where(rng.integers(0, 2, runs.sum()) == 1,
                       (np.int64(1) << r) - 1,                         # ...0111
                       (np.int64(1) << np.minimum(r, m - 1)))          # ...1000
    man[runs] = pattern & full
    exp[runs] = rng.integers(1, top, runs.sum())

    spec = kind == 5
    choice = rng.integers(0, 3, spec.sum())
    exp[spec] = np.where(choice == 0, 0, top)
    man[spec] = np.where(choice == 2, rng.integers(1, full + 1, spec.sum()), 0)

    near1 = kind == 6
    span = min(fmt.bias - 1, fmt.precision + 2)
    exp[near1] = fmt.bias + rng.integers(-span, span + 1, near1.sum())

    return _pack(fmt, sign, exp, man)


def random_pairs(fmt, n, rng):
    """``n`` operand pairs ``(a, b)`` aimed at the adder's hard cases.

    Half are independent :func:`random_bits` draws; the other half pair ``a`` with a ``b`` whose
    exponent differs by 0 .. precision+2 (alignment shifts across the guard and sticky bits,
    exact ties at a difference of ``precision``), with random relative sign (massive
    cancellation when the exponents are equal or adjacent) and, in a quarter of them,
    ``b = -a`` or ``b`` one ulp from ``-a``.
    """
    _check(fmt, n)
    a = random_bits(fmt, n, rng).astype(np.int64)
    b = random_bits(fmt, n, rng).astype(np.int64)
    m, top = fmt.man_bits, fmt.exp_all_ones
    close = rng.random(n) < 0.5
    ea = (a >> m) & top
    finite = (ea < top) & close
    d = rng.integers(0, fmt.precision + 3, n)
    eb = np.clip(ea - d, 0, top - 1)
    b = np.where(finite, (rng.integers(0, 2, n) << (fmt.width - 1)) | (eb << m)
                 | (b & ((1 << m) - 1)), b)
    neg = finite & (rng.random(n) < 0.25)
    b = np.where(neg, (a ^ fmt.sign_mask) + rng.integers(-1, 2, n) * (a & (fmt.sign_mask - 1) > 0),
                 b)
    b = b & ((1 << fmt.width) - 1)
    return a.astype(fmt.dtype), b.astype(fmt.dtype)
