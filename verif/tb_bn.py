"""cocotb testbench of the BN unit: whole layers through the five streams, checked bit for bit.

Driven by :mod:`lightnorm.verif.test_bn`, which writes a pickle (``LIGHTNORM_TB_CONFIG``) with
one or more *phases*.  A phase is a list of commands (forward, backward, inference layers, back
to back) with the beats of every stream precomputed by :mod:`lightnorm.golden.bn`:
``cmd`` and ``din`` are driven, ``dout``, ``res`` and ``err`` (one beat per refused command,
none unless the phase lists them) are expected in order.  Each phase starts
with a synchronous reset (so "reset between layers" is exercised), and has its own pause
pattern on all five streams (``pause = 0`` gives the cycle counts of the streaming floor).

Reuses the shared harness (:mod:`lightnorm.verif.harness`): :class:`StreamSource` /
:class:`StreamSink` / :class:`StreamMonitor` (protocol checks on ``dout`` and ``res``) and the
Markov pause patterns; the drive/sample discipline is the harness's (inputs change after the
falling edge, handshakes sampled in ReadOnly).

The verdict -- per phase: mismatches (first few, with stream and beat index), lost/duplicated
beats, protocol errors, and cycles per command and per pass -- goes to ``result.json``.
"""

import json
import os
import pickle
import time
from pathlib import Path

import numpy as np
import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from .harness import pause_pattern, StreamSource, StreamSink, StreamMonitor


def _compare(name, expected, got, errors, limit=8):
    n = min(len(expected), len(got))
    bad = [k for k in range(n) if got[k] is None or int(got[k]) != int(expected[k])]
    for k in bad[:limit]:
        errors.append(f"{name} beat {k}: expected 0x{int(expected[k]):x}, got "
                      f"{'X' if got[k] is None else hex(got[k])}")
    if len(bad) > limit:
        errors.append(f"{name}: {len(bad)} mismatching beats in all")
    if len(got) != len(expected):
        errors.append(f"{name}: expected {len(expected)} beats, received {len(got)} "
                      f"({'lost' if len(got) < len(expected) else 'duplicated'} beats)")
    return len(bad)


