"""FP minimum/maximum: IEEE 754-2019 minimumNumber / maximumNumber (754-2008 minNum/maxNum).

Mirrors :func:`lightnorm.golden.fp.min` / :func:`~lightnorm.golden.fp.max`:

* subnormal inputs of an FTZ format are flushed to zeros of the same sign first, and the flushed
  operand is what the unit returns;
* operands are ordered by value with ``-0 < +0`` (so ``min(-0, +0) = -0``, ``max(-0, +0) = +0``);
* one NaN operand -> the other operand; both NaN -> ``fmt.canonical_nan``.

No rounding happens, so the result needs no RoundPack.
"""

from amaranth.hdl import Module, Const, Cat, Mux, Signal, unsigned
from amaranth.lib import data

from .pipeline import Pipeline, StreamUnit
from .round import Unpack, check_float_format

__all__ = ["FPMinMax"]


class FPMinMax(StreamUnit):
    """Floating-point min/max with a stream interface.

    Parameters
    ----------
    fmt : FloatFormat
        Operand format; only ``subnormals`` matters (no rounding happens).
    stages : int, keyword-only
        Register stages, >= 0.  The first goes after the comparison; further stages follow the
        output selection.

    Attributes
    ----------
    i : In(stream.Signature(StructLayout({"a": w, "b": w, "max": 1})))
        ``max = 1`` selects maximumNumber, 0 minimumNumber.
    o : Out(stream.Signature(unsigned(w)))
    latency : int
        Register stages between ``i`` and ``o`` (= ``stages``).
    """

    CUTS = 1

    def __init__(self, fmt, *, stages=1):
        self.fmt = check_float_format("fmt", fmt)
        w = fmt.width
        super().__init__(data.StructLayout({"a": w, "b": w, "max": 1}), unsigned(w), stages=stages)

    def elaborate(self, platform):
        m = Module()
        fmt = self.fmt
        w = fmt.width
        pipe = Pipeline(self.stages, cuts=self.CUTS)

        m.submodules.unpack_a = ua = Unpack(fmt)
        m.submodules.unpack_b = ub = Unpack(fmt)
        m.d.comb += [ua.a.eq(self.i.payload.a), ub.a.eq(self.i.payload.b)]

        # Flush (FTZ subnormals become signed zeros; a real zero is unchanged by this).
        a = Mux(ua.is_zero, Cat(Const(0, w - 1), ua.sign), self.i.payload.a)
        b = Mux(ub.is_zero, Cat(Const(0, w - 1), ub.sign), self.i.payload.b)

        # a < b in value order with -0 < +0: different signs -> a is the negative one; same sign
        # -> magnitude order, reversed for negatives.  Equal magnitudes and signs mean equal
        # (flushed) bit patterns, where either choice is the same result, so one magnitude
        # comparator is enough (no two's-complement keys as in the golden model: same order).
        sa, sb = a[w - 1], b[w - 1]
        a_lt_b = Mux(sa != sb, sa, (a[:w - 1] < b[:w - 1]) ^ sa)
        pick_a = Mux(self.i.payload.max, ~a_lt_b, a_lt_b)

        a, b, pick_a, nan_a, nan_b = pipe.cut(m, (a, b, pick_a, ua.is_nan, ub.is_nan),
                                              name="compare")

        res = Signal(unsigned(w))
        with m.If(nan_a & nan_b):
            m.d.comb += res.eq(fmt.canonical_nan)
        with m.Elif(nan_b | (pick_a & ~nan_a)):
            m.d.comb += res.eq(a)
        with m.Else():
            m.d.comb += res.eq(b)
        pipe.connect(m, self.i, self.o, res)
        return m
