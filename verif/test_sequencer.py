"""The scalar sequencer's register allocation (:func:`lightnorm.rtl.bn.recip.allocate`).

* a property check over every preset's programs (and small configurations): no value is read
  from a slot after another value overwrote it, every output and every value a later segment
  reads keeps its own register, every slot is wide enough; the checker is shown to catch two
  deliberately broken allocators;
* the sequencer alone in Amaranth's simulator, allocated and unallocated (every destination its
  own register: the structure before the allocation), bit for bit and cycle for cycle;
* the interface errors.
"""

import random
import warnings

import pytest
from amaranth.hdl import UnusedElaboratable
from amaranth.sim import Simulator

from lightnorm.golden.bnconfig import BN_PRESETS, SUMSQ_PRESETS
from lightnorm.rtl.bn import BNUnit, recip
from lightnorm.rtl.bn.rangestat import programs
from lightnorm.rtl.bn.recip import Op, ScalarSequencer, allocate

from .test_bn import small_config

# The property checks build sequencers they never elaborate.
pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")

CONFIGS = dict(BN_PRESETS)
CONFIGS["lightnorm-g2k2"] = small_config(BN_PRESETS["lightnorm"], 2, 2)
CONFIGS["lightnorm-bn-g3k3"] = small_config(BN_PRESETS["lightnorm"], 3, 3, grad="bn")
CONFIGS["bf16_bn-g2k1"] = small_config(BN_PRESETS["bf16_bn"], 2, 1)
CONFIGS.update(SUMSQ_PRESETS)           # the one-pass fwd_final (clamp0 step)
CONFIGS["bf16_bn_sumsq-g2k1"] = small_config(SUMSQ_PRESETS["bf16_bn_sumsq"], 2, 1)


