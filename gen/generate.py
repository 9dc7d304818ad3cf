"""Conversion of every design to Verilog and the manifest (the work of ``python -m lightnorm.gen``).

A module of its own (not ``__main__``) so that the worker processes can import the conversion
functions by name.
"""

import json
import multiprocessing
import re
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from amaranth.back import verilog

from lightnorm.verif.payload import flatten

from .designs import BN_DESIGNS, DESIGNS, STAGES, describe_bn

__all__ = ["generate", "generate_bn", "bn_layouts", "AXIS_FRAMES"]


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


def _probe(width, decode):
    """Field layout of a ``width``-bit beat from its decoder, one set bit at a time.

    ``decode(int) -> {field: int}``; every bit must land in exactly one field, at consecutive
    positions.  Bits no field claims are reported as ``"(unused)"`` runs.
    """
    owner = []
    for bit in range(width):
        hits = [(name, v) for name, v in decode(1 << bit).items() if v]
        if len(hits) > 1 or (hits and hits[0][1] & (hits[0][1] - 1)):
            raise ValueError(f"bit {bit} decodes into {hits}: not a plain bit field")
        owner.append((hits[0][0], hits[0][1].bit_length() - 1) if hits else (None, None))
    fields = []
    for bit, (name, index) in enumerate(owner):
        name = name or "(unused)"
        if fields and fields[-1]["field"] == name and (
                name == "(unused)" or index == fields[-1]["width"]):
            fields[-1]["width"] += 1
            continue
        if name != "(unused)" and index != 0:
            raise ValueError(f"field {name} starts at bit {index} at offset {bit}: not contiguous")
        fields.append({"field": name, "offset": bit, "width": 1})
    names = [f["field"] for f in fields if f["field"] != "(unused)"]
    if len(names) != len(set(names)):
        raise ValueError(f"a field is split into several runs: {names}")
    return fields


def _flat(prefix, parsed):
    """``{"amax": [1, 2]}`` -> ``{"<prefix>amax.0": 1, "<prefix>amax.1": 2}``."""
    out = {}
    for key, value in parsed.items():
        if isinstance(value, (list, tuple)):
            out.update({f"{prefix}{key}.{j}": int(v) for j, v in enumerate(value)})
        else:
            out[f"{prefix}{key}"] = int(value)
    return out


def _tensor_decoder(cfg, name):
    """Decoder of one tensor's beat (``x``, ``dy``, ``y`` or ``dx``) into named fields."""
    from lightnorm.golden import bfp as gbfp
    from lightnorm.golden.bn import unpack_words
    bfmt = getattr(cfg, f"{name}_bfp")
    if bfmt is None:
        fmt = cfg.fwd_fmt if name in ("x", "y") else cfg.bwd_fmt
        return lambda beat: {f"{name}.{lane}": int(v) for lane, v in
                             enumerate(unpack_words(fmt, [beat], cfg.lanes)[0])}

    def decode(beat):
        # Element codes are (sign << M) | magnitude (golden/bfp.py): split them.
        shared, elems = gbfp.unpack(bfmt, beat)
        out = {f"{name}.exp": int(shared)}
        for i, code in enumerate(int(c) for c in elems):
            out[f"{name}.elems.{i}.mag"] = code & ((1 << bfmt.man_bits) - 1)
            out[f"{name}.elems.{i}.sign"] = code >> bfmt.man_bits
        return out
    return decode


def bn_layouts(cfg):
    """Field layouts of every beat kind of the BN unit's streams, from the golden model.

    Returns
    -------
    dict
        ``{"cmd": {"header": [...], "lane": [...]}, "din": [...], "dout": {"y": [...],
        "dx": [...]}, "res": {"forward": [...], "backward": [...]}, "err": [...]}``, each list of
        ``{"field", "offset", "width"}`` LSB first (docs/bn-spec.md section 7).
    """
    from lightnorm.golden import bn as gbn
    xw = cfg.tensor_width("x")
    dec_x, dec_dy = _tensor_decoder(cfg, "x"), _tensor_decoder(cfg, "dy")

    def din(beat):
        return {**dec_x(beat & ((1 << xw) - 1)), **dec_dy(beat >> xw)}

    # Result slots per mode (golden result_beats: forward mu, sig, s; backward
    # dgamma, dbeta and a zero slot).
    res_names = {"forward": ("mu", "sig", "s"), "backward": ("dgamma", "dbeta", "zero")}
    return {
        "cmd": {"header": _probe(cfg.cmd_width, lambda b: gbn.parse_command_beat(cfg, b, True)),
                "lane": _probe(cfg.cmd_width, lambda b: _flat("", gbn.parse_command_beat(
                    cfg, b, False)))},
        "din": _probe(cfg.din_width, din),
        "dout": {t: _probe(cfg.dout_width, lambda b, t=t: _tensor_decoder(cfg, t)(
            b & ((1 << cfg.tensor_width(t)) - 1))) for t in ("y", "dx")},
        "res": {mode: _probe(cfg.result_width, lambda b, n=names: _flat("", gbn.parse_result_beat(
            cfg, b, names=n))) for mode, names in res_names.items()},
        "err": _probe(gbn.error_width(cfg), lambda b: gbn.parse_error_beat(cfg, b)),
    }


