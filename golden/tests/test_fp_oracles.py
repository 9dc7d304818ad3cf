"""The golden FP model (golden/fp.py) against independent oracles.

* NumPy float16/float32 arithmetic and casts (IEEE 754 binary16/binary32, RNE, subnormals);
* ml_dtypes bfloat16, through float32 (double rounding is innocuous for +, -, *, /, sqrt since
  24 >= 2*8 + 2); float64 -> bfloat16 is checked against gfloat instead (how ml_dtypes casts
  float64 has changed between releases; see test_bf16_encode_from_float64);
* apytypes (arbitrary exp/man widths, exact arithmetic then one quantization) for add, sub, mul,
  div and casts in TIES_EVEN and TO_ZERO;
* gfloat round_ndarray / decode_ndarray for encode, decode and sqrt (sqrt through float64 --
  one float64 rounding cannot land on a point of a p <= 24 bit grid, so RNE/RTZ of the float64
  root equals RNE/RTZ of the exact root).

NaNs compare by the canonical-NaN rule: wherever the oracle gives any NaN, the model must give
``fmt.canonical_nan``.  Flush-to-zero is checked against ``flush(oracle(flush(a), flush(b)))``.
"""

import apytypes as apy
import gfloat
import ml_dtypes
import numpy as np
import pytest

from lightnorm.golden import fp
from lightnorm.golden.formats import (BF16, E4M3, E5M2, E6M5, FP10_154, FP10_154_ACC, FP10_163,
                                      FP10_163_ACC, FP16, FP32)
from lightnorm.golden.vectors import corners, random_bits, random_pairs

from gfloat_oracle import GF_MODE, gf_info  # golden/tests/gfloat_oracle.py

CUSTOM = [FP10_154, FP10_163, E6M5, FP10_154_ACC, FP10_163_ACC, E4M3, E5M2]
MODES = ["rne", "rtz"]
BINARY = ["add", "sub", "mul", "div"]
APY_MODE = {"rne": apy.QuantizationMode.TIES_EVEN, "rtz": apy.QuantizationMode.TO_ZERO}

# The oracles' own casts overflow to Inf and carry NaNs on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in cast:RuntimeWarning")


# -- helpers ----------------------------------------------------------------------------------
def ref_is_nan(fmt, ref):
    ref = np.asarray(ref, dtype=np.int64)
    return (((ref >> fmt.man_bits) & fmt.exp_all_ones) == fmt.exp_all_ones) & \
        ((ref & ((1 << fmt.man_bits) - 1)) != 0)


def assert_bits(fmt, got, ref, *operands, what=""):
    """Model bits == oracle bits, any oracle NaN == canonical NaN; report the first mismatches."""
    got = np.asarray(got)
    assert got.dtype == fmt.dtype, f"result dtype {got.dtype}, expected {np.dtype(fmt.dtype)}"
    got = got.astype(np.int64)
    ref = np.asarray(ref).astype(np.int64)
    expect = np.where(ref_is_nan(fmt, ref), fmt.canonical_nan, ref)
    bad = np.nonzero(got.ravel() != np.broadcast_to(expect, got.shape).ravel())[0]
    if bad.size:
        lines = []
        for i in bad[:8]:
            ops = ", ".join(f"{int(np.broadcast_to(o, got.shape).ravel()[i]):#x}" for o in operands)
            lines.append(f"  ({ops}) -> model {int(got.ravel()[i]):#x}, "
                         f"oracle {int(expect.ravel()[i]):#x}")
        pytest.fail(f"{what} {fmt.name}: {bad.size} of {got.size} differ\n" + "\n".join(lines))


def all_pairs(fmt):
    x = np.arange(1 << fmt.width, dtype=np.int64)
    a, b = np.meshgrid(x, x, indexing="ij")
    return a.ravel().astype(fmt.dtype), b.ravel().astype(fmt.dtype)


def test_pairs(fmt, n, seed):
    """Corners x corners, plus ``n`` adder-oriented random pairs."""
    rng = np.random.default_rng(seed)
    c = corners(fmt)
    ca, cb = np.meshgrid(c, c, indexing="ij")
    ra, rb = random_pairs(fmt, n, rng)
    return np.concatenate([ca.ravel(), ra]), np.concatenate([cb.ravel(), rb])


test_pairs.__test__ = False      # a helper, not a test


def flush_in(fmt, bits):
    """Subnormal patterns -> signed zero (the FTZ input rule), on plain int64 arrays."""
    bits = np.asarray(bits, dtype=np.int64)
    sub = ((bits >> fmt.man_bits) & fmt.exp_all_ones) == 0
    return np.where(sub, bits & fmt.sign_mask, bits)


def apy_binary(fmt, op, a, b):
    """apytypes oracle for a binary op in fmt (subnormals on), returns bit patterns."""
    x = apy.APyFloatArray.from_bits(np.asarray(a, dtype=np.int64), fmt.exp_bits, fmt.man_bits,
                                    fmt.bias)
    y = apy.APyFloatArray.from_bits(np.asarray(b, dtype=np.int64), fmt.exp_bits, fmt.man_bits,
                                    fmt.bias)
    with apy.APyFloatQuantizationContext(APY_MODE[fmt.rounding]):
        r = {"add": lambda: x + y, "sub": lambda: x - y,
             "mul": lambda: x * y, "div": lambda: x / y}[op]()
    assert (r.exp_bits, r.man_bits, r.bias) == (fmt.exp_bits, fmt.man_bits, fmt.bias)
    return np.asarray(r.to_bits(), dtype=np.int64)


