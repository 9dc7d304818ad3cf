"""Quick Amaranth-simulator self-checks of RoundPack, Unpack, Pipeline and the FP units.

FPAddSub, FPMul, FPMinMax and FPConvert are streamed bit-exact against NumPy float16/float32
arithmetic (IEEE formats, RNE, subnormals) and against :mod:`lightnorm.golden.fp` (custom formats,
both rounding modes, flush-to-zero); RoundPack is checked against an exact integer reference
written here independently of the golden model.  Everything runs in Amaranth's Python simulator in
well under a minute; the big regressions (exhaustive 8-bit, 20k+ vectors per format, Verilator and
Icarus) are the cocotb tests under verif/, which take the same components through Verilog.
"""

import gc
import random

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Module, Signal, Value
from amaranth.sim import Simulator

from lightnorm.golden import fp, vectors
from lightnorm.golden.formats import (BF16, E4M3, E5M2, E6M5, FLOAT_PRESETS, FP10_154, FP10_163,
                                      FP16, FP32, FloatFormat)
from lightnorm.rtl import FPAddSub, FPConvert, FPMinMax, FPMul, RoundPack, Unpack
from lightnorm.rtl.fpconvert import (exact_conversion, exact_widening, pure_truncation,
                                     pure_widening)
from lightnorm.rtl.pipeline import Pipeline, cut_positions

RTZ = dict(rounding="rtz")
FTZ = dict(subnormals=False)
RTZ_FTZ = dict(rounding="rtz", subnormals=False)


# -- stream driver --------------------------------------------------------------------------------
def stream(dut, payloads, *, pause=0.0, seed=0):
    """Stream ``payloads`` (ints) through ``dut``; return the outputs as a list of ints.

    ``pause`` is the probability of a source idle cycle and of a sink not-ready cycle.  Checks the
    stream rules too: nothing lost, duplicated or reordered (one output per input, in order), and
    a valid output is held unchanged while the sink is not ready.
    """
    top = Module()
    top.submodules.dut = dut
    toggle = Signal()                   # a sync domain even for a combinational (stages=0) unit
    top.d.sync += toggle.eq(~toggle)
    sim = Simulator(top)
    sim.add_clock(1e-6)
    rng = random.Random(seed)
    out = []
    i_payload, o_payload = Value.cast(dut.i.payload), Value.cast(dut.o.payload)

    async def source(ctx):
        for word in payloads:
            while pause and rng.random() < pause:
                ctx.set(dut.i.valid, 0)
                await ctx.tick()
            ctx.set(dut.i.valid, 1)
            ctx.set(i_payload, int(word))
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def sink(ctx):
        held, cycles = None, 0
        while len(out) < len(payloads):
            ready = not (pause and rng.random() < pause)
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, o_payload)
            cycles += 1
            assert cycles < 20 * len(payloads) + 100, "stream stalled"
            if held is not None:
                assert valid and payload == held, "o.valid or o.payload changed during a stall"
            held = payload if valid and not ready else None
            if valid and ready:
                out.append(payload)

    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    return out


def check(fmt, got, want, what):
    """Bit-exact comparison, reporting the first few mismatches."""
    got = np.asarray(got, dtype=np.int64)
    want = np.asarray(want).astype(np.int64)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, (f"{what} ({fmt}): {bad.size}/{got.size} mismatches, e.g. "
                           + ", ".join(f"#{k}: got {got[k]:#x} want {want[k]:#x}" for k in bad[:5]))


def pack2(fmt, a, b, flag=None):
    """Payload ints of a binary op: a in the low bits, then b, then the optional 1-bit flag."""
    w = fmt.width
    words = a.astype(object) | (b.astype(object) << w)
    if flag is not None:
        words = words | (np.asarray(flag).astype(object) << (2 * w))
    return list(words)


def numpy_bits(fmt, values):
    """NumPy float16/float32 results as bit patterns, NaNs replaced by the canonical NaN."""
    values = np.asarray(values)
    bits = values.view(np.uint16 if fmt == FP16 else np.uint32).astype(np.int64)
    return np.where(np.isnan(values), fmt.canonical_nan, bits)


