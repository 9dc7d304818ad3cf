"""The shared cocotb testbench: clock, reset, stream source and sink with pause patterns, a
monitor of both handshakes, and a scoreboard with the canonical-NaN rule.

It drives any component with the stream ports of docs/conventions.md (``i__payload``,
``i__valid``, ``i__ready``, ``o__payload``, ``o__valid``, ``o__ready``, ``clk``, ``rst``).

Timing discipline (race-free on every simulator): inputs change only right after the falling clock
edge; every handshake is sampled in the ``ReadOnly`` phase of that same half period, i.e. with the
values the next rising edge will see.  That costs two awaits per clock cycle and nothing else: the
source, sink and monitor are plain objects stepped from one loop, not coroutines of their own.

Checks (each one can fail; ``verif/test_harness.py`` proves it with faulty stand-in components):

* every output transfer equals the expected bit pattern, in order (NaNs: the canonical NaN);
* exactly as many output transfers as input vectors: nothing lost or duplicated (a few drain
  cycles after the last expected output catch trailing duplicates); the first divergence is
  classified as lost / duplicated / corrupted;
* stream protocol on ``o``: once ``o.valid`` is asserted it stays asserted with a stable payload
  until ``o.ready`` takes it;
* latency: each transfer leaves between ``latency`` and ``latency + stall cycles`` after it
  entered, and exactly ``latency`` cycles after when the output never stalled meanwhile.
"""

import time

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge, Timer

from .payload import describe, mismatches

__all__ = ["pause_pattern", "StreamSource", "StreamSink", "StreamMonitor", "Scoreboard",
           "StreamTestbench"]


def pause_pattern(rng, length, pause, burst):
    """A boolean "go" pattern with pauses: Markov on/off runs (bursty, not i.i.d.).

    Parameters
    ----------
    rng : numpy.random.Generator
    length : int
        Number of cycles.
    pause : float
        Long-run fraction of cycles that pause (0 = never pause).
    burst : float
        Mean length of a pause run in cycles (>= 1); go runs get the length that gives ``pause``.
    """
    if not 0 <= pause < 1:
        raise ValueError(f"pause must be in [0, 1), not {pause}")
    if pause == 0:
        return np.ones(length, dtype=bool)
    if burst < 1:
        raise ValueError(f"burst must be >= 1, not {burst}")
    go_mean = burst * (1 - pause) / pause
    runs = []
    total = 0
    go = bool(rng.integers(0, 2))
    while total < length:
        k = 4096
        mean = go_mean if go else burst
        lens = rng.geometric(1 / max(mean, 1.0), size=k)
        # Alternate go/pause runs: even entries go (or pause), odd the other.
        other = rng.geometric(1 / max(burst if go else go_mean, 1.0), size=k)
        inter = np.empty(2 * k, dtype=np.int64)
        inter[0::2], inter[1::2] = lens, other
        runs.append(inter)
        total += int(inter.sum())
    runs = np.concatenate(runs)
    values = np.zeros(len(runs), dtype=bool)
    values[0::2] = go
    values[1::2] = not go
    return np.repeat(values, runs)[:length]


class StreamSource:
    """Drives ``<prefix>__payload``/``__valid``: one vector per transfer, pausing per pattern.

    Once ``valid`` is raised it stays raised with the same payload until ``ready`` takes it
    (the producer's half of the protocol).  While idle the payload bus carries the complement of
    the next vector, so a unit that samples the payload outside a transfer gets garbage.
    """

    def __init__(self, dut, stimulus, go, *, prefix="i", width):
        self.valid = getattr(dut, f"{prefix}__valid")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.stimulus = [int(v) for v in stimulus]
        self.go = go
        self.mask = (1 << width) - 1
        self.index = 0          # next vector to send
        self.offering = False   # valid is raised this cycle
        self.idle_for = None    # vector whose complement is on the idle bus
        self.valid_high = False # what the valid wire carries (reset() drives it low)
        self.cycles = []        # cycle of each input transfer

    @property
    def done(self):
        return self.index == len(self.stimulus)

    def drive(self, cycle):
        if self.offering:
            return
        if not self.done and self.go[cycle % len(self.go)]:
            self.payload.value = self.stimulus[self.index]
            if not self.valid_high:
                self.valid.value = 1
                self.valid_high = True
            self.offering = True
        elif self.idle_for != self.index:
            # Signal writes cost as much as a clock edge in cocotb: write on changes only.
            self.valid.value = 0
            self.valid_high = False
            if not self.done:
                self.payload.value = ~self.stimulus[self.index] & self.mask
            self.idle_for = self.index

    def sample(self, cycle):
        if self.offering and self.ready.value:
            self.cycles.append(cycle)
            self.index += 1
            self.offering = False


