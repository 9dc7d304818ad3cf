"""The worked encoding examples of docs/numerics.md, decoded and re-encoded with golden/.

Each example in the page is a table after a ``<!-- docs-example: NAME -->`` marker, followed
by a paragraph that states the group's shared field and packed bits.  Every cell that states a
fact (word, bit fields, value, grid ratio, sign, magnitude, element code, decoded value) and
every shared field / packed number in those paragraphs is recomputed here; the page cannot say
something about the encodings that :mod:`lightnorm.golden.fp` / :mod:`lightnorm.golden.bfp`
do not do.
"""

import math
import re
from pathlib import Path

import numpy as np
import pytest

from lightnorm.golden import bfp, fp
from lightnorm.golden.bnconfig import BN_PRESETS
from lightnorm.golden.formats import FP10_154, FP32, BfpFormat

_PAGE = Path(__file__).resolve().parents[2] / "docs" / "numerics.md"


def _text():
    return _PAGE.read_text()


def example(name, text=None):
    """(rows as dicts of header -> cell, the paragraph before the marker, the one after)."""
    text = _text() if text is None else text
    marker = f"<!-- docs-example: {name}"
    assert marker in text, f"docs/numerics.md has no example {name!r}"
    before, after = text.split(marker, 1)
    lines = after.split("\n")[1:]
    table = []
    while lines and lines[0].startswith("|"):
        table.append(lines.pop(0))
    assert len(table) > 2, f"example {name!r}: no table after its marker"
    cells = [[c.strip() for c in row.strip().strip("|").split("|")] for row in table]
    head, rows = cells[0], cells[2:]
    assert all(len(r) == len(head) for r in rows), f"example {name!r}: ragged table"
    following = "\n".join(lines).strip().split("\n\n")[0]
    preceding = before.rstrip().split("\n\n")[-1]
    return [dict(zip(head, r)) for r in rows], " ".join(preceding.split()), \
        " ".join(following.split())


def _code(cell):
    return cell.strip("`")


def _float(cell):
    return float(cell.strip("`"))


def _same(a, b):
    return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) ==
                                                 math.copysign(1, b))


def _eval_why(cell):
    """The arithmetic in backticks of a "why" cell, or None when it is words (``+Inf``)."""
    for expr in re.findall(r"`([^`]*)`", cell):
        if re.fullmatch(r"[-+*/() \d]+", expr):
            return eval(expr, {"__builtins__": {}})
    return None


def test_e5m4_words():
    rows, _, _ = example("e5m4-words")
    assert len(rows) >= 8
    F = FP10_154
    for r in rows:
        word = int(_code(r["word"]), 16)
        bits = _code(r["sign"]) + _code(r["exponent"]) + _code(r["mantissa"])
        assert (len(_code(r["exponent"])), len(_code(r["mantissa"]))) == (F.exp_bits,
                                                                          F.man_bits)
        assert bits == format(word, f"0{F.width}b"), f"{r['word']}: fields {bits}"
        value = float(r["value"])
        got = float(fp.decode(F, word))
        assert _same(got, value), f"{r['word']} decodes to {got}, the page says {value}"
        assert int(fp.encode(F, value)) == word, f"{value} encodes to another word"
        why = _eval_why(r["why"])
        if why is not None:
            assert why == value, f"{r['word']}: {r['why']} is {why}, not {value}"


def _group_paragraph_facts(after):
    fields = [int(v) for v in re.findall(r"Shared field (\d+)", after)]
    packed = [int(v, 16) for v in re.findall(r"packed\b.*?`(0x[0-9a-f]+)`", after)]
    return fields, packed


