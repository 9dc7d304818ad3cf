"""Stream payloads as flat bit fields: packing, unpacking, the canonical-NaN comparison, messages.

A payload layout (an Amaranth shape or ``data.Layout``) is flattened into :class:`Field` s, each a
leaf with a dotted name (``"a"``, ``"sub"``, ``"elems.3.mag"``; ``""`` for a plain unsigned
payload), a bit offset, a width and optionally the :class:`~lightnorm.golden.formats.FloatFormat`
its bits encode.  Vectors are NumPy object arrays of Python ints (payloads can be wider than 64
bits, e.g. an FP32 add/sub operand pair with its ``sub`` flag is 65 bits).

Both sides of the simulator use this module: the pytest side packs stimulus and expected results
from golden arrays; the cocotb side (running inside the simulator) compares and describes them.
"""

from dataclasses import dataclass
import fnmatch

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import data

from lightnorm.golden.formats import FloatFormat

__all__ = ["Field", "flatten", "pack", "unpack", "to_limbs", "from_limbs", "fields_to_json",
           "fields_from_json", "mismatches", "describe"]


@dataclass(frozen=True)
class Field:
    """One leaf bit field of a payload.

    Parameters
    ----------
    name : str
        Dotted path (``""`` for a payload that is a single unsigned value).
    offset, width : int
        Bit position of the LSB and width.
    fmt : FloatFormat or None
        Format of the bits, if they are a float: then comparisons apply the canonical-NaN rule
        and messages show the decoded value.
    """

    name: str
    offset: int
    width: int
    fmt: FloatFormat = None

    @property
    def mask(self):
        return (1 << self.width) - 1


def flatten(shape, formats=None):
    """Flatten a payload shape into a list of :class:`Field`, LSB first.

    Parameters
    ----------
    shape : ShapeLike or data.Layout
        The payload shape, e.g. ``StructLayout({"a": 16, "b": 16, "sub": 1})``.
    formats : dict, optional
        Glob pattern (on the dotted field name) -> :class:`FloatFormat`; ``{"": FP16}`` for a plain
        FP16 payload, ``{"a": f, "b": f}`` or ``{"*": f}`` for an array of floats.
    """
    formats = formats or {}
    out = []

    def leaf_fmt(name):
        for pattern, fmt in formats.items():
            if fnmatch.fnmatchcase(name, pattern):
                return fmt
        return None

    def walk(sh, name, offset):
        if isinstance(sh, data.Layout):
            for key, field in sh:
                sub = f"{name}.{key}" if name else str(key)
                walk(field.shape, sub, offset + field.offset)
        else:
            width = Shape.cast(sh).width
            if width:
                out.append(Field(name, offset, width, leaf_fmt(name)))

    walk(shape, "", 0)
    return sorted(out, key=lambda f: f.offset)


def _obj(values):
    return np.asarray(values).astype(object)


def pack(fields, values):
    """Pack per-field arrays into payload integers.

    Parameters
    ----------
    fields : list of Field
    values : dict
        Field name -> integer array (all the same length).  Every field must be given; a value
        wider than its field is an error (it would silently corrupt the neighbour).

    Returns
    -------
    numpy.ndarray of object (Python ints)
    """
    names = {f.name for f in fields}
    if set(values) != names:
        raise ValueError(f"pack needs exactly the fields {sorted(names)}, got {sorted(values)}")
    n = len(next(iter(values.values())))
    word = np.zeros(n, dtype=object)
    for f in fields:
        v = _obj(values[f.name])
        if len(v) != n:
            raise ValueError(f"field {f.name!r} has {len(v)} values, expected {n}")
        if n and (np.any(v < 0) or np.any(v > f.mask)):
            raise ValueError(f"field {f.name!r}: value out of range for {f.width} bits")
        word = word | (v << f.offset)
    return word


def unpack(fields, words):
    """Payload integers -> dict field name -> object array of Python ints."""
    words = _obj(words)
    return {f.name: (words >> f.offset) & f.mask for f in fields}


