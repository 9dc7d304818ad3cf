"""Register stages with stream valid/ready for a combinational datapath.

A unit writes its datapath once, combinationally, and marks the places where a register may go
with :meth:`Pipeline.cut`.  ``Pipeline(stages, cuts)`` decides which of those places get a
register: ``stages`` registers are spread evenly over the ``cuts`` marked places, and any stages
beyond the number of places are added after the datapath's output.  With ``stages=0`` nothing is
registered and valid/ready pass straight through.

Flow control is the simple whole-pipeline stall of docs/conventions.md: every register (data and
valid) advances on ``advance = o.ready | ~o.valid``, so the pipeline stops only while its output is
held; ``i.ready = advance``.  ``o.valid`` comes from a register and never depends on ``o.ready``.
Bubbles are not squeezed out while stalled, which keeps the control to one AND-OR per design.

Typical use inside a unit's ``elaborate``::

    pipe = Pipeline(self.stages, cuts=2)
    x = ...comb logic on self.i.payload...
    x = pipe.cut(m, x, name="align")          # register here if this cut was chosen
    y = ...more comb logic on x...
    y = pipe.cut(m, y, name="add")
    z = ...
    pipe.connect(m, self.i, self.o, z)        # handshakes, trailing stages, o.payload

Every register is in the ``sync`` domain (synchronous, active-high ``rst``); data registers are
``reset_less`` (only the valid bits need a reset).
"""

from amaranth.hdl import Signal, Value, ValueCastable
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .round import check_positive_int

__all__ = ["Pipeline", "StreamUnit", "cut_positions"]


