"""``normalize`` block: the streaming datapath of every pass, one beat per cycle.

One :class:`lightnorm.rtl.pipeline.Pipeline` carries a data-in beat through BFP decoding, the
per-lane arithmetic and BFP encoding; all its registers advance together (``advance = o.ready |
~o.valid``), so a paused data-out stream stalls the whole datapath and side-band data (position,
chunk flags) stays aligned with the lanes.  The arithmetic cores are foundation units with
``stages=0``; ``mul_stages``/``add_stages`` (the larger of the two per level) and ``bfp_stages``
set how many registers follow each level.

Per lane, the levels (format A forward, AB backward; docs/bn-spec.md sections 4 and 5)::

    level  forward                              backward
    dec    x: F word                            x: F word, dy: B word
    L1     d  = sub_A(cv(x), mu)   [VAR]        d  = sub_AB(cv(x), mu)
    L2     mA = mul_A(d, d) [VAR] | a*cv(x)     m1 = mul_AB(d, s) [BSTAT] | (c1, d) [DX, bn]
    L3     y  = add_A(mA, b)                    m2 = mul_AB(cv(dy), m1) [BSTAT] | (a, cv(dy)) [DX]
    L4    (y here when A == AB, see below)      u  = sub_AB(m2, c0 | c0p | c0m)  [DX]
    L5                                          dx = sub_AB(u, m1)               [DX, bn]
    enc    y -> y_bfp / F                       dx -> dx_bfp / B

Units are shared between passes where the operation and format agree (L2 and L3 serve both
backward passes).  When the forward and backward formats are the same (A == AB, the conventional
presets) the forward and backward operations of L1, L2 and L4 share one core per lane as well
(y = ma + b then moves to L4's adder/subtracter), which is what a conventional BN unit would
do: 3 adders and 2 multipliers per lane in the datapath instead of 5 and 3.  Statistics passes
consume the pipeline output internally (``stats``/``range`` blocks); ``Y``/``DX`` passes send it
to ``dout``.
"""

from amaranth.hdl import Cat, Elaboratable, Module, Mux, Value, unsigned
from amaranth.lib import stream

from lightnorm.rtl.pipeline import Pipeline
from .common import fp_add, fp_sub, fp_mul, fp_convert
from .control import KIND_STAT, KIND_VAR, KIND_Y, KIND_BSTAT, KIND_DX, MODE_INFER

__all__ = ["Normalize"]


