"""BN configuration files (golden/configfile.py) and the flows they drive (make ... CONFIG=f.toml).

* the loader: the shipped examples, a round trip of every preset and random configs through
  their TOML text, and genericity (a field added to BNConfig is read without a loader change);
* every class of invalid file gives exit status 2 and one line naming the file, the field, the
  value and what is allowed, from each of the four flows (in process, as a process, and through
  make), and nothing is written under the build directory;
* the flows on the small shipped example (E4M3/E5M2, G = 4, K = 4): Verilog + manifest, the
  golden-vs-RTL regression with a short layer set (and a fault it must catch), bench.
"""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lightnorm.golden import configfile
from lightnorm.golden.bnconfig import BN_PRESETS, BNConfig, LIGHTNORM
from lightnorm.golden.configfile import ConfigFileError, config_toml, load_config, parse_config
from lightnorm.golden.formats import BfpFormat, FloatFormat

from .test_bn import random_config, random_hdl_config, small_config

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
SMALL = EXAMPLES / "fp8_g4k4.toml"


def _toml(text):
    return configfile.tomllib.loads(text)


# -- the loader ---------------------------------------------------------------------------------
def test_examples():
    """The shipped files load; one is a preset with overrides, one is no preset at all."""
    files = sorted(EXAMPLES.glob("*.toml"))
    assert len(files) >= 3, files
    loaded = {f.stem: load_config(f) for f in files}
    assert loaded["lightnorm_g4"].config == small_config(LIGHTNORM, 4, 4)
    assert loaded["lightnorm_g4"].base == "lightnorm"
    assert loaded["lightnorm_g4"].keys == ("lanes", "chunks")
    small = loaded["fp8_g4k4"].config
    assert small not in BN_PRESETS.values()
    assert (small.fwd_fmt, small.bwd_fmt, small.lanes, small.chunks) == (
        FloatFormat(4, 3), FloatFormat(5, 2), 4, 4)
    assert small.x_bfp == BfpFormat(4, 4) and small.dx_bfp == BfpFormat(4, 3)
    tiny = loaded["tiny_g1"].config
    assert (tiny.lanes, tiny.x_bfp, tiny.algorithm) == (1, None, "conventional")
    for cf in loaded.values():
        assert len(cf.sha256) == 64 and cf.manifest()["config"] == cf.config.as_dict()


def _random_configs():
    out = list(BN_PRESETS.values())
    out += [random_hdl_config(seed, (1, 4, 8, 16)[seed % 4]) for seed in range(8)]
    out += [random_config(seed) for seed in range(8)]
    return out


def test_round_trip():
    """config_toml writes every field; parse_config reads it back to an equal BNConfig (FTZ
    formats, plain streams, every rounding, eps = 0 and non-default depths included)."""
    configs = _random_configs()
    assert any(not c.fwd_fmt.subnormals for c in configs)
    assert any(c.x_bfp is None for c in configs) and any(c.eps == 0 for c in configs)
    for cfg in configs:
        text = config_toml(cfg, name="rt")
        assert parse_config(_toml(text), "<rt>").config == cfg, text


def test_formats_and_shorthands():
    """The spellings of formats the docs promise."""
    cfg = parse_config(_toml('''
        fwd_fmt = "e5m4_FTZ"
        bwd_fmt = {exp_bits = 6, man_bits = 3, subnormals = false}
        fwd_acc_fmt = "fp32"
        bwd_acc_fmt = "E8M23_ftz"
        lanes = 2
        x_bfp = {man_bits = 5}
        y_bfp = {group = 2, man_bits = 6, exp_bits = 6}
        dy_bfp = "none"
        eps = 0
    '''), "<s>", name="s").config
    assert cfg.fwd_fmt == FloatFormat(5, 4, subnormals=False, rounding="rtz")
    assert cfg.bwd_fmt == FloatFormat(6, 3, subnormals=False, rounding="rtz")
    assert cfg.fwd_acc_fmt == FloatFormat(8, 23, rounding="rtz")
    assert cfg.x_bfp == BfpFormat(2, 5, rounding="rtz")       # group = lanes
    assert cfg.y_bfp == BfpFormat(2, 6, 6, rounding="rtz")
    assert cfg.dy_bfp is None and cfg.dx_bfp == BfpFormat(2, 4, rounding="rtz")  # followed lanes
    assert cfg.eps == 0.0 and isinstance(cfg.eps, float)
    # A table section works as an inline table; group = the base's lanes when lanes is unset.
    assert parse_config(_toml('[x_bfp]\nman_bits = 3\n'), "<s>", name="s").config.x_bfp == \
        BfpFormat(8, 3, rounding="rtz")
    with pytest.raises(ConfigFileError, match=r"fwd_fmt = \{man_bits = 4\}: FloatFormat needs "
                                              r"exp_bits"):
        parse_config(_toml('fwd_fmt = {man_bits = 4}'), "<s>", name="s")


