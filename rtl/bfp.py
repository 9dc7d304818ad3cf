"""Block floating point codecs: one group of FP words <-> shared exponent + sign/magnitude elements.

The semantics are those of :mod:`lightnorm.golden.bfp` (docs/numerics.md, "Block floating point");
this module implements them, it does not restate them.  In short, for ``BfpFormat(G, M, X)`` with
bias ``B = 2**(X-1) - 1``:

* :class:`BfpEncoder` finds the largest true exponent ``e_max`` of the group's non-zero elements,
  takes ``E = max(e_max, -B)`` and rounds every magnitude onto the grid ``2**(E - M + 1)``
  (``bfmt.rounding``, the same ``rne``/``rtz`` rule as :class:`~lightnorm.rtl.round.RoundPack`).
  If the largest element rounds up to ``2**M`` the whole group is rounded once more, from the
  exact values, onto the grid of ``E + 1``.  Inf/NaN inputs, or a shared exponent beyond the
  field, make a *special* group (field all ones).
* :class:`BfpDecoder` turns every element into ``(-1)**s * m * 2**(E - M + 1)`` and rounds it once
  into the float format through :class:`~lightnorm.rtl.round.RoundPack` (special groups give
  signed zeros, signed infinities or the canonical NaN).

Hardware structure of the encoder
---------------------------------
Each element is unpacked with its significand normalized (subnormals included), so its true
exponent ``e_i`` is the Unpack exponent and its significand sits left-aligned in a ``W``-bit
field, ``W = max(M, p) + 2`` (``p = fmt.precision``): the top ``M`` bits are the magnitude if the
element is the group's largest, and there are always a guard bit and at least one more bit
below it.  A comparator tree gives ``E``; every element is shifted right by ``E - e_i`` with a
sticky bit.  Mantissa overflow can only happen to an element with ``e_i == E`` (any other
element is at most ``2**(M-1)`` after rounding), and for such an element it happens exactly when
its top ``M`` bits are all ones and the rounding increments, so it is decided in parallel with
the alignment from the unshifted significands; an overflow shifts every aligned element one
more place right (its bit joins the sticky) before the one rounding.
"""

from amaranth.hdl import Module, Signal, Const, Cat, Mux, Value, unsigned
from amaranth.lib import data

from lightnorm.golden.formats import BfpFormat

from .pipeline import Pipeline, StreamUnit
from .round import (RoundPack, Unpack, check_float_format, shift_right_sticky,
                    signed_range_shape)

__all__ = ["BfpEncoder", "BfpDecoder", "bfp_layout", "round_increment"]


def _check_bfp_format(name, bfmt):
    if not isinstance(bfmt, BfpFormat):
        raise TypeError(f"{name} must be a BfpFormat, not {bfmt!r}")
    return bfmt


def bfp_layout(bfmt):
    """Stream payload of one packed group: the bit layout of golden ``bfp.pack``.

    ``StructLayout({"exp": X, "elems": ArrayLayout(StructLayout({"mag": M, "sign": 1}), G)})``:
    the shared field in bits ``[0, X)``, element ``i`` at ``[X + i*(M+1), X + (i+1)*(M+1))``
    with its magnitude in the low ``M`` bits and its sign on top.
    """
    _check_bfp_format("bfmt", bfmt)
    element = data.StructLayout({"mag": bfmt.man_bits, "sign": 1})
    return data.StructLayout({
        "exp": bfmt.exp_bits,
        "elems": data.ArrayLayout(element, bfmt.group),
    })


def round_increment(rounding, lsb, guard, sticky):
    """The rounding increment RoundPack uses: ``rne`` ties to even, ``rtz`` never increments.

    Kept next to the BFP encoder, the only unit that rounds onto a fixed-point grid instead of
    into a FloatFormat; the rule must stay identical to RoundPack's step 3.
    """
    if rounding == "rne":
        return guard & (sticky | lsb)
    if rounding == "rtz":
        return Const(0, 1)
    raise ValueError(f"rounding must be 'rne' or 'rtz', not {rounding!r}")


def _wire(m, value, name):
    """A named comb signal for ``value`` (one expression shared by all its uses)."""
    value = Value.cast(value)
    sig = Signal(value.shape(), name=name)
    m.d.comb += sig.eq(value)
    return sig


def _max_tree(m, values, name):
    """Maximum of signed values by a balanced comparator tree (depth log2(len(values)))."""
    level = 0
    while len(values) > 1:
        nxt = []
        for k in range(0, len(values) - 1, 2):
            a, b = values[k], values[k + 1]
            nxt.append(_wire(m, Mux(a >= b, a, b), f"{name}_l{level}_{k // 2}"))
        if len(values) % 2:
            nxt.append(values[-1])
        values = nxt
        level += 1
    return values[0]


