"""``python -m lightnorm.verif.regress --config FILE``: the BN regression for one configuration file.

What ``make test-config CONFIG=FILE`` runs: the BN unit of that configuration
(docs/configuration.md) is converted and built for the HDL simulator (``SIM``, default
Verilator) and, for each seed, the random layers of :func:`lightnorm.verif.test_bn.sweep_layers`
(one layer of ``--m`` positions and four small ones, C not a multiple of G, a different mix of
data kinds per seed) stream through it in forward, backward and inference mode, once without
pauses (cycle counts checked against the cycle model of docs/interface.md) and once with random
pauses on all four streams; every dout and res beat is compared bit for bit with the golden
model -- the same checks as ``test_bn_random_hdl``.

Writes ``<out>/<name>/result.json`` (per seed: layers, cycles, verdict) and
``<out>/<name>/manifest.json`` (the configuration file, its resolved config, the simulator
build).  The simulator build is cached in ``$LIGHTNORM_BUILD/sim/<sim>/bn_config_<name>/``
(shared with ``make bench CONFIG=...``, rebuilt when the config or the RTL changes).

Exit status: 0 all beats and cycles match, 1 a mismatch (the first ones on stderr), 2 an
invalid configuration file or option (one line on stderr; nothing written).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["sim_name", "regression_layers", "regress", "main"]

MODES = ("forward", "backward", "inference")


def sim_name(name):
    """Simulator build name of config ``name`` (its own namespace: no clash with the presets
    and sweep configs of test_bn)."""
    return f"config_{name}"


def regression_layers(cfg, seed, big_m):
    """:func:`~lightnorm.verif.test_bn.sweep_layers` of ``cfg``, with every layer's m capped
    at ``cfg.max_m`` (W shortened), so that configs with a small ``max_m`` run too."""
    from .test_bn import sweep_layers
    out = []
    for (n, c, h, w), kind in sweep_layers(cfg, seed, big_m):
        out.append(((n, c, h, min(w, cfg.max_m // (n * h))), kind))
    return out


def min_m(cfg):
    """Smallest m the regression's layers may have (range BN trains on m >= 2K)."""
    return max(8, 2 * cfg.chunks) if cfg.algorithm == "range" else 8


def regress(cfg, name, *, seeds=(0,), big_m=1024, pause=0.25):
    """Run the regression of ``cfg`` (see the module docstring); returns the result dict.

    Raises AssertionError, naming the stream and beat, on any mismatch of beats or cycles.
    """
    from . import test_bn as tbn
    from .simulate import simulator
    if not min_m(cfg) <= big_m <= cfg.max_m:
        raise ValueError(f"big_m must be between {min_m(cfg)} and max_m ({cfg.max_m}), "
                         f"not {big_m}")
    runs = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        layers = regression_layers(cfg, seed, big_m)
        commands = []
        for shape, kind in layers:
            commands += tbn.commands_for(cfg, rng, shape, kind, MODES)
        phases = [tbn.make_phase(cfg, commands, 0.0), tbn.make_phase(cfg, commands, pause)]
        start = time.perf_counter()
        verdict = tbn.run_bn(cfg, sim_name(name), phases, seed=seed)
        problems = tbn.cycle_problems(cfg, verdict)
        if problems:
            raise AssertionError(f"{name} seed {seed}: cycles differ from the model:\n"
                                 + "\n".join(problems))
        runs.append({"seed": seed, "layers": [{"shape": list(s), "kind": k} for s, k in layers],
                     "commands": len(commands),
                     "beats": sum(p["beats"] for p in verdict["phases"]),
                     "cycles": sum(p["cycles"] for p in verdict["phases"]),
                     "wall_s": round(time.perf_counter() - start, 1),
                     "summary": tbn.summary(verdict)})
    return {"name": name, "simulator": simulator(), "big_m": big_m, "pause": pause,
            "passed": True, "runs": runs}


def main(argv=None):
    from lightnorm.golden.configfile import load_config_or_exit
    from .simulate import build_root, simulator
    parser = argparse.ArgumentParser(prog="python -m lightnorm.verif.regress",
                                     description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, metavar="FILE",
                        help="BN configuration file (TOML)")
    parser.add_argument("--out", default=None,
                        help="parent of the output directory (default $LIGHTNORM_BUILD/"
                             "test-config)")
    parser.add_argument("--m", type=int, default=1024,
                        help="positions per channel of the big layer (default 1024)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="random layer sets, one simulator run each (default: 0)")
    parser.add_argument("--pause", type=float, default=0.25,
                        help="pause probability on every stream in the second phase")
    args = parser.parse_args(argv)
    source = load_config_or_exit(args.config)
    cfg = source.config
    if not min_m(cfg) <= args.m <= cfg.max_m:
        parser.error(f"--m must be between {min_m(cfg)} and max_m ({cfg.max_m}) for "
                     f"{args.config}, not {args.m}")
    if not 0.0 <= args.pause < 1.0:
        parser.error(f"--pause must be in [0, 1), not {args.pause}")
    out = Path(args.out) if args.out else build_root() / "test-config"
    out = out / source.name
    start = time.perf_counter()
    try:
        result = regress(cfg, source.name, seeds=args.seeds, big_m=args.m, pause=args.pause)
    except AssertionError as exc:
        out.mkdir(parents=True, exist_ok=True)
        (out / "result.json").write_text(json.dumps({"name": source.name, "passed": False,
                                                     "error": str(exc)}, indent=1))
        print(f"{source.name}: FAILED\n{exc}", file=sys.stderr)
        return 1
    result["elapsed_s"] = round(time.perf_counter() - start, 1)
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(result, indent=1))
    (out / "manifest.json").write_text(json.dumps({
        "flow": "test-config", "config": source.manifest(), "simulator": simulator(),
        "sim_build": str(build_root() / "sim" / simulator() / f"bn_{sim_name(source.name)}"),
        "outputs": ["result.json"]}, indent=1))
    for run in result["runs"]:
        print(f"seed {run['seed']}: {run['commands']} commands, {run['beats']} beats, "
              f"{run['cycles']} cycles in {run['wall_s']} s")
        print("\n".join("  " + line for line in run["summary"]))
    print(f"{source.name}: passed ({simulator()}, {len(args.seeds)} seed(s), "
          f"{result['elapsed_s']:.0f} s); wrote {out}/result.json and manifest.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