def as_float(fmt, bits):
    return np.asarray(bits).astype(np.uint16 if fmt == FP16 else np.uint32).view(
        np.float16 if fmt == FP16 else np.float32)


# -- RoundPack against an exact reference ---------------------------------------------------------
def exact_round_pack(fmt, sign, exp, sig, sticky):
    """Python-int reference of RoundPack: round ``(sig + sticky*eps) * 2**exp`` into ``fmt``."""
    s = sign << (fmt.width - 1)
    if sig == 0:
        return s
    p, mb = fmt.precision, fmt.man_bits
    q = max(sig.bit_length() - 1 + exp, fmt.emin) - mb       # exponent of the result's LSB
    up = False
    if exp >= q:                                             # exact (sticky is infinitesimal)
        n = sig << (exp - q)
    else:
        k = q - exp
        n, rem, half = sig >> k, sig & ((1 << k) - 1), 1 << (k - 1)
        if fmt.rounding == "rne":
            up = rem > half or (rem == half and (sticky or n & 1))
    n += up
    if n >> p:                                               # carry out of the significand
        n, q = n >> 1, q + 1
    if n >> mb:                                              # normal
        if q + mb > fmt.emax:
            return s | (fmt.pos_inf if fmt.rounding == "rne" else fmt.max_finite)
        return s | ((q + mb + fmt.bias) << mb) | (n - (1 << mb))
    return s if (not fmt.subnormals and n) else s | n


@pytest.mark.parametrize("fmt,sig_width,no_right_shift", [
    (E5M2, 9, False), (FP10_154.replace(**RTZ), 12, False), (E6M5.replace(**FTZ), 14, False),
    (E4M3.replace(**RTZ_FTZ), 3, False), (FP32, 50, False),
    (FP10_163.replace(**FTZ), 9, True), (E5M2.replace(**RTZ), 6, True),
])
def test_round_pack(fmt, sig_width, no_right_shift):
    exp_width = 10
    # With exp_min, the caller promises sig's top bit never lies below the normal range.
    exp_min = fmt.emin - sig_width + 1 if no_right_shift else None
    dut = RoundPack(fmt, sig_width, exp_width, exp_min=exp_min)
    rng = random.Random(sig_width)
    vecs = []
    for _ in range(250):
        sig = rng.getrandbits(rng.randint(0, sig_width))
        # Exponents from deep underflow to overflow, dense around both boundaries.
        lo = fmt.emin - fmt.man_bits - sig_width - 2
        exp = rng.choice([rng.randint(lo, fmt.emax + 2),
                          fmt.emin - sig_width + rng.randint(-fmt.precision - 2, 2),
                          fmt.emax - sig_width + rng.randint(-1, 2)])
        if exp_min is not None:
            exp = max(exp, exp_min)
        vecs.append((rng.getrandbits(1), exp, sig, rng.getrandbits(1)))
    # Specials override in the order NaN > Inf > zero.
    specials = [(1, 0, 5, 0, 1, 1, 1), (1, 0, 5, 0, 0, 1, 1), (1, 0, 5, 0, 0, 0, 1)]
    got, gold = [], []

    async def bench(ctx):
        for sign, exp, sig, sticky in vecs:
            ctx.set(dut.sign, sign)
            ctx.set(dut.exp, exp)
            ctx.set(dut.sig, sig)
            ctx.set(dut.sticky, sticky)
            got.append(ctx.get(dut.bits))
        for sign, exp, sig, sticky, nan, inf, zero in specials:
            for port, v in ((dut.sign, sign), (dut.exp, exp), (dut.sig, sig),
                            (dut.sticky, sticky), (dut.is_nan, nan), (dut.is_inf, inf),
                            (dut.is_zero, zero)):
                ctx.set(port, v)
            got.append(ctx.get(dut.bits))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    want = [exact_round_pack(fmt, *v) for v in vecs]
    want += [fmt.canonical_nan, fmt.sign_mask | fmt.pos_inf, fmt.sign_mask]
    check(fmt, got, want, "RoundPack vs exact reference")
    # The golden round_pack agrees wherever its precondition (sticky needs a dropped bit) holds.
    for v, w in zip(vecs, want):
        sign, exp, sig, sticky = v
        drop = max(sig.bit_length() - 1 + exp, fmt.emin) - fmt.man_bits - exp
        if sig < (1 << 62) and (not sticky or drop >= 1):
            gold.append((int(fp.round_pack(fmt, sign, exp, sig, sticky)), w))
    check(fmt, [g for g, _ in gold], [w for _, w in gold], "golden round_pack vs exact reference")


