"""FP-to-FP format conversion, rounded once by :class:`~lightnorm.rtl.round.RoundPack`.

Mirrors :func:`lightnorm.golden.fp.convert`: the source operand is unpacked (``src_fmt``'s
flush-to-zero applies to it) and its exact ``(sign, exp, sig)`` goes to a RoundPack for
``dst_fmt`` with sticky 0, so ``dst_fmt``'s rounding, overflow and flush-to-zero rules apply to the
result.  NaN -> ``dst_fmt.canonical_nan``, +-Inf -> +-Inf, zeros keep their sign.

A *pure widening* (the same exponent field, at least as many mantissa bits, e.g. E6M3 -> E6M4)
is exact and needs no rounding: every finite word maps to ``sign | exp | man << k`` with the same
bias, so the unit is wiring plus the NaN canonicalization and, where one of the formats flushes
subnormals, a zeroed mantissa for exponent 0 -- a few gates instead of an unpacker and a
RoundPack (:func:`pure_widening`, :meth:`FPConvert.is_widening`).  A *pure truncation* (the
same exponent field, fewer mantissa bits, ``dst_fmt`` rounding toward zero, e.g. E6M31 -> E6M12
rtz) is the same wiring in the other direction: rtz drops the low mantissa bits of every finite
word (a subnormal stays a subnormal or becomes a zero of its sign), the exponent range is the
same so nothing overflows, and a NaN is recognized on the full source mantissa before it becomes
the canonical NaN (:func:`pure_truncation`, :meth:`FPConvert.is_truncating_narrowing`).  An
*exact widening* (every source value is a normal value of the destination, e.g. E5M4 -> E6M4,
E8M23 -> E9M42) re-biases the unpacked, normalized exponent and widens the mantissa, also without
a RoundPack (:func:`exact_widening`, :meth:`FPConvert.is_exact_widening`).  Other rtz conversions
truncate the normalized significand without a RoundPack (``FPConvert._truncate``).
"""

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned

from .pipeline import Pipeline, StreamUnit
from .round import RoundPack, Unpack, check_float_format, signed_range_shape

__all__ = ["FPConvert", "exact_conversion", "exact_widening", "pure_truncation", "pure_widening"]


def exact_widening(src, dst):
    """True when every finite non-zero ``src`` value is a normal ``dst`` value."""
    low = src.emin - src.man_bits if src.subnormals else src.emin
    return dst.man_bits >= src.man_bits and dst.emax >= src.emax and dst.emin <= low


def pure_widening(src, dst):
    """True when ``dst`` has ``src``'s exponent field and no fewer mantissa bits: every word
    converts by moving its mantissa up (exact, unless ``dst`` flushes ``src``'s subnormals)."""
    return src.exp_bits == dst.exp_bits and dst.man_bits >= src.man_bits


def pure_truncation(src, dst):
    """True when ``dst`` has ``src``'s exponent field, fewer mantissa bits and rounds toward
    zero: every word converts by dropping its low mantissa bits (no rounding, no overflow)."""
    return (src.exp_bits == dst.exp_bits and dst.man_bits < src.man_bits
            and dst.rounding == "rtz")


def exact_conversion(src, dst):
    """True when every ``src`` word converts to ``dst`` without rounding (or ``src == dst``):
    equal formats, a pure widening or an exact widening (FPConvert's rounding-free paths)."""
    if src == dst:
        return True
    pure = pure_widening(src, dst) and (dst.subnormals or not src.subnormals)
    return pure or exact_widening(src, dst)


