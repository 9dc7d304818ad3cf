"""cocotb testbench of the BN unit's AXI4-Stream top (rtl/bn/axis.py), driven by cocotbext-axi.

Driven by :mod:`lightnorm.verif.test_bn_axis`, which writes a pickle (``LIGHTNORM_TB_CONFIG``)
with the wrapper's streams and one or more *phases*: the frames to send on every input stream
and the frames expected on every output stream (golden beats of :mod:`lightnorm.golden.bn`,
cut into frames by the rules of docs/interface.md).  Per phase:

* ``aresetn`` is held low for ``reset_cycles`` rising edges (default 3; the sources and sinks
  follow it: ``reset_active_level=False``);
* every stream gets the phase's pause pattern through ``set_pause_generator`` (sources
  withhold ``tvalid``, sinks ``tready``; Markov pauses of :func:`harness.pause_pattern`);
* the frames go out with :class:`cocotbext.axi.AxiStreamSource` (``tlast`` on each frame's
  last beat) and come back through :class:`cocotbext.axi.AxiStreamSink`, which cuts frames
  at ``tlast``; the received frames must equal the expected ones beat for beat (data) and in
  length (``tlast`` positions), with nothing left over, lost or duplicated;
* :class:`AxisWatch` samples every stream once per cycle (after the falling edge, in
  ReadOnly, so it sees what the next rising edge takes): on outputs, ``tvalid`` may not fall
  and ``tdata``/``tlast`` may not change while a beat is held; it also times the accepted
  beats, so the pause-free phase's cycles per command are compared with the cycle model
  (the wrapper adds no cycle).

The verdict (errors per phase, cycles, frames) goes to ``result.json``.
"""

import itertools
import json
import os
import pickle
from pathlib import Path

import numpy as np
import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from .harness import pause_pattern


class AxisWatch:
    """Per-cycle record and protocol check of every AXI4-Stream port of the DUT.

    Parameters
    ----------
    dut : cocotb handle
    streams : list of dict
        ``{"name", "direction"}`` per stream.
    """

    def __init__(self, dut, streams):
        self.dut = dut
        self.ports = {s["name"]: (s["direction"],
                                  *(getattr(dut, f"{s['name']}_{k}")
                                    for k in ("tvalid", "tready", "tdata", "tlast")))
                      for s in streams}
        self.restart()

    def restart(self):
        """Forget everything recorded (at the start of a phase)."""
        self.cycle = 0
        self.beats = {n: [] for n in self.ports}      # (tdata, tlast) of each accepted beat
        self.cycles = {n: [] for n in self.ports}     # the cycle of each accepted beat
        self.held = {n: None for n in self.ports}     # (tdata, tlast) offered, not taken
        self.errors = []

    def _error(self, text):
        if len(self.errors) < 20:
            self.errors.append(text)

    async def run(self):
        """Sample once per cycle, forever: after the falling edge, in ReadOnly."""
        while True:
            await FallingEdge(self.dut.aclk)
            await ReadOnly()
            self.sample()

    def sample(self):
        """Record and check one cycle (the handshakes the next rising edge takes)."""
        if not self.dut.aresetn.value:
            self.held = {n: None for n in self.ports}
            return
        for name, (direction, tvalid, tready, tdata, tlast) in self.ports.items():
            held = self.held[name]
            if not tvalid.value:
                if held is not None and direction == "out":
                    self._error(f"cycle {self.cycle}: {name}_tvalid fell while beat "
                                f"{_show(held)} was held (AXI4-Stream protocol)")
                self.held[name] = None
                continue
            data, last = tdata.value, tlast.value
            beat = (data.to_unsigned() if data.is_resolvable else None,
                    int(last) if last.is_resolvable else None)
            if direction == "out" and held is not None and beat != held:
                self._error(f"cycle {self.cycle}: {name} (tdata, tlast) changed from "
                            f"{_show(held)} to {_show(beat)} while held (they must be stable "
                            f"until tready)")
            if tready.value:
                self.beats[name].append(beat)
                self.cycles[name].append(self.cycle)
                self.held[name] = None
            else:
                self.held[name] = beat
        self.cycle += 1


def _show(beat):
    data, last = beat
    return f"({'X' if data is None else hex(data)}, {'X' if last is None else last})"


def _compare(name, expected, got, errors, limit=6):
    """Frames ``got`` against ``expected``: beat data, frame lengths (tlast), counts."""
    flat_e = [b for f in expected for b in f]
    flat_g = [b for f in got for b in f]
    where = [(i, j) for i, f in enumerate(expected) for j in range(len(f))]
    bad = [k for k in range(min(len(flat_e), len(flat_g))) if flat_g[k] != flat_e[k]]
    for k in bad[:limit]:
        errors.append(f"{name} beat {k} (frame {where[k][0]}, beat {where[k][1]}): expected "
                      f"0x{flat_e[k]:x}, got 0x{flat_g[k]:x}")
    if len(bad) > limit:
        errors.append(f"{name}: {len(bad)} mismatching beats in all")
    lens_e, lens_g = [len(f) for f in expected], [len(f) for f in got]
    for i, (le, lg) in enumerate(zip(lens_e, lens_g)):
        if le != lg:
            errors.append(f"{name} frame {i}: tlast on its beat {lg - 1}, expected on beat "
                          f"{le - 1} (frame lengths from there: {lens_g[i:i + 4]}, expected "
                          f"{lens_e[i:i + 4]})")
            break
    if len(flat_g) != len(flat_e) or len(got) != len(expected):
        what = "lost" if len(flat_g) < len(flat_e) else "duplicated or spurious"
        errors.append(f"{name}: expected {len(expected)} frames of {len(flat_e)} beats, "
                      f"received {len(got)} frames of {len(flat_g)} beats ({what} beats)")
    return len(bad)


