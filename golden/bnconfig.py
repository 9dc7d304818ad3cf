"""Configuration of the BN unit: one frozen, validated object shared by RTL, golden model and tests.

The arithmetic every field controls is specified in docs/bn-spec.md; :mod:`lightnorm.golden.bn`
implements it bit for bit and ``rtl/bn/`` mirrors it.
"""

import math
from dataclasses import dataclass, replace, fields

import numpy as np

from . import fp
from .formats import FloatFormat, BfpFormat, FP32, BF16, FP10_154, FP10_163, ROUNDING_MODES

__all__ = ["ALGORITHMS", "GRADIENTS", "VARIANCES", "BNConfig", "LIGHTNORM", "LIGHTNORM_RNE",
           "LIGHTNORM_WIDE", "FP32_BN", "BF16_BN", "BN_PRESETS", "BF16_ACC", "FP32_ACC",
           "sum_format", "policy_between", "lightnorm_policy", "SUM_MODES", "FixedFormat",
           "exact_sum_format", "FP32_BN_SUMSQ", "BF16_BN_SUMSQ", "SUMSQ_PRESETS"]

#: Forward algorithms: range BN (sigma from chunk max - min) or the conventional two-moment BN.
ALGORITHMS = ("range", "conventional")
#: Backward forms: the standard BN gradient, or the exact gradient of the range-BN forward.
GRADIENTS = ("bn", "range")
#: How the conventional forward gathers the variance (docs/bn-spec.md section 4):
#: "centered" = a second pass summing (x - mu)^2 after the mean (3 forward passes); "sumsq" =
#: sum x and sum x*x in one pass, var = max(E[x^2] - mu^2, 0) on the sequencer (2 passes).
VARIANCES = ("centered", "sumsq")

#: "bf16+8": BF16 with the 8 extra mantissa bits LightNorm gives its accumulators, and the
#: exponent widened by one so that no sum of max_m = 65536 BF16 terms can overflow.
BF16_ACC = FloatFormat(9, 15)
#: FP32's mantissa with the exponent widened by one (sums of 65536 FP32 terms cannot overflow).
FP32_ACC = FloatFormat(9, 23)

#: Sum policies (docs/bn-spec.md, "Sums"): "exact" = a fixed-point (Kulisch) accumulator holding
#: the exact sum of the terms, rounded once; "wide" = sequential in the wide FP format W.
SUM_MODES = ("exact", "wide")

#: The policy fields: None means "the accumulator format of that direction".
_POLICY_FIELDS = {"fwd_op_fmt": "fwd_acc_fmt", "fwd_const_fmt": "fwd_acc_fmt",
                  "bwd_op_fmt": "bwd_acc_fmt", "bwd_const_fmt": "bwd_acc_fmt"}

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


def sum_format(acc, max_m):
    """The wide internal format W of the sums accumulated in ``acc`` (docs/bn-spec.md, "Sums").

    ``W = acc`` with ``m_bits + 2`` more mantissa bits (``m_bits = max_m.bit_length()``): a
    sequential sum of up to ``max_m`` terms in W, rounded once into ``acc``, is within
    ``max_m * ulp_W + 1 ulp_acc <= 1.25 ulp_acc`` of the exact sum (ulps at the sum of the
    magnitudes of the terms).
    """
    return acc.replace(man_bits=acc.man_bits + int(max_m).bit_length() + 2)


@dataclass(frozen=True)
class FixedFormat:
    """A two's-complement fixed-point word: value = ``int(bits as signed width) * 2**lsb_exp``.

    The register format of an exact (Kulisch) sum accumulator; :func:`exact_sum_format` sizes
    it.  ``name`` (e.g. ``X51m24``) tags units and build products.
    """

    width: int
    lsb_exp: int

    def __post_init__(self):
        _int_field("width", self.width, 2, 1 << 16)
        if isinstance(self.lsb_exp, bool) or not isinstance(self.lsb_exp, int):
            raise ValueError(f"lsb_exp must be an integer, not {self.lsb_exp!r}")

    @property
    def name(self):
        return f"X{self.width}{'m' if self.lsb_exp < 0 else 'p'}{abs(self.lsb_exp)}"