def _unit_entry(design_index, fmt_name, out, stages):
    """Convert one small unit; returns its manifest entry."""
    design = DESIGNS[design_index]
    fmt = design.formats[fmt_name]
    top = f"{design.unit}_{fmt_name}"
    component = design.build(fmt, stages)
    text = verilog.convert(component, name=top, emit_src=False)
    (Path(out) / f"{top}.v").write_text(text)
    return {
        "module": top, "file": f"{top}.v", "unit": design.unit,
        "class": type(component).__name__, "format_name": fmt_name,
        "formats": design.describe(fmt), "stages": stages,
        "latency": component.latency, "ports": _ports(text, top),
        "payload": {"i": _layout(component, "i"), "o": _layout(component, "o")},
    }


def _bn_entry(preset, out, cfg=None):
    """Convert one BN preset (or ``cfg`` under the name ``preset``) into
    ``<out>/<preset>/bn_<preset>.v``; returns its manifest entry."""
    from lightnorm.golden.bn import ERRORS
    from lightnorm.rtl.bn import BNUnit
    from lightnorm.verif.bntiming import cycle_model
    cfg = BN_DESIGNS[preset] if cfg is None else cfg
    top = f"bn_{preset}"
    unit = BNUnit(cfg)
    text = verilog.convert(unit, name=top, emit_src=False)
    (Path(out) / preset).mkdir(parents=True, exist_ok=True)
    (Path(out) / preset / f"{top}.v").write_text(text)
    ports = _ports(text, top)
    layouts = bn_layouts(cfg)
    widths = {p["name"]: p["width"] for p in ports}
    for stream, kinds in layouts.items():
        for fields in (kinds.values() if isinstance(kinds, dict) else [kinds]):
            end = fields[-1]["offset"] + fields[-1]["width"]
            if end != widths[f"{stream}__payload"]:
                raise RuntimeError(f"{top}: layout of {stream} covers {end} bits, the port "
                                   f"{stream}__payload has {widths[f'{stream}__payload']}")
    depths = {k: getattr(cfg, k) for k in ("add_stages", "mul_stages", "div_stages",
                                            "sqrt_stages", "minmax_stages", "bfp_stages")}
    return {
        "module": top, "file": f"{preset}/{top}.v", "unit": "bn", "class": type(unit).__name__,
        "format_name": preset, "formats": describe_bn(cfg), "stages": depths,
        "latency": unit.stream_latency, "cycles": cycle_model(unit), "ports": ports,
        "payload": layouts,
        # codes of the err stream's code field (docs/interface.md, "Refused commands")
        "error_codes": dict(ERRORS),
    }


