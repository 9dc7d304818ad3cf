"""FP add/subtract: ``o = a + b`` or ``a - b``, rounded once by :class:`~lightnorm.rtl.round.RoundPack`.

The datapath follows :func:`lightnorm.golden.fp.add` step by step (read them side by side):

1. unpack both operands (subnormal inputs flushed for FTZ formats), flip ``b``'s sign for ``sub``;
2. order by magnitude -- ``x`` the larger, ``y`` the smaller, compared as ``(exp, sig)``;
3. align: ``X = sig_x << 3``, ``Y = (sig_y << 3) >> d`` with ``d = min(exp_x - exp_y, p + 4)``
   and ``st`` = a non-zero bit was shifted out (three extra bits: guard, round, sticky);
4. ``sig = X + Y`` for equal signs, ``X - Y - st`` for different signs (the shifted-out fraction
   borrows from ``sig``, so ``st`` still means "strictly above ``sig``");
5. ``RoundPack(sign, exp_x - man_bits - 3, sig, st)``; an exact zero sum is ``+0`` unless both
   addends are ``-0``; NaN for a NaN operand or ``Inf - Inf``, else an infinite operand wins.
"""

from amaranth.hdl import Module, Const, Cat, Mux, unsigned
from amaranth.lib import data

from .pipeline import Pipeline, StreamUnit
from .round import (RoundPack, Unpack, check_float_format,
                    shift_right_sticky, signed_range_shape)

__all__ = ["FPAddSub"]

#: Alignment bits below the larger operand's LSB; golden.fp._ADD_EXTRA_BITS documents why 3.
EXTRA_BITS = 3


class FPAddSub(StreamUnit):
    """Floating-point adder/subtractor with a stream interface.

    Parameters
    ----------
    fmt : FloatFormat
        Operand and result format (rounding mode and subnormal handling included).
    stages : int, keyword-only
        Register stages, >= 0.  Registers go after operand ordering, after alignment and after the
        addition (in that order of preference: one stage sits after alignment); further stages
        follow the rounding stage.

    Attributes
    ----------
    i : In(stream.Signature(StructLayout({"a": w, "b": w, "sub": 1})))
        ``sub = 1`` computes ``a - b``.
    o : Out(stream.Signature(unsigned(w)))
    latency : int
        Register stages between ``i`` and ``o`` (= ``stages``).
    """

    CUTS = 3

    def __init__(self, fmt, *, stages=1):
        self.fmt = check_float_format("fmt", fmt)
        w = fmt.width
        super().__init__(data.StructLayout({"a": w, "b": w, "sub": 1}), unsigned(w), stages=stages)

    def elaborate(self, platform):
        m = Module()
        fmt = self.fmt
        p = fmt.precision
        g = EXTRA_BITS
        pipe = Pipeline(self.stages, cuts=self.CUTS)

        m.submodules.unpack_a = ua = Unpack(fmt)
        m.submodules.unpack_b = ub = Unpack(fmt)
        m.d.comb += [ua.a.eq(self.i.payload.a), ub.a.eq(self.i.payload.b)]
        sa = ua.sign
        sb = ub.sign ^ self.i.payload.sub

        # Specials: decided from the classes now, carried alongside the datapath.
        nan = ua.is_nan | ub.is_nan | (ua.is_inf & ub.is_inf & (sa != sb))
        inf = ua.is_inf | ub.is_inf
        inf_sign = Mux(ua.is_inf, sa, sb)
        zero_sign = sa & sb                     # sign of an exact zero sum
        special = ua.is_inf | ua.is_nan | ub.is_inf | ub.is_nan
        # Inf/NaN results are overridden: zero their significands like the golden model.
        ma = Mux(special, 0, ua.sig)
        mb = Mux(special, 0, ub.sig)
        ea, eb = ua.exp, ub.exp                 # hidden-bit exponents; zeros sit at emin

        # 2. Order by magnitude: (exp, sig) lexicographically; exp - emin >= 0 for finite inputs.
        ew = ua.exp_width
        key_a = Cat(ma, (ea - fmt.emin)[:ew])
        key_b = Cat(mb, (eb - fmt.emin)[:ew])
        swap = key_b > key_a
        sx, ex, mx = Mux(swap, sb, sa), Mux(swap, eb, ea), Mux(swap, mb, ma)
        sy, ey, my = Mux(swap, sa, sb), Mux(swap, ea, eb), Mux(swap, ma, mb)

        flags = (nan, inf, inf_sign, zero_sign)
        sx, ex, mx, sy, ey, my, *flags = pipe.cut(m, (sx, ex, mx, sy, ey, my, *flags),
                                                  name="order")

        # 3. Align.  ex >= ey always (zeros have the smallest exponent).
        diff = (ex - ey).as_unsigned()[:ew]
        d = Mux(diff > p + g + 1, p + g + 1, diff)
        X = Cat(Const(0, g), mx)                  # sig_x << 3, p + 3 bits
        Y, st = shift_right_sticky(Cat(Const(0, g), my), d)
        eff_sub = sx ^ sy

        sx, ex, X, Y, st, eff_sub, *flags = pipe.cut(m, (sx, ex, X, Y, st, eff_sub, *flags),
                                                     name="align")

        # 4. Add or subtract (p + 4 bits: one carry bit above X).
        sig = Mux(eff_sub, X - Y - st, X + Y)[:p + g + 1]
        exact_zero = (sig == 0) & ~st
        nan, inf, inf_sign, zero_sign = flags
        sign = Mux(exact_zero, zero_sign, sx)

        sign, ex, sig, st, nan, inf, inf_sign = pipe.cut(
            m, (sign, ex, sig, st, nan, inf, inf_sign), name="sum")

        # 5. Round and pack; LSB exponent of X is exp_x - man_bits - 3.
        exp_shape = signed_range_shape(fmt.emin - fmt.man_bits - g, fmt.emax + 1)
        # exp >= emin - man_bits - 3 keeps the sum's top bit in the normal range: no right shifter.
        m.submodules.round = rp = RoundPack(fmt, p + g + 1, exp_shape.width,
                                            exp_min=fmt.emin - fmt.man_bits - g)
        m.d.comb += rp.drive(sign=Mux(inf, inf_sign, sign), exp=ex - (fmt.man_bits + g), sig=sig,
                             sticky=st, is_nan=nan, is_inf=inf)
        pipe.connect(m, self.i, self.o, rp.bits)
        return m
