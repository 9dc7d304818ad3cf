"""The table of designs ``python -m lightnorm.gen`` writes: one line per unit.

Each :class:`Design` names a unit, how to build it from one format (a FloatFormat, or for the BFP
codecs a ``(BfpFormat, FloatFormat)`` pair) and the formats to build it in.  To add a design (the
BN unit of issue 3, say), append one ``Design(...)`` line to :data:`DESIGNS`.
"""

from dataclasses import dataclass
from typing import Callable

from lightnorm.golden.formats import (FLOAT_PRESETS, FP10_154, FP10_163, FP16, FP32, BF16,
                                      BfpFormat)

__all__ = ["Design", "DESIGNS", "BFP_PRESETS", "STAGES"]

#: Default pipeline depth of the generated units (the regression sweeps others).
STAGES = 2

#: BFP codec variants: LightNorm's group of 8 with the element widths of its two formats, from
#: and to the format each one serves (name -> (BfpFormat, FloatFormat)).
BFP_PRESETS = {
    "bfp8x5_fp10_154": (BfpFormat(8, 5), FP10_154),
    "bfp8x4_fp10_163": (BfpFormat(8, 4), FP10_163),
    "bfp8x8_bf16": (BfpFormat(8, 8), BF16),
    "bfp8x8_fp16": (BfpFormat(8, 8), FP16),
}

#: Conversions between the presets that the BN datapath uses (name -> (src, dst)).
CONVERT_PRESETS = {
    "fp32_to_fp10_154": (FP32, FP10_154), "fp10_154_to_fp32": (FP10_154, FP32),
    "fp32_to_fp10_163": (FP32, FP10_163), "fp10_163_to_fp32": (FP10_163, FP32),
    "fp10_154_to_fp10_154_acc": (FP10_154, FLOAT_PRESETS["fp10_154_acc"]),
    "fp10_154_acc_to_fp10_154": (FLOAT_PRESETS["fp10_154_acc"], FP10_154),
    "fp32_to_fp16": (FP32, FP16), "fp32_to_bf16": (FP32, BF16),
}


@dataclass(frozen=True)
class Design:
    """One unit and the formats it is generated in.

    Parameters
    ----------
    unit : str
        Prefix of the file and module name (``<unit>_<format>``).
    build : callable
        ``build(format, stages) -> wiring.Component``.
    formats : dict
        Format name -> the ``format`` argument of ``build``.
    describe : callable
        ``describe(format) -> dict`` of JSON-able format facts for the manifest.
    """

    unit: str
    build: Callable
    formats: dict
    describe: Callable


def _float(fmt):
    return {"exp_bits": fmt.exp_bits, "man_bits": fmt.man_bits, "subnormals": fmt.subnormals,
            "rounding": fmt.rounding, "width": fmt.width}


def _bfp(pair):
    bfmt, fmt = pair
    return {"bfp": {"group": bfmt.group, "man_bits": bfmt.man_bits, "exp_bits": bfmt.exp_bits,
                    "rounding": bfmt.rounding, "group_width": bfmt.group_width},
            "float": _float(fmt)}


def _convert(pair):
    return {"src": _float(pair[0]), "dst": _float(pair[1])}


def _rtl(module, name):
    # Imported when a design is built, so one unit's import error does not hide the others.
    def build(*args, stages):
        import importlib
        return getattr(importlib.import_module(f"lightnorm.rtl.{module}"), name)(*args,
                                                                                 stages=stages)
    return build


#: Every generated design.  One line each.
DESIGNS = [
    Design("fpaddsub", lambda f, s: _rtl("fpadd", "FPAddSub")(f, stages=s), FLOAT_PRESETS, _float),
    Design("fpmul", lambda f, s: _rtl("fpmul", "FPMul")(f, stages=s), FLOAT_PRESETS, _float),
    Design("fpminmax", lambda f, s: _rtl("fpminmax", "FPMinMax")(f, stages=s), FLOAT_PRESETS,
           _float),
    Design("fpdiv", lambda f, s: _rtl("fpdiv", "FPDiv")(f, stages=s), FLOAT_PRESETS, _float),
    Design("fpsqrt", lambda f, s: _rtl("fpsqrt", "FPSqrt")(f, stages=s), FLOAT_PRESETS, _float),
    Design("fpconvert", lambda p, s: _rtl("fpconvert", "FPConvert")(*p, stages=s),
           CONVERT_PRESETS, _convert),
    Design("bfp_encoder", lambda p, s: _rtl("bfp", "BfpEncoder")(*p, stages=s), BFP_PRESETS, _bfp),
    Design("bfp_decoder", lambda p, s: _rtl("bfp", "BfpDecoder")(*p, stages=s), BFP_PRESETS, _bfp),
]
