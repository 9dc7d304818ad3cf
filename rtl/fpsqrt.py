"""FP square root ``o = sqrt(a)``, rounded once by :class:`~lightnorm.rtl.round.RoundPack`.

Scheme (the same intermediate as :func:`lightnorm.golden.fp.sqrt`)
------------------------------------------------------------------
The operand is unpacked and its significand normalized to ``p = fmt.precision`` bits, so
``a = A * 2^e``.  If ``e`` is odd, ``A`` is doubled and ``e`` decremented, making the exponent even.
With ``k = floor((p + 4) / 2)`` (so ``2k >= p + 3``) the radicand ``S = A << 2k`` is at least
``2^(2p+2)``, and a digit-by-digit (restoring, radix 2) integer square root gives

    r = isqrt(S) >= 2^(p+1),   sticky = (S - r^2) != 0,

so ``sqrt(a) = (r + sticky*eps) * 2^((e - 2k) / 2)``: ``p + 2`` or more significant bits plus
sticky -- one more than one correct rounding needs, kept so that the intermediate is exactly the
one golden ``sqrt`` hands to ``round_pack``.  ``(sign, exp, r, sticky)`` goes to RoundPack.  The
root of a finite number never overflows; it can be subnormal only in formats with
``man_bits > bias - 1`` (e.g. E2M5), and RoundPack's subnormal/FTZ rules then apply as for every
other operator.

Special cases override the rounded value: NaN and any negative non-zero operand (including -Inf)
give the canonical NaN; ``sqrt(+-0) = +-0``; ``sqrt(+Inf) = +Inf``.  With ``fmt.subnormals=False``
a subnormal operand is read as a zero of the same sign, so ``sqrt(-subnormal) = -0``.
"""

from amaranth.hdl import Module, Signal, Const, Cat, Mux, unsigned

from .pipeline import Pipeline, StreamUnit
from .round import RoundPack, Unpack, check_float_format, signed_range_shape

__all__ = ["FPSqrt"]


def restoring_isqrt(m, radicand, *, pipe=None, cut_rows=(), carry=()):
    """Add a digit-by-digit (radix 2, restoring) integer square root to module ``m``.

    Parameters
    ----------
    m : Module
    radicand : Value
        Unsigned; an odd width is padded with a leading zero.
    pipe : Pipeline or None
        If given, ``pipe.cut`` is called after each row listed in ``cut_rows``.
    cut_rows : iterable of int
        Rows (0 .. n-2, ``n`` = root bits) after which a pipeline cut is marked.
    carry : tuple of Value
        Side values that travel through the same cuts.

    Returns
    -------
    (root, sticky, carry) : (Value, Value, tuple)
        ``root = isqrt(radicand)`` (``ceil(width / 2)`` bits) and ``sticky = radicand != root^2``.
    """
    n = (len(radicand) + 1) // 2          # root bits = number of radicand bit pairs
    cut_rows = set(cut_rows)
    s = Signal(2 * n, name="sqrt_s")
    m.d.comb += s.eq(radicand)
    # Invariant after each row: rem = (radicand's top pairs) - root^2 <= 2 * root, so rem and the
    # trial subtrahend 4 * root + 1 fit in n + 2 bits.
    rem = Const(0, n + 2)
    root = Const(0, 0)
    for i in range(n):
        pair = s[2 * (n - 1 - i):2 * (n - i)]
        cur = Signal(n + 2, name=f"sqrt_cur{i}")
        m.d.comb += cur.eq(Cat(pair, rem))
        trial = Signal(n + 2, name=f"sqrt_trial{i}")
        m.d.comb += trial.eq(Cat(Const(1, 2), root))   # 4 * root + 1
        ge = Signal(name=f"sqrt_r{n - 1 - i}")
        m.d.comb += ge.eq(cur >= trial)
        nrem = Signal(n + 2, name=f"sqrt_rem{i + 1}")
        m.d.comb += nrem.eq(Mux(ge, cur - trial, cur))
        rem, root = nrem, Cat(ge, root)
        if pipe is not None and i in cut_rows and i < n - 1:
            # The radicand bits still to come travel with the partial root and remainder.
            s_low = s[:2 * (n - 1 - i)]
            rem, root, s_low, *carry = pipe.cut(m, (rem, root, s_low, *carry),
                                                name=f"sqrt_row{i}")
            s = Cat(s_low, Const(0, 2 * (i + 1)))
    sticky = Signal(name="sqrt_sticky")
    m.d.comb += sticky.eq(rem != 0)
    return root, sticky, tuple(carry)