def _max_term_int(fmt):
    """The largest finite magnitude of ``fmt`` as an integer multiple of its smallest subnormal
    ``2**(emin - man_bits)``: ``(2**precision - 1) << (2**exp_bits - 3)``."""
    return ((1 << fmt.precision) - 1) << ((1 << fmt.exp_bits) - 3)


def exact_sum_format(term_fmts, n):
    """The register of an exact sum of up to ``n`` terms of the FloatFormats ``term_fmts``.

    THE width rule of the "exact" sums, used by the golden model (to check its integers fit),
    the RTL accumulators (:mod:`lightnorm.rtl.fixacc`) and the docs: the LSB is the finest grid
    of the term formats, ``lsb = min(emin - man_bits)`` (every finite term, subnormals
    included, is an integer multiple of ``2**lsb``); the width holds ``n`` times the largest
    finite term plus a sign bit, ``width = bit_length(n * max_int) + 1``.  E5M4 terms at
    n = 65536: 51 bits; E6M4: 83 bits; E8M23 (FP32): 294 bits (why the conventional presets
    keep "wide" sums).
    """
    term_fmts = list(term_fmts)
    if not term_fmts or not all(isinstance(f, FloatFormat) for f in term_fmts):
        raise ValueError(f"term_fmts must be a non-empty list of FloatFormats, not {term_fmts!r}")
    _int_field("n", n, 1, 1 << 24)
    lsb = min(f.emin - f.man_bits for f in term_fmts)
    top = max(_max_term_int(f) << (f.emin - f.man_bits - lsb) for f in term_fmts)
    return FixedFormat(int(n * top).bit_length() + 1, int(lsb))


def _max_value(fmt):
    return float(fp.decode(fmt, fmt.max_finite))


def policy_between(r, low, high, subnormals=True):
    """A random format holding ``low`` and held by ``high`` (random config generators).

    ``r`` is a ``numpy.random.Generator``; exponent and mantissa widths are drawn uniformly
    between those of ``low`` and ``high`` (``low`` must be held by ``high``).
    """
    return FloatFormat(int(r.integers(low.exp_bits, high.exp_bits + 1)),
                       int(r.integers(low.man_bits, high.man_bits + 1)), subnormals=subnormals)


def _widen_for_sums(acc, terms):
    """``acc`` with the fewest extra exponent bits so that ``n`` terms of each FloatFormat in
    ``terms`` (``[(fmt, n), ...]``) sum without overflow (the rule __post_init__ checks)."""
    need = max(n * _max_value(t) for t, n in terms)
    while _max_value(acc) < need:
        acc = acc.replace(exp_bits=acc.exp_bits + 1)
    return acc


