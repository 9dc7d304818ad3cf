"""The regression's table of units: how to build each one, feed it and predict its results.

One :class:`Unit` entry per RTL component ties together its constructor (imported lazily, so a
missing module fails only its own tests, with the import error), its payload kind and its golden
function.  To put a new unit under regression, add an entry to :data:`UNITS`; the parametrized
tests in ``verif/test_fp_units.py`` (and ``test_exhaustive.py`` for binary FP ops) pick it up.

A *case* is one parameter combination: unit, operand format (which carries rounding and
subnormal mode), pipeline depth and, for conversions and BFP codecs, the second format.
:func:`case_vectors` returns the stimulus and the golden results of a case, :func:`run_case`
streams them through the simulator.
"""

from dataclasses import dataclass
import importlib
import zlib

import numpy as np

from lightnorm.golden import fp, vectors
from lightnorm.golden.formats import FloatFormat

from .simulate import run_stream

__all__ = ["Unit", "UNITS", "Case", "case_vectors", "run_case"]


@dataclass(frozen=True)
class Unit:
    """One RTL unit under regression.

    Parameters
    ----------
    name : str
        Short name (test ids, build directories).
    rtl : str
        ``"module:Class"`` of the component, e.g. ``"lightnorm.rtl.fpmul:FPMul"``.
    kind : str
        Payload/constructor kind: ``"binary"`` (``Class(fmt, stages=)``, payload ``{a, b[, flag]}``),
        ``"unary"`` (``Class(fmt, stages=)``), ``"convert"`` (``Class(src, dst, stages=)``),
        ``"bfp_encode"``/``"bfp_decode"``/``"bfp_roundtrip"`` (``Class(bfmt, fmt, stages=)``).
    golden : tuple of str
        Golden function names in :mod:`lightnorm.golden.fp`; for a flagged unit, the function for
        flag 0 and the one for flag 1.
    flag : str or None
        Name of the one-bit op-select field after ``b`` (``"sub"``, ``"max"``).
    """

    name: str
    rtl: str
    kind: str
    golden: tuple = ()
    flag: str = None

    def component_class(self):
        module, cls = self.rtl.split(":")
        return getattr(importlib.import_module(module), cls)


#: Every unit the regression knows, by name.
UNITS = {u.name: u for u in [
    Unit("fpaddsub", "lightnorm.rtl.fpadd:FPAddSub", "binary", ("add", "sub"), flag="sub"),
    Unit("fpmul", "lightnorm.rtl.fpmul:FPMul", "binary", ("mul",)),
    Unit("fpminmax", "lightnorm.rtl.fpminmax:FPMinMax", "binary", ("min", "max"), flag="max"),
    Unit("fpdiv", "lightnorm.rtl.fpdiv:FPDiv", "binary", ("div",)),
    Unit("fpsqrt", "lightnorm.rtl.fpsqrt:FPSqrt", "unary", ("sqrt",)),
    Unit("fpconvert", "lightnorm.rtl.fpconvert:FPConvert", "convert"),
    Unit("bfp_encoder", "lightnorm.rtl.bfp:BfpEncoder", "bfp_encode"),
    Unit("bfp_decoder", "lightnorm.rtl.bfp:BfpDecoder", "bfp_decode"),
    # Encoder -> decoder through a stream connection (test-only composite, verif/chain.py).
    Unit("bfp_roundtrip", "lightnorm.verif.chain:BfpRoundTrip", "bfp_roundtrip"),
]}


@dataclass(frozen=True)
class Case:
    """One parameter combination of a unit.

    Parameters
    ----------
    unit : str
        Key of :data:`UNITS`.
    fmt : FloatFormat
        Operand format (source format of a conversion, element format of a BFP codec).
    stages : int
        Pipeline depth.
    other : FloatFormat or BfpFormat, optional
        Destination format of a conversion; block format of a BFP codec.
    """

    unit: str
    fmt: FloatFormat
    stages: int
    other: object = None

    @property
    def name(self):
        s = f"{self.unit}-{self.fmt.name}"
        if self.other is not None:
            s += f"-to-{self.other.name}" if isinstance(self.other, FloatFormat) \
                else f"-{self.other.name}"
        return f"{s}-s{self.stages}"

    @property
    def seed(self):
        return zlib.crc32(self.name.encode())

    def build(self):
        u = UNITS[self.unit]
        cls = u.component_class()
        if u.kind in ("binary", "unary"):
            return cls(self.fmt, stages=self.stages)
        if u.kind == "convert":
            return cls(self.fmt, self.other, stages=self.stages)
        return cls(self.other, self.fmt, stages=self.stages)


def _all_patterns(fmt):
    return np.arange(1 << fmt.width, dtype=np.int64).astype(fmt.dtype)


def _unary_operands(fmt, n, rng, exhaustive):
    """Every bit pattern when exhaustive or when there are no more than ``n``; else corners +
    random; padded with random patterns up to ``n``."""
    if exhaustive or (1 << fmt.width) <= n:
        a = _all_patterns(fmt)
    else:
        a = vectors.corners(fmt)
    if len(a) < n:
        a = np.concatenate([a, vectors.random_bits(fmt, n - len(a), rng)])
    return rng.permutation(a)


