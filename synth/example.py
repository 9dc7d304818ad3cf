"""A small design with known register bits, so the flow can be tested independently of the units.

:class:`RegisteredAdder` registers two ``width``-bit operands, adds them in a submodule (a block
of its own in the report), and registers the ``width + 1``-bit sum: exactly ``3 * width + 1``
flip-flops, none of which synthesis may remove (every register bit reaches an output).
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Adder", "RegisteredAdder"]


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
