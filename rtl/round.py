"""The one rounding/packing stage and the one input classifier every arithmetic unit shares.

HardFloat style: each operator computes an *unrounded* intermediate -- a sign, a signed exponent,
an integer significand that need not be normalized, and a sticky bit -- and hands it to
:class:`RoundPack`, which normalizes, rounds in the format's mode, handles subnormal results,
overflow, flush-to-zero and the special values, and packs the IEEE bit pattern.  The golden model
does the same in :func:`lightnorm.golden.fp.round_pack`; the two are meant to be read side by side.

On the input side :class:`Unpack` splits a bit pattern into sign, exponent and significand (hidden
bit made explicit) and classifies it, flushing subnormal inputs when the format has no subnormals.

Two small combinational helpers used by the units live here too: :func:`leading_zeros` (a
log-depth leading-zero counter) and :func:`shift_right_sticky` (a right shift that ORs the bits it
drops into a sticky bit).

All components in this module are purely combinational (no clock domain).
"""

from amaranth.hdl import Const, C, Cat, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for

from lightnorm.golden.formats import FloatFormat

__all__ = ["RoundPack", "Unpack", "leading_zeros", "shift_right_sticky", "signed_range_shape",
           "check_float_format", "check_positive_int"]


# -- argument checks shared by the units ----------------------------------------------------------
def check_float_format(name, fmt):
    """Raise ``TypeError`` unless ``fmt`` is a :class:`FloatFormat`; return it."""
    if not isinstance(fmt, FloatFormat):
        raise TypeError(f"{name} must be a FloatFormat, not {fmt!r}")
    return fmt