@dataclass(frozen=True)
class BNConfig:
    """Everything that defines one BN unit (see docs/bn-spec.md, section 1).

    Parameters
    ----------
    algorithm : str
        ``"range"`` (range BN, 2 forward passes) or ``"conventional"`` (3 forward passes, 2 with
        ``variance="sumsq"``).
    grad : str
        ``"bn"`` (standard BN gradient) or ``"range"`` (exact gradient of range BN through the
        chunk argmax/argmin; requires ``algorithm="range"``).
    variance : str
        Conventional forward only: ``"centered"`` (default: a variance pass summing
        ``(x - mu)^2``) or ``"sumsq"`` (one statistics pass gathering ``sum x`` and
        ``sum x*x``; ``var = max(E[x^2] - mu^2, +0)`` on the sequencer, docs/bn-spec.md
        section 4).  ``"sumsq"`` needs ``algorithm="conventional"``; the unit accumulates the
        squares in the backward dgamma accumulator, so it also needs ``bwd_op_fmt`` to hold
        ``fwd_op_fmt`` and, with wide sums, ``bwd_acc_fmt == fwd_acc_fmt``.
    fwd_fmt, bwd_fmt : FloatFormat
        Data formats of x/y and dy/dx words (the BFP element formats).
    fwd_acc_fmt, bwd_acc_fmt : FloatFormat
        Accumulator formats A, AB: every sum is rounded once into them, and the scalar
        sequencer's per-channel arithmetic runs in them.  Each must hold its op and constant
        formats exactly, and be wide enough that no sum of ``max_m`` terms overflows.
    fwd_op_fmt, bwd_op_fmt : FloatFormat or None
        Op formats P, PB: every per-element operation of the streaming passes is rounded to
        them.  None (default) = the accumulator format of the direction.  P must hold
        ``fwd_fmt`` and C; PB must hold ``bwd_fmt``, ``fwd_fmt`` (x is reused) and CB.
    fwd_const_fmt, bwd_const_fmt : FloatFormat or None
        Constant formats C, CB: the per-channel constants the streaming passes use (forward mu,
        s, a, b; backward mu, s, a, c0, c1 | c0p, c0m) are rounded once into them from the
        accumulator format.  None (default) = the accumulator format of the direction.
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
    sum_mode : str
        ``"exact"`` (each sum of m terms -- sum of x, conventional variance sum, dgamma, dbeta --
        is the exact sum of its terms in a fixed-point accumulator sized by
        :func:`exact_sum_format`, rounded once into A / AB) or ``"wide"`` (sequential in the
        wide FP format W, rounded once; docs/bn-spec.md, "Sums").
    max_m : int
        Largest number of positions per channel the hardware accepts (2..2**24); sets the width
        ``m_bits`` of m (and of q and the unit's position counters).
    add_stages, mul_stages, div_stages, sqrt_stages, minmax_stages, bfp_stages : int
        Pipeline depths of the RTL units (0..16); they do not change any value.
    sum_segment : int
        RTL only, ``sum_mode "exact"``: 0 (one adder across each fixed-point register, the
        term placed and added in the cycle it arrives) or 2..256: the accumulators pipelined,
        the term registered after unpacking and each register kept in carry-save segments of
        at most this many bits (rtl/fixacc.py); the sums are the same exact sums, ready a few
        cycles later (the sequencer waits for them: docs/interface.md).
    """

    algorithm: str = "range"
    grad: str = "range"
    variance: str = "centered"
    fwd_fmt: FloatFormat = FP10_154
    bwd_fmt: FloatFormat = FP10_163
    fwd_acc_fmt: FloatFormat = FloatFormat(6, 12)
    bwd_acc_fmt: FloatFormat = FloatFormat(7, 11)
    fwd_op_fmt: FloatFormat | None = None
    bwd_op_fmt: FloatFormat | None = None
    fwd_const_fmt: FloatFormat | None = None
    bwd_const_fmt: FloatFormat | None = None
    x_bfp: BfpFormat | None = BfpFormat(8, 5)
    y_bfp: BfpFormat | None = BfpFormat(8, 5)
    dy_bfp: BfpFormat | None = BfpFormat(8, 4)
    dx_bfp: BfpFormat | None = BfpFormat(8, 4)
    lanes: int = 8
    chunks: int = 8
    eps: float = 1e-5
    rounding: str = "rtz"
    sum_mode: str = "wide"
    max_m: int = 65536
    add_stages: int = 1
    mul_stages: int = 1
    div_stages: int = 4
    sqrt_stages: int = 4
    minmax_stages: int = 0
    bfp_stages: int = 1
    sum_segment: int = 0

    def __post_init__(self):
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}, not {self.algorithm!r}")
        if self.grad not in GRADIENTS:
            raise ValueError(f"grad must be one of {GRADIENTS}, not {self.grad!r}")
        if self.grad == "range" and self.algorithm != "range":
            raise ValueError(f"grad 'range' needs algorithm 'range', not {self.algorithm!r}")
        if self.variance not in VARIANCES:
            raise ValueError(f"variance must be one of {VARIANCES}, not {self.variance!r}")
        if self.variance == "sumsq" and self.algorithm != "conventional":
            raise ValueError(f"variance 'sumsq' needs algorithm 'conventional', not "
                             f"{self.algorithm!r}")
        if self.rounding not in ROUNDING_MODES:
            raise ValueError(f"rounding must be one of {ROUNDING_MODES}, not {self.rounding!r}")
        if self.sum_mode not in SUM_MODES:
            raise ValueError(f"sum_mode must be one of {SUM_MODES}, not {self.sum_mode!r}")
        _int_field("lanes", self.lanes, 1, 64)
        _int_field("chunks", self.chunks, 1, 64)
        _int_field("max_m", self.max_m, 2, 1 << 24)
        for name in _STAGE_FIELDS:
            _int_field(name, getattr(self, name), 0, 16)
        _int_field("sum_segment", self.sum_segment, 0, 256)
        if self.sum_segment == 1:
            raise ValueError("sum_segment must be 0 (one adder) or 2..256 bits, not 1")
        if self.sum_segment and self.sum_mode != "exact":
            raise ValueError(f"sum_segment {self.sum_segment} pipelines the exact sums' "
                             f"accumulators: it needs sum_mode 'exact', not {self.sum_mode!r}")

        # The config's rounding applies to every format it holds (frozen: set via object.__setattr__).
        for name in ("fwd_fmt", "bwd_fmt", "fwd_acc_fmt", "bwd_acc_fmt", *_POLICY_FIELDS):
            fmt = getattr(self, name)
            if fmt is None and name in _POLICY_FIELDS:
                continue
            if not isinstance(fmt, FloatFormat):
                raise ValueError(f"{name} must be a FloatFormat"
                                 f"{' or None' if name in _POLICY_FIELDS else ''}, not {fmt!r}")
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

        # The precision policy (docs/bn-spec.md, section 2): every conversion between the
        # classes on the streaming path is exact, i.e. pure wiring.  Data -> op format (x, dy;
        # the backward pass reuses x), constants -> op format, op and constant formats -> the
        # accumulator format (the sums' terms and the sequencer's operands).
        rules = (("fwd_op_fmt", "fwd_fmt"), ("fwd_op_fmt", "fwd_const_fmt"),
                 ("fwd_acc_fmt", "fwd_op_fmt"), ("fwd_acc_fmt", "fwd_const_fmt"),
                 ("bwd_op_fmt", "bwd_fmt"), ("bwd_op_fmt", "fwd_fmt"),
                 ("bwd_op_fmt", "bwd_const_fmt"),
                 ("bwd_acc_fmt", "bwd_op_fmt"), ("bwd_acc_fmt", "bwd_const_fmt"))
        for big, small in rules:
            fb, fs = self.fmt(big), self.fmt(small)
            # A policy field left None is its accumulator format: name the field that is set.
            big = _POLICY_FIELDS[big] if getattr(self, big) is None else big
            small = _POLICY_FIELDS[small] if getattr(self, small) is None else small
            if big == small:
                continue
            if not _holds(fb, fs):
                raise ValueError(f"{big} ({fb.name}) must hold every value of {small} "
                                 f"({fs.name}) exactly: at least as many exponent and mantissa "
                                 f"bits, and subnormals kept if {small} has them")

        # No sum may overflow its accumulator format at max_m (docs/bn-spec.md, "Sums"): the
        # largest sum is max_m (chunk sums: K) times the largest finite term.  A sum whose terms
        # are already in the accumulator format (the wide policy's dgamma with PB = AB, its
        # conventional variance with P = A) can never meet this bound; it is not checked, and
        # such a sum saturates (rtz) or overflows to Inf (rne) like any op of the format.
        F, B, P, PB = (self.fmt(n) for n in ("fwd_fmt", "bwd_fmt", "fwd_op_fmt", "bwd_op_fmt"))
        sums = [("fwd_acc_fmt", "sum of x", F, self.max_m)]
        if self.algorithm == "range":
            sums.append(("fwd_acc_fmt", "chunk max/min sums", F, self.chunks))
        elif self.variance == "sumsq":
            sums.append(("fwd_acc_fmt", "sum of squares", P, self.max_m))
        else:
            sums.append(("fwd_acc_fmt", "variance sum", P, self.max_m))
        sums += [("bwd_acc_fmt", "dbeta", B, self.max_m), ("bwd_acc_fmt", "dgamma", PB,
                                                            self.max_m)]
        for acc, what, term, n in sums:
            fa = getattr(self, acc)
            if term == fa and what in ("variance sum", "sum of squares", "dgamma"):
                continue
            need = n * _max_value(term)
            if _max_value(fa) < need:
                bits = fa.exp_bits
                while _max_value(fa.replace(exp_bits=bits)) < need:
                    bits += 1
                raise ValueError(
                    f"{acc} ({fa.name}) overflows on the {what} at max_m ({self.max_m}): "
                    f"{n} terms of up to {_max_value(term):.6g} need at least {bits} exponent "
                    f"bits (E{bits}M{fa.man_bits})")

        if self.variance == "sumsq":
            # The unit gathers sum x*x in the backward dgamma accumulator (forward and backward
            # never overlap): its register must take the P terms and round like the forward's.
            P, PB = self.fwd_op, self.bwd_op
            if not _holds(PB, P):
                raise ValueError(
                    f"variance 'sumsq' accumulates x*x (fwd_op_fmt, {P.name}) in the dgamma "
                    f"accumulator: bwd_op_fmt ({PB.name}) must hold every value of fwd_op_fmt")
            if not self.exact_sums and self.bwd_acc_fmt != self.fwd_acc_fmt:
                raise ValueError(
                    f"variance 'sumsq' with sum_mode 'wide' sums x*x in the dgamma "
                    f"accumulator's wide format: bwd_acc_fmt ({self.bwd_acc_fmt.name}) must "
                    f"equal fwd_acc_fmt ({self.fwd_acc_fmt.name})")

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
    def fmt(self, name):
        """The effective format of field ``name`` (a policy field's None = its accumulator)."""
        v = getattr(self, name)
        if v is None and name in _POLICY_FIELDS:
            return getattr(self, _POLICY_FIELDS[name])
        return v

    @property
    def fwd_op(self):
        """P: format of every per-element forward/inference operation."""
        return self.fmt("fwd_op_fmt")

    @property
    def bwd_op(self):
        """PB: format of every per-element backward operation."""
        return self.fmt("bwd_op_fmt")

    @property
    def fwd_const(self):
        """C: format of the forward per-channel constants mu, s, a, b."""
        return self.fmt("fwd_const_fmt")

    @property
    def bwd_const(self):
        """CB: format of the backward per-channel constants mu, s, a, c0, c1 | c0p, c0m."""
        return self.fmt("bwd_const_fmt")

    @property
    def fwd_sum_fmt(self):
        """W: internal format of the forward sums (:func:`sum_format` of A)."""
        return sum_format(self.fwd_acc_fmt, self.max_m)

    @property
    def bwd_sum_fmt(self):
        """WB: internal format of the backward sums (:func:`sum_format` of AB)."""
        return sum_format(self.bwd_acc_fmt, self.max_m)

    @property
    def exact_sums(self):
        """True when the sums of m terms are exact fixed-point sums (``sum_mode == "exact"``)."""
        return self.sum_mode == "exact"

    def sum_term_fmts(self):
        """``{sum: [term FloatFormats]}`` of the sums of m terms, keyed as the stats block's
        accumulators: ``"f"`` (sum of x; conventional "centered": also the variance terms P),
        ``"g"`` (dgamma, PB terms; variance "sumsq": also the forward's x*x, P terms, which PB
        holds), ``"b"`` (dbeta, B terms).  The last format of each list is the one the
        accumulator's terms arrive in."""
        centered = self.algorithm == "conventional" and self.variance == "centered"
        f = [self.fwd_fmt] + ([self.fwd_op] if centered else [])
        g = ([self.fwd_op] if self.variance == "sumsq" else []) + [self.bwd_op]
        return {"f": f, "g": g, "b": [self.bwd_fmt]}

    def fix_fmt(self, acc):
        """The fixed-point register of accumulator ``acc`` (``"f"``, ``"g"``, ``"b"``) in
        exact mode (:func:`exact_sum_format` of its term formats at ``max_m``).  The two
        backward sums share one register format (that of the PB and B terms together; PB holds
        B, so it is dgamma's), so that one FixedToFloat converter serves both."""
        t = self.sum_term_fmts()
        terms = t["g"] + t["b"] if acc in ("g", "b") else t[acc]
        return exact_sum_format(terms, self.max_m)

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
    def header_width(self):
        return 2 + 2 * self.m_bits + self.r_bits + 3 * self.const_width

    @property
    def lane_width(self):
        return 3 * self.const_width

    @property
    def cmd_width(self):
        """Command stream payload width: max of header and lane beats."""
        return max(self.header_width, self.lane_width)

    @property
    def result_width(self):
        """Result stream payload width: three constant slots (no positions: a backward with
        grad "range" re-detects the chunk extrema, docs/bn-spec.md section 5)."""
        return 3 * self.const_width

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
        return 3 if self.algorithm == "conventional" and self.variance == "centered" else 2

    @property
    def name(self):
        """Short unique-ish name for build directories."""
        base = lambda f: f.replace(rounding="rne").name   # noqa: E731 - rounding named once
        pol = ""
        for tag, names in (("p", ("fwd_op_fmt", "bwd_op_fmt")),
                           ("c", ("fwd_const_fmt", "bwd_const_fmt"))):
            fmts = [self.fmt(n) for n in names]
            if fmts != [self.fwd_acc_fmt, self.bwd_acc_fmt]:
                pol += f"_{tag}{base(fmts[0])}_{base(fmts[1])}"
        pol += "_sx" if self.exact_sums else ""
        pol += "_sq" if self.variance == "sumsq" else ""
        return (f"{self.algorithm}_{self.grad}_{base(self.fwd_fmt)}_{base(self.bwd_fmt)}_"
                f"a{base(self.fwd_acc_fmt)}_{base(self.bwd_acc_fmt)}{pol}_"
                f"g{self.lanes}k{self.chunks}_{self.rounding}")

    def replace(self, **changes):
        """A validated copy with some fields changed.

        Formats are re-derived from the current ones, so ``replace(rounding="rne")`` re-rounds
        every format of the config.
        """
        return replace(self, **changes)

    def as_dict(self):
        """Plain-data view (formats as their names) for manifests and reports.

        The policy fields show their effective format (a None field: its accumulator's), so
        the precision policy is visible in every manifest.
        """
        out = {}
        for f in fields(self):
            v = self.fmt(f.name)
            out[f.name] = v.name if isinstance(v, (FloatFormat, BfpFormat)) else v
        return out


