"""Bit-exact golden model of the floating-point operators, vectorized NumPy integer code.

Every operator follows the same two-step structure the RTL mirrors:

1. unpack the operands (:func:`unpack`: class, sign, exponent, integer significand; subnormal
   inputs are flushed here when ``fmt.subnormals`` is False) and compute an *unrounded*
   intermediate ``(sign, exp, sig, sticky)`` whose value is exactly or, with ``sticky``, to the
   precision rounding needs, ``(-1)**sign * (sig + sticky*eps) * 2**exp``;
2. hand it to the one rounding function :func:`round_pack`, then override the special results
   (NaN, infinity, and the zeros an operator defines without arithmetic).

The rules (rounding, overflow, flush-to-zero, NaN, signed zero, minNum/maxNum) are documented in
docs/numerics.md; each lives in exactly one place in this file.

Bit patterns are NumPy integer arrays (any unsigned dtype; non-negative signed arrays and Python
ints are accepted too); results are ``fmt.dtype`` arrays of the broadcast shape of the operands.
All arithmetic is int64 (significands stay below 2**62), with no Python loop per element; the
only loops run over bit positions (leading-one count, integer square root).
"""

import numpy as np

from .formats import FloatFormat

__all__ = [
    "ZERO", "SUBNORMAL", "NORMAL", "INF", "NAN", "CLASS_NAMES", "SIG_LIMIT_BITS",
    "fields", "classify", "unpack", "normalize", "bit_length", "round_shift", "round_pack",
    "encode", "decode", "add", "sub", "mul", "div", "sqrt", "min", "max", "convert",
    "is_nan",
]

#: Operand classes returned by :func:`classify` / :func:`unpack` (int8 codes).
ZERO, SUBNORMAL, NORMAL, INF, NAN = 0, 1, 2, 3, 4
CLASS_NAMES = ("zero", "subnormal", "normal", "inf", "nan")

#: :func:`round_pack` accepts significands below ``2**SIG_LIMIT_BITS``: this keeps every shift
#: and the rounding increment inside int64 without a special case.
SIG_LIMIT_BITS = 62

# Extra low-order bits the adder keeps below the larger operand's LSB while aligning.  Two are
# enough for correct rounding with the exact sticky convention of round_pack (see add()); three
# is the textbook guard/round/sticky width and what rtl/ implements.
_ADD_EXTRA_BITS = 3


# -- argument checking ----------------------------------------------------------------------------
def _check_format(fmt, name="fmt"):
    if not isinstance(fmt, FloatFormat):
        raise TypeError(f"{name} must be a FloatFormat, not {fmt!r}")


def _check_precision(fmt, op, limit):
    """``op`` keeps an exact intermediate of about ``2 * precision`` bits in int64: refuse wider
    formats (the BN unit's wide sum formats only add and convert)."""
    _check_format(fmt)
    if fmt.precision > limit:
        raise ValueError(f"fp.{op} supports formats of precision <= {limit} (int64 "
                         f"datapath), not {fmt.name} (precision {fmt.precision})")