def _check_group(rows, bfmt, fmt, values, view_fmt, field, packed, ratio_key=None):
    """Encode ``values`` (bits of ``fmt``) with ``bfmt``; compare with every stated cell."""
    shared, elems = bfp.encode(bfmt, fmt, values)
    assert int(shared) == field, f"shared field {int(shared)}, the page says {field}"
    assert bfp.pack(bfmt, shared, elems) == packed, (
        f"packed {hex(bfp.pack(bfmt, shared, elems))}, the page says {hex(packed)}")
    assert bfp.unpack(bfmt, packed)[1].tolist() == elems.tolist()
    decoded = fp.decode(view_fmt, bfp.decode(bfmt, shared, elems, view_fmt))
    M = bfmt.man_bits
    grid = 2.0 ** (int(shared) - bfmt.bias - M + 1)
    src = fp.decode(fmt, values)
    for lane, r in enumerate(rows):
        assert int(r["lane"]) == lane
        e = int(elems[lane])
        assert int(_code(r["sign"])) == e >> M, f"lane {lane}: sign"
        assert len(_code(r["m"])) == M and int(_code(r["m"]), 2) == e & ((1 << M) - 1), (
            f"lane {lane}: m = {_code(r['m'])}, golden {e & ((1 << M) - 1):0{M}b}")
        if "code = s * 32 + m" in r:
            assert int(_code(r["code = s * 32 + m"]), 16) == e
        if ratio_key is not None and r.get(ratio_key) is not None and np.isfinite(src[lane]):
            assert abs(src[lane]) / grid == float(r[ratio_key]), (
                f"lane {lane}: |x| / grid = {abs(src[lane]) / grid}, the page says "
                f"{r[ratio_key]}")
        assert _same(float(decoded[lane]), _float(r["decoded value"])), (
            f"lane {lane} decodes to {decoded[lane]}, the page says {r['decoded value']}")
    return shared, elems


def test_lightnorm_x_group():
    rows, before, after = example("lightnorm-x-group")
    ln, rne = BN_PRESETS["lightnorm"], BN_PRESETS["lightnorm_rne"]
    F = ln.fwd_fmt
    got = re.search(r'`x_bfp = BfpFormat\((\d+), (\d+), (\d+), "(\w+)"\)`', before)
    assert got and BfpFormat(*map(int, got.groups()[:3]), got.group(4)) == ln.x_bfp
    width = re.search(r"(\d+) \+ (\d+)\*(\d+) = (\d+) bits per group", before)
    assert width and int(width.group(4)) == ln.x_bfp.group_width == eval(
        f"{width.group(1)} + {width.group(2)} * {width.group(3)}")
    stated = re.search(r"shared field `E \+ B = (\d+) = 0b([01]+)`", before)
    assert stated and int(stated.group(1)) == int(stated.group(2), 2)
    words = np.array([int(_code(r["E5M4 word"]), 16) for r in rows], dtype=F.dtype)
    for r, w in zip(rows, words):
        assert int(fp.encode(F, float(r["x"]))) == w and _same(float(fp.decode(F, w)),
                                                               float(r["x"]))
    fields, packed = _group_paragraph_facts(after)
    assert fields[0] == int(stated.group(1))
    _check_group(rows, ln.x_bfp, F, words, F, fields[0], packed[0],
                 ratio_key="abs(x) / 0.25")
    grid = re.search(r"`2\*\*\(E - M \+ 1\) = 2\*\*(-?\d+) = ([\d.]+)`", before)
    assert grid and 2.0 ** int(grid.group(1)) == float(grid.group(2)) == 2.0 ** (
        fields[0] - ln.x_bfp.bias - ln.x_bfp.man_bits + 1)
    # the same words with LIGHTNORM_RNE: the lanes the paragraph names, and the packed group
    shared, elems = bfp.encode(rne.x_bfp, F, words)
    assert int(shared) == fields[0]
    assert bfp.pack(rne.x_bfp, shared, elems) == packed[1]
    named = re.findall(r"m = (\d+) for lane (\d+)", after)
    assert len(named) == 2
    for m, lane in named:
        assert int(elems[int(lane)]) & 31 == int(m), f"rne lane {lane}: m = {m}"
    dy = re.search(r"`dy_bfp` is the same with M = (\d+)", after)
    assert dy and ln.dy_bfp == ln.x_bfp.replace(man_bits=int(dy.group(1)))