def gf_decode(fmt, bits):
    """gfloat oracle: exact float64 values of fmt bit patterns (subnormals on)."""
    return np.asarray(gfloat.decode_ndarray(gf_info(fmt), np.asarray(bits, dtype=np.int64)),
                      dtype=np.float64)


def gf_round_bits(fmt, values):
    """gfloat oracle: round float64 values into fmt (subnormals on) and encode."""
    fi = gf_info(fmt)
    r = gfloat.round_ndarray(fi, np.asarray(values, dtype=np.float64), GF_MODE[fmt.rounding])
    return np.asarray(gfloat.encode_ndarray(fi, r), dtype=np.int64)


def np_type(fmt):
    return {FP16: np.float16, FP32: np.float32, BF16: ml_dtypes.bfloat16}[fmt]


def np_binary(fmt, op, a, b):
    """NumPy (FP16, FP32) or ml_dtypes-through-float32 (BF16) oracle."""
    t = np_type(fmt)
    x = np.asarray(a).view(t).astype(np.float32)
    y = np.asarray(b).view(t).astype(np.float32)
    if fmt == FP16:   # native float16 arithmetic where NumPy has it
        x, y = x.astype(np.float16), y.astype(np.float16)
    with np.errstate(all="ignore"):
        r = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}[op](x, y)
    return r.astype(t).view(fmt.dtype)


def float64_samples(n, rng, lo, hi):
    """Random float64 values with exponents in [lo, hi]: full 52-bit mantissas plus values
    exactly at, one float64-ulp above and below the rounding ties of short formats."""
    sig = rng.integers(0, 1 << 52, n, dtype=np.int64)
    # A third: 1.xxx with a short random prefix and a tie-ish tail (..100000 +- 1).
    third = n // 3
    prefix_bits = rng.integers(1, 25, third)
    sig[:third] = (((rng.integers(0, 1 << 24, third) >> (24 - prefix_bits)) << 1 | 1)
                   << (51 - prefix_bits)) + rng.integers(-1, 2, third)
    sig &= (1 << 52) - 1
    e = rng.integers(lo, hi + 1, n)
    v = np.ldexp(1.0 + sig / 2.0**52, e)
    return np.where(rng.integers(0, 2, n) == 1, -v, v)


# -- IEEE formats against NumPy and ml_dtypes (rne, subnormals) ---------------------------------
@pytest.mark.parametrize("op", BINARY)
@pytest.mark.parametrize("fmt", [FP16, BF16], ids=["fp16", "bf16"])
def test_ieee16_binary_every_a(fmt, op):
    """Every 16-bit pattern as ``a`` against 4 biased random ``b`` each (262,144 vectors)."""
    rng = np.random.default_rng(1)
    a = np.tile(np.arange(1 << 16, dtype=np.uint16), 4)
    b = random_bits(fmt, a.size, rng)
    assert_bits(fmt, getattr(fp, op)(fmt, a, b), np_binary(fmt, op, a, b), a, b, what=op)


@pytest.mark.parametrize("op", BINARY)
@pytest.mark.parametrize("fmt", [FP16, FP32, BF16], ids=["fp16", "fp32", "bf16"])
def test_ieee_binary_random(fmt, op):
    a, b = test_pairs(fmt, 100_000, seed=2)
    assert_bits(fmt, getattr(fp, op)(fmt, a, b), np_binary(fmt, op, a, b), a, b, what=op)


@pytest.mark.long
@pytest.mark.parametrize("op", BINARY)
@pytest.mark.parametrize("fmt", [FP16, FP32, BF16], ids=["fp16", "fp32", "bf16"])
def test_ieee_binary_long(fmt, op):
    for seed in range(10):
        a, b = test_pairs(fmt, 1_000_000, seed=100 + seed)
        assert_bits(fmt, getattr(fp, op)(fmt, a, b), np_binary(fmt, op, a, b), a, b, what=op)


def np_sqrt(fmt, a):
    t = np_type(fmt)
    with np.errstate(all="ignore"):
        x = np.asarray(a).view(t)
        r = np.sqrt(x) if fmt != BF16 else np.sqrt(x.astype(np.float32))
    return r.astype(t).view(fmt.dtype)


@pytest.mark.parametrize("fmt", [FP16, BF16], ids=["fp16", "bf16"])
def test_ieee16_sqrt_exhaustive(fmt):
    a = np.arange(1 << 16, dtype=np.uint16)
    assert_bits(fmt, fp.sqrt(fmt, a), np_sqrt(fmt, a), a, what="sqrt")


def test_fp32_sqrt_random():
    rng = np.random.default_rng(3)
    a = np.concatenate([corners(FP32), random_bits(FP32, 200_000, rng)])
    assert_bits(FP32, fp.sqrt(FP32, a), np_sqrt(FP32, a), a, what="sqrt")


