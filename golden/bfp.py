"""Bit-exact golden model of block floating point (BFP): encode, decode, pack, unpack.

Semantics (binding for the RTL codecs; docs/numerics.md repeats them for readers):

A :class:`~lightnorm.golden.formats.BfpFormat` ``(G, M, X, rounding)`` groups ``G`` elements
under one ``X``-bit biased shared exponent field (bias ``B = 2**(X-1) - 1``).  Field values
``0 .. 2**X - 2`` are finite (shared exponent ``E = field - B``); the all-ones field marks a
*special* group.  An element is a sign bit and an ``M``-bit magnitude ``m`` with an explicit
leading bit; in a finite group its value is ``(-1)**s * m * 2**(E - M + 1)``.

Element codes travel as ``(s << M) | m`` (the packed layout of one element), in the smallest
unsigned dtype that holds ``1 + M`` bits; shared fields as uint8.

Encode, from bit patterns of a FloatFormat ``fmt``:

1. the inputs are unpacked with ``fmt``'s rules (subnormal inputs of an FTZ ``fmt`` are zeros);
2. a group holding Inf or NaN is special: NaN -> ``s = 0, m = 2**M - 1``; +-Inf -> ``s, m = 1``;
   finite elements -> their sign, ``m = 0`` (the finite values of a poisoned group are lost);
3. otherwise ``E = max(e_max, -B)`` with ``e_max`` the largest ``floor(log2|x|)`` of the non-zero
   elements (an all-zero group gets field 0, ``m = 0``, signs kept), and every
   ``m_i = round(|x_i| / 2**(E - M + 1))`` in the BfpFormat's rounding mode
   (:func:`lightnorm.golden.fp.round_shift`, the same rounding rule as every FP operator);
   if some ``m_i`` rounds up to ``2**M``, ``E`` grows by one and all elements are rounded again
   from their exact values onto the coarser grid (one rounding, never two);
4. if ``E`` exceeds the largest finite shared exponent ``2**X - 2 - B`` the group is special:
   elements whose magnitude does not fit at that largest exponent become +-Inf (``m = 1``), all
   others ``m = 0``.  With ``X >= fmt.exp_bits`` this happens only after a mantissa overflow,
   exactly as the spec states; for a narrower shared exponent the same rule covers inputs that
   are too large to begin with (the spec is silent there);
5. zero elements keep their sign (``-0.0`` -> ``s = 1, m = 0``).

Decode, to a FloatFormat: special group: ``m = 0`` -> signed zero, ``m = 1`` -> signed Inf, any
other ``m`` -> ``fmt.canonical_nan``; finite group: the exact value is rounded once into ``fmt`` by
:func:`lightnorm.golden.fp.round_pack` (fmt's rounding, overflow and FTZ rules).

Packed layout of one group, an integer of ``X + G*(1+M)`` bits, LSB first: bits ``[0, X)`` the
shared field; element ``i`` at bits ``[X + i*(1+M), X + (i+1)*(1+M))``, magnitude in its low
``M`` bits and sign in its top bit -- the layout of the RTL stream payload
``StructLayout({"exp": X, "elems": ArrayLayout(StructLayout({"mag": M, "sign": 1}), G)})``.
"""

import numpy as np

from . import fp
from .formats import BfpFormat, FloatFormat

__all__ = ["element_dtype", "encode", "decode", "pack", "unpack"]


def _check_formats(bfmt, fmt):
    if not isinstance(bfmt, BfpFormat):
        raise TypeError(f"bfmt must be a BfpFormat, not {bfmt!r}")
    if not isinstance(fmt, FloatFormat):
        raise TypeError(f"fmt must be a FloatFormat, not {fmt!r}")


def _check_group_axis(bfmt, arr, name):
    if arr.ndim == 0 or arr.shape[-1] != bfmt.group:
        raise ValueError(f"{name} must have shape (..., {bfmt.group}) for {bfmt.name} "
                         f"(last axis = group of {bfmt.group}), got shape {arr.shape}")