@pytest.mark.parametrize("fmt", [E5M2, E4M3.replace(**FTZ)])
@pytest.mark.parametrize("normalize", [False, True])
def test_unpack_exhaustive(fmt, normalize):
    """Every bit pattern: class, sign and value of Unpack against golden.fp.unpack."""
    dut = Unpack(fmt, normalize=normalize)
    rows = []

    async def bench(ctx):
        for bits in range(1 << fmt.width):
            ctx.set(dut.a, bits)
            rows.append(tuple(ctx.get(x) for x in (dut.sign, dut.exp, dut.sig, dut.is_zero,
                                                   dut.is_sub, dut.is_inf, dut.is_nan)))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    sign, exp, sig, zero, sub, inf, nan = (np.array(c, dtype=np.int64) for c in zip(*rows))
    cls, gsign, gexp, gsig = fp.unpack(fmt, np.arange(1 << fmt.width))
    assert (sign == gsign).all()
    assert (zero == (cls == fp.ZERO)).all() and (sub == (cls == fp.SUBNORMAL)).all()
    assert (inf == (cls == fp.INF)).all() and (nan == (cls == fp.NAN)).all()
    finite = cls <= fp.NORMAL
    # Same value: sig * 2**(exp - man_bits) == gsig * 2**gexp.
    value = np.ldexp(sig.astype(float), (exp - fmt.man_bits).astype(np.int32))
    assert (value[finite] == np.ldexp(gsig.astype(float), gexp.astype(np.int32))[finite]).all()
    if normalize:
        nz = finite & (cls != fp.ZERO)
        assert (sig[nz] >> fmt.man_bits == 1).all(), "normalized significand without its MSB"
    else:
        assert (sig[finite] == gsig[finite]).all()


# -- units against NumPy (IEEE formats) -----------------------------------------------------------
@pytest.mark.parametrize("fmt,ftype,n,stages", [(FP16, np.float16, 2000, 2),
                                                (FP32, np.float32, 1000, 1)])
def test_add_sub_mul_numpy(fmt, ftype, n, stages):
    rng = np.random.default_rng(1)
    a, b = vectors.random_pairs(fmt, n, rng)
    sub = rng.integers(0, 2, n)
    fa, fb = as_float(fmt, a), as_float(fmt, b)
    with np.errstate(all="ignore"):
        want_add = numpy_bits(fmt, np.where(sub == 1, fa - fb, fa + fb).astype(ftype))
        want_mul = numpy_bits(fmt, (fa * fb).astype(ftype))
    check(fmt, stream(FPAddSub(fmt, stages=stages), pack2(fmt, a, b, sub)), want_add, "add/sub")
    check(fmt, stream(FPMul(fmt, stages=stages), pack2(fmt, a, b)), want_mul, "mul")


