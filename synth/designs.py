"""The designs ``make synth`` measures: every unit in each preset format, and the BN presets at G = 8.

A :class:`Design` names one synthesis run and knows how to build its Amaranth component.  The table
is built from whatever RTL exists: a unit whose module is not importable yet (the RTL is written in
parallel with this flow) is listed in :func:`pending` with the reason, and the reports say so
instead of silently leaving it out.

Block names: Amaranth keeps each submodule as a Verilog/RTLIL module, so the flow reports the area
of every top-level submodule instance as a block.  :data:`BN_BLOCKS` are the block names the BN
unit uses; an instance whose name starts with one of them is counted in that block (e.g.
``bfp_enc0`` -> ``bfp``), other instances keep their own name, and the top module's own cells are
the block ``top``.
"""

import argparse
import gc
import importlib
import os
import re
import warnings
from functools import partial
from dataclasses import dataclass, field

from ..golden.formats import FLOAT_PRESETS, FP32

__all__ = [
    "BN_BLOCKS", "TOP_BLOCK", "BN_LANES", "BFP_MAX_MAN", "HEADLINE", "ADDITIONAL_BASELINES",
    "HEADLINE_M",
    "POLICY_FIELDS", "Design", "block_of", "bn_params", "unit_designs", "bn_designs",
    "default_designs", "pending", "select", "flow_parser", "select_or_exit",
]

#: The BN unit's blocks, in report order.
BN_BLOCKS = ("stats", "range", "recip", "normalize", "bfp", "control")

#: Block name for cells that sit directly in the top module (glue logic, handshakes).
TOP_BLOCK = "top"

#: Largest BFP magnitude width in the unit table (reference LightNorm: 3..8 bits per element).
BFP_MAX_MAN = 8

#: Lane count G at which the BN presets are compared.
BN_LANES = 8

#: The headline compares this BN preset against the baselines (keys of bnconfig.BN_PRESETS).
HEADLINE = ("lightnorm", ("fp32_bn", "bf16_bn"))

#: Additional baselines (keys of bnconfig.SUMSQ_PRESETS): the conventional units with the
#: one-pass variance (issue 9, "equal care for the baselines").  They are synthesized with the
#: presets and listed in the headline, which also gives the main preset's ratios against them;
#: the issue's target ratios stay those against HEADLINE's baselines.
ADDITIONAL_BASELINES = ("fp32_bn_sumsq", "bf16_bn_sumsq")

#: Positions per channel m at which the headline counts cycles (forward + backward).
HEADLINE_M = 4096

#: Precision-policy attributes of a BNConfig the report shows when the config has them (a
#: config without them, or with None, uses the accumulator format of the direction): per-element
#: op formats P, PB, per-channel constant formats C, CB, internal sum formats W, WB.
POLICY_FIELDS = ("fwd_op_fmt", "bwd_op_fmt", "fwd_const_fmt", "bwd_const_fmt", "fwd_sum_fmt",
                 "bwd_sum_fmt")


def block_of(instance_name):
    """Block name for a top-level submodule instance name (see the module docstring)."""
    name = instance_name.lstrip("\\")
    for block in BN_BLOCKS:
        if name == block or name.startswith(block + "_") or (
                name.startswith(block) and name[len(block):].isdigit()):
            return block
    return name


@dataclass(frozen=True)
class Design:
    """One synthesis run.

    Parameters
    ----------
    name : str
        Unique name; also the top module name and the build sub-directory.
    group : str
        ``"unit"`` (an arithmetic unit), ``"bn"`` (a BN preset), ``"sweep"`` or ``"test"``.
    unit : str
        Component class name (``FPAddSub``, ``BNUnit``, ...).
    fmt : str
        Format or preset name the report shows.
    build : callable
        Picklable no-argument callable returning the Amaranth component (a ``functools.partial``
        of the class): designs are elaborated in worker processes.
    params : dict
        Extra parameters shown in the report (lanes, group, stages, ...).
    """

    name: str
    group: str
    unit: str
    fmt: str
    build: object = field(compare=False, repr=False)
    params: dict = field(default_factory=dict, compare=False)


# A binary/unary FP unit takes (fmt, *, stages=1); the converter takes the source and destination
# formats; the BFP codecs take the BFP format (group G = 8, magnitude bits = the format's precision
# capped at BFP_MAX_MAN) and the float format.
_FP_UNITS = (
    ("fpadd", "FPAddSub"),
    ("fpmul", "FPMul"),
    ("fpminmax", "FPMinMax"),
    ("fpdiv", "FPDiv"),
    ("fpsqrt", "FPSqrt"),
)

