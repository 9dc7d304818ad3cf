"""FP divide: ``o = a / b``, correctly rounded once by :class:`~lightnorm.rtl.round.RoundPack`.

Scheme (the same intermediate as :func:`lightnorm.golden.fp.div`)
-----------------------------------------------------------------
Both operands are unpacked and their significands normalized to ``p = fmt.precision`` bits
(subnormals by a leading-zero shift), so ``a = A * 2^ea`` and ``b = B * 2^eb`` with
``A, B`` in ``[2^(p-1), 2^p)``.  A restoring divider produces ``p + 3`` quotient bits

    q = floor(A * 2^(p+2) / B),   sticky = (A * 2^(p+2) mod B) != 0,

so ``a / b = (q + sticky*eps) * 2^(ea - eb - p - 2)`` with ``q`` in ``[2^(p+1), 2^(p+3))``: at
least ``p + 2`` significant bits plus a sticky bit -- one more than a single correct rounding needs
at any result exponent (subnormal range included), kept so that ``(sign, exp, q, sticky)`` is
exactly the intermediate golden ``div`` hands to ``round_pack``.

Why a digit-recurrence divider and not reciprocal + multiply: the BN unit needs one division per
channel (its scale ``gamma / sigma``), so correctness and a single rounding matter more than area;
a restoring array of ``p + 3`` subtract/compare rows of ``p + 1`` bits is exact, easy to check and
its rows split naturally across pipeline stages (``stages`` registers are placed by
:mod:`lightnorm.rtl.pipeline`).

IEEE special cases (checked before rounding, override the rounded value): any NaN operand, 0/0 and
Inf/Inf give the canonical NaN; x/0 for finite non-zero x gives Inf with sign ``sa ^ sb``;
0/y and finite/Inf give a zero with sign ``sa ^ sb``; Inf/finite gives a signed Inf.
With ``fmt.subnormals=False`` subnormal inputs are read as zeros of the same sign.
"""

from amaranth.hdl import Module, Signal, Const, Cat, Mux, unsigned
from amaranth.lib import data

from .round import RoundPack, Unpack, check_float_format, signed_range_shape
from .pipeline import Pipeline, StreamUnit

__all__ = ["FPDiv"]


def restoring_divide(m, num, den, quotient_bits, *, pipe=None, cut_rows=(), carry=()):
    """Add a restoring divider to module ``m``, optionally cut into pipeline stages.

    Parameters
    ----------
    m : Module
    num, den : Value
        Unsigned, normalized to the same width ``n`` (both MSBs set, so ``num / den`` is in
        ``(1/2, 2)``); ``den`` non-zero.
    quotient_bits : int
        Number of quotient bits ``k``.
    pipe : Pipeline or None
        If given, ``pipe.cut`` is called after each row listed in ``cut_rows``.
    cut_rows : iterable of int
        Rows (0 .. k-2) after which a pipeline cut is marked.
    carry : tuple of Value
        Side values that travel through the same cuts (returned in their final, possibly
        registered, form).

    Returns
    -------
    (q, sticky, carry) : (Value, Value, tuple)
        ``q = floor(num * 2^(k-1) / den)`` (``k`` bits) and ``sticky = remainder != 0``.
    """
    n = len(den)
    cut_rows = set(cut_rows)
    rem = Signal(n + 1, name="div_rem0")
    m.d.comb += rem.eq(num)
    qbits = Const(0, 0)        # quotient bits found so far, MSB first (grows at the LSB end)
    for i in range(quotient_bits):
        # Invariant: rem < 2 * den, so one compare/subtract decides quotient bit i (MSB first).
        ge = Signal(name=f"div_q{quotient_bits - 1 - i}")
        m.d.comb += ge.eq(rem >= den)
        diff = Signal(n + 1, name=f"div_diff{i}")
        m.d.comb += diff.eq(Mux(ge, rem - den, rem))
        qbits = Cat(ge, qbits)
        if i < quotient_bits - 1:
            nxt = Signal(n + 1, name=f"div_rem{i + 1}")
            m.d.comb += nxt.eq(diff << 1)   # diff < den < 2^n, so the shift cannot lose a bit
            rem = nxt
            if pipe is not None and i in cut_rows:
                # Pipeline.cut registers a flat tuple; the quotient bits so far, the divisor
                # and the side values travel with the partial remainder.
                rem, den, qbits, *carry = pipe.cut(m, (rem, den, qbits, *carry),
                                                   name=f"div_row{i}")
        else:
            rem = diff
    sticky = Signal(name="div_sticky")
    m.d.comb += sticky.eq(rem != 0)
    return qbits, sticky, tuple(carry)


