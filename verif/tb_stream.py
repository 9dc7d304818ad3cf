"""cocotb testbench: stream a vector file through one streaming component and score the results.

Runs inside the simulator, started by :func:`lightnorm.verif.simulate.run_stream`, which writes
the run's ``config.json`` and ``vectors.npz`` and points ``LIGHTNORM_TB_CONFIG`` at the config.
The verdict is also written to ``result.json`` next to it, for the pytest side to report.
"""

import json
import os
from pathlib import Path

import numpy as np
import cocotb

from .harness import Scoreboard, StreamSink, StreamSource, StreamTestbench, pause_pattern
from .payload import fields_from_json, from_limbs

__all__ = ["stream_vectors"]


@cocotb.test()
async def stream_vectors(dut):
    """All vectors of the run through ``dut``, with random pauses on both sides."""
    config_path = Path(os.environ["LIGHTNORM_TB_CONFIG"])
    cfg = json.loads(config_path.read_text())
    arrays = np.load(config_path.parent / cfg["vectors"])
    stimulus = from_limbs(arrays["stimulus"])
    expected = from_limbs(arrays["expected"])
    in_fields = fields_from_json(cfg["in_fields"])
    out_fields = fields_from_json(cfg["out_fields"])
    n = len(stimulus)

    rng = np.random.default_rng(cfg["seed"])
    span = max(4096, 2 * n)
    # Python lists: indexing them per cycle is several times cheaper than NumPy scalars.
    in_go = pause_pattern(rng, span, cfg["in_pause"], cfg["burst"]).tolist()
    out_go = pause_pattern(rng, span, cfg["out_pause"], cfg["burst"]).tolist()
    # Generous bound: the expected cycle count at these pause rates, times four.
    expect = n / max(1e-3, (1 - cfg["in_pause"]) * (1 - cfg["out_pause"]))
    max_cycles = int(4 * expect) + 4 * cfg["latency"] + 1000

    tb = StreamTestbench(dut)
    await tb.reset()
    source = StreamSource(dut, stimulus, in_go,
                          width=max(f.offset + f.width for f in in_fields))
    sink = StreamSink(dut, out_go)
    run = await tb.stream(source, sink, latency=cfg["latency"], max_cycles=max_cycles)

    errors = list(run["errors"])
    errors += Scoreboard(in_fields, out_fields, stimulus, expected).check(sink.received)
    result = {
        "passed": not errors, "vectors": n, "received": len(sink.received),
        "cycles": run["cycles"], "wall_s": round(run["wall_s"], 3),
        "cycles_per_s": round(run["cycles"] / max(run["wall_s"], 1e-9)), "errors": errors,
    }
    (config_path.parent / "result.json").write_text(json.dumps(result, indent=1))
    dut._log.info("%d vectors, %d cycles in %.1f s (%d cycles/s)", n, run["cycles"],
                  run["wall_s"], result["cycles_per_s"])
    assert not errors, "\n".join(errors)