def test_convert_numpy():
    rng = np.random.default_rng(2)
    a32 = vectors.random_bits(FP32, 1500, rng)
    # Values near float16's range, so the narrowing conversion rounds, overflows and underflows.
    near = rng.random(1500) < 0.6
    scale = np.exp2(rng.integers(-27, 18, 1500)).astype(np.float32)
    sign = np.where(rng.random(1500) < 0.5, 1, -1).astype(np.float32)
    mid = ((rng.random(1500) + 1).astype(np.float32) * scale * sign).astype(np.float32)
    a32 = np.where(near, mid.view(np.uint32), a32)
    with np.errstate(all="ignore"):
        want16 = numpy_bits(FP16, as_float(FP32, a32).astype(np.float16))
    check(FP16, stream(FPConvert(FP32, FP16, stages=1), list(a32)), want16, "fp32->fp16")
    a16 = vectors.random_bits(FP16, 1000, rng)
    want32 = numpy_bits(FP32, as_float(FP16, a16).astype(np.float32))
    check(FP32, stream(FPConvert(FP16, FP32, stages=2), list(a16)), want32, "fp16->fp32")


# -- units against the golden model (custom formats, both modes, FTZ) -----------------------------
@pytest.mark.parametrize("fmt,stages", [
    (E6M5.replace(**RTZ_FTZ), 1), (E4M3.replace(**RTZ), 0), (E5M2.replace(**FTZ), 3),
    (FP10_154.replace(**RTZ), 2), (FP10_163.replace(**FTZ), 1), (BF16, 1),
])
def test_units_golden(fmt, stages):
    rng = np.random.default_rng(fmt.width * 7 + stages)
    n = 700
    a, b = vectors.random_pairs(fmt, n, rng)
    flag = rng.integers(0, 2, n)
    want = np.where(flag == 1, fp.sub(fmt, a, b), fp.add(fmt, a, b))
    check(fmt, stream(FPAddSub(fmt, stages=stages), pack2(fmt, a, b, flag)), want, "add/sub")
    check(fmt, stream(FPMul(fmt, stages=stages), pack2(fmt, a, b)), fp.mul(fmt, a, b), "mul")
    want = np.where(flag == 1, fp.max(fmt, a, b), fp.min(fmt, a, b))
    check(fmt, stream(FPMinMax(fmt, stages=stages), pack2(fmt, a, b, flag)), want, "min/max")


@pytest.mark.parametrize("src,dst", [
    (FP16, E4M3.replace(**RTZ_FTZ)), (E5M2, FP10_163.replace(**FTZ)),
    (BF16.replace(**FTZ), FP10_154.replace(**RTZ)), (E6M5, E6M5.replace(**FTZ)),
])
def test_convert_golden(src, dst):
    a = vectors.random_bits(src, 700, np.random.default_rng(src.width + dst.width))
    check(dst, stream(FPConvert(src, dst, stages=1), list(a)), fp.convert(src, a, dst), "convert")


@pytest.mark.parametrize("src,dst", [
    (FloatFormat(6, 3), FloatFormat(6, 4)),
    (FloatFormat(6, 3, subnormals=False), FloatFormat(6, 4)),
    (FloatFormat(6, 3), FloatFormat(6, 4, subnormals=False, rounding="rtz")),
    (FloatFormat(5, 2, rounding="rtz"), FloatFormat(5, 7)),
])
def test_convert_widening_exhaustive(src, dst):
    """The wiring fast path (same exponent field, more mantissa bits) on every source word."""
    unit = FPConvert(src, dst, stages=1)
    assert unit.is_widening
    a = np.arange(1 << src.width, dtype=np.int64)
    check(dst, stream(unit, list(a)), fp.convert(src, a, dst), "widening convert")


@pytest.mark.parametrize("src,dst", [
    (FloatFormat(5, 4), FloatFormat(6, 4)),
    (FloatFormat(5, 4, rounding="rtz"), FloatFormat(6, 4, subnormals=False, rounding="rtz")),
    (FloatFormat(5, 4, subnormals=False), FloatFormat(6, 7)),
    (FloatFormat(4, 3), FloatFormat(6, 3)),
])
def test_convert_exact_widening_exhaustive(src, dst):
    """The re-biasing fast path (every source value a normal destination value), every word."""
    unit = FPConvert(src, dst, stages=1)
    assert unit.is_exact_widening and not unit.is_widening
    a = np.arange(1 << src.width, dtype=np.int64)
    check(dst, stream(unit, list(a)), fp.convert(src, a, dst), "exact widening convert")