@pytest.mark.long
def test_fp32_sqrt_long():
    rng = np.random.default_rng(4)
    a = rng.integers(0, 1 << 32, 4_000_000, dtype=np.uint64).astype(np.uint32)
    assert_bits(FP32, fp.sqrt(FP32, a), np_sqrt(FP32, a), a, what="sqrt")


def test_convert_fp16_fp32():
    a16 = np.arange(1 << 16, dtype=np.uint16)
    ref = a16.view(np.float16).astype(np.float32).view(np.uint32)
    assert_bits(FP32, fp.convert(FP16, a16, FP32), ref, a16, what="fp16->fp32")
    rng = np.random.default_rng(5)
    a32 = np.concatenate([corners(FP32), random_bits(FP32, 200_000, rng),
                          # fp32 values with exponents in and around fp16's range
                          ((rng.integers(0, 2, 50_000) << 31)
                           | (rng.integers(100, 145, 50_000) << 23)
                           | rng.integers(0, 1 << 23, 50_000)).astype(np.uint32)])
    ref = a32.view(np.float32).astype(np.float16).view(np.uint16)
    assert_bits(FP16, fp.convert(FP32, a32, FP16), ref, a32, what="fp32->fp16")
    ref = a32.view(np.float32).astype(ml_dtypes.bfloat16).view(np.uint16)
    assert_bits(BF16, fp.convert(FP32, a32, BF16), ref, a32, what="fp32->bf16")
    b16 = np.arange(1 << 16, dtype=np.uint16)
    ref = b16.view(ml_dtypes.bfloat16).astype(np.float32).view(np.uint32)
    assert_bits(FP32, fp.convert(BF16, b16, FP32), ref, b16, what="bf16->fp32")


@pytest.mark.parametrize("fmt", [FP16, FP32], ids=["fp16", "fp32"])
def test_encode_from_float64(fmt):
    rng = np.random.default_rng(6)
    v = np.concatenate([float64_samples(300_000, rng, -160, 140),
                        [0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 1e308]])
    with np.errstate(all="ignore"):
        ref = v.astype(np_type(fmt)).view(fmt.dtype)
    assert_bits(fmt, fp.encode(fmt, v), ref, v.view(np.uint64), what="encode")


def test_bf16_encode_from_float32():
    rng = np.random.default_rng(7)
    v = float64_samples(300_000, rng, -140, 130).astype(np.float32)
    ref = v.astype(ml_dtypes.bfloat16).view(np.uint16)
    assert_bits(BF16, fp.encode(BF16, v), ref, v.view(np.uint32), what="encode")


@pytest.mark.parametrize("rounding", MODES)
def test_bf16_encode_from_float64(rounding):
    """float64 -> bfloat16 with ONE rounding, against gfloat (the host path encodes float64).

    ml_dtypes is not the oracle here: how it casts float64 (directly, or through float32 with a
    second rounding) has changed between its releases, and the project relies on neither. The
    samples include values one float64 ulp off the bf16 ties, e.g. 1 + 2**-8 + 2**-30, which a
    cast through float32 would move onto the tie.
    """
    fmt = BF16.replace(rounding=rounding)
    rng = np.random.default_rng(8)
    v = np.concatenate([float64_samples(300_000, rng, -140, 130),
                        [1 + 2.0**-8 + 2.0**-30, -(1 + 2.0**-8 + 2.0**-30), 1 + 2.0**-8,
                         1 + 3 * 2.0**-8, 0.0, -0.0, np.inf, -np.inf, 1e300, 5e-324]])
    with np.errstate(all="ignore"):
        ref = gf_round_bits(fmt, v)
    assert_bits(fmt, fp.encode(fmt, v), ref, v.view(np.uint64), what="encode")
    # the trap value itself, spelled out: correct RNE rounds it up, RTZ down
    trap = fp.decode(fmt, fp.encode(fmt, np.array([1 + 2.0**-8 + 2.0**-30])))[0]
    assert trap == (1 + 2.0**-7 if rounding == "rne" else 1.0)


@pytest.mark.parametrize("fmt", [FP16, BF16], ids=["fp16", "bf16"])
def test_decode_exhaustive(fmt):
    a = np.arange(1 << 16, dtype=np.uint16)
    ref = a.view(np_type(fmt)).astype(np.float64)
    got = fp.decode(fmt, a)
    assert np.array_equal(got, ref, equal_nan=True)
    assert np.array_equal(np.signbit(got[~np.isnan(got)]), np.signbit(ref[~np.isnan(ref)]))


# -- custom formats against apytypes and gfloat (both rounding modes) ---------------------------
@pytest.mark.parametrize("rounding", MODES)
@pytest.mark.parametrize("op", BINARY)
@pytest.mark.parametrize("base", [E4M3, E5M2], ids=["e4m3", "e5m2"])
def test_8bit_binary_exhaustive(base, op, rounding):
    """All 65,536 operand pairs, subnormals on."""
    fmt = base.replace(rounding=rounding)
    a, b = all_pairs(fmt)
    assert_bits(fmt, getattr(fp, op)(fmt, a, b), apy_binary(fmt, op, a, b), a, b, what=op)


