"""``python -m lightnorm.study``: run the numerics study and write its results.

Parts: ``sigma`` (range estimator), ``errors`` (BN error per preset and format sweep), ``train``
(CNN training with float32 and golden-model BN).  ``--quick`` shrinks every part to a few seconds
(what the smoke tests exercise); the default is the full study of docs/study.md.
"""

import argparse
import os
import platform
import time
from pathlib import Path

from .common import write_json

__all__ = ["main"]

PARTS = ("sigma", "errors", "train")


def _default_out():
    build = os.environ.get("LIGHTNORM_BUILD")
    return (Path(build) if build else Path(__file__).resolve().parents[1] / "build") / "study"


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m lightnorm.study", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default $LIGHTNORM_BUILD/study or build/study)")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    p.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a few seconds per part")
    p.add_argument("--seeds", type=int, default=5, help="training seeds (default 5)")
    p.add_argument("--epochs", type=int, default=10, help="training epochs (default 10)")
    p.add_argument("--configs", nargs="+", default=None,
                   help="training configurations (default: float32 and every preset/grad)")
    p.add_argument("--kinds", nargs="+", default=["standard", "relu"],
                   help="input kinds of the error study (default: standard relu)")
    p.add_argument("--assemble", action="store_true",
                   help="only rebuild the training summary from finished train_part_*.json files")
    args = p.parse_args(argv)
    out = args.out or _default_out()
    out.mkdir(parents=True, exist_ok=True)
    timing = {}
    if args.assemble:
        from .train import summarize_training
        summarize_training(str(out))
        print(f"assembled {out}/train_summary.csv, train.png")
        return timing


    if "sigma" in args.parts:
        from .sigma import run_sigma_study
        t = time.perf_counter()
        if args.quick:
            run_sigma_study(str(out), sizes=(64, 256, 1024), budget=20_000, min_reps=8)
        else:
            run_sigma_study(str(out))
        timing["sigma"] = time.perf_counter() - t
        print(f"sigma: {timing['sigma']:.0f} s -> {out}/sigma.csv, sigma.png", flush=True)

    if "errors" in args.parts:
        from .bnerror import run_error_study
        t = time.perf_counter()
        if args.quick:
            run_error_study(str(out), jobs=args.jobs, kinds=("standard",), shape=(2, 16, 4, 4),
                            sweep=True, sizes=((4, 16, 4, 4),), exps=(5,), mans=(3,),
                            extras=(8,), groups=(8,), bfp_mans=(4,), chunks=(4,))
        else:
            run_error_study(str(out), jobs=args.jobs, kinds=tuple(args.kinds))
        timing["errors"] = time.perf_counter() - t
        print(f"errors: {timing['errors']:.0f} s -> {out}/bn_errors.csv, bn_errors.png", flush=True)

    if "train" in args.parts:
        from .train import run_training_study
        t = time.perf_counter()
        if args.quick:
            run_training_study(str(out), configs=args.configs, seeds=(0, 1), jobs=args.jobs,
                               epochs=1, max_steps=3)
        else:
            run_training_study(str(out), configs=args.configs, seeds=tuple(range(args.seeds)),
                               jobs=args.jobs, epochs=args.epochs)
        timing["train"] = time.perf_counter() - t
        print(f"train: {timing['train']:.0f} s -> {out}/train_summary.csv, train.png", flush=True)

    write_json(str(out / "timing.json"), {"seconds": timing, "jobs": args.jobs,
                                          "quick": args.quick, "cpus": os.cpu_count(),
                                          "machine": platform.platform()})
    return timing


if __name__ == "__main__":
    main()
