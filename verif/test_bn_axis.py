"""The BN unit's AXI4-Stream top level (:mod:`lightnorm.rtl.bn.axis`) in an HDL simulator.

The design under test is exactly what ``make verilog`` writes for a preset, for a small config:
the unit's Verilog (module ``bn_unit``) and the wrapper instantiating it (module ``bn_axis``),
built together with ``SIM`` (verilator or icarus) under ``$LIGHTNORM_BUILD/sim/<sim>/axis_<name>/``
(kept while the config and the ``rtl/`` sources are unchanged).  :mod:`lightnorm.verif.tb_bn_axis`
drives ``cmd``/``din`` with cocotbext-axi's ``AxiStreamSource`` and takes ``dout``/``res`` with
``AxiStreamSink``, with pause generators on all four streams, and checks every output beat
against the golden beats of :mod:`lightnorm.golden.bn` and every frame end (``tlast``) against
the rules of docs/interface.md: ``dout`` frames of m beats (one command), ``res`` frames of G beats
(one training command), nothing else on any other output stream.
"""

import time
from pathlib import Path

import numpy as np
import pytest

from lightnorm.golden.bnconfig import BN_PRESETS

from .simulate import _runner, _safe, _write_if_changed, build_root, simulator
from .test_bn import (_icarus_time_zero, _rtl_key, _verilator_waivers, build_model, commands_for,
                      run_model, small_config)

_REPO = Path(__file__).resolve().parent.parent
CORE, TOP = "bn_unit", "bn_axis"


class _TopPublicVerilator:
    """Mix-in for the Verilator runner: VPI access to the top module's own signals only.

    Like ``test_bn._PortsOnlyVerilator``: cocotb's ``--public-flat-rw`` would make every signal
    of the unit public (most of the generated C++ and its compile time); the wrapper's own
    module holds just its ports and wires, so all of it is made public and nothing below.
    """

    def _build_command(self):
        cmds = super()._build_command()
        verilate = cmds[0]
        if "--public-flat-rw" in verilate:
            vlt = Path(self.build_dir) / "ports_public.vlt"
            _write_if_changed(vlt, "`verilator_config\n"
                              f'public_flat_rw -module "{self.hdl_toplevel}" -var "*"\n')
            verilate[verilate.index("--public-flat-rw")] = str(vlt)
        return cmds


def build_axis(cfg, name):
    """Verilog (unit + wrapper) and simulator build of ``BNAxis(cfg)``.

    Returns ``(runner, build_dir, streams)``, ``streams`` the wrapper's
    :class:`~lightnorm.rtl.bn.axis.AxisStream` list.  Step times go to ``build_times.json``.
    """
    from lightnorm.rtl.bn import BNUnit
    from lightnorm.rtl.bn.axis import BNAxis, bn_axis_streams
    from .simulate import verilog_of
    sim = simulator()
    build_dir = build_root() / "sim" / sim / _safe(f"axis_{name}")
    build_dir.mkdir(parents=True, exist_ok=True)
    core_v, top_v, stamp = build_dir / f"{CORE}.v", build_dir / f"{TOP}.v", build_dir / "rtl.key"
    key = _rtl_key(cfg)
    times = {"convert_s": 0.0}
    if not (core_v.exists() and top_v.exists() and stamp.exists() and stamp.read_text() == key):
        start = time.perf_counter()
        texts = [verilog_of(BNUnit(cfg), CORE), verilog_of(BNAxis(cfg, CORE), TOP)]
        if sim == "icarus":
            texts = [_icarus_time_zero(t) for t in texts]
        for path, text in zip((core_v, top_v), texts):
            _write_if_changed(path, text)
        stamp.write_text(key)
        times["convert_s"] = time.perf_counter() - start
    base = _runner(sim)
    runner = type("AxisVerilator", (_TopPublicVerilator, type(base)), {})() \
        if sim == "verilator" else base
    sources = [core_v, top_v] if sim != "verilator" else [_verilator_waivers(), core_v, top_v]
    build_model(runner, sources, TOP, build_dir, name, sim, times)
    return runner, build_dir, bn_axis_streams(cfg)


def _cut(beats, size):
    beats = [int(b) for b in beats]
    if size <= 0 or len(beats) % size:
        raise ValueError(f"{len(beats)} beats do not split into frames of {size}")
    return [beats[k:k + size] for k in range(0, len(beats), size)]


