"""Quick Amaranth-simulator self-checks of FPDiv, FPSqrt, BfpEncoder and BfpDecoder.

Bit-exact against the golden models (:func:`lightnorm.golden.fp.div`,
:func:`~lightnorm.golden.fp.sqrt`, :mod:`lightnorm.golden.bfp`), in both rounding modes and with
flush-to-zero, with random valid/ready pauses on both sides of the stream.  These run in
Amaranth's Python simulator in about 45 s of CPU time; the large regressions (exhaustive 8-bit,
20k+ vectors per format, both HDL simulators) are the cocotb tests, which take the same
components through Verilog.
"""

import gc
import random

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Module, Shape, Signal, Value
from amaranth.sim import Simulator

from lightnorm.golden import bfp as gbfp
from lightnorm.golden import fp, vectors
from lightnorm.golden.formats import (BF16, E4M3, E6M5, FP10_154, FP10_163, FP16, FP32,
                                      BfpFormat)
from lightnorm.rtl.bfp import BfpDecoder, BfpEncoder, bfp_layout
from lightnorm.rtl.fpdiv import FPDiv
from lightnorm.rtl.fpsqrt import FPSqrt

RTZ_FTZ = dict(rounding="rtz", subnormals=False)


# -- stream driver --------------------------------------------------------------------------------
def simulate(dut, payloads, *, seed=0, pause=0.25):
    """Stream ``payloads`` (ints) through ``dut`` with random valid/ready pauses; return outputs.

    Besides the payloads it checks the stream rules a unit can break on its own: every input is
    transferred once, outputs come in order, and ``o.valid`` is never withdrawn (nor its payload
    changed) while the sink holds ``o.ready`` low.
    """
    top = Module()
    top.submodules.dut = dut
    tick = Signal()                       # gives a combinational (stages=0) unit a clock domain
    top.d.sync += tick.eq(~tick)
    sim = Simulator(top)
    sim.add_clock(1e-6)
    rng = random.Random(seed)
    out = []
    i_payload, o_payload = Value.cast(dut.i.payload), Value.cast(dut.o.payload)

    async def source(ctx):
        for word in payloads:
            while rng.random() < pause:
                ctx.set(dut.i.valid, 0)
                await ctx.tick()
            ctx.set(dut.i.valid, 1)
            ctx.set(i_payload, int(word))
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def sink(ctx):
        held = None            # (payload) of a valid output not yet taken
        cycles = 0
        while len(out) < len(payloads):
            ready = rng.random() >= pause
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, o_payload)
            cycles += 1
            assert cycles < 50 * (len(payloads) + 10), "stream stalled"
            if held is not None:
                assert valid and payload == held, \
                    "o.valid withdrawn or payload changed while stalled"
            held = None
            if valid and ready:
                out.append(payload)
            elif valid:
                held = payload

    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    return np.array(out, dtype=object)


def first_output_delay(dut, payload):
    """Clock edges from accepting one input (sink always ready) to its output being valid."""
    top = Module()
    top.submodules.dut = dut
    tick = Signal()
    top.d.sync += tick.eq(~tick)
    sim = Simulator(top)
    sim.add_clock(1e-6)
    result = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(Value.cast(dut.i.payload), payload)
        ctx.set(dut.i.valid, 1)
        delay = 0
        while not ctx.get(dut.o.valid):
            await ctx.tick()
            ctx.set(dut.i.valid, 0)
            delay += 1
            assert delay < 100
        result.append(delay)

    sim.add_testbench(bench)
    sim.run()
    return result[0]


def _mismatch_report(what, inputs, got, want):
    bad = np.nonzero(got != want)[0]
    lines = [f"{what}: {len(bad)} of {len(want)} mismatches"]
    for k in bad[:8]:
        lines.append(f"  in={inputs[k]} got={int(got[k]):#x} want={int(want[k]):#x}")
    return "\n".join(lines)