class FPSqrt(StreamUnit):
    """FP square root ``sqrt(a)`` in ``fmt``, correctly rounded in ``fmt.rounding``.

    Parameters
    ----------
    fmt : FloatFormat
        Operand and result format (also gives rounding mode and subnormal handling).
    stages : int, keyword-only
        Register stages between ``i`` and ``o`` (>= 0; 0 = combinational).

    Attributes
    ----------
    i : In(stream.Signature(unsigned(fmt.width)))
        The operand.
    o : Out(stream.Signature(unsigned(fmt.width)))
        The rounded square root.
    latency : int
        Register stages from ``i`` to ``o`` (equals ``stages``).

    Notes
    -----
    Registers may go after unpacking, after each quarter of the root rows, and before RoundPack;
    ``stages`` are spread evenly over them and any further stages follow RoundPack.
    """

    def __init__(self, fmt, *, stages=1):
        self.fmt = check_float_format("fmt", fmt)
        super().__init__(unsigned(fmt.width), unsigned(fmt.width), stages=stages)

    def elaborate(self, platform):
        m = Module()
        fmt = self.fmt
        p = fmt.precision

        m.submodules.unpack = ua = Unpack(fmt, normalize=True)
        m.d.comb += ua.a.eq(self.i.payload)

        # a = A * 2^e with e the exponent of A's LSB.  An odd e moves one factor 2 into A, so
        # the exponent halves exactly; A' = A or 2A has p + 1 bits.
        e = Signal(signed_range_shape(fmt.emin - 2 * fmt.man_bits, fmt.emax + 1 - fmt.man_bits))
        m.d.comb += e.eq(ua.exp - fmt.man_bits)
        odd = e[0]
        a_even = Mux(odd, Cat(Const(0, 1), ua.sig), ua.sig)
        k = (p + 4) // 2
        # sqrt(a) = sqrt(A' * 2^2k) * 2^((e' - 2k) / 2), e' = e - odd (even).
        lo = (fmt.emin - 2 * fmt.man_bits - 1 - 2 * k) // 2
        hi = (fmt.emax + 1 - fmt.man_bits - 2 * k) // 2
        exp_shape = signed_range_shape(lo, hi)
        exp = Signal(exp_shape)
        m.d.comb += exp.eq((e - odd - 2 * k) >> 1)   # arithmetic shift of an even number
        side = (
            ua.sign,
            exp,
            # Specials, in RoundPack's precedence NaN > Inf > zero.  sqrt(-0) = -0 keeps the
            # sign through is_zero; every other negative operand is invalid.
            ua.is_nan | (ua.sign & ~ua.is_zero),
            ua.is_inf,
            ua.is_zero,
        )

        radicand = Cat(Const(0, 2 * k), a_even)          # p + 1 + 2k bits
        n_root = (len(radicand) + 1) // 2
        cut_rows = sorted({(n_root * j) // 4 - 1 for j in range(1, 4)} - {-1, n_root - 1})
        pipe = Pipeline(self.stages, cuts=2 + len(cut_rows))
        radicand, *side = pipe.cut(m, (radicand, *side), name="unpacked")
        root, sticky, side = restoring_isqrt(m, radicand, pipe=pipe, cut_rows=cut_rows,
                                             carry=side)
        root, sticky, *side = pipe.cut(m, (root, sticky, *side), name="root")
        sign, exp, is_nan, is_inf, is_zero = side

        m.submodules.round = rp = RoundPack(fmt, len(root), exp_shape.width)
        m.d.comb += rp.drive(sign=sign, exp=exp, sig=root, sticky=sticky, is_nan=is_nan,
                             is_inf=is_inf, is_zero=is_zero)
        pipe.connect(m, self.i, self.o, rp.bits)
        return m