@pytest.mark.parametrize("src,dst", [
    (FloatFormat(6, 4, rounding="rtz"), FloatFormat(5, 4, rounding="rtz")),
    (FloatFormat(6, 4), FloatFormat(4, 2, subnormals=False, rounding="rtz")),
    (FloatFormat(5, 4, subnormals=False), FloatFormat(5, 2, rounding="rtz")),
    (FloatFormat(4, 6), FloatFormat(5, 3, rounding="rtz")),
    (FloatFormat(7, 4), FloatFormat(6, 7, rounding="rtz")),
])
def test_convert_truncate_exhaustive(src, dst):
    """The rtz path without RoundPack (narrowing, subnormal range, saturation), every word."""
    a = np.arange(1 << src.width, dtype=np.int64)
    check(dst, stream(FPConvert(src, dst, stages=1), list(a)), fp.convert(src, a, dst),
          "truncating convert")


@pytest.mark.parametrize("src,dst", [
    (FloatFormat(7, 11), FloatFormat(6, 4, rounding="rtz")),
    (FloatFormat(6, 31), FloatFormat(5, 12, rounding="rtz")),
    (FP32, FloatFormat(4, 3, subnormals=False, rounding="rtz")),
])
def test_convert_truncate_random(src, dst):
    a = vectors.random_bits(src, 1500, np.random.default_rng(src.width * 7 + dst.width))
    check(dst, stream(FPConvert(src, dst, stages=0), list(a)), fp.convert(src, a, dst),
          "truncating convert")


def _field_corners(fmt, keep):
    """Words of ``fmt`` with exponent field 0, 1, the largest finite one or all ones and a
    mantissa that is 0, all ones, or non-zero only in its top ``keep`` bits or only below them
    (a NaN or subnormal payload that truncation to ``keep`` bits drops), both signs."""
    m, low = fmt.man_bits, (1 << (fmt.man_bits - keep)) - 1
    mans = {0, (1 << m) - 1, low, 1, 1 << (m - keep), ((1 << keep) - 1) << (m - keep),
            (1 << (m - 1)) | low}
    words = [(s << (fmt.width - 1)) | (e << m) | man for s in (0, 1) for man in sorted(mans)
             for e in (0, 1, fmt.exp_all_ones - 1, fmt.exp_all_ones)]
    return np.array(words, dtype=np.int64)


@pytest.mark.parametrize("src,dst,stages", [
    (FloatFormat(5, 6), FloatFormat(5, 4, rounding="rtz"), 1),
    (FloatFormat(5, 6, subnormals=False), FloatFormat(5, 4, rounding="rtz"), 0),
    (FloatFormat(5, 6), FloatFormat(5, 4, **RTZ_FTZ), 2),
    (FloatFormat(5, 6, **RTZ_FTZ), FloatFormat(5, 2, **RTZ_FTZ), 1),
    (FloatFormat(4, 7), FloatFormat(4, 1, rounding="rtz"), 1),
    (FloatFormat(6, 5, subnormals=False), FloatFormat(6, 4, **RTZ), 0),
    (FloatFormat(6, 8), FloatFormat(6, 3, **RTZ_FTZ), 1),
])
def test_convert_pure_truncation_exhaustive(src, dst, stages):
    """The wiring path that drops mantissa bits (same exponent field, dst rtz), every word."""
    unit = FPConvert(src, dst, stages=stages)
    assert unit.is_truncating_narrowing and not unit.is_widening and unit.latency == stages
    a = np.arange(1 << src.width, dtype=np.int64)
    check(dst, stream(unit, list(a)), fp.convert(src, a, dst), "pure truncation")


