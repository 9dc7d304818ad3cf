"""``python -m lightnorm.verif.bench``: cycles of the BN unit per pass and per layer, measured.

For each BN preset (G = 8, K = 8) the unit is built for the HDL simulator (``SIM``, default
Verilator; the build of ``make test`` is reused when it is current) and one layer per mode and m
is streamed through it, back to back, with no pause on any stream: forward, backward and
inference of a layer of ``--channels`` channels (two channel groups by default) and m = N*H*W
positions, for every m of ``--m``.  Every dout and res beat is still checked bit for bit against
the golden model.

The table gives, per preset, mode and m, the measured cycles of one channel group (header
accepted -> last dout beat) and of the layer, the streaming floor (din beats: 2m for the
LightNorm forward, 3m for the conventional forward, 2m backward, m inference, per group), the
overhead over the floor in cycles and in %, and the cycles each pass took (first to last din
beat: m when the pass sustains one beat per cycle).  The simulation speed is the simulation's
wall time only (the build is timed separately).

The script asserts that every measured count equals the cycle model the docs state
(docs/interface.md, :mod:`lightnorm.verif.bntiming`, whose terms are read from the component)
and that every pass took exactly m cycles; a mismatch fails the run.

Writes ``<out>/bench.json`` (everything) and ``<out>/bench.md`` (the tables).

With ``--config FILE`` (``make bench CONFIG=FILE``) the unit of that configuration file is
measured instead of the presets (docs/configuration.md): m defaults to the values above that
fit the config (2K <= m <= max_m for range BN), the layer to two channel groups (2G channels),
and the outputs go to ``<out>/<name>/`` with a ``manifest.json``; the simulator build is the
one of ``make test-config`` (:func:`lightnorm.verif.regress.sim_name`).  An invalid file exits
with status 2 and one line on stderr, before anything is written.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from lightnorm.golden.bnconfig import BN_PRESETS

from .bntiming import cycle_model, group_cycles, layer_cycles, floor_beats

__all__ = ["bench_preset", "bench_config", "check_against_model", "markdown", "main"]

MODES = ("forward", "backward", "inference")


def bench_preset(preset, ms, channels, seed=0):
    """Build ``preset`` and stream one layer per (m, mode) without pauses.

    Returns
    -------
    dict
        ``preset``, ``model`` (:func:`cycle_model`), ``build`` (times), ``sim`` (cycles,
        beats, wall seconds of the simulation only) and ``rows`` (one per m and mode).
    """
    if preset not in BN_PRESETS:
        raise ValueError(f"preset must be one of {sorted(BN_PRESETS)}, not {preset!r}")
    return bench_config(BN_PRESETS[preset], preset, ms, channels, seed)


def bench_config(cfg, name, ms, channels, seed=0, *, build_name=None):
    """:func:`bench_preset` for any BNConfig ``cfg``, reported as ``name`` (the ``preset``
    key of the result); ``build_name`` names the simulator build (default ``name``)."""
    from . import test_bn as tbn

    preset = name
    model = cycle_model(cfg)
    start = time.perf_counter()
    _, build_dir = tbn.build_bn(cfg, build_name or name)
    build = {"total_s": time.perf_counter() - start,
             **json.loads((build_dir / "build_times.json").read_text())}
    rng = np.random.default_rng(seed)
    commands = []
    for m in ms:
        # N = 1, H = 1, W = m: the layer's shape matters only through m.
        commands += tbn.commands_for(cfg, rng, (1, channels, 1, m), "normal", MODES)
    phase = tbn.make_phase(cfg, commands, 0.0)
    verdict = tbn.run_bn(cfg, build_name or name, [phase], seed=seed)
    ph = verdict["phases"][0]
    rows = []
    for c in ph["commands"]:
        g0 = c["groups_detail"][0]
        passes = [last - first + 1 for first, last in g0["passes"]]
        gaps = [g0["passes"][0][0]] + [g0["passes"][k][0] - g0["passes"][k - 1][1] - 1
                                       for k in range(1, len(passes))]
        floor_g = floor_beats(model, c["mode"], c["m"])
        rows.append({
            "mode": c["mode"], "m": c["m"], "groups": c["groups"],
            "group_cycles": g0["cycles"], "group_floor": floor_g,
            "overhead": g0["cycles"] - floor_g,
            "overhead_pct": 100.0 * (g0["cycles"] - floor_g) / floor_g,
            "layer_cycles": c["cycles"], "layer_floor": c["floor"],
            "layer_overhead_pct": 100.0 * (c["cycles"] - c["floor"]) / c["floor"],
            "pass_cycles": passes, "before_pass": gaps,
            "all_groups_cycles": [g["cycles"] for g in c["groups_detail"]],
        })
    sim = {"cycles": ph["cycles"], "beats": ph["beats"], "wall_s": ph["wall_s"],
           "cycles_per_s": ph["cycles"] / ph["wall_s"], "beats_per_s": ph["beats"] / ph["wall_s"]}
    return {"preset": preset, "config": cfg.as_dict(), "model": model, "build": build,
            "sim": sim, "rows": rows}


def check_against_model(result):
    """Messages for every measured count that differs from the cycle model (empty: all equal)."""
    model, bad = result["model"], []
    for r in result["rows"]:
        mode, m, ng = r["mode"], r["m"], r["groups"]
        where = f"{result['preset']} {mode} m={m}"
        want = group_cycles(model, mode, m)
        for g, got in enumerate(r["all_groups_cycles"]):
            if got != want:
                bad.append(f"{where} group {g}: {got} cycles, model "
                           f"{model['modes'][mode]['formula']} = {want}")
        if r["layer_cycles"] != layer_cycles(model, mode, m, ng):
            bad.append(f"{where}: layer {r['layer_cycles']} cycles, model "
                       f"{layer_cycles(model, mode, m, ng)}")
        if any(p != m for p in r["pass_cycles"]):
            bad.append(f"{where}: passes took {r['pass_cycles']} cycles, not m = {m} each")
        want_gaps = [1 + result["config"]["lanes"]] + [
            model["stream_latency"] + p["segment_cycles"]
            for p in model["modes"][mode]["passes"][:-1]]
        if r["before_pass"] != want_gaps:
            bad.append(f"{where}: cycles before each pass {r['before_pass']}, model {want_gaps}")
    return bad


def markdown(results, problems=()):
    """The tables of bench.md (``problems``: differences from the cycle model, listed first)."""
    verdict = ("every count equals the closed form of docs/interface.md." if not problems else
               "MEASURED COUNTS DIFFER FROM THE CLOSED FORM:\n\n" + "\n".join(
                   f"* {p}" for p in problems))
    lines = ["# BN unit: measured cycles (no backpressure)", "",
             "Cycles of one channel group (header accepted -> last dout beat) against the "
             "streaming floor (din beats), the layer (all groups back to back), and the cycles "
             "of each pass (first to last din beat). Measured by "
             f"`python -m lightnorm.verif.bench`; {verdict}", ""]
    lines += ["| preset | mode | m | group cycles | floor | overhead | overhead % | "
              "layer cycles (groups) | per pass |", "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for res in results:
        for r in res["rows"]:
            lines.append(f"| {res['preset']} | {r['mode']} | {r['m']} | {r['group_cycles']} | "
                         f"{r['group_floor']} | {r['overhead']} | {r['overhead_pct']:.1f} | "
                         f"{r['layer_cycles']} ({r['groups']}) | "
                         f"{' + '.join(map(str, r['pass_cycles']))} |")
    lines += ["", "Closed forms (from the component: L = stream latency, scalar segments):", "",
              "| preset | L | segments | forward | backward | inference |",
              "|---|---:|---|---|---|---|"]
    for res in results:
        md = res["model"]
        segs = ", ".join(f"{k} {v}" for k, v in md["scalar_cycles"].items())
        lines.append(f"| {res['preset']} | {md['stream_latency']} | {segs} | " + " | ".join(
            md["modes"][mode]["formula"] for mode in MODES) + " |")
    lines += ["", "Simulation speed (wall time of the simulation only; build separate):", "",
              "| preset | sim | cycles | beats (din+dout) | wall s | cycles/s | beats/s | "
              "Verilog s | sim build s |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for res in results:
        s, b = res["sim"], res["build"]
        conv = f"{b['convert_s']:.0f}" if b["convert_s"] else "cached"
        lines.append(f"| {res['preset']} | {res['simulator']} | {s['cycles']} | {s['beats']} | "
                     f"{s['wall_s']:.1f} | {s['cycles_per_s']:.0f} | {s['beats_per_s']:.0f} | "
                     f"{conv} | {b['build_s']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    from .regress import min_m, sim_name
    from .simulate import build_root, simulator
    parser = argparse.ArgumentParser(prog="python -m lightnorm.verif.bench",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=None, help="output directory (default build/bench)")
    parser.add_argument("--presets", nargs="*", default=None,
                        help="BN presets (default: all)")
    parser.add_argument("--config", metavar="FILE",
                        help="measure the unit of this configuration file (TOML) instead; "
                             "outputs in <out>/<name>/")
    parser.add_argument("--m", nargs="*", type=int, default=None,
                        help="positions per channel (default 64 256 1024 4096, those that "
                             "fit the config)")
    parser.add_argument("--channels", type=int, default=None,
                        help="channels per layer (default 2G: two channel groups; 16 for "
                             "the presets)")
    args = parser.parse_args(argv)
    default_ms = [64, 256, 1024, 4096]
    if args.config is not None:
        from lightnorm.golden.configfile import load_config_or_exit
        if args.presets is not None:
            parser.error("--presets and --config exclude each other")
        source = load_config_or_exit(args.config)
        cfg = source.config
        units = [(source.name, cfg, sim_name(source.name))]
        lo, hi = min_m(cfg), cfg.max_m
        ms = args.m if args.m is not None else [m for m in default_ms if lo <= m <= hi] or [lo]
        channels = args.channels if args.channels is not None else 2 * cfg.lanes
    else:
        source = None
        presets = list(BN_PRESETS) if args.presets is None else args.presets
        for p in presets:
            if p not in BN_PRESETS:
                parser.error(f"--presets: {p!r} is not one of {', '.join(BN_PRESETS)}")
        units = [(p, BN_PRESETS[p], p) for p in presets]
        lo = max(min_m(c) for _, c, _ in units)
        hi = min(c.max_m for _, c, _ in units)
        ms = args.m if args.m is not None else default_ms
        channels = args.channels if args.channels is not None else 16
    for m in ms:
        if not lo <= m <= hi:
            parser.error(f"--m: {m} is outside {lo}..{hi} (2K..max_m)")
    if channels < 1:
        parser.error(f"--channels must be >= 1, not {channels}")
    out = Path(args.out) if args.out else build_root() / "bench"
    if source is not None:
        out = out / source.name
    out.mkdir(parents=True, exist_ok=True)
    results, problems = [], []
    for preset, cfg, build_name in units:
        res = bench_config(cfg, preset, ms, channels, build_name=build_name)
        res["simulator"] = simulator()
        results.append(res)
        problems += check_against_model(res)
        s = res["sim"]
        print(f"{preset}: build {res['build']['total_s']:.0f} s, simulation "
              f"{s['cycles']} cycles in {s['wall_s']:.1f} s ({s['cycles_per_s']:.0f} cycles/s, "
              f"{s['beats_per_s']:.0f} beats/s)", flush=True)
    (out / "bench.json").write_text(json.dumps({"results": results, "problems": problems},
                                               indent=1))
    text = markdown(results, problems)
    (out / "bench.md").write_text(text)
    if source is not None:
        (out / "manifest.json").write_text(json.dumps({
            "flow": "bench", "config": source.manifest(), "simulator": simulator(),
            "m": ms, "channels": channels, "outputs": ["bench.json", "bench.md"],
            "problems": problems}, indent=1))
    print(text)
    print(f"wrote {out}/bench.json and bench.md")
    if problems:
        print("MEASURED CYCLES DIFFER FROM THE MODEL:\n" + "\n".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
