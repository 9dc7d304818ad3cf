"""golden/bfp.py against a per-group exact reference written from the BFP specification
(docs/numerics.md, "Block floating point").

The reference below is deliberately naive: one group at a time, values from gfloat's decoder,
exact arithmetic with ``fractions.Fraction`` (Python's ``round`` ties to even), the decode
rounding by gfloat.  It shares no code with the model.
"""

import math
from fractions import Fraction

import gfloat
import numpy as np
import pytest

from lightnorm.golden import bfp, fp
from lightnorm.golden.formats import BF16, E4M3, FP10_154, FP10_163, FP16, FP32, BfpFormat
from lightnorm.golden.vectors import random_bits

from gfloat_oracle import GF_MODE, gf_info  # golden/tests/gfloat_oracle.py


def ref_values(fmt, bits):
    """Exact float64 values, fmt's FTZ applied to subnormal inputs."""
    bits = np.asarray(bits, dtype=np.int64)
    v = np.asarray(gfloat.decode_ndarray(gf_info(fmt), bits), dtype=np.float64)
    if not fmt.subnormals:
        sub = ((bits >> fmt.man_bits) & fmt.exp_all_ones) == 0
        v = np.where(sub, np.copysign(0.0, v), v)
    return v


def ref_encode_group(bfmt, values):
    """The spec, literally, for one group of float64 values -> (field, [codes])."""
    M, B = bfmt.man_bits, bfmt.bias
    special_field = (1 << bfmt.exp_bits) - 1
    e_lim = special_field - 1 - B
    signs = [int(math.copysign(1.0, v) < 0) if not math.isnan(v) else 0 for v in values]
    if any(math.isinf(v) or math.isnan(v) for v in values):
        codes = []
        for v, s in zip(values, signs):
            if math.isnan(v):
                codes.append((1 << M) - 1)
            elif math.isinf(v):
                codes.append((s << M) | 1)
            else:
                codes.append(s << M)
        return special_field, codes
    nonzero = [abs(v) for v in values if v != 0]
    if not nonzero:
        return 0, [s << M for s in signs]

    def rnd(x):
        return round(x) if bfmt.rounding == "rne" else math.floor(x)

    def grid(E):
        return [rnd(Fraction(abs(v)) / Fraction(2) ** (E - M + 1)) for v in values]

    E = max(max(math.frexp(a)[1] - 1 for a in nonzero), -B)
    m = grid(E)
    if max(m) == 1 << M:
        E += 1
        m = grid(E)
    if E > e_lim:
        m = [int(x >= (1 << M)) for x in grid(e_lim)]
        return special_field, [(s << M) | x for s, x in zip(signs, m)]
    assert max(m) < (1 << M)
    return E + B, [(s << M) | x for s, x in zip(signs, m)]


def ref_encode(bfmt, fmt, bits):
    vals = ref_values(fmt, bits).reshape(-1, bfmt.group)
    out = [ref_encode_group(bfmt, list(g)) for g in vals]
    shared = np.array([f for f, _ in out], dtype=np.int64).reshape(bits.shape[:-1])
    codes = np.array([c for _, c in out], dtype=np.int64).reshape(bits.shape)
    return shared, codes


def ref_decode(bfmt, shared, codes, fmt):
    M = bfmt.man_bits
    sh = np.asarray(shared, dtype=np.int64)[..., None]
    c = np.asarray(codes, dtype=np.int64)
    s, m = c >> M, c & ((1 << M) - 1)
    val = np.ldexp(m.astype(np.float64), (sh - bfmt.bias - M + 1).astype(np.int32))
    val = np.where(s == 1, -val, val)
    special = sh == (1 << bfmt.exp_bits) - 1
    val = np.where(special & (m == 1), np.where(s == 1, -np.inf, np.inf), val)
    val = np.where(special & (m > 1), np.nan, val)
    val = np.where(special & (m == 0), np.where(s == 1, -0.0, 0.0), val)
    fi = gf_info(fmt)
    r = np.asarray(gfloat.encode_ndarray(fi, gfloat.round_ndarray(fi, val, GF_MODE[fmt.rounding])),
                   dtype=np.int64)
    if not fmt.subnormals:
        r = np.where(((r >> fmt.man_bits) & fmt.exp_all_ones) == 0, r & fmt.sign_mask, r)
    nan = ((r >> fmt.man_bits) & fmt.exp_all_ones == fmt.exp_all_ones) & \
        ((r & ((1 << fmt.man_bits) - 1)) != 0)
    return np.where(nan, fmt.canonical_nan, r)


