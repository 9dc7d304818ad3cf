"""Number formats: the one description of a format that golden models, RTL, tests and reports share.

A :class:`FloatFormat` is an IEEE 754-style binary floating-point format with ``exp_bits`` exponent
bits and ``man_bits`` stored mantissa (fraction) bits, plus the two behaviours the hardware can be
built with: subnormal support (or flush-to-zero) and the rounding mode.  A :class:`BfpFormat` is a
block floating-point format: groups of ``group`` elements share one exponent.

Formats are immutable and hashable, so they can key caches, name build directories and be compared.
The arithmetic methods are thin wrappers around :mod:`lightnorm.golden.fp` and
:mod:`lightnorm.golden.bfp`; every rule of the arithmetic lives there (see docs/numerics.md).
"""

from dataclasses import dataclass, replace, KW_ONLY

import numpy as np

__all__ = [
    "ROUNDING_MODES", "FloatFormat", "BfpFormat",
    "FP32", "FP16", "BF16", "FP10_154", "FP10_163", "FP10_154_ACC", "FP10_163_ACC",
    "E4M3", "E5M2", "E6M5", "FLOAT_PRESETS",
]

#: Rounding modes: ``"rne"`` round to nearest, ties to even; ``"rtz"`` round toward zero
#: (truncation, the reference LightNorm simulation's choice).
ROUNDING_MODES = ("rne", "rtz")


def _check_int(name, value, lo, hi):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be between {lo} and {hi}, not {value}")


def _check_rounding(rounding):
    if rounding not in ROUNDING_MODES:
        raise ValueError(f"rounding must be one of {', '.join(map(repr, ROUNDING_MODES))}, "
                         f"not {rounding!r}")


@dataclass(frozen=True)
class FloatFormat:
    """A binary floating-point format with IEEE 754 encoding.

    Bit layout of one word, most significant bit first: ``sign | exponent | mantissa``, with
    ``width = 1 + exp_bits + man_bits``.  Exponent field 0 encodes zeros and subnormals, the
    all-ones field encodes infinities (mantissa 0) and NaNs (mantissa non-zero).

    Parameters
    ----------
    exp_bits : int
        Exponent field width, 2..11.
    man_bits : int
        Stored mantissa (fraction) width, 1..52.  The significand precision is ``man_bits + 1``.
        Formats wider than 32 bits (``width = 1 + exp_bits + man_bits`` <= 64) exist for the BN
        unit's internal sum format (docs/bn-spec.md, "Sums"); :mod:`lightnorm.golden.fp` adds,
        converts, compares, encodes and decodes them, and refuses mul/div/sqrt beyond the
        precision its int64 datapath holds.
    subnormals : bool, keyword-only
        ``False`` flushes subnormal inputs and subnormal results to zero of the same sign.
    rounding : str, keyword-only
        ``"rne"`` (ties to even) or ``"rtz"`` (toward zero).

    Attributes
    ----------
    width, bias, emin, emax, precision, exp_all_ones : int
        Derived constants of the encoding.
    """

    exp_bits: int
    man_bits: int
    _: KW_ONLY
    subnormals: bool = True
    rounding: str = "rne"

    def __post_init__(self):
        _check_int("exp_bits", self.exp_bits, 2, 11)
        _check_int("man_bits", self.man_bits, 1, 52)
        if 1 + self.exp_bits + self.man_bits > 64:
            raise ValueError(f"a format is at most 64 bits wide: exp_bits ({self.exp_bits}) + "
                             f"man_bits ({self.man_bits}) must be <= 63")
        if not isinstance(self.subnormals, bool):
            raise TypeError(f"subnormals must be a bool, not {self.subnormals!r}")
        _check_rounding(self.rounding)

    # -- encoding constants -------------------------------------------------------------------
    @property
    def width(self):
        """Total word width in bits."""
        return 1 + self.exp_bits + self.man_bits

    @property
    def precision(self):
        """Significand precision in bits, including the hidden bit."""
        return self.man_bits + 1

    @property
    def bias(self):
        return (1 << (self.exp_bits - 1)) - 1

    @property
    def emin(self):
        """Exponent of the smallest normal number."""
        return 1 - self.bias

    @property
    def emax(self):
        """Exponent of the largest finite number."""
        return self.bias

    @property
    def exp_all_ones(self):
        return (1 << self.exp_bits) - 1

    @property
    def sign_mask(self):
        return 1 << (self.width - 1)

    @property
    def canonical_nan(self):
        """The one quiet NaN every NaN result is: sign 0, exponent all ones, mantissa MSB set."""
        return (self.exp_all_ones << self.man_bits) | (1 << (self.man_bits - 1))

    @property
    def pos_inf(self):
        return self.exp_all_ones << self.man_bits

    @property
    def max_finite(self):
        """Bit pattern of the largest finite positive value."""
        return ((self.exp_all_ones - 1) << self.man_bits) | ((1 << self.man_bits) - 1)

    @property
    def min_normal(self):
        return 1 << self.man_bits

    @property
    def name(self):
        """Short name, e.g. ``e5m4`` or ``e5m4_rtz_ftz``; used for build directories."""
        s = f"e{self.exp_bits}m{self.man_bits}"
        if self.rounding != "rne":
            s += f"_{self.rounding}"
        if not self.subnormals:
            s += "_ftz"
        return s

    def replace(self, **changes):
        """A copy with some fields changed, e.g. ``FP16.replace(rounding="rtz")``."""
        return replace(self, **changes)

    @property
    def dtype(self):
        """Smallest NumPy unsigned integer type that holds one word."""
        w = self.width
        return (np.uint8 if w <= 8 else np.uint16 if w <= 16 else np.uint32 if w <= 32
                else np.uint64)

    # -- golden arithmetic (vectorized over arrays of bit patterns) -----------------------------
    def encode(self, values):
        """float64 array -> bit patterns, rounded once in this format's rounding mode."""
        from . import fp
        return fp.encode(self, values)

    def decode(self, bits):
        """Bit patterns -> float64 array (exact; subnormal inputs flushed if ``subnormals=False``)."""
        from . import fp
        return fp.decode(self, bits)

    def add(self, a, b):
        from . import fp
        return fp.add(self, a, b)

    def sub(self, a, b):
        from . import fp
        return fp.sub(self, a, b)

    def mul(self, a, b):
        from . import fp
        return fp.mul(self, a, b)

    def div(self, a, b):
        from . import fp
        return fp.div(self, a, b)

    def sqrt(self, a):
        from . import fp
        return fp.sqrt(self, a)

    def min(self, a, b):
        from . import fp
        return fp.min(self, a, b)

    def max(self, a, b):
        from . import fp
        return fp.max(self, a, b)

    def convert(self, bits, to_format):
        """Convert bit patterns of this format to ``to_format`` (rounded in ``to_format``'s mode)."""
        from . import fp
        return fp.convert(self, bits, to_format)

    def __str__(self):
        return self.name


