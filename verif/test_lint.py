"""Generation and lint in ``make test``: a few generated modules pass Verilator -Wall with the
waivers (and load in Icarus), the manifest matches the components, and the waivers are precise:
a truncating assignment or an undriven wire still fails."""

import json

import pytest

from lightnorm.gen import lint
from lightnorm.gen.__main__ import generate
from lightnorm.verif.simulate import build_root

MODULES = ["fpaddsub_fp16", "fpdiv_e6m5", "bfp_encoder_bfp8x5_fp10_154"]


@pytest.fixture(scope="module")
def generated():
    out = build_root() / "lint-test"
    manifest = generate(out, only=MODULES)
    return out, manifest


def test_generated_modules_lint_clean(generated):
    out, manifest = generated
    assert sorted(m["module"] for m in manifest["modules"]) == sorted(MODULES)
    for m in manifest["modules"]:
        assert lint.lint_file(out / m["file"]) == []


def test_manifest_describes_ports_and_latency(generated):
    out, _ = generated
    manifest = json.loads((out / "manifest.json").read_text())
    add = next(m for m in manifest["modules"] if m["module"] == "fpaddsub_fp16")
    ports = {p["name"]: (p["direction"], p["width"]) for p in add["ports"]}
    assert ports["i__payload"] == ("input", 33) and ports["o__payload"] == ("output", 16)
    assert ports["o__ready"] == ("input", 1) and ports["clk"] == ("input", 1)
    assert add["latency"] == add["stages"]
    assert [f["field"] for f in add["payload"]["i"]] == ["a", "b", "sub"]


@pytest.mark.parametrize("body, rule", [
    ("input [15:0] a; output [7:0] y; assign y = a;", "WIDTHTRUNC"),
    ("output y; wire x; assign y = x;", "UNDRIVEN"),
])
def test_waivers_are_not_blanket(tmp_path, body, rule):
    ports = "a, y" if "input" in body else "y"
    path = tmp_path / "bad.v"
    path.write_text(f"module bad({ports}); {body} endmodule\n")
    problems = lint.lint_file(path)
    assert problems and rule in problems[0]