@pytest.mark.parametrize("rounding", MODES)
@pytest.mark.parametrize("op", BINARY)
@pytest.mark.parametrize("base", [E4M3, E5M2], ids=["e4m3", "e5m2"])
def test_8bit_binary_exhaustive_ftz(base, op, rounding):
    """All pairs with subnormals=False: flush(oracle(flush(a), flush(b)))."""
    fmt = base.replace(rounding=rounding, subnormals=False)
    a, b = all_pairs(fmt)
    ref = flush_in(fmt, apy_binary(fmt, op, flush_in(fmt, a), flush_in(fmt, b)))
    assert_bits(fmt, getattr(fp, op)(fmt, a, b), ref, a, b, what=op)


@pytest.mark.parametrize("rounding", MODES)
@pytest.mark.parametrize("op", BINARY)
@pytest.mark.parametrize("base", CUSTOM[:5] + [FP16, FP32, BF16],
                         ids=lambda f: f.name)
def test_custom_binary_random(base, op, rounding):
    """Corners x corners + 20,000 random pairs, subnormals on and off."""
    for subnormals in (True, False):
        fmt = base.replace(rounding=rounding, subnormals=subnormals)
        a, b = test_pairs(fmt, 20_000, seed=8)
        ref = apy_binary(fmt, op, flush_in(fmt, a), flush_in(fmt, b)) if not subnormals \
            else apy_binary(fmt, op, a, b)
        if not subnormals:
            ref = flush_in(fmt, ref)
        assert_bits(fmt, getattr(fp, op)(fmt, a, b), ref, a, b, what=op)


@pytest.mark.long
@pytest.mark.parametrize("rounding", MODES)
@pytest.mark.parametrize("op", BINARY)
@pytest.mark.parametrize("base", CUSTOM[:5] + [FP16, FP32, BF16], ids=lambda f: f.name)
def test_custom_binary_long(base, op, rounding):
    fmt = base.replace(rounding=rounding)
    for seed in range(5):
        a, b = test_pairs(fmt, 200_000, seed=200 + seed)
        assert_bits(fmt, getattr(fp, op)(fmt, a, b), apy_binary(fmt, op, a, b), a, b, what=op)


def _all_or_random(fmt, n, rng):
    if fmt.width <= 16:
        return np.arange(1 << fmt.width, dtype=np.int64).astype(fmt.dtype)
    return np.concatenate([corners(fmt), random_bits(fmt, n, rng)])


@pytest.mark.parametrize("rounding", MODES)
@pytest.mark.parametrize("base", CUSTOM + [FP16, BF16, FP32], ids=lambda f: f.name)
def test_custom_sqrt(base, rounding):
    """Exhaustive up to 16 bits; gfloat rounding of the float64 root, FTZ via the flush rule."""
    rng = np.random.default_rng(9)
    for subnormals in (True, False):
        fmt = base.replace(rounding=rounding, subnormals=subnormals)
        a = _all_or_random(fmt, 100_000, rng)
        x = gf_decode(fmt, flush_in(fmt, a) if not subnormals else a)
        with np.errstate(invalid="ignore"):
            ref = gf_round_bits(fmt, np.sqrt(x))
        if not subnormals:
            ref = flush_in(fmt, ref)
        assert_bits(fmt, fp.sqrt(fmt, a), ref, a, what="sqrt")


@pytest.mark.parametrize("rounding", MODES)
@pytest.mark.parametrize("fmt", CUSTOM + [FP16, BF16, FP32], ids=lambda f: f.name)
def test_custom_encode(fmt, rounding):
    """float64 -> fmt against gfloat, including overflow, underflow and tie neighbourhoods."""
    fmt = fmt.replace(rounding=rounding)
    rng = np.random.default_rng(10)
    v = np.concatenate([
        float64_samples(100_000, rng, fmt.emin - fmt.man_bits - 3, fmt.emax + 2),
        fp.decode(fmt, corners(fmt)),
        [0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, 1e308, -1e308]])
    assert_bits(fmt, fp.encode(fmt, v), gf_round_bits(fmt, v), v.view(np.uint64), what="encode")
    ftz = fmt.replace(subnormals=False)
    assert_bits(ftz, fp.encode(ftz, v), flush_in(fmt, gf_round_bits(fmt, v)), v.view(np.uint64),
                what="encode ftz")


@pytest.mark.parametrize("fmt", CUSTOM, ids=lambda f: f.name)
def test_custom_decode(fmt):
    rng = np.random.default_rng(11)
    a = _all_or_random(fmt, 100_000, rng)
    ref = gf_decode(fmt, a)
    got = fp.decode(fmt, a)
    assert np.array_equal(got, ref, equal_nan=True)
    assert np.array_equal(np.signbit(got), np.signbit(ref) & ~np.isnan(ref)) or \
        np.array_equal(np.signbit(got[~np.isnan(got)]), np.signbit(ref[~np.isnan(ref)]))
    # FTZ decode: subnormal patterns read as signed zeros.
    ftz = fmt.replace(subnormals=False)
    assert np.array_equal(fp.decode(ftz, a), fp.decode(fmt, flush_in(fmt, a)), equal_nan=True)


CONVERSIONS = [(FP32, FP10_154), (FP32, FP10_163), (FP32, E4M3), (FP32, E6M5),
               (FP10_154_ACC, FP10_154), (FP10_163_ACC, FP10_163), (FP16, FP10_154),
               (FP10_154, FP10_163), (FP10_163, FP10_154), (BF16, FP10_163), (FP10_154, FP32),
               (E5M2, E4M3), (E4M3, E5M2), (FP16, BF16), (BF16, FP16)]


