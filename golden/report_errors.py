"""Error of the BN golden model versus float64, per preset: ``python -m lightnorm.golden.report_errors``.

Standard inputs (deterministic, ``numpy.random.default_rng(seed)``, seed 0 by default), drawn
in this order:

* x: shape (N, C, H, W) = (8, 32, 16, 16), i.e. m = 2048 positions per channel, C = 32
  channels (4 groups of 8 lanes); x = 0.5 + 2 * N(0, 1);
* dy: same shape, N(0, 1);
* gamma: U(0.5, 1.5) per channel; beta: N(0, 0.5^2) per channel.

Each preset's bit-exact model (:mod:`lightnorm.golden.bn`, forward then backward) is compared
with two float64 references (:mod:`lightnorm.golden.reference`):

* ``same``: the same algorithm in float64 (range BN with the preset's K and gradient form for
  the LightNorm presets, BatchNorm2d for the conventional ones): the error of the arithmetic
  (formats, BFP, rounding, accumulation order) alone;
* ``bn``: PyTorch BatchNorm2d semantics in float64: the end-to-end deviation a user sees,
  including range BN's different sigma and gradient.

Metrics per output (y, dx, dgamma, dbeta): relative RMS ``||g - r||_2 / ||r||_2`` and relative
max ``max|g - r| / max|r|``.  Prints a Markdown table and writes JSON (default
``build/reports/bn_errors.json``).
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from . import bn, reference as ref
from .bnconfig import BN_PRESETS

__all__ = ["standard_inputs", "errors", "measure", "markdown", "main"]

OUTPUTS = ("y", "dx", "dgamma", "dbeta")


def standard_inputs(shape=(8, 32, 16, 16), seed=0):
    """The documented standard inputs: ``x, dy, gamma, beta`` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = 0.5 + 2.0 * rng.standard_normal(shape)
    dy = rng.standard_normal(shape)
    gamma = rng.uniform(0.5, 1.5, c)
    beta = rng.normal(0.0, 0.5, c)
    return x, dy, gamma, beta


def errors(got, want):
    """Relative RMS and relative max error of ``got`` against ``want`` (float64 arrays)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    e = got - want
    return {"rel_rms": float(np.sqrt(np.mean(e ** 2) / np.mean(want ** 2))),
            "rel_max": float(np.max(np.abs(e)) / np.max(np.abs(want)))}


def measure(cfg, x, dy, gamma, beta):
    """Errors of one config on one input set; returns ``{"same": {...}, "bn": {...}}``."""
    fwd = bn.forward(cfg, x, gamma, beta)
    bwd = bn.backward(cfg, dy, gamma, fwd)
    got = {"y": fwd.y, "dx": bwd.dx, "dgamma": bwd.dgamma, "dbeta": bwd.dbeta}
    y_bn, cache_bn = ref.bn_forward(x, gamma, beta, cfg.eps)
    dx_bn, dg_bn, db_bn = ref.bn_backward(dy, gamma, cache_bn)
    refs = {"bn": dict(zip(OUTPUTS, (y_bn, dx_bn, dg_bn, db_bn)))}
    if cfg.algorithm == "range":
        y_r, cache_r = ref.range_bn_forward(x, gamma, beta, cfg.eps, cfg.chunks)
        dx_r, dg_r, db_r = ref.range_bn_backward(dy, gamma, cache_r, cfg.grad)
        refs["same"] = dict(zip(OUTPUTS, (y_r, dx_r, dg_r, db_r)))
    else:
        refs["same"] = refs["bn"]
    out = {kind: {k: errors(got[k], r[k]) for k in OUTPUTS} for kind, r in refs.items()}
    out["nan_outputs"] = int(sum(np.isnan(v).sum() for v in got.values()))
    return out


def markdown(results):
    """Markdown table: one row per preset and reference, relative RMS / max per output."""
    head = "| preset | vs float64 | " + " | ".join(f"{k} rms / max" for k in OUTPUTS) + " |"
    lines = [head, "|" + "---|" * (2 + len(OUTPUTS))]
    for name, r in results.items():
        for kind, label in (("same", "same algorithm"), ("bn", "BatchNorm2d")):
            cells = " | ".join(f"{r[kind][k]['rel_rms']:.2e} / {r[kind][k]['rel_max']:.2e}"
                               for k in OUTPUTS)
            lines.append(f"| {name} | {label} | {cells} |")
    return "\n".join(lines)


def _default_out():
    build = os.environ.get("LIGHTNORM_BUILD")
    root = Path(build) if build else Path(__file__).resolve().parents[1] / "build"
    return root / "reports" / "bn_errors.json"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=None, help="JSON output (default "
                   "$LIGHTNORM_BUILD/reports/bn_errors.json or build/reports/bn_errors.json)")
    p.add_argument("--presets", nargs="*", default=list(BN_PRESETS), choices=list(BN_PRESETS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shape", type=int, nargs=4, default=(8, 32, 16, 16),
                   metavar=("N", "C", "H", "W"))
    args = p.parse_args(argv)
    out = args.out or _default_out()
    x, dy, gamma, beta = standard_inputs(tuple(args.shape), args.seed)
    results = {}
    for name in args.presets:
        t = time.perf_counter()
        results[name] = measure(BN_PRESETS[name], x, dy, gamma, beta)
        results[name]["seconds"] = round(time.perf_counter() - t, 2)
        results[name]["config"] = BN_PRESETS[name].as_dict()
    print(f"BN golden model vs float64; x = 0.5 + 2 N(0,1), shape {tuple(args.shape)}, "
          f"seed {args.seed}; relative RMS / relative max\n")
    print(markdown(results))
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"inputs": {"shape": list(args.shape), "seed": args.seed,
                      "x": "0.5 + 2*N(0,1)", "dy": "N(0,1)", "gamma": "U(0.5,1.5)",
                      "beta": "N(0,0.5^2)"},
           "metrics": {"rel_rms": "||g-r||_2/||r||_2", "rel_max": "max|g-r|/max|r|"},
           "presets": results}
    out.write_text(json.dumps(doc, indent=2))
    print(f"\nwrote {out}")
    return results


if __name__ == "__main__":
    main()
