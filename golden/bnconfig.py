"""Configuration of the BN unit: one frozen, validated object shared by RTL, golden model and tests.

The arithmetic every field controls is specified in docs/bn-spec.md; :mod:`lightnorm.golden.bn`
implements it bit for bit and ``rtl/bn/`` mirrors it.
"""

import math
from dataclasses import dataclass, replace, fields

import numpy as np

from . import fp
from .formats import FloatFormat, BfpFormat, FP32, BF16, FP10_154, FP10_163, ROUNDING_MODES

__all__ = ["ALGORITHMS", "GRADIENTS", "BNConfig", "LIGHTNORM", "LIGHTNORM_RNE", "FP32_BN",
           "BF16_BN", "BN_PRESETS", "BF16_ACC"]

#: Forward algorithms: range BN (sigma from chunk max - min) or the conventional two-moment BN.
ALGORITHMS = ("range", "conventional")
#: Backward forms: the standard BN gradient, or the exact gradient of the range-BN forward.
GRADIENTS = ("bn", "range")

#: "bf16+8": BF16 with the 8 extra mantissa bits LightNorm gives its accumulators.
BF16_ACC = FloatFormat(8, 15)

_STAGE_FIELDS = ("add_stages", "mul_stages", "div_stages", "sqrt_stages", "minmax_stages",
                 "bfp_stages")