@pytest.mark.parametrize("rounding", MODES)
@pytest.mark.parametrize("src,dst", CONVERSIONS, ids=lambda f: f.name)
def test_custom_convert(src, dst, rounding):
    """Conversions against gfloat (exact decode, one rounding); FTZ by the flush rules.

    Not against apytypes casts: apytypes 0.5.1 ``APyFloatArray.cast`` mis-rounds a subnormal
    result that rounds up to ``2**(emin-1)`` (E6M3 0x7f = 7.5 * 2**-18 -> E5M4 gives 0x10 =
    2**-14 instead of the tie-to-even 0x08 = 8 * 2**-18; gfloat and the model agree, see
    test_convert_subnormal_carry)."""
    rng = np.random.default_rng(12)
    a = _all_or_random(src, 100_000, rng)
    for src_sub in (True, False):
        for dst_sub in (True, False):
            s = src.replace(subnormals=src_sub)
            d = dst.replace(rounding=rounding, subnormals=dst_sub)
            ref = gf_round_bits(d, gf_decode(src, a if src_sub else flush_in(src, a)))
            if not dst_sub:
                ref = flush_in(d, ref)
            assert_bits(d, fp.convert(s, a, d), ref, a, what=f"{s.name}->")


def test_convert_subnormal_carry():
    """E6M3 0x7f = 1.875 * 2**-16 = 7.5 subnormal ulps of E5M4 (2**-18): a tie between 7 and 8;
    rne -> 8 (0x08, still subnormal: E5M4 subnormals reach 15 ulps), rtz -> 7."""
    a = np.array([0x7F, 0x27F], dtype=np.uint16)
    assert fp.convert(FP10_163, a, FP10_154).tolist() == [0x08, 0x208]
    assert fp.convert(FP10_163, a, FP10_154.replace(rounding="rtz")).tolist() == [0x07, 0x207]


# -- min / max ----------------------------------------------------------------------------------
@pytest.mark.parametrize("subnormals", [True, False])
@pytest.mark.parametrize("fmt", [E4M3, E5M2], ids=lambda f: f.name)
def test_minmax_exhaustive(fmt, subnormals):
    """All pairs against a float64 reference of IEEE 754-2019 minimumNumber/maximumNumber."""
    fmt = fmt.replace(subnormals=subnormals)
    a, b = all_pairs(fmt)
    fa, fb = fp.decode(fmt, a), fp.decode(fmt, b)
    # -0 < +0: compare (value, signbit) lexicographically.
    a_le_b = (fa < fb) | ((fa == fb) & (np.signbit(fa) >= np.signbit(fb)))
    a_ge_b = (fa > fb) | ((fa == fb) & (np.signbit(fa) <= np.signbit(fb)))
    for op, a_wins in (("min", a_le_b), ("max", a_ge_b)):
        ref_val = np.where(np.isnan(fa), fb, np.where(np.isnan(fb), fa, np.where(a_wins, fa, fb)))
        got = getattr(fp, op)(fmt, a, b)
        gv = fp.decode(fmt, got)
        assert np.array_equal(gv, ref_val, equal_nan=True), op
        assert np.array_equal(np.signbit(gv[~np.isnan(gv)]), np.signbit(ref_val[~np.isnan(gv)]))
        both_nan = np.isnan(fa) & np.isnan(fb)
        assert np.all(got[both_nan] == fmt.canonical_nan)
        # Non-NaN results are one of the (flushed) operands, bit for bit.
        fl_a = a if subnormals else flush_in(fmt, a)
        fl_b = b if subnormals else flush_in(fmt, b)
        ok = (got == fl_a) | (got == fl_b) | both_nan
        assert ok.all()


def test_minmax_ieee_numpy():
    """fp16 against numpy fmin/fmax (IEEE minNum/maxNum), where -0/+0 order is not compared."""
    a, b = test_pairs(FP16, 100_000, seed=14)
    fa, fb = a.view(np.float16), b.view(np.float16)
    for op, ref in (("min", np.fmin(fa, fb)), ("max", np.fmax(fa, fb))):
        got = getattr(fp, op)(FP16, a, b)
        zero_tie = (fa == 0) & (fb == 0)
        assert_bits(FP16, got[~zero_tie], ref.view(np.uint16)[~zero_tie], what=op)


# -- directed corner cases (hand-derived expectations) ------------------------------------------
def enc(fmt, x):
    return fp.encode(fmt, np.array([x], dtype=np.float64))


def val(fmt, bits):
    return float(fp.decode(fmt, bits)[0])


def is_canonical_nan(fmt, bits):
    return int(bits[0]) == fmt.canonical_nan