def lightnorm_policy(base, fwd_fmt=None, bwd_fmt=None, acc_extra=(8, 8), **changes):
    """``base`` with LIGHTNORM's precision policy for (possibly new) data formats.

    Streaming ops and constants in the data formats (forward P = C = F; backward PB = CB = the
    smallest format holding F and B), accumulators with ``acc_extra`` = (forward, backward)
    more mantissa bits than F resp. B (at least PB's) and the smallest exponent with which no sum of
    ``max_m`` terms overflows.  For sweeps over data formats (study, synthesis sweeps):
    ``LIGHTNORM.replace(fwd_fmt=...)`` alone keeps LIGHTNORM's E5M4 op formats and is refused.
    """
    probe = base.replace(**changes) if changes else base
    F = (fwd_fmt or probe.fwd_fmt).replace(rounding="rne")
    B = (bwd_fmt or probe.bwd_fmt).replace(rounding="rne")
    sub = F.subnormals
    FB = FloatFormat(max(F.exp_bits, B.exp_bits), max(F.man_bits, B.man_bits), subnormals=sub)
    n, k = probe.max_m, probe.chunks
    A = _widen_for_sums(F.replace(man_bits=F.man_bits + acc_extra[0]), [(F, n), (F, k)])
    AB = _widen_for_sums(FB.replace(man_bits=max(FB.man_bits, B.man_bits + acc_extra[1])),
                         [(B, n), (FB, n)])
    return base.replace(fwd_fmt=F, bwd_fmt=B, fwd_op_fmt=F, fwd_const_fmt=F, bwd_op_fmt=FB,
                        bwd_const_fmt=FB, fwd_acc_fmt=A, bwd_acc_fmt=AB, **changes)