def generate_bn(cfg, name, out, *, source=None):
    """Verilog and manifest of one BN configuration: ``<out>/<name>/bn_<name>.v`` (top module
    ``bn_<name>``) and ``<out>/<name>/manifest.json``; returns the manifest (a dict).

    The manifest has the same ``modules`` entry ``make verilog`` writes for a preset (ports,
    beat layouts, cycle model, the whole config; ``file`` relative to the manifest), and under
    ``config`` the facts of the configuration file it came from (``source``: a
    :class:`lightnorm.golden.configfile.ConfigFile`), if any.

    Parameters
    ----------
    cfg : BNConfig
    name : str
        Module and directory name (a Verilog identifier).
    out : path
        Parent directory; ``make verilog CONFIG=...`` uses ``build/verilog``.
    source : ConfigFile, optional
    """
    from lightnorm.golden.bnconfig import BNConfig
    if not isinstance(cfg, BNConfig):
        raise TypeError(f"cfg must be a BNConfig, not {cfg!r}")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
        raise ValueError(f"name must be a letter followed by letters, digits or _, not {name!r}")
    start = time.perf_counter()
    entry = _bn_entry(name, str(out), cfg)
    entry["file"] = f"bn_{name}.v"
    manifest = {"generator": "lightnorm.gen", "modules": [entry],
                "config": None if source is None else source.manifest(),
                "elapsed_s": round(time.perf_counter() - start, 1)}
    (Path(out) / name / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


#: Recommended frame of each BN stream on the AXI4-Stream top (docs/interface.md); inputs'
#: tlast is not read, outputs' tlast marks exactly these frames.
AXIS_FRAMES = {
    "cmd": "one command: header + G lane beats (tlast on lane G-1)",
    "din": "one command's data: passes * m beats (tlast on the last)",
    "dout": "one command's output: m beats (tlast on beat m-1)",
    "res": "one training command's results: G beats (tlast on lane G-1); none for inference",
    "err": "one refused command: one beat (tlast on every beat)",
}


def _bn_axis_entry(preset, out):
    """Write ``<out>/<preset>/bn_<preset>_axis.v``, the AXI4-Stream top around ``bn_<preset>``
    (:class:`lightnorm.rtl.bn.axis.BNAxis`); returns its manifest entry."""
    from lightnorm.rtl.bn.axis import BNAxis
    cfg = BN_DESIGNS[preset]
    core, top = f"bn_{preset}", f"bn_{preset}_axis"
    wrapper = BNAxis(cfg, core)
    text = verilog.convert(wrapper, name=top, emit_src=False)
    (Path(out) / preset).mkdir(parents=True, exist_ok=True)
    (Path(out) / preset / f"{top}.v").write_text(text)
    streams = [{
        "stream": s.name, "direction": "input" if s.direction == "in" else "output",
        "payload_width": s.width, "tdata_width": s.tdata_width,
        "ports": {k: f"{s.name}_{k}" for k in ("tdata", "tvalid", "tready", "tlast")},
        "tlast": s.tlast_rule, "frame": AXIS_FRAMES.get(s.name),
    } for s in wrapper.streams]
    return {
        "module": top, "file": f"{preset}/{top}.v", "unit": "bn_axis",
        "class": type(wrapper).__name__, "format_name": preset, "core": core,
        "sources": [f"{preset}/{core}.v", f"{preset}/{top}.v"],
        "clock": "aclk", "reset": {"port": "aresetn", "active": "low", "synchronous": True},
        "added_latency": 0, "ports": _ports(text, top), "streams": streams,
    }


def _timed(fn, *args):
    start = time.perf_counter()
    entry = fn(*args)
    return entry, time.perf_counter() - start


def generate(out, *, stages=STAGES, only=None, jobs=2, log=None):
    """Write the Verilog files and the manifest into ``out``; return the manifest (a dict).

    Parameters
    ----------
    out : path
    stages : int
        Pipeline depth of every small unit (the BN units take theirs from their BNConfig).
    only : iterable of str, optional
        Restrict to these module names (``<unit>_<format>``, ``bn_<preset>`` or
        ``bn_<preset>_axis``), e.g. for a quick lint.
    jobs : int
        Worker processes (1: convert in this process).
    log : callable, optional
        Called with one line per converted module (name and seconds).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, not {jobs!r}")
    # Longest first (the BN units), so two workers finish together; each BN unit's
    # AXI4-Stream top (a wrapper, converted in a second) right after it.
    tasks = [task for preset in BN_DESIGNS for name, task in (
        (f"bn_{preset}", (_bn_entry, preset, str(out))),
        (f"bn_{preset}_axis", (_bn_axis_entry, preset, str(out))))
        if only is None or name in only]
    tasks += [(_unit_entry, k, fmt_name, str(out), stages)
              for k, design in enumerate(DESIGNS) for fmt_name in design.formats
              if only is None or f"{design.unit}_{fmt_name}" in only]
    if only is not None:
        known = {f"bn_{p}{s}" for p in BN_DESIGNS for s in ("", "_axis")} | {
            f"{d.unit}_{f}" for d in DESIGNS for f in d.formats}
        unknown = sorted(set(only) - known)
        if unknown:
            raise ValueError(f"only names unknown modules: {', '.join(unknown)}")
    jobs = min(jobs, len(tasks)) or 1
    if jobs == 1 or (len(tasks) <= 8 and all(t[0] is not _bn_entry for t in tasks)):
        # a few small units (e.g. the lint test) convert faster than workers start
        results = [_timed(*task) for task in tasks]
    else:
        # spawn, not fork: the caller may be a threaded process (pytest-xdist, cocotb).
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = [f.result() for f in [pool.submit(_timed, *task) for task in tasks]]
    entries = []
    for entry, seconds in results:
        entries.append(entry)
        if log:
            log(f"{entry['module']:36s} {seconds:6.1f} s")
    # The manifest keeps the order of DESIGNS, then the BN presets (each with its AXIS top).
    entries.sort(key=lambda e: e["unit"] in ("bn", "bn_axis"))
    manifest = {"generator": "lightnorm.gen", "modules": entries}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest
