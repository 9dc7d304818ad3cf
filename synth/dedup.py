"""Share structurally identical modules of an RTLIL design before synthesis.

Amaranth writes one RTLIL module per submodule *instance*: the eight lanes of a BN datapath are
eight modules ``...sub_mu_ab_l0`` ... ``..._l7`` with the same body.  They differ at most in the
names of some ports (Amaranth names a port after the parent expression that drives it, e.g.
``\\port$4743$0``).  Synthesizing them one by one costs eight times the Yosys/ABC time for the
same netlist.

:func:`dedup_rtlil` finds the modules that are identical up to the names of their ports (same
attributes, same wires, cells, processes and connections, in the same order; ports matched by
their position), keeps the first of each class, points every instance of the others to it and
renames the instance's port connections to the kept module's port names.  The design is the same
circuit; only the module bodies are shared.  Because the flow keeps the hierarchy (no ``flatten``
before mapping), Yosys optimizes and maps every module on its own, so a shared module maps to the
same cells it would have mapped to as a copy, and :func:`lightnorm.synth.flow.hierarchy_areas`
multiplies its cells by its instance count (the same bookkeeping as for any module used twice).
verif/test_synth_flow.py synthesizes a small multi-lane design both ways and checks that the
totals agree cell for cell.

Only the RTLIL subset Amaranth writes is handled (``module``/``end`` at column 0, cells with
``connect`` lines indented by four spaces); anything else raises :class:`ValueError`.
"""

import hashlib
import re

__all__ = ["Module", "parse_modules", "dedup_rtlil"]

_TOKEN = re.compile(r"(?<!\S)([\\$][^\s\"]+)")


class Module:
    """One RTLIL module: the attribute lines before it, its name and its body lines."""

    __slots__ = ("attrs", "name", "body", "ports")

    def __init__(self, attrs, name, body):
        self.attrs = attrs
        self.name = name
        self.body = body
        # Port name by position (``wire ... input 3 \\name``).
        ports = {}
        for line in body:
            if line.startswith("  wire "):
                tok = line.split()
                for kw in ("input", "output", "inout"):
                    if kw in tok:
                        ports[int(tok[tok.index(kw) + 1])] = tok[-1]
        self.ports = [ports[k] for k in sorted(ports)]

    def text(self):
        return "".join(a + "\n" for a in self.attrs) + f"module {self.name}\n" + \
            "".join(line + "\n" for line in self.body) + "end\n"


def parse_modules(text):
    """Split RTLIL text into :class:`Module` s (in file order); raise on anything else."""
    modules, attrs, cur = [], [], None
    for n, line in enumerate(text.splitlines(), 1):
        if cur is None:
            if not line.strip():
                continue
            if line.startswith("attribute "):
                attrs.append(line)
            elif line.startswith("module "):
                cur = (attrs, line.split()[1], [])
                attrs = []
            else:
                raise ValueError(f"RTLIL line {n}: expected 'attribute' or 'module', got "
                                 f"{line[:60]!r}")
        elif line == "end":
            modules.append(Module(*cur))
            cur = None
        else:
            cur[2].append(line)
    if cur is not None or attrs:
        raise ValueError("RTLIL text ends inside a module")
    return modules


def _key(mod, canon, by_name):
    """Hash of a module body with its own port names, child module names and child port names
    replaced by positions/representatives."""
    own = {p: f"\\<p{k}>" for k, p in enumerate(mod.ports)}
    out = [a for a in mod.attrs if a != "attribute \\top 1"]
    child = None
    for line in mod.body:
        if line.startswith("  cell "):
            tok = line.split()
            child = by_name.get(tok[1])
            if child is not None:
                line = f"  cell {canon[child.name]} {tok[2]}"
        elif line == "  end":
            child = None
        elif child is not None and line.startswith("    connect "):
            _, port, rest = line[4:].split(" ", 2)
            line = f"    connect \\<p{child.ports.index(port)}> " + \
                _TOKEN.sub(lambda t: own.get(t.group(1), t.group(1)), rest)
            out.append(line)
            continue
        out.append(_TOKEN.sub(lambda t: own.get(t.group(1), t.group(1)), line))
    return hashlib.sha256("\n".join(out).encode()).hexdigest()


def dedup_rtlil(text):
    """Share identical modules of RTLIL ``text``.

    Returns
    -------
    (text, stats) : (str, dict)
        The rewritten RTLIL, and ``{"modules": n, "unique": k, "instances": {kept module name:
        number of original modules it stands for}}``.
    """
    modules = parse_modules(text)
    by_name = {m.name: m for m in modules}
    canon, rep_of, reps = {}, {}, {}

    def visit(mod, stack=()):
        if mod.name in canon:
            return
        if mod.name in stack:
            raise ValueError(f"RTLIL module {mod.name} instantiates itself")
        for line in mod.body:
            if line.startswith("  cell "):
                c = by_name.get(line.split()[1])
                if c is not None:
                    visit(c, stack + (mod.name,))
        key = _key(mod, canon, by_name)
        rep = reps.setdefault(key, mod)
        rep_of[mod.name] = rep
        canon[mod.name] = rep.name

    for mod in modules:
        visit(mod)

    out, count = [], {}
    for mod in modules:
        count[rep_of[mod.name].name] = count.get(rep_of[mod.name].name, 0) + 1
        if rep_of[mod.name] is not mod:
            continue
        body, child = [], None
        for line in mod.body:
            if line.startswith("  cell "):
                tok = line.split()
                c = by_name.get(tok[1])
                child = None
                if c is not None and rep_of[c.name] is not c:
                    child = c
                    line = f"  cell {rep_of[c.name].name} {tok[2]}"
            elif line == "  end":
                child = None
            elif child is not None and line.startswith("    connect "):
                _, port, rest = line[4:].split(" ", 2)
                new = rep_of[child.name].ports[child.ports.index(port)]
                line = f"    connect {new} {rest}"
            body.append(line)
        out.append(Module(mod.attrs, mod.name, body).text())
    stats = {"modules": len(modules), "unique": len(out), "instances": count}
    return "\n".join(out), stats