def check_positive_int(name, value, minimum=1):
    """Raise ``TypeError``/``ValueError`` unless ``value`` is an int ``>= minimum``; return it."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value}")
    return value


def signed_range_shape(lo, hi):
    """Smallest ``signed`` shape holding every integer in ``[lo, hi]``."""
    width = max(bits_for(lo, require_sign_bit=True), bits_for(hi, require_sign_bit=True))
    return signed(width)


# -- combinational helpers ------------------------------------------------------------------------
def _lzc_pow2(bits):
    """Leading-zero count of a power-of-two-wide value, ``log2(width)`` bits wide (the count of an
    all-zero value is not defined here; :func:`leading_zeros` handles it).

    Each Python sub-expression is used exactly once: Amaranth emits an expression again at every
    use, so a flag shared between two uses would double the logic at every tree level.
    """
    if len(bits) == 1:
        return C(0, 0)
    half = len(bits) // 2
    # If the upper half is all zero the count is half + count(lower half): the new MSB is 1.
    return Mux(bits[half:].any(), Cat(_lzc_pow2(bits[half:]), C(0, 1)),
               Cat(_lzc_pow2(bits[:half]), C(1, 1)))


def leading_zeros(value):
    """Number of leading zero bits of an unsigned value, as an expression.

    A balanced tree (depth log2 of the width) rather than a priority chain, so the count is cheap
    in delay for the 48-bit FP32 products.

    Parameters
    ----------
    value : Value
        Unsigned value of width ``w >= 1``.

    Returns
    -------
    Value
        ``unsigned(bits_for(w))``; equals ``w`` when ``value == 0``.
    """
    value = Value.cast(value)
    width = len(value)
    if width < 1:
        raise ValueError(f"leading_zeros needs a value at least 1 bit wide, not {width}")
    n = 1 << (width - 1).bit_length()
    # Pad on the LSB side with ones: the count of a non-zero value is unchanged, and an all-zero
    # value then counts exactly `width` (unless no padding was needed; handled below).
    padded = Cat(Const((1 << (n - width)) - 1, n - width), value)
    return Mux(padded.any(), _lzc_pow2(padded), width)[:bits_for(width)]


def shift_right_sticky(value, amount):
    """Logical right shift that also reports whether any 1 bit was shifted out.

    Parameters
    ----------
    value : Value
        Unsigned value of width ``w``.
    amount : Value
        Unsigned shift amount; amounts ``>= w`` shift everything out.

    Returns
    -------
    (Value, Value)
        ``(value >> amount)`` of width ``w`` and a 1-bit sticky (OR of the bits shifted out).
    """
    value = Value.cast(value)
    amount = Value.cast(amount)
    width = len(value)
    # Clamp the amount so the shifter below is only 2*width bits wide whatever `amount`'s width.
    limit = bits_for(width)
    if len(amount) > limit or (1 << len(amount)) - 1 > width:
        amount = Mux(amount > width, width, amount)[:limit]
    wide = Cat(Const(0, width), value) >> amount
    return wide[width:], wide[:width].any()


def _wire(m, value, name):
    """A named comb signal carrying ``value``: shares one expression among its uses, so that
    generated Verilog and the Python simulator do not repeat it at every use."""
    value = Value.cast(value)
    sig = Signal(value.shape(), name=name)
    m.d.comb += sig.eq(value)
    return sig


# -- the rounding/packing stage -------------------------------------------------------------------
class RoundPack(wiring.Component):
    """Normalize, round and pack ``(-1)**sign * (sig + sticky*eps) * 2**exp`` into ``fmt``.

    ``eps`` is a positive amount smaller than one unit of ``sig``'s LSB: ``sticky`` says "the exact
    value has more non-zero bits below ``sig``".  ``sig`` need not be normalized; the leading-zero
    count and shift happen here.  Combinational.  (The golden model requires ``sig`` to have a bit
    below the result's LSB whenever ``sticky`` is set; if a caller breaks that, the hardware
    treats the sticky as lying below the guard bit.)

    Steps: ``e0`` = biased exponent of ``sig``'s top bit; shift left by the leading-zero count,
    clamped so the exponent field stays >= 1 (the subnormal grid); if ``e0 < 1``, shift right
    instead, ORing lost bits into the sticky; round ``precision`` bits with guard and sticky;
    pack as ``(exp_field_base << man_bits) + rounded`` so the hidden bit and a rounding carry add
    into the exponent field; then overflow, flush-to-zero and the special overrides.

    Rules (mirroring :func:`lightnorm.golden.fp.round_pack`):

    * precedence: ``is_nan`` -> ``fmt.canonical_nan`` (sign 0); else ``is_inf`` -> signed Inf;
      else ``is_zero`` or ``sig == 0`` -> signed zero (a lone sticky bit is below half an ulp of
      any representable value, so neither mode rounds it up);
    * the value is rounded once to ``fmt.precision`` bits, or to the subnormal grid ``2**(emin -
      man_bits)`` when it is below the normal range, in ``fmt.rounding``: ``"rne"`` ties to even,
      ``"rtz"`` truncates;
    * a rounded result whose exponent field reaches all ones overflows: ``"rne"`` -> signed Inf,
      ``"rtz"`` -> signed largest finite;
    * ``fmt.subnormals=False``: after rounding with subnormal precision, a result whose exponent
      field is 0 and mantissa non-zero is flushed to signed zero (a value that rounds up to the
      smallest normal number stays).

    Parameters
    ----------
    fmt : FloatFormat
        Output format.
    sig_width : int
        Width of the ``sig`` port, >= 1.
    exp_width : int
        Width of the signed ``exp`` port, >= 2.
    exp_min : int or None, keyword-only
        The smallest value the caller ever drives on ``exp`` (None: anything the port holds).
        When even the smallest ``exp`` keeps ``sig``'s top bit in the normal range, the
        right shifter for results below it is left out (saves a ``sig_width`` barrel shifter
        in adders and widening conversions).  Driving a smaller ``exp`` then gives wrong results.

    Attributes
    ----------
    sign : In(1)
    exp : In(signed(exp_width))
        Exponent of ``sig``'s LSB (unbiased): the value is ``sig * 2**exp``.
    sig : In(unsigned(sig_width))
        Integer significand, any normalization.
    sticky : In(1)
        Non-zero bits below ``sig``'s LSB.
    is_nan, is_inf, is_zero : In(1)
        Special-value overrides, in this precedence.
    bits : Out(unsigned(fmt.width))
        The packed result.
    """

    def __init__(self, fmt, sig_width, exp_width, *, exp_min=None):
        self.fmt = check_float_format("fmt", fmt)
        self.sig_width = check_positive_int("sig_width", sig_width, 1)
        self.exp_width = check_positive_int("exp_width", exp_width, 2)
        if exp_min is not None and (isinstance(exp_min, bool) or not isinstance(exp_min, int)):
            raise TypeError(f"exp_min must be an integer or None, not {exp_min!r}")
        self.exp_min = exp_min
        super().__init__({
            "sign": In(1),
            "exp": In(signed(exp_width)),
            "sig": In(unsigned(sig_width)),
            "sticky": In(1),
            "is_nan": In(1),
            "is_inf": In(1),
            "is_zero": In(1),
            "bits": Out(unsigned(fmt.width)),
        })

    def drive(self, *, sign, exp, sig, sticky=0, is_nan=0, is_inf=0, is_zero=0):
        """The statements that drive every input port (an exact operand: ``sticky = 0``; no
        special: the flags 0), for ``m.d.comb +=``: every unit that rounds through a RoundPack
        connects it with this one call."""
        return [self.sign.eq(sign), self.exp.eq(exp), self.sig.eq(sig), self.sticky.eq(sticky),
                self.is_nan.eq(is_nan), self.is_inf.eq(is_inf), self.is_zero.eq(is_zero)]

    def elaborate(self, platform):
        m = Module()
        fmt = self.fmt
        p = fmt.precision
        # Working width: at least p kept bits + a guard bit; narrower inputs are padded below.
        w = max(self.sig_width, p + 1)
        sig = Cat(Const(0, w - self.sig_width), self.sig)

        # 1. Normalize.  `e0` = biased exponent `sig`'s top bit would have; a left shift by `lz`
        #    puts the leading one there.  The shift is clamped at `room = e0 - 1`, which brings
        #    the LSB grid down to the subnormal grid (exponent field 1 and 0 share it), so a value
        #    below the normal range ends up as a subnormal without a second shift.
        e0 = _wire(m, self.exp + (self.sig_width - 1 + fmt.bias), "e0")
        room = e0 - 1
        lz = _wire(m, leading_zeros(sig), "lz")
        left = _wire(m, Mux(room <= 0, 0, Mux(lz > room, room, lz))[:len(lz)], "left")
        norm = _wire(m, (sig << left)[:w], "norm")
        # Exponent field before the hidden bit is added (step 4): e0 - 1 - left, 0 when clamped.
        exp_base = _wire(m, Mux(room > left, room - left, 0), "exp_base")

        # 2. If even the top bit lies below the normal range (e0 < 1), shift right onto the
        #    subnormal grid; bits shifted out join the sticky bit.  Statically absent when the
        #    caller's `exp_min` rules it out (adders, widening conversions).
        if self.exp_min is None or self.exp_min + self.sig_width - 1 + fmt.bias < 1:
            rs = Mux(e0 < 1, 1 - e0, 0)
            rs = _wire(m, Mux(rs > w, w, rs)[:bits_for(w)], "rs")
            kept, lost = shift_right_sticky(norm, rs)
            kept = _wire(m, kept, "kept")
            lost = _wire(m, lost, "lost")
        else:
            kept, lost = norm, C(0, 1)

        # 3. Round to p bits: mant | guard | rest -> sticky.
        mant = kept[w - p:]
        guard = kept[w - p - 1]
        sticky = lost | self.sticky
        if w - p - 1 > 0:
            sticky = sticky | kept[:w - p - 1].any()
        if fmt.rounding == "rne":
            inc = guard & (sticky | mant[0])
        else:  # "rtz": truncate
            inc = C(0, 1)
        rounded = _wire(m, (mant + inc)[:p + 1], "rounded")

        # 4. Pack.  `rounded`'s bits above the fraction (hidden bit, carry) add to the exponent
        #    field: a normal value contributes e-1 plus its hidden 1, a carry out of the mantissa
        #    adds one more, and a subnormal that rounds up to 2**man_bits becomes the smallest
        #    normal on its own.
        exp_field = _wire(m, exp_base + rounded[fmt.man_bits:], "exp_field")
        frac = rounded[:fmt.man_bits]
        overflow = exp_field >= fmt.exp_all_ones
        flush = (exp_field == 0) & (frac != 0) if not fmt.subnormals else C(0, 1)

        sign_bit = self.sign << (fmt.width - 1)
        signed_zero = sign_bit
        if fmt.rounding == "rne":
            overflow_value = sign_bit | fmt.pos_inf
        else:
            overflow_value = sign_bit | fmt.max_finite

        with m.If(self.is_nan):
            m.d.comb += self.bits.eq(fmt.canonical_nan)
        with m.Elif(self.is_inf):
            m.d.comb += self.bits.eq(sign_bit | fmt.pos_inf)
        with m.Elif(self.is_zero | (self.sig == 0)):
            m.d.comb += self.bits.eq(signed_zero)
        with m.Elif(overflow):
            m.d.comb += self.bits.eq(overflow_value)
        with m.Elif(flush):
            m.d.comb += self.bits.eq(signed_zero)
        with m.Else():
            m.d.comb += self.bits.eq(Cat(frac, exp_field[:fmt.exp_bits], self.sign))
        return m


# -- the input classifier -------------------------------------------------------------------------
class Unpack(wiring.Component):
    """Split a bit pattern of ``fmt`` into sign, exponent and significand, and classify it.

    Combinational.  For a finite input the value is ``(-1)**sign * sig * 2**(exp - man_bits)``,
    i.e. ``exp`` is the unbiased exponent of the hidden-bit position (golden
    :func:`lightnorm.golden.fp.unpack` returns the LSB exponent, ``exp - man_bits``; the units
    subtract ``man_bits`` where they hand an LSB exponent to RoundPack).  Subnormal inputs are flushed
    to zero of the same sign when ``fmt.subnormals`` is False (then ``is_sub`` is never set).

    Parameters
    ----------
    fmt : FloatFormat
    normalize : bool
        If True, subnormal significands are shifted left so ``sig``'s MSB is set for every non-zero
        finite input, and ``exp`` goes below ``emin`` accordingly (what multipliers, dividers and
        square roots want).  If False, subnormals keep ``exp == emin`` and a 0 hidden bit
        (what adders want).

    Attributes
    ----------
    a : In(unsigned(fmt.width))
        Input bit pattern.
    sign : Out(1)
    exp : Out(signed(exp_width))
        ``exp_width`` (attribute) is just wide enough for ``[emin - man_bits, emax + 1]``.
        Zero inputs give ``exp = emin``; Inf/NaN give ``emax + 1`` (don't care).
    sig : Out(unsigned(fmt.precision))
        Significand with the hidden bit explicit (0 for zeros).
    is_zero, is_sub, is_inf, is_nan : Out(1)
        Classification after flushing; ``is_sub`` marks a (non-flushed) subnormal input.
    """

    def __init__(self, fmt, *, normalize=False):
        self.fmt = check_float_format("fmt", fmt)
        if not isinstance(normalize, bool):
            raise TypeError(f"normalize must be a bool, not {normalize!r}")
        self.normalize = normalize
        self.exp_shape = signed_range_shape(fmt.emin - fmt.man_bits, fmt.emax + 1)
        self.exp_width = self.exp_shape.width
        super().__init__({
            "a": In(unsigned(fmt.width)),
            "sign": Out(1),
            "exp": Out(self.exp_shape),
            "sig": Out(unsigned(fmt.precision)),
            "is_zero": Out(1),
            "is_sub": Out(1),
            "is_inf": Out(1),
            "is_nan": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        fmt = self.fmt
        frac = self.a[:fmt.man_bits]
        efield = self.a[fmt.man_bits:fmt.man_bits + fmt.exp_bits]
        e_zero = efield == 0
        e_ones = efield == fmt.exp_all_ones
        f_zero = frac == 0
        sub = e_zero & ~f_zero

        m.d.comb += [
            self.sign.eq(self.a[-1]),
            self.is_inf.eq(e_ones & f_zero),
            self.is_nan.eq(e_ones & ~f_zero),
        ]
        if fmt.subnormals:
            m.d.comb += [
                self.is_zero.eq(e_zero & f_zero),
                self.is_sub.eq(sub),
            ]
        else:
            m.d.comb += [
                self.is_zero.eq(e_zero),
                self.is_sub.eq(0),
            ]

        # Normal: hidden 1, exponent efield - bias.  Subnormal: hidden 0, exponent emin.
        raw_sig = Cat(frac, ~e_zero)
        raw_exp = Mux(e_zero, fmt.emin, efield - fmt.bias)
        if not fmt.subnormals:
            raw_sig = Mux(e_zero, 0, raw_sig)
        if self.normalize and fmt.subnormals:
            lz = leading_zeros(raw_sig)
            # Zero inputs would count `precision` zeros; keep them at emin with sig 0.
            shift = Mux(sub, lz, 0)
            m.d.comb += [
                self.sig.eq((raw_sig << shift)[:fmt.precision]),
                self.exp.eq(raw_exp - shift),
            ]
        else:
            m.d.comb += [
                self.sig.eq(raw_sig),
                self.exp.eq(raw_exp),
            ]
        return m