def groups(fmt, bfmt, n, rng):
    """n random groups: biased random elements; half the groups without Inf/NaN, a quarter
    with all elements within a few binades (so that rounding, not flushing, decides)."""
    g = random_bits(fmt, n * bfmt.group, rng).astype(np.int64).reshape(n, bfmt.group)
    finite = np.arange(n) % 2 == 0
    is_spec = ((g >> fmt.man_bits) & fmt.exp_all_ones) == fmt.exp_all_ones
    g = np.where(finite[:, None] & is_spec, g & ~(np.int64(fmt.exp_all_ones) << fmt.man_bits), g)
    close = np.arange(n) % 4 == 0
    e = np.clip(rng.integers(1, fmt.exp_all_ones, (n, 1)) - rng.integers(0, 4, (n, bfmt.group)),
                1, fmt.exp_all_ones - 1)
    g = np.where(close[:, None], (g & ~(np.int64(fmt.exp_all_ones) << fmt.man_bits))
                 | (e << fmt.man_bits), g)
    return g.astype(fmt.dtype)


CASES = [
    (BfpFormat(4, 4), FP10_154),
    (BfpFormat(4, 4, rounding="rtz"), FP10_154),
    (BfpFormat(8, 3, exp_bits=6), FP10_163),
    (BfpFormat(16, 8), FP32),
    (BfpFormat(16, 8, rounding="rtz"), FP32.replace(subnormals=False)),
    (BfpFormat(8, 10, exp_bits=5), FP16),
    (BfpFormat(1, 2), E4M3),
    (BfpFormat(64, 24), FP32),
    (BfpFormat(4, 8, exp_bits=4), BF16),          # shared exponent narrower than the input's
    (BfpFormat(4, 6, exp_bits=5, rounding="rtz"), FP16.replace(subnormals=False)),
]


@pytest.mark.parametrize("bfmt,fmt", CASES, ids=lambda f: f.name)
def test_encode_decode_against_reference(bfmt, fmt):
    rng = np.random.default_rng(1)
    n = 4000 // bfmt.group + 50
    bits = groups(fmt, bfmt, n, rng)
    shared, codes = bfp.encode(bfmt, fmt, bits)
    assert shared.dtype == np.uint8 and codes.dtype == bfp.element_dtype(bfmt)
    assert shared.shape == (n,) and codes.shape == bits.shape
    ref_sh, ref_codes = ref_encode(bfmt, fmt, bits)
    bad = np.nonzero((shared != ref_sh) | (codes != ref_codes).any(axis=-1))[0]
    assert bad.size == 0, (f"{bad.size} groups differ, first: {bits[bad[0]]} -> "
                           f"{shared[bad[0]]} {codes[bad[0]]}, reference {ref_sh[bad[0]]} "
                           f"{ref_codes[bad[0]]}")
    for dec_fmt in (fmt, fmt.replace(rounding="rtz"), fmt.replace(subnormals=False),
                    FP10_154, FP32):
        got = bfp.decode(bfmt, shared, codes, dec_fmt)
        assert got.dtype == dec_fmt.dtype
        np.testing.assert_array_equal(got, ref_decode(bfmt, shared, codes, dec_fmt),
                                      err_msg=f"decode to {dec_fmt.name}")