class BfpEncoder(StreamUnit):
    """Encode one group of ``fmt`` words into a packed ``bfmt`` group.

    Parameters
    ----------
    bfmt : BfpFormat
        Group size, magnitude bits, shared-exponent bits and the element rounding mode.
    fmt : FloatFormat
        Format of the input words (its ``subnormals=False`` flushes subnormal inputs to zero; its
        rounding mode is not used).
    stages : int, keyword-only
        Register stages between ``i`` and ``o`` (>= 0; 0 = combinational).

    Attributes
    ----------
    i : In(stream.Signature(ArrayLayout(unsigned(fmt.width), bfmt.group)))
        One group of FP bit patterns, element 0 in the low bits.
    o : Out(stream.Signature(bfp_layout(bfmt)))
        The packed group (see :func:`bfp_layout`).
    latency : int
        Register stages from ``i`` to ``o`` (equals ``stages``).

    Notes
    -----
    Registers may go after the shared exponent is known and after the alignment; further stages
    follow the output.
    """

    def __init__(self, bfmt, fmt, *, stages=1):
        self.bfmt = _check_bfp_format("bfmt", bfmt)
        self.fmt = check_float_format("fmt", fmt)
        super().__init__(data.ArrayLayout(unsigned(fmt.width), bfmt.group), bfp_layout(bfmt), stages=stages)

    def elaborate(self, platform):
        m = Module()
        bfmt, fmt = self.bfmt, self.fmt
        G, M, B = bfmt.group, bfmt.man_bits, bfmt.bias
        e_top = (1 << bfmt.exp_bits) - 2 - B       # largest finite shared exponent
        p = fmt.precision
        W = max(M, p) + 2                          # aligned field: M bits, guard, >= 1 more

        units = []
        for k in range(G):
            u = Unpack(fmt, normalize=True)
            m.submodules[f"unpack{k}"] = u
            m.d.comb += u.a.eq(self.i.payload[k])
            units.append(u)

        # -- shared exponent ------------------------------------------------------------------
        # Zero elements do not take part in the max: they enter as `low`, which is below -B and
        # below every finite exponent, so an all-zero group ends at E = -B (field 0).
        low = min(-B, fmt.emin - fmt.man_bits) - 1
        e_shape = signed_range_shape(low, max(fmt.emax, -B) + 1)
        keys = [_wire(m, Mux(u.is_zero, low, u.exp), f"key{k}") for k, u in enumerate(units)]
        e_max = _max_tree(m, keys, "emax")
        E = _wire(m, Mux(e_max < -B, -B, e_max), "E")
        E = Value.cast(E).as_signed()
        any_special = _wire(m, Cat(*(u.is_nan | u.is_inf for u in units)).any(), "any_special")

        sigs = [Cat(Const(0, W - p), u.sig) for u in units]     # MSB at W-1 for non-zero
        signs = [u.sign for u in units]
        shifts = [_wire(m, (E - u.exp).as_unsigned()[:e_shape.width + 1], f"shift{k}")
                  for k, u in enumerate(units)]
        # Per-element mantissa overflow (only with e_i == E), from the unshifted significand.
        if bfmt.rounding == "rne" and W - M - 1 >= W - p:
            ovfs = [(u.exp == E) & ~u.is_zero & s[W - M:].all() & s[W - M - 1]
                    for u, s in zip(units, sigs)]
        else:   # rtz never increments; nor can rne when the element has no bit below the grid
            ovfs = [Const(0, 1) for _ in units]
        # Exponent overflow (special group, docs/numerics.md): the elements that become Inf are
        # those whose magnitude does not fit even the top grid 2**(e_top - M + 1), i.e. which
        # round to 2**M there.  With E == e_top these are exactly the elements whose mantissa
        # overflowed; an exponent above e_top is only possible when fmt's range exceeds the
        # shared field's.
        if fmt.emax >= e_top:
            can_round_up = bfmt.rounding == "rne" and p >= M + 1
            tops = [~u.is_zero & ((u.exp > e_top)
                                  | ((u.exp == e_top) & s[W - M:].all() & s[W - M - 1]
                                     if can_round_up else Const(0, 1)))
                    for u, s in zip(units, sigs)]
        else:   # every finite input fits: the field cannot overflow
            tops = [Const(0, 1) for _ in units]
        flags = [u.is_nan for u in units] + [u.is_inf for u in units]

        pipe = Pipeline(self.stages, cuts=2)
        E, any_special, *rest = pipe.cut(
            m, (E, any_special, *sigs, *signs, *shifts, *ovfs, *tops, *flags), name="shared")
        E = Value.cast(E).as_signed()
        sigs, rest = rest[:G], rest[G:]
        signs, rest = rest[:G], rest[G:]
        shifts, rest = rest[:G], rest[G:]
        ovfs, rest = rest[:G], rest[G:]
        tops, rest = rest[:G], rest[G:]
        nans, infs = rest[:G], rest[G:]

        # -- alignment onto the grid of E (or E + 1 after a mantissa overflow) ---------------
        ovf = _wire(m, Cat(*ovfs).any(), "mant_ovf")
        aligned, stickies = [], []
        for k in range(G):
            shifted, lost = shift_right_sticky(sigs[k], shifts[k])
            shifted = _wire(m, shifted, f"aligned{k}")
            # The overflow's extra place: its bit joins the sticky (single rounding from the
            # exact value, never a second rounding of a rounded magnitude).
            aligned.append(_wire(m, Mux(ovf, shifted >> 1, shifted), f"aligned_ovf{k}"))
            stickies.append(_wire(m, lost | (ovf & shifted[0]), f"lost{k}"))
        E_fin = _wire(m, E + ovf, "E_final")
        exp_ovf = _wire(m, E_fin > e_top, "exp_ovf")     # <=> some element marked in `tops`
        E_fin, exp_ovf, any_special, *rest = pipe.cut(
            m, (E_fin, exp_ovf, any_special, *aligned, *stickies, *signs, *tops, *nans, *infs),
            name="aligned")
        E_fin = Value.cast(E_fin).as_signed()
        aligned, rest = rest[:G], rest[G:]
        stickies, rest = rest[:G], rest[G:]
        signs, rest = rest[:G], rest[G:]
        tops, rest = rest[:G], rest[G:]
        nans, infs = rest[:G], rest[G:]

        # -- one rounding per element, then the group code ------------------------------------
        out = Signal(bfp_layout(bfmt))
        special = any_special | exp_ovf
        m.d.comb += out.exp.eq(Mux(special, (1 << bfmt.exp_bits) - 1, E_fin + B))
        for k in range(G):
            a = aligned[k]
            mant = a[W - M:]
            guard = a[W - M - 1]
            rest_bits = a[:W - M - 1].any() | stickies[k]
            inc = round_increment(bfmt.rounding, mant[0], guard, rest_bits)
            mag = _wire(m, (mant + inc)[:M], f"mag{k}")
            elem = out.elems[k]
            with m.If(any_special):
                # Inf/NaN in the group: NaN -> +, all ones; Inf -> signed 1; finite -> signed 0.
                m.d.comb += [
                    elem.sign.eq(signs[k] & ~nans[k]),
                    elem.mag.eq(Mux(nans[k], (1 << M) - 1, Mux(infs[k], 1, 0))),
                ]
            with m.Elif(exp_ovf):
                m.d.comb += [elem.sign.eq(signs[k]), elem.mag.eq(Mux(tops[k], 1, 0))]
            with m.Else():
                m.d.comb += [elem.sign.eq(signs[k]), elem.mag.eq(mag)]

        pipe.connect(m, self.i, self.o, out)
        return m