def test_generic_over_fields(monkeypatch):
    """A field added to BNConfig (any of the supported annotation kinds) is read from a file,
    and rejected with the one-line message, without a change to the loader."""
    @dataclasses.dataclass(frozen=True)
    class Policy:
        mode: str = "fixed"
        bits: int = 8

    @dataclasses.dataclass(frozen=True)
    class Extended(BNConfig):
        policy: Policy = Policy()
        scale: float = 1.0
        enabled: bool = False
        taps: tuple[int, ...] = (1, 2)
        spare: FloatFormat | None = None

    monkeypatch.setattr(configfile, "BNConfig", Extended)
    cfg = parse_config(_toml('policy = {mode = "adaptive", bits = 6}\nscale = 2\nenabled = true'
                             '\ntaps = [3, 4, 5]\nspare = "E4M3"'), "<x>", name="x").config
    assert (cfg.policy, cfg.scale, cfg.enabled, cfg.taps) == (Policy("adaptive", 6), 2.0, True,
                                                             (3, 4, 5))
    assert cfg.spare == FloatFormat(4, 3)
    assert parse_config(_toml(config_toml(cfg)), "<x>", name="x").config == cfg
    for text, needle in (('enabled = 1', 'enabled = 1: must be true or false'),
                         ('taps = 3', 'taps = 3: must be an array'),
                         ('policy = {mode = "a", bit = 2}',
                          'policy = {mode = "a", bit = 2}: Policy has no field \'bit\'; its '
                          'fields are mode, bits')):
        with pytest.raises(ConfigFileError) as exc:
            parse_config(_toml(text), "<x>", name="x")
        assert str(exc.value).startswith("<x>: " + needle), str(exc.value)


def test_variance_field():
    """``variance`` is read like any field: base = "fp32_bn" with variance = "sumsq" is the
    one-pass baseline FP32_BN_SUMSQ; on a range config the line names the field and why."""
    from lightnorm.golden.bnconfig import FP32_BN_SUMSQ
    cf = parse_config(_toml('base = "fp32_bn"\nvariance = "sumsq"\n'), "<v>", name="fp32_sq")
    assert cf.config == FP32_BN_SUMSQ and cf.keys == ("variance",)
    assert 'variance = "sumsq"' in config_toml(cf.config)
    assert parse_config(_toml(config_toml(cf.config)), "<v>", name="v").config == FP32_BN_SUMSQ
    with pytest.raises(ConfigFileError) as exc:
        parse_config(_toml('base = "lightnorm"\nvariance = "sumsq"\n'), "<v>", name="v")
    assert str(exc.value).startswith('<v>: variance = "sumsq": variance \'sumsq\' needs '
                                     "algorithm 'conventional', not 'range'"), str(exc.value)


# -- invalid files ------------------------------------------------------------------------------
#: (id, file text, what the one line must contain besides the file: field, value, allowed).
INVALID = [
    ("unknown-field", 'lane = 4\n', ["lane = 4", "unknown field", "did you mean 'lanes'",
                                      "the fields are base, name, algorithm"]),
    ("wrong-type", 'lanes = "4"\n', ['lanes = "4"', "must be an integer"]),
    ("wrong-type-format", 'fwd_fmt = 5\n', ["fwd_fmt = 5", "must be a format name"]),
    ("out-of-range", 'chunks = 65\n', ["chunks = 65", "chunks must be between 1 and 64, not 65"]),
    ("bad-format", 'fwd_fmt = "E12M3"\n', ['fwd_fmt = "E12M3"', "exp_bits must be between 2 and 11"]),
    ("format-rejected", 'fwd_acc_fmt = "E5M3"\n',
     ['fwd_acc_fmt = "E5M3"', "must hold every value of fwd_fmt"]),
    ("bfp-group", 'lanes = 4\nx_bfp = {group = 8, man_bits = 5}\n',
     ["x_bfp = {group = 8, man_bits = 5}", "x_bfp.group must equal lanes (4), not 8"]),
    ("per-format-rounding", 'fwd_fmt = {exp_bits = 5, man_bits = 4, rounding = "rne"}\n',
     ["fwd_fmt = {", "rounding is set for the whole config by the rounding field"]),
    ("unknown-base", 'base = "lightnrom"\n',
     ['base = "lightnrom"', 'must be one of "lightnorm", "lightnorm_rne", "lightnorm_wide", "fp32_bn"']),
    ("segment-wide", 'base = "lightnorm_wide"\nsum_segment = 8\n',
     ["sum_segment", "needs sum_mode 'exact', not 'wide'"]),
    ("segment-one", 'base = "lightnorm"\nsum_segment = 1\n',
     ["sum_segment", "must be 0 (one adder) or 2..256 bits, not 1"]),
    ("malformed", 'lanes = 4\nchunks =\n', ["not valid TOML", "line 2"]),
    ("missing", None, ["cannot read the configuration file", "No such file"]),
]


