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

__all__ = ["FixedAccumulator", "FixedToFloat", "FLAG_BITS", "word_width", "segment_bounds",
           "settle_latency"]

#: Flag bits above the register in an accumulator word: nan, inf, inf_sign.
FLAG_BITS = 3


def _check_fixed(name, fix):
    if not isinstance(fix, FixedFormat):
        raise TypeError(f"{name} must be a FixedFormat, not {fix!r}")
    return fix


def word_width(fix_fmt):
    """Width of an accumulator word of ``fix_fmt``: the register and :data:`FLAG_BITS`."""
    return _check_fixed("fix_fmt", fix_fmt).width + FLAG_BITS


def segment_bounds(width, segment):
    """``[(lo, hi), ...]``: the carry-save segments of a ``width``-bit register, at most
    ``segment`` bits each, LSB first (``segment`` 0: one segment, the whole register)."""
    if segment:
        return [(lo, min(lo + segment, width)) for lo in range(0, width, segment)]
    return [(0, width)]


def settle_latency(fix_fmt, segment):
    """Edges after the one that takes the last term until a :class:`FixedAccumulator` of
    ``fix_fmt`` with ``segment`` holds the exact sum: 0 unpipelined, else the term stage plus
    one edge per segment boundary (a pending carry moves up one segment per cycle)."""
    return len(segment_bounds(fix_fmt.width, segment)) if segment else 0


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
    segment : int, keyword-only
        0: one adder across the register, the term unpacked, placed and added in the cycle it
        is taken (a loop as long as the register).  ``n > 0``: pipelined -- the unpacked term
        is registered, then placed and added to a register kept in carry-save segments of at
        most ``n`` bits with a registered carry between neighbours (a loop of ``n`` adder
        bits); the sum is the same, ready :attr:`latency` cycles later.

    Attributes
    ----------
    clear : In(1)
        Reset the sum to +0 (and the flags) at the next clock edge; has priority over ``take``.
    take : In(1)
        Add ``term`` at the next clock edge.
    term : In(unsigned(term_fmt.width))
    acc : Out(unsigned(word_width(fix_fmt)))
        The accumulator word (register, nan, inf, inf_sign), straight from the registers; with
        ``segment > 0`` it is the exact sum from :attr:`latency` edges after the last take on
        (while carries are pending it is not).
    latency : int
        Edges after the one that takes the last term until ``acc`` is the exact sum (0 for
        ``segment == 0``; else 1 for the term stage plus one per segment boundary).
    src_fmt, dst_fmt, stages
        ``term_fmt``, ``fix_fmt`` and :attr:`latency`: what the synthesis report's core table
        reads (``is_core``), so the accumulators show up as cores ``E5M4->X51m18``.
    """

    is_core = True

    @property
    def stages(self):
        return self.latency

    def __init__(self, term_fmt, fix_fmt, *, segment=0):
        self.term_fmt = check_float_format("term_fmt", term_fmt)
        self.fix_fmt = _check_fixed("fix_fmt", fix_fmt)
        if not isinstance(segment, int) or isinstance(segment, bool) or segment < 0:
            raise ValueError(f"segment must be a non-negative int, not {segment!r}")
        self.segment = segment
        self.bounds = segment_bounds(fix_fmt.width, segment)
        self.latency = settle_latency(fix_fmt, segment)
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
        sig = Signal(len(u.sig))
        m.d.comb += sig.eq(Mux(u.is_inf | u.is_nan, 0, u.sig))
        nan, inf, inf_sign = Signal(), Signal(), Signal()
        if not self.segment:
            mag = Signal(unsigned(w - 1))
            m.d.comb += mag.eq(sig << off)
            term = Signal(signed(w))
            m.d.comb += term.eq(Mux(u.sign, -mag, mag))
            value = Signal(signed(w), reset_less=True)
            with m.If(self.clear):
                m.d.sync += value.eq(0)
            with m.Elif(self.take):
                # The width rule makes the sum of max_m terms fit: the wrap never happens.
                m.d.sync += value.eq(value + term)
        else:
            # Pipelined: the unpacked term (significand, offset, sign) is registered (the term
            # stage) and placed in the next cycle; the register is kept in carry-save segments
            # of at most ``segment`` bits, each with its own adder and a registered carry into
            # the next one.  A negative term enters
            # as its one's complement plus a carry into segment 0 (no negation chain).  Every
            # cycle each segment adds its slice of the staged term (zero when none) and the
            # carry the segment below produced last cycle; once the terms stop, the pending
            # carries move up one segment per cycle, so ``latency`` edges after the last take
            # the segments hold the exact two's-complement sum.
            st_sig = Signal(len(sig), reset_less=True)
            st_off = Signal(len(off), reset_less=True)
            st_neg = Signal(reset_less=True)
            st_valid = Signal()
            with m.If(self.clear):
                m.d.sync += st_valid.eq(0)
            with m.Else():
                m.d.sync += st_valid.eq(self.take)
            m.d.sync += [st_sig.eq(sig), st_off.eq(off), st_neg.eq(u.sign)]
            st_mag = Signal(unsigned(w - 1))
            m.d.comb += st_mag.eq(st_sig << st_off)
            neg = st_valid & st_neg
            term = Signal(unsigned(w))
            m.d.comb += term.eq(Mux(st_valid, Mux(st_neg, ~Cat(st_mag, Const(0, 1)),
                                                  Cat(st_mag, Const(0, 1))), 0))
            segs = [Signal(hi - lo, name=f"seg{k}", reset_less=True)
                    for k, (lo, hi) in enumerate(self.bounds)]
            carries = [Signal(name=f"carry{k}") for k in range(len(self.bounds) - 1)]
            for k, (lo, hi) in enumerate(self.bounds):
                cin = neg if k == 0 else carries[k - 1]
                total = Signal(hi - lo + 1, name=f"seg{k}_next")
                m.d.comb += total.eq(segs[k] + term[lo:hi] + cin)
                with m.If(self.clear):
                    m.d.sync += segs[k].eq(0)
                    if k < len(carries):
                        m.d.sync += carries[k].eq(0)
                with m.Else():
                    m.d.sync += segs[k].eq(total[:hi - lo])
                    if k < len(carries):
                        m.d.sync += carries[k].eq(total[hi - lo])
            value = Cat(*segs)
        with m.If(self.clear):
            m.d.sync += [nan.eq(0), inf.eq(0), inf_sign.eq(0)]
        with m.Elif(self.take):
            m.d.sync += [
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
