"""A small design with known register bits, so the flow can be tested independently of the units.

:class:`RegisteredAdder` registers two ``width``-bit operands, adds them in a submodule (a block
of its own in the report), and registers the ``width + 1``-bit sum: exactly ``3 * width + 1``
flip-flops, none of which synthesis may remove (every register bit reaches an output).
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Adder", "RegisteredAdder", "AdderLanes"]


class Adder(wiring.Component):
    """Combinational ``s = a + b`` (``width + 1`` bits)."""

    def __init__(self, width):
        self.width = width
        super().__init__({"a": In(width), "b": In(width), "s": Out(width + 1)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.s.eq(self.a + self.b)
        return m


class RegisteredAdder(wiring.Component):
    """Input registers, an :class:`Adder` submodule named ``add``, an output register.

    Parameters
    ----------
    width : int
        Operand width, >= 1.

    Attributes
    ----------
    register_bits : int
        Flip-flops in the design: ``3 * width + 1``.
    latency : int
        Register stages from input to output: 2.
    """

    latency = 2

    def __init__(self, width=8):
        if isinstance(width, bool) or not isinstance(width, int):
            raise TypeError(f"width must be an integer, not {width!r}")
        if width < 1:
            raise ValueError(f"width must be at least 1, not {width}")
        self.width = width
        self.register_bits = 3 * width + 1
        super().__init__({"a": In(width), "b": In(width), "s": Out(width + 1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.add = add = Adder(self.width)
        ra, rb = Signal(self.width), Signal(self.width)
        m.d.sync += [ra.eq(self.a), rb.eq(self.b), self.s.eq(add.s)]
        m.d.comb += [add.a.eq(ra), add.b.eq(rb)]
        return m


class AdderLanes(wiring.Component):
    """``lanes`` identical lanes: registered operands, a combinational FP adder core, a register.

    The cores are :class:`lightnorm.rtl.fpadd.FPAddSub` units with ``stages=0`` added through the
    BN unit's own helper (:func:`lightnorm.rtl.bn.common.fp_add`), so Amaranth writes one RTLIL
    module per lane with the same body -- the case :mod:`lightnorm.synth.dedup` shares.

    Parameters
    ----------
    fmt : FloatFormat
        Operand format.
    lanes : int
        Number of lanes, >= 1.

    Attributes
    ----------
    register_bits : int
        Flip-flops in the design: ``3 * lanes * fmt.width``.
    latency : int
        Register stages from input to output: 2.
    """

    latency = 2

    def __init__(self, fmt, lanes=3):
        if isinstance(lanes, bool) or not isinstance(lanes, int):
            raise TypeError(f"lanes must be an integer, not {lanes!r}")
        if lanes < 1:
            raise ValueError(f"lanes must be at least 1, not {lanes}")
        self.fmt, self.lanes = fmt, lanes
        self.register_bits = 3 * lanes * fmt.width
        w = lanes * fmt.width
        super().__init__({"a": In(w), "b": In(w), "s": Out(w)})

    def elaborate(self, platform):
        from lightnorm.rtl.bn.common import fp_add
        m = Module()
        w = self.fmt.width
        for l in range(self.lanes):
            ra = Signal(w, name=f"ra{l}")
            rb = Signal(w, name=f"rb{l}")
            m.d.sync += [ra.eq(self.a[l * w:(l + 1) * w]), rb.eq(self.b[l * w:(l + 1) * w])]
            s = fp_add(m, f"add_l{l}", self.fmt, ra, rb)
            m.d.sync += self.s[l * w:(l + 1) * w].eq(s)
        return m
