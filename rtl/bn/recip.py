"""``recip`` block: the per-channel scalar arithmetic between passes, time-multiplexed over lanes.

Between two streaming passes every lane (channel) needs a short chain of scalar operations --
mean, sum of chunk ranges or variance, reciprocal, square root, scale and shift, gradient
constants (docs/bn-spec.md, "Finalize").  They run once per channel group, so one set of
arithmetic units serves all ``G`` lanes: :class:`ScalarSequencer` executes a fixed *program* (a
list of :class:`Op`, built by :func:`lightnorm.rtl.bn.rangestat.programs` in the exact order of the
spec) one step at a time, issuing the step for lane 0, 1, ... G-1 on consecutive cycles into the
(pipelined) unit the step needs and waiting for the G results before the next step starts.
Cost of one program: ``1 + sum over steps (G + latency(step))`` cycles, independent of ``m``.

One unit instance exists per distinct (operation family, format) of all programs -- e.g. one
FPDiv in the accumulator format -- so the divider and the square root are paid for once, not per
lane.  Operands stored in another format (the chunk maxima are kept in the narrow data format F)
go through one shared FPConvert per (unit, operand slot, source format) after the lane mux.
"""

from typing import NamedTuple

from amaranth.hdl import Array, Const, Elaboratable, Module, Mux, Signal, Value, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from lightnorm.golden.formats import FloatFormat

__all__ = ["Op", "ScalarSequencer", "ZeroSelect", "OP_KINDS"]

#: Operation kinds a program may use, and their operand counts.  ``zsel`` is the spec's
#: zero-spread rule, ``zsel(c, v) = +0 if c is +-0 else v`` -- a selection, not arithmetic.
OP_KINDS = {"add": 2, "sub": 2, "mul": 2, "div": 2, "min": 2, "max": 2, "sqrt": 1, "convert": 1,
            "zsel": 2}


class Op(NamedTuple):
    """One program step: ``dst = kind(*srcs)`` rounded in ``fmt``.

    Parameters
    ----------
    dst : str
        Name of the per-lane result register.
    kind : str
        One of :data:`OP_KINDS`.
    fmt : FloatFormat
        Format of the operation and its result (the destination format for ``"convert"``).
    srcs : tuple
        Operand names (sequencer inputs or earlier results) or ``int`` bit patterns in ``fmt``.
    src_fmt : FloatFormat or None
        Source format, ``"convert"`` only.
    """
    dst: str
    kind: str
    fmt: FloatFormat
    srcs: tuple
    src_fmt: FloatFormat = None


class ZeroSelect(wiring.Component):
    """``o = +0 if a is +-0 else b`` (the zero-spread rule), a combinational stream stage.

    Parameters
    ----------
    fmt : FloatFormat
        Format of ``a``, ``b`` and ``o``.
    """

    def __init__(self, fmt):
        self.fmt = fmt
        w = fmt.width
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({"a": w, "b": w}))),
            "o": Out(stream.Signature(unsigned(w))),
        })

    latency = 0

    def elaborate(self, platform):
        m = Module()
        magnitude = self.i.payload.a[:self.fmt.width - 1]
        m.d.comb += [
            self.o.payload.eq(Mux(magnitude == 0, 0, self.i.payload.b)),
            self.o.valid.eq(self.i.valid),
            self.i.ready.eq(self.o.ready),
        ]
        return m


def _unit_key(op):
    family = {"add": "add", "sub": "add", "min": "minmax", "max": "minmax"}.get(op.kind, op.kind)
    return (family, op.fmt, op.src_fmt)


def _make_unit(key, stages):
    family, fmt, src_fmt = key
    st = stages.get(family, 0)
    if family == "add":
        from lightnorm.rtl.fpadd import FPAddSub
        return FPAddSub(fmt, stages=st)
    if family == "mul":
        from lightnorm.rtl.fpmul import FPMul
        return FPMul(fmt, stages=st)
    if family == "div":
        from lightnorm.rtl.fpdiv import FPDiv
        return FPDiv(fmt, stages=st)
    if family == "sqrt":
        from lightnorm.rtl.fpsqrt import FPSqrt
        return FPSqrt(fmt, stages=st)
    if family == "minmax":
        from lightnorm.rtl.fpminmax import FPMinMax
        return FPMinMax(fmt, stages=st)
    if family == "convert" and not isinstance(src_fmt, FloatFormat):
        # An exact sum's fixed-point accumulator word (lightnorm.rtl.fixacc).
        from lightnorm.rtl.fixacc import FixedToFloat
        return FixedToFloat(src_fmt, fmt, stages=st)
    if family == "convert":
        from lightnorm.rtl.fpconvert import FPConvert
        return FPConvert(src_fmt, fmt, stages=st)
    if family == "zsel":
        return ZeroSelect(fmt)
    raise AssertionError(family)


