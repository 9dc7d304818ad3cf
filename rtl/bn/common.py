"""Helpers shared by the BN unit's blocks: arithmetic units used as cores of one datapath.

The BN unit never does arithmetic of its own: every add, multiply, min/max, divide, square root,
conversion and BFP coding step is one of the foundation units (``rtl/fpadd.py`` ... ``rtl/bfp.py``).
Inside the BN datapaths those units are cores of one enclosing
:class:`lightnorm.rtl.pipeline.Pipeline`: one ``Pipeline`` per datapath gives a whole-datapath
stall and lets side-band data (positions, lane flags) ride along in the same registers, which
chained per-unit pipelines with their own handshakes could not guarantee.  A core is either
combinational (``stages=0``: handshakes tied off, ``i.valid = 1``, ``o.ready = 1``) or
pipelined *in lock-step* with the enclosing datapath (``stages=k``, ``advance=`` the enclosing
``Pipeline.advance``): its registers sit at its own cut points (inside the adder, the
multiplier: the register-to-register depth the issue on timing closure asks for), its output
stream is always ready when the enclosing pipeline advances and held when it stalls.  Its
``i.valid`` is tied to 1, so its own valid bits are all set ``k`` cycles after reset, before any
beat can have travelled the enclosing pipeline's (longer) way to its output; from then on the
core's registers load exactly when the enclosing ones do (``o.ready | ~o.valid`` with
``o.valid = 1``), and the caller delays the side-band data by the same ``k`` stages
(:class:`lightnorm.rtl.bn.normalize.Normalize`).
"""

from amaranth.hdl import Value

__all__ = ["core", "fp_add", "fp_sub", "fp_mul", "fp_minmax", "fp_convert", "nested_rounding",
           "onto_grid_applies", "fp_onto_grid", "nested_forward"]


def core(m, name, unit, *, advance=None, **fields):
    """Add ``unit`` as submodule ``name``; drive its input payload.

    Parameters
    ----------
    m : Module
    name : str
        Submodule name (unique in ``m``), so synthesis reports the core under it.
    unit : wiring.Component
        A foundation unit with ``i``/``o`` streams.  ``latency == 0``: a combinational core;
        otherwise ``advance`` is required.
    advance : Value or None
        The enclosing pipeline's advance (:attr:`lightnorm.rtl.pipeline.Pipeline.advance`): a
        pipelined core's registers load with it (module docstring); its output is the input
        of ``unit.latency`` advances earlier.
    **fields
        Input payload fields (``a=..., b=...``) or ``payload=...`` for a unary unit.

    Returns
    -------
    Value
        The unit's output payload.
    """
    if unit.latency and advance is None:
        raise ValueError(f"core {name!r} has {unit.latency} stages: it needs the enclosing "
                         f"pipeline's advance")
    m.submodules[name] = unit
    m.d.comb += [unit.i.valid.eq(1), unit.o.ready.eq(1 if not unit.latency else advance)]
    if "payload" in fields:
        m.d.comb += Value.cast(unit.i.payload).eq(fields.pop("payload"))
    for key, value in fields.items():
        m.d.comb += getattr(unit.i.payload, key).eq(value)
    return unit.o.payload


def fp_add(m, name, fmt, a, b, sub=0, *, stages=0, advance=None):
    """``a + b`` (or ``a - b`` when ``sub``) in ``fmt`` through an FPAddSub core (:func:`core`)."""
    from lightnorm.rtl.fpadd import FPAddSub
    return core(m, name, FPAddSub(fmt, stages=stages), advance=advance, a=a, b=b, sub=sub)


def fp_sub(m, name, fmt, a, b, *, stages=0, advance=None):
    """``a - b`` in ``fmt`` through an FPAddSub core (:func:`core`)."""
    return fp_add(m, name, fmt, a, b, sub=1, stages=stages, advance=advance)


def fp_mul(m, name, fmt, a, b, *, stages=0, advance=None):
    """``a * b`` in ``fmt`` through an FPMul core (:func:`core`)."""
    from lightnorm.rtl.fpmul import FPMul
    return core(m, name, FPMul(fmt, stages=stages), advance=advance, a=a, b=b)


def fp_minmax(m, name, fmt, a, b, is_max):
    """``max(a, b)`` (``is_max``) or ``min(a, b)`` in ``fmt`` through a combinational FPMinMax."""
    from lightnorm.rtl.fpminmax import FPMinMax
    return core(m, name, FPMinMax(fmt, stages=0), a=a, b=b, max=is_max)


def fp_convert(m, name, src, dst, a):
    """Convert ``a`` from ``src`` to ``dst`` through a combinational FPConvert (none if equal)."""
    if src == dst:
        return a
    from lightnorm.rtl.fpconvert import FPConvert
    return core(m, name, FPConvert(src, dst, stages=0), payload=a)