def enc1(bfmt, fmt, values):
    bits = fp.encode(fmt, np.array([values], dtype=np.float64))
    sh, el = bfp.encode(bfmt, fmt, bits)
    M = bfmt.man_bits
    return int(sh[0]), [(int(c) >> M, int(c) & ((1 << M) - 1)) for c in el[0]]


def test_all_zero_group_keeps_signs():
    assert enc1(BfpFormat(4, 4), FP16, [0.0, -0.0, 0.0, -0.0]) == (0, [(0, 0), (1, 0), (0, 0),
                                                                    (1, 0)])


def test_one_huge_element():
    """Smaller elements round onto the huge element's grid (to zero, or to one grid step)."""
    b = BfpFormat(4, 4)
    sh, el = enc1(b, FP32, [1024.0, 1.0, -63.0, 64.0])   # grid 2**(10-3) = 128
    assert sh == 127 + 10
    assert el == [(0, 8), (0, 0), (1, 0), (0, 0)]        # 64/128 = 0.5 ties to even -> 0
    assert enc1(b, FP32, [1024.0, 65.0, 0, 0])[1][1] == (0, 1)


def test_inf_nan_poison_group():
    b = BfpFormat(4, 4)
    sh, el = enc1(b, FP16, [1.0, -np.inf, np.nan, -2.0])
    assert sh == 255 and el == [(0, 0), (1, 1), (0, 15), (1, 0)]
    back = fp.decode(FP16, bfp.decode(b, np.array([sh]), np.array([[c[0] << 4 | c[1] for c in el]]),
                                      FP16))[0]
    assert back[0] == 0 and back[1] == -np.inf and np.isnan(back[2]) and back[3] == 0 \
        and np.signbit(back[3])


def test_mantissa_overflow_rounds_once_from_exact():
    """[15.9, 5.4]: m = round(15.9) = 16 overflows; E grows, and 5.4 is rounded from its exact
    value (5.4/2 = 2.7 -> 3), not from the first rounding (5 -> 2.5 -> 2)."""
    b = BfpFormat(2, 4)
    sh, el = enc1(b, FP32, [15.9, 5.4])
    assert sh == 127 + 4 and el == [(0, 8), (0, 3)]
    sh, el = enc1(b.replace(rounding="rtz"), FP32, [15.9, 5.4])      # rtz never carries
    assert sh == 127 + 3 and el == [(0, 15), (0, 5)]


def test_shared_exponent_overflow():
    b = BfpFormat(4, 4)
    mx = float(fp.decode(FP32, np.array([FP32.max_finite]))[0])
    sh, el = enc1(b, FP32, [mx, -mx, 2.0**126, 1.0])
    assert sh == 255 and el == [(0, 1), (1, 1), (0, 0), (0, 0)]
    sh, el = enc1(b.replace(rounding="rtz"), FP32, [mx, -mx, 2.0**126, 1.0])
    assert sh == 254 and el == [(0, 15), (1, 15), (0, 4), (0, 0)]


def test_tiny_values_use_field_zero():
    b = BfpFormat(2, 4, exp_bits=5)           # B = 15: lowest shared exponent -15
    sh, el = enc1(b, FP16, [2.0**-17, 3 * 2.0**-18])   # grid 2**(-15-3) = 2**-18
    assert sh == 0 and el == [(0, 2), (0, 3)]


def test_ftz_inputs_flushed():
    b = BfpFormat(2, 4)
    ftz = FP16.replace(subnormals=False)
    bits = np.array([[0x0001, 0x8003]], dtype=np.uint16)          # subnormals
    sh, el = bfp.encode(b, ftz, bits)
    assert int(sh[0]) == 0 and el[0].tolist() == [0, 1 << 4]
    sh, el = bfp.encode(b, FP16, bits)
    # e_max = floor(log2(3 * 2**-24)) = -23, grid 2**(-23-3): m = 4 and 12.
    assert int(sh[0]) == 127 - 23 and el[0].tolist() == [0b0100, (1 << 4) | 0b1100]