def _write(tmp_path, text, stem="cfg"):
    path = tmp_path / f"{stem}.toml"
    if text is not None:
        path.write_text(text)
    return path


def _flows(build):
    """(name, main function, argv) of the four flows, writing under ``build``."""
    from lightnorm.gen.__main__ import main as gen_main
    from lightnorm.synth.__main__ import main as synth_main
    from lightnorm.verif.bench import main as bench_main
    from lightnorm.verif.regress import main as regress_main
    return [("verilog", gen_main, ["--out", str(build / "verilog")]),
            ("synth", synth_main, ["--work", str(build / "synth")]),
            ("bench", bench_main, ["--out", str(build / "bench")]),
            ("test-config", regress_main, ["--out", str(build / "test-config")])]


@pytest.mark.parametrize("case,text,needles", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_file(tmp_path, capsys, case, text, needles):
    """Each flow exits with status 2 and one line on stderr; nothing is written."""
    path = _write(tmp_path, text)
    build = tmp_path / "build"
    for flow, main, argv in _flows(build):
        with pytest.raises(SystemExit) as exc:
            main(["--config", str(path)] + argv)
        assert exc.value.code == 2, flow
        out, err = capsys.readouterr()
        lines = err.splitlines()
        assert len(lines) == 1 and not out, (flow, err, out)
        assert lines[0].startswith(f"{path}: "), lines[0]
        for needle in needles:
            assert needle in lines[0], (flow, needle, lines[0])
        assert not build.exists(), f"{flow} wrote {list(build.rglob('*'))}"


def test_invalid_names(tmp_path):
    """The config name must be a Verilog identifier, and a preset's only for that preset."""
    with pytest.raises(ConfigFileError, match=r'my-cfg.toml: name = "my-cfg": the config name '
                                              r"\(the file name\) must be a letter"):
        load_config(_write(tmp_path, "lanes = 4\n", "my-cfg"))
    assert load_config(_write(tmp_path, 'name = "ok"\n', "my-cfg")).name == "ok"
    with pytest.raises(ConfigFileError, match='name = "lightnorm": the name of a BN preset'):
        load_config(_write(tmp_path, 'rounding = "rne"\n', "lightnorm"))
    assert load_config(_write(tmp_path, 'base = "lightnorm_rne"\n', "lightnorm_rne")
                       ).config == BN_PRESETS["lightnorm_rne"]


def _env():
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
        str(REPO), os.environ.get("PYTHONPATH", "")]))}


def test_invalid_file_process(tmp_path):
    """As processes (python -m ...) the flows exit with status 2, one line on stderr; make
    passes the status through (make adds its own "Error 2" line) and writes nothing either."""
    path = _write(tmp_path, 'lanes = 100\n')
    build = tmp_path / "build"
    want = f"{path}: lanes = 100: lanes must be between 1 and 64, not 100"
    modules = {"verilog": "lightnorm.gen", "synth": "lightnorm.synth",
               "bench": "lightnorm.verif.bench", "test-config": "lightnorm.verif.regress"}
    for flow, _, argv in _flows(build):
        p = subprocess.run([sys.executable, "-m", modules[flow], "--config", str(path)] + argv,
                           capture_output=True, text=True, env=_env(), cwd=tmp_path)
        assert (p.returncode, p.stderr, p.stdout) == (2, want + "\n", ""), flow
        venv = Path(os.path.abspath(sys.executable)).parent.parent
        m = subprocess.run(["make", "--no-print-directory", "-C", str(REPO), flow,
                            f"CONFIG={path}", f"BUILD={build}", f"VENV={venv}",
                            f"-o{venv}/.installed"], capture_output=True, text=True)
        assert m.returncode == 2, (flow, m.stdout, m.stderr)
        err = [line for line in m.stderr.splitlines() if not line.startswith("make")]
        assert err == [want], (flow, m.stderr)
        assert not build.exists(), flow
    m = subprocess.run(["make", "--no-print-directory", "-C", str(REPO), "test-config",
                        f"BUILD={build}", f"VENV={venv}", f"-o{venv}/.installed"],
                       capture_output=True, text=True)
    assert m.returncode == 2 and "set CONFIG=path.toml" in m.stderr
    assert not build.exists()


