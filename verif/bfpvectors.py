"""Stimulus and golden results for the BFP codecs (golden/bfp.py; docs/numerics.md, "Block floating
point").

Groups of ``bfmt.group`` elements of a FloatFormat: random groups whose elements cluster within a
few binades of each other (so that every magnitude bit matters), groups of independent random
patterns (wide spread: small elements vanish), and directed boundary groups: all zero (signed
zeros kept), one huge element among tiny ones, Inf and NaN in a group, a maximum element whose
mantissa overflows on rounding (the shared exponent grows; at the top of the range the group
becomes special), subnormal-only groups and groups straddling the subnormal boundary.
The decoder also gets raw random groups: any shared field including the special one, any codes.
"""

import numpy as np

from lightnorm.golden import bfp, vectors
from lightnorm.golden.formats import FloatFormat

__all__ = ["random_groups", "boundary_groups", "raw_groups", "case_vectors"]


def _pack_fields(fmt, sign, exp, man):
    return ((sign.astype(np.int64) << (fmt.width - 1)) | (exp.astype(np.int64) << fmt.man_bits)
            | man.astype(np.int64))


def random_groups(bfmt, fmt, n, rng):
    """``n`` random groups, shape (n, group): half clustered around a per-group exponent, a
    quarter independent :func:`lightnorm.golden.vectors.random_bits`, a quarter clustered with
    a few exact zeros and specials sprinkled in."""
    G, top = bfmt.group, fmt.exp_all_ones
    base = rng.integers(0, top, (n, 1))
    spread = np.minimum(rng.geometric(0.35, (n, G)) - 1, top)
    exp = np.clip(base - spread, 0, top - 1)
    man = rng.integers(0, 1 << fmt.man_bits, (n, G))
    sign = rng.integers(0, 2, (n, G))
    groups = _pack_fields(fmt, sign, exp, man)
    wild = rng.random(n) < 0.25
    groups[wild] = vectors.random_bits(fmt, int(wild.sum()) * G, rng).reshape(-1, G)
    sprinkle = (rng.random(n) < 0.25)[:, None] & (rng.random((n, G)) < 0.2)
    groups = np.where(sprinkle, rng.choice(vectors.corners(fmt), (n, G)), groups)
    return groups.astype(fmt.dtype)


def boundary_groups(bfmt, fmt, rng):
    """Directed boundary groups (about 40 per format), shape (k, group)."""
    G, m, top = bfmt.group, fmt.man_bits, fmt.exp_all_ones
    full = (1 << m) - 1
    neg0 = fmt.sign_mask
    rows = []

    def row(values):
        values = list(values)[:G]
        rows.append(values + [0] * (G - len(values)))

    row([0] * G)
    row([neg0] * G)
    row([neg0, 0] * G)
    for big in (fmt.max_finite, fmt.max_finite - 1, (top - 2) << m, fmt.bias << m):
        row([big] + [1] * (G - 1))                             # one huge, the rest tiny
        row([1] * (G - 1) + [big | neg0])
    for special in (fmt.pos_inf, fmt.pos_inf | neg0, fmt.canonical_nan, fmt.pos_inf | 1):
        row([fmt.bias << m, special] + [(fmt.bias - 1) << m | 5 % (full + 1)] * (G - 2))
    row([fmt.pos_inf, fmt.canonical_nan | neg0] + [0] * (G - 2))
    # Mantissa overflow: all-ones mantissas round up when M < precision (both rounding modes
    # tested by the caller's bfmt); at the top exponent the group overflows to special.
    for e in (1, fmt.bias, top - 2, top - 1):
        row([(e << m) | full] + [((e - 1) << m) | full] * (G - 1))
        row([(e << m) | full | neg0] + [(e << m) | (full >> 1)] * (G - 1))
    row([fmt.max_finite] * G)
    row([fmt.max_finite | neg0, fmt.max_finite] * G)
    # Subnormal-only and straddling groups (read as zeros when fmt flushes).
    row([1, 2, 3, full, neg0 | 1, full >> 1] * G)
    row([fmt.min_normal, full, neg0 | fmt.min_normal, 1] * G)
    # Rounding ties on the element grid: x.1000 patterns at several distances from the max.
    for k in range(1, 4):
        row([(fmt.bias << m) | full] + [((fmt.bias - k) << m) | (1 << (m - 1))] * (G - 1))
    arr = np.array(rows, dtype=np.int64) & ((1 << fmt.width) - 1)
    return arr.astype(fmt.dtype)


def raw_groups(bfmt, n, rng):
    """``n`` arbitrary packed groups for the decoder: every shared field (the special all-ones
    field about 1 in 8) and uniformly random element codes."""
    shared = rng.integers(0, 1 << bfmt.exp_bits, n)
    shared[rng.random(n) < 0.125] = (1 << bfmt.exp_bits) - 1
    elements = rng.integers(0, 1 << bfmt.element_width, (n, bfmt.group))
    return bfp.pack(bfmt, shared.astype(np.int64), elements.astype(np.int64))


def case_vectors(case, n, rng, *, exhaustive=False):
    """Vectors of a BFP codec case (see :func:`lightnorm.verif.units.case_vectors`); ``n`` groups.

    ``exhaustive`` is not meaningful for groups and is rejected.
    """
    if exhaustive:
        raise ValueError("BFP codecs have no exhaustive mode (a group has too many bits)")
    bfmt, fmt = case.other, case.fmt
    if not isinstance(fmt, FloatFormat):
        raise TypeError(f"case.fmt must be a FloatFormat, not {fmt!r}")
    b = boundary_groups(bfmt, fmt, rng)
    groups = np.concatenate([b, random_groups(bfmt, fmt, max(0, n - len(b)), rng)])
    groups = groups[rng.permutation(len(groups))]
    G = bfmt.group
    element_formats = {"*": fmt}
    if case.unit == "bfp_encoder":
        shared, elements = bfp.encode(bfmt, fmt, groups)
        return {"stimulus": {str(i): groups[:, i] for i in range(G)},
                "expected": bfp.pack(bfmt, shared, elements),
                "in_formats": element_formats, "out_formats": None}
    if case.unit == "bfp_decoder":
        shared, elements = bfp.encode(bfmt, fmt, groups)
        packed = np.concatenate([bfp.pack(bfmt, shared, elements),
                                 raw_groups(bfmt, max(1, n // 4), rng)])
        packed = packed[rng.permutation(len(packed))]
        shared, elements = bfp.unpack(bfmt, packed)
        out = bfp.decode(bfmt, shared, elements, fmt)
        return {"stimulus": packed, "expected": {str(i): out[:, i] for i in range(G)},
                "in_formats": None, "out_formats": element_formats}
    if case.unit == "bfp_roundtrip":
        shared, elements = bfp.encode(bfmt, fmt, groups)
        out = bfp.decode(bfmt, shared, elements, fmt)
        return {"stimulus": {str(i): groups[:, i] for i in range(G)},
                "expected": {str(i): out[:, i] for i in range(G)},
                "in_formats": element_formats, "out_formats": element_formats}
    raise ValueError(f"not a BFP unit: {case.unit!r}")