@pytest.mark.parametrize("src,dst", [
    (FloatFormat(6, 12), FloatFormat(6, 4, **RTZ_FTZ)),
    (FloatFormat(6, 12, subnormals=False), FloatFormat(6, 4, rounding="rtz")),
    (FloatFormat(6, 31, **RTZ), FloatFormat(6, 12, **RTZ)),
    (FloatFormat(7, 12, **RTZ), FloatFormat(7, 11, **RTZ)),
    (FloatFormat(8, 23), FloatFormat(8, 7, **RTZ)),
])
def test_convert_pure_truncation_random(src, dst):
    """Wider pure truncations: random words plus every field/payload corner."""
    unit = FPConvert(src, dst, stages=0)
    assert unit.is_truncating_narrowing
    rng = np.random.default_rng(src.width * 11 + dst.width)
    a = vectors.random_bits(src, 1500, rng)
    a = np.concatenate([a, _field_corners(src, dst.man_bits).astype(a.dtype)])
    check(dst, stream(unit, list(a)), fp.convert(src, a, dst), "pure truncation")


def test_convert_same_field_predicates():
    """pure_widening / pure_truncation split the same-exponent-field conversions."""
    e5m4, e5m6 = FloatFormat(5, 4), FloatFormat(5, 6)
    assert pure_widening(e5m4, e5m6) and pure_widening(e5m4, e5m4.replace(**RTZ))
    assert not pure_truncation(e5m4, e5m6) and not pure_truncation(e5m4, e5m4.replace(**RTZ))
    assert pure_truncation(e5m6, e5m4.replace(**RTZ))
    assert pure_truncation(e5m6.replace(**RTZ_FTZ), e5m4.replace(**RTZ_FTZ))
    assert not pure_truncation(e5m6, e5m4)                                # rne rounds
    assert not pure_truncation(FloatFormat(6, 6), e5m4.replace(**RTZ))   # exponent field
    # exact_conversion: a widening that flushes src's subnormals changes values
    assert exact_conversion(e5m4, e5m6) and exact_conversion(e5m4.replace(**FTZ), e5m6)
    assert not exact_conversion(e5m4, e5m6.replace(**FTZ))
    assert not exact_conversion(e5m6, e5m4.replace(**RTZ))


def test_convert_exact_widening_predicate():
    """Not taken where a source value would need rounding or be a destination subnormal."""
    assert not exact_widening(FloatFormat(5, 4), FloatFormat(6, 3))      # fewer mantissa bits
    # E2M7's subnormals (down to 2^-7) are E3M7 subnormals (emin -2): the rounding path
    assert not exact_widening(FloatFormat(2, 7), FloatFormat(3, 7))
    assert not exact_widening(FloatFormat(6, 4), FloatFormat(5, 4))      # range
    assert exact_widening(FP32, FloatFormat(9, 42))


def test_minmax_corners():
    """minimumNumber/maximumNumber rules named in the spec, on FP16 and an FTZ format."""
    fmt = FP16
    pz, nz, one, nan = 0x0000, 0x8000, 0x3C00, 0x7E01
    cases = [  # (a, b, max, expected)
        (nz, pz, 0, nz), (pz, nz, 0, nz), (nz, pz, 1, pz), (pz, nz, 1, pz),
        (nan, one, 0, one), (one, nan, 1, one), (nan, nan | 0x8000, 0, fmt.canonical_nan),
        (0x0001, 0x8001, 0, 0x8001), (0xFC00, 0x7C00, 0, 0xFC00), (0xFC00, 0x7C00, 1, 0x7C00),
    ]
    a, b, mx, want = (np.array(c) for c in zip(*cases))
    check(fmt, stream(FPMinMax(fmt, stages=1), pack2(fmt, a, b, mx)), want, "min/max corners")
    ftz = FP16.replace(**FTZ)   # subnormals compare and return as signed zeros
    a, b, mx = np.array([0x0001, 0x8001, 0x0001]), np.array([0x8000, 0x0000, 0x8003]), np.array([0, 1, 1])
    check(ftz, stream(FPMinMax(ftz, stages=0), pack2(ftz, a, b, mx)), [0x8000, 0x0000, 0x0000],
          "min/max FTZ corners")


