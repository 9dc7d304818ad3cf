"""``python -m lightnorm.gen --out build/verilog``: Verilog of every design plus ``manifest.json``.

Writes ``<out>/<unit>_<format>.v`` (top module ``<unit>_<format>``) for every entry of
:data:`lightnorm.gen.designs.DESIGNS` and every format listed with it, and ``<out>/manifest.json``
describing each module: file, ports (direction, width), payload layouts (field offsets and
widths), formats, pipeline stages and latency (read from the component, never assumed).
"""

import argparse
import json
import re
import sys
from pathlib import Path

from amaranth.back import verilog

from lightnorm.verif.payload import flatten

from .designs import DESIGNS, STAGES

__all__ = ["generate", "main"]


def _ports(text, top):
    """(name, direction, width) of the top module's ports, from the generated Verilog."""
    body = text[text.index(f"module {top}("):]
    body = body[:body.index("endmodule")]
    ports = []
    for direction, msb, name in re.findall(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?(\S+);",
                                           body, re.M):
        ports.append({"name": name, "direction": direction, "width": int(msb or 0) + 1})
    return ports


def _layout(component, port):
    shape = component.signature.members[port].signature.members["payload"].shape
    return [{"field": f.name or "value", "offset": f.offset, "width": f.width}
            for f in flatten(shape)]


def generate(out, *, stages=STAGES, only=None):
    """Write the Verilog files and the manifest into ``out``; return the manifest (a dict).

    Parameters
    ----------
    out : path
    stages : int
        Pipeline depth of every unit.
    only : iterable of str, optional
        Restrict to these module names (``<unit>_<format>``), e.g. for a quick lint.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    modules = []
    for design in DESIGNS:
        for fmt_name, fmt in design.formats.items():
            top = f"{design.unit}_{fmt_name}"
            if only is not None and top not in only:
                continue
            component = design.build(fmt, stages)
            text = verilog.convert(component, name=top, emit_src=False)
            (out / f"{top}.v").write_text(text)
            modules.append({
                "module": top, "file": f"{top}.v", "unit": design.unit,
                "class": type(component).__name__, "format_name": fmt_name,
                "formats": design.describe(fmt), "stages": stages,
                "latency": component.latency, "ports": _ports(text, top),
                "payload": {"i": _layout(component, "i"), "o": _layout(component, "o")},
            })
    manifest = {"generator": "lightnorm.gen", "modules": modules}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m lightnorm.gen", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--out", default="build/verilog", help="output directory")
    parser.add_argument("--stages", type=int, default=STAGES, help="pipeline depth of every unit")
    parser.add_argument("--only", nargs="*", help="module names to generate (default: all)")
    args = parser.parse_args(argv)
    manifest = generate(args.out, stages=args.stages, only=args.only)
    print(f"wrote {len(manifest['modules'])} modules and manifest.json to {args.out}")


if __name__ == "__main__":
    sys.exit(main())