class BfpDecoder(StreamUnit):
    """Decode a packed ``bfmt`` group into ``bfmt.group`` words of ``fmt``.

    Every element goes through its own :class:`~lightnorm.rtl.round.RoundPack` with
    ``sign = s``, ``exp = E - M + 1``, ``sig = m`` and ``sticky = 0``, so it is rounded once with
    ``fmt``'s rounding, subnormal/flush-to-zero and overflow rules (exact whenever it fits).

    Parameters
    ----------
    bfmt : BfpFormat
    fmt : FloatFormat
        Output format.
    stages : int, keyword-only
        Register stages between ``i`` and ``o`` (>= 0; 0 = combinational); all of them follow the
        RoundPacks (the datapath is a single rounding).

    Attributes
    ----------
    i : In(stream.Signature(bfp_layout(bfmt)))
        The packed group.
    o : Out(stream.Signature(ArrayLayout(unsigned(fmt.width), bfmt.group)))
        The decoded words, element 0 in the low bits.
    latency : int
        Register stages from ``i`` to ``o`` (equals ``stages``).
    """

    def __init__(self, bfmt, fmt, *, stages=1):
        self.bfmt = _check_bfp_format("bfmt", bfmt)
        self.fmt = check_float_format("fmt", fmt)
        super().__init__(bfp_layout(bfmt), data.ArrayLayout(unsigned(fmt.width), bfmt.group), stages=stages)

    def elaborate(self, platform):
        m = Module()
        bfmt, fmt = self.bfmt, self.fmt
        M, B = bfmt.man_bits, bfmt.bias
        field = self.i.payload.exp
        special = _wire(m, field == (1 << bfmt.exp_bits) - 1, "special")
        # exp of the element LSB: E - M + 1 = field - B - M + 1 (special groups: don't care).
        exp_shape = signed_range_shape(-B - M + 1, (1 << bfmt.exp_bits) - 1 - B - M + 1)
        exp = _wire(m, field.as_unsigned() - (B + M - 1), "elem_exp")

        out = Signal(data.ArrayLayout(unsigned(fmt.width), bfmt.group))
        for k in range(bfmt.group):
            elem = self.i.payload.elems[k]
            rp = RoundPack(fmt, M, exp_shape.width)
            m.submodules[f"round{k}"] = rp
            # Special group codes: m = 0 signed zero, m = 1 signed Inf, others NaN.
            m.d.comb += rp.drive(sign=elem.sign, exp=exp, sig=elem.mag,
                                 is_nan=special & (elem.mag > 1),
                                 is_inf=special & (elem.mag == 1),
                                 is_zero=special & (elem.mag == 0))
            m.d.comb += out[k].eq(rp.bits)

        pipe = Pipeline(self.stages, cuts=0)
        pipe.connect(m, self.i, self.o, out)
        return m