def cut_positions(stages, cuts):
    """Which of ``cuts`` marked places get a register, for ``stages`` register stages.

    Returns a sorted list of ``min(stages, cuts)`` distinct indices in ``range(cuts)``, spread
    evenly and rounded towards the output (one stage over three cuts picks the middle one, over
    two cuts the second: the rounding stage is usually the longest path).  Stages beyond ``cuts``
    go after the output (see :meth:`Pipeline.connect`).
    """
    n = min(stages, cuts)
    return [-(-(k + 1) * (cuts + 1) // (n + 1)) - 1 for k in range(n)]


class Pipeline:
    """Places ``stages`` register stages on a combinational datapath with ``cuts`` marked places.

    Parameters
    ----------
    stages : int
        Number of register stages between input and output, >= 0.
    cuts : int
        Number of :meth:`cut` calls the datapath makes, >= 0.  It must match exactly, so a unit
        cannot silently lose a stage.

    Attributes
    ----------
    latency : int
        Clock cycles from an accepted input to its output (= ``stages``).
    advance : Signal
        High when the registers load (``o.ready | ~o.valid``); 1 for ``stages=0``.
    """

    def __init__(self, stages, cuts):
        self.stages = check_positive_int("stages", stages, 0)
        self.cuts = check_positive_int("cuts", cuts, 0)
        self._chosen = set(cut_positions(stages, cuts))
        self._index = 0
        self._valid = []         # valid bit after each registered stage, in order
        self._connected = False
        self.advance = Signal()

    @property
    def latency(self):
        return self.stages

    def _register(self, m, value, name):
        """One register stage of ``value`` (a Value, ValueCastable, or tuple/list of them)."""
        if isinstance(value, (tuple, list)):
            return type(value)(self._register_one(m, v, f"{name}_{k}")
                               for k, v in enumerate(value))
        return self._register_one(m, value, name)

    def _register_one(self, m, value, name):
        if isinstance(value, data.View):
            shape = value.shape()          # keep the layout: the copy is a View too
        elif isinstance(value, ValueCastable):
            raise TypeError(f"cannot register {value!r}: only Values and data.Views are supported")
        else:
            shape = Value.cast(value).shape()
        reg = Signal(shape, name=name, reset_less=True)
        with m.If(self.advance):
            m.d.sync += Value.cast(reg).eq(Value.cast(value))
        return reg

    def _stage(self, m, value, name):
        """Register ``value`` and the valid bit: one full pipeline stage."""
        k = len(self._valid)
        valid = Signal(name=f"valid_s{k + 1}")
        self._valid.append(valid)
        return self._register(m, value, f"{name}_s{k + 1}")

    def cut(self, m, value, *, name="pipe"):
        """Mark a place where a register may go; returns ``value`` or its registered copy.

        ``value`` may be a Value, a ``data.View`` or a tuple/list of them (returned as the same
        kind of container).
        """
        if self._connected:
            raise RuntimeError("Pipeline.cut() called after connect()")
        index = self._index
        self._index += 1
        if index >= self.cuts:
            raise RuntimeError(f"Pipeline declared {self.cuts} cuts but cut() was called more often")
        if index in self._chosen:
            return self._stage(m, value, name)
        return self._wire(m, value, name)

    def _wire(self, m, value, name):
        """``value`` through named comb signals (same container kind and layouts).

        Amaranth emits an expression again at every use of the Python object, so a value used in
        several places after a cut (a swap flag, an exponent) would be recomputed once per use in
        the RTLIL, the Verilog and the simulators. A signal at each cut shares it.
        """
        if isinstance(value, (tuple, list)):
            return type(value)(self._wire(m, v, f"{name}_{k}") for k, v in enumerate(value))
        if isinstance(value, data.View):
            shape = value.shape()
        elif isinstance(value, ValueCastable):
            raise TypeError(f"cannot cut {value!r}: only Values and data.Views are supported")
        else:
            value = Value.cast(value)
            if isinstance(value, Signal):
                return value
            shape = value.shape()
        sig = Signal(shape, name=name)
        m.d.comb += Value.cast(sig).eq(Value.cast(value))
        return sig

    def connect(self, m, i, o, result):
        """Drive ``o.payload`` from ``result`` and wire valid/ready between streams ``i`` and ``o``.

        Adds the stages that did not fit on the marked cuts after ``result``.
        """
        if self._index != self.cuts:
            raise RuntimeError(f"Pipeline declared {self.cuts} cuts but cut() was called "
                               f"{self._index} times")
        while len(self._valid) < self.stages:
            result = self._stage(m, result, "out")
        self._connected = True

        if isinstance(result, data.View):
            result = Value.cast(result)
        m.d.comb += Value.cast(o.payload).eq(result)
        if self.stages == 0:
            m.d.comb += [
                self.advance.eq(1),
                o.valid.eq(i.valid),
                i.ready.eq(o.ready),
            ]
            return
        m.d.comb += [
            self.advance.eq(o.ready | ~o.valid),
            i.ready.eq(self.advance),
            o.valid.eq(self._valid[-1]),
        ]
        previous = i.valid
        for valid in self._valid:
            with m.If(self.advance):
                m.d.sync += valid.eq(previous)
            previous = valid


class StreamUnit(wiring.Component):
    """Base of the pipelined units: input stream ``i``, output stream ``o``, ``stages`` registers.

    A unit validates its own format arguments, then calls ``super().__init__(i_shape, o_shape,
    stages=stages)`` and builds its datapath with a :class:`Pipeline` of ``self.stages``.

    Parameters
    ----------
    i_shape, o_shape : shape-castable
        Payload shapes of ``i`` and ``o``.
    stages : int, keyword-only
        Register stages between ``i`` and ``o``, >= 0.

    Attributes
    ----------
    i : In(stream.Signature(i_shape))
    o : Out(stream.Signature(o_shape))
    latency : int
        Clock cycles from an accepted input to its output (= ``stages``).
    """

    def __init__(self, i_shape, o_shape, *, stages):
        self.stages = check_positive_int("stages", stages, 0)
        super().__init__({
            "i": In(stream.Signature(i_shape)),
            "o": Out(stream.Signature(o_shape)),
        })

    @property
    def latency(self):
        return self.stages