def axis_phase(cfg, commands, streams, pause, *, scramble=None, burst=3.0):
    """One testbench phase: frames per input stream, expected frames per output stream.

    Frames follow docs/interface.md: per command (channel group) one ``cmd`` frame (header + G
    lanes), one ``din`` frame (passes x m beats), one ``dout`` frame (m beats) and, for a
    training command, one ``res`` frame (G beats).  An output stream the BN beats do not name
    (a stream added to the unit later) is expected to stay silent.  ``scramble`` (a NumPy
    Generator) re-cuts the input frames at random points and fills the padding bits of
    ``tdata`` with random bits: the unit must ignore input ``tlast`` and padding.
    """
    from .bntiming import cycle_model, layer_cycles
    G = cfg.lanes
    model = cycle_model(cfg)
    frames = {s.name: [] for s in streams if s.direction == "in"}
    expected = {s.name: [] for s in streams if s.direction == "out"}
    cmds = []
    for c in commands:
        ng, m, passes = c["groups"], c["m"], c["passes"]
        frames["cmd"] += _cut(c["cmd"], G + 1)
        frames["din"] += _cut(c["din"], passes * m)
        expected["dout"] += _cut(c["dout"], m)
        if len(c["res"]):
            expected["res"] += _cut(c["res"], G)
        cmds.append({"mode": c["mode"], "m": m, "groups": ng, "cmd_beats": ng * (G + 1),
                     "dout_beats": ng * m, "cycles": layer_cycles(model, c["mode"], m, ng)})
    if scramble is not None:
        for s in streams:
            if s.direction != "in":
                continue
            flat = [b for f in frames[s.name] for b in f]
            pad = s.tdata_width - s.width
            if pad:
                flat = [b | int(scramble.integers(0, 1 << pad)) << s.width for b in flat]
            recut, k = [], 0
            while k < len(flat):
                n = int(scramble.integers(1, 2 * G + 8))
                recut.append(flat[k:k + n])
                k += n
            frames[s.name] = recut
    beats = sum(len(f) for v in frames.values() for f in v)
    return {"pause": pause, "burst": burst, "frames": frames, "expected": expected,
            "commands": cmds, "scrambled": scramble is not None,
            "max_cycles": int(beats * (4 if pause else 1.5)) + 4000 * len(commands) + 10000}


def run_axis(cfg, name, phases, seed=1):
    """Build (cached) and run the phases; returns the verdict, raises listing the errors."""
    runner, build_dir, streams = build_axis(cfg, name)
    verdict = run_model(runner, build_dir, name, "lightnorm.verif.tb_bn_axis", TOP, {
        "phases": phases, "seed": seed,
        "streams": [{"name": s.name, "direction": s.direction} for s in streams]})
    if not verdict["passed"]:
        errors = [f"phase {k} (pause {p['pause']}): {e}" for k, p in enumerate(verdict["phases"])
                  for e in p["errors"]]
        raise AssertionError(f"{name} ({simulator()}, {build_dir}):\n" + "\n".join(errors[:30]))
    return verdict


def _summary(verdict):
    return [f"pause {p['pause']}: {p['cycles']} cycles, frames {p['frames']}; " + ", ".join(
        f"{c['mode']} m={c['m']}x{c['groups']}: {c.get('measured')} (model {c['cycles']})"
        for c in p["commands"]) for p in verdict["phases"]]


def _small_commands(cfg, seed):
    rng = np.random.default_rng(seed)
    commands = []
    for shape, kind in (((2, 3, 2, 4), "normal"), ((1, 2, 4, 5), "const")):
        commands += commands_for(cfg, rng, shape, kind, ("forward", "backward", "inference"))
    return commands


@pytest.mark.sim
def test_bn_axis_small():
    """LightNorm at G = 2, K = 2 through the AXI4-Stream top: forward, backward and inference of
    two layers (C = 3: a padded group), pause-free (cycles = the unit's cycle model), with 30 %
    pauses on all four streams, and with 10 % pauses and input frames cut at random with junk
    in tdata's padding bits (input tlast and padding ignored); an aresetn pulse before each
    phase (the last one a single cycle long).
    Then wrong expectations must be reported: a data bit of dout and of res, a dout frame end
    one beat early, and a missing dout frame."""
    cfg = small_config(BN_PRESETS["lightnorm"], 2, 2)
    commands = _small_commands(cfg, 11)
    from lightnorm.rtl.bn.axis import bn_axis_streams
    streams = bn_axis_streams(cfg)
    phases = [axis_phase(cfg, commands, streams, 0.0),
              axis_phase(cfg, commands, streams, 0.3),
              axis_phase(cfg, commands, streams, 0.1, scramble=np.random.default_rng(5))]
    phases[2]["reset_cycles"] = 1           # one cycle of aresetn is enough (docs)
    verdict = run_axis(cfg, "lightnorm_g2k2", phases)
    print("\n".join(_summary(verdict)))
    assert verdict["phases"][0]["frames"]["dout"] == sum(c["groups"] for c in commands)

    # The checks can fail: each wrong expectation is reported by stream, frame and beat.
    bad = axis_phase(cfg, commands, streams, 0.2)
    dout, res = bad["expected"]["dout"], bad["expected"]["res"]
    dout[1][2] ^= 1
    res[0][1] ^= 1 << (cfg.const_width + 2)
    dout[3].append(dout[4].pop(0))         # frame 3 expected one beat longer: tlast "early"
    dout.pop()
    with pytest.raises(AssertionError) as caught:
        run_axis(cfg, "lightnorm_g2k2", [bad])
    message = str(caught.value)
    m0 = len(dout[0])
    for expected in (f"dout beat {m0 + 2} (frame 1, beat 2): expected",
                     "res beat 1 (frame 0, beat 1): expected",
                     f"dout frame 3: tlast on its beat {m0 - 1}, expected on beat {m0}",
                     "duplicated or spurious beats"):
        assert expected in message, f"{expected!r} not reported:\n{message}"


