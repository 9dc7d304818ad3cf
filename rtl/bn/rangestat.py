"""``range`` block: chunk extrema, argmax/argmin positions, and the per-channel programs.

Hardware (per lane):

* the running chunk maximum and minimum (``fp.max/fp.min`` in F through two combinational
  FPMinMax cores in the accumulation loop) with their first-occurrence positions, stored at the
  end of chunk ``j`` into ``MX[j], MN[j]`` (F words) and ``AMAX[j], AMIN[j]`` (positions);
* the position registers double as the backward command's argmax/argmin inputs (grad
  ``"range"``), and give the pass-2 flags ``ismax = (p == AMAX[j])``, ``ismin = (p == AMIN[j])``.

The sums of the chunk extrema, the range, sigma_hat (or variance), the reciprocal and the scale
and shift are not done here but by the shared scalar sequencer (:mod:`.recip`), which runs the
programs :func:`programs` returns: op for op the "Finalize" steps of docs/bn-spec.md.
"""

from amaranth.hdl import Array, Elaboratable, Module, Signal

from lightnorm.golden import fp as gfp
from .common import fp_minmax
from .recip import Op

__all__ = ["programs", "SEGMENTS", "Range"]

#: Program segments, in the order :func:`programs` returns them (the sequencer's ``entry``).
SEGMENTS = ("fwd_mu", "fwd_final", "bwd_final")


def programs(cfg):
    """The per-channel programs of ``cfg``: ``[fwd_mu, fwd_final, bwd_final]`` (:data:`SEGMENTS`).

    ``fwd_final`` runs after the last statistics pass (range: pass 1; conventional: pass 2),
    ``fwd_mu`` after pass 1 of the conventional forward (the mean the variance pass needs),
    ``bwd_final`` after backward pass 1.  Operand names: sequencer inputs ``sum``/``vsum`` (the
    forward accumulator, W or its fixed-point word), ``mx{j}``/``mn{j}`` (chunk extrema, F), ``inv_m_f, ck_f, eps_f,
    gamma_f, beta_f`` (A), ``dgamma_w, dbeta_w`` (WB) and ``inv_m_b, ck_b, gamma_b, s_b`` (AB).

    Every sum arrives in (or is accumulated here in) its wide format W and is rounded once into
    the accumulator format by a ``convert`` step; the constants the streaming passes use are
    rounded once into the constant format (``*_c``: C forward, CB backward) after they have
    been computed in the accumulator format (docs/bn-spec.md sections 4 and 5).
    """
    A, AB, K = cfg.fwd_acc_fmt, cfg.bwd_acc_fmt, cfg.chunks
    W, WB, C, CB = cfg.fwd_sum_fmt, cfg.bwd_sum_fmt, cfg.fwd_const, cfg.bwd_const
    one = int(gfp.encode(A, 1.0))
    # Source formats of the sums of m terms: W / WB, or the fixed-point accumulator words of
    # the exact sums (one shared FixedToFloat per (register, destination) rounds them).
    SF, SG, SB = (cfg.fix_fmt(k) for k in "fgb") if cfg.exact_sums else (W, WB, WB)

    def cv(dst, fmt, src, src_fmt):
        return Op(dst, "convert", fmt, (src,), src_fmt)

    mean = [cv("sum_a", A, "sum", SF),
            Op("mu", "mul", A, ("sum_a", "inv_m_f")),
            cv("mu_c", C, "mu", A)]
    scale = [cv("s_c", C, "s", A),
             Op("a", "mul", A, ("gamma_f", "s_c")),
             cv("a_c", C, "a", A),
             Op("mua", "mul", A, ("mu_c", "a_c")),
             Op("b", "sub", A, ("beta_f", "mua")),
             cv("b_c", C, "b", A)]
    if cfg.algorithm == "range":
        fwd = list(mean)
        # Chunk order, from +0, in W: smax = ((+0 + MX[0]) + MX[1]) + ..., then one rounding
        # into A (bn-spec 4.2); the F operands enter the W adder through one shared converter.
        for name, src in (("smax", "mx"), ("smin", "mn")):
            fwd += [Op(f"{name}_w", "add", W, (0 if j == 0 else f"{name}_w", f"{src}{j}"))
                    for j in range(K)]
        fwd += [cv("smax", A, "smax_w", W), cv("smin", A, "smin_w", W),
                Op("rng", "sub", A, ("smax", "smin")),
                Op("sig", "mul", A, ("rng", "ck_f")),
                Op("den", "add", A, ("sig", "eps_f")),
                Op("s0", "div", A, (one, "den")),
                Op("s", "zsel", A, ("rng", "s0"))] + scale
        mu_only = list(mean)     # unused by range BN
    else:
        mu_only = list(mean)
        fwd = [cv("vsum_a", A, "vsum", SF),
               Op("sig", "mul", A, ("vsum_a", "inv_m_f")),
               Op("var_eps", "add", A, ("sig", "eps_f")),
               Op("den", "sqrt", A, ("var_eps",)),
               Op("s0", "div", A, (one, "den")),
               Op("s", "zsel", A, ("vsum_a", "s0"))] + scale
    bwd = [cv("dgamma", AB, "dgamma_w", SG),
           cv("dbeta", AB, "dbeta_w", SB),
           Op("a_b", "mul", AB, ("gamma_b", "s_b")),
           Op("dbm", "mul", AB, ("dbeta", "inv_m_b")),
           Op("c0", "mul", AB, ("a_b", "dbm"))]
    if cfg.grad == "bn":
        bwd += [Op("dgm", "mul", AB, ("dgamma", "inv_m_b")),
                Op("as_b", "mul", AB, ("a_b", "s_b")),
                Op("c1", "mul", AB, ("as_b", "dgm")),
                cv("c1_c", CB, "c1", AB)]
    else:
        bwd += [Op("ad", "mul", AB, ("a_b", "dgamma")),
                Op("c2", "mul", AB, ("ad", "ck_b")),
                Op("c0p", "add", AB, ("c0", "c2")),
                Op("c0m", "sub", AB, ("c0", "c2")),
                cv("c0p_c", CB, "c0p", AB),
                cv("c0m_c", CB, "c0m", AB)]
    bwd += [cv("a_bc", CB, "a_b", AB), cv("c0_c", CB, "c0", AB)]
    return [mu_only, fwd, bwd]