def _bits(fmt, x, name):
    """Validate an array of bit patterns of ``fmt`` and return it as int64."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "ui":
        raise TypeError(f"{name} must be an integer array of {fmt.name} bit patterns, "
                        f"not dtype {arr.dtype}")
    if arr.size:
        lo, hi = arr.min(), arr.max()
        if lo < 0 or hi >= (1 << fmt.width):
            bad = lo if lo < 0 else hi
            raise ValueError(f"{name} holds {bad}, which is not a {fmt.width}-bit {fmt.name} "
                             f"bit pattern (0 <= bits < 2**{fmt.width})")
    return arr.astype(np.int64)


def _out(fmt, enc):
    return np.asarray(enc).astype(fmt.dtype)


# -- unpacking ------------------------------------------------------------------------------------
def fields(fmt, bits):
    """Split bit patterns into raw fields.

    Returns
    -------
    sign, exp_field, man : int64 arrays
        The sign bit, the biased exponent field and the stored mantissa field, unmodified (no
        flush-to-zero).
    """
    _check_format(fmt)
    b = _bits(fmt, bits, "bits")
    sign = (b >> (fmt.width - 1)) & 1
    exp_field = (b >> fmt.man_bits) & fmt.exp_all_ones
    man = b & ((1 << fmt.man_bits) - 1)
    return sign, exp_field, man


def classify(fmt, bits):
    """Class of each bit pattern as an int8 code: ZERO, SUBNORMAL, NORMAL, INF or NAN.

    With ``fmt.subnormals == False`` subnormal patterns classify as ZERO: the operators see a
    flushed input, so this is the class the RTL's input stage must produce too.
    """
    _, e, m = fields(fmt, bits)
    cls = np.full(e.shape, NORMAL, dtype=np.int8)
    cls[(e == 0) & (m != 0)] = SUBNORMAL if fmt.subnormals else ZERO
    cls[(e == 0) & (m == 0)] = ZERO
    cls[(e == fmt.exp_all_ones) & (m == 0)] = INF
    cls[(e == fmt.exp_all_ones) & (m != 0)] = NAN
    return cls


def is_nan(fmt, bits):
    """Boolean mask of the NaN patterns (any sign, any payload)."""
    _, e, m = fields(fmt, bits)
    return (e == fmt.exp_all_ones) & (m != 0)


def unpack(fmt, bits):
    """Decompose bit patterns into ``(cls, sign, exp, sig)`` with the hidden bit made explicit.

    For finite patterns the value is exactly ``(-1)**sign * sig * 2**exp`` where

    * normal:    ``sig = 2**man_bits + man``, ``exp = exp_field - bias - man_bits``;
    * subnormal: ``sig = man``,              ``exp = emin - man_bits``;
    * zero:      ``sig = 0``,                ``exp = emin - man_bits``.

    Subnormal inputs of a format with ``subnormals=False`` are flushed: class ZERO, ``sig = 0``,
    the sign kept.  For Inf and NaN, ``sig = man`` and ``exp = 0``; operators override those
    results, so the values only need to be harmless.

    Returns
    -------
    cls : int8 array
        Class codes (see :func:`classify`).
    sign, exp, sig : int64 arrays
    """
    sign, e, m = fields(fmt, bits)
    cls = classify(fmt, bits)
    sig = np.where(e == 0, m, m | (1 << fmt.man_bits))
    exp = np.maximum(e, 1) - fmt.bias - fmt.man_bits
    sig = np.where(cls == ZERO, 0, sig)
    special = cls >= INF
    sig = np.where(special, m, sig)
    exp = np.where(special, 0, exp)
    return cls, sign, exp, sig


def bit_length(x):
    """Vectorized ``int.bit_length`` of non-negative int64 values (0 for 0).

    A fixed binary search over six shift amounts: the golden counterpart of the RTL's
    leading-zero counter.
    """
    x = np.asarray(x, dtype=np.int64)
    n = np.zeros(x.shape, dtype=np.int64)
    for sh in (32, 16, 8, 4, 2, 1):
        big = (x >> sh) != 0
        x = np.where(big, x >> sh, x)
        n += np.where(big, sh, 0)
    return n + (x != 0)


def normalize(fmt, sig, exp):
    """Shift non-zero significands so that their leading one sits at bit ``man_bits``.

    Subnormal inputs of multiply, divide and square root are normalized this way first, so that
    quotient and root widths do not depend on the operand class.  Zero significands are returned
    unchanged.  The value ``sig * 2**exp`` is preserved.
    """
    sig = np.asarray(sig, dtype=np.int64)
    exp = np.asarray(exp, dtype=np.int64)
    lz = np.where(sig != 0, fmt.man_bits + 1 - bit_length(sig), 0)
    return sig << lz, exp - lz


# -- the one rounding function --------------------------------------------------------------------
def round_shift(rounding, sig, shift, sticky=False):
    """Shift ``sig`` right by ``shift`` bits and round the result to an integer: THE rounding rule.

    :func:`round_pack` (floating-point results) and the BFP encoder (fixed grid of a group)
    both round with this function, so rne/rtz are defined in exactly one place.

    Parameters
    ----------
    rounding : {"rne", "rtz"}
    sig : int64 array, ``0 <= sig < 2**62``
    shift : int64 array
        ``shift <= 0``: exact left shift by ``-shift`` (at most 62 - bit_length(sig), and
        ``sticky`` must be 0 there).  ``shift >= 1``: ``kept = sig >> shift``, guard bit
        ``g = bit shift-1``, ``rest = (bits shift-2..0 != 0) | sticky``; shifts of 63 or more
        act like 63 (every bit of ``sig`` lies below the guard position).
    sticky : bool array
        Non-zero bits below ``sig``'s LSB.

    Returns
    -------
    int64 array
        rne: ``kept + (g & (rest | kept & 1))`` (ties to even); rtz: ``kept``.
    """
    sig = np.asarray(sig, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    sticky = np.asarray(sticky).astype(bool)
    # Exact (left-shift) branch.
    left = np.clip(-shift, 0, 63)
    mag_exact = sig << left
    # Rounding (right-shift) branch: drop counts >= 63 all mean "every bit is below the guard".
    sr = np.clip(shift, 1, 63)
    kept = sig >> sr
    if rounding == "rne":
        guard = (sig >> (sr - 1)) & 1
        rest = ((sig & ((np.int64(1) << (sr - 1)) - 1)) != 0) | sticky
        kept = kept + (guard & (rest | (kept & 1)))
    elif rounding != "rtz":
        raise ValueError(f"rounding must be 'rne' or 'rtz', not {rounding!r}")
    return np.where(shift <= 0, mag_exact, kept)


def round_pack(fmt, sign, exp, sig, sticky):
    """Round an unrounded intermediate once into ``fmt`` and pack it: THE rounding function.

    Every operator of this module (and ``rtl/round.py``, which mirrors this function) ends here.

    Parameters
    ----------
    fmt : FloatFormat
        Target format; its ``rounding`` ("rne" or "rtz") and ``subnormals`` apply.
    sign : array of 0/1 (or bool)
        Sign of the result, also the sign of a zero result.  (Callers decide the sign of an exact
        zero, e.g. ``x + (-x) = +0``; round_pack never changes it.)
    exp : int64 array
        Exponent of ``sig``'s least significant bit.
    sig : int64 array
        Unsigned integer significand, ``0 <= sig < 2**62`` (``SIG_LIMIT_BITS``), not necessarily
        normalized (leading zeros and a leading one anywhere are fine).
    sticky : array of 0/1 (or bool)
        1 iff the exact value has non-zero bits below ``sig``'s LSB.

    The value represented is ``(-1)**sign * (sig + sticky*eps) * 2**exp`` with ``0 < eps < 1``:
    with ``sticky`` set, the exact value lies strictly between ``sig`` and ``sig + 1`` units of
    ``2**exp``.  Precondition (checked, ``ValueError``): when ``sticky`` is set, ``sig`` must
    carry at least one bit below the LSB of the rounded result, i.e. the drop count ``s`` below is
    >= 1 -- otherwise "exactly halfway" and "above halfway" could not be told apart.  A
    normalized ``sig`` of ``precision + 1`` or more bits always satisfies it.

    Algorithm (integer only; the RTL implements the same steps):

    1. ``n = bit_length(sig)``; leading-one exponent ``e = exp + n - 1``.
    2. Result exponent ``er = max(e, emin)`` (``emin = 1 - bias``): below ``emin`` the result is
       on the subnormal grid.  ``sig == 0`` gives ``er = emin`` (so the packed result is 0).
       Result LSB exponent ``k = er - man_bits``; drop count ``s = k - exp``.
    3. ``s <= 0``: exact, ``mag = sig << -s``.  ``s >= 1``: ``mag = sig >> s``, guard bit
       ``g = bit s-1 of sig``, ``rest = (bits s-2..0 of sig != 0) | sticky``; drop counts above
       63 behave like 63 (everything is below the guard bit).
    4. Increment: rne ``inc = g & (rest | (mag & 1))`` (ties to even); rtz ``inc = 0``.
       ``mag += inc``.  (Steps 3-4 are :func:`round_shift`.)
    5. Pack: ``enc = ((er - emin) << man_bits) + mag``.  ``mag`` carries the hidden bit for
       normal results, so the addition yields the biased exponent field; a rounding carry out of
       the significand (``mag == 2**precision``) or from the largest subnormal into the smallest
       normal propagates into the exponent field by itself.
    6. Overflow: ``enc >= pos_inf`` (the result rounded with unbounded exponent exceeds the
       largest finite number) gives +-Inf for rne and +-max_finite for rtz.
    7. Flush-to-zero (``fmt.subnormals == False``): if the rounded encoding has exponent field 0
       and a non-zero mantissa, it becomes a zero of the same sign.  Rounding happens first at
       subnormal precision, so a value just below the smallest normal that rounds up to it is
       kept (as the smallest normal), and everything that would be a subnormal is flushed.
       ``mag == 0`` (exact zero, or underflow below half the smallest subnormal in rne / below
       the smallest subnormal in rtz) gives a signed zero in both modes.
    8. ``enc |= sign << (width - 1)``.

    There are no exception flags (inexact, underflow, overflow): the hardware has none.

    Returns
    -------
    ndarray of ``fmt.dtype``
        Packed bit patterns, shape of the broadcast inputs.  NaN is never produced here; the
        callers override NaN and Inf results of special operands.
    """
    _check_format(fmt)
    sign, exp, sig, sticky = np.broadcast_arrays(
        np.asarray(sign).astype(np.int64), np.asarray(exp, dtype=np.int64),
        np.asarray(sig).astype(np.int64), np.asarray(sticky).astype(bool))
    if sig.size and (sig.min() < 0 or sig.max() >= (1 << SIG_LIMIT_BITS)):
        raise ValueError(f"sig must satisfy 0 <= sig < 2**{SIG_LIMIT_BITS}, "
                         f"got values in [{sig.min()}, {sig.max()}]")
    if sign.size and (sign.min() < 0 or sign.max() > 1):
        raise ValueError("sign must be 0 or 1")
    m = fmt.man_bits
    emin = fmt.emin

    n = bit_length(sig)
    er = np.where(n == 0, emin, np.maximum(exp + n - 1, emin))
    s = er - m - exp
    if np.any(sticky & (s <= 0)):
        raise ValueError("round_pack: sticky is set but sig has no bit below the result's LSB "
                         "(give sig at least precision+1 significant bits)")

    mag = round_shift(fmt.rounding, sig, s, sticky)

    enc = ((er - emin) << m) + mag
    overflow = enc >= fmt.pos_inf
    enc = np.where(overflow, fmt.pos_inf if fmt.rounding == "rne" else fmt.max_finite, enc)
    if not fmt.subnormals:
        enc = np.where((enc >> m) == 0, 0, enc)
    enc |= sign << (fmt.width - 1)
    return _out(fmt, enc)


def _finish(fmt, rounded, nan, inf=None, inf_sign=None, zero=None, zero_sign=None):
    """Override special results: canonical NaN, signed infinities, defined signed zeros."""
    res = np.asarray(rounded).astype(np.int64)
    if zero is not None:
        res = np.where(zero, zero_sign << (fmt.width - 1), res)
    if inf is not None:
        res = np.where(inf, fmt.pos_inf | (inf_sign << (fmt.width - 1)), res)
    res = np.where(nan, fmt.canonical_nan, res)
    return _out(fmt, res)


# -- encode / decode / convert --------------------------------------------------------------------
def encode(fmt, values):
    """Round float64 values once into ``fmt`` (its rounding, overflow and FTZ rules).

    The float64 is decomposed exactly (sign, 53-bit integer significand, exponent) and passed to
    :func:`round_pack`.  Any NaN encodes to ``fmt.canonical_nan``; +-Inf to +-Inf; +-0.0 keeps its
    sign.  Inputs that are not float64 are converted to float64 first (exact for float16/32).
    """
    _check_format(fmt)
    v = np.asarray(values, dtype=np.float64)
    b = v.view(np.uint64).astype(np.int64)   # reinterpretation: bit 63 becomes the int64 sign
    sign = (b >> 63) & 1
    e = (b >> 52) & 0x7FF
    f = b & ((1 << 52) - 1)
    sig = np.where(e == 0, f, f | (1 << 52))
    exp = np.maximum(e, 1) - 1075
    nonfinite = e == 0x7FF
    rounded = round_pack(fmt, sign, np.where(nonfinite, 0, exp), np.where(nonfinite, 0, sig), 0)
    return _finish(fmt, rounded, nan=nonfinite & (f != 0), inf=nonfinite & (f == 0), inf_sign=sign)


def decode(fmt, bits):
    """Exact float64 values of bit patterns (subnormal inputs flushed if ``fmt.subnormals`` is False).

    NaN patterns decode to ``nan``, infinities to ``+-inf``, negative zero to ``-0.0``.
    """
    cls, sign, exp, sig = unpack(fmt, bits)
    val = np.ldexp(sig.astype(np.float64), exp.astype(np.int32))
    val = np.where(cls == INF, np.inf, val)
    val = np.where(sign == 1, -val, val)
    return np.where(cls == NAN, np.nan, val)


def convert(src_fmt, bits, dst_fmt):
    """Convert bit patterns of ``src_fmt`` into ``dst_fmt``, rounded once in ``dst_fmt``'s mode.

    ``src_fmt``'s flush-to-zero applies to the inputs, ``dst_fmt``'s rounding, overflow and
    flush-to-zero rules to the result.  NaN -> ``dst_fmt.canonical_nan``, +-Inf -> +-Inf.
    """
    _check_format(src_fmt, "src_fmt")
    _check_format(dst_fmt, "dst_fmt")
    cls, sign, exp, sig = unpack(src_fmt, bits)
    rounded = round_pack(dst_fmt, sign, exp, sig, 0)
    return _finish(dst_fmt, rounded, nan=cls == NAN, inf=cls == INF, inf_sign=sign)


# -- arithmetic -----------------------------------------------------------------------------------
def _unpack2(fmt, a, b):
    _check_format(fmt)
    a = _bits(fmt, a, "a")
    b = _bits(fmt, b, "b")
    a, b = np.broadcast_arrays(a, b)
    return unpack(fmt, a), unpack(fmt, b)


def add(fmt, a, b):
    """``a + b``, correctly rounded.

    Alignment with extra bits and an exact sticky: the operand of larger magnitude ``x`` keeps
    ``sig_x << 3``; the smaller one is shifted right by the exponent difference ``d`` (clamped at
    ``precision + 4``, past which everything is shifted out), and ``st`` records whether any
    non-zero bit was shifted out.  Then, in units of ``2**(exp_x - 3)``:

    * same signs:      ``sig = X + Y``,      value ``sig + st*eps``;
    * different signs: ``sig = X - Y - st``, value ``sig + st*(1 - frac)`` -- the borrow of the
      shifted-out fraction is taken from ``sig`` so that the sticky keeps its meaning "strictly
      above ``sig``".

    Bits are lost only when ``d >= 4``; then ``x`` is normal and ``sig >= 2**(p+1)``, so
    round_pack's precondition holds.  Sign of an exact zero sum: ``sign_a & sign_b``, i.e.
    ``x + (-x) = +0`` in both rounding modes, ``-0 + -0 = -0``, ``+0 + -0 = +0``.
    Specials: NaN if an operand is NaN or for ``Inf + -Inf``; otherwise an infinite operand wins.
    """
    (ca, sa, ea, ma), (cb, sb, eb, mb) = _unpack2(fmt, a, b)
    # Inf/NaN results are overridden below; zeroing their significands keeps the datapath in
    # range (the RTL may compute anything there).
    special = (ca >= INF) | (cb >= INF)
    ma = np.where(special, 0, ma)
    mb = np.where(special, 0, mb)
    # Order by magnitude (flushed subnormals are zeros): x is the larger operand.
    # (exp, sig) compared lexicographically; exp >= emin - man_bits, zeros have key 0.
    key_a = ((ea - (fmt.emin - fmt.man_bits)) << (fmt.precision + 1)) + ma
    key_b = ((eb - (fmt.emin - fmt.man_bits)) << (fmt.precision + 1)) + mb
    swap = key_b > key_a
    sx, ex, mx = (np.where(swap, v, u) for u, v in ((sa, sb), (ea, eb), (ma, mb)))
    sy, ey, my = (np.where(swap, u, v) for u, v in ((sa, sb), (ea, eb), (ma, mb)))

    g = _ADD_EXTRA_BITS
    d = np.clip(ex - ey, 0, fmt.precision + g + 1)
    X = mx << g
    Yfull = my << g
    Y = Yfull >> d
    st = (Yfull & ((np.int64(1) << d) - 1)) != 0
    eff_sub = (sx ^ sy) == 1
    sig = np.where(eff_sub, X - Y - st, X + Y)
    exact_zero = (sig == 0) & ~st
    sign = np.where(exact_zero, sa & sb, sx)
    rounded = round_pack(fmt, sign, ex - g, sig, st)

    nan = (ca == NAN) | (cb == NAN) | ((ca == INF) & (cb == INF) & (sa != sb))
    inf = (ca == INF) | (cb == INF)
    inf_sign = np.where(ca == INF, sa, sb)
    return _finish(fmt, rounded, nan, inf, inf_sign)


def sub(fmt, a, b):
    """``a - b`` = ``a + (-b)`` (the sign of ``b`` flipped; NaN results are canonical anyway)."""
    _check_format(fmt)
    b = _bits(fmt, b, "b")
    return add(fmt, a, b ^ fmt.sign_mask)


def mul(fmt, a, b):
    """``a * b``, correctly rounded: the exact product ``sig_a * sig_b`` (<= 48 bits), sticky 0.

    Sign ``sign_a ^ sign_b`` also for zero products.  NaN for a NaN operand or ``0 * Inf``;
    otherwise Inf if an operand is Inf.
    """
    _check_precision(fmt, "mul", 31)
    (ca, sa, ea, ma), (cb, sb, eb, mb) = _unpack2(fmt, a, b)
    sign = sa ^ sb
    rounded = round_pack(fmt, sign, ea + eb, ma * mb, 0)
    nan = (ca == NAN) | (cb == NAN) | ((ca == INF) & (cb == ZERO)) | ((ca == ZERO) & (cb == INF))
    inf = (ca == INF) | (cb == INF)
    return _finish(fmt, rounded, nan, inf, sign)


def div(fmt, a, b):
    """``a / b``, correctly rounded.

    Both significands are normalized to ``[2**man_bits, 2**precision)``; the quotient
    ``q = (sig_a << (p+2)) // sig_b`` then has ``p+2`` or ``p+3`` bits (``p`` = precision) and
    the sticky is ``remainder != 0`` -- what a restoring/non-restoring divider with ``p+2``
    quotient bits produces.  Specials: NaN for a NaN operand, ``0/0`` and ``Inf/Inf``;
    ``x/0 = +-Inf`` and ``Inf/x = +-Inf``; ``0/x`` and ``x/Inf`` are signed zeros.
    """
    _check_precision(fmt, "div", 30)
    (ca, sa, ea, ma), (cb, sb, eb, mb) = _unpack2(fmt, a, b)
    sign = sa ^ sb
    finite_nonzero_b = (cb == NORMAL) | (cb == SUBNORMAL)
    na, xa = normalize(fmt, ma, ea)
    nb, xb = normalize(fmt, np.where(finite_nonzero_b, mb, 1 << fmt.man_bits), eb)
    shift = fmt.precision + 2
    num = na << shift
    q = num // nb
    sticky = (num - q * nb) != 0
    rounded = round_pack(fmt, sign, xa - xb - shift, q, sticky)

    nan = ((ca == NAN) | (cb == NAN) | ((ca == ZERO) & (cb == ZERO))
           | ((ca == INF) & (cb == INF)))
    inf = (ca == INF) | (cb == ZERO)
    zero = (ca == ZERO) | (cb == INF)
    return _finish(fmt, rounded, nan, inf, sign, zero, sign)


def _isqrt(x, bits):
    """Integer square root and remainder of int64 ``x < 2**bits`` (bitwise digit recurrence)."""
    x = np.asarray(x, dtype=np.int64).copy()
    r = np.zeros_like(x)
    top = (bits + 1) // 2 * 2 - 2            # highest even bit position that can be set
    for pos in range(top, -1, -2):
        bit = np.int64(1) << pos
        t = r + bit
        ge = x >= t
        x = np.where(ge, x - t, x)
        r = np.where(ge, (r >> 1) + bit, r >> 1)
    return r, x


def sqrt(fmt, a):
    """Square root, correctly rounded.

    The significand is normalized, doubled if the exponent is odd (so the exponent halves
    exactly), and scaled by ``4**k`` with ``2k >= p + 3`` so that the integer root has at least
    ``p + 2`` bits; the sticky is ``remainder != 0``.  ``sqrt(+-0) = +-0``, ``sqrt(+Inf) = +Inf``,
    NaN for NaN and for every negative non-zero operand (including ``-Inf``).
    """
    _check_precision(fmt, "sqrt", 28)
    ca, sa, ea, ma = unpack(fmt, _bits(fmt, a, "a"))
    m, e = normalize(fmt, ma, ea)
    odd = (e & 1) == 1
    m = np.where(odd, m << 1, m)
    e = np.where(odd, e - 1, e)
    k = (fmt.precision + 4) // 2
    radicand = m << (2 * k)
    root, rem = _isqrt(radicand, fmt.precision + 1 + 2 * k)
    rounded = round_pack(fmt, sa, (e - 2 * k) // 2, root, rem != 0)
    nan = (ca == NAN) | ((sa == 1) & (ca != ZERO))
    inf = ca == INF
    return _finish(fmt, rounded, nan, inf, sa)


def _minmax(fmt, a, b, want_max):
    _check_format(fmt)
    a = _bits(fmt, a, "a")
    b = _bits(fmt, b, "b")
    a, b = np.broadcast_arrays(a, b)
    ca, cb = classify(fmt, a), classify(fmt, b)
    # Flush subnormal inputs of an FTZ format to signed zero: the result is the flushed operand.
    a = np.where(ca == ZERO, a & fmt.sign_mask, a)
    b = np.where(cb == ZERO, b & fmt.sign_mask, b)
    mag_mask = fmt.sign_mask - 1

    def key(x):   # monotone in the value, with -0 < +0
        return np.where(x & fmt.sign_mask, -(x & mag_mask) - 1, x & mag_mask)

    ka, kb = key(a), key(b)
    pick_a = ka >= kb if want_max else ka <= kb
    res = np.where(pick_a, a, b)
    res = np.where(ca == NAN, b, res)
    res = np.where(cb == NAN, a, res)
    res = np.where((ca == NAN) & (cb == NAN), fmt.canonical_nan, res)
    return _out(fmt, res)


def min(fmt, a, b):  # noqa: A001 - the public name mirrors the RTL unit
    """IEEE 754-2019 minimumNumber (754-2008 minNum with -0 < +0).

    One NaN operand -> the other operand; both NaN -> canonical NaN; ``min(-0, +0) = -0``.
    No NaN is signaling here (there are no flags), so a single NaN never propagates.  Subnormal
    inputs of an FTZ format are compared and returned as signed zeros.
    """
    return _minmax(fmt, a, b, want_max=False)


def max(fmt, a, b):  # noqa: A001
    """IEEE 754-2019 maximumNumber: like :func:`min`, with ``max(-0, +0) = +0``."""
    return _minmax(fmt, a, b, want_max=True)