class Normalize(Elaboratable):
    """The streaming datapath of all lanes.

    Parameters
    ----------
    cfg : BNConfig
    din, dout : stream interfaces
        The unit's data streams.
    ctl : Control
    codecs : Codecs
    stats : Stats
    rng : Range
    seq : ScalarSequencer
    """

    def __init__(self, cfg, din, dout, ctl, codecs, stats, rng, seq):
        self.cfg = cfg
        self.din, self.dout = din, dout
        self.ctl, self.codecs, self.stats, self.rng, self.seq = ctl, codecs, stats, rng, seq

    @property
    def levels(self):
        """Arithmetic levels of the datapath (backward is the longest)."""
        return 5 if self.cfg.grad == "bn" else 4

    @property
    def latency(self):
        cfg = self.cfg
        return 2 * cfg.bfp_stages + self.levels * max(cfg.add_stages, cfg.mul_stages)

    def elaborate(self, platform):
        m = Module()
        cfg, ctl, cod, seq = self.cfg, self.ctl, self.codecs, self.seq
        G, F, B, A, AB = cfg.lanes, cfg.fwd_fmt, cfg.bwd_fmt, cfg.fwd_acc_fmt, cfg.bwd_acc_fmt
        lvl = max(cfg.add_stages, cfg.mul_stages)
        pipe = Pipeline(self.latency, self.latency)
        kind = ctl.kind
        infer = ctl.mode == MODE_INFER
        vals = seq.values

        def cut(v, times):
            for _ in range(times):
                keys = list(v)
                regs = pipe.cut(m, [v[k] for k in keys], name="bn")
                v = dict(zip(keys, regs))
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
        v = {"first": ctl.first, "last": ctl.last, "chunk": ctl.chunk, "pos": ctl.pos}
        for l in range(G):
            v[f"x{l}"] = cod.x_words[l]
            v[f"dy{l}"] = cod.dy_words[l]
            if cfg.has_positions:
                v[f"ismax{l}"] = self.rng.ismax[l]
                v[f"ismin{l}"] = self.rng.ismin[l]
        v = cut(v, cfg.bfp_stages)

        # L1: exact conversions (wiring) and the centring subtraction.  When the forward and
        # backward formats coincide (the conventional presets) one core per level serves both
        # directions, the operands chosen by the pass kind.
        share = A == AB
        for l in range(G):
            v[f"xa{l}"] = fp_convert(m, f"cv_x_a_l{l}", F, A, v[f"x{l}"])
            v[f"xb{l}"] = fp_convert(m, f"cv_x_ab_l{l}", F, AB, v[f"x{l}"])
            v[f"dyb{l}"] = fp_convert(m, f"cv_dy_ab_l{l}", B, AB, v[f"dy{l}"])
            mu_b = ctl.p1[l][:AB.width]
            if cfg.algorithm == "conventional" and share:
                d = fp_sub(m, f"sub_mu_l{l}", A, v[f"xa{l}"],
                           Mux(kind == KIND_VAR, vals["mu"][l], mu_b))
                v[f"da{l}"] = v[f"db{l}"] = d
                continue
            if cfg.algorithm == "conventional":
                v[f"da{l}"] = fp_sub(m, f"sub_mu_a_l{l}", A, v[f"xa{l}"], vals["mu"][l])
            v[f"db{l}"] = fp_sub(m, f"sub_mu_ab_l{l}", AB, v[f"xb{l}"], mu_b)
        v = cut(v, lvl)

        # L2
        for l in range(G):
            a_l = Mux(infer, ctl.p0[l][:A.width], vals["a"][l])
            s_l = ctl.p2[l][:AB.width]
            k1 = Mux(kind == KIND_BSTAT, s_l, vals["c1"][l]) if cfg.grad == "bn" else s_l
            var = kind == KIND_VAR
            if cfg.algorithm == "conventional":
                fa = Mux(var, v[f"da{l}"], a_l)
                fb = Mux(var, v[f"da{l}"], v[f"xa{l}"])
            else:
                fa, fb = a_l, v[f"xa{l}"]
            if share:
                bwd = (kind == KIND_BSTAT) | (kind == KIND_DX)
                v[f"ma{l}"] = v[f"m1{l}"] = fp_mul(m, f"mul_l{l}", A, Mux(bwd, v[f"db{l}"], fa),
                                                   Mux(bwd, k1, fb))
            else:
                v[f"ma{l}"] = fp_mul(m, f"mul_a_l{l}", A, fa, fb)
                v[f"m1{l}"] = fp_mul(m, f"mul_s_ab_l{l}", AB, v[f"db{l}"], k1)
        v = cut(v, lvl)

        # L3 (y = ma + b here, or on the shared L4 subtracter when A == AB)
        for l in range(G):
            if not share:
                b_l = Mux(infer, ctl.p1[l][:A.width], vals["b"][l])
                v[f"y{l}"] = fp_add(m, f"add_b_a_l{l}", A, v[f"ma{l}"], b_l)
            k2 = Mux(kind == KIND_BSTAT, v[f"m1{l}"], vals["a_b"][l])
            v[f"m2{l}"] = fp_mul(m, f"mul_dy_ab_l{l}", AB, v[f"dyb{l}"], k2)
        v = cut(v, lvl)

        # L4
        for l in range(G):
            if cfg.grad == "range":
                hi = v[f"ismax{l}"] & ~v[f"ismin{l}"]
                lo = v[f"ismin{l}"] & ~v[f"ismax{l}"]
                c = Mux(hi, vals["c0p"][l], Mux(lo, vals["c0m"][l], vals["c0"][l]))
            else:
                c = vals["c0"][l]
            if share:
                dx = kind == KIND_DX
                b_l = Mux(infer, ctl.p1[l][:A.width], vals["b"][l])
                v[f"u{l}"] = v[f"y{l}"] = fp_add(m, f"addsub_l{l}", AB,
                                                 Mux(dx, v[f"m2{l}"], v[f"ma{l}"]),
                                                 Mux(dx, c, b_l), sub=dx)
            else:
                v[f"u{l}"] = fp_sub(m, f"sub_c0_ab_l{l}", AB, v[f"m2{l}"], c)
        v = cut(v, lvl)

        # L5
        if cfg.grad == "bn":
            for l in range(G):
                v[f"dx{l}"] = fp_sub(m, f"sub_c1_ab_l{l}", AB, v[f"u{l}"], v[f"m1{l}"])
            v = cut(v, lvl)
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
            rg.take.eq(ctl.out_fire & (kind == KIND_STAT)),
            rg.first.eq(out["first"]), rg.last.eq(out["last"]),
            rg.chunk.eq(out["chunk"]), rg.pos.eq(out["pos"]),
            rg.in_chunk.eq(ctl.chunk), rg.in_pos.eq(ctl.pos),
        ]
        for l in range(G):
            m.d.comb += [
                st.term_f[l].eq(Mux(kind == KIND_VAR, out[f"ma{l}"], out[f"xa{l}"])),
                st.term_g[l].eq(out[f"m2{l}"]),
                st.term_b[l].eq(out[f"dyb{l}"]),
                rg.x[l].eq(out[f"x{l}"]),
            ]
        return m
