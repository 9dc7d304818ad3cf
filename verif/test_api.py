"""The public API (lightnorm/__init__.py, golden/__init__.py) and the example of docs/api.md."""

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import lightnorm
import lightnorm.golden as golden

REPO = Path(__file__).resolve().parent.parent


def test_top_level_names():
    """Every name of lightnorm.__all__ is the object its home module defines (and lists)."""
    assert {"FloatFormat", "BfpFormat", "BNConfig", "BN_PRESETS", "BNUnit", "forward",
            "backward", "inference", "generate", "generate_bn", "synthesize_bn",
            "load_config"} <= set(lightnorm.__all__)
    for name in lightnorm.__all__:
        home = importlib.import_module(lightnorm._EXPORTS[name])
        assert name in home.__all__, (name, home.__name__)
        assert getattr(lightnorm, name) is getattr(home, name), name
    assert lightnorm.synth is importlib.import_module("lightnorm.synth")
    namespace = {}
    exec("from lightnorm import *", namespace)
    assert set(lightnorm.__all__) <= set(namespace)
    assert set(lightnorm.__all__) <= set(dir(lightnorm))
    try:
        lightnorm.no_such_name
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("lightnorm.no_such_name did not raise AttributeError")


def test_golden_reexports():
    """lightnorm.golden re-exports the public names of formats, bnconfig, configfile and the
    layer-level golden BN model."""
    from lightnorm.golden import bn, bnconfig, configfile, formats
    for module in (formats, bnconfig, configfile):
        for name in module.__all__:
            assert name in golden.__all__ and getattr(golden, name) is getattr(module, name)
    for name in ("forward", "backward", "inference", "ForwardResult", "BackwardResult",
                 "InferenceResult"):
        assert name in golden.__all__ and name in bn.__all__
        assert getattr(golden, name) is getattr(bn, name)
    assert len(golden.__all__) == len(set(golden.__all__))


def test_imports_stay_light():
    """import lightnorm / lightnorm.golden.formats load neither Amaranth nor numba."""
    code = ("import sys, lightnorm, lightnorm.golden.formats, lightnorm.golden.configfile; "
            "print(sorted(m for m in ('amaranth', 'numba') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(REPO)}).stdout
    assert out.strip() == "[]"


def test_docs_example(tmp_path, monkeypatch):
    """The python blocks of docs/api.md run as they are, from a directory holding examples/."""
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "docs" / "api.md").read_text(), re.S)
    assert len(blocks) == 2
    (tmp_path / "examples").symlink_to(REPO / "examples")
    monkeypatch.chdir(tmp_path)
    for k, block in enumerate(blocks):
        exec(compile(block, f"docs/api.md block {k}", "exec"), {"__name__": f"api_{k}"})
    assert (tmp_path / "build/api/verilog/tiny/bn_tiny.v").is_file()
    assert (tmp_path / "build/api/synth/tiny/area.md").is_file()
    assert (tmp_path / "build/verilog/tiny_g1/manifest.json").is_file()
