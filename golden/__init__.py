"""Number formats, the BN configuration and the bit-exact NumPy golden models.

Re-exports the public names of :mod:`.formats` (FloatFormat, BfpFormat, the presets),
:mod:`.bnconfig` (BNConfig, BN_PRESETS), :mod:`.configfile` (BN configuration files) and the
layer-level golden BN model of :mod:`.bn` (``forward``, ``backward``, ``inference`` and their
result classes).  The operator models stay in their modules, whose names would clash here:
``fp.encode`` vs ``bfp.encode``, ``fp.add`` ...

``bn`` is loaded on first use of one of its names: it compiles its fast loops with numba, which
the format and config modules do not need.
"""

import importlib

from . import bnconfig, configfile, formats
from .bnconfig import *          # noqa: F401,F403 - re-exported, listed in __all__
from .configfile import *        # noqa: F401,F403
from .formats import *           # noqa: F401,F403

#: The layer-level API of the golden BN model (lightnorm.golden.bn), loaded on first use.
_BN_NAMES = ("forward", "backward", "inference", "inference_constants", "ForwardResult",
             "BackwardResult",
             "InferenceResult")

__all__ = [*formats.__all__, *bnconfig.__all__, *configfile.__all__, *_BN_NAMES]


def __getattr__(name):
    if name in _BN_NAMES:
        value = getattr(importlib.import_module(".bn", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