_pending = {}


def _load(module, cls):
    try:
        mod = importlib.import_module(f"lightnorm.rtl.{module}")
        return getattr(mod, cls)
    except Exception as exc:  # noqa: BLE001 - RTL in progress may fail to import in any way
        _pending[cls] = f"lightnorm.rtl.{module}.{cls} not importable ({exc.__class__.__name__}: {exc})"
        return None


def unit_designs(formats=None, *, stages=1):
    """Designs for every available unit in each format of ``formats`` (default: FLOAT_PRESETS).

    Parameters
    ----------
    formats : dict of str -> FloatFormat, optional
    stages : int
        Pipeline depth passed to every unit.
    """
    formats = FLOAT_PRESETS if formats is None else formats
    out = []
    for module, cls_name in _FP_UNITS:
        cls = _load(module, cls_name)
        if cls is None:
            continue
        for fname, fmt in formats.items():
            out.append(Design(f"{cls_name.lower()}_{fname}", "unit", cls_name, fname,
                              partial(cls, fmt, stages=stages),
                              {"stages": stages}))
    conv = _load("fpconvert", "FPConvert")
    if conv is not None:
        # The cast the BN datapath performs: FP32 in, the preset format out (and back for fp32
        # itself there is nothing to convert).
        for fname, fmt in formats.items():
            if fmt == FP32:
                continue
            out.append(Design(f"fpconvert_fp32_{fname}", "unit", "FPConvert", f"fp32->{fname}",
                              partial(conv, FP32, fmt, stages=stages),
                              {"stages": stages}))
    for cls_name in ("BfpEncoder", "BfpDecoder"):
        cls = _load("bfp", cls_name)
        if cls is None:
            continue
        from ..golden.formats import BfpFormat
        for fname, fmt in formats.items():
            # Magnitude bits: the element precision, capped at 8 (the largest BFP mantissa of
            # the reference LightNorm settings, 3..8); the BN presets use p = 5 and 4.
            bfmt = BfpFormat(BN_LANES, max(2, min(fmt.precision, BFP_MAX_MAN)))
            out.append(Design(f"{cls_name.lower()}_{fname}", "unit", cls_name,
                              f"{fname}/{bfmt.name}",
                              partial(cls, bfmt, fmt, stages=stages),
                              {"stages": stages, "bfp": bfmt.name}))
    return out


#: Where the BN unit may live and what it may be called (the RTL lands in parallel with this flow).
_BN_CANDIDATES = (("lightnorm.rtl.bn", "BNUnit"), ("lightnorm.rtl.bn.unit", "BNUnit"),
                  ("lightnorm.rtl.bn.top", "BNUnit"), ("lightnorm.rtl.bn", "BatchNorm"))


def _bn_unit():
    errors = []
    for module, cls in _BN_CANDIDATES:
        try:
            return getattr(importlib.import_module(module), cls)
        except Exception as exc:  # noqa: BLE001 - see _load
            errors.append(f"{module}.{cls}: {exc.__class__.__name__}")
    _pending["BNUnit"] = "BN unit not importable (" + "; ".join(errors) + ")"
    return None


def _cycles(cfg, m=HEADLINE_M):
    # The cycle model is read from the component (verif/bntiming.py); a failure is recorded in
    # the design's parameters and shown by the report, not dropped.
    from amaranth.hdl import UnusedElaboratable
    error = None
    with warnings.catch_warnings():
        # A unit the model fails to build is never elaborated; collect it inside the filter.
        warnings.simplefilter("ignore", UnusedElaboratable)
        try:
            from ..verif.bntiming import MODES, cycle_model, group_cycles, header_period
            model = cycle_model(cfg)
            modes = {}
            for mode in MODES:
                md = model["modes"][mode]
                modes[mode] = {"formula": md["formula"], "passes": md["m_coeff"],
                               "group_cycles": group_cycles(model, mode, m),
                               "header_period": header_period(model, mode, m)}
        except Exception as exc:  # noqa: BLE001 - RTL in progress may fail in any way
            error = f"{exc.__class__.__name__}: {exc}"
        gc.collect()
    if error is not None:
        return {"m": m, "error": error}
    return {"m": m, "lanes": model["lanes"], "stream_latency": model["stream_latency"],
            "modes": modes}


