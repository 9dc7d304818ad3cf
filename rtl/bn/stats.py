"""``stats`` block: the per-lane accumulators of the statistics passes.

Wide sums (``cfg.sum_mode == "wide"``; exact sums: below).
Each accumulator is ``acc = add(acc, term)`` with one combinational FPAddSub core in the loop
(a register and an adder per lane): one term per cycle, in stream order, exactly the sequential
sum of the golden model.  Interleaving partial sums over a pipelined adder would change the
order of the additions and therefore the bits, so the loop adder is the one place where the BN
unit's clock period is set by a full (unpipelined) adder.

* ``acc_f`` (format W, the wide sum format of A): pass-1 ``sum`` of ``cv(x)``; cleared again
  for the conventional variance pass, where it accumulates ``d*d`` (``vsum``).
* ``acc_g``, ``acc_b`` (format WB, the wide sum format of AB): backward
  ``dgamma = sum(dy * x_hat)`` and ``dbeta = sum(dy)``.
* variance ``"sumsq"`` (conventional, one forward statistics pass; WB = W is a config rule
  then): ``acc_g`` also takes the forward pass-1 terms ``x*x`` (``take_f``), and the sum of x
  runs in the dbeta register and adder (``acc_f`` is a name for ``acc_b``): forward and
  backward never overlap, so the one-pass unit has two wide adders and two registers per lane,
  as the centered conventional presets (which share one adder between ``acc_f`` and
  ``acc_g``) have two adders and three registers.

The sums stay in W until they are complete; the shared scalar sequencer rounds each once into
its accumulator format (docs/bn-spec.md, "Sums": W has ``m_bits + 2`` more mantissa bits than
the accumulator, so a sum of up to ``max_m`` terms does not stagnate).  The terms arrive in
their own formats (F, B, P, PB, all held exactly by W) and are widened here by wiring
converters.

With ``cfg.sum_mode == "exact"`` each accumulator is a
:class:`~lightnorm.rtl.fixacc.FixedAccumulator` instead: the terms enter in their own formats
(``term_f``: F, or P for the conventional forward, where the x words are converted exactly into
P; ``term_g``: PB; ``term_b``: B), are placed in a two's-complement register sized by
``cfg.fix_fmt`` and added exactly; ``acc_*`` are then accumulator words (register + flags) that
the sequencer's one FixedToFloat converter rounds into A / AB.

With exact sums and variance ``"sumsq"`` the ``acc_g`` register (PB terms; PB holds P) also
takes ``x*x``; ``acc_f`` keeps its own register (the F terms of x are not B words).

All accumulators start at +0 (``clear``) and add only on beats of a statistics pass (``take_*``).
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .common import fp_add, fp_convert
from lightnorm.rtl.fixacc import FixedAccumulator, settle_latency, word_width
from lightnorm.rtl.fpconvert import exact_conversion

__all__ = ["Stats", "term_fmts", "acc_fmts", "acc_widths", "shares_fg", "sum_latency"]


def term_fmts(cfg):
    """``{"f" | "g" | "b": FloatFormat}`` of the terms each accumulator of ``cfg`` takes."""
    if not cfg.exact_sums:
        return {"f": cfg.fwd_sum_fmt, "g": cfg.bwd_sum_fmt, "b": cfg.bwd_sum_fmt}
    return {k: v[-1] for k, v in cfg.sum_term_fmts().items()}


def shares_fg(cfg):
    """The forward sum and dgamma share one accumulator per lane (passes never overlap).

    Wide sums: when W == WB (the conventional presets).  Exact sums: when every forward term
    is exactly a PB word (PB holds F: every range preset), in dgamma's register; a sum is the
    same exact value in any register that holds it, so the bits are unchanged.
    """
    if cfg.variance == "sumsq":
        return False          # the one-pass forward fills both (x and x*x) in pass 1
    if not cfg.exact_sums:
        return cfg.fwd_sum_fmt == cfg.bwd_sum_fmt
    t = term_fmts(cfg)
    return exact_conversion(t["f"], t["g"])


def acc_fmts(cfg):
    """``{"f" | "g" | "b": format}`` of ``cfg``'s sums as the stats block holds them: W / WB,
    or (exact sums) the FixedFormats of ``cfg.fix_fmt``, dgamma's for the forward sum when the
    two share a register (:func:`shares_fg`).  The sequencer's programs read them from here."""
    if not cfg.exact_sums:
        return {"f": cfg.fwd_sum_fmt, "g": cfg.bwd_sum_fmt, "b": cfg.bwd_sum_fmt}
    fix = {k: cfg.fix_fmt(k) for k in "fgb"}
    if shares_fg(cfg):
        fix["f"] = fix["g"]
    return fix


def acc_widths(cfg):
    """``{"f" | "g" | "b": bits}`` of the accumulator ports ``acc_*``."""
    # exact: accumulator words (register + flags, rtl/fixacc.py); wide: W / WB words
    return {k: word_width(f) if cfg.exact_sums else f.width for k, f in acc_fmts(cfg).items()}


def sum_latency(cfg):
    """Cycles from the edge that takes a statistics pass's last term until every sum is exact:
    0, or with ``cfg.sum_segment`` (pipelined exact accumulators) the term stage plus one cycle
    per carry-save segment boundary of the widest register (:class:`FixedAccumulator`)."""
    if not cfg.exact_sums:
        return 0
    return max(settle_latency(f, cfg.sum_segment) for f in acc_fmts(cfg).values())