class StreamSink:
    """Drives ``<prefix>__ready`` from a pattern and records every transfer."""

    def __init__(self, dut, go, *, prefix="o"):
        self.valid = getattr(dut, f"{prefix}__valid")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.go = go
        self.accepting = False
        self.received = []
        self.cycles = []

    def drive(self, cycle, *, force=False):
        want = bool(force or self.go[cycle % len(self.go)])
        if want != self.accepting:
            self.ready.value = int(want)
            self.accepting = want

    def read_payload(self):
        value = self.payload.value
        return value.to_unsigned() if value.is_resolvable else None


class StreamMonitor:
    """Watches the output handshake: protocol (valid held, payload stable) and stall counts."""

    def __init__(self, sink):
        self.sink = sink
        self.held = None            # payload offered but not taken last cycle
        self.stalls = [0]           # cumulative output stall cycles, one entry per cycle
        self.errors = []

    def sample(self, cycle):
        sink = self.sink
        valid = bool(sink.valid.value)
        if self.held is not None:
            if not valid:
                self._error(f"cycle {cycle}: o.valid fell before its payload "
                            f"0x{self.held:x} was accepted (stream protocol)")
            else:
                now = sink.read_payload()
                if now != self.held:
                    self._error(f"cycle {cycle}: o.payload changed from 0x{self.held:x} to "
                                f"{now if now is None else hex(now)} while stalled")
        stalled = 0
        self.held = None
        if valid:
            if sink.accepting:
                sink.received.append(sink.read_payload())
                sink.cycles.append(cycle)
            else:
                stalled = 1
                self.held = sink.read_payload()
        self.stalls.append(self.stalls[-1] + stalled)

    def _error(self, text):
        if len(self.errors) < 20:
            self.errors.append(text)


class Scoreboard:
    """Compares the received transfers with the expected ones, after the run, vectorized.

    Parameters
    ----------
    in_fields, out_fields : list of Field
        Payload layouts (messages decode operands and results with them).
    stimulus, expected : sequence of int
    max_report : int
        Mismatches described in full; the total count is always reported.
    """

    def __init__(self, in_fields, out_fields, stimulus, expected, *, max_report=10):
        self.in_fields, self.out_fields = in_fields, out_fields
        self.stimulus = [int(v) for v in stimulus]
        self.expected = [int(v) for v in expected]
        self.max_report = max_report

    def _vector(self, k):
        return describe(self.in_fields, self.stimulus[k])

    def check(self, received):
        """Error messages (empty list: all good)."""
        errors = []
        exp, n = self.expected, len(self.expected)
        if any(v is None for v in received):
            k = next(i for i, v in enumerate(received) if v is None)
            errors.append(f"transfer {k}: o.payload has X/Z bits")
            received = [0 if v is None else v for v in received]
        m = min(n, len(received))
        bad = mismatches(self.out_fields, np.array(exp[:m], dtype=object),
                         np.array(received[:m], dtype=object))
        if len(received) != n:
            errors.append(self._count_message(received))
        if len(bad):
            errors.append(f"{len(bad)} of {m} results differ from the golden model "
                          f"(first {min(len(bad), self.max_report)} below)")
            for k in bad[:self.max_report]:
                errors.append(f"  vector {k}: {self._vector(k)}\n"
                              f"      got      {describe(self.out_fields, received[k])}\n"
                              f"      expected {describe(self.out_fields, exp[k])}")
        return errors

    def _count_message(self, received):
        n, r = len(self.expected), len(received)
        what = "lost" if r < n else "duplicated or spurious"
        text = f"{abs(n - r)} transfer(s) {what}: sent {n} vectors, received {r} results"
        # Locate the first divergence and say what it looks like.
        for k in range(min(n, r)):
            if received[k] != self.expected[k]:
                # A gap: the transfer resumes a few vectors further on.
                skip = next((j for j in range(1, 17) if k + j < n
                             and received[k] == self.expected[k + j]), None)
                if skip is not None:
                    text += (f"; the results of vectors {k}..{k + skip - 1} are missing "
                             f"(first: {self._vector(k)})")
                elif k > 0 and received[k] == received[k - 1]:
                    text += f"; the result of vector {k - 1} arrived twice"
                else:
                    text += f"; first divergence at transfer {k}"
                break
        return text