class Range(Elaboratable):
    """Chunk extrema trackers and position registers of all lanes.

    Parameters
    ----------
    cfg : BNConfig

    Attributes
    ----------
    x : list of Signal, in
        The F word of each lane at the pipeline output.
    take : Signal, in
        A statistics beat leaves the pipeline this cycle (range forward pass 1).
    first, last, chunk, pos : Signal, in
        Side-band of that beat: first/last position of its chunk, chunk index, position.
    load_lane : Signal, in
        Command lane beat for lane ``load_index`` with positions ``load_amax``/``load_amin``
        (lists of K Values) is accepted this cycle (backward with grad "range").
    in_chunk, in_pos : Signal, in
        Chunk index and position of the beat entering the pipeline (for the flags).
    mx, mn : list (lanes) of list (K) of Signal
        Stored chunk extrema (F words).
    amax, amin : list (lanes) of list (K) of Signal
        Stored positions.
    ismax, ismin : list of Signal, out
        Pass-2 flags of the entering beat, per lane.
    """

    def __init__(self, cfg):
        self.cfg = cfg
        G, K, F, MB = cfg.lanes, cfg.chunks, cfg.fwd_fmt, cfg.m_bits
        KB = max(1, (K - 1).bit_length())
        self.x = [Signal(F.width, name=f"rng_x{l}") for l in range(G)]
        self.take = Signal()
        self.first, self.last = Signal(), Signal()
        self.chunk = Signal(KB)
        self.pos = Signal(MB)
        self.load_lane = Signal()
        self.load_index = Signal(range(max(2, G)))
        self.load_amax = [Signal(MB, name=f"load_amax{j}") for j in range(K)]
        self.load_amin = [Signal(MB, name=f"load_amin{j}") for j in range(K)]
        self.in_chunk = Signal(KB)
        self.in_pos = Signal(MB)
        self.mx = [[Signal(F.width, name=f"mx_l{l}_c{j}", reset_less=True) for j in range(K)]
                   for l in range(G)]
        self.mn = [[Signal(F.width, name=f"mn_l{l}_c{j}", reset_less=True) for j in range(K)]
                   for l in range(G)]
        # Positions are data (reset_less): a forward command writes every chunk's entry in its
        # statistics pass (range BN needs m >= 2K, so no chunk is empty) before the results
        # that carry them; a backward command loads them from its lane beats before any pass.
        self.amax = [[Signal(MB, name=f"amax_l{l}_c{j}", reset_less=True) for j in range(K)]
                     for l in range(G)]
        self.amin = [[Signal(MB, name=f"amin_l{l}_c{j}", reset_less=True) for j in range(K)]
                     for l in range(G)]
        self.ismax = [Signal(name=f"ismax{l}") for l in range(G)]
        self.ismin = [Signal(name=f"ismin{l}") for l in range(G)]

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        G, K, F, MB = cfg.lanes, cfg.chunks, cfg.fwd_fmt, cfg.m_bits
        for l in range(G):
            if cfg.algorithm == "range":
                self._tracker(m, l, "max", self.mx[l], self.amax[l])
                self._tracker(m, l, "min", self.mn[l], self.amin[l])
            if cfg.has_positions:
                with m.If(self.load_lane & (self.load_index == l)):
                    m.d.sync += [self.amax[l][j].eq(self.load_amax[j]) for j in range(K)]
                    m.d.sync += [self.amin[l][j].eq(self.load_amin[j]) for j in range(K)]
                m.d.comb += [
                    self.ismax[l].eq(Array(self.amax[l])[self.in_chunk] == self.in_pos),
                    self.ismin[l].eq(Array(self.amin[l])[self.in_chunk] == self.in_pos),
                ]
        return m

    def _tracker(self, m, l, kind, store, positions):
        cfg = self.cfg
        F = cfg.fwd_fmt
        cur = Signal(F.width, name=f"{kind}_cur{l}", reset_less=True)
        cur_pos = Signal(cfg.m_bits, name=f"{kind}_pos{l}", reset_less=True)
        x = self.x[l]
        # At a chunk's first position the comparator sees (x, x): the word itself, flushed and
        # canonicalized exactly as golden _chunk_extrema does.
        new = fp_minmax(m, f"{kind}_l{l}", F, Array([cur, x])[self.first], x, kind == "max")
        taken = Signal(name=f"{kind}_taken{l}")
        m.d.comb += taken.eq(self.first | (new != cur))
        pos = Signal(cfg.m_bits, name=f"{kind}_newpos{l}")
        m.d.comb += pos.eq(Array([cur_pos, self.pos])[taken])
        with m.If(self.take):
            m.d.sync += [cur.eq(new), cur_pos.eq(pos)]
            with m.If(self.last):
                with m.Switch(self.chunk):
                    for j in range(cfg.chunks):
                        with m.Case(j):
                            m.d.sync += [store[j].eq(new), positions[j].eq(pos)]