async def _run_phase(dut, phase, seed):
    rng = np.random.default_rng(seed)
    span = 4096
    p, burst = phase["pause"], phase.get("burst", 3.0)
    go = {s: pause_pattern(rng, span, p, burst) for s in ("cmd", "din", "dout", "res")}
    go["err"] = pause_pattern(rng, span, p, burst)     # drawn last: the others stay as they were
    cmd = StreamSource(dut, phase["cmd"], go["cmd"], prefix="cmd", width=phase["cmd_width"])
    din = StreamSource(dut, phase["din"], go["din"], prefix="din", width=phase["din_width"])
    dout = StreamSink(dut, go["dout"], prefix="dout")
    res = StreamSink(dut, go["res"], prefix="res")
    err = StreamSink(dut, go["err"], prefix="err")
    mons = [StreamMonitor(dout), StreamMonitor(res), StreamMonitor(err)]
    await FallingEdge(dut.clk)      # leave a previous phase's ReadOnly before writing
    for s in (cmd, din):
        s.valid.value = 0
    for s in (dout, res, err):
        s.ready.value = 0
        s.accepting = False
    dut.rst.value = 1
    for _ in range(3):
        await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0

    n_out, n_res = len(phase["dout"]), len(phase["res"])
    expect_err = phase.get("err", [])
    budget = phase["max_cycles"]
    cycle, extra, errors = 0, 0, []
    start = time.perf_counter()
    while True:
        if cycle:
            await FallingEdge(dut.clk)
        finished = (len(dout.received) >= n_out and len(res.received) >= n_res
                    and len(err.received) >= len(expect_err) and cmd.done and din.done)
        cmd.drive(cycle)
        din.drive(cycle)
        dout.drive(cycle, force=finished)
        res.drive(cycle, force=finished)
        err.drive(cycle, force=finished)
        await ReadOnly()
        cmd.sample(cycle)
        din.sample(cycle)
        for mon in mons:
            mon.sample(cycle)
        cycle += 1
        if finished:
            extra += 1
            if extra > 64:          # trailing duplicates would show up here
                break
        if cycle >= budget:
            errors.append(f"timeout after {cycle} cycles: cmd {cmd.index}/{len(cmd.stimulus)}, "
                          f"din {din.index}/{len(din.stimulus)}, dout {len(dout.received)}/"
                          f"{n_out}, res {len(res.received)}/{n_res}, err "
                          f"{len(err.received)}/{len(expect_err)}")
            break
    wall = time.perf_counter() - start
    for mon, name in zip(mons, ("dout", "res", "err")):
        errors += [f"{name}: {e}" for e in mon.errors]
    bad = _compare("dout", phase["dout"], dout.received, errors)
    bad += _compare("res", phase["res"], res.received, errors)
    bad += _compare("err", expect_err, err.received, errors)

    # Cycle accounting per command: header accepted -> its last dout beat (and per pass).
    commands, ci, di, oi, ri, ei = [], 0, 0, 0, 0, 0
    for c in phase["commands"]:
        if c.get("refused"):
            # A refused command: its header, G lane beats and dropped data beats; one err beat.
            entry = dict(c)
            if ci < len(cmd.cycles):
                entry["header_cycle"] = int(cmd.cycles[ci])
            if ei < len(err.cycles):
                entry["err_cycle"] = int(err.cycles[ei])
            ci += c["lanes"] + 1
            di += c["din_beats"]
            ei += 1
            commands.append(entry)
            continue
        G, m, ng, npass = c["lanes"], c["m"], c["groups"], c["passes"]
        heads = cmd.cycles[ci:ci + ng * (G + 1):G + 1]
        ci += ng * (G + 1)
        n_din = ng * npass * m
        dcyc = din.cycles[di:di + n_din]
        di += n_din
        n_o = ng * m
        ocyc = dout.cycles[oi:oi + n_o]
        oi += n_o
        n_r = ng * G if c["mode"] != "inference" else 0
        rcyc = res.cycles[ri:ri + n_r]
        ri += n_r
        entry = dict(c)
        if heads:
            entry["header_cycle"] = int(heads[0])
        if len(heads) == ng and len(ocyc) == n_o and len(dcyc) == n_din and len(rcyc) == n_r:
            entry["cycles"] = int(ocyc[-1] - heads[0] + 1)
            # per pass of group 0: first to last data-in beat of the pass
            entry["pass_cycles"] = [int(dcyc[k * m + m - 1] - dcyc[k * m] + 1)
                                    for k in range(npass)]
            entry["floor"] = ng * npass * m
            # per group: header accepted -> last dout beat, each pass's first and last
            # data-in beat, the first and last dout and res beat, all relative to that header
            # (the gaps are drain + scalar segments), and the header relative to the previous
            entry["groups_detail"] = [{
                "cycles": int(ocyc[(g + 1) * m - 1] - heads[g] + 1),
                "passes": [[int(dcyc[(g * npass + k) * m] - heads[g]),
                            int(dcyc[(g * npass + k) * m + m - 1] - heads[g])]
                           for k in range(npass)],
                "dout": [int(ocyc[g * m] - heads[g]), int(ocyc[g * m + m - 1] - heads[g])],
                "res": ([int(rcyc[g * G] - heads[g]), int(rcyc[g * G + G - 1] - heads[g])]
                        if n_r else None),
                "after_previous_header": int(heads[g] - heads[g - 1]) if g else None,
            } for g in range(ng)]
        commands.append(entry)
    return {"errors": errors, "mismatches": bad, "cycles": cycle, "wall_s": wall,
            "beats": len(din.cycles) + len(dout.received), "commands": commands,
            "pause": p}


@cocotb.test()
async def bn_layers(dut):
    """Every phase of the pickle: reset, stream, compare, count cycles."""
    path = Path(os.environ["LIGHTNORM_TB_CONFIG"])
    spec = pickle.loads(path.read_bytes())
    Clock(dut.clk, 10, unit="ns").start()
    phases = []
    for k, phase in enumerate(spec["phases"]):
        phases.append(await _run_phase(dut, phase, spec["seed"] + k))
    passed = all(not p["errors"] for p in phases)
    (path.parent / "result.json").write_text(json.dumps({"passed": passed, "phases": phases},
                                                        indent=1))
    assert passed, "; ".join(e for p in phases for e in p["errors"][:5])