@pytest.mark.parametrize("rounding", MODES)
@pytest.mark.parametrize("fmt", [FP16, FP10_154, FP10_163, E4M3], ids=lambda f: f.name)
def test_signed_zero_rules(fmt, rounding):
    fmt = fmt.replace(rounding=rounding)
    p0, n0, one, none = enc(fmt, 0.0), enc(fmt, -0.0), enc(fmt, 1.0), enc(fmt, -1.0)
    sign = lambda b: bool(int(b[0]) >> (fmt.width - 1))  # noqa: E731
    assert int(fp.add(fmt, one, none)[0]) == 0            # x + (-x) = +0 in rne and rtz
    assert int(fp.sub(fmt, one, one)[0]) == 0
    assert int(fp.add(fmt, n0, n0)[0]) == int(n0[0])      # -0 + -0 = -0
    assert int(fp.add(fmt, p0, n0)[0]) == 0               # +0 + -0 = +0
    assert int(fp.sub(fmt, n0, p0)[0]) == int(n0[0])      # -0 - +0 = -0
    assert int(fp.add(fmt, n0, one)[0]) == int(one[0])
    assert sign(fp.mul(fmt, n0, one)) and not sign(fp.mul(fmt, n0, none))
    assert int(fp.sqrt(fmt, n0)[0]) == int(n0[0])         # sqrt(-0) = -0
    assert sign(fp.div(fmt, n0, one)) and not sign(fp.div(fmt, n0, none))
    assert int(fp.min(fmt, p0, n0)[0]) == int(n0[0]) and int(fp.min(fmt, n0, p0)[0]) == int(n0[0])
    assert int(fp.max(fmt, p0, n0)[0]) == 0 and int(fp.max(fmt, n0, p0)[0]) == 0
    # Underflow to zero keeps the sign: tiny * -tiny = -0.
    tiny = np.array([1], dtype=fmt.dtype)
    assert int(fp.mul(fmt, tiny, tiny ^ np.array(fmt.sign_mask, fmt.dtype))[0]) == fmt.sign_mask


@pytest.mark.parametrize("rounding", MODES)
@pytest.mark.parametrize("fmt", [FP16, FP32, FP10_154, FP10_163, E5M2], ids=lambda f: f.name)
def test_nan_inf_rules(fmt, rounding):
    fmt = fmt.replace(rounding=rounding)
    p0, one, two = enc(fmt, 0.0), enc(fmt, 1.0), enc(fmt, 2.0)
    inf, ninf = enc(fmt, np.inf), enc(fmt, -np.inf)
    odd_nan = np.array([fmt.pos_inf | fmt.sign_mask | 1], dtype=fmt.dtype)   # non-canonical
    for r in (fp.mul(fmt, p0, inf), fp.mul(fmt, inf, p0), fp.div(fmt, p0, p0),
              fp.div(fmt, inf, ninf), fp.add(fmt, inf, ninf), fp.sub(fmt, inf, inf),
              fp.sqrt(fmt, enc(fmt, -1.0)), fp.sqrt(fmt, ninf), fp.add(fmt, odd_nan, one),
              fp.mul(fmt, one, odd_nan), fp.sqrt(fmt, odd_nan), fp.encode(fmt, np.array([-np.nan])),
              fp.convert(fmt, odd_nan, FP32), fp.min(fmt, odd_nan, odd_nan)):
        target = FP32 if r.dtype == np.uint32 and fmt != FP32 else fmt
        assert is_canonical_nan(target, r), hex(int(r[0]))
    assert val(fmt, fp.div(fmt, one, p0)) == np.inf
    assert val(fmt, fp.div(fmt, one, enc(fmt, -0.0))) == -np.inf
    assert val(fmt, fp.div(fmt, enc(fmt, -1.0), p0)) == -np.inf
    assert val(fmt, fp.div(fmt, two, inf)) == 0.0
    assert val(fmt, fp.mul(fmt, ninf, two)) == -np.inf
    assert val(fmt, fp.add(fmt, inf, inf)) == np.inf
    assert val(fmt, fp.sqrt(fmt, inf)) == np.inf
    assert int(fp.min(fmt, odd_nan, one)[0]) == int(one[0])       # minNum: NaN loses
    assert int(fp.max(fmt, ninf, odd_nan)[0]) == int(ninf[0])


@pytest.mark.parametrize("fmt", [FP16, FP10_154, FP10_163, E4M3, E5M2], ids=lambda f: f.name)
def test_overflow_boundary(fmt):
    """max finite + half an ulp ties to even = 2**(emax+1) -> Inf in rne; rtz saturates."""
    mx = fmt.max_finite
    max_val = val(fmt, np.array([mx]))
    half_ulp = 2.0 ** (fmt.emax - fmt.man_bits - 1)
    rne, rtz = fmt, fmt.replace(rounding="rtz")
    assert val(rne, enc(rne, max_val + half_ulp)) == np.inf           # exact tie -> even -> Inf
    assert val(rne, enc(rne, max_val + half_ulp * 0.99)) == max_val
    assert val(rtz, enc(rtz, max_val + half_ulp)) == max_val
    assert val(rtz, enc(rtz, -1e300)) == -max_val
    assert val(rtz, enc(rtz, -np.inf)) == -np.inf                     # Inf stays Inf in rtz
    big = np.array([mx], dtype=fmt.dtype)
    assert val(rne, fp.add(rne, big, big)) == np.inf
    assert val(rtz, fp.add(rtz, big, big)) == max_val
    assert val(rtz, fp.mul(rtz, big, big ^ np.array(fmt.sign_mask, fmt.dtype))) == -max_val