def _binary_operands(unit, fmt, n, rng, exhaustive):
    """(a, b) operand arrays: all pairs when exhaustive, else all corner pairs, corners against
    random operands, and random pairs (adder-aimed pairs for add/sub), ``n`` in total."""
    if exhaustive:
        a, b = np.meshgrid(_all_patterns(fmt), _all_patterns(fmt), indexing="ij")
        return a.ravel(), b.ravel()
    c = vectors.corners(fmt)
    ca, cb = np.meshgrid(c, c, indexing="ij")
    parts_a, parts_b = [ca.ravel()], [cb.ravel()]
    k = min(n // 10, 4 * len(c) * len(c))
    r = vectors.random_bits(fmt, k, rng)
    cc = rng.choice(c, k)
    swap = rng.random(k) < 0.5
    parts_a.append(np.where(swap, r, cc))
    parts_b.append(np.where(swap, cc, r))
    rest = max(0, n - sum(map(len, parts_a)))
    if unit.name == "fpaddsub":
        ra, rb = vectors.random_pairs(fmt, rest, rng)
    else:
        ra, rb = vectors.random_bits(fmt, rest, rng), vectors.random_bits(fmt, rest, rng)
    parts_a.append(ra)
    parts_b.append(rb)
    a = np.concatenate(parts_a).astype(fmt.dtype)
    b = np.concatenate(parts_b).astype(fmt.dtype)
    order = rng.permutation(len(a))
    return a[order], b[order]


def case_vectors(case, n, *, exhaustive=False, flags=(0, 1)):
    """Stimulus and golden results of a case.

    Parameters
    ----------
    case : Case
    n : int
        Vectors per operation (a flagged unit runs ``n`` with each flag value); ignored when
        ``exhaustive`` (then every operand pair, with each flag value).
    exhaustive : bool
    flags : tuple of int
        Op-select values of a flagged unit to run (e.g. ``(0,)``: additions only).

    Returns
    -------
    dict
        ``stimulus`` and ``expected`` (field dicts or whole-payload arrays) and the field format
        maps ``in_formats``/``out_formats`` for :func:`lightnorm.verif.simulate.run_stream`.
    """
    unit = UNITS[case.unit]
    rng = np.random.default_rng(case.seed)
    fmt = case.fmt
    if unit.kind == "binary":
        a, b = _binary_operands(unit, fmt, n, rng, exhaustive)
        stim = {"a": a, "b": b}
        if unit.flag:
            flag = np.concatenate([np.full(len(a), f, np.uint8) for f in flags])
            order = rng.permutation(len(flag))
            a2 = np.concatenate([a] * len(flags))[order]
            b2 = np.concatenate([b] * len(flags))[order]
            flag = flag[order]
            # Flag 1 gets operands of its own (not the same pairs again) unless exhaustive.
            if not exhaustive:
                b2 = np.where(flag == 1, rng.permutation(b2), b2)
            stim = {"a": a2, "b": b2, unit.flag: flag}
            f0, f1 = (getattr(fp, g) for g in unit.golden)
            expected = np.where(flag == 1, f1(fmt, a2, b2), f0(fmt, a2, b2))
        else:
            expected = getattr(fp, unit.golden[0])(fmt, a, b)
        return {"stimulus": stim, "expected": expected.astype(np.int64),
                "in_formats": {"a": fmt, "b": fmt}, "out_formats": {"": fmt}}
    if unit.kind == "unary":
        a = _unary_operands(fmt, n, rng, exhaustive)
        expected = getattr(fp, unit.golden[0])(fmt, a)
        return {"stimulus": a.astype(np.int64), "expected": expected.astype(np.int64),
                "in_formats": {"": fmt}, "out_formats": {"": fmt}}
    if unit.kind == "convert":
        a = _unary_operands(fmt, n, rng, exhaustive)
        expected = fp.convert(fmt, a, case.other)
        return {"stimulus": a.astype(np.int64), "expected": expected.astype(np.int64),
                "in_formats": {"": fmt}, "out_formats": {"": case.other}}
    from . import bfpvectors
    return bfpvectors.case_vectors(case, n, rng, exhaustive=exhaustive)


def run_case(case, n, *, tag, exhaustive=False, flags=(0, 1), in_pause=0.2, out_pause=0.2,
             burst=3.0):
    """Build the case's component and stream its vectors through the simulator (see
    :func:`lightnorm.verif.simulate.run_stream`); returns the verdict dict.

    ``tag`` names the test family; with the case name it makes the build directory unique, so
    parallel pytest workers never share one.
    """
    component = case.build()
    v = case_vectors(case, n, exhaustive=exhaustive, flags=flags)
    return run_stream(f"{tag}/{case.name}", component, v["stimulus"],
                      v["expected"], in_formats=v["in_formats"], out_formats=v["out_formats"],
                      seed=case.seed, in_pause=in_pause, out_pause=out_pause, burst=burst,
                      toplevel=case.unit)