@pytest.mark.sim
@pytest.mark.long
@pytest.mark.parametrize("preset", ["lightnorm"])
def test_bn_axis_preset(preset):
    """A preset at full size (G = 8, K = 8) through the AXI4-Stream top: three layers (C not a
    multiple of 8, constant channels, Inf/NaN), pause-free and with 30 % pauses."""
    from .test_bn import LAYERS
    from lightnorm.rtl.bn.axis import bn_axis_streams
    cfg = BN_PRESETS[preset]
    rng = np.random.default_rng(7)
    commands = []
    for shape, kind, modes in (LAYERS[0], LAYERS[2], LAYERS[-1]):
        commands += commands_for(cfg, rng, shape, kind, modes)
    streams = bn_axis_streams(cfg)
    verdict = run_axis(cfg, preset, [axis_phase(cfg, commands, streams, 0.0),
                                     axis_phase(cfg, commands, streams, 0.3)])
    print("\n".join(_summary(verdict)))


class _Port:
    """A stand-in for a cocotb signal handle (``.value``) in :func:`test_axis_watch`."""

    def __init__(self, width):
        self.width = width
        self.set(0)

    def set(self, v):
        from cocotb.types import Logic, LogicArray
        self.value = Logic(v) if self.width == 1 else LogicArray.from_unsigned(v, self.width)


def test_axis_watch():
    """The per-cycle protocol check of tb_bn_axis catches what it is for, without a simulator:
    an output's tvalid falling, its tdata or tlast changing while a beat is held; an input
    changing while held is the source's business, and a clean hold-then-take passes."""
    from types import SimpleNamespace
    from .tb_bn_axis import AxisWatch
    dut = SimpleNamespace(aresetn=_Port(1))
    for name in ("din", "dout"):
        for k, w in (("tvalid", 1), ("tready", 1), ("tdata", 8), ("tlast", 1)):
            setattr(dut, f"{name}_{k}", _Port(w))
    dut.aresetn.set(1)
    watch = AxisWatch(dut, [{"name": "din", "direction": "in"},
                            {"name": "dout", "direction": "out"}])

    def cycle(stream, valid, ready, data, last):
        """One cycle with ``stream`` as given and the other stream idle."""
        for name in ("din", "dout"):
            values = (valid, ready, data, last) if name == stream else (0, 0, 0, 0)
            for k, v in zip(("tvalid", "tready", "tdata", "tlast"), values):
                getattr(dut, f"{name}_{k}").set(v)
        watch.sample()

    cycle("dout", 1, 0, 0x5a, 0)      # held ...
    cycle("dout", 1, 1, 0x5a, 0)      # ... and taken unchanged: fine
    cycle("din", 1, 0, 1, 0)
    cycle("din", 1, 1, 2, 1)          # an input's changes are not checked
    assert watch.errors == [], watch.errors
    assert watch.beats == {"din": [(2, 1)], "dout": [(0x5a, 0)]}
    assert watch.cycles == {"din": [3], "dout": [1]}
    for fault, expected in (((0, 0, 0x5a, 0), "dout_tvalid fell while beat (0x5a, 0) was held"),
                            ((1, 1, 0x5b, 0), "changed from (0x5a, 0) to (0x5b, 0) while held"),
                            ((1, 1, 0x5a, 1), "changed from (0x5a, 0) to (0x5a, 1) while held")):
        watch.restart()
        cycle("dout", 1, 0, 0x5a, 0)
        cycle("dout", *fault)
        assert len(watch.errors) == 1 and expected in watch.errors[0], watch.errors


