"""FP-to-FP format conversion, rounded once by :class:`~lightnorm.rtl.round.RoundPack`.

Mirrors :func:`lightnorm.golden.fp.convert`: the source operand is unpacked (``src_fmt``'s
flush-to-zero applies to it) and its exact ``(sign, exp, sig)`` goes to a RoundPack for
``dst_fmt`` with sticky 0, so ``dst_fmt``'s rounding, overflow and flush-to-zero rules apply to the
result.  NaN -> ``dst_fmt.canonical_nan``, +-Inf -> +-Inf, zeros keep their sign.

A *pure widening* (the same exponent field, at least as many mantissa bits, e.g. E6M3 -> E6M4)
is exact and needs no rounding: every finite word maps to ``sign | exp | man << k`` with the same
bias, so the unit is wiring plus the NaN canonicalization and, where one of the formats flushes
subnormals, a zeroed mantissa for exponent 0 -- a few gates instead of an unpacker and a
RoundPack (:meth:`FPConvert.is_widening`).
"""

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned

from .pipeline import Pipeline, StreamUnit
from .round import RoundPack, Unpack, check_float_format, signed_range_shape

__all__ = ["FPConvert"]


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
        src, dst = self.src_fmt, self.dst_fmt
        return src.exp_bits == dst.exp_bits and dst.man_bits >= src.man_bits

    def elaborate(self, platform):
        m = Module()
        src, dst = self.src_fmt, self.dst_fmt
        if self.is_widening:
            pipe = Pipeline(self.stages, cuts=0)     # wiring: every stage goes after it
            word = self.i.payload
            man = word[:src.man_bits]
            exp = word[src.man_bits:src.man_bits + src.exp_bits]
            sign = word[-1]
            ones = (1 << src.exp_bits) - 1
            if not (src.subnormals and dst.subnormals):
                # a subnormal of src is flushed (src) or not representable as one (dst): +-0
                man = Mux(exp == 0, 0, man)
            out = Signal(dst.width, name="widened")
            m.d.comb += out.eq(Mux((exp == ones) & (man != 0), dst.canonical_nan,
                                   Cat(man.shift_left(dst.man_bits - src.man_bits)
                                       if dst.man_bits > src.man_bits else man, exp, sign)))
            pipe.connect(m, self.i, self.o, out)
            return m
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