def nested_rounding(narrow, wide):
    """True if rounding into ``wide`` and then into ``narrow`` equals rounding into ``narrow``.

    Holds for truncation (rtz) when every ``narrow`` value is a ``wide`` value (the grids are
    nested: no fewer mantissa bits, no smaller largest exponent, and ``narrow``'s smallest
    subnormal step on ``wide``'s grid, where ``wide`` is normal or keeps its subnormals) --
    truncating onto the finer grid never crosses a point of the coarser one, and rtz overflow
    saturates at each format's largest finite value (``wide``'s is the larger).  It does not hold
    for rne: below ``narrow``'s smallest normal the first rounding can make a tie.  Used by
    Normalize (the forward's per-element operations on the backward's cores) and by the
    ScalarSequencer (one unit for formats nested in their join, :func:`~.recip.merge_formats`).
    """
    if narrow.rounding != "rtz" or wide.rounding != "rtz" or narrow == wide:
        return False
    step = narrow.emin - narrow.man_bits          # exponent of narrow's smallest subnormal step
    return (wide.man_bits >= narrow.man_bits and wide.emax >= narrow.emax
            and wide.emin - wide.man_bits <= step
            and (wide.subnormals or wide.emin <= step))


def onto_grid_applies(wide, narrow):
    """:func:`fp_onto_grid`'s precondition: ``narrow`` truncates (rtz), has no more mantissa
    bits, no larger exponent range, and no smaller smallest normal than ``wide``."""
    return (narrow.rounding == "rtz" and wide.man_bits >= narrow.man_bits
            and wide.emax >= narrow.emax and wide.emin <= narrow.emin)


def fp_onto_grid(m, name, wide, narrow, a):
    """``a`` (a ``wide`` word) truncated onto ``narrow``'s values, still encoded in ``wide``.

    Equals ``convert(narrow -> wide, convert(wide -> narrow, a))`` for a truncating (rtz)
    ``narrow`` nested in ``wide`` (:func:`onto_grid_applies`): in
    ``narrow``'s normal range the mantissa bits below its precision are cleared; below its
    smallest normal (wide normals and subnormals alike) also the bits under its subnormal step
    (or the word becomes a signed zero when ``narrow`` has no subnormals, or when nothing is
    left); above its largest exponent the word becomes ``narrow``'s largest finite value; NaN
    becomes ``wide``'s canonical NaN, Inf and zeros pass unchanged.  A few gates where two
    converters would unpack and pack twice.
    """
    from amaranth.hdl import Cat, Const, Signal
    step = narrow.emin - narrow.man_bits          # exponent of narrow's subnormal step
    if not onto_grid_applies(wide, narrow):
        raise ValueError(f"fp_onto_grid: {narrow} is not a truncating format nested in {wide}")
    man = a[:wide.man_bits]
    efield = a[wide.man_bits:wide.man_bits + wide.exp_bits]
    sign = a[-1]
    e = Signal(range(-wide.bias, wide.exp_all_ones - wide.bias + 1), name=f"{name}_e")
    m.d.comb += e.eq(efield - wide.bias)
    lo = wide.man_bits - narrow.man_bits          # wide's extra mantissa bits

    def mask(d):      # mantissa bits kept at exponent narrow.emin - d (d >= 0)
        return ((1 << wide.man_bits) - 1) & ~((1 << (lo + d)) - 1)
    clr = Signal(wide.man_bits, name=f"{name}_man")
    with m.If(e >= narrow.emin):
        m.d.comb += clr.eq(man & mask(0))
    for d in range(1, narrow.man_bits + 1):
        with m.Elif(e == narrow.emin - d):
            m.d.comb += clr.eq(man & mask(d))
    tiny = (e < narrow.emin) if not narrow.subnormals else (e < step)
    # a wide subnormal (below wide.emin <= narrow.emin): its bits under narrow's step cleared
    s0 = step - (wide.emin - wide.man_bits)
    sub_mask = ((1 << wide.man_bits) - 1) & ~((1 << max(s0, 0)) - 1)
    if not (wide.subnormals and narrow.subnormals):
        sub_mask = 0
    out = Signal(wide.width, name=name)
    with m.If((efield == wide.exp_all_ones) & (man != 0)):
        m.d.comb += out.eq(wide.canonical_nan)
    with m.Elif(efield == wide.exp_all_ones):
        m.d.comb += out.eq(a)
    with m.Elif(efield == 0):
        m.d.comb += out.eq(Cat(man & sub_mask, Const(0, wide.exp_bits), sign))
    with m.Elif(tiny):
        m.d.comb += out.eq(Cat(Const(0, wide.width - 1), sign))
    with m.Elif(e > narrow.emax):
        m.d.comb += out.eq(Cat(Const(mask(0), wide.man_bits),
                               Const(narrow.emax + wide.bias, wide.exp_bits), sign))
    with m.Else():
        m.d.comb += out.eq(Cat(clr, efield, sign))
    return out


def nested_forward(cfg):
    """True if ``cfg``'s forward ``a*x`` and ``+ b`` run on the backward's PB cores.

    Range presets only (the conventional presets share their cores when P == PB), and only where
    :func:`nested_rounding` makes the result equal to the operation in P.
    """
    return cfg.algorithm == "range" and nested_rounding(cfg.fwd_op, cfg.bwd_op)