# -- FP divide and square root --------------------------------------------------------------------
def _operands(fmt, n, rng):
    """Corner cases against each other, then biased random operands: ``n`` pairs."""
    c = vectors.corners(fmt)
    a = rng.choice(c, n // 3)
    b = rng.choice(c, n // 3)
    ra, rb = vectors.random_pairs(fmt, n - len(a), rng)
    return np.concatenate([a, ra]).astype(np.int64), np.concatenate([b, rb]).astype(np.int64)


DIVSQRT_CASES = [
    # (format, stages, vectors)
    (FP10_154, 2, 800),
    (FP10_154.replace(**RTZ_FTZ), 0, 800),
    (FP16, 1, 500),
    (FP16.replace(rounding="rtz"), 3, 400),
    (E4M3.replace(subnormals=False), 5, 600),
    (FP10_163.replace(rounding="rtz"), 1, 400),
    (BF16.replace(subnormals=False), 2, 300),
    (FP32, 2, 150),
]


def _case_id(case):
    return f"{case[0].name}-s{case[1]}"


@pytest.mark.parametrize("case", DIVSQRT_CASES, ids=_case_id)
def test_fpdiv_matches_golden(case):
    fmt, stages, n = case
    rng = np.random.default_rng(sum(map(ord, fmt.name)) + stages)
    a, b = _operands(fmt, n, rng)
    # Exact quotients and rounding ties: b a power of two (quotient shifts only, exercises the
    # subnormal boundary) and a = b * c for small c.
    k = n // 10
    b[:k] = ((rng.integers(0, 2, k) << (fmt.width - 1))
             | (rng.integers(1, fmt.exp_all_ones, k) << fmt.man_bits))
    dut = FPDiv(fmt, stages=stages)
    got = simulate(dut, a | (b << fmt.width), seed=stages)
    want = fp.div(fmt, a, b).astype(np.int64)
    assert (got == want).all(), _mismatch_report(f"div {fmt.name}", list(zip(a, b)), got, want)


@pytest.mark.parametrize("case", DIVSQRT_CASES, ids=_case_id)
def test_fpsqrt_matches_golden(case):
    fmt, stages, n = case
    rng = np.random.default_rng(sum(map(ord, fmt.name)) + stages + 1)
    a, _ = _operands(fmt, n, rng)
    # Perfect squares (exact roots, sticky 0) of both exponent parities.
    k = n // 10
    roots = fmt.encode(rng.integers(1, 1 << min(fmt.precision // 2 + 1, 8), k)
                       * np.exp2(rng.integers(-8, 8, k)).astype(np.float64))
    a[:k] = fp.mul(fmt, roots, roots)
    dut = FPSqrt(fmt, stages=stages)
    got = simulate(dut, a, seed=stages + 1)
    want = fp.sqrt(fmt, a).astype(np.int64)
    assert (got == want).all(), _mismatch_report(f"sqrt {fmt.name}", list(a), got, want)


def test_divsqrt_specials():
    """IEEE special cases spelled out (not only "equal to golden")."""
    fmt = FP16
    pz, nz, one, inf, ninf, nan = 0x0000, 0x8000, 0x3C00, 0x7C00, 0xFC00, 0x7E00
    mone = one | 0x8000
    pairs = [(one, pz, inf), (mone, pz, ninf), (one, nz, ninf), (pz, pz, nan), (inf, inf, nan),
             (one, inf, pz), (mone, inf, nz), (nz, one, nz), (inf, nz, ninf), (0x7D01, one, nan),
             (0x0001, 0x7BFF, pz), (0x7BFF, 0x0001, inf)]
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    got = simulate(FPDiv(fmt, stages=1), a | (b << 16), pause=0)
    assert [int(x) for x in got] == [p[2] for p in pairs]
    ops = [(nz, nz), (pz, pz), (inf, inf), (ninf, nan), (mone, nan), (0x8001, nan), (nan, nan),
           (0x3C00, 0x3C00), (0x4400, 0x4000)]
    got = simulate(FPSqrt(fmt, stages=1), np.array([o[0] for o in ops]), pause=0)
    assert [int(x) for x in got] == [o[1] for o in ops]
    # FTZ: sqrt(-subnormal) reads the operand as -0.
    got = simulate(FPSqrt(FP16.replace(subnormals=False), stages=0), np.array([0x8001]), pause=0)
    assert [int(x) for x in got] == [nz]


# -- BFP ------------------------------------------------------------------------------------------
def _pack_words(fmt, groups):
    """Rows of ``group`` bit patterns -> one int per group (element 0 in the low bits)."""
    out = np.zeros(len(groups), dtype=object)
    for i in range(groups.shape[1]):
        out = out | (groups[:, i].astype(object) << (fmt.width * i))
    return out


def _directed_groups(bfmt, fmt, rng):
    """The BFP boundary cases, as rows of ``fmt`` bit patterns."""
    G, M = bfmt.group, bfmt.man_bits
    enc = fmt.encode
    rows = []
    rows.append(np.zeros(G))                                       # all-zero group
    rows.append(np.where(np.arange(G) % 2, -0.0, 0.0))             # signed zeros kept
    big = fp.decode(fmt, fmt.max_finite)
    tiny = rng.uniform(-1, 1, G)                                   # one huge element
    rows.append(np.where(np.arange(G) == G // 2, -big, tiny))
    for special in (np.inf, -np.inf, np.nan):                      # Inf / NaN poison the group
        r = rng.uniform(-4, 4, G)
        r[rng.integers(G)] = special
        rows.append(r)
    r = rng.uniform(-4, 4, G)
    r[0], r[-1] = np.inf, np.nan
    rows.append(r)
    # Mantissa overflow on rounding: the largest element is just below 2**(e+1) but rounds up
    # to 2**M units of its grid (rne), together with small elements that must be re-rounded.
    for e in (0, 5, -3):
        top = (2.0 - 2.0 ** (1 - M) * 0.75) * 2.0 ** e
        r = rng.uniform(-1, 1, G) * 2.0 ** e
        r[rng.integers(G)] = -top if e == 5 else top
        rows.append(r)
    # Largest finite elements: mantissa overflow at the top shared exponent (special group) when
    # the format reaches it; exact ties onto the grid.
    rows.append(np.full(G, big))
    ulp = 2.0 ** (1 - M)
    rows.append(np.array([(1 + ulp * (k + 0.5)) * (-1) ** k for k in range(G)]))
    # Values far below the smallest shared exponent and subnormals.
    sub = fp.decode(fmt, np.arange(1, G + 1))
    rows.append(sub)
    rows.append(np.concatenate([sub[:G - 1], [fp.decode(fmt, fmt.min_normal)]]))
    return np.stack([enc(r) for r in rows]).astype(np.int64)


def _random_groups(bfmt, fmt, n, rng):
    """Random groups whose elements span a few binades (realistic tensors) or the whole range."""
    G = bfmt.group
    narrow = n // 2
    base = rng.integers(1, fmt.exp_all_ones - 1, (narrow, 1))
    efield = np.clip(base - rng.integers(0, 6, (narrow, G)), 0, fmt.exp_all_ones - 1)
    man = rng.integers(0, 1 << fmt.man_bits, (narrow, G))
    sign = rng.integers(0, 2, (narrow, G))
    g1 = (sign << (fmt.width - 1)) | (efield << fmt.man_bits) | man
    g2 = vectors.random_bits(fmt, (n - narrow) * G, rng).reshape(n - narrow, G).astype(np.int64)
    return np.concatenate([g1, g2])


BFP_CASES = [
    # (BfpFormat, FloatFormat, stages, groups)
    (BfpFormat(8, 5), FP10_154, 1, 200),                              # LightNorm forward
    (BfpFormat(8, 5, rounding="rtz"), FP10_154.replace(**RTZ_FTZ), 0, 200),
    (BfpFormat(8, 8), FP16, 2, 120),
    (BfpFormat(8, 8, rounding="rtz"), BF16, 3, 120),
    (BfpFormat(8, 3), BF16, 1, 150),                                  # exponent overflow (rne)
    (BfpFormat(4, 12, exp_bits=5), FP16.replace(subnormals=False), 1, 150),  # M > precision
    (BfpFormat(3, 4, exp_bits=4), E6M5, 2, 200),                      # field narrower than fmt
    (BfpFormat(8, 8), FP32, 2, 50),                                   # E clamped at -B
]


def _bfp_id(case):
    return f"{case[0].name}-{case[1].name}-s{case[2]}"


@pytest.mark.parametrize("case", BFP_CASES, ids=_bfp_id)
def test_bfp_encoder_matches_golden(case):
    bfmt, fmt, stages, n = case
    rng = np.random.default_rng(len(bfmt.name) * 31 + stages)
    groups = np.concatenate([_directed_groups(bfmt, fmt, rng), _random_groups(bfmt, fmt, n, rng)])
    got = simulate(BfpEncoder(bfmt, fmt, stages=stages), _pack_words(fmt, groups), seed=stages)
    want = gbfp.pack(bfmt, *gbfp.encode(bfmt, fmt, groups.astype(fmt.dtype)))
    assert (got == want).all(), _mismatch_report(
        f"bfp encode {bfmt.name} {fmt.name}", [[hex(x) for x in g] for g in groups], got, want)


@pytest.mark.parametrize("case", BFP_CASES, ids=_bfp_id)
def test_bfp_decoder_matches_golden(case):
    bfmt, fmt, stages, n = case
    rng = np.random.default_rng(len(bfmt.name) * 37 + stages)
    # Golden-encoded groups (the round trip) and arbitrary packed groups: every shared field,
    # including the special one, and every element code.
    groups = np.concatenate([_directed_groups(bfmt, fmt, rng), _random_groups(bfmt, fmt, n, rng)])
    shared, elements = gbfp.encode(bfmt, fmt, groups.astype(fmt.dtype))
    shared_r = rng.integers(0, 1 << bfmt.exp_bits, n)
    shared_r[: n // 8] = (1 << bfmt.exp_bits) - 1
    elements_r = rng.integers(0, 1 << bfmt.element_width, (n, bfmt.group))
    shared = np.concatenate([shared, shared_r]).astype(np.uint8)
    elements = np.concatenate([elements, elements_r]).astype(gbfp.element_dtype(bfmt))
    packed = gbfp.pack(bfmt, shared, elements)
    got = simulate(BfpDecoder(bfmt, fmt, stages=stages), packed, seed=stages + 7)
    want = _pack_words(fmt, gbfp.decode(bfmt, shared, elements, fmt).astype(np.int64))
    assert (got == want).all(), _mismatch_report(
        f"bfp decode {bfmt.name} {fmt.name}", [hex(int(p)) for p in packed], got, want)


def test_bfp_layout_is_golden_pack_layout():
    bfmt = BfpFormat(8, 5)
    layout = bfp_layout(bfmt)
    assert layout.size == bfmt.group_width
    assert layout["exp"].offset == 0 and Shape.cast(layout["exp"].shape).width == bfmt.exp_bits
    elems = layout["elems"]
    assert elems.offset == bfmt.exp_bits
    el = elems.shape.elem_shape
    assert el["mag"].offset == 0 and el["sign"].offset == bfmt.man_bits
    assert elems.shape.length == bfmt.group


# -- interface contract ---------------------------------------------------------------------------
@pytest.mark.parametrize("stages", [0, 1, 4, 9])
@pytest.mark.parametrize("make", [
    lambda s: FPDiv(FP10_154, stages=s),
    lambda s: FPSqrt(FP10_154, stages=s),
    lambda s: BfpEncoder(BfpFormat(8, 5), FP10_154, stages=s),
    lambda s: BfpDecoder(BfpFormat(8, 5), FP10_154, stages=s),
], ids=["div", "sqrt", "bfp_enc", "bfp_dec"])
def test_latency_property_is_the_register_count(make, stages):
    dut = make(stages)
    assert dut.latency == stages
    assert first_output_delay(dut, 0x2A) == stages


@pytest.mark.parametrize("make, message", [
    (lambda: FPDiv("fp16"), "fmt must be a FloatFormat"),
    (lambda: FPDiv(FP16, stages=-1), "stages must be at least 0, not -1"),
    (lambda: FPSqrt(FP16, stages=1.5), "stages must be an integer"),
    (lambda: BfpEncoder(FP16, FP16), "bfmt must be a BfpFormat"),
    (lambda: BfpEncoder(BfpFormat(8, 5), BfpFormat(8, 5)), "fmt must be a FloatFormat"),
    (lambda: BfpDecoder(BfpFormat(8, 5), FP16, stages=True), "stages must be an integer"),
])
@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_arguments_are_checked(make, message):
    with pytest.raises((TypeError, ValueError), match=message) as info:
        make()
    # The half-built component would warn "created but never used" whenever it is collected;
    # collect it here, where that warning is filtered.
    del info
    gc.collect()


@pytest.mark.parametrize("make", [
    lambda: FPDiv(FP10_154, stages=2), lambda: FPSqrt(FP16, stages=2),
    lambda: FPDiv(BF16, stages=1), lambda: FPSqrt(FP32, stages=3),
    lambda: BfpEncoder(BfpFormat(8, 5), FP10_154), lambda: BfpDecoder(BfpFormat(8, 5), FP10_154),
    lambda: BfpEncoder(BfpFormat(8, 8), FP16), lambda: BfpDecoder(BfpFormat(8, 8), FP16),
    lambda: BfpEncoder(BfpFormat(8, 8), BF16), lambda: BfpDecoder(BfpFormat(8, 8), BF16),
], ids=["div-fp10", "sqrt-fp16", "div-bf16", "sqrt-fp32", "enc-fp10", "dec-fp10",
        "enc-fp16", "dec-fp16", "enc-bf16", "dec-bf16"])
def test_verilog_converts(make):
    text = verilog.convert(make())
    for port in ("i__payload", "i__valid", "i__ready", "o__payload", "o__valid", "o__ready"):
        assert port in text
