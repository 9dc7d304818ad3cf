"""cocotb regressions of the BFP codecs against golden/bfp.py.

Encoder, decoder and the encoder->decoder round trip, group 8 (the LightNorm grouping), element
magnitudes of 3..8 bits, from and to every regression format; random groups plus the directed
boundary groups of :mod:`lightnorm.verif.bfpvectors` (all-zero, one huge element, Inf/NaN in a
group, mantissa overflow on rounding, subnormals).  Rounding mode, FTZ, depth and back-pressure
rotate over the cases so each codec meets all of them.
"""

import os

import pytest

from lightnorm.golden.formats import BF16, E6M5, FP10_154, FP10_163, FP16, FP32, BfpFormat

from .units import Case, run_case

FORMATS = [FP32, FP16, BF16, FP10_154, FP10_163, E6M5]
MODES = [("rne", True), ("rtz", False), ("rtz", True), ("rne", False)]
PAUSES = [(0.0, 0.0), (0.2, 0.3), (0.35, 0.45)]
#: Vectors per operation; ``LIGHTNORM_VECTORS`` lowers it for the slower Icarus runs in CI.
N_DEFAULT = int(os.environ.get("LIGHTNORM_VECTORS", "20000"))
#: Groups per default-regression run: one group is 8 to 16 elements, so 5,000 groups are
#: 40,000+ element conversions per run; the long matrix keeps N_DEFAULT groups.  (The BFP runs
#: were the slowest of `make test`, 20-90 s each with 20,000 groups.)
N_GROUPS = min(N_DEFAULT, 5000)
UNITS = ["bfp_encoder", "bfp_decoder", "bfp_roundtrip"]


def _case(unit, fmt, mode, stages, man_bits, group=8):
    fmt = fmt.replace(rounding=mode[0], subnormals=mode[1])
    return Case(unit, fmt, stages, BfpFormat(group, man_bits, rounding=mode[0]))


def _default_cases():
    for ui, unit in enumerate(UNITS):
        for fi, fmt in enumerate(FORMATS):
            mode = MODES[(ui + fi) % len(MODES)]
            stages = (ui + fi) % 3
            man_bits = 3 + (fi + 2 * ui) % 6            # 3..8
            c = _case(unit, fmt, mode, stages, man_bits)
            yield pytest.param(c, PAUSES[(ui + fi) % len(PAUSES)], id=c.name)


def _matrix_cases():
    for unit in UNITS:
        for fmt in FORMATS:
            for mode in MODES:
                for group, man_bits in ((4, 3), (8, 5), (16, 8)):
                    c = _case(unit, fmt, mode, 1 + man_bits % 2, man_bits, group)
                    yield pytest.param(c, PAUSES[1], id=c.name)


@pytest.mark.sim
@pytest.mark.parametrize("case, pauses", list(_default_cases()))
def test_bfp_codec(case, pauses):
    result = run_case(case, N_GROUPS, tag="bfp", in_pause=pauses[0], out_pause=pauses[1])
    assert result["received"] == result["vectors"] >= N_GROUPS


@pytest.mark.sim
@pytest.mark.long
@pytest.mark.parametrize("case, pauses", list(_matrix_cases()))
def test_bfp_matrix(case, pauses):
    result = run_case(case, N_DEFAULT, tag="bfp-matrix", in_pause=pauses[0], out_pause=pauses[1])
    assert result["received"] == result["vectors"] >= N_DEFAULT