async def _run_phase(dut, phase, srcs, sinks, watch, seed):
    rng = np.random.default_rng(seed)
    clk = dut.aclk
    await FallingEdge(clk)
    for port in list(srcs.values()) + list(sinks.values()):
        port.clear_pause_generator()
        port.pause = False
    dut.aresetn.value = 0
    for _ in range(phase.get("reset_cycles", 3)):
        await RisingEdge(clk)
    await FallingEdge(clk)
    dut.aresetn.value = 1
    for sink in sinks.values():
        sink.clear()
    watch.restart()
    p, burst = phase["pause"], phase.get("burst", 3.0)
    if p:
        for port in list(srcs.values()) + list(sinks.values()):
            go = pause_pattern(rng, 4096, p, burst)
            port.set_pause_generator(itertools.cycle((~go).tolist()))
    for name, frames in phase["frames"].items():
        for frame in frames:
            srcs[name].send_nowait(AxiStreamFrame(frame))

    errors = []
    want = {name: len(frames) for name, frames in phase["expected"].items()}
    cycles = 0
    while not (all(sinks[n].count() >= want[n] for n in want)
               and all(s.idle() for s in srcs.values())):
        await RisingEdge(clk)
        cycles += 1
        if cycles >= phase["max_cycles"]:
            errors.append(f"timeout after {cycles} cycles: frames received " + ", ".join(
                f"{n} {sinks[n].count()}/{want[n]}" for n in want) + "; inputs " + ", ".join(
                f"{n} {'all sent' if s.idle() else 'not all accepted'}"
                for n, s in srcs.items()))
            break
    # Trailing beats: take everything for a while longer.
    for sink in sinks.values():
        sink.clear_pause_generator()
        sink.pause = False
    for _ in range(64):
        await RisingEdge(clk)

    got = {}
    for name, sink in sinks.items():
        got[name] = []
        while not sink.empty():
            got[name].append([int(b) for b in sink.recv_nowait().tdata])
    bad = 0
    for name in sinks:
        bad += _compare(name, phase["expected"][name], got[name], errors)
        # beats the watch saw accepted but no tlast closed
        open_beats = len(watch.beats[name]) - sum(len(f) for f in got[name])
        if open_beats:
            errors.append(f"{name}: {open_beats} beat(s) after the last tlast (frame not "
                          f"closed)")
    errors += watch.errors

    # Cycles per command through the AXIS top (pause-free phase): header accepted -> last dout
    # beat, against the unit's cycle model.
    commands, ci, oi = [], 0, 0
    for c in phase["commands"]:
        entry = dict(c)
        heads, outs = watch.cycles["cmd"], watch.cycles["dout"]
        if len(heads) > ci and len(outs) >= oi + c["dout_beats"]:
            entry["measured"] = outs[oi + c["dout_beats"] - 1] - heads[ci] + 1
            if not p and entry["measured"] != c["cycles"]:
                errors.append(f"{c['mode']} m={c['m']} groups={c['groups']}: "
                              f"{entry['measured']} cycles through the AXIS top, the cycle "
                              f"model says {c['cycles']}")
        ci += c["cmd_beats"]
        oi += c["dout_beats"]
        commands.append(entry)
    return {"errors": errors, "mismatches": bad, "cycles": watch.cycle, "pause": p,
            "commands": commands, "frames": {n: len(f) for n, f in got.items()}}


@cocotb.test()
async def bn_axis_frames(dut):
    """Every phase of the pickle: reset, frames in, frames out, compare."""
    path = Path(os.environ["LIGHTNORM_TB_CONFIG"])
    spec = pickle.loads(path.read_bytes())
    dut.aresetn.value = 0
    Clock(dut.aclk, 10, unit="ns").start()
    srcs, sinks = {}, {}
    for s in spec["streams"]:
        bus = AxiStreamBus.from_prefix(dut, s["name"])
        # byte_lanes=1: one frame element is one whole beat (tdata of any width).
        cls = AxiStreamSource if s["direction"] == "in" else AxiStreamSink
        (srcs if s["direction"] == "in" else sinks)[s["name"]] = cls(
            bus, dut.aclk, dut.aresetn, reset_active_level=False, byte_lanes=1)
    watch = AxisWatch(dut, spec["streams"])
    cocotb.start_soon(watch.run())
    phases = []
    for k, phase in enumerate(spec["phases"]):
        phases.append(await _run_phase(dut, phase, srcs, sinks, watch, spec["seed"] + k))
    passed = all(not p["errors"] for p in phases)
    (path.parent / "result.json").write_text(json.dumps({"passed": passed, "phases": phases},
                                                        indent=1))
    assert passed, "; ".join(e for p in phases for e in p["errors"][:5])
