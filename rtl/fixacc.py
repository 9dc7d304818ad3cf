"""Exact (Kulisch) sums: a fixed-point accumulator of FP terms and its fixed-to-float converter.

Mirrors :func:`lightnorm.golden.bn._exact_sum` (docs/bn-spec.md, "Sums"): every finite term of a
FloatFormat is an integer multiple of ``2**lsb_exp`` of the register
(:func:`lightnorm.golden.bnconfig.exact_sum_format` chooses ``lsb_exp`` and the width so that
``n`` terms of the largest magnitude cannot overflow it).  :class:`FixedAccumulator` places each
term (sign, exponent, significand; subnormals; zero) at its position in a two's-complement
register and adds it -- an integer adder in the loop instead of an FP adder, and a sum that is
exact and independent of the order of the terms.  :class:`FixedToFloat` rounds the complete sum
ONCE into a FloatFormat through the one :class:`~lightnorm.rtl.round.RoundPack` (leading-zero
count, shift, round, overflow, flush-to-zero all live there).

The accumulator word (what :class:`FixedToFloat` takes) is the register plus three flag bits,
LSB first: ``value`` (``fix_fmt.width`` bits, two's complement), ``nan``, ``inf``, ``inf_sign``
(:data:`FLAG_BITS`).  IEEE semantics of a sequential sum: a NaN term, or an +Inf and a -Inf
term, make the sum NaN; otherwise an infinite term makes it that Inf.  An exact zero sum is +0.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lightnorm.golden.bnconfig import FixedFormat
from .pipeline import Pipeline, StreamUnit
from .round import RoundPack, Unpack, check_float_format, signed_range_shape

__all__ = ["FixedAccumulator", "FixedToFloat", "FLAG_BITS", "word_width"]

#: Flag bits above the register in an accumulator word: nan, inf, inf_sign.
FLAG_BITS = 3


def _check_fixed(name, fix):
    if not isinstance(fix, FixedFormat):
        raise TypeError(f"{name} must be a FixedFormat, not {fix!r}")
    return fix


def word_width(fix_fmt):
    """Width of an accumulator word of ``fix_fmt``: the register and :data:`FLAG_BITS`."""
    return _check_fixed("fix_fmt", fix_fmt).width + FLAG_BITS


class FixedAccumulator(wiring.Component):
    """``acc = acc + term`` exactly, one FP term per cycle, in a fixed-point register.

    Parameters
    ----------
    term_fmt : FloatFormat
        Format of the terms.
    fix_fmt : FixedFormat
        The register: every finite ``term_fmt`` value must be an integer multiple of
        ``2**fix_fmt.lsb_exp`` and the largest one must fit (checked); use
        :func:`~lightnorm.golden.bnconfig.exact_sum_format` to size it for ``n`` terms.

    Attributes
    ----------
    clear : In(1)
        Reset the sum to +0 (and the flags) at the next clock edge; has priority over ``take``.
    take : In(1)
        Add ``term`` at the next clock edge.
    term : In(unsigned(term_fmt.width))
    acc : Out(unsigned(word_width(fix_fmt)))
        The accumulator word (register, nan, inf, inf_sign), straight from the registers.
    src_fmt, dst_fmt, stages
        ``term_fmt``, ``fix_fmt`` and 0: what the synthesis report's core table reads
        (``is_core``), so the accumulators show up as cores ``E5M4->X51m18``.
    """

    is_core = True
    stages = 0

    def __init__(self, term_fmt, fix_fmt):
        self.term_fmt = check_float_format("term_fmt", term_fmt)
        self.fix_fmt = _check_fixed("fix_fmt", fix_fmt)
        self.src_fmt, self.dst_fmt = term_fmt, fix_fmt
        t = term_fmt
        lo = t.emin - t.man_bits - fix_fmt.lsb_exp
        if lo < 0:
            raise ValueError(f"fix_fmt.lsb_exp ({fix_fmt.lsb_exp}) must be at most the LSB "
                             f"exponent of term_fmt {t.name} ({t.emin - t.man_bits})")
        top = (((1 << t.precision) - 1) << (t.emax - t.emin + lo)).bit_length()
        if top + 1 > fix_fmt.width:
            raise ValueError(f"fix_fmt.width ({fix_fmt.width}) cannot hold one {t.name} term: "
                             f"it needs at least {top + 1} bits")
        super().__init__({
            "clear": In(1),
            "take": In(1),
            "term": In(unsigned(t.width)),
            "acc": Out(unsigned(word_width(fix_fmt))),
        })

    def elaborate(self, platform):
        m = Module()
        t, fix = self.term_fmt, self.fix_fmt
        w = fix.width
        m.submodules.unpack = u = Unpack(t)
        m.d.comb += u.a.eq(self.term)

        # Position of the significand's LSB in the register; only finite terms use it.
        base = t.man_bits + fix.lsb_exp
        span = t.emax - t.emin + (t.emin - t.man_bits - fix.lsb_exp)
        off = Signal(range(span + 1))
        m.d.comb += off.eq(Mux(u.is_inf | u.is_nan, 0, u.exp - base))
        mag = Signal(unsigned(w - 1))
        m.d.comb += mag.eq(Mux(u.is_inf | u.is_nan, 0, u.sig) << off)
        term = Signal(signed(w))
        m.d.comb += term.eq(Mux(u.sign, -mag, mag))

        value = Signal(signed(w), reset_less=True)
        nan, inf, inf_sign = Signal(), Signal(), Signal()
        with m.If(self.clear):
            m.d.sync += [value.eq(0), nan.eq(0), inf.eq(0), inf_sign.eq(0)]
        with m.Elif(self.take):
            m.d.sync += [
                # The width rule makes the sum of max_m terms fit: the wrap never happens.
                value.eq(value + term),
                nan.eq(nan | u.is_nan | (inf & u.is_inf & (inf_sign != u.sign))),
                inf.eq(inf | u.is_inf),
                inf_sign.eq(Mux(inf, inf_sign, u.sign)),
            ]
        m.d.comb += self.acc.eq(Cat(value, nan, inf, inf_sign))
        return m


class FixedToFloat(StreamUnit):
    """Round an accumulator word of :class:`FixedAccumulator` once into a FloatFormat.

    Two's complement -> sign and magnitude, then :class:`~lightnorm.rtl.round.RoundPack` with
    the register's LSB exponent (it counts the leading zeros, shifts, rounds in
    ``dst_fmt.rounding``, and overflows to Inf (rne) or the largest finite (rtz)).  Mirrors the
    rounding of :func:`lightnorm.golden.bn._exact_sum`.

    Parameters
    ----------
    fix_fmt : FixedFormat
        The accumulator register.
    dst_fmt : FloatFormat
        Result format.
    stages : int, keyword-only
        Register stages, >= 0 (the first after the magnitude, further ones after rounding).

    Attributes
    ----------
    i : In(stream.Signature(unsigned(word_width(fix_fmt))))
    o : Out(stream.Signature(unsigned(dst_fmt.width)))
    latency : int
    """

    CUTS = 1

    def __init__(self, fix_fmt, dst_fmt, *, stages=1):
        self.fix_fmt = _check_fixed("fix_fmt", fix_fmt)
        self.dst_fmt = check_float_format("dst_fmt", dst_fmt)
        self.src_fmt = fix_fmt           # the synthesis report's core label: X51m18->E6M12
        super().__init__(unsigned(word_width(fix_fmt)), unsigned(dst_fmt.width), stages=stages)

    def elaborate(self, platform):
        m = Module()
        fix, dst = self.fix_fmt, self.dst_fmt
        w = fix.width
        pipe = Pipeline(self.stages, cuts=self.CUTS)
        word = self.i.payload
        value = word[:w].as_signed()
        nan, inf, inf_sign = word[w], word[w + 1], word[w + 2]
        neg = value[w - 1]
        mag = Signal(unsigned(w))
        # -2**(w-1) negates to itself as a w-bit pattern, which read unsigned is its magnitude.
        m.d.comb += mag.eq(Mux(neg, -value, value))
        sign, mag, nan, inf = pipe.cut(m, (Mux(inf, inf_sign, neg), mag, nan, inf),
                                       name="magnitude")
        exp_shape = signed_range_shape(fix.lsb_exp, fix.lsb_exp + w)
        m.submodules.round = rp = RoundPack(dst, w, exp_shape.width, exp_min=fix.lsb_exp)
        m.d.comb += rp.drive(sign=sign, exp=Const(fix.lsb_exp, exp_shape), sig=mag, is_nan=nan,
                             is_inf=inf)
        pipe.connect(m, self.i, self.o, rp.bits)
        return m
