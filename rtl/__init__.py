"""Amaranth RTL of the LightNorm arithmetic units.

Every unit is a :class:`StreamUnit` (a ``wiring.Component``) with stream ports ``i``/``o``, built from a
:class:`~lightnorm.golden.formats.FloatFormat`, with a ``stages`` pipeline depth and a ``latency``
property (docs/conventions.md).  All of them round through the one :class:`RoundPack`.
"""

from .round import RoundPack, Unpack, leading_zeros, shift_right_sticky
from .pipeline import Pipeline, StreamUnit
from .fpadd import FPAddSub
from .fpmul import FPMul
from .fpminmax import FPMinMax
from .fpconvert import FPConvert
from .fpdiv import FPDiv
from .fpsqrt import FPSqrt
from .bfp import BfpEncoder, BfpDecoder

__all__ = [
    "RoundPack", "Unpack", "leading_zeros", "shift_right_sticky", "Pipeline", "StreamUnit",
    "FPAddSub", "FPMul", "FPMinMax", "FPConvert", "FPDiv", "FPSqrt", "BfpEncoder", "BfpDecoder",
]