class ScalarSequencer(Elaboratable):
    """Runs scalar programs for ``lanes`` channels on shared arithmetic units.

    Parameters
    ----------
    lanes : int
        Number of lanes ``G``.
    programs : list of list of Op
        Program segments; ``entry`` selects which one a ``start`` pulse runs.
    inputs : dict
        ``name -> (value, fmt)``: ``value`` is a list of ``lanes`` Values (per-lane operand) or
        one Value shared by all lanes (a host constant).  Inputs must hold still while busy.
    stages : dict
        Pipeline depth per unit family (``"add"``, ``"mul"``, ``"div"``, ``"sqrt"``,
        ``"minmax"``, ``"convert"``); missing families are combinational.
    name : str
        Prefix of the signal and unit names.

    Attributes
    ----------
    start : Signal, in
        Pulse: run segment ``entry`` once (ignored while busy).
    entry : Signal, in
        Segment index, sampled with ``start``.
    busy : Signal, out
        High from the cycle after ``start`` until the last result is written.
    done : Signal, out
        One-cycle pulse after the last result of the segment has been written.
    values : dict
        ``dst -> list of lanes Signals``: result registers (they hold until rewritten).
    """

    def __init__(self, lanes, programs, inputs, stages, *, name="seq"):
        if not programs or not all(programs):
            raise ValueError("programs must be a non-empty list of non-empty Op lists")
        self.lanes = lanes
        self.segments = [list(p) for p in programs]
        self.program = [op for p in self.segments for op in p]
        self.inputs = dict(inputs)
        self.stages = dict(stages)
        self.name = name
        self.start = Signal(name=f"{name}_start")
        self.entry = Signal(range(max(2, len(programs))), name=f"{name}_entry")
        self.busy = Signal(name=f"{name}_busy")
        self.done = Signal(name=f"{name}_done")
        self.values = {}
        self._fmt = {name: fmt for name, (_, fmt) in self.inputs.items()}
        for op in self.program:
            if op.kind not in OP_KINDS:
                raise ValueError(f"Op.kind must be one of {sorted(OP_KINDS)}, not {op.kind!r}")
            if len(op.srcs) != OP_KINDS[op.kind]:
                raise ValueError(f"Op {op.dst!r}: {op.kind} takes {OP_KINDS[op.kind]} operands, "
                                 f"not {len(op.srcs)}")
            for src in op.srcs:
                if not isinstance(src, int) and src not in self._fmt:
                    raise ValueError(f"Op {op.dst!r}: operand {src!r} is neither an input nor "
                                     f"an earlier result")
            if op.dst in self.inputs:
                raise ValueError(f"Op {op.dst!r}: destination is an input")
            if op.dst in self.values:
                if self._fmt[op.dst] != op.fmt:
                    raise ValueError(f"Op {op.dst!r}: rewritten in another format")
                continue
            self._fmt[op.dst] = op.fmt
            self.values[op.dst] = [Signal(op.fmt.width, name=f"{name}_{op.dst}_l{k}",
                                          reset_less=True) for k in range(lanes)]
        self.units = {}
        for op in self.program:
            key = _unit_key(op)
            if key not in self.units:
                self.units[key] = _make_unit(key, self.stages)

    def cycles(self, entry):
        """Cycles from the ``start`` pulse to the ``done`` pulse of segment ``entry`` (exact)."""
        return 1 + sum(self.lanes + self.units[_unit_key(op)].latency
                       for op in self.segments[entry])

    def _operand(self, src, lane):
        if isinstance(src, int):
            return Const(src)
        value = self.values[src] if src in self.values else self.inputs[src][0]
        if isinstance(value, (list, tuple)):
            return Array(value)[lane] if len(value) > 1 else value[0]
        return value

    def elaborate(self, platform):
        m = Module()
        G, prog = self.lanes, self.program
        begin = []
        for seg in self.segments:
            begin.append(sum(len(s) for s in self.segments[:len(begin)]))
        ends = [b + len(s) - 1 for b, s in zip(begin, self.segments)]

        step = Signal(range(len(prog)), name=f"{self.name}_step")
        last = Signal(range(len(prog)), name=f"{self.name}_last")
        issue = Signal(range(G + 1), name=f"{self.name}_issue")
        wb = Signal(range(G + 1), name=f"{self.name}_wb")
        lane_bits = max(1, (G - 1).bit_length())
        issue_lane, wb_lane = issue[:lane_bits], wb[:lane_bits]

        m.d.sync += self.done.eq(0)
        with m.If(~self.busy & self.start):
            m.d.sync += [self.busy.eq(1), issue.eq(0), wb.eq(0),
                         step.eq(Array(Const(b, range(len(prog))) for b in begin)[self.entry]),
                         last.eq(Array(Const(e, range(len(prog))) for e in ends)[self.entry])]

        fired = Signal(name=f"{self.name}_fired")     # an operand was accepted this cycle
        back = Signal(name=f"{self.name}_back")       # a result returned this cycle
        for key, unit in self.units.items():
            family, fmt, src_fmt = key
            tag = f"{family}_{fmt.name}" + (f"_from_{src_fmt.name}" if src_fmt else "")
            m.submodules[f"{self.name}_{tag}"] = unit
            mine = [j for j, op in enumerate(prog) if _unit_key(op) == key]
            active = Signal(name=f"{self.name}_{tag}_active")
            m.d.comb += active.eq(self.busy & sum((step == j for j in mine), Const(0)).bool())
            m.d.comb += [unit.i.valid.eq(active & (issue < G)), unit.o.ready.eq(1)]
            with m.If(unit.i.valid & unit.i.ready):
                m.d.comb += fired.eq(1)
            with m.If(active & unit.o.valid):
                m.d.comb += back.eq(1)

            slots = ["payload"] if OP_KINDS[prog[mine[0]].kind] == 1 else ["a", "b"]
            in_fmt = src_fmt if family == "convert" else fmt
            for k, slot in enumerate(slots):
                target = (Value.cast(unit.i.payload) if slot == "payload"
                          else getattr(unit.i.payload, slot))
                # Operands already in the unit's format are muxed straight in; the others share
                # one converter per source format, placed after their own mux.
                foreign = {}
                for j in mine:
                    src = prog[j].srcs[k]
                    if not isinstance(src, int) and self._fmt[src] != in_fmt:
                        foreign.setdefault(self._fmt[src], []).append(j)
                converted = {}
                for sfmt, steps in foreign.items():
                    from lightnorm.rtl.fpconvert import FPConvert
                    from .common import core
                    raw = Signal(sfmt.width, name=f"{self.name}_{tag}_{slot}_{sfmt.name}")
                    with m.Switch(step):
                        for j in steps:
                            with m.Case(j):
                                m.d.comb += raw.eq(self._operand(prog[j].srcs[k], issue_lane))
                    cv = core(m, f"{self.name}_{tag}_{slot}_cv_{sfmt.name}",
                              FPConvert(sfmt, in_fmt, stages=0), payload=raw)
                    for j in steps:
                        converted[j] = cv
                with m.Switch(step):
                    for j in mine:
                        with m.Case(j):
                            src = prog[j].srcs[k]
                            m.d.comb += target.eq(converted[j] if j in converted
                                                  else self._operand(src, issue_lane))
            if family == "add":
                with m.Switch(step):
                    for j in mine:
                        with m.Case(j):
                            m.d.comb += unit.i.payload.sub.eq(prog[j].kind == "sub")
            if family == "minmax":
                with m.Switch(step):
                    for j in mine:
                        with m.Case(j):
                            m.d.comb += unit.i.payload.max.eq(prog[j].kind == "max")
            with m.If(active & unit.o.valid):
                with m.Switch(step):
                    for j in mine:
                        with m.Case(j):
                            with m.Switch(wb_lane):
                                for lane in range(G):
                                    with m.Case(lane):
                                        m.d.sync += self.values[prog[j].dst][lane].eq(
                                            unit.o.payload)

        with m.If(fired):
            m.d.sync += issue.eq(issue + 1)
        with m.If(back):
            with m.If(wb == G - 1):
                m.d.sync += [issue.eq(0), wb.eq(0)]
                with m.If(step == last):
                    m.d.sync += [self.busy.eq(0), self.done.eq(1)]
                with m.Else():
                    m.d.sync += step.eq(step + 1)
            with m.Else():
                m.d.sync += wb.eq(wb + 1)
        return m