@pytest.mark.parametrize("fmt", [FP10_154, FP10_163, E4M3], ids=lambda f: f.name)
def test_lossless_round_trip(fmt):
    """With man_bits >= precision, groups of equal-exponent values round-trip exactly."""
    rng = np.random.default_rng(2)
    b = BfpFormat(8, fmt.precision)
    e = rng.integers(1, fmt.exp_all_ones, (500, 1))
    bits = ((rng.integers(0, 2, (500, 8)) << (fmt.width - 1)) | (e << fmt.man_bits)
            | rng.integers(0, 1 << fmt.man_bits, (500, 8))).astype(fmt.dtype)
    sh, el = bfp.encode(b, fmt, bits)
    np.testing.assert_array_equal(bfp.decode(b, sh, el, fmt), bits)


def test_pack_layout():
    b = BfpFormat(2, 3, exp_bits=4)
    shared = np.array(0b1010)
    el = np.array([0b1101, 0b0011])              # -5, +3
    assert bfp.pack(b, shared, el) == 0b0011_1101_1010
    sh, e = bfp.unpack(b, 0b0011_1101_1010)
    assert int(sh) == 0b1010 and e.tolist() == [0b1101, 0b0011]


@pytest.mark.parametrize("bfmt,fmt", CASES[:4] + [CASES[7]], ids=lambda f: f.name)
def test_pack_unpack_round_trip(bfmt, fmt):
    rng = np.random.default_rng(3)
    bits = groups(fmt, bfmt, 60, rng).reshape(3, 20, bfmt.group)
    sh, el = bfp.encode(bfmt, fmt, bits)
    packed = bfp.pack(bfmt, sh, el)
    assert packed.shape == (3, 20) and packed.dtype == object
    assert max(int(v).bit_length() for v in packed.ravel()) <= bfmt.group_width
    sh2, el2 = bfp.unpack(bfmt, packed)
    np.testing.assert_array_equal(sh2, sh)
    np.testing.assert_array_equal(el2, el)
    # Reference layout: element i at bits [X + i*(1+M), X + (i+1)*(1+M)).
    v = int(packed[1, 7])
    w = bfmt.element_width
    assert v & ((1 << bfmt.exp_bits) - 1) == sh[1, 7]
    assert [(v >> (bfmt.exp_bits + i * w)) & ((1 << w) - 1) for i in range(bfmt.group)] == \
        el[1, 7].tolist()


def test_argument_errors():
    b = BfpFormat(4, 4)
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 4\).*got shape \(3, 5\)"):
        bfp.encode(b, FP16, np.zeros((3, 5), np.uint16))
    with pytest.raises(ValueError, match="last axis"):
        bfp.decode(b, np.zeros(3, np.uint8), np.zeros((3, 2), np.uint8), FP16)
    with pytest.raises(ValueError, match="shared must have shape"):
        bfp.decode(b, np.zeros(2, np.uint8), np.zeros((3, 4), np.uint8), FP16)
    with pytest.raises(ValueError, match="element code"):
        bfp.pack(b, np.zeros(1, np.uint8), np.full((1, 4), 32))
    with pytest.raises(ValueError, match="group"):
        bfp.unpack(b, 1 << b.group_width)
    with pytest.raises(TypeError, match="BfpFormat"):
        bfp.encode(FP16, FP16, np.zeros(4, np.uint16))
    with pytest.raises(TypeError, match="FloatFormat"):
        bfp.encode(b, b, np.zeros(4, np.uint16))


def test_format_methods_delegate():
    b = BfpFormat(4, 4)
    bits = fp.encode(FP16, np.array([[1.0, 2.0, 3.0, -4.0]]))
    sh, el = b.encode(FP16, bits)
    np.testing.assert_array_equal(b.decode(sh, el, FP16), bits)
