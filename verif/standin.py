"""A test-only stand-in component that lets the harness test itself.

:class:`StreamRegister` is the smallest component that follows every stream rule of
docs/conventions.md (``i``/``o`` streams, a ``stages`` pipeline that stalls as a whole, a
``latency`` property).  Its payload passes through unchanged, so the expected output of any
input sequence is the input sequence itself.

The ``fault`` parameter injects one deliberate bug, so that ``verif/test_harness.py`` can check
that the harness *fails* when a unit loses, duplicates or corrupts a transfer, or breaks the stream
protocol: a harness that cannot fail proves nothing.
"""

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["FAULTS", "StreamRegister"]

#: Injectable faults: ``"drop"`` accepts input while stalled (loses transfers), ``"duplicate"``
#: emits every 61st transfer twice, ``"corrupt"`` flips the payload LSB of every 97th transfer,
#: ``"unstable"`` withdraws ``o.valid`` before the transfer completed (protocol violation).
FAULTS = (None, "drop", "duplicate", "corrupt", "unstable")


class StreamRegister(wiring.Component):
    """Pipeline of ``stages`` registers passing a ``width``-bit payload through unchanged.

    Parameters
    ----------
    width : int
        Payload width in bits, >= 1.
    stages : int, keyword-only
        Register stages between ``i`` and ``o`` (0 = combinational pass-through).
    fault : str or None, keyword-only
        One of :data:`FAULTS`; ``None`` for the correct component.

    Attributes
    ----------
    i : In(stream.Signature(unsigned(width)))
    o : Out(stream.Signature(unsigned(width)))
    latency : int
        Equal to ``stages``.
    """

    def __init__(self, width, *, stages=1, fault=None):
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive integer, not {width!r}")
        if isinstance(stages, bool) or not isinstance(stages, int) or stages < 0:
            raise ValueError(f"stages must be a non-negative integer, not {stages!r}")
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS!r}, not {fault!r}")
        if fault is not None and stages < 1:
            raise ValueError(f"fault {fault!r} needs stages >= 1, not {stages}")
        self._width, self._stages, self._fault = width, stages, fault
        super().__init__({
            "i": In(stream.Signature(unsigned(width))),
            "o": Out(stream.Signature(unsigned(width))),
        })

    @property
    def latency(self):
        """Register stages between ``i`` and ``o``."""
        return self._stages

    def elaborate(self, platform):
        m = Module()
        if self._stages == 0:
            wiring.connect(m, wiring.flipped(self.i), wiring.flipped(self.o))
            return m

        valid = [Signal(name=f"valid{k}") for k in range(self._stages)]
        data = [Signal(self._width, name=f"data{k}") for k in range(self._stages)]
        # The whole pipeline advances unless the last stage holds a transfer nobody accepts.
        advance = Signal()
        m.d.comb += advance.eq(self.o.ready | ~self.o.valid)
        m.d.comb += [
            self.i.ready.eq(advance),
            self.o.valid.eq(valid[-1]),
            self.o.payload.eq(data[-1]),
        ]

        count = Signal(8)           # output transfer counter driving the periodic faults
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += count.eq(count + 1)

        if self._fault == "drop":
            m.d.comb += self.i.ready.eq(1)      # claims to accept while stalled
        elif self._fault == "duplicate":
            again = Signal()
            m.d.comb += again.eq(self.o.valid & self.o.ready & (count % 61 == 60))
            m.d.comb += [advance.eq((self.o.ready | ~self.o.valid) & ~again),
                         self.i.ready.eq(advance)]
        elif self._fault == "corrupt":
            m.d.comb += self.o.payload.eq(data[-1] ^ (count % 97 == 96))
        elif self._fault == "unstable":
            stalled = Signal()
            m.d.sync += stalled.eq(self.o.valid & ~self.o.ready)
            m.d.comb += self.o.valid.eq(valid[-1] & ~(stalled & (count % 5 == 4)))

        with m.If(advance):
            m.d.sync += [valid[0].eq(self.i.valid), data[0].eq(self.i.payload)]
            for k in range(1, self._stages):
                m.d.sync += [valid[k].eq(valid[k - 1]), data[k].eq(data[k - 1])]
        return m
