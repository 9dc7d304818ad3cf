"""FP multiply: ``o = a * b``, rounded once by :class:`~lightnorm.rtl.round.RoundPack`.

Mirrors :func:`lightnorm.golden.fp.mul`: the exact product of the two unpacked significands
(``2p`` bits, subnormal significands used as they are, no pre-normalization) with exponent
``exp_a + exp_b`` of its LSB and sticky 0 goes to RoundPack, which normalizes it.  Sign
``sign_a ^ sign_b``, also for zero products.  NaN for a NaN operand or ``0 * Inf``; otherwise Inf
if an operand is Inf.
"""

from amaranth.hdl import Module, unsigned
from amaranth.lib import data

from .pipeline import Pipeline, StreamUnit
from .round import RoundPack, Unpack, check_float_format, signed_range_shape

__all__ = ["FPMul"]


class FPMul(StreamUnit):
    """Floating-point multiplier with a stream interface.

    Parameters
    ----------
    fmt : FloatFormat
        Operand and result format (rounding mode and subnormal handling included).
    stages : int, keyword-only
        Register stages, >= 0.  The first goes after the significand multiplier, the second after
        unpacking; further stages follow the rounding stage.

    Attributes
    ----------
    i : In(stream.Signature(StructLayout({"a": w, "b": w})))
    o : Out(stream.Signature(unsigned(w)))
    latency : int
        Register stages between ``i`` and ``o`` (= ``stages``).
    """

    CUTS = 2

    def __init__(self, fmt, *, stages=1):
        self.fmt = check_float_format("fmt", fmt)
        w = fmt.width
        super().__init__(data.StructLayout({"a": w, "b": w}), unsigned(w), stages=stages)

    def elaborate(self, platform):
        m = Module()
        fmt = self.fmt
        p = fmt.precision
        pipe = Pipeline(self.stages, cuts=self.CUTS)

        m.submodules.unpack_a = ua = Unpack(fmt)
        m.submodules.unpack_b = ub = Unpack(fmt)
        m.d.comb += [ua.a.eq(self.i.payload.a), ub.a.eq(self.i.payload.b)]

        sign = ua.sign ^ ub.sign
        nan = ua.is_nan | ub.is_nan | (ua.is_inf & ub.is_zero) | (ua.is_zero & ub.is_inf)
        inf = ua.is_inf | ub.is_inf
        # Hidden-bit exponents; the product's LSB exponent is their sum minus 2*man_bits.
        exp_sum = ua.exp + ub.exp

        ma, mb, exp_sum, sign, nan, inf = pipe.cut(
            m, (ua.sig, ub.sig, exp_sum, sign, nan, inf), name="unpacked")

        prod = (ma * mb)[:2 * p]

        prod, exp_sum, sign, nan, inf = pipe.cut(m, (prod, exp_sum, sign, nan, inf),
                                                 name="product")

        exp_shape = signed_range_shape(2 * (fmt.emin - 2 * fmt.man_bits), 2 * (fmt.emax + 1))
        m.submodules.round = rp = RoundPack(fmt, 2 * p, exp_shape.width)
        m.d.comb += rp.drive(sign=sign, exp=exp_sum - 2 * fmt.man_bits, sig=prod, is_nan=nan,
                             is_inf=inf)
        pipe.connect(m, self.i, self.o, rp.bits)
        return m
