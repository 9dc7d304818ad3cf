"""``control`` block: command parsing, the pass sequencer FSM, stream counters and results.

One command (docs/bn-spec.md section 7: a header beat and G lane beats) runs to completion
before the next header is read:

``HEADER -> LANES -> PASS -> (SCALAR -> PASS)* -> FINISH -> HEADER``

or, for a header the unit cannot execute (docs/interface.md, "Refused commands"),

``HEADER -> LANES -> REFUSE -> FINISH -> HEADER``

* the header checks (:func:`lightnorm.golden.bn.command_error` is their model) are
  combinational on the registered header fields; a refused command still takes its G lane
  beats (they belong to the command stream's framing) but loads nothing from them;
* ``REFUSE`` sends one ``err`` beat (code, mode, m) and takes and drops the ``passes * m``
  data-in beats the header announces (none for an unknown mode), so a host that streams a
  command's data regardless stays in step; nothing enters the datapath;

* ``PASS`` accepts exactly ``m`` data-in beats and ends when ``m`` beats have left the
  ``normalize`` pipeline (so its registers are empty before any constant changes);
* ``SCALAR`` runs one program segment of the shared scalar sequencer (:mod:`.recip`);
* the result beats (G per training command) are sent while the last pass streams, and
  ``FINISH`` waits for the last of them.

Passes per mode: forward range and conventional with variance "sumsq" ``STAT, Y``; forward
conventional ``STAT, VAR, Y``; backward ``BSTAT, DX``; inference ``Y``.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from lightnorm.golden.bn import ERRORS, ERROR_CODE_BITS, error_width

from .common import fp_convert, nested_forward
from .rangestat import SEGMENTS

__all__ = ["Control", "KIND_STAT", "KIND_VAR", "KIND_Y", "KIND_BSTAT", "KIND_DX",
           "MODE_FWD", "MODE_BWD", "MODE_INFER"]

#: Pass kinds: what the normalize pipeline computes and where its output goes.
KIND_STAT, KIND_VAR, KIND_Y, KIND_BSTAT, KIND_DX = range(5)
#: Command ``mode`` field values (docs/bn-spec.md section 7).
MODE_FWD, MODE_BWD, MODE_INFER = 0, 1, 2


def pass_plan(cfg):
    """``mode -> list of (kind, segment or None, results after the segment)``."""
    fwd_mu, fwd_final, bwd_final = (SEGMENTS.index(n) for n in
                                     ("fwd_mu", "fwd_final", "bwd_final"))
    if cfg.forward_passes == 2:          # range; conventional with variance "sumsq"
        fwd = [(KIND_STAT, fwd_final, True), (KIND_Y, None, False)]
    else:
        fwd = [(KIND_STAT, fwd_mu, False), (KIND_VAR, fwd_final, True), (KIND_Y, None, False)]
    return {MODE_FWD: fwd,
            MODE_BWD: [(KIND_BSTAT, bwd_final, True), (KIND_DX, None, False)],
            MODE_INFER: [(KIND_Y, None, False)]}


class Control(wiring.Component):
    """Command/result stream framing and the pass FSM.

    Parameters
    ----------
    cfg : BNConfig

    Attributes
    ----------
    cmd : In(stream.Signature(cfg.cmd_width))
    res : Out(stream.Signature(cfg.result_width))
    err : Out(stream.Signature(lightnorm.golden.bn.error_width(cfg)))
        The unit's command input, result output and refused-command output.
    mode, m, q, r, inv_m, ck, eps : Out(2), Out(m_bits), Out(m_bits), Out(r_bits), Out(CW) x 3
        Header fields of the current command.
    p0, p1, p2 : Out(CW).array(G)
        Lane words of the current command.
    kind : Out(3)
        Kind of the current pass (``KIND_*``).
    accept : Out(1)
        The current pass still takes data-in beats.
    in_fire, out_fire : In(1)
        A beat entered / left the normalize pipeline this cycle.
    first, last, chunk : Out(1), Out(1), Out(chunk bits)
        Side-band of the entering beat: chunk boundaries and chunk index (the unit keeps no
        absolute position besides the pass's beat counter).
    clear : Out(1)
        Clear the accumulators.
    seq_start, seq_entry, seq_done : Out(1), Out(range(len(SEGMENTS))), In(1)
        Handshake with the scalar sequencer.
    load_lane, load_index : Out(1), Out(range(max(2, G)))
        A backward lane beat for lane ``load_index`` is taken this cycle (normalize rounds its
        mu and s into CB registers); never for a refused command.
    load_words : Out(CW).array(3)
        The p0, p1, p2 words of the lane beat on the command stream.
    load_ab, load_ab_words : Out(1), Out(PB.width).array(2)
        Nested forward only (:func:`.common.nested_forward`): an inference lane beat for lane
        ``load_index`` is taken this cycle (never for a refused command), and its a and b
        (C words) widened exactly into PB, the format the datapath's cores take them in (one
        converter per word, shared by the lanes): the sequencer's ``a_c``, ``b_c`` load them.
    seq : Out(wiring.Signature(...))
        The values the result beats carry, in (``.array(G)``), from the ``recip`` block's
        outputs of the same names: ``mu_c``, ``s_c`` (C), ``sig`` (A), ``dgamma``, ``dbeta``
        (AB).
    error : Out(ERROR_CODE_BITS)
        Refusal code of the registered header (:data:`lightnorm.golden.bn.ERRORS`; 0: it
        runs), valid from the first lane beat on.
    drop : Out(1)
        A refused command still takes data-in beats (they bypass the datapath).
    drop_fire : In(1)
        A data-in beat was taken and dropped this cycle.
    dout_last, res_last : Out(1)
        Frame ends for the stream wrappers (:mod:`.axis`): the data-out beat on offer is the
        m-th of its pass (``dout`` is only valid in the last pass, whose beats ``out_cnt``
        counts), and the result beat on offer is lane G-1's.  Both come from counters that
        advance only on a transfer, so they are stable while a beat is held.
    """

    def __init__(self, cfg):
        self.cfg = cfg
        G, MB, CW, K = cfg.lanes, cfg.m_bits, cfg.const_width, cfg.chunks
        C, A, AB = cfg.fwd_const, cfg.fwd_acc_fmt, cfg.bwd_acc_fmt
        results = {"mu_c": C, "sig": A, "s_c": C, "dgamma": AB, "dbeta": AB}
        nested = {}
        if nested_forward(cfg):
            nested = {"load_ab": Out(1), "load_ab_words": Out(cfg.bwd_op.width).array(2)}
        super().__init__({
            "cmd": In(stream.Signature(cfg.cmd_width)),
            "res": Out(stream.Signature(cfg.result_width)),
            "err": Out(stream.Signature(error_width(cfg))),
            "mode": Out(2), "m": Out(MB), "q": Out(MB), "r": Out(cfg.r_bits),
            "inv_m": Out(CW), "ck": Out(CW), "eps": Out(CW),
            "p0": Out(CW).array(G), "p1": Out(CW).array(G), "p2": Out(CW).array(G),
            "kind": Out(3), "accept": Out(1), "in_fire": In(1), "out_fire": In(1),
            "first": Out(1), "last": Out(1), "chunk": Out(max(1, (K - 1).bit_length())),
            "clear": Out(1),
            "seq_start": Out(1), "seq_entry": Out(range(len(SEGMENTS))), "seq_done": In(1),
            "load_lane": Out(1), "load_index": Out(range(max(2, G))),
            "load_words": Out(CW).array(3),
            "seq": Out(wiring.Signature({k: In(f.width).array(G) for k, f in results.items()})),
            "error": Out(ERROR_CODE_BITS), "drop": Out(1), "drop_fire": In(1),
            "dout_last": Out(1), "res_last": Out(1),
            **nested,
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        G, MB, CW, K = cfg.lanes, cfg.m_bits, cfg.const_width, cfg.chunks
        cmd, res = self.cmd, self.res

        # Only control state has a reset (FSM, pass index, counters, result emitter, mode).
        # The header fields and lane words are data: HEADER/LANES write every one of them
        # before any pass can use it, and after a reset nothing reads them until then (all
        # valid bits are reset, ``accept`` is 0 outside PASS), so their registers are
        # ``reset_less``; the ports of the same names show them.
        hdr = {k: Signal(len(getattr(self, k)), name=k, reset_less=True)
               for k in ("m", "q", "r", "inv_m", "ck", "eps")}
        words = {k: [Signal(CW, name=f"{k}_l{l}", reset_less=True) for l in range(G)]
                 for k in ("p0", "p1", "p2")}
        m.d.comb += [getattr(self, k).eq(v) for k, v in hdr.items()]
        m.d.comb += [p.eq(v) for k, vs in words.items() for p, v in zip(getattr(self, k), vs)]
        # Cycle-level state for waveforms.
        state_pass = Signal()

        # -- pass plan as small lookup tables indexed by (mode, pass index) --------------------
        plan = pass_plan(cfg)
        pidx = Signal(2)
        kinds, segs, results, lasts = [], [], [], []
        for mode in range(4):
            steps = plan.get(mode, plan[MODE_INFER])
            for k in range(4):
                kind, seg, resl = steps[min(k, len(steps) - 1)]
                kinds.append(kind)
                segs.append(0 if seg is None else seg)
                results.append(int(resl))
                lasts.append(int(k >= len(steps) - 1))
        index = Cat(pidx, self.mode)
        cur_seg, cur_res, cur_last = Signal.like(self.seq_entry), Signal(), Signal()
        next_kind = Signal(3)
        m.d.comb += [
            self.kind.eq(Array(Const(k, 3) for k in kinds)[index]),
            cur_seg.eq(Array(Const(s, self.seq_entry.shape()) for s in segs)[index]),
            cur_res.eq(Array(Const(r, 1) for r in results)[index]),
            cur_last.eq(Array(Const(x, 1) for x in lasts)[index]),
            next_kind.eq(Array(Const(k, 3) for k in kinds)[Cat((pidx + 1)[:2], self.mode)]),
        ]

        # -- data counters ---------------------------------------------------------------------
        in_cnt = Signal(MB)
        out_cnt = Signal(MB)
        in_chunk_pos = Signal(MB)
        chunk_len = Signal(MB)
        m.d.comb += [
            chunk_len.eq(self.q + (self.chunk < self.r)),
            self.first.eq(in_chunk_pos == 0),
            self.last.eq(in_chunk_pos == chunk_len - 1),
        ]
        restart = Signal()      # a new pass starts next cycle
        with m.If(restart):
            m.d.sync += [in_cnt.eq(0), out_cnt.eq(0), in_chunk_pos.eq(0), self.chunk.eq(0)]
        with m.Else():
            with m.If(self.drop_fire):         # REFUSE: count the dropped beats of a pass
                m.d.sync += in_cnt.eq(in_cnt + 1)
            with m.If(self.in_fire):
                m.d.sync += in_cnt.eq(in_cnt + 1)
                with m.If(self.last):
                    m.d.sync += [in_chunk_pos.eq(0), self.chunk.eq(self.chunk + 1)]
                with m.Else():
                    m.d.sync += in_chunk_pos.eq(in_chunk_pos + 1)
            with m.If(self.out_fire):
                m.d.sync += out_cnt.eq(out_cnt + 1)

        # -- result emitter (runs concurrently with the last pass) -----------------------------
        res_busy = Signal()
        res_lane = Signal(range(max(2, G)))
        res_start = Signal()
        # Result beats (docs/bn-spec.md section 7): r0 | r1 | r2, no positions.  Forward: mu,
        # s in C and sig in A; backward: dgamma, dbeta rounded from W into AB by the sequencer.
        def slot(v):
            return Cat(v, Const(0, CW - len(v)))
        vals = self.seq
        fwd = [Cat(slot(vals.mu_c[l]), slot(vals.sig[l]), slot(vals.s_c[l])) for l in range(G)]
        bwd = [Cat(slot(vals.dgamma[l]), slot(vals.dbeta[l]), Const(0, CW)) for l in range(G)]
        payload = Mux(self.mode == 1, Array(bwd)[res_lane], Array(fwd)[res_lane])
        m.d.comb += [res.valid.eq(res_busy), res.payload.eq(payload),
                     self.res_last.eq(res_lane == G - 1),
                     self.dout_last.eq(out_cnt == self.m - 1)]
        with m.If(res_start):
            m.d.sync += [res_busy.eq(1), res_lane.eq(0)]
        with m.Elif(res.valid & res.ready):
            m.d.sync += res_lane.eq(res_lane + 1)
            with m.If(res_lane == G - 1):
                m.d.sync += res_busy.eq(0)

        # -- header checks (golden: bn.command_error; docs/interface.md "Refused commands") ----
        # From the registered fields, so they add nothing to the command payload's path; the
        # verdict is needed only at the end of the lane beats.  The first rule broken wins.
        err = self.err
        mode_known = self.mode != 3
        if cfg.algorithm == "range":
            uses_chunks = (self.mode == MODE_FWD) | (self.mode == MODE_BWD)
        else:
            uses_chunks = Const(0)
        # q and r are redundant (q*K + r = m, r < K): cheaper to check than to divide by K.
        layout_ok = (self.q * K + self.r == self.m) & (self.r < K)
        with m.If(~mode_known):
            m.d.comb += self.error.eq(ERRORS["mode"])
        with m.Elif(self.m == 0):
            m.d.comb += self.error.eq(ERRORS["m_zero"])
        with m.Elif(self.m > cfg.max_m):
            m.d.comb += self.error.eq(ERRORS["m_max"])
        with m.Elif(uses_chunks & (self.m < 2 * K)):
            m.d.comb += self.error.eq(ERRORS["m_chunks"])
        with m.Elif(uses_chunks & ~layout_ok):
            m.d.comb += self.error.eq(ERRORS["chunks_qr"])
        refused = self.error != 0

        # -- refused-command emitter: one err beat, like the result emitter it only delays the
        # next header (a host may read it after sending the command's data) ------------------
        err_busy = Signal()
        err_start = Signal()
        m.d.comb += [err.valid.eq(err_busy), err.payload.eq(Cat(self.error, self.mode, self.m))]
        with m.If(err_start):
            m.d.sync += err_busy.eq(1)
        with m.Elif(err.valid & err.ready):
            m.d.sync += err_busy.eq(0)

        # -- command FSM -----------------------------------------------------------------------
        lane = Signal(range(max(2, G)))
        beat = cmd.payload
        m.d.comb += [w.eq(beat[k * CW:(k + 1) * CW]) for k, w in enumerate(self.load_words)]
        nested = nested_forward(cfg)
        if nested:
            # an inference command's a and b, widened once for all lanes
            C, PB = cfg.fwd_const, cfg.bwd_op
            for k, name in ((0, "a"), (1, "b")):
                m.d.comb += self.load_ab_words[k].eq(
                    fp_convert(m, f"cv_cmd_{name}_pb", C, PB, self.load_words[k][:C.width]))
        with m.FSM(name="bn_fsm"):
            with m.State("HEADER"):
                m.d.comb += cmd.ready.eq(1)
                with m.If(cmd.valid):
                    fields, off = [], 0
                    for sig, w in ((self.mode, 2), (hdr["m"], MB), (hdr["q"], MB),
                                   (hdr["r"], cfg.r_bits), (hdr["inv_m"], CW), (hdr["ck"], CW),
                                   (hdr["eps"], CW)):
                        m.d.sync += sig.eq(beat[off:off + w])
                        off += w
                    m.d.sync += [lane.eq(0), pidx.eq(0)]
                    m.d.comb += self.clear.eq(1)
                    m.next = "LANES"
            with m.State("LANES"):
                m.d.comb += cmd.ready.eq(1)
                with m.If(cmd.valid):
                    with m.Switch(lane):
                        for l in range(G):
                            with m.Case(l):
                                m.d.sync += [words["p0"][l].eq(beat[0:CW]),
                                             words["p1"][l].eq(beat[CW:2 * CW]),
                                             words["p2"][l].eq(beat[2 * CW:3 * CW])]
                    # a backward lane beat: normalize loads its CB-rounded mu and s
                    # (docs/architecture.md, recip)
                    m.d.comb += [self.load_lane.eq((self.mode == MODE_BWD) & ~refused),
                                 self.load_index.eq(lane)]
                    if nested:      # an inference lane beat: the sequencer loads its a, b
                        m.d.comb += self.load_ab.eq((self.mode == MODE_INFER) & ~refused)
                    m.d.sync += lane.eq(lane + 1)
                    with m.If(lane == G - 1):
                        m.d.comb += restart.eq(1)
                        with m.If(refused):
                            m.d.comb += err_start.eq(1)
                            m.next = "REFUSE"
                        with m.Else():
                            m.next = "PASS"
            with m.State("PASS"):
                m.d.comb += [self.accept.eq(in_cnt != self.m), state_pass.eq(1)]
                with m.If(self.out_fire & (out_cnt == self.m - 1)):
                    with m.If(cur_last):
                        m.next = "FINISH"
                    with m.Else():
                        m.d.comb += [self.seq_start.eq(1), self.seq_entry.eq(cur_seg)]
                        m.next = "SCALAR"
            with m.State("SCALAR"):
                with m.If(self.seq_done):
                    m.d.comb += [restart.eq(1), res_start.eq(cur_res),
                                 self.clear.eq(next_kind == KIND_VAR)]
                    m.d.sync += pidx.eq(pidx + 1)
                    m.next = "PASS"
            with m.State("REFUSE"):
                # The passes of the header's mode, m beats each (counted in in_cnt, one bubble
                # cycle between passes); an unknown mode has no passes.
                pass_done = (in_cnt == self.m) | ~mode_known
                m.d.comb += self.drop.eq(~pass_done)
                with m.If(pass_done):
                    with m.If(cur_last | ~mode_known):
                        m.next = "FINISH"
                    with m.Else():
                        m.d.sync += pidx.eq(pidx + 1)
                        m.d.comb += restart.eq(1)
            with m.State("FINISH"):
                with m.If(~res_busy & ~err_busy):
                    m.next = "HEADER"
        return m
