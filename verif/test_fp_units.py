"""cocotb regressions of the FP units against golden/fp.py, random + corner vectors.

Default (``make test``): every unit in each of the six regression formats, 20,000 vectors per
operation (a flagged unit - add/sub, min/max - gets 20,000 of each), with the rounding/subnormal
mode, the pipeline depth and the pause pattern rotating over the cases so that every unit runs in
all four modes, at several depths and under heavy back-pressure as well as at full throughput.

``make test-long`` adds the full matrix (unit x format x mode x depth, 20,000 vectors each) and one
run of 10^6 vectors per unit and format.
"""

import os

import pytest

from lightnorm.golden.formats import BF16, E6M5, FP10_154, FP10_163, FP16, FP32

from .units import Case, UNITS, run_case

#: The regression formats (issue 2: FP32, FP16, BF16, FP10_154, FP10_163 and one odd format).
FORMATS = [FP32, FP16, BF16, FP10_154, FP10_163, E6M5]
#: (rounding, subnormals): all four behaviours of a FloatFormat.
MODES = [("rne", True), ("rtz", False), ("rtz", True), ("rne", False)]
DEPTHS = [0, 1, 2, 3]
#: (in_pause, out_pause): full throughput, light and heavy back-pressure.
PAUSES = [(0.0, 0.0), (0.2, 0.3), (0.35, 0.45)]
#: Destination of each regression format in the conversion tests (narrowing and widening).
CONVERT_TO = {FP32: FP16, FP16: FP32, BF16: FP10_163, FP10_154: FP16, FP10_163: BF16,
              E6M5: FP10_154}
FP_UNITS = [name for name, u in UNITS.items() if u.kind in ("binary", "unary", "convert")]
#: Vectors per operation; ``LIGHTNORM_VECTORS`` lowers it for the slower Icarus runs in CI.
N_DEFAULT = int(os.environ.get("LIGHTNORM_VECTORS", "20000"))
N_LONG = 1_000_000


def _case(unit, fmt, mode, stages):
    fmt = fmt.replace(rounding=mode[0], subnormals=mode[1])
    other = None
    if UNITS[unit].kind == "convert":
        other = CONVERT_TO[fmt.replace(rounding="rne", subnormals=True)].replace(
            rounding=mode[0], subnormals=mode[1])
    return Case(unit, fmt, stages, other)


def _default_cases():
    for ui, unit in enumerate(FP_UNITS):
        for fi, fmt in enumerate(FORMATS):
            # Rotating by unit and format: each unit meets all 4 modes within its 6 formats.
            mode = MODES[(ui + fi) % len(MODES)]
            stages = DEPTHS[(2 * ui + fi) % len(DEPTHS)]
            pauses = PAUSES[(ui + fi) % len(PAUSES)]
            yield pytest.param(_case(unit, fmt, mode, stages), pauses,
                               id=f"{unit}-{fmt.name}-{mode[0]}{'' if mode[1] else '-ftz'}"
                                  f"-s{stages}-p{pauses[1]}")


def _matrix_cases():
    for unit in FP_UNITS:
        for fmt in FORMATS:
            for mode in MODES:
                for stages in (0, 1, 3):
                    c = _case(unit, fmt, mode, stages)
                    yield pytest.param(c, PAUSES[1], id=c.name)


@pytest.mark.sim
@pytest.mark.parametrize("case, pauses", list(_default_cases()))
def test_unit_random(case, pauses):
    result = run_case(case, N_DEFAULT, tag="random", in_pause=pauses[0], out_pause=pauses[1])
    assert result["received"] == result["vectors"] >= N_DEFAULT


@pytest.mark.sim
@pytest.mark.long
@pytest.mark.parametrize("case, pauses", list(_matrix_cases()))
def test_unit_matrix(case, pauses):
    result = run_case(case, N_DEFAULT, tag="matrix", in_pause=pauses[0], out_pause=pauses[1])
    assert result["received"] == result["vectors"] >= N_DEFAULT


@pytest.mark.sim
@pytest.mark.long
@pytest.mark.parametrize("unit", FP_UNITS)
@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_unit_million(unit, fmt):
    case = _case(unit, fmt, MODES[0], 2)
    result = run_case(case, N_LONG, tag="million", in_pause=0.1, out_pause=0.1)
    assert result["received"] == result["vectors"] >= N_LONG
