"""``normalize`` block: the streaming datapath of every pass, one beat per cycle.

One :class:`lightnorm.rtl.pipeline.Pipeline` carries a data-in beat through BFP decoding, the
per-lane arithmetic and BFP encoding; all its registers advance together (``advance = o.ready |
~o.valid``), so a paused data-out stream stalls the whole datapath and side-band data (position,
chunk flags) stays aligned with the lanes.  The arithmetic cores are foundation units with
``stages=0``; ``mul_stages``/``add_stages`` (the larger of the two per level) and ``bfp_stages``
set how many registers follow each level.

Per lane, the levels (op format P forward, PB backward; docs/bn-spec.md sections 4 and 5;
the constants are C / CB words, widened exactly into P / PB)::

    level  forward                              backward
    dec    x: F word                            x: F word, dy: B word
    L1     d  = sub_P(cv(x), mu)   [VAR]        d  = sub_PB(cv(x), mu)
    L2     mA = mul_P(d, d) [VAR] | a*cv(x)     m1 = mul_PB(d, s) [BSTAT] | (c1, d) [DX, bn]
              | x*x [STAT, variance "sumsq"]
    L3     y  = add_P(mA, b)                    m2 = mul_PB(cv(dy), m1) [BSTAT] | (a, cv(dy)) [DX]
    L4    (y here when P == PB, see below)      u  = sub_PB(m2, c0 | c0p | c0m)  [DX]
    L5                                          dx = sub_PB(u, m1)               [DX, bn]
    enc    y -> y_bfp / F                       dx -> dx_bfp / B

The statistics terms leave the pipeline in their own formats (x: F, d*d and x*x: P, dy*x_hat:
PB, dy: B; the one-pass forward's x*x goes to the dgamma accumulator, PB holds P); with wide
sums (``sum_mode == "wide"``) they are widened exactly into the stats block's sum formats W /
WB here, with exact sums they enter its fixed-point accumulators as they
are (the conventional forward converts x exactly into P, the variance terms' format).

Units are shared between passes where the operation and format agree (L2 and L3 serve both
backward passes).  When the forward and backward op formats are the same (P == PB, the
conventional presets) the forward and backward operations of L1, L2 and L4 share one core per lane as well
(y = ma + b then moves to L4's adder/subtracter), which is what a conventional BN unit would
do: 3 adders and 2 multipliers per lane in the datapath instead of 5 and 3.  Statistics passes
consume the pipeline output internally (``stats``/``range`` blocks); ``Y``/``DX`` passes send it
to ``dout``.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, Value, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from lightnorm.rtl.pipeline import Pipeline
from .bfp import codec_signature
# nested_forward / nested_rounding live in .common (the sequencer's programs and the command
# path read them too) and are re-exported here
from .common import (fp_add, fp_sub, fp_mul, fp_convert, fp_onto_grid, onto_grid_applies,
                     nested_forward, nested_rounding)
from .stats import term_fmts
from .control import KIND_STAT, KIND_VAR, KIND_Y, KIND_BSTAT, KIND_DX, MODE_INFER

__all__ = ["Normalize", "nested_forward", "nested_rounding", "pipeline_levels", "pipeline_latency"]


def pipeline_levels(cfg):
    """Arithmetic levels of the datapath of ``cfg`` (backward is the longest)."""
    return 5 if cfg.grad == "bn" else 4


def pipeline_latency(cfg):
    """Register stages of the datapath of ``cfg``: ``din`` to ``dout`` (and to the accumulators)."""
    return 2 * cfg.bfp_stages + pipeline_levels(cfg) * max(cfg.add_stages, cfg.mul_stages)


class Normalize(wiring.Component):
    """The streaming datapath of all lanes.

    Parameters
    ----------
    cfg : BNConfig

    Attributes
    ----------
    din : In(stream.Signature(cfg.din_width))
        Data in (the unit's, less the beats of a refused command): taken while ``ctl.accept``.
    dout : Out(stream.Signature(cfg.dout_width))
        Data out: the pipeline output of the ``Y`` / ``DX`` passes.
    ctl : Out(wiring.Signature(...))
        To and from the ``control`` block's ports of the same names: ``mode``, ``kind`` (in:
        the current command and pass), ``accept``, ``first``, ``last`` (in: the pass takes
        beats; chunk flags of the entering beat), ``in_fire``, ``out_fire`` (out: a beat
        entered / left the pipeline), ``p0``, ``p1``, ``p2`` (in: the command's lane words),
        ``load_lane``, ``load_index``, ``load_words`` (in: a backward lane beat on the command
        stream, whose mu and s are rounded into CB as it arrives).
    codec : In(codec_signature(cfg))
        The ``bfp`` block's ports, flipped: ``x_raw``, ``dy_raw`` (out: the packed beat entering
        the pipeline), ``x_words``, ``dy_words`` (in: its lane words), ``y_acc``, ``dx_acc``
        (out: the lanes' results in P / PB), ``y_raw``, ``dx_raw`` (in: the packed results).
    stats : Out(wiring.Signature(...))
        To the ``stats`` block's ports of the same names: ``take_f``, ``take_b`` (a forward /
        backward statistics beat leaves the pipeline), ``term_f``, ``term_g``, ``term_b`` (its
        per-lane terms, :func:`lightnorm.rtl.bn.stats.term_fmts`).
    rng : Out(wiring.Signature(...))
        To and from the ``range`` block's ports of the same names: ``take``, ``first``,
        ``last``, ``x`` (out: a beat leaving the pipeline in a pass that tracks the chunk
        extrema, its chunk flags and lane words), ``in_x``, ``in_take`` (out: the lane words of
        the beat entering the pipeline, taken in backward pass 2), ``ismax``, ``ismin`` (in:
        that beat's argmax/argmin flags, grad "range").
    seq : Out(wiring.Signature(...))
        From the ``recip`` block's outputs of the same names: the streaming constants
        ``mu_c``, ``a_c``, ``b_c`` (C; with the nested forward ``a_c``, ``b_c`` widened
        exactly into PB, also an inference command's) and ``a_bc``, ``c0_c`` and ``c1_c``
        (grad "bn") or ``c0p_c``, ``c0m_c`` (grad "range") (CB), in (``.array(G)``).
    """

    def __init__(self, cfg):
        self.cfg = cfg
        G, F, C, CB, CW = cfg.lanes, cfg.fwd_fmt, cfg.fwd_const, cfg.bwd_const, cfg.const_width
        control = {"mode": In(2), "kind": In(3), "accept": In(1), "first": In(1), "last": In(1),
                   "in_fire": Out(1), "out_fire": Out(1),
                   "p0": In(CW).array(G), "p1": In(CW).array(G), "p2": In(CW).array(G),
                   "load_lane": In(1), "load_index": In(range(max(2, G))),
                   "load_words": In(CW).array(3)}
        terms = {"take_f": Out(1), "take_b": Out(1)}
        for k, f in term_fmts(cfg).items():
            terms[f"term_{k}"] = Out(f.width).array(G)
        extrema = {"take": Out(1), "first": Out(1), "last": Out(1), "x": Out(F.width).array(G),
                   "in_x": Out(F.width).array(G), "in_take": Out(1),
                   "ismax": In(1).array(G), "ismin": In(1).array(G)}
        # the nested forward's a and b: PB words (the sequencer and control widen them)
        AC = cfg.bwd_op if nested_forward(cfg) else C
        consts = {"mu_c": C, "a_c": AC, "b_c": AC, "a_bc": CB, "c0_c": CB}
        consts.update({"c1_c": CB} if cfg.grad == "bn" else {"c0p_c": CB, "c0m_c": CB})
        super().__init__({"din": In(stream.Signature(cfg.din_width)),
                          "dout": Out(stream.Signature(cfg.dout_width)),
                          "ctl": Out(wiring.Signature(control)),
                          "codec": In(codec_signature(cfg)),
                          "stats": Out(wiring.Signature(terms)),
                          "rng": Out(wiring.Signature(extrema)),
                          "seq": Out(wiring.Signature({k: In(f.width).array(G)
                                                       for k, f in consts.items()}))})

    @property
    def nested(self):
        """The forward's a*x and +b run on the backward's PB cores (rtz, nested formats)."""
        return nested_forward(self.cfg)

    @property
    def levels(self):
        """Arithmetic levels of the datapath (backward is the longest)."""
        return pipeline_levels(self.cfg)

    @property
    def latency(self):
        """Register stages from ``din`` to ``dout`` (and to the accumulators)."""
        return pipeline_latency(self.cfg)

    def elaborate(self, platform):
        m = Module()
        cfg, ctl, cod = self.cfg, self.ctl, self.codec
        G, F, B, AB = cfg.lanes, cfg.fwd_fmt, cfg.bwd_fmt, cfg.bwd_acc_fmt
        P, PB, C, CB = cfg.fwd_op, cfg.bwd_op, cfg.fwd_const, cfg.bwd_const
        W, WB = cfg.fwd_sum_fmt, cfg.bwd_sum_fmt
        lvl = max(cfg.add_stages, cfg.mul_stages)
        pipe = Pipeline(self.latency, self.latency)
        kind = ctl.kind
        infer = ctl.mode == MODE_INFER
        vals = {k: getattr(self.seq, k) for k in self.seq.signature.members}

        def cut(v, times):
            for _ in range(times):
                keys = list(v)
                regs = pipe.cut(m, [v[k] for k in keys], name="bn")
                v = dict(zip(keys, regs))
            return v

        # An arithmetic level: its cores are pipelined with ``lvl`` stages in lock-step with
        # ``pipe`` (common.core), their results ``new`` computed from the level's input ``v``;
        # the side-band values ride ``lvl`` registers of ``pipe`` alongside.
        def ladd(*args, **kw):
            return fp_add(*args, **kw, stages=lvl, advance=pipe.advance)

        def lsub(*args):
            return fp_sub(*args, stages=lvl, advance=pipe.advance)

        def lmul(*args):
            return fp_mul(*args, stages=lvl, advance=pipe.advance)

        def level(v, new):
            v = cut(v, lvl)
            v.update(new)
            return v

        xw = cfg.tensor_width("x")
        pin = stream.Signature(unsigned(len(self.din.payload))).create()
        m.d.comb += [
            pin.payload.eq(self.din.payload),
            pin.valid.eq(self.din.valid & ctl.accept),
            self.din.ready.eq(pin.ready & ctl.accept),
            ctl.in_fire.eq(pin.valid & pin.ready),
        ]
        # dec: BFP decoding (combinational cores in the bfp block)
        m.d.comb += [cod.x_raw.eq(pin.payload[:xw]), cod.dy_raw.eq(pin.payload[xw:])]
        v = {"first": ctl.first, "last": ctl.last}
        for l in range(G):
            v[f"x{l}"] = cod.x_words[l]
            v[f"dy{l}"] = cod.dy_words[l]
            if cfg.grad == "range":
                # backward pass 2: the range block flags the entering beat's argmax/argmin
                # lanes from its decoded x (re-detection, docs/bn-spec.md section 5); the
                # flags ride the pipeline to L4
                m.d.comb += self.rng.in_x[l].eq(cod.x_words[l])
                v[f"ismax{l}"] = self.rng.ismax[l]
                v[f"ismin{l}"] = self.rng.ismin[l]
        v = cut(v, cfg.bfp_stages)

        # The constants the datapath uses: forward mu, a, b are C words from the sequencer
        # (inference: a, b from the command; with the nested forward a and b are PB words
        # from the sequencer in every mode), backward a, c0, c1 | c0p, c0m CB words from the
        # sequencer; the backward command's mu and s (AB words) are rounded into CB as they
        # arrive (below).  All of them enter the op formats P / PB exactly (P holds C, PB
        # holds CB).
        share = P == PB
        nested = self.nested
        for l in range(G):
            v[f"xa{l}"] = fp_convert(m, f"cv_x_p_l{l}", F, P, v[f"x{l}"])
            v[f"xb{l}"] = fp_convert(m, f"cv_x_pb_l{l}", F, PB, v[f"x{l}"])
            v[f"dyb{l}"] = fp_convert(m, f"cv_dy_pb_l{l}", B, PB, v[f"dy{l}"])
        # The backward command's mu and s rounded into CB once, as its lane beats arrive: one
        # shared converter per word on the command stream, a CB register per lane (instead of
        # two converters per lane on the stored AB words).
        if AB == CB:
            mu_cb = [ctl.p1[l][:AB.width] for l in range(G)]
            s_cb = [ctl.p2[l][:AB.width] for l in range(G)]
        else:
            in_mu = fp_convert(m, "cv_cmd_mu_cb", AB, CB, ctl.load_words[1][:AB.width])
            in_s = fp_convert(m, "cv_cmd_s_cb", AB, CB, ctl.load_words[2][:AB.width])
            mu_cb = [Signal(CB.width, name=f"mu_cb_l{l}", reset_less=True) for l in range(G)]
            s_cb = [Signal(CB.width, name=f"s_cb_l{l}", reset_less=True) for l in range(G)]
            for l in range(G):
                with m.If(ctl.load_lane & (ctl.load_index == l)):
                    m.d.sync += [mu_cb[l].eq(in_mu), s_cb[l].eq(in_s)]
        cst = {}
        for l in range(G):
            def fwd_c(name, value):
                return fp_convert(m, f"cv_{name}_p_l{l}", C, P, value)

            def bwd_c(name, value, src=CB):
                if src != CB:
                    value = fp_convert(m, f"cv_{name}_cb_l{l}", src, CB, value)
                return fp_convert(m, f"cv_{name}_pb_l{l}", CB, PB, value)
            cst[f"mu_f{l}"] = fwd_c("mu", vals["mu_c"][l])
            if nested:
                # the forward's a and b enter the backward cores as PB words, widened exactly
                # where they are produced: by the sequencer as it writes them; an inference
                # command's by control, loaded into the sequencer's registers
                cst[f"a_fb{l}"] = vals["a_c"][l]
                cst[f"b_fb{l}"] = vals["b_c"][l]
            else:
                cst[f"a_f{l}"] = fwd_c("a", Mux(infer, ctl.p0[l][:C.width], vals["a_c"][l]))
                cst[f"b_f{l}"] = fwd_c("b", Mux(infer, ctl.p1[l][:C.width], vals["b_c"][l]))
            cst[f"mu_b{l}"] = bwd_c("mu", mu_cb[l])
            cst[f"s_b{l}"] = bwd_c("s", s_cb[l])
            cst[f"a_b{l}"] = bwd_c("a", vals["a_bc"][l])
            cst[f"c0_b{l}"] = bwd_c("c0", vals["c0_c"][l])
            if cfg.grad == "bn":
                cst[f"c1_b{l}"] = bwd_c("c1", vals["c1_c"][l])
            else:
                cst[f"c0p_b{l}"] = bwd_c("c0p", vals["c0p_c"][l])
                cst[f"c0m_b{l}"] = bwd_c("c0m", vals["c0m_c"][l])

        # L1: the centring subtraction.  When the forward and backward op formats coincide
        # (the conventional presets) one core per level serves both directions, the operands
        # chosen by the pass kind.
        centered = cfg.algorithm == "conventional" and cfg.variance == "centered"
        sumsq = cfg.variance == "sumsq"
        new = {}
        for l in range(G):
            mu_b = cst[f"mu_b{l}"]
            if cfg.algorithm == "conventional" and share:
                d = lsub(m, f"sub_mu_l{l}", P, v[f"xa{l}"],
                           Mux(kind == KIND_VAR, cst[f"mu_f{l}"], mu_b) if centered else mu_b)
                new[f"da{l}"] = new[f"db{l}"] = d
                continue
            if centered:
                new[f"da{l}"] = lsub(m, f"sub_mu_p_l{l}", P, v[f"xa{l}"], cst[f"mu_f{l}"])
            new[f"db{l}"] = lsub(m, f"sub_mu_pb_l{l}", PB, v[f"xb{l}"], mu_b)
        v = level(v, new)

        # L2
        new = {}
        for l in range(G):
            a_l = cst.get(f"a_f{l}")
            s_l = cst[f"s_b{l}"]
            k1 = Mux(kind == KIND_BSTAT, s_l, cst[f"c1_b{l}"]) if cfg.grad == "bn" else s_l
            var = kind == KIND_VAR
            if centered:
                fa = Mux(var, v[f"da{l}"], a_l)
                fb = Mux(var, v[f"da{l}"], v[f"xa{l}"])
            elif sumsq:           # pass 1 squares x (the multiplier is idle in STAT)
                fa = Mux(kind == KIND_STAT, v[f"xa{l}"], a_l)
                fb = v[f"xa{l}"]
            elif not nested:
                fa, fb = a_l, v[f"xa{l}"]
            if share:
                bwd = (kind == KIND_BSTAT) | (kind == KIND_DX)
                new[f"ma{l}"] = new[f"m1{l}"] = lmul(m, f"mul_l{l}", P, Mux(bwd, v[f"db{l}"], fa),
                                                   Mux(bwd, k1, fb))
            elif nested:
                # a*x on the backward multiplier: operands widened exactly into PB, the PB
                # product truncated onto P's values (equal to rounding a*x into P: see
                # nested_rounding), kept as a PB word for the L4 adder
                bwd = (kind == KIND_BSTAT) | (kind == KIND_DX)
                prod = lmul(m, f"mul_pb_l{l}", PB,
                              Mux(bwd, v[f"db{l}"], cst[f"a_fb{l}"]), Mux(bwd, k1, v[f"xb{l}"]))
                new[f"m1{l}"] = prod
                if onto_grid_applies(PB, P):
                    new[f"ma{l}"] = fp_onto_grid(m, f"ma_p_l{l}", PB, P, prod)    # a PB word
                else:
                    new[f"ma{l}"] = fp_convert(m, f"cv_ma_p_l{l}", PB, P, prod)
            else:
                new[f"ma{l}"] = lmul(m, f"mul_p_l{l}", P, fa, fb)
                new[f"m1{l}"] = lmul(m, f"mul_s_pb_l{l}", PB, v[f"db{l}"], k1)
        v = level(v, new)

        # L3 (y = ma + b here, or on the shared L4 subtracter when P == PB)
        new = {}
        for l in range(G):
            if not (share or nested):
                new[f"y{l}"] = ladd(m, f"add_b_p_l{l}", P, v[f"ma{l}"], cst[f"b_f{l}"])
            k2 = Mux(kind == KIND_BSTAT, v[f"m1{l}"], cst[f"a_b{l}"])
            new[f"m2{l}"] = lmul(m, f"mul_dy_pb_l{l}", PB, v[f"dyb{l}"], k2)
        v = level(v, new)

        # L4
        new = {}
        for l in range(G):
            if cfg.grad == "range":
                hi = v[f"ismax{l}"] & ~v[f"ismin{l}"]
                lo = v[f"ismin{l}"] & ~v[f"ismax{l}"]
                c = Mux(hi, cst[f"c0p_b{l}"], Mux(lo, cst[f"c0m_b{l}"], cst[f"c0_b{l}"]))
            else:
                c = cst[f"c0_b{l}"]
            if share:
                dx = kind == KIND_DX
                new[f"u{l}"] = new[f"y{l}"] = ladd(m, f"addsub_l{l}", PB,
                                                 Mux(dx, v[f"m2{l}"], v[f"ma{l}"] if onto_grid_applies(PB, P) else
                               fp_convert(m, f"cv_ma_pb_l{l}", P, PB, v[f"ma{l}"])),
                                                 Mux(dx, c, cst[f"b_f{l}"]), sub=dx)
            elif nested:
                dx = kind == KIND_DX
                u = ladd(m, f"addsub_pb_l{l}", PB,
                           Mux(dx, v[f"m2{l}"], v[f"ma{l}"] if onto_grid_applies(PB, P) else
                               fp_convert(m, f"cv_ma_pb_l{l}", P, PB, v[f"ma{l}"])),
                           Mux(dx, c, cst[f"b_fb{l}"]), sub=dx)
                new[f"u{l}"] = u
                new[f"y{l}"] = fp_convert(m, f"cv_y_p_l{l}", PB, P, u)
            else:
                new[f"u{l}"] = lsub(m, f"sub_c0_pb_l{l}", PB, v[f"m2{l}"], c)
        v = level(v, new)

        # L5
        if cfg.grad == "bn":
            new = {}
            for l in range(G):
                new[f"dx{l}"] = lsub(m, f"sub_c1_pb_l{l}", PB, v[f"u{l}"], v[f"m1{l}"])
            v = level(v, new)
        else:
            for l in range(G):
                v[f"dx{l}"] = v[f"u{l}"]

        # enc: output rounding (bfp block)
        for l in range(G):
            m.d.comb += [cod.y_acc[l].eq(v[f"y{l}"]), cod.dx_acc[l].eq(v[f"dx{l}"])]
        v["yraw"] = cod.y_raw
        v["dxraw"] = cod.dx_raw
        v = cut(v, cfg.bfp_stages)

        # Pipeline output: one flat payload, sliced back into its fields.
        keys = list(v)
        widths = [len(Value.cast(v[k])) for k in keys]
        pout = stream.Signature(unsigned(sum(widths))).create()
        pipe.connect(m, pin, pout, Cat(*(v[k] for k in keys)))
        out, off = {}, 0
        for k, w in zip(keys, widths):
            out[k] = pout.payload[off:off + w]
            off += w

        to_dout = (kind == KIND_Y) | (kind == KIND_DX)
        dw = len(self.dout.payload)
        m.d.comb += [
            self.dout.valid.eq(pout.valid & to_dout),
            self.dout.payload.eq(Mux(kind == KIND_DX, out["dxraw"], out["yraw"])),
            pout.ready.eq(Mux(to_dout, self.dout.ready, 1)),
            ctl.out_fire.eq(pout.valid & pout.ready),
        ]
        st, rg = self.stats, self.rng
        m.d.comb += [
            st.take_f.eq(ctl.out_fire & ((kind == KIND_STAT) | (kind == KIND_VAR))),
            st.take_b.eq(ctl.out_fire & (kind == KIND_BSTAT)),
            # the chunk extrema: forward pass 1, and (grad "range") backward pass 1 again
            rg.take.eq(ctl.out_fire & ((kind == KIND_STAT) | (
                (kind == KIND_BSTAT) if cfg.grad == "range" else 0))),
            rg.first.eq(out["first"]), rg.last.eq(out["last"]),
            rg.in_take.eq(ctl.in_fire & (kind == KIND_DX)),
        ]
        # The sums' terms, widened exactly into W / WB at the pipeline output (so the pipeline
        # registers carry the narrow words).
        for l in range(G):
            # dgamma's term; variance "sumsq": x*x in pass 1 (P words, held exactly by PB)
            tg = out[f"m2{l}"]
            if sumsq:
                sq = fp_convert(m, f"cv_sq_pb_l{l}", P, PB, out[f"ma{l}"])
                tg = Mux(kind == KIND_STAT, sq, tg)
            if cfg.exact_sums:
                # Exact sums: the terms enter the fixed-point accumulators in their own
                # formats (conventional: x converted exactly into P, the variance terms' format).
                tf = out[f"x{l}"]
                if centered:
                    tf = Mux(kind == KIND_VAR, out[f"ma{l}"],
                             fp_convert(m, f"cv_x_sum_l{l}", F, P, out[f"x{l}"]))
                m.d.comb += [st.term_f[l].eq(tf), st.term_g[l].eq(tg),
                             st.term_b[l].eq(out[f"dy{l}"]), rg.x[l].eq(out[f"x{l}"])]
                continue
            if centered:
                tf = Mux(kind == KIND_VAR, fp_convert(m, f"cv_v_w_l{l}", P, W, out[f"ma{l}"]),
                         fp_convert(m, f"cv_x_w_l{l}", F, W, out[f"x{l}"]))
            else:
                tf = fp_convert(m, f"cv_x_w_l{l}", F, W, out[f"x{l}"])
            m.d.comb += [
                st.term_f[l].eq(tf),
                st.term_g[l].eq(fp_convert(m, f"cv_g_wb_l{l}", PB, WB, tg)),
                st.term_b[l].eq(fp_convert(m, f"cv_b_wb_l{l}", B, WB, out[f"dy{l}"])),
                rg.x[l].eq(out[f"x{l}"]),
            ]
        return m