class Stats(wiring.Component):
    """Forward and backward accumulators of ``cfg.lanes`` lanes.

    Parameters
    ----------
    cfg : BNConfig

    Attributes
    ----------
    clear : In(1)
        Reset every accumulator to +0 (command start; start of the variance pass).
    take_f, take_b : In(1)
        A forward (``term_f``) / backward (``term_g``, ``term_b``) term arrives this cycle.
    term_f, term_g, term_b : In(...).array(G)
        Per-lane terms (wide: W, WB, WB words; exact: :func:`term_fmts` words).
    acc_f, acc_g, acc_b : Out(...).array(G)
        Per-lane accumulators (wide: W, WB, WB words; exact: accumulator words of
        ``cfg.fix_fmt("f" | "g" | "b")``; :func:`acc_widths`).
    """

    def __init__(self, cfg):
        self.cfg = cfg
        G = cfg.lanes
        tw = {k: f.width for k, f in term_fmts(cfg).items()}
        aw = acc_widths(cfg)
        members = {"clear": In(1), "take_f": In(1), "take_b": In(1)}
        for k in "fgb":
            members[f"term_{k}"] = In(tw[k]).array(G)
            members[f"acc_{k}"] = Out(aw[k]).array(G)
        super().__init__(members)

    @property
    def shared_fg(self):
        return shares_fg(self.cfg)

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        sumsq = cfg.variance == "sumsq"
        # variance "sumsq": the dgamma accumulator also gathers the forward's sum of x*x
        take_g = (self.take_b | self.take_f) if sumsq else self.take_b
        if cfg.exact_sums:
            terms, fixes = term_fmts(cfg), acc_fmts(cfg)
            for l in range(cfg.lanes):
                accs = (("f", self.take_f), ("g", take_g), ("b", self.take_b))
                if self.shared_fg:
                    # one register for the forward sum and dgamma: the forward term widened
                    # exactly into PB
                    tf = fp_convert(m, f"cv_f_l{l}", terms["f"], terms["g"], self.term_f[l])
                    fg = FixedAccumulator(terms["g"], fixes["g"], segment=cfg.sum_segment)
                    m.submodules[f"fix_fg_l{l}"] = fg
                    m.d.comb += [fg.clear.eq(self.clear),
                                 fg.take.eq((self.take_f | self.take_b) & ~self.clear),
                                 fg.term.eq(Mux(self.take_b, self.term_g[l], tf)),
                                 self.acc_f[l].eq(fg.acc), self.acc_g[l].eq(fg.acc)]
                    accs = accs[2:]
                for k, take in accs:
                    acc = FixedAccumulator(terms[k], fixes[k], segment=cfg.sum_segment)
                    m.submodules[f"fix_{k}_l{l}"] = acc
                    m.d.comb += [acc.clear.eq(self.clear), acc.take.eq(take & ~self.clear),
                                 acc.term.eq(getattr(self, f"term_{k}")[l]),
                                 getattr(self, f"acc_{k}")[l].eq(acc.acc)]
            return m
        A, AB = cfg.fwd_sum_fmt, cfg.bwd_sum_fmt
        # The sums are data registers without reset (every command clears them before its
        # statistics pass adds to them); the acc_* ports show them.
        regs = {k: [Signal(len(p), name=f"acc_{k}{l}", reset_less=True)
                    for l, p in enumerate(getattr(self, f"acc_{k}"))] for k in "fgb"}
        for k in "fgb":
            src = regs["b" if (sumsq and k == "f") else k]   # sumsq: acc_f names acc_b
            m.d.comb += [p.eq(r) for p, r in zip(getattr(self, f"acc_{k}"), src)]
        if sumsq:
            # W == WB (config rule): x*x in the dgamma accumulator, x in the dbeta one
            for l in range(cfg.lanes):
                g = fp_add(m, f"acc_g_l{l}", AB, self.acc_g[l], self.term_g[l])
                b = fp_add(m, f"acc_b_l{l}", AB, self.acc_b[l],
                           Mux(self.take_f, self.term_f[l], self.term_b[l]))
                with m.If(self.clear):
                    m.d.sync += [regs["g"][l].eq(0), regs["b"][l].eq(0)]
                with m.Elif(self.take_f | self.take_b):
                    m.d.sync += [regs["g"][l].eq(g), regs["b"][l].eq(b)]
            return m
        for l in range(cfg.lanes):
            if self.shared_fg:
                # Forward and backward passes never overlap: the A accumulator and dgamma
                # share one adder when the formats agree (the conventional presets).
                shared = fp_add(m, f"acc_fg_l{l}", A,
                                Mux(self.take_b, self.acc_g[l], self.acc_f[l]),
                                Mux(self.take_b, self.term_g[l], self.term_f[l]))
                totals = {"f": shared, "g": shared}
            else:
                totals = {"f": fp_add(m, f"acc_f_l{l}", A, self.acc_f[l], self.term_f[l]),
                          "g": fp_add(m, f"acc_g_l{l}", AB, self.acc_g[l], self.term_g[l])}
            totals["b"] = fp_add(m, f"acc_b_l{l}", AB, self.acc_b[l], self.term_b[l])
            for name, take, acc in (("f", self.take_f, regs["f"][l]),
                                    ("g", self.take_b, regs["g"][l]),
                                    ("b", self.take_b, regs["b"][l])):
                with m.If(self.clear):
                    m.d.sync += acc.eq(0)
                with m.Elif(take):
                    m.d.sync += acc.eq(totals[name])
        return m