@pytest.mark.parametrize("fmt", [FP16, FP10_154, FP10_163, E4M3, E5M2], ids=lambda f: f.name)
def test_ties_and_underflow_boundary(fmt):
    rne, rtz = fmt, fmt.replace(rounding="rtz")
    ulp1 = 2.0 ** -fmt.man_bits                                        # ulp of 1.0
    assert val(rne, enc(rne, 1 + ulp1 / 2)) == 1.0                     # tie to even (down)
    assert val(rne, enc(rne, 1 + 1.5 * ulp1)) == 1 + 2 * ulp1          # tie to even (up)
    assert val(rne, enc(rne, -(1 + 1.5 * ulp1))) == -(1 + 2 * ulp1)    # not away from zero
    assert val(rtz, enc(rtz, 1 + 1.99 * ulp1)) == 1 + ulp1
    assert val(rtz, enc(rtz, -(1 + 1.99 * ulp1))) == -(1 + ulp1)
    tiny = 2.0 ** (fmt.emin - fmt.man_bits)                            # smallest subnormal
    assert val(rne, enc(rne, tiny / 2)) == 0.0                         # tie -> even (zero)
    assert val(rne, enc(rne, tiny * 0.5000001)) == tiny
    assert val(rne, enc(rne, tiny * 1.5)) == 2 * tiny
    assert val(rtz, enc(rtz, tiny * 1.99)) == tiny
    assert val(rtz, enc(rtz, tiny * 0.99)) == 0.0
    # Rounding carry from the largest subnormal into the smallest normal.
    min_normal = 2.0 ** fmt.emin
    assert int(enc(rne, min_normal - tiny / 2)[0]) == fmt.min_normal
    assert int(enc(rtz, min_normal - tiny / 2)[0]) == fmt.min_normal - 1


@pytest.mark.parametrize("fmt", [FP16, FP10_154, FP10_163, E4M3], ids=lambda f: f.name)
def test_flush_to_zero(fmt):
    """FTZ: subnormal inputs read as signed zero; subnormal results (after rounding) flushed."""
    ftz, ftz_rtz = fmt.replace(subnormals=False), fmt.replace(subnormals=False, rounding="rtz")
    tiny = 2.0 ** (fmt.emin - fmt.man_bits)
    min_normal = 2.0 ** fmt.emin
    sub = np.array([1, (1 << fmt.man_bits) - 1], dtype=fmt.dtype)
    nsub = sub | np.array(fmt.sign_mask, fmt.dtype)
    assert np.all(fp.decode(ftz, sub) == 0) and np.all(np.signbit(fp.decode(ftz, nsub)))
    one = enc(ftz, 1.0)
    assert int(fp.mul(ftz, sub[:1], one)[0]) == 0                     # input flushed
    assert int(fp.mul(ftz, nsub[:1], one)[0]) == fmt.sign_mask        # to -0
    assert int(fp.add(ftz, sub[:1], sub[1:])[0]) == 0                 # 0 + 0
    assert int(fp.max(ftz, sub[:1], enc(ftz, -0.0))[0]) == 0          # +sub reads as +0
    assert int(fp.min(ftz, nsub[:1], enc(ftz, 0.0))[0]) == fmt.sign_mask
    mn = np.array([fmt.min_normal], dtype=fmt.dtype)
    half = enc(ftz, 0.5)
    assert int(fp.mul(ftz, mn, half)[0]) == 0                          # result subnormal -> +0
    assert int(fp.mul(ftz, mn ^ np.array(fmt.sign_mask, fmt.dtype), half)[0]) == fmt.sign_mask
    # Rounded first at subnormal precision: just below min normal, rounds up -> kept.
    assert int(enc(ftz, min_normal - tiny / 2)[0]) == fmt.min_normal
    assert int(enc(ftz_rtz, min_normal - tiny / 2)[0]) == 0
    assert int(enc(ftz, min_normal - tiny)[0]) == 0
    # min normal - min normal's neighbour = subnormal difference -> flushed, +0.
    mn1 = np.array([fmt.min_normal + 1], dtype=fmt.dtype)
    assert int(fp.sub(ftz, mn1, mn)[0]) == 0
    assert int(fp.sub(fmt, mn1, mn)[0]) == 1                           # with subnormals: exact


# -- round_pack itself --------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", [FP32, FP16, FP10_154, E4M3.replace(rounding="rtz"),
                                 FP10_163.replace(subnormals=False)], ids=lambda f: f.name)
def test_round_pack_sticky_contract(fmt):
    """Truncating sig to fewer bits with a sticky gives the same result as the exact sig,
    non-normalized sigs give the same result as normalized ones, and the encoding matches
    encode() of the exact float64 value."""
    rng = np.random.default_rng(15)
    n = 50_000
    sig = rng.integers(1, 1 << 50, n, dtype=np.int64) >> rng.integers(0, 50, n)
    sig = np.maximum(sig, 1)
    exp = rng.integers(fmt.emin - fmt.man_bits - 60, fmt.emax + 5, n)
    sign = rng.integers(0, 2, n)
    exact = fp.round_pack(fmt, sign, exp, sig, 0)
    # Drop t low bits into the sticky where that keeps one bit below the result LSB.
    n_bits = fp.bit_length(sig)
    er = np.maximum(exp + n_bits - 1, fmt.emin)
    t = np.clip(er - fmt.man_bits - exp - 1, 0, None)
    t = np.minimum(t, rng.integers(0, 64, n))
    st = (sig & ((np.int64(1) << t) - 1)) != 0
    assert np.array_equal(fp.round_pack(fmt, sign, exp + t, sig >> t, st), exact)
    k = rng.integers(0, 62 - n_bits.max() + 1, n)
    assert np.array_equal(fp.round_pack(fmt, sign, exp - k, sig << k, 0), exact)
    # sig * 2**exp is exactly representable in float64 (50 bits, exponent in range).
    v = np.where(sign == 1, -1.0, 1.0) * np.ldexp(sig.astype(np.float64), exp)
    assert np.array_equal(fp.encode(fmt, v), exact)