def _check_uint(arr, bits, name, what):
    if arr.dtype.kind not in "ui":
        raise TypeError(f"{name} must be an integer array of {what}, not dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= (1 << bits)):
        bad = arr.min() if arr.min() < 0 else arr.max()
        raise ValueError(f"{name} holds {bad}, which is not a {bits}-bit {what}")
    return arr.astype(np.int64)


def _check_groups(bfmt, shared, elements):
    """Validate encoded groups: ``elements`` (..., group) codes and ``shared`` (...) fields.

    Returns ``(shared, elements)`` as int64 arrays.
    """
    el = np.asarray(elements)
    _check_group_axis(bfmt, el, "elements")
    sh = np.asarray(shared)
    if sh.shape != el.shape[:-1]:
        raise ValueError(f"shared must have shape {el.shape[:-1]} (elements.shape[:-1]), "
                         f"got {sh.shape}")
    el = _check_uint(el, bfmt.element_width, "elements", f"{bfmt.name} element code")
    sh = _check_uint(sh, bfmt.exp_bits, "shared", f"{bfmt.name} shared exponent field")
    return sh, el


def element_dtype(bfmt):
    """Smallest unsigned dtype holding one element code ``(sign << man_bits) | magnitude``."""
    w = bfmt.element_width
    return np.uint8 if w <= 8 else np.uint16 if w <= 16 else np.uint32


def encode(bfmt, fmt, bits):
    """Encode groups of ``fmt`` bit patterns, shape ``(..., group)``, into BFP.

    Parameters
    ----------
    bfmt : BfpFormat
    fmt : FloatFormat
        Format of the input bit patterns (its FTZ rule applies to the inputs).
    bits : unsigned integer array, shape (..., bfmt.group)

    Returns
    -------
    shared : uint8 array, shape (...)
        Biased shared exponent fields (all ones for a special group).
    elements : array of ``element_dtype(bfmt)``, shape (..., group)
        Element codes ``(sign << man_bits) | m``.
    """
    _check_formats(bfmt, fmt)
    arr = np.asarray(bits)
    _check_group_axis(bfmt, arr, "bits")
    cls, sign, exp, sig = fp.unpack(fmt, arr)
    M, B = bfmt.man_bits, bfmt.bias
    field_special = (1 << bfmt.exp_bits) - 1
    e_lim = field_special - 1 - B          # largest finite shared exponent

    # Step 3: shared exponent from the largest true exponent of the non-zero elements.
    finite_nonzero = (cls == fp.NORMAL) | (cls == fp.SUBNORMAL)
    lead = np.where(finite_nonzero, exp + fp.bit_length(sig) - 1, np.iinfo(np.int64).min)
    e_max = lead.max(axis=-1)
    any_nonzero = finite_nonzero.any(axis=-1)
    E = np.maximum(e_max, -B)
    E = np.where(any_nonzero, E, -B)                      # all-zero group: field 0
    sig = np.where(finite_nonzero, sig, 0)

    def grid(E_, sig=sig):
        """Magnitudes rounded onto the grid 2**(E_ - M + 1), from the exact values.

        Needs E_ >= the leading exponent of every element passed in (so that left shifts stay
        below M bits)."""
        return fp.round_shift(bfmt.rounding, sig, (E_[..., None] - M + 1) - exp)

    m = grid(E)
    carry = (m >= (1 << M)).any(axis=-1)                  # mantissa overflow: coarser grid
    E = np.where(carry, E + 1, E)
    m = np.where(carry[..., None], grid(E), m)

    # Step 4: shared exponent overflow -> special group, overflowing elements become Inf.
    exp_ovf = E > e_lim
    too_big = lead > e_lim                                # overflows whatever the rounding
    m_lim = grid(np.full_like(E, e_lim), np.where(too_big, 0, sig))
    ovf_elem = too_big | (m_lim >= (1 << M))
    m = np.where(exp_ovf[..., None], ovf_elem.astype(np.int64), m)

    # Step 2: Inf/NaN poison the group.
    has_special = ((cls == fp.INF) | (cls == fp.NAN)).any(axis=-1)
    m = np.where(has_special[..., None],
                 np.where(cls == fp.NAN, (1 << M) - 1, (cls == fp.INF).astype(np.int64)), m)
    s = np.where(has_special[..., None] & (cls == fp.NAN), 0, sign)

    special = has_special | exp_ovf
    shared = np.where(special, field_special, E + B)
    elements = (s << M) | m
    return shared.astype(np.uint8), elements.astype(element_dtype(bfmt))


def decode(bfmt, shared, elements, fmt):
    """Decode BFP groups into bit patterns of ``fmt``, shape ``(..., group)``.

    Each finite element ``(-1)**s * m * 2**(E - M + 1)`` is rounded once into ``fmt`` by
    :func:`lightnorm.golden.fp.round_pack`; special groups decode element-wise to signed zero
    (``m = 0``), signed Inf (``m = 1``) or the canonical NaN (any other ``m``).
    """
    _check_formats(bfmt, fmt)
    sh, el = _check_groups(bfmt, shared, elements)
    M = bfmt.man_bits
    s = el >> M
    m = el & ((1 << M) - 1)
    special = (sh == (1 << bfmt.exp_bits) - 1)[..., None]
    E = (sh - bfmt.bias)[..., None]
    rounded = fp.round_pack(fmt, s, np.where(special, 0, E - M + 1), np.where(special, 0, m), 0)
    res = rounded.astype(np.int64)
    res = np.where(special & (m == 0), s << (fmt.width - 1), res)
    res = np.where(special & (m == 1), fmt.pos_inf | (s << (fmt.width - 1)), res)
    res = np.where(special & (m > 1), fmt.canonical_nan, res)
    return res.astype(fmt.dtype)


def pack(bfmt, shared, elements):
    """Pack groups into integers of ``bfmt.group_width`` bits (layout in the module docstring).

    Returns a Python ``int`` for a single group (``elements`` of shape ``(group,)``), otherwise an
    object array of Python ints of shape ``elements.shape[:-1]`` (groups may exceed 64 bits).
    """
    if not isinstance(bfmt, BfpFormat):
        raise TypeError(f"bfmt must be a BfpFormat, not {bfmt!r}")
    sh, el = _check_groups(bfmt, shared, elements)
    out = sh.astype(object)
    for i in range(bfmt.group):     # fixed loop over group positions, vectorized over groups
        out = out | (el[..., i].astype(object) << (bfmt.exp_bits + i * bfmt.element_width))
    out = np.asarray(out, dtype=object)
    return int(out[()]) if out.ndim == 0 else out


def unpack(bfmt, packed):
    """Inverse of :func:`pack`: Python int(s) of ``group_width`` bits -> (shared, elements)."""
    if not isinstance(bfmt, BfpFormat):
        raise TypeError(f"bfmt must be a BfpFormat, not {bfmt!r}")
    p = np.asarray(packed, dtype=object)
    is_int = np.asarray(np.frompyfunc(
        lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool), 1, 1)(p),
        dtype=bool)
    if not is_int.all():
        raise TypeError(f"packed must hold integers, found {p[~is_int].ravel()[0]!r}")
    bad = (p < 0) | ((p >> bfmt.group_width) != 0)
    if np.any(bad):
        raise ValueError(f"packed holds {p[bad].ravel()[0]!r}, which is not a "
                         f"{bfmt.group_width}-bit {bfmt.name} group")
    w = bfmt.element_width
    shared = np.asarray(p & ((1 << bfmt.exp_bits) - 1), dtype=np.int64)
    elements = np.stack([np.asarray((p >> (bfmt.exp_bits + i * w)) & ((1 << w) - 1),
                                    dtype=np.int64) for i in range(bfmt.group)], axis=-1)
    return shared.astype(np.uint8), elements.astype(element_dtype(bfmt))