def _int_field(name, value, lo, hi):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, not {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be between {lo} and {hi}, not {value}")


def _holds(big, small):
    """True when every value of FloatFormat ``small`` is exactly a value of ``big``."""
    if big.exp_bits < small.exp_bits or big.man_bits < small.man_bits:
        return False
    if not small.subnormals or big.subnormals:
        return True
    # small has subnormals, big flushes: its smallest subnormal must be a normal of big.
    return small.emin - small.man_bits >= big.emin


@dataclass(frozen=True)
class BNConfig:
    """Everything that defines one BN unit (see docs/bn-spec.md, section 1).

    Parameters
    ----------
    algorithm : str
        ``"range"`` (range BN, 2 forward passes) or ``"conventional"`` (3 forward passes).
    grad : str
        ``"bn"`` (standard BN gradient) or ``"range"`` (exact gradient of range BN through the
        chunk argmax/argmin; requires ``algorithm="range"``).
    fwd_fmt, bwd_fmt : FloatFormat
        Data formats of x/y and dy/dx words (the BFP element formats).
    fwd_acc_fmt, bwd_acc_fmt : FloatFormat
        Arithmetic/accumulator formats of the forward and backward passes; each must hold its
        data format exactly (no fewer exponent or mantissa bits, subnormals kept);
        ``bwd_acc_fmt`` must also hold ``fwd_fmt`` (x is reused by the backward pass).
    x_bfp, y_bfp, dy_bfp, dx_bfp : BfpFormat or None
        Stream formats of the four tensors; ``None`` = plain FP words.  ``group`` must equal
        ``lanes``.
    lanes : int
        G, channels per stream beat (1..64).
    chunks : int
        K, range-BN chunks per channel (1..64).
    eps : float
        Added to sigma_hat (range) or the variance (conventional); >= 0, finite, and when
        positive it must not round to zero in ``fwd_acc_fmt``.
    rounding : str
        ``"rne"`` or ``"rtz"``; applied to every format of the config on construction.
    max_m : int
        Largest number of positions per channel the hardware accepts (2..2**24); sets the width
        ``m_bits`` of m and of the argmax/argmin positions.
    add_stages, mul_stages, div_stages, sqrt_stages, minmax_stages, bfp_stages : int
        Pipeline depths of the RTL units (0..16); they do not change any value.
    """

    algorithm: str = "range"
    grad: str = "range"
    fwd_fmt: FloatFormat = FP10_154
    bwd_fmt: FloatFormat = FP10_163
    fwd_acc_fmt: FloatFormat = FloatFormat(5, 12)
    bwd_acc_fmt: FloatFormat = FloatFormat(6, 11)
    x_bfp: BfpFormat | None = BfpFormat(8, 5)
    y_bfp: BfpFormat | None = BfpFormat(8, 5)
    dy_bfp: BfpFormat | None = BfpFormat(8, 4)
    dx_bfp: BfpFormat | None = BfpFormat(8, 4)
    lanes: int = 8
    chunks: int = 8
    eps: float = 1e-5
    rounding: str = "rtz"
    max_m: int = 65536
    add_stages: int = 1
    mul_stages: int = 1
    div_stages: int = 2
    sqrt_stages: int = 2
    minmax_stages: int = 0
    bfp_stages: int = 1

    def __post_init__(self):
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}, not {self.algorithm!r}")
        if self.grad not in GRADIENTS:
            raise ValueError(f"grad must be one of {GRADIENTS}, not {self.grad!r}")
        if self.grad == "range" and self.algorithm != "range":
            raise ValueError(f"grad 'range' needs algorithm 'range', not {self.algorithm!r}")
        if self.rounding not in ROUNDING_MODES:
            raise ValueError(f"rounding must be one of {ROUNDING_MODES}, not {self.rounding!r}")
        _int_field("lanes", self.lanes, 1, 64)
        _int_field("chunks", self.chunks, 1, 64)
        _int_field("max_m", self.max_m, 2, 1 << 24)
        for name in _STAGE_FIELDS:
            _int_field(name, getattr(self, name), 0, 16)

        # The config's rounding applies to every format it holds (frozen: set via object.__setattr__).
        for name in ("fwd_fmt", "bwd_fmt", "fwd_acc_fmt", "bwd_acc_fmt"):
            fmt = getattr(self, name)
            if not isinstance(fmt, FloatFormat):
                raise ValueError(f"{name} must be a FloatFormat, not {fmt!r}")
            object.__setattr__(self, name, fmt.replace(rounding=self.rounding))
        for name in ("x_bfp", "y_bfp", "dy_bfp", "dx_bfp"):
            b = getattr(self, name)
            if b is None:
                continue
            if not isinstance(b, BfpFormat):
                raise ValueError(f"{name} must be a BfpFormat or None, not {b!r}")
            if b.group != self.lanes:
                raise ValueError(f"{name}.group must equal lanes ({self.lanes}), not {b.group}")
            object.__setattr__(self, name, b.replace(rounding=self.rounding))

        # Accumulators must hold their data formats exactly: the conversions on the streaming
        # path are then pure wiring (docs/bn-spec.md, section 2).  The backward pass also
        # converts x (a forward-format word) into the backward accumulator format.
        for acc, data in (("fwd_acc_fmt", "fwd_fmt"), ("bwd_acc_fmt", "bwd_fmt"),
                          ("bwd_acc_fmt", "fwd_fmt")):
            fa, fd = getattr(self, acc), getattr(self, data)
            if not _holds(fa, fd):
                raise ValueError(f"{acc} ({fa.name}) must hold every value of {data} "
                                 f"({fd.name}) exactly: at least as many exponent and mantissa "
                                 f"bits, and subnormals kept if {data} has them")

        if isinstance(self.eps, bool) or not isinstance(self.eps, (int, float, np.floating)):
            raise ValueError(f"eps must be a float, not {self.eps!r}")
        if not (math.isfinite(self.eps) and self.eps >= 0):
            raise ValueError(f"eps must be finite and >= 0, not {self.eps!r}")
        object.__setattr__(self, "eps", float(self.eps))
        if self.eps > 0:
            if fp.decode(self.fwd_acc_fmt, fp.encode(self.fwd_acc_fmt, self.eps)) == 0:
                raise ValueError(f"eps ({self.eps!r}) rounds to zero in fwd_acc_fmt "
                                 f"({self.fwd_acc_fmt})")

    # -- derived quantities -------------------------------------------------------------------
    @property
    def m_bits(self):
        """Width of m and of one position index on the streams."""
        return int(self.max_m).bit_length()

    @property
    def r_bits(self):
        """Width of the chunk remainder ``r = m % K`` field."""
        return max(1, (self.chunks - 1).bit_length())

    @property
    def const_width(self):
        """Width of one constant slot (``max(A.width, AB.width)``) in command/result beats."""
        return max(self.fwd_acc_fmt.width, self.bwd_acc_fmt.width)

    @property
    def has_positions(self):
        """True when argmax/argmin positions travel on the streams (``grad == "range"``)."""
        return self.grad == "range"

    @property
    def positions_width(self):
        return 2 * self.chunks * self.m_bits if self.has_positions else 0

    @property
    def header_width(self):
        return 2 + 2 * self.m_bits + self.r_bits + 3 * self.const_width

    @property
    def lane_width(self):
        return 3 * self.const_width + self.positions_width

    @property
    def cmd_width(self):
        """Command stream payload width: max of header and lane beats."""
        return max(self.header_width, self.lane_width)

    @property
    def result_width(self):
        return 3 * self.const_width + self.positions_width

    def tensor_width(self, name):
        """Width of one beat of tensor ``name`` (``"x"``, ``"y"``, ``"dy"``, ``"dx"``)."""
        bfmt = getattr(self, f"{name}_bfp")
        if bfmt is not None:
            return bfmt.group_width
        fmt = self.fwd_fmt if name in ("x", "y") else self.bwd_fmt
        return self.lanes * fmt.width

    @property
    def din_width(self):
        return self.tensor_width("x") + self.tensor_width("dy")

    @property
    def dout_width(self):
        return max(self.tensor_width("y"), self.tensor_width("dx"))

    @property
    def forward_passes(self):
        return 2 if self.algorithm == "range" else 3

    @property
    def name(self):
        """Short unique-ish name for build directories."""
        base = lambda f: f.replace(rounding="rne").name   # noqa: E731 - rounding named once
        return (f"{self.algorithm}_{self.grad}_{base(self.fwd_fmt)}_{base(self.bwd_fmt)}_"
                f"g{self.lanes}k{self.chunks}_{self.rounding}")

    def replace(self, **changes):
        """A validated copy with some fields changed.

        Formats are re-derived from the current ones, so ``replace(rounding="rne")`` re-rounds
        every format of the config.
        """
        return replace(self, **changes)

    def as_dict(self):
        """Plain-data view (formats as their names) for manifests and reports."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = v.name if isinstance(v, (FloatFormat, BfpFormat)) else v
        return out


# -- presets ------------------------------------------------------------------------------------
#: The reference LightNorm settings (background note): range BN, K = 8, fp10_154 forward,
#: fp10_163 backward, "+8" accumulators, BFP groups of 8 channels with the element precision as
#: magnitude width, truncation everywhere, exact range-BN gradient.
LIGHTNORM = BNConfig()
LIGHTNORM_RNE = LIGHTNORM.replace(rounding="rne")
#: Conventional BN baseline in FP32: plain FP32 words on the streams, FP32 arithmetic.
FP32_BN = BNConfig(algorithm="conventional", grad="bn", fwd_fmt=FP32, bwd_fmt=FP32,
                   fwd_acc_fmt=FP32, bwd_acc_fmt=FP32, x_bfp=None, y_bfp=None, dy_bfp=None,
                   dx_bfp=None, rounding="rne")
#: Conventional BN baseline in BF16: BF16 words, "bf16+8" arithmetic (E8M15, the +8 rule).
BF16_BN = FP32_BN.replace(fwd_fmt=BF16, bwd_fmt=BF16, fwd_acc_fmt=BF16_ACC, bwd_acc_fmt=BF16_ACC)

#: Name -> preset, the table every tool iterates over.
BN_PRESETS = {"lightnorm": LIGHTNORM, "lightnorm_rne": LIGHTNORM_RNE, "fp32_bn": FP32_BN,
              "bf16_bn": BF16_BN}