# -- stream behaviour, pipeline placement, arguments, Verilog ------------------------------------
@pytest.mark.parametrize("stages", [0, 1, 4])
def test_backpressure(stages):
    """Random valid/ready pauses on both sides: results unchanged, nothing lost or reordered."""
    fmt = FP10_154
    rng = np.random.default_rng(stages)
    a, b = vectors.random_pairs(fmt, 400, rng)
    flag = rng.integers(0, 2, 400)
    want = np.where(flag == 1, fp.sub(fmt, a, b), fp.add(fmt, a, b))
    got = stream(FPAddSub(fmt, stages=stages), pack2(fmt, a, b, flag), pause=0.3, seed=stages)
    check(fmt, got, want, "add/sub with pauses")


@pytest.mark.parametrize("stages", [0, 1, 2, 3, 5])
def test_latency(stages):
    """The first result appears exactly ``latency`` cycles after it was accepted."""
    dut = FPMul(FP16, stages=stages)
    assert dut.latency == stages
    top = Module()
    top.submodules.dut = dut
    toggle = Signal()
    top.d.sync += toggle.eq(~toggle)
    sim = Simulator(top)
    sim.add_clock(1e-6)
    seen = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(Value.cast(dut.i.payload), 0x3C00 | (0x4000 << 16))     # 1.0 * 2.0
        ctx.set(dut.i.valid, 1)
        for cycle in range(stages + 2):
            if ctx.get(dut.o.valid):
                seen.append((cycle, ctx.get(dut.o.payload)))
            await ctx.tick()
            ctx.set(dut.i.valid, 0)

    sim.add_testbench(bench)
    sim.run()
    assert seen and seen[0] == (stages, 0x4000)


def test_cut_positions():
    for cuts in range(6):
        for stages in range(8):
            pos = cut_positions(stages, cuts)
            assert pos == sorted(set(pos)) and len(pos) == min(stages, cuts)
            assert all(0 <= x < cuts for x in pos)
    assert cut_positions(1, 3) == [1] and cut_positions(1, 2) == [1]
    with pytest.raises(ValueError, match="stages must be at least 0, not -1"):
        Pipeline(-1, 2)


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_argument_checks():
    with pytest.raises(TypeError, match="fmt must be a FloatFormat"):
        FPAddSub("fp16")
    with pytest.raises(TypeError, match="stages must be an integer"):
        FPMul(FP16, stages=1.0)
    with pytest.raises(ValueError, match="stages must be at least 0, not -2"):
        FPMinMax(FP16, stages=-2)
    with pytest.raises(TypeError, match="dst_fmt must be a FloatFormat"):
        FPConvert(FP16, None)
    with pytest.raises(ValueError, match="sig_width must be at least 1, not 0"):
        RoundPack(FP16, 0, 8)
    with pytest.raises(TypeError, match="normalize must be a bool"):
        Unpack(FP16, normalize=1)
    # The half-built components warn "created but never used" when collected; do it here, under
    # this test's warning filter, instead of in whichever test runs next.
    gc.collect()


@pytest.mark.parametrize("name", ["e6m5"])
def test_verilog_quick(name):
    fmt = FLOAT_PRESETS[name]
    for unit in (FPAddSub(fmt), FPMul(fmt), FPMinMax(fmt), FPConvert(fmt, FP32)):
        text = verilog.convert(unit, name=f"{type(unit).__name__.lower()}_{name}")
        assert "i__payload" in text and "o__ready" in text


@pytest.mark.long
@pytest.mark.parametrize("name", sorted(FLOAT_PRESETS))
def test_verilog_all_presets(name):
    fmt = FLOAT_PRESETS[name]
    for stages in (0, 2):
        for unit in (FPAddSub(fmt, stages=stages), FPMul(fmt, stages=stages),
                     FPMinMax(fmt, stages=stages), FPConvert(fmt, FP16, stages=stages),
                     FPConvert(FP32, fmt, stages=stages)):
            verilog.convert(unit, name=f"{type(unit).__name__.lower()}_{name}_s{stages}")
