"""The harness tests itself: a correct stand-in passes, each injected fault is caught.

The stand-in (:mod:`lightnorm.verif.standin`) passes its payload through unchanged, so the
expected results are the stimulus.  Its payload is 65 bits wide to exercise multi-limb packing.
"""

import numpy as np
import pytest

from lightnorm.golden.formats import FP16, E4M3
from lightnorm.verif.harness import pause_pattern
from lightnorm.verif.payload import Field, describe, mismatches
from lightnorm.verif.simulate import run_stream
from lightnorm.verif.standin import StreamRegister

WIDTH = 65


def _vectors(n, seed):
    rng = np.random.default_rng(seed)
    lo = rng.integers(0, 1 << 62, n).astype(object)
    hi = rng.integers(0, 8, n).astype(object)
    return lo | (hi << 62)


@pytest.mark.sim
@pytest.mark.parametrize("stages", [0, 3])
def test_standin_streams_everything(stages):
    stim = _vectors(4000, stages)
    result = run_stream(f"harness/standin_s{stages}", StreamRegister(WIDTH, stages=stages),
                        stim, stim, seed=stages, in_pause=0.3, out_pause=0.4)
    assert result["received"] == result["vectors"] == 4000


@pytest.mark.sim
@pytest.mark.parametrize("fault, message", [
    ("drop", r"(?s)transfer\(s\) lost.*missing"),
    ("duplicate", r"(?s)duplicated or spurious.*arrived twice"),
    ("corrupt", r"results differ from the golden model"),
    ("unstable", r"o.valid fell before"),
])
def test_harness_catches_fault(fault, message):
    stim = _vectors(2000, 7)
    with pytest.raises(AssertionError, match=message):
        run_stream(f"harness/fault_{fault}", StreamRegister(WIDTH, stages=2, fault=fault),
                   stim, stim, seed=1, in_pause=0.3, out_pause=0.5)


def test_canonical_nan_rule():
    f = [Field("", 0, 16, FP16)]
    exp = np.array([0x7e01, 0x7c00, 0x3c00], dtype=object)     # a non-canonical NaN, +Inf, 1.0
    assert list(mismatches(f, exp, np.array([FP16.canonical_nan, 0x7c00, 0x3c00]))) == []
    # Any other NaN is wrong, even the expected pattern itself: every NaN result is canonical.
    assert list(mismatches(f, exp, np.array([0x7e01, 0x7c00, 0x3c01]))) == [0, 2]
    assert "+1.5" in describe([Field("a", 0, 8, E4M3)], 0x3c)


def test_pause_pattern_rate_and_bursts():
    go = pause_pattern(np.random.default_rng(0), 200_000, 0.3, 4.0)
    assert abs((~go).mean() - 0.3) < 0.02
    edges = np.flatnonzero(np.diff(go.astype(int)) == 1)       # pause -> go transitions
    assert abs((~go).sum() / len(edges) - 4.0) < 0.3            # mean pause run length
    assert pause_pattern(np.random.default_rng(0), 100, 0.0, 1.0).all()