# -- presets ------------------------------------------------------------------------------------
#: The reference LightNorm policy (background note, "Precision policy of the reference
#: simulation"): range BN, K = 8, fp10_154 (E5M4) forward, fp10_163 (E6M3) backward; every
#: per-element op and constant in the data format (backward: E6M4, the smallest format holding
#: both); the sums rounded once into "+8"-mantissa accumulators whose exponents are widened
#: until no sum of max_m = 65536 terms can overflow (A = E6M12, AB = E7M11); BFP groups of 8
#: channels with the element precision as magnitude width; truncation; exact range-BN gradient.
#: The sums of m terms are exact (fixed-point accumulators of 51 bits for the E5M4 x, 83 bits
#: for the E6M4 dgamma and E6M3 dbeta terms), rounded once; the RTL keeps them in carry-save
#: segments of 16 bits (sum_segment: a short loop, and smaller than one 83-bit adder).
LIGHTNORM = BNConfig(fwd_op_fmt=FP10_154, fwd_const_fmt=FP10_154, bwd_op_fmt=FloatFormat(6, 4),
                     bwd_const_fmt=FloatFormat(6, 4), sum_mode="exact", sum_segment=16)
LIGHTNORM_RNE = LIGHTNORM.replace(rounding="rne")
#: The previous policy (every op and constant in the accumulator format; also ``BNConfig()``'s
#: default) with the same accumulators and the wide sequential sums, for comparisons.
LIGHTNORM_WIDE = LIGHTNORM.replace(fwd_op_fmt=None, bwd_op_fmt=None, fwd_const_fmt=None,
                                   bwd_const_fmt=None, sum_mode="wide", sum_segment=0)
