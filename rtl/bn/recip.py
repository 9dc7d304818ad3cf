"""``recip`` block: the per-channel scalar arithmetic between passes, time-multiplexed over lanes.

Between two streaming passes every lane (channel) needs a short chain of scalar operations --
mean, sum of chunk ranges or variance, reciprocal, square root, scale and shift, gradient
constants (docs/bn-spec.md, "Finalize").  They run once per channel group, so one set of
arithmetic units serves all ``G`` lanes: :class:`ScalarSequencer` executes a fixed *program* (a
list of :class:`Op`, built by :func:`lightnorm.rtl.bn.rangestat.programs` in the order of the
spec) one step at a time, issuing the step for lane 0, 1, ... G-1 on consecutive cycles into the
(pipelined) unit the step needs and waiting for the G results before the next step starts.
Cost of one program: ``1 + delay + sum over steps (G + latency(step))`` cycles, independent of
``m``.

One unit instance exists per distinct (operation family, format) of all programs -- e.g. one
FPDiv in the accumulator format -- so the divider and the square root are paid for once, not per
lane; truncating formats nested in their join share one unit in it (:func:`merge_formats`).
Operands stored in another format than their unit's (the chunk maxima are kept in the narrow
data format F) go through one shared FPConvert per (operand position, source format, unit
format) after the lane mux, and results of a merged unit through one per (unit format, step
format).

Order: the steps that write an output (a register set, below) run as early as their operands
allow (:func:`hoist`) -- e.g. ``a_bc = convert(a_b)`` right after ``a_b`` instead of at the end of
``bwd_final`` -- otherwise in program order.  Every operation sees the same operand values, so
the results are the same; the cycle count is a sum over the steps and does not change either.

Storage (:func:`allocate`, done once when the sequencer is built).  The caller names the
``outputs`` -- the values other blocks read from :attr:`ScalarSequencer.values` (the streaming
constants, the result words).  They, and every name a segment reads before writing it (a value
carried from an earlier segment, such as the conventional mean ``mu_c`` that ``fwd_mu`` leaves
for ``fwd_final``), keep their own ``G``-lane register set, written only by their own steps, so
they hold still between segments.  Every other destination is a temporary: each write starts a
new value, live from its step to its last read in the same segment, and the temporaries share
a pool of ``G``-lane *slots* by linear scan in step order (interval colouring: as many slots as
values are live at once).  A slot is free for a step's result once the value it holds has had
its last read at that step or earlier: lane ``l`` of a step is read when it issues and written
when its result comes back, never earlier, so a result may overwrite its own operand (the
chunk-sum chain ``smax_w += MX[j]`` runs in one slot).  Segments never overlap, so all of them
share the pool.  A slot is as wide as the widest value it holds (a narrower value writes its
low bits only), or the pool is split by width, whichever needs fewer bits (``pool``).
Register bits per lane, one set per destination -> allocated: LIGHTNORM 561 -> 238 (143 output
bits + slots of 38, 38, 19), BF16_BN 587 -> 237 (187 + 25, 25), FP32_BN 851 -> 389 (323 + 33,
33).

Structure: one lane multiplexer per read port (register set, slot or per-lane input), shared by
every step and unit reading it, then one step multiplexer per unit operand over those few ports;
one write port per register set or slot (the result selected by the step, an enable per bit
range, decoded per lane from the write-back counter).  A value read only by the next step on the
same lane still needs ``G`` words of storage (lane ``l`` is written ``G`` cycles before it is
read); a free-running ``G``-stage delay line would avoid its enable and lane multiplexers but
not a slot: the peak (LIGHTNORM: the two W-wide chunk sums in ``fwd_final``, three values in
``bwd_final``) comes from values read several steps later.
"""

from typing import NamedTuple

from amaranth.hdl import Array, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from lightnorm.golden.formats import FloatFormat
from lightnorm.rtl.fpconvert import exact_conversion
from .common import fp_convert, nested_rounding