def test_lightnorm_rne_y_group():
    rows, before, after = example("lightnorm-rne-y-group")
    ln, rne = BN_PRESETS["lightnorm"], BN_PRESETS["lightnorm_rne"]
    A = rne.fwd_acc_fmt
    y = np.array([float(r["y_A"]) for r in rows])
    words = fp.encode(A, y)
    np.testing.assert_array_equal(fp.decode(A, words), y)          # exact E5M12 values
    assert [float(v) for v in re.search(r"`y_A = \[([^\]]*)\]`", before).group(1).split(",")] \
        == y.tolist()
    fields, packed = _group_paragraph_facts(after)
    _check_group(rows, rne.y_bfp, A, words, FP32, fields[0], packed[0],
                 ratio_key="abs(y_A) / 0.5")
    # before the carry: the grid of e_max and the rounded-up magnitude the paragraph names
    carry = re.search(r"`e_max = (\d+)`, grid ([\d.]+), and ([\d.]+) / ([\d.]+) = ([\d.]+) "
                      r"rounds \(rne\) to (\d+) = `2\*\*(\d+)`", before)
    assert carry, "the mantissa-overflow sentence is not where the test reads it"
    e_max, grid, val, grid2, ratio, up, power = carry.groups()
    M = rne.y_bfp.man_bits
    assert 2.0 ** (int(e_max) - M + 1) == float(grid) == float(grid2)
    assert float(val) == y.max() and float(val) / float(grid) == float(ratio)
    assert int(up) == 2 ** int(power) == 2 ** M
    assert fields[0] == int(e_max) + 1 + rne.y_bfp.bias
    # LIGHTNORM (rtz): no carry, truncation on the finer grid
    rtz = re.search(r"rtz the same values keep field (\d+) and truncate on the ([\d.]+) grid: "
                    r"([\d.]+) -> ([\d.]+)", after)
    assert rtz
    shared, elems = bfp.encode(ln.y_bfp, ln.fwd_acc_fmt, fp.encode(ln.fwd_acc_fmt, y))
    assert int(shared) == int(rtz.group(1))
    assert 2.0 ** (int(shared) - ln.y_bfp.bias - M + 1) == float(rtz.group(2))
    lane = y.tolist().index(float(rtz.group(3)))
    assert float(fp.decode(FP32, bfp.decode(ln.y_bfp, shared, elems, FP32))[lane]) == float(
        rtz.group(4))


def test_lightnorm_special_group():
    rows, _, after = example("lightnorm-special-group")
    ln = BN_PRESETS["lightnorm"]
    F = ln.fwd_fmt
    words = fp.encode(F, np.array([float(r["x"]) for r in rows]))
    fields, packed = _group_paragraph_facts(after)
    assert fields == [(1 << ln.x_bfp.exp_bits) - 1]
    _check_group(rows, ln.x_bfp, F, words, F, fields[0], packed[0])


def test_examples_can_fail():
    """A wrong digit in a documented example is caught (the parser reads the page's cells)."""
    text = _text()
    bad = text.replace("| `0x306` | `1` | `10000` | `0110` | -2.75 |",
                       "| `0x306` | `1` | `10000` | `0110` | -2.5 |")
    assert bad != text
    rows, _, _ = example("e5m4-words", bad)
    row = next(r for r in rows if r["word"] == "`0x306`")
    assert not _same(float(fp.decode(FP10_154, 0x306)), float(row["value"]))
    bad = text.replace("| 6 | 3.875 | `0x10f` | 15.5 | `0` | `01111` |",
                       "| 6 | 3.875 | `0x10f` | 15.5 | `0` | `10000` |")
    assert bad != text
    rows, _, after = example("lightnorm-x-group", bad)
    fields, packed = _group_paragraph_facts(after)
    ln = BN_PRESETS["lightnorm"]
    words = np.array([int(_code(r["E5M4 word"]), 16) for r in rows], dtype=ln.fwd_fmt.dtype)
    with pytest.raises(AssertionError, match="lane 6: m = 10000"):
        _check_group(rows, ln.x_bfp, ln.fwd_fmt, words, ln.fwd_fmt, fields[0], packed[0])