def test_axis_manifest_and_docs(tmp_path):
    """The manifest entries of the AXIS tops agree with the wrapper's streams, and
    docs/interface.md's mapping table and instantiation template with the manifest (the page
    cannot go stale silently).  Converts only the wrappers (about a second each)."""
    import re
    from lightnorm.gen.generate import _bn_axis_entry
    entries = {p: _bn_axis_entry(p, tmp_path) for p in BN_PRESETS}
    for preset, entry in entries.items():
        ports = {p["name"]: (p["direction"], p["width"]) for p in entry["ports"]}
        want = {"aclk": ("input", 1), "aresetn": ("input", 1)}
        for s in entry["streams"]:
            into, back = ("input", "output") if s["direction"] == "input" else ("output",
                                                                                 "input")
            want.update({f"{s['stream']}_tdata": (into, s["tdata_width"]),
                         f"{s['stream']}_tvalid": (into, 1), f"{s['stream']}_tlast": (into, 1),
                         f"{s['stream']}_tready": (back, 1)})
            assert s["tdata_width"] % 8 == 0 and 0 <= s["tdata_width"] - s["payload_width"] < 8
        assert ports == want, preset
        assert [s["stream"] for s in entry["streams"]] == ["cmd", "din", "dout", "res", "err"]
        assert entry["core"] == f"bn_{preset}" and entry["sources"][0] == f"{preset}/bn_{preset}.v"
        text = (tmp_path / entry["file"]).read_text()
        assert f"bn_{preset} core (" in text, "the wrapper instantiates its core by name"

    doc = (_REPO / "docs" / "interface.md").read_text()
    section = doc[doc.index("## AXI4-Stream top level"):]
    template = section[section.index("```verilog"):]
    template = template[:template.index("```\n")]
    lightnorm = {p["name"]: p["width"] for p in entries["lightnorm"]["ports"]}
    named = re.findall(r"^\s*\.(\w+)\s*\(", template, re.M)
    assert sorted(named) == sorted(lightnorm), "template ports differ from the manifest"
    for name, msb in re.findall(r"\.(\w+)\s*\(\w+\),?\s*// \[(\d+):0\]", template):
        assert int(msb) + 1 == lightnorm[name], f"template width of {name}"
    for s in ("cmd", "din", "dout", "res", "err"):
        row = next(line for line in section.splitlines() if line.startswith(f"| `{s}_tdata`"))
        widths = [int(w) for w in re.search(r"\| (\d+) / (\d+) / (\d+) \|", row).groups()]
        assert widths == [next(x["tdata_width"] for x in entries[p]["streams"]
                               if x["stream"] == s) for p in ("lightnorm", "fp32_bn",
                                                              "bf16_bn")], f"table row {s}"


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_axis_generic_over_the_signature(monkeypatch):
    """A stream or plain port added to BNUnit's signature appears on the wrapper without
    edits: an extra output stream gets tlast = 1 on every beat (or its ``<name>_last`` port),
    a plain port passes through; arguments are checked."""
    from amaranth.back import verilog
    from amaranth.lib import stream, wiring
    from amaranth.lib.wiring import In, Out
    from lightnorm.rtl.bn import axis
    cfg = small_config(BN_PRESETS["lightnorm"], 2, 2)
    base = axis._unit_signature(cfg)
    extra = wiring.Signature({**base.members, "err": Out(stream.Signature(8)),
                              "status": Out(3), "mode_in": In(2),
                              "log": Out(stream.Signature(5)), "log_last": Out(1)})
    monkeypatch.setattr(axis, "_unit_signature", lambda c: extra)
    streams = {s.name: s for s in axis.bn_axis_streams(cfg)}
    assert list(streams) == ["cmd", "din", "dout", "res", "err", "log"]
    assert streams["err"].last is None and "every beat" in streams["err"].tlast_rule
    assert streams["log"].last == "log_last" and streams["dout"].last == "dout_last"
    assert streams["cmd"].last is None and "ignored" in streams["cmd"].tlast_rule
    text = verilog.convert(axis.BNAxis(cfg, "bn_core"), name="top", emit_src=False)
    for decl in ("output [7:0] err_tdata;", "input err_tready;", "output err_tlast;",
                 "output [2:0] status;", "input [1:0] mode_in;", "output log_tlast;"):
        assert decl in text, decl
    assert "assign err_tlast = 1'h1;" in text
    assert ".log_last(log_tlast)" in text and ".status(" in text and ".err__ready(" in text

    monkeypatch.undo()
    with pytest.raises(TypeError, match="cfg must be a BNConfig"):
        axis.BNAxis("lightnorm", "bn_core")
    for bad in ("", "3bn", "bn-core", None):
        with pytest.raises(ValueError, match="core must be a Verilog module name"):
            axis.BNAxis(cfg, bad)
    with pytest.raises(TypeError, match="interface that is not a stream"):
        axis.axis_streams(wiring.Signature({"bus": Out(wiring.Signature({"x": Out(1)}))}))
    with pytest.raises(ValueError, match="clash with the wrapper's clock/reset"):
        axis.axis_streams(wiring.Signature({"aclk": In(1)}))
    import gc
    gc.collect()        # the half-built wrappers warn when collected: here, under the filter