def unit_sequencer(cfg, **changes):
    """The sequencer :class:`BNUnit` builds for ``cfg`` (its inputs, outputs and programs)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        return BNUnit(cfg)._sequencer()


def check_allocation(segments, inputs, outputs, alloc):
    """Execute the program symbolically on the allocation's locations; AssertionError on the
    first read that would not see the value the program means, naming step and operand."""
    width = {op.dst: op.kept.width for seg in segments for op in seg}
    for name in outputs:
        assert alloc.registers.get(name) == width[name], f"output {name!r} has no register"
    base = 0
    for s, seg in enumerate(segments):
        held = {}          # location -> (segment, step) whose result it holds
        latest = {}        # name -> step of this segment that wrote it last
        for j, op in enumerate(seg):
            g = base + j
            assert len(alloc.srcs[g]) == len(op.srcs)
            for k, src in enumerate(op.srcs):
                loc = alloc.srcs[g][k]
                where = f"segment {s} step {j} ({op.dst} = {op.kind}{op.srcs}) operand {k}"
                if isinstance(src, int):
                    assert loc == src, where
                elif src in latest:
                    assert held.get(loc) == (s, latest[src]), (
                        f"{where}: {loc} holds {held.get(loc)}, not {src!r} of step "
                        f"{latest[src]}")
                    if loc[0] == "slot":
                        assert alloc.slots[loc[1]] >= width[src], where
                elif src in inputs:
                    assert loc == ("input", src), where
                else:       # carried from an earlier segment: its own register set
                    assert loc == ("reg", src) and src in alloc.registers, where
            loc = alloc.dst[g]
            if op.dst in alloc.registers:
                assert loc == ("reg", op.dst), f"segment {s} step {j}: {op.dst!r} off its register"
            else:
                assert loc[0] == "slot" and alloc.slots[loc[1]] >= op.kept.width
            held[loc] = (s, j)
            latest[op.dst] = j
        base += len(seg)
    assert base == len(alloc.dst) == len(alloc.srcs)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_allocation_property(name):
    """Every preset's programs: the unit's allocation is sound (both pools too) and smaller."""
    seq = unit_sequencer(CONFIGS[name])
    outputs = list(seq.alloc.registers)
    check_allocation(seq.segments, seq.inputs, outputs, seq.alloc)
    for pool in ("shared", "by_format"):
        alloc = allocate(seq.segments, seq.inputs, outputs, pool=pool)
        check_allocation(seq.segments, seq.inputs, outputs, alloc)
    everything = allocate(seq.segments, seq.inputs, None)
    assert not everything.slots
    check_allocation(seq.segments, seq.inputs, list(everything.registers), everything)
    assert seq.alloc.bits < everything.bits


@pytest.mark.parametrize("broken", ["first_read", "one_early"])
@pytest.mark.parametrize("name", list(BN_PRESETS))
def test_allocation_check_catches_broken_allocator(monkeypatch, name, broken):
    """The same allocator, told that a value dies at its first read or one step before its last
    read, reuses slots too early on every preset; the property check must say so."""
    seq = unit_sequencer(BN_PRESETS[name])
    real = recip._liveness

    def liveness(segment, inputs):
        srcs, reads, cross = real(segment, inputs)
        if broken == "first_read":
            reads = {w: r[:1] for w, r in reads.items()}
        else:
            reads = {w: [max(r) - 1] for w, r in reads.items()}
        return srcs, reads, cross
    monkeypatch.setattr(recip, "_liveness", liveness)
    for pool in ("shared", "by_format"):
        alloc = allocate(seq.segments, seq.inputs, list(seq.alloc.registers), pool=pool)
        with pytest.raises(AssertionError, match="holds"):
            check_allocation(seq.segments, seq.inputs, list(seq.alloc.registers), alloc)


def _dataflow(segment):
    """Per op (by identity): the ops (or input names) its operands read; the last writers."""
    latest, flow = {}, {}
    for op in segment:
        flow[id(op)] = tuple(s if isinstance(s, int) else id(latest[s]) if s in latest else s
                             for s in op.srcs)
        latest[op.dst] = op
    return flow, {name: id(op) for name, op in latest.items()}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_hoist_keeps_dataflow(name):
    """The hoisted program is a permutation of the original in which every operand reads the
    value of the same step and every name ends with the same writer: the same results; and
    its register-writing steps did move (the slots it saves are checked above)."""
    cfg = CONFIGS[name]
    seq = unit_sequencer(cfg)
    moved = 0
    for old, built in zip(programs(cfg), seq.segments):
        new = recip.hoist(old, seq.alloc.registers)
        assert new == built
        assert sorted(map(id, old)) == sorted(map(id, new))
        assert _dataflow(old) == _dataflow(new)
        moved += old != new
    assert moved
    plain = ScalarSequencer(seq.lanes, programs(cfg), seq.inputs, seq.stages,
                            outputs=list(seq.alloc.registers), schedule=False,
                            delay=seq.delay)
    assert plain.segments == programs(cfg)
    assert seq.alloc.bits < plain.alloc.bits
    assert [seq.cycles(k) for k in range(3)] == [plain.cycles(k) for k in range(3)]


def test_hoist_respects_dependencies():
    """A register write moves up past independent steps only (not past a step writing its
    operand, writing its destination or reading its destination)."""
    from lightnorm.golden.formats import FloatFormat
    A = FloatFormat(5, 4)
    seg = [Op("t", "add", A, ("x", "x")),       # writes r's operand
           Op("u", "add", A, ("x", "x")),       # independent
           Op("r", "mul", A, ("t", "x")),       # register write: moves above u only
           Op("v", "add", A, ("r", "x")),       # reads r (old r: blocks the next r)
           Op("w", "add", A, ("x", "x")),       # independent
           Op("r", "mul", A, ("x", "x"))]       # register write: moves above w, not v
    assert [op.dst for op in recip.hoist(seg, {"r"})] == ["t", "r", "u", "v", "r", "w"]
    # With the hoisting undone by a deliberately wrong rule (moving past everything), the
    # dataflow check of test_hoist_keeps_dataflow sees the difference.
    wrong = [seg[2], seg[5]] + [seg[k] for k in (0, 1, 3, 4)]
    assert _dataflow(wrong) != _dataflow(seg)


def test_outputs_interface_errors():
    seq = unit_sequencer(CONFIGS["lightnorm-g2k2"])
    with pytest.raises(ValueError, match="outputs: 'mu_x' is not the destination"):
        ScalarSequencer(2, seq.segments, seq.inputs, {}, outputs=["mu_c", "mu_x"])
    with pytest.raises(ValueError, match="outputs: 'sum' is not the destination"):
        ScalarSequencer(2, seq.segments, seq.inputs, {}, outputs=["sum"])
    with pytest.raises(ValueError, match="pool must be"):
        ScalarSequencer(2, seq.segments, seq.inputs, {}, outputs=[], pool="lru")
    with pytest.raises(ValueError, match="delay must be a non-negative int"):
        ScalarSequencer(2, seq.segments, seq.inputs, {}, delay=-1)
    # Only the outputs (and values carried between segments) are visible to other blocks.
    assert set(seq.values) == set(seq.alloc.registers)
    assert "rng" not in seq.values and "mu_c" in seq.values


def test_carried_value_keeps_register():
    """A value a later segment reads before writing it keeps its own register even when it
    is not named as an output (here ``t``, written by segment 0, read by segment 1)."""
    from lightnorm.golden.formats import FloatFormat
    A = FloatFormat(5, 4)
    segs = [[Op("t", "add", A, ("x", "x")), Op("u", "mul", A, ("t", "t"))],
            [Op("v", "add", A, ("t", "x"))]]
    alloc = allocate(segs, ["x"], ["v"])
    assert set(alloc.registers) == {"t", "v"} and alloc.dst[1][0] == "slot"
    check_allocation(segs, ["x"], ["v"], alloc)


async def run_segment(ctx, seq, entry):
    """Pulse ``start`` for segment ``entry`` and wait for ``done``; the cycles it took."""
    ctx.set(seq.entry, entry)
    ctx.set(seq.start, 1)
    await ctx.tick()
    ctx.set(seq.start, 0)
    n = 1
    while not ctx.get(seq.done):
        await ctx.tick()
        n += 1
        assert n < 10000
    return n


def _simulate(cfg, seq_of, seed):
    """Run fwd_mu, fwd_final, bwd_final on random inputs; the outputs after each segment."""
    seq = seq_of(cfg)
    rnd = random.Random(seed)
    got, cycles = [], []

    async def bench(ctx):
        for name, (value, fmt) in seq.inputs.items():
            for v in (value if isinstance(value, list) else [value]):
                ctx.set(v, rnd.getrandbits(len(v)))
        for entry in range(len(seq.segments)):
            cycles.append(await run_segment(ctx, seq, entry))
            got.append({name: [ctx.get(v) for v in seq.values[name]]
                        for name in sorted(_OUT & set(seq.values))})
    sim = Simulator(seq)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return seq, got, cycles


#: The names the BN unit reads from the sequencer (what both variants must agree on).
_OUT = {"mu_c", "sig", "s_c", "a_c", "b_c", "dgamma", "dbeta", "a_bc", "c0_c", "c1_c",
        "c0p_c", "c0m_c"}


@pytest.mark.parametrize("name", ["lightnorm-g2k2", "bf16_bn-g2k1", "bf16_bn_sumsq-g2k1"])
def test_sequencer_matches_unallocated(name):
    """Random operands (NaN, infinities and subnormals included): the allocated sequencer gives
    the same outputs after every segment as one with a register set per destination, and
    takes exactly ``cycles(entry)`` cycles from start to done."""
    cfg = CONFIGS[name]

    def unallocated(cfg):
        s = unit_sequencer(cfg)
        return ScalarSequencer(s.lanes, programs(cfg), s.inputs, s.stages, outputs=None,
                               schedule=False, delay=s.delay)
    for seed in range(3):
        seq, got, cycles = _simulate(cfg, unit_sequencer, seed)
        ref, want, ref_cycles = _simulate(cfg, unallocated, seed)
        assert seq.alloc.slots and not ref.alloc.slots and seq.segments != ref.segments
        assert got == want
        assert cycles == ref_cycles == [seq.cycles(k) for k in range(len(seq.segments))]


def test_allocate_unknown_operand():
    """allocate() alone (without the sequencer's operand checks) names an operand that is
    neither an input nor any step's destination."""
    from lightnorm.golden.formats import FloatFormat
    A = FloatFormat(5, 4)
    with pytest.raises(ValueError, match="operand 'y' is neither an input nor the destination"):
        allocate([[Op("t", "add", A, ("x", "y"))]], ["x"], ["t"])


@pytest.mark.parametrize("name", ["lightnorm-g2k2", "lightnorm-bn-g3k3"])
def test_sequencer_merged_matches_unmerged(name):
    """Random operands (NaN, infinities and subnormals included): the sequencer whose A and AB
    steps share units in their join (merge_formats) gives the same outputs after every segment
    as one unit per format, in the same cycles."""
    cfg = CONFIGS[name]

    def unmerged(cfg):
        s = unit_sequencer(cfg)
        return ScalarSequencer(s.lanes, programs(cfg), s.inputs, s.stages,
                               outputs=list(s.result.signature.members), merge=False,
                               delay=s.delay)
    merged = unit_sequencer(cfg)
    assert len(merged.units) < len(unmerged(cfg).units)
    for seed in range(3):
        seq, got, cycles = _simulate(cfg, unit_sequencer, seed)
        ref, want, ref_cycles = _simulate(cfg, unmerged, seed)
        assert got == want
        assert cycles == ref_cycles


def test_store_and_loads():
    """``Op.store`` keeps a result widened exactly (the nested forward's a_c: E6M12 -> E5M4,
    kept as E6M4) and later steps read it in that format; a ``loads`` register takes an outside
    word while idle.  Random words (NaN, infinities, subnormals included), no extra cycles."""
    from lightnorm.golden import fp as gfp
    from lightnorm.golden.formats import FloatFormat
    rtz = {"rounding": "rtz"}
    A, C, PB = FloatFormat(6, 12, **rtz), FloatFormat(5, 4, **rtz), FloatFormat(6, 4, **rtz)
    prog = [[Op("y", "convert", C, ("x",), A, store=PB), Op("z", "mul", A, ("y", "x"))]]
    G = 2
    with pytest.raises(ValueError, match="no widening"):
        ScalarSequencer(G, [[Op("y", "convert", PB, ("x",), A, store=C)]],
                        {"x": ([A.width] * G, A)}, {}, outputs=["y"])
    with pytest.raises(ValueError, match="loads: 'z' is not an output"):
        ScalarSequencer(G, prog, {"x": ([A.width] * G, A)}, {}, outputs=["y"], loads=["z"])
    seq = ScalarSequencer(G, prog, {"x": ([A.width] * G, A)}, {}, outputs=["y", "z"],
                          loads=["y"])
    assert seq.alloc.registers["y"] == PB.width and seq.cycles(0) == 1 + 2 * G
    rnd = random.Random(5)
    words = [[rnd.getrandbits(A.width) for _ in range(G)] for _ in range(40)]

    async def bench(ctx):
        for xs in words:
            for v, x in zip(seq.operand.x, xs):
                ctx.set(v, x)
            assert await run_segment(ctx, seq, 0) == seq.cycles(0)
            for lane, x in enumerate(xs):
                y = int(gfp.convert(C, int(gfp.convert(A, x, C)), PB))
                assert ctx.get(seq.values["y"][lane]) == y
                z = int(gfp.mul(A, int(gfp.convert(PB, y, A)), x))
                assert ctx.get(seq.values["z"][lane]) == z
            # an outside word into lane 1 of y only
            word = rnd.getrandbits(PB.width)
            ctx.set(seq.load_value.y, word)
            ctx.set(seq.load_lane, 1)
            ctx.set(seq.load, 1)
            await ctx.tick()
            ctx.set(seq.load, 0)
            assert ctx.get(seq.values["y"][1]) == word
            assert ctx.get(seq.values["y"][0]) == int(
                gfp.convert(C, int(gfp.convert(A, xs[0], C)), PB))
    sim = Simulator(seq)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
