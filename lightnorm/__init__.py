"""LightNorm batch-normalization hardware generator.

The public, scriptable API (docs/api.md)::

    from lightnorm import FloatFormat, BfpFormat, BNConfig, BN_PRESETS, BNUnit
    from lightnorm import forward, backward, inference        # the golden model, layer level
    from lightnorm import inference_constants                 # the host's a, b for inference
    from lightnorm import generate, generate_bn, synthesize_bn, load_config

Every name of :data:`__all__` is one object defined in a subpackage, which maps to a top-level
folder of the repository: ``lightnorm.golden`` (golden/: number formats, BNConfig, bit-exact
NumPy models, configuration files), ``lightnorm.rtl`` (rtl/: Amaranth components),
``lightnorm.gen`` (gen/: Verilog generation), ``lightnorm.verif`` (verif/: cocotb testbenches),
``lightnorm.synth`` (synth/: Yosys area flow), ``lightnorm.study`` (study/).

The names are loaded on first use (PEP 562): ``import lightnorm.golden.fp`` stays a NumPy-only
import, while ``lightnorm.BNUnit`` imports Amaranth and ``lightnorm.forward`` the golden BN model.
"""

import importlib

#: Public name -> the module that defines it.
_EXPORTS = {
    # number formats
    "FloatFormat": "lightnorm.golden.formats", "BfpFormat": "lightnorm.golden.formats",
    "FLOAT_PRESETS": "lightnorm.golden.formats", "ROUNDING_MODES": "lightnorm.golden.formats",
    # the configuration and its files
    "BNConfig": "lightnorm.golden.bnconfig", "BN_PRESETS": "lightnorm.golden.bnconfig",
    "load_config": "lightnorm.golden.configfile", "parse_config": "lightnorm.golden.configfile",
    "config_toml": "lightnorm.golden.configfile", "ConfigFile": "lightnorm.golden.configfile",
    "ConfigFileError": "lightnorm.golden.configfile",
    # the golden model, layer level
    "forward": "lightnorm.golden.bn", "backward": "lightnorm.golden.bn",
    "inference": "lightnorm.golden.bn", "inference_constants": "lightnorm.golden.bn",
    "ForwardResult": "lightnorm.golden.bn",
    "BackwardResult": "lightnorm.golden.bn", "InferenceResult": "lightnorm.golden.bn",
    # the hardware and its flows
    "BNUnit": "lightnorm.rtl.bn",
    "generate": "lightnorm.gen.generate", "generate_bn": "lightnorm.gen.generate",
    "synthesize_bn": "lightnorm.synth.area",
}

__all__ = list(_EXPORTS)

#: The subpackages: ``lightnorm.golden`` etc. work after a plain ``import lightnorm``.
_SUBPACKAGES = ("golden", "rtl", "gen", "verif", "synth", "study")


def __getattr__(name):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lightnorm' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value          # the next lookup does not come here
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