@dataclass(frozen=True)
class BfpFormat:
    """A block floating-point format: ``group`` consecutive elements share one exponent.

    Each element keeps a sign and ``man_bits`` magnitude bits (the leading bit explicit); the
    group keeps one biased ``exp_bits``-bit shared exponent.  The packed bit layout of a group is
    documented in docs/numerics.md and implemented in :mod:`lightnorm.golden.bfp`.

    Parameters
    ----------
    group : int
        Elements per group, 1..64.
    man_bits : int
        Magnitude bits per element (explicit leading bit included), 2..24.
    exp_bits : int
        Shared exponent width, 2..8 (reference: 8).
    rounding : str
        ``"rne"`` or ``"rtz"``: how element magnitudes are rounded onto the group's grid.
    """

    group: int
    man_bits: int
    exp_bits: int = 8
    rounding: str = "rne"

    def __post_init__(self):
        _check_int("group", self.group, 1, 64)
        _check_int("man_bits", self.man_bits, 2, 24)
        _check_int("exp_bits", self.exp_bits, 2, 8)
        _check_rounding(self.rounding)

    @property
    def bias(self):
        return (1 << (self.exp_bits - 1)) - 1

    @property
    def element_width(self):
        """Bits per element: sign + magnitude."""
        return 1 + self.man_bits

    @property
    def group_width(self):
        """Bits of one packed group: shared exponent + ``group`` elements."""
        return self.exp_bits + self.group * self.element_width

    @property
    def name(self):
        s = f"bfp{self.group}x{self.man_bits}e{self.exp_bits}"
        if self.rounding != "rne":
            s += f"_{self.rounding}"
        return s

    def replace(self, **changes):
        return replace(self, **changes)

    def encode(self, fmt, bits):
        """Float bit patterns of ``fmt``, shape (..., group) -> (shared_exp, sign_mag) arrays."""
        from . import bfp
        return bfp.encode(self, fmt, bits)

    def decode(self, shared_exp, elements, fmt):
        """(shared_exp, elements) -> bit patterns of ``fmt``, shape (..., group)."""
        from . import bfp
        return bfp.decode(self, shared_exp, elements, fmt)

    def __str__(self):
        return self.name


# -- presets ------------------------------------------------------------------------------------
FP32 = FloatFormat(8, 23)
FP16 = FloatFormat(5, 10)
BF16 = FloatFormat(8, 7)
FP10_154 = FloatFormat(5, 4)        # LightNorm forward format
FP10_163 = FloatFormat(6, 3)        # LightNorm backward format
FP10_154_ACC = FloatFormat(5, 12)   # "fp10_154+8": accumulator with 8 extra mantissa bits
FP10_163_ACC = FloatFormat(6, 11)   # "fp10_163+8"
E4M3 = FloatFormat(4, 3)            # 8-bit formats, exhaustively tested
E5M2 = FloatFormat(5, 2)
E6M5 = FloatFormat(6, 5)            # an odd custom format for the random regressions

#: Name -> format, the table every tool iterates over.
FLOAT_PRESETS = {
    "fp32": FP32, "fp16": FP16, "bf16": BF16,
    "fp10_154": FP10_154, "fp10_163": FP10_163,
    "fp10_154_acc": FP10_154_ACC, "fp10_163_acc": FP10_163_ACC,
    "e4m3": E4M3, "e5m2": E5M2, "e6m5": E6M5,
}