class StreamTestbench:
    """Clock, reset and the drive/sample loop around one streaming component.

    Parameters
    ----------
    dut : cocotb handle
    period_ns : int
        Clock period.
    """

    def __init__(self, dut, *, period_ns=10):
        self.dut = dut
        self.period_ns = period_ns
        self.log = dut._log

    async def reset(self, cycles=2):
        """Start the clock and hold the synchronous, active-high ``rst`` for ``cycles`` edges.

        A combinational component (``stages=0``) has no ``clk``/``rst`` ports; its "cycles" are
        then clock periods of simulated time.
        """
        dut = self.dut
        dut.i__valid.value = 0
        dut.o__ready.value = 0
        if not hasattr(dut, "clk"):
            self._step = Timer(self.period_ns, unit="ns")
            await self._step
            return
        self._step = FallingEdge(dut.clk)
        Clock(dut.clk, self.period_ns, unit="ns").start()
        if hasattr(dut, "rst"):
            dut.rst.value = 1
            for _ in range(cycles):
                await RisingEdge(dut.clk)
        await self._step
        if hasattr(dut, "rst"):
            dut.rst.value = 0

    async def stream(self, source, sink, *, latency, max_cycles, drain=None):
        """Run until every expected result arrived (plus ``drain`` cycles), or ``max_cycles``.

        Returns
        -------
        dict
            ``cycles``, ``wall_s`` and ``errors`` (protocol, latency and timeout errors; results
            are judged by the :class:`Scoreboard`).
        """
        monitor = StreamMonitor(sink)
        n = len(source.stimulus)
        drain = latency + 8 if drain is None else drain
        idle = latency + 256    # cycles without progress that count as "stuck"
        falling, settled = self._step, ReadOnly()
        cycle, extra = 0, 0
        start = time.perf_counter()
        errors = []
        while True:
            if cycle > 0:
                await falling
            finished = len(sink.received) >= n
            source.drive(cycle)
            sink.drive(cycle, force=finished)
            await settled
            source.sample(cycle)
            monitor.sample(cycle)
            cycle += 1
            if finished:
                extra += 1
                if extra > drain:
                    break
            if source.done and not finished and sink.cycles and source.cycles and \
                    cycle - max(sink.cycles[-1], source.cycles[-1]) > idle:
                errors.append(f"no result for {idle} cycles after the last vector was accepted: "
                              f"{len(sink.received)} of {n} results received")
                break
            if cycle >= max_cycles:
                errors.append(f"timeout after {cycle} cycles: {source.index} of {n} vectors "
                              f"accepted, {len(sink.received)} results received")
                break
        wall = time.perf_counter() - start
        errors += monitor.errors
        errors += self._latency_errors(source.cycles, sink.cycles, monitor.stalls, latency)
        return {"cycles": cycle, "wall_s": wall, "errors": errors}

    @staticmethod
    def _latency_errors(in_cycles, out_cycles, stalls, latency):
        k = min(len(in_cycles), len(out_cycles))
        if not k:
            return []
        tin = np.array(in_cycles[:k])
        tout = np.array(out_cycles[:k])
        st = np.array(stalls)
        # stalls[c] counts stalled cycles before cycle c; stalls strictly inside (tin, tout).
        between = st[tout] - st[tin + 1]
        delay = tout - tin
        bad = np.flatnonzero((delay < latency) | (delay > latency + between)
                             | ((between == 0) & (delay != latency)))
        if not len(bad):
            return []
        j = bad[0]
        return [f"latency: transfer {j} entered in cycle {tin[j]} and left in cycle {tout[j]} "
                f"({delay[j]} cycles, {between[j]} output stall cycles in between), but the "
                f"component's latency property is {latency} ({len(bad)} such transfers)"]