def to_limbs(words, width):
    """Object array of ints -> ``uint64`` array of shape (n, ceil(width/64)), limb 0 lowest."""
    words = _obj(words)
    n_limbs = max(1, -(-width // 64))
    out = np.empty((len(words), n_limbs), dtype=np.uint64)
    for j in range(n_limbs):
        out[:, j] = ((words >> (64 * j)) & ((1 << 64) - 1)).astype(np.uint64)
    return out


def from_limbs(limbs):
    """Inverse of :func:`to_limbs`: a list of Python ints (what the testbench drives)."""
    limbs = np.asarray(limbs, dtype=np.uint64)
    words = np.zeros(len(limbs), dtype=object)
    for j in range(limbs.shape[1]):
        words = words | (limbs[:, j].astype(object) << (64 * j))
    return words


def _fmt_json(fmt):
    return None if fmt is None else {"exp_bits": fmt.exp_bits, "man_bits": fmt.man_bits,
                                     "subnormals": fmt.subnormals, "rounding": fmt.rounding}


def fields_to_json(fields):
    return [{"name": f.name, "offset": f.offset, "width": f.width, "fmt": _fmt_json(f.fmt)}
            for f in fields]


def fields_from_json(items):
    return [Field(d["name"], d["offset"], d["width"],
                  None if d["fmt"] is None else FloatFormat(
                      d["fmt"]["exp_bits"], d["fmt"]["man_bits"],
                      subnormals=d["fmt"]["subnormals"], rounding=d["fmt"]["rounding"]))
            for d in items]


def _is_nan(fmt, bits):
    bits = bits.astype(np.uint64)
    exp = (bits >> np.uint64(fmt.man_bits)) & np.uint64(fmt.exp_all_ones)
    man = bits & np.uint64((1 << fmt.man_bits) - 1)
    return (exp == fmt.exp_all_ones) & (man != 0)


def mismatches(fields, expected, got):
    """Indices where ``got`` differs from ``expected`` under the canonical-NaN rule.

    Float fields: where the expected value is a NaN (any payload), the result must be exactly
    ``fmt.canonical_nan`` -- the one NaN every unit produces (docs/conventions.md); elsewhere, and
    for non-float fields, the bits must be equal.
    """
    exp_f, got_f = unpack(fields, expected), unpack(fields, got)
    bad = np.zeros(len(expected), dtype=bool)
    for f in fields:
        e, g = exp_f[f.name], got_f[f.name]
        if f.fmt is not None:
            e64, g64 = e.astype(np.uint64), g.astype(np.uint64)
            want = np.where(_is_nan(f.fmt, e64), np.uint64(f.fmt.canonical_nan), e64)
            bad |= want != g64
        else:
            bad |= e != g
    return np.flatnonzero(bad)


def _show_value(f, v):
    v = int(v)
    digits = max(1, -(-f.width // 4))
    text = f"0x{v:0{digits}x}"
    if f.fmt is not None:
        fmt = f.fmt
        s, e, m = v >> (fmt.width - 1), (v >> fmt.man_bits) & fmt.exp_all_ones, v & ((1 << fmt.man_bits) - 1)
        value = float(fmt.decode(np.array([v], dtype=fmt.dtype))[0])
        kind = ""
        if e == fmt.exp_all_ones:
            kind = "nan" if m else "inf"
            if m and v != fmt.canonical_nan:
                kind = "nan, non-canonical"
        elif e == 0 and m:
            kind = "subnormal" + ("" if fmt.subnormals else ", read as 0")
        text += f" = {value:+.9g}" + (f" ({kind})" if kind and kind not in ("nan", "inf") else "")
        text += f" [s{s} e{e} m0x{m:x}]"
    return text


def describe(fields, word):
    """One payload as ``name=0x.. = +1.5 [s0 e15 m0x0]`` items, floats decoded."""
    word = int(word)
    parts = []
    for f in fields:
        parts.append(f"{f.name or 'value'}={_show_value(f, (word >> f.offset) & f.mask)}")
    return " ".join(parts)