__all__ = ["Op", "ScalarSequencer", "ZeroSelect", "ClampNegative", "OP_KINDS", "Allocation", "allocate", "hoist",
           "merge_formats", "MERGED_FAMILIES"]

#: Operation kinds a program may use, and their operand counts.  ``zsel`` is the spec's
#: zero-spread rule, ``zsel(c, v) = +0 if c is +-0 else v`` -- a selection, not arithmetic;
#: ``clamp0`` the one-pass variance's ``max(v, +0)`` that keeps NaN, ``clamp0(v) = +0 if v is
#: negative (sign set, not NaN) else v`` -- a selection too.
OP_KINDS = {"add": 2, "sub": 2, "mul": 2, "div": 2, "min": 2, "max": 2, "sqrt": 1, "convert": 1,
            "zsel": 2, "clamp0": 1}


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
    store : FloatFormat or None
        Format the result is kept in, and read in by later steps and other blocks: an exact
        widening of the ``fmt`` result (every ``fmt`` value is a ``store`` value), done on the
        write path by one converter per unit and format (no extra cycle).  ``None``: ``fmt``.
    """
    dst: str
    kind: str
    fmt: FloatFormat
    srcs: tuple
    src_fmt: FloatFormat = None
    store: FloatFormat = None

    @property
    def kept(self):
        """Format of the stored result: ``store``, or ``fmt`` when that is None."""
        return self.store or self.fmt


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


class ClampNegative(wiring.Component):
    """``o = +0 if a is negative (sign set and not NaN) else a`` (docs/bn-spec.md section 4,
    the one-pass variance), a combinational stream stage.

    Parameters
    ----------
    fmt : FloatFormat
        Format of ``a`` and ``o``.
    """

    def __init__(self, fmt):
        self.fmt = fmt
        super().__init__({
            "i": In(stream.Signature(unsigned(fmt.width))),
            "o": Out(stream.Signature(unsigned(fmt.width))),
        })

    latency = 0

    def elaborate(self, platform):
        m = Module()
        f, a = self.fmt, self.i.payload
        exp = a[f.man_bits:f.man_bits + f.exp_bits]
        nan = (exp == (1 << f.exp_bits) - 1) & (a[:f.man_bits] != 0)
        m.d.comb += [
            self.o.payload.eq(Mux(a[f.width - 1] & ~nan, 0, a)),
            self.o.valid.eq(self.i.valid),
            self.i.ready.eq(self.o.ready),
        ]
        return m


def _unit_key(op):
    family = {"add": "add", "sub": "add", "min": "minmax", "max": "minmax"}.get(op.kind, op.kind)
    return (family, op.fmt, op.src_fmt)


#: Families whose steps in different formats may share one unit in their join (merge_formats).
MERGED_FAMILIES = ("add", "mul", "fix")


def _join(fmts):
    """The smallest FloatFormat whose exponent and mantissa fields hold each of ``fmts``."""
    return FloatFormat(max(f.exp_bits for f in fmts), max(f.man_bits for f in fmts),
                       subnormals=any(f.subnormals for f in fmts), rounding=fmts[0].rounding)


def merge_formats(fmts):
    """``{fmt: host}``: the format of the unit that computes the steps of each of ``fmts``.

    Formats of one family share one unit in their join ``J`` (widest exponent and mantissa
    fields) when every member rounds toward zero with its grid nested in ``J``'s
    (:func:`~.common.nested_rounding`: truncating into ``J`` and then into the member equals
    truncating into the member, overflow and subnormals included) and ``J`` is at most one bit
    wider than each member.  The step's operands enter ``J`` exactly (the sequencer's operand
    converters) and its result is truncated into the step's format after the unit: e.g.
    LIGHTNORM's A = E6M12 and AB = E7M11 multiplications on one E7M12 multiplier (two 2.1-2.3k
    GE multipliers -> one of 2.5k GE and two converters).  The width rule keeps a narrow format
    off a much wider unit, where the converters cost about what the second unit saves (an
    E6M12 adder on the E6M31 chunk-sum adder: 1,462 GE saved, about 1,300 GE of converters).
    Greedy, in the order given: each format joins the first group it fits, else starts one.
    """
    groups = []
    for f in dict.fromkeys(fmts):
        for g in groups:
            j = _join(g + [f])
            if all((x == j or nested_rounding(x, j)) and j.width <= x.width + 1
                   for x in g + [f]):
                g.append(f)
                break
        else:
            groups.append([f])
    return {f: (_join(g) if len(g) > 1 else f) for g in groups for f in g}


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
        return FixedToFloat(src_fmt, fmt, stages=stages.get("fix", 0))
    if family == "convert":
        from lightnorm.rtl.fpconvert import FPConvert
        return FPConvert(src_fmt, fmt, stages=st)
    if family == "zsel":
        return ZeroSelect(fmt)
    if family == "clamp0":
        return ClampNegative(fmt)
    raise AssertionError(family)


class Allocation(NamedTuple):
    """Where every program value lives: the result of :func:`allocate`.

    Attributes
    ----------
    registers : dict
        ``name -> width``: the names with their own ``G``-lane register set (the outputs and
        every name a segment reads before it writes it); they hold until rewritten.
    slots : list of int
        Widths of the shared ``G``-lane temporary slots.
    dst : list
        Per step of the concatenated program: ``("reg", name)`` or ``("slot", index)``.
    srcs : list
        Per step, per operand: an ``int`` constant, ``("input", name)``, ``("reg", name)`` or
        ``("slot", index)``.
    """
    registers: dict
    slots: list
    dst: list
    srcs: list

    @property
    def bits(self):
        """Register bits per lane (registers plus slots)."""
        return sum(self.registers.values()) + sum(self.slots)


def _liveness(segment, inputs):
    """Versions of one segment: ``(writer, reads, cross)``.

    ``writer[j]`` is the step whose result step ``j``'s operands read (per operand: an int
    constant, ``("input", name)``, ``("ver", step)`` or ``("outer", name)`` for a name the
    segment reads before writing it); ``reads[w]`` lists the steps reading version ``w``."""
    latest, srcs, reads, cross = {}, [], {}, set()
    for j, op in enumerate(segment):
        row = []
        for src in op.srcs:
            if isinstance(src, int):
                row.append(src)
            elif src in latest:
                row.append(("ver", latest[src]))
                reads.setdefault(latest[src], []).append(j)
            elif src in inputs:
                row.append(("input", src))
            else:
                row.append(("outer", src))
                cross.add(src)
        srcs.append(row)
        latest[op.dst] = j
    return srcs, reads, cross


def allocate(segments, inputs, outputs=None, *, pool=None):
    """Register allocation by liveness for the program ``segments`` (lists of :class:`Op`).

    Parameters
    ----------
    segments : list of list of Op
    inputs : iterable of str
        Names of the sequencer inputs.
    outputs : iterable of str or None
        Names read from outside the sequencer; ``None``: every destination (no sharing).
    pool : {None, "shared", "by_format"}
        ``"shared"``: any temporary may use any slot, a slot is as wide as the widest value it
        holds; ``"by_format"``: one pool per width (formats of one width share it).  ``None``
        takes the one with fewer bits (``"by_format"`` on a tie: no partial-width writes).

    Returns
    -------
    Allocation

    Raises
    ------
    ValueError
        An output that no step writes, an operand that is neither an input nor any step's
        destination, or an unknown ``pool``.

    Registers: every output and every name some segment reads before writing it (a value
    carried from an earlier segment, e.g. the conventional mean) gets its own register set.
    Everything else is a temporary: each write starts a new value, live from its step to its
    last read in the same segment (segments never overlap, so slots are shared between
    them).  A slot is free for a step's result once its value's last read is that step or an
    earlier one: lane ``l`` of a step is read when it issues and written when its result
    returns, never earlier, so a result may overwrite an operand of its own step.
    """
    inputs = set(inputs)
    dsts = {}
    for seg in segments:
        for op in seg:
            dsts.setdefault(op.dst, op.kept.width)
    if outputs is None:
        outputs = list(dsts)
    else:
        outputs = list(outputs)
        for name in outputs:
            if name not in dsts:
                raise ValueError(f"outputs: {name!r} is not the destination of any program step")
    if pool not in (None, "shared", "by_format"):
        raise ValueError(f"pool must be None, 'shared' or 'by_format', not {pool!r}")
    if pool is None:
        tries = [allocate(segments, inputs, outputs, pool=p) for p in ("by_format", "shared")]
        return min(tries, key=lambda a: a.bits)
    live = [_liveness(seg, inputs) for seg in segments]
    registers = {name: dsts[name] for name in outputs}
    for _, _, cross in live:
        for name in cross:
            if name not in dsts:
                raise ValueError(f"operand {name!r} is neither an input nor the destination of "
                                 f"any program step")
            registers[name] = dsts[name]
    slots, dst, srcs = [], [], []
    for seg, (seg_srcs, reads, _) in zip(segments, live):
        base = len(dst)
        # Linear scan: free_at[s] = the last step reading the value in slot s.
        free_at = [-1] * len(slots)
        where = {}
        for j, op in enumerate(seg):
            row = []
            for src in seg_srcs[j]:
                if isinstance(src, int):
                    row.append(src)
                elif src[0] == "input":
                    row.append(src)
                elif src[0] == "outer":
                    row.append(("reg", src[1]))
                else:
                    row.append(where[src[1]])
            srcs.append(tuple(row))
            if op.dst in registers:
                where[j] = ("reg", op.dst)
            else:
                width = op.kept.width
                ok = [s for s in range(len(slots)) if free_at[s] <= j
                      and (pool == "shared" or slots[s] == width)]
                if ok:
                    # Prefer a slot already wide enough, then the narrowest (best fit).
                    s = min(ok, key=lambda s: (slots[s] < width, slots[s], s))
                    slots[s] = max(slots[s], width)
                else:
                    s = len(slots)
                    slots.append(width)
                    free_at.append(-1)
                free_at[s] = max(reads.get(j, [j]))
                where[j] = ("slot", s)
            dst.append(where[j])
        assert len(dst) == base + len(seg)
    return Allocation(registers, slots, dst, srcs)


def hoist(segment, registers):
    """``segment`` with every step that writes one of ``registers`` moved up, as far as its data
    dependencies allow (past no step that writes one of its operands, writes its destination or
    reads its destination).

    Such a step creates no temporary, and moving it up can only bring its operands' last reads
    forward: e.g. ``a_bc = convert(a_b)`` right after ``a_b`` instead of at the end of
    ``bwd_final`` frees ``a_b``'s slot early.  The results are the same (every operation sees
    the same operand values) and so is the cycle count (a sum over the steps)."""
    order = []
    for op in segment:
        at = len(order)
        if op.dst in registers:
            while at > 0:
                q = order[at - 1]
                if q.dst in op.srcs or q.dst == op.dst or op.dst in q.srcs:
                    break
                at -= 1
        order.insert(at, op)
    return order

def _width(port):
    return port if isinstance(port, int) else len(Value.cast(port))


class ScalarSequencer(wiring.Component):
    """Runs scalar programs for ``lanes`` channels on shared arithmetic units.

    Parameters
    ----------
    lanes : int
        Number of lanes ``G``.
    programs : list of list of Op
        Program segments; ``entry`` selects which one a ``start`` pulse runs.
    inputs : dict
        ``name -> (port, fmt)``: one operand port per input.  ``port`` is its width (an int, or
        a Value of that width) for one word shared by all lanes (a host constant), or a list of
        ``lanes`` of them for one word per lane.  Inputs must hold still while busy.
    stages : dict
        Pipeline depth per unit family (``"add"``, ``"mul"``, ``"div"``, ``"sqrt"``,
        ``"minmax"``, ``"convert"``; ``"fix"`` for the FixedToFloat rounding of an exact
        sum); missing families are combinational.
    outputs : list of str or None
        Destinations read from outside the sequencer: they get their own register sets in
        :attr:`values`; the other destinations share temporary slots (:func:`allocate`).
        ``None``: every destination is an output (one register set each, no sharing).
        ValueError for a name that no program step writes.
    pool : {None, "shared", "by_format"}
        Slot pool of :func:`allocate`; ``None`` takes the one with fewer bits.
    schedule : bool
        Run the steps that write a register set (an output) as early as their operands allow
        (:func:`hoist`), which shortens the temporaries' lives; False: program order.
    merge : bool
        Steps of one family (add/sub, mul, the fixed-to-float rounding of one sum word) in
        different formats share one unit in their join where :func:`merge_formats` makes that
        exact (truncating formats); False: one unit per format.
    delay : int
        Cycles between ``start`` and the first step's issue (the sums' settling time after a
        statistics pass, :func:`~.stats.sum_latency`); part of :meth:`cycles`.
    loads : iterable of str
        Outputs whose register sets may also be written from outside (``load``), e.g. with a
        command's word where no segment computes it; ValueError for a name that is not an
        output.
    name : str
        Prefix of the signal and unit names.

    Attributes
    ----------
    start : In(1)
        Pulse: run segment ``entry`` once (ignored while busy).
    entry : In(range(max(2, len(programs))))
        Segment index, sampled with ``start``.
    busy : Out(1)
        High from the cycle after ``start`` until the last result is written.
    done : Out(1)
        One-cycle pulse after the last result of the segment has been written.
    operand : Out(wiring.Signature({name: In(width) or In(width).array(lanes)}))
        One input port per ``inputs`` entry, of its name.
    result : Out(wiring.Signature({name: Out(width).array(lanes)}))
        One output port per output (``outputs``; ``None``: every destination): the output's
        register set, in the width of its format.
    load, load_lane : In(1), In(range(max(2, lanes)))
        With ``loads`` only: in a cycle with ``load`` high (never while busy) lane
        ``load_lane`` of every ``loads`` register set takes its word from ``load_value``.
    load_value : Out(wiring.Signature({name: In(width)}))
        With ``loads`` only: one word per ``loads`` name, in the register's width.
    inputs : dict
        ``name -> (port, fmt)``: the operand ports (a Signal, or a list of ``lanes``) and
        their formats.
    values : dict
        ``name -> list of lanes Signals``: the register sets of the outputs (and of values
        carried between segments); they hold until their own steps rewrite them.
    alloc : Allocation
        Where every step's operands and result live.
    """

    def __init__(self, lanes, programs, inputs, stages, *, outputs=None, pool=None,
                 schedule=True, merge=True, delay=0, loads=(), name="seq"):
        if not programs or not all(programs):
            raise ValueError("programs must be a non-empty list of non-empty Op lists")
        self.lanes = lanes
        self.segments = [list(p) for p in programs]
        self.program = [op for p in self.segments for op in p]
        self.stages = dict(stages)
        self.name = name
        if isinstance(delay, bool) or not isinstance(delay, int) or delay < 0:
            raise ValueError(f"delay must be a non-negative int, not {delay!r}")
        self.delay = delay
        self.values = {}
        self._fmt = {name: fmt for name, (_, fmt) in inputs.items()}
        ports = {}
        for key, (port, _) in inputs.items():
            if isinstance(port, (list, tuple)):
                if len(port) != lanes or len({_width(p) for p in port}) != 1:
                    raise ValueError(f"inputs[{key!r}] must be one width or a list of {lanes} "
                                     f"equal widths, not {port!r}")
                ports[key] = In(_width(port[0])).array(lanes)
            else:
                ports[key] = In(_width(port))
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
            if op.dst in inputs:
                raise ValueError(f"Op {op.dst!r}: destination is an input")
            if op.store is not None and not exact_conversion(op.fmt, op.store):
                raise ValueError(f"Op {op.dst!r}: store ({op.store.name}) is no widening of "
                                 f"{op.fmt.name}")
            if op.dst in self._fmt:
                if self._fmt[op.dst] != op.kept:
                    raise ValueError(f"Op {op.dst!r}: rewritten in another format")
                continue
            self._fmt[op.dst] = op.kept
        if schedule:
            registers = allocate(self.segments, inputs, outputs, pool="by_format").registers
            self.segments = [hoist(seg, registers) for seg in self.segments]
            self.program = [op for p in self.segments for op in p]
        self.alloc = allocate(self.segments, inputs, outputs, pool=pool)
        outs = list(self.alloc.registers) if outputs is None else list(outputs)
        self.loads = list(loads)
        for r in self.loads:
            if r not in outs:
                raise ValueError(f"loads: {r!r} is not an output")
        extern = {}
        if self.loads:
            extern = {"load": In(1), "load_lane": In(range(max(2, lanes))),
                      "load_value": Out(wiring.Signature(
                          {r: In(self.alloc.registers[r]) for r in self.loads}))}
        super().__init__({
            "start": In(1), "entry": In(range(max(2, len(programs)))),
            "busy": Out(1), "done": Out(1),
            "operand": Out(wiring.Signature(ports)),
            "result": Out(wiring.Signature({r: Out(self.alloc.registers[r]).array(lanes)
                                            for r in outs})),
            **extern,
        })
        self.inputs = {key: (getattr(self.operand, key), fmt)
                       for key, (_, fmt) in inputs.items()}
        self.values = {r: [Signal(w, name=f"{name}_{r}_l{k}", reset_less=True)
                           for k in range(lanes)]
                       for r, w in self.alloc.registers.items()}
        self.slots = [[Signal(w, name=f"{name}_t{s}_l{k}", reset_less=True)
                       for k in range(lanes)]
                      for s, w in enumerate(self.alloc.slots)]
        # The unit each step runs on: one per (family, format, source format), formats of one
        # family merged into their join where merge_formats allows (merge=True).
        self._host = {}
        if merge:
            for family in MERGED_FAMILIES:
                keys = [k for k in map(_unit_key, self.program) if self._family(k) == family]
                for src in {k[2] for k in keys}:
                    mine = [k for k in keys if k[2] == src]
                    hosts = merge_formats([k[1] for k in mine])
                    self._host.update({k: (k[0], hosts[k[1]], src) for k in mine})
        self.units = {}
        for op in self.program:
            key = self._key(op)
            if key not in self.units:
                self.units[key] = _make_unit(key, self.stages)

    @staticmethod
    def _family(key):
        family, _, src_fmt = key
        if family == "convert" and src_fmt is not None and not isinstance(src_fmt, FloatFormat):
            return "fix"
        return family

    def _key(self, op):
        """The key of the unit in :attr:`units` that runs ``op``."""
        key = _unit_key(op)
        return self._host.get(key, key)

    def cycles(self, entry):
        """Cycles from the ``start`` pulse to the ``done`` pulse of segment ``entry`` (exact)."""
        return 1 + self.delay + sum(self.lanes + self.units[self._key(op)].latency
                                    for op in self.segments[entry])

    def _location(self, loc):
        """The ``lanes`` Signals (or one shared Value) behind an allocation location."""
        kind, key = loc
        if kind == "input":
            return self.inputs[key][0]
        return self.values[key] if kind == "reg" else self.slots[key]

    def _operand(self, j, k, reads):
        loc = self.alloc.srcs[j][k]
        if isinstance(loc, int):
            return Const(loc)
        if loc[0] != "slot":
            # inputs and own registers are read whole: an input's word may be wider than its
            # format's width (the exact sums' accumulator words carry flag bits above the
            # register, rtl/fixacc.py word_width)
            return reads[loc]
        return reads[loc][:self._fmt[self.program[j].srcs[k]].width]

    def elaborate(self, platform):
        m = Module()
        G, prog = self.lanes, self.program
        begin = []
        for seg in self.segments:
            begin.append(sum(len(s) for s in self.segments[:len(begin)]))
        ends = [b + len(s) - 1 for b, s in zip(begin, self.segments)]
        for r in self.result.signature.members:
            m.d.comb += [p.eq(v) for p, v in zip(getattr(self.result, r), self.values[r])]

        step = Signal(range(len(prog)), name=f"{self.name}_step")
        last = Signal(range(len(prog)), name=f"{self.name}_last")
        issue = Signal(range(G + 1), name=f"{self.name}_issue")
        wb = Signal(range(G + 1), name=f"{self.name}_wb")
        lane_bits = max(1, (G - 1).bit_length())
        issue_lane, wb_lane = issue[:lane_bits], wb[:lane_bits]

        # The first step issues ``delay`` cycles after start (``hold`` counts them down).
        if self.delay:
            hold = Signal(range(self.delay + 1), name=f"{self.name}_hold")
            with m.If(hold != 0):
                m.d.sync += hold.eq(hold - 1)
            with m.If(~self.busy & self.start):
                m.d.sync += hold.eq(self.delay)
            held = hold != 0
        else:
            held = Const(0)
        m.d.sync += self.done.eq(0)
        with m.If(~self.busy & self.start):
            m.d.sync += [self.busy.eq(1), issue.eq(0), wb.eq(0),
                         step.eq(Array(Const(b, range(len(prog))) for b in begin)[self.entry]),
                         last.eq(Array(Const(e, range(len(prog))) for e in ends)[self.entry])]

        # One lane multiplexer per register set, slot or per-lane input, shared by every step
        # and unit that reads it (register-file style); the step multiplexers select among
        # these few read ports.
        reads, results = {}, {}
        for row in self.alloc.srcs:
            for loc in row:
                if isinstance(loc, int) or loc in reads:
                    continue
                value = self._location(loc)
                if isinstance(value, (list, tuple)) and len(value) > 1:
                    rd = Signal(len(value[0]), name=f"{self.name}_rd_{loc[0]}_{loc[1]}")
                    m.d.comb += rd.eq(Array(value)[issue_lane])
                    value = rd
                elif isinstance(value, (list, tuple)):
                    value = value[0]
                reads[loc] = value
        fired = Signal(name=f"{self.name}_fired")     # an operand was accepted this cycle
        back = Signal(name=f"{self.name}_back")       # a result returned this cycle
        # Operands in another format than their unit's enter it through one converter per
        # (operand position, source format, unit format), shared by all units of that input
        # format (one step runs at a time): the operand selected by the step, then converted.
        foreign = {}
        for j, op in enumerate(prog):
            family, fmt, src_fmt = self._key(op)
            in_fmt = src_fmt if family == "convert" else fmt
            for k, src in enumerate(op.srcs):
                if not isinstance(src, int) and self._fmt[src] != in_fmt:
                    foreign.setdefault((k, self._fmt[src], in_fmt), []).append(j)
        converted = {}
        for (k, sfmt, dfmt), steps in foreign.items():
            tag = f"{self.name}_op{k}_cv_{sfmt.name}_{dfmt.name}"
            raw = Signal(sfmt.width, name=f"{tag}_in")
            with m.Switch(step):
                for j in steps:
                    with m.Case(j):
                        m.d.comb += raw.eq(self._operand(j, k, reads))
            cv = fp_convert(m, tag, sfmt, dfmt, raw)
            converted.update({(j, k): cv for j in steps})

        for key, unit in self.units.items():
            family, fmt, src_fmt = key
            tag = f"{family}_{fmt.name}" + (f"_from_{src_fmt.name}" if src_fmt else "")
            m.submodules[f"{self.name}_{tag}"] = unit
            mine = [j for j, op in enumerate(prog) if self._key(op) == key]
            active = Signal(name=f"{self.name}_{tag}_active")
            m.d.comb += active.eq(self.busy & sum((step == j for j in mine), Const(0)).bool())
            m.d.comb += [unit.i.valid.eq(active & (issue < G) & ~held),
                         unit.o.ready.eq(1)]
            with m.If(unit.i.valid & unit.i.ready):
                m.d.comb += fired.eq(1)
            with m.If(active & unit.o.valid):
                m.d.comb += back.eq(1)

            slots = ["payload"] if OP_KINDS[prog[mine[0]].kind] == 1 else ["a", "b"]
            for k, slot in enumerate(slots):
                target = (Value.cast(unit.i.payload) if slot == "payload"
                          else getattr(unit.i.payload, slot))
                with m.Switch(step):
                    for j in mine:
                        with m.Case(j):
                            m.d.comb += target.eq(converted[j, k] if (j, k) in converted
                                                  else self._operand(j, k, reads))
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
            for j in mine:
                results[j] = unit.o.payload

        # A step in a narrower format than its (merged) unit: the result truncated into the
        # step's format (merge_formats: exact), one converter per (unit format, step format)
        # after the selection of the running step's unit.
        narrow = {}
        for j, op in enumerate(prog):
            wide = self._key(op)[1]
            if op.fmt != wide:
                narrow.setdefault((wide, op.fmt), []).append(j)
        for (wide, f), steps in narrow.items():
            tag = f"{self.name}_res_cv_{wide.name}_{f.name}"
            sources = {id(results[j]): results[j] for j in steps}
            if len(sources) == 1:
                raw = results[steps[0]]
            else:
                raw = Signal(wide.width, name=f"{tag}_in")
                with m.Switch(step):
                    for j in steps:
                        with m.Case(j):
                            m.d.comb += raw.eq(results[j])
            cv = fp_convert(m, tag, wide, f, raw)
            results.update({j: cv for j in steps})

        # Results kept in a wider format (Op.store): widened at the unit's output, one shared
        # converter per (unit, format) for all its steps that keep one.
        widened = {}
        for j, op in enumerate(prog):
            if op.store is not None:
                key = (self._key(op), op.fmt, op.store)
                if key not in widened:
                    widened[key] = fp_convert(
                        m, f"{self.name}_store{len(widened)}_{op.fmt.name}_{op.store.name}",
                        op.fmt, op.store, results[j])
                results[j] = widened[key]

        # One write port per register set or slot: the data selected by the step, and per bit
        # range an enable (a narrower value leaves a wider slot's upper bits alone), decoded
        # per lane from the write-back counter.  A ``loads`` register set takes the outside
        # word through the same port (shared data, one more enable term per lane).
        writers = {}
        for j, loc in enumerate(self.alloc.dst):
            writers.setdefault(loc, []).append(j)
        for loc, steps in writers.items():
            regs = self._location(loc)
            width = len(regs[0])
            tag = f"{self.name}_wr_{loc[0]}_{loc[1]}"
            wdata = Signal(width, name=f"{tag}_data")
            if len(steps) == 1:
                m.d.comb += wdata[:prog[steps[0]].kept.width].eq(results[steps[0]])
            else:
                with m.Switch(step):
                    for j in steps:
                        with m.Case(j):
                            m.d.comb += wdata[:prog[j].kept.width].eq(results[j])
            extern = loc[0] == "reg" and loc[1] in self.loads
            if extern:
                with m.If(self.load):
                    m.d.comb += wdata.eq(getattr(self.load_value, loc[1]))
            lo = 0
            for hi in sorted({prog[j].kept.width for j in steps}):    # a register: one width
                en = Signal(name=f"{tag}_en{hi}")
                mine = [j for j in steps if prog[j].kept.width >= hi]
                m.d.comb += en.eq(back & sum((step == j for j in mine), Const(0)).bool())
                for lane in range(G):
                    hit = en & (wb_lane == lane)
                    if extern:
                        hit = hit | (self.load & (self.load_lane == lane))
                    with m.If(hit):
                        m.d.sync += regs[lane][lo:hi].eq(wdata[lo:hi])
                lo = hi

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