class FPConvert(StreamUnit):
    """Floating-point format converter with a stream interface.

    Parameters
    ----------
    src_fmt, dst_fmt : FloatFormat
        Input and output formats (they may be equal: then the unit canonicalizes NaNs and applies
        flush-to-zero).
    stages : int, keyword-only
        Register stages, >= 0.  The first goes after unpacking; further stages follow the
        rounding stage.

    Attributes
    ----------
    i : In(stream.Signature(unsigned(src_fmt.width)))
    o : Out(stream.Signature(unsigned(dst_fmt.width)))
    latency : int
        Register stages between ``i`` and ``o`` (= ``stages``).
    """

    CUTS = 1

    def __init__(self, src_fmt, dst_fmt, *, stages=1):
        self.src_fmt = check_float_format("src_fmt", src_fmt)
        self.dst_fmt = check_float_format("dst_fmt", dst_fmt)
        super().__init__(unsigned(src_fmt.width), unsigned(dst_fmt.width), stages=stages)

    @property
    def is_widening(self):
        """True when the conversion is wiring (same exponent field, no fewer mantissa bits)."""
        return pure_widening(self.src_fmt, self.dst_fmt)

    @property
    def is_truncating_narrowing(self):
        """True when the conversion is wiring that drops mantissa bits (same exponent field,
        fewer mantissa bits, dst rounds toward zero), e.g. E6M31 -> E6M12 rtz."""
        return pure_truncation(self.src_fmt, self.dst_fmt)

    @property
    def is_exact_widening(self):
        """True when every src value is a normal dst value (no rounding, no dst subnormals).

        E.g. E5M4 -> E6M4, E8M23 -> E9M42: the unit re-biases the exponent of the unpacked
        (normalized) operand and widens the mantissa, without a RoundPack.
        """
        return not self.is_widening and exact_widening(self.src_fmt, self.dst_fmt)

    def elaborate(self, platform):
        m = Module()
        src, dst = self.src_fmt, self.dst_fmt
        if self.is_widening or self.is_truncating_narrowing:
            return self._same_field(m)
        if self.is_exact_widening:
            # Every src value is a normal dst value: re-bias the (normalized) exponent, move the
            # mantissa up; no rounding, no overflow, no subnormal results.
            pipe = Pipeline(self.stages, cuts=0)
            m.submodules.unpack = u = Unpack(src, normalize=True)
            m.d.comb += u.a.eq(self.i.payload)
            field = Signal(dst.exp_bits, name="field")
            m.d.comb += field.eq(Mux(u.is_zero, 0, Mux(u.is_inf, dst.exp_all_ones,
                                                        u.exp + dst.bias)))
            man = Mux(u.is_zero | u.is_inf, 0, u.sig[:src.man_bits])
            out = Signal(dst.width, name="widened")
            m.d.comb += out.eq(Mux(u.is_nan, dst.canonical_nan,
                                   Cat(man.shift_left(dst.man_bits - src.man_bits), field,
                                       u.sign)))
            pipe.connect(m, self.i, self.o, out)
            return m
        if dst.rounding == "rtz":
            return self._truncate(m)
        pipe = Pipeline(self.stages, cuts=self.CUTS)

        m.submodules.unpack = u = Unpack(src)
        m.d.comb += u.a.eq(self.i.payload)

        sign, exp, sig, nan, inf = pipe.cut(
            m, (u.sign, u.exp, u.sig, u.is_nan, u.is_inf), name="unpacked")

        exp_shape = signed_range_shape(src.emin - src.man_bits, src.emax + 1)
        # exp_min lets RoundPack drop its underflow right shifter for widening conversions.
        m.submodules.round = rp = RoundPack(dst, src.precision, exp_shape.width,
                                            exp_min=src.emin - src.man_bits)
        # exp: the exponent of the significand's LSB
        m.d.comb += rp.drive(sign=sign, exp=exp - src.man_bits, sig=sig, is_nan=nan, is_inf=inf)
        pipe.connect(m, self.i, self.o, rp.bits)
        return m

    def _same_field(self, m):
        """Pure widening or pure truncation: the exponent field and the sign pass, the mantissa
        moves up (widening) or loses its low bits (rtz), NaNs become dst's canonical NaN.  Where
        a format flushes subnormals (src: flushed inputs, dst: flushed results) exponent field 0
        keeps only the sign; otherwise src's subnormals are dst's with the same field."""
        src, dst = self.src_fmt, self.dst_fmt
        pipe = Pipeline(self.stages, cuts=0)     # wiring: every stage goes after it
        word = self.i.payload
        man = word[:src.man_bits]
        exp = word[src.man_bits:src.man_bits + src.exp_bits]
        sign = word[-1]
        nan = (exp == src.exp_all_ones) & (man != 0)     # on every source mantissa bit
        if dst.man_bits > src.man_bits:
            man = man.shift_left(dst.man_bits - src.man_bits)
        else:
            man = man[src.man_bits - dst.man_bits:]
        if not (src.subnormals and dst.subnormals):
            # a subnormal of src is flushed (src) or not representable as one (dst): +-0
            man = Mux(exp == 0, 0, man)
        out = Signal(dst.width, name="widened" if self.is_widening else "truncated")
        m.d.comb += out.eq(Mux(nan, dst.canonical_nan, Cat(man, exp, sign)))
        pipe.connect(m, self.i, self.o, out)
        return m

    def _truncate(self, m):
        """Rounding toward zero without a RoundPack: the normalized significand truncated to
        dst's precision, shifted right into dst's subnormal range (or flushed), and rtz's
        overflow (a source exponent above dst's largest) to the largest finite value."""
        src, dst = self.src_fmt, self.dst_fmt
        pipe = Pipeline(self.stages, cuts=self.CUTS)
        m.submodules.unpack = u = Unpack(src, normalize=True)
        m.d.comb += u.a.eq(self.i.payload)
        sign, exp, sig, zero, nan, inf = pipe.cut(
            m, (u.sign, u.exp, u.sig, u.is_zero, u.is_nan, u.is_inf), name="unpacked")
        ps, pd = src.precision, dst.precision
        top = Signal(pd, name="top")                # the significand truncated to pd bits
        m.d.comb += top.eq(sig >> (ps - pd) if ps >= pd else sig << (pd - ps))
        # Below dst's smallest normal: shift right by emin - exp (>= 1; pd or more gives 0).
        lo = src.emin - src.man_bits
        deficit = Signal(range(max(dst.emin - lo, 0) + 2), name="deficit")
        m.d.comb += deficit.eq(Mux(exp < dst.emin, dst.emin - exp, 0))
        sub = Signal(dst.man_bits, name="sub_man")
        m.d.comb += sub.eq(Mux(deficit >= pd, 0, top >> deficit))
        field = Signal(dst.exp_bits, name="field")
        man = Signal(dst.man_bits, name="man")
        tiny = exp < dst.emin
        over = exp > dst.emax
        with m.If(nan):
            m.d.comb += [field.eq(dst.exp_all_ones),
                         man.eq(dst.canonical_nan & ((1 << dst.man_bits) - 1))]
        with m.Elif(inf):
            m.d.comb += [field.eq(dst.exp_all_ones), man.eq(0)]
        with m.Elif(zero):
            m.d.comb += [field.eq(0), man.eq(0)]
        with m.Elif(over):
            m.d.comb += [field.eq(dst.exp_all_ones - 1), man.eq((1 << dst.man_bits) - 1)]
        with m.Elif(tiny):
            m.d.comb += [field.eq(0), man.eq(sub if dst.subnormals else 0)]
        with m.Else():
            m.d.comb += [field.eq(exp + dst.bias), man.eq(top[:dst.man_bits])]
        out = Signal(dst.width, name="truncated")
        m.d.comb += out.eq(Cat(man, field, sign & ~nan))
        pipe.connect(m, self.i, self.o, out)
        return m