#: Conventional BN baseline in FP32: plain FP32 words on the streams, FP32 streaming arithmetic
#: and constants, sums in E9M23 (FP32 with one more exponent bit: no overflow at max_m).
FP32_BN = BNConfig(algorithm="conventional", grad="bn", fwd_fmt=FP32, bwd_fmt=FP32,
                   fwd_acc_fmt=FP32_ACC, bwd_acc_fmt=FP32_ACC, fwd_op_fmt=FP32, bwd_op_fmt=FP32,
                   fwd_const_fmt=FP32, bwd_const_fmt=FP32, x_bfp=None, y_bfp=None,
                   dy_bfp=None, dx_bfp=None, rounding="rne")
#: Conventional BN baseline in BF16: BF16 words, BF16 streaming arithmetic and constants, sums
#: and per-channel arithmetic in E9M15 ("bf16+8", one more exponent bit for the sums).
BF16_BN = FP32_BN.replace(fwd_fmt=BF16, bwd_fmt=BF16, fwd_op_fmt=BF16, bwd_op_fmt=BF16,
                          fwd_const_fmt=BF16, bwd_const_fmt=BF16, fwd_acc_fmt=BF16_ACC,
                          bwd_acc_fmt=BF16_ACC)

#: The conventional baselines with a one-pass forward (issue 9, "equal care for the
#: baselines"): sum x and sum x*x in one statistics pass, var = max(E[x^2] - mu^2, 0), two
#: forward passes instead of three.  Additional baselines of the area report (synth/designs.py)
#: and of one Verilator regression (BF16); not in BN_PRESETS, so make verilog, the study and
#: the every-preset regressions are unchanged.  Config files: ``base = "fp32_bn"`` with
#: ``variance = "sumsq"``.
FP32_BN_SUMSQ = FP32_BN.replace(variance="sumsq")
BF16_BN_SUMSQ = BF16_BN.replace(variance="sumsq")
SUMSQ_PRESETS = {"fp32_bn_sumsq": FP32_BN_SUMSQ, "bf16_bn_sumsq": BF16_BN_SUMSQ}

#: Name -> preset, the table every tool iterates over.
BN_PRESETS = {"lightnorm": LIGHTNORM, "lightnorm_rne": LIGHTNORM_RNE,
              "lightnorm_wide": LIGHTNORM_WIDE, "fp32_bn": FP32_BN, "bf16_bn": BF16_BN}
