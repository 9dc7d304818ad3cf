"""Exhaustive cocotb regressions of the 8-bit formats: every operand pair through one simulator run.

E4M3 and E5M2, both rounding modes, subnormals on and off: 65,536 pairs per binary operation.
``make test`` runs add (all pairs as additions) and mul; ``make test-long`` adds all pairs as
subtractions (and min and max), and divide.
"""

import pytest

from lightnorm.golden.formats import E4M3, E5M2

from .units import Case, run_case

MODES = [("rne", True), ("rne", False), ("rtz", True), ("rtz", False)]


def _cases(units, long):
    for unit in units:
        for fi, base in enumerate((E4M3, E5M2)):
            for mi, (rounding, subnormals) in enumerate(MODES):
                fmt = base.replace(rounding=rounding, subnormals=subnormals)
                stages = (fi + mi) % 3          # 0, 1, 2 spread over the modes
                marks = [pytest.mark.long] if long else []
                yield pytest.param(Case(unit, fmt, stages), marks=marks,
                                   id=f"{unit}-{fmt.name}-s{stages}")


@pytest.mark.sim
@pytest.mark.parametrize("case", list(_cases(["fpaddsub", "fpmul"], False))
                         + list(_cases(["fpdiv", "fpminmax"], True)))
def test_exhaustive_8bit(case, request):
    # Subtraction (and max) reuse the datapath of addition (min) with one operand's sign flipped;
    # their exhaustive runs double the time, so they belong to the long regression.
    flags = (0, 1) if request.config.getoption("--long") else (0,)
    # Light back-pressure on both sides: the flow is exercised without doubling the run time.
    result = run_case(case, 0, tag="exhaustive", exhaustive=True, flags=flags,
                      in_pause=0.1, out_pause=0.1)
    pairs = 1 << (2 * case.fmt.width)
    assert result["received"] == result["vectors"] >= pairs