class FPDiv(StreamUnit):
    """FP divide ``a / b`` in ``fmt``, correctly rounded in ``fmt.rounding``.

    Parameters
    ----------
    fmt : FloatFormat
        Operand and result format (also gives rounding mode and subnormal handling).
    stages : int, keyword-only
        Register stages between ``i`` and ``o`` (>= 0; 0 = combinational).

    Attributes
    ----------
    i : In(stream.Signature(StructLayout({"a": fmt.width, "b": fmt.width})))
        Operands, ``a`` in the low bits.
    o : Out(stream.Signature(unsigned(fmt.width)))
        The rounded quotient.
    latency : int
        Register stages from ``i`` to ``o`` (equals ``stages``).

    Notes
    -----
    Registers may go after unpacking, after each quarter of the ``p + 3`` divider rows, and
    before RoundPack (5 places for every format); ``stages`` are spread evenly over them and any
    further stages follow RoundPack.
    """

    def __init__(self, fmt, *, stages=1):
        self.fmt = check_float_format("fmt", fmt)
        w = fmt.width
        super().__init__(data.StructLayout({"a": w, "b": w}), unsigned(w), stages=stages)

    def elaborate(self, platform):
        m = Module()
        fmt = self.fmt
        p = fmt.precision

        m.submodules.unpack_a = ua = Unpack(fmt, normalize=True)
        m.submodules.unpack_b = ub = Unpack(fmt, normalize=True)
        m.d.comb += [ua.a.eq(self.i.payload.a), ub.a.eq(self.i.payload.b)]

        # a / b = (A / B) * 2^(ea - eb) = (q + sticky*eps) * 2^(ea - eb - (p + 2)) with
        # q = floor(A * 2^(p+2) / B); the 2^-man_bits of both operands cancel.
        lo = (fmt.emin - fmt.man_bits) - (fmt.emax + 1) - (p + 2)
        hi = (fmt.emax + 1) - (fmt.emin - fmt.man_bits) - (p + 2)
        exp_shape = signed_range_shape(lo, hi)
        exp = Signal(exp_shape)
        m.d.comb += exp.eq(ua.exp - ub.exp - (p + 2))
        side = (
            ua.sign ^ ub.sign,
            exp,
            # IEEE specials, in RoundPack's precedence NaN > Inf > zero.
            ua.is_nan | ub.is_nan | (ua.is_zero & ub.is_zero) | (ua.is_inf & ub.is_inf),
            ua.is_inf | ub.is_zero,
            ua.is_zero | ub.is_inf,
        )

        # Pipeline cuts: after unpacking, after every quarter of the divider rows, and before
        # rounding; `stages` registers are spread evenly over them (see pipeline.Pipeline).
        nq = p + 3
        cut_rows = sorted({(nq * j) // 4 - 1 for j in range(1, 4)} - {-1, nq - 1})
        pipe = Pipeline(self.stages, cuts=2 + len(cut_rows))
        sig_a, sig_b, *side = pipe.cut(m, (ua.sig, ub.sig, *side), name="unpacked")
        q, sticky, side = restoring_divide(m, sig_a, sig_b, nq, pipe=pipe, cut_rows=cut_rows,
                                           carry=side)
        q, sticky, *side = pipe.cut(m, (q, sticky, *side), name="quotient")
        sign, exp, is_nan, is_inf, is_zero = side

        m.submodules.round = rp = RoundPack(fmt, nq, exp_shape.width)
        m.d.comb += rp.drive(sign=sign, exp=exp, sig=q, sticky=sticky, is_nan=is_nan, is_inf=is_inf,
                             is_zero=is_zero)
        pipe.connect(m, self.i, self.o, rp.bits)
        return m