def test_synth_plumbing(tmp_path, capsys):
    """make synth CONFIG=...: the one BN design of the file, in <work>/<name>/ (listed, not
    synthesized here: a BN unit takes minutes; docs/api.md's example synthesizes a G = 1
    unit), and the options that do not apply are refused."""
    from lightnorm.synth.__main__ import main
    from lightnorm.synth.area import bn_design
    work = tmp_path / "synth"
    assert main(["--config", str(SMALL), "--work", str(work), "--list"]) == 0
    out = capsys.readouterr().out.split()
    assert out[:4] == ["bn_fp8_g4k4", "bn", "BNUnit", "fp8_g4k4"] and out[-1] == str(
        work / "fp8_g4k4")
    design = bn_design(load_config(SMALL).config, "fp8_g4k4")
    assert design.build.args == (load_config(SMALL).config,)   # BNUnit(cfg), built by the flow
    for extra in (["--out", str(tmp_path / "r")], ["--collect"], ["--only", "bn_other"]):
        with pytest.raises(SystemExit) as exc:
            main(["--config", str(SMALL), "--work", str(work)] + extra)
        assert exc.value.code == 2
    assert not work.exists()


# -- the flows on the shipped examples ----------------------------------------------------------
def test_example_verilog(tmp_path):
    """make verilog CONFIG=examples/tiny_g1.toml, in process: the Verilog and its manifest
    entry (the G = 1 example: 2 s of CPU; the G = 4 one is converted by the regression below,
    the docs/api.md example converts the same G = 1 unit through generate_bn)."""
    from lightnorm.gen.__main__ import main as gen_main
    path = EXAMPLES / "tiny_g1.toml"
    source = load_config(path)
    assert gen_main(["--config", str(path), "--out", str(tmp_path / "verilog")]) == 0
    out = tmp_path / "verilog" / "tiny_g1"
    assert sorted(p.name for p in (tmp_path / "verilog").rglob("*")) == [
        "bn_tiny_g1.v", "manifest.json", "tiny_g1"]
    manifest = json.loads((out / "manifest.json").read_text())
    entry, = manifest["modules"]
    assert entry["module"] == "bn_tiny_g1" and (out / entry["file"]).is_file()
    assert "module bn_tiny_g1(" in (out / entry["file"]).read_text()
    assert manifest["config"]["sha256"] == source.sha256
    assert manifest["config"]["config"] == source.config.as_dict()
    assert parse_config(_toml(manifest["config"]["toml"]), "<m>", name="m").config == \
        source.config
    assert entry["formats"]["lanes"] == 1 and entry["cycles"]["modes"]["forward"]["formula"]
    widths = {p["name"]: p["width"] for p in entry["ports"]}
    assert widths["din__payload"] == source.config.din_width


@pytest.mark.sim
def test_small_example_regression(tmp_path, monkeypatch):
    """make test-config / bench CONFIG=examples/fp8_g4k4.toml, in process: the regression
    (golden vs RTL, random layers with m up to 64, with and without pauses), a fault it must
    report, and bench on the same simulator build (about 60 s of CPU with a cold build)."""
    from lightnorm.verif import bench, regress
    from lightnorm.verif import test_bn as tbn

    assert regress.main(["--config", str(SMALL), "--m", "64",
                         "--out", str(tmp_path / "test-config")]) == 0
    result = json.loads((tmp_path / "test-config" / "fp8_g4k4" / "result.json").read_text())
    run, = result["runs"]
    assert result["passed"] and run["commands"] == 15 and max(
        layer["shape"][0] * layer["shape"][3] for layer in run["layers"]) == 64
    assert (tmp_path / "test-config" / "fp8_g4k4" / "manifest.json").is_file()

    # The regression can fail: one flipped dout bit of the golden beats is reported.
    real = tbn.commands_for

    def faulty(cfg, rng, shape, kind, modes):
        cmds = real(cfg, rng, shape, kind, modes)
        cmds[0]["dout"][3] ^= 1
        return cmds
    monkeypatch.setattr(tbn, "commands_for", faulty)
    assert regress.main(["--config", str(SMALL), "--m", "8",
                         "--out", str(tmp_path / "bad")]) == 1
    bad = json.loads((tmp_path / "bad" / "fp8_g4k4" / "result.json").read_text())
    assert not bad["passed"] and "dout beat 3: expected" in bad["error"]
    monkeypatch.setattr(tbn, "commands_for", real)

    assert bench.main(["--config", str(SMALL), "--m", "16", "--out",
                       str(tmp_path / "bench")]) == 0
    res = json.loads((tmp_path / "bench" / "fp8_g4k4" / "bench.json").read_text())
    assert res["problems"] == [] and [r["m"] for r in res["results"][0]["rows"]] == [16] * 3
    assert (tmp_path / "bench" / "fp8_g4k4" / "manifest.json").is_file()
