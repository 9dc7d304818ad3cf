"""``python -m lightnorm.gen --out build/verilog``: Verilog of every design plus ``manifest.json``.

Writes ``<out>/<unit>_<format>.v`` (top module ``<unit>_<format>``) for every entry of
:data:`lightnorm.gen.designs.DESIGNS` and every format listed with it,
``<out>/<preset>/bn_<preset>.v`` (top module ``bn_<preset>``) for every BN preset of
:data:`lightnorm.gen.designs.BN_DESIGNS` with its AXI4-Stream top
``<out>/<preset>/bn_<preset>_axis.v`` (module ``bn_<preset>_axis``, instantiating
``bn_<preset>``; docs/interface.md), and ``<out>/manifest.json`` describing each module:
file, ports (direction, width), payload layouts (field offsets and widths), formats, pipeline
stages and latency (read from the component, never assumed).  For a BN unit the manifest also
gives the whole BNConfig, the field layout of every beat kind of its four streams (found by
probing the golden model's beat parsers bit by bit, so it is the layout the testbench uses) and
the cycle model per mode (:mod:`lightnorm.verif.bntiming`: pipeline latency, scalar segments,
cycles per channel group as ``a*m + b``).

With ``--config FILE`` (``make verilog CONFIG=FILE``) only the BN unit of that configuration
file is generated (docs/configuration.md): ``<out>/<name>/bn_<name>.v`` and
``<out>/<name>/manifest.json`` (the module's manifest entry and the file's resolved config); an
invalid file exits with status 2 and one line on stderr, before anything is written.

The designs are converted in ``--jobs`` worker processes (default 2), the BN units first: a BN
preset takes 20-25 s of CPU to convert, the 66 small units together about a minute, so
``make verilog`` takes about a minute on two idle cores (-v prints the time of every module).
"""

import argparse
import sys
import time

from .designs import STAGES
from .generate import bn_layouts, generate, generate_bn

__all__ = ["generate", "generate_bn", "bn_layouts", "main"]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m lightnorm.gen", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--out", default="build/verilog", help="output directory")
    parser.add_argument("--stages", type=int, default=STAGES, help="pipeline depth of every unit")
    parser.add_argument("--only", nargs="*", help="module names to generate (default: all)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print the conversion time of every module")
    parser.add_argument("--config", metavar="FILE",
                        help="only the BN unit of this configuration file (TOML), into "
                             "<out>/<name>/")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.config is not None:
        if args.only is not None:
            parser.error("--only and --config exclude each other")
        from lightnorm.golden.configfile import load_config_or_exit
        source = load_config_or_exit(args.config)
        manifest = generate_bn(source.config, source.name, args.out, source=source)
        entry = manifest["modules"][0]
        print(f"wrote {args.out}/{source.name}/{entry['file']} and manifest.json "
              f"in {time.perf_counter() - start:.0f} s")
        return 0

    def log(line):
        if args.verbose or line.startswith("bn_"):
            print(line, flush=True)
    manifest = generate(args.out, stages=args.stages, only=args.only, jobs=args.jobs, log=log)
    print(f"wrote {len(manifest['modules'])} modules and manifest.json to {args.out} "
          f"in {time.perf_counter() - start:.0f} s ({args.jobs} jobs)")


if __name__ == "__main__":
    sys.exit(main())