def test_round_pack_checks():
    with pytest.raises(ValueError, match="sticky"):
        fp.round_pack(FP16, 0, 0, 1 << 10, 1)          # no bit below the result LSB
    with pytest.raises(ValueError, match="2\\*\\*62"):
        fp.round_pack(FP16, 0, 0, 1 << 62, 0)
    with pytest.raises(TypeError, match="FloatFormat"):
        fp.round_pack("fp16", 0, 0, 1, 0)
    # sig = 0 with sticky far below the subnormal grid: rounds to zero in both modes.
    assert int(fp.round_pack(FP16, 1, -40, 0, 1)) == FP16.sign_mask


def test_argument_errors():
    with pytest.raises(TypeError, match="bit patterns"):
        fp.add(FP16, np.array([1.0]), np.array([1], np.uint16))
    with pytest.raises(ValueError, match="10-bit e5m4"):
        fp.mul(FP10_154, np.array([1 << 10]), np.array([1]))
    with pytest.raises(ValueError, match="bit pattern"):
        fp.sqrt(FP16, np.array([-1]))
    with pytest.raises(TypeError, match="fmt must be a FloatFormat"):
        fp.add("fp16", 1, 1)


def test_shapes_and_dtypes():
    a = np.arange(12, dtype=np.uint16).reshape(3, 4) + 0x3C00
    b = np.array([0x4000], dtype=np.uint16)
    r = fp.add(FP16, a, b)
    assert r.shape == (3, 4) and r.dtype == np.uint16
    assert fp.mul(E4M3, 0x38, 0x38) == 0x38 and fp.mul(E4M3, 0x38, 0x38).dtype == np.uint8
    assert fp.convert(FP16, a, FP32).dtype == np.uint32
    assert fp.decode(FP16, a).shape == (3, 4)
    assert FP16.add(a, b).tolist() == r.tolist()                 # FloatFormat methods delegate


@pytest.mark.parametrize("fmt", [E4M3, E5M2, FP10_154, FP10_163, FP16, BF16],
                         ids=lambda f: f.name)
def test_encode_decode_roundtrip(fmt):
    a = np.arange(1 << fmt.width, dtype=np.int64).astype(fmt.dtype)
    back = fp.encode(fmt, fp.decode(fmt, a))
    nan = fp.is_nan(fmt, a)
    assert np.array_equal(back[~nan], a[~nan])
    assert np.all(back[nan] == fmt.canonical_nan)


def test_classify_unpack():
    f = FP10_154
    bits = np.array([0, 0x200, 1, 0x200 | 0xF, 0x10, 0x1EF, 0x1F0, 0x1F8, 0x3F1], dtype=np.uint16)
    assert [fp.CLASS_NAMES[c] for c in fp.classify(f, bits)] == \
        ["zero", "zero", "subnormal", "subnormal", "normal", "normal", "inf", "nan", "nan"]
    ftz = f.replace(subnormals=False)
    assert fp.CLASS_NAMES[fp.classify(ftz, bits)[2]] == "zero"
    cls, sign, exp, sig = fp.unpack(f, bits)
    finite = cls <= fp.NORMAL
    vals = np.where(sign == 1, -1.0, 1.0) * np.ldexp(sig.astype(float), exp)
    assert np.array_equal(vals[finite], fp.decode(f, bits)[finite])
    m, e = fp.normalize(f, sig[finite], exp[finite])
    assert np.all((m == 0) | (fp.bit_length(m) == f.precision))
    assert np.array_equal(np.ldexp(m.astype(float), e), np.abs(vals[finite]))


def test_vectors():
    rng = np.random.default_rng(16)
    for fmt in [E4M3, FP16, FP32, FP10_163]:
        c = corners(fmt)
        assert c.dtype == fmt.dtype and np.all(np.diff(c.astype(np.int64)) > 0)
        classes = set(fp.classify(fmt, c).tolist())
        assert classes == {fp.ZERO, fp.SUBNORMAL, fp.NORMAL, fp.INF, fp.NAN}
        r = random_bits(fmt, 10_000, rng)
        assert r.dtype == fmt.dtype and r.shape == (10_000,)
        counts = np.bincount(fp.classify(fmt, r), minlength=5)
        assert np.all(counts > 100), counts
        a, b = random_pairs(fmt, 10_000, rng)
        assert a.dtype == b.dtype == fmt.dtype
        # The pairs produce exact cancellations and exact rounding ties in add.
        s = fp.add(fmt, a, b)
        assert np.count_nonzero((s == 0) & (a != 0)) > 10
    with pytest.raises(ValueError, match="n must be"):
        random_bits(FP16, -1, rng)