def bn_params(cfg):
    """The report parameters of the BN unit of ``cfg``: ``lanes``, ``config``
    (``cfg.as_dict()``), ``policy`` (:data:`POLICY_FIELDS` as format names, None where the config
    has no such attribute or leaves it None) and ``cycles`` (the cycle model of
    ``verif/bntiming.py`` at m = :data:`HEADLINE_M`: per mode its formula, ``group_cycles`` and
    ``header_period``; or ``{"error": ...}`` if the model could not be built)."""
    policy = {}
    for name in POLICY_FIELDS:
        v = getattr(cfg, name, None)
        policy[name] = getattr(v, "name", v)
    return {"lanes": cfg.lanes, "config": cfg.as_dict(), "policy": policy, "cycles": _cycles(cfg)}


def bn_designs(lanes=BN_LANES):
    """Designs for every BN preset (``lightnorm.golden.bnconfig.BN_PRESETS``), then the
    additional baselines (:data:`ADDITIONAL_BASELINES`, ``SUMSQ_PRESETS``), at ``lanes`` lanes.

    The BN unit is built as ``BNUnit(config)``; the config carries the lane count, and presets
    whose lane count differs are rebuilt with ``lanes`` (and BFP groups of the same size).
    """
    unit = _bn_unit()
    if unit is None:
        return []
    from ..golden.bnconfig import BN_PRESETS, SUMSQ_PRESETS
    presets = {**BN_PRESETS, **{n: SUMSQ_PRESETS[n] for n in ADDITIONAL_BASELINES}}
    out = []
    for name, cfg in presets.items():
        if cfg.lanes != lanes:
            changes = {"lanes": lanes}
            for f in ("x_bfp", "y_bfp", "dy_bfp", "dx_bfp"):
                if getattr(cfg, f) is not None:
                    changes[f] = getattr(cfg, f).replace(group=lanes)
            cfg = cfg.replace(**changes)
        out.append(Design(f"bn_{name}", "bn", unit.__name__, name, partial(unit, cfg),
                          bn_params(cfg)))
    return out


def default_designs():
    """The set ``make synth`` runs: all units x FLOAT_PRESETS, then the BN presets at G = 8."""
    _pending.clear()
    return unit_designs() + bn_designs()


def pending():
    """Units or presets that could not be built, as {name: reason} (filled by the builders)."""
    return dict(_pending)


def select(table, pattern):
    """The designs of ``table`` whose name matches the regular expression ``pattern`` in full
    (all of them when ``pattern`` is empty or None): the ``--only`` option of the flows.

    Raises ValueError, naming the pattern and the designs, when ``pattern`` is not a regular
    expression or matches none of them: a typo must not run nothing, or something else.
    """
    if not pattern:
        return list(table)
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"--only {pattern!r} is not a regular expression: {exc}") from None
    out = [d for d in table if rx.fullmatch(d.name)]
    if not out:
        raise ValueError(f"--only {pattern!r} matches none of the designs: "
                         + ", ".join(d.name for d in table))
    return out


def _jobs(text):
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {n}")
    return n


def flow_parser(prog, doc, work, what="designs"):
    """The command line the flows share (synth, sweep, fpga): ``--out``, ``--work``, ``--jobs``,
    ``--only`` and ``--list``, with defaults under ``$LIGHTNORM_BUILD`` (``build``)."""
    build = os.environ.get("LIGHTNORM_BUILD", "build")
    ap = argparse.ArgumentParser(prog=prog, description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(build, "reports"),
                    help="report directory (default: %(default)s)")
    ap.add_argument("--work", default=os.path.join(build, work),
                    help="per-design work directories (default: %(default)s)")
    ap.add_argument("--jobs", type=_jobs, default=2,
                    help="designs run in parallel (default: %(default)s)")
    ap.add_argument("--only", metavar="REGEX",
                    help=f"only the {what} whose name matches this regular expression in full")
    ap.add_argument("--list", action="store_true", help=f"list the {what} and exit")
    return ap


def select_or_exit(ap, table, pattern):
    """:func:`select`, with its errors reported as usage errors of ``ap`` (exit status 2)."""
    try:
        return select(table, pattern)
    except ValueError as exc:
        ap.error(str(exc))
