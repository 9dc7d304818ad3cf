"""``range`` block: chunk extrema, the backward argmax/argmin flags, and the per-channel programs.

Hardware (per lane):

* the running chunk maximum and minimum (``fp.max/fp.min`` in F through two combinational
  FPMinMax cores in the accumulation loop), shifted at the end of each chunk into a K-word
  shift register per kind, so that after the pass ``MX[j], MN[j]`` (F words) hold chunk j --
  in forward pass 1 for the sequencer's extrema sums, and (grad ``"range"``) in backward pass
  1 again, from the same x.  A shift register instead of a write decoder and a K:1 read
  multiplexer: the chunks are written, and read back in pass 2, in chunk order;
* in backward pass 2 (grad ``"range"``) the flags ``ismax``/``ismin`` of the beat entering the
  datapath: its word, as the trackers compared it (FTZ subnormals flushed, NaN canonical),
  equals ``MX[0]`` / ``MN[0]`` -- the current chunk's, the registers rotate by one word at
  each chunk end -- and no earlier position of the chunk did (one "seen" bit per lane and
  kind, cleared at each chunk start).  The shift registers rely on exactly K non-empty chunks
  per pass, which the header checks guarantee (``m_chunks``: m >= 2K; ``chunks_qr``: q, r =
  divmod(m, K); docs/interface.md, "Refused commands"): a refused command runs no pass.  That is exactly the element the
  first-occurrence argmax/argmin rule picks (docs/bn-spec.md section 5), so the unit stores no
  positions: no position registers, no position fields on the streams.

The sums of the chunk extrema, the range, sigma_hat (or variance), the reciprocal and the scale
and shift are not done here but by the shared scalar sequencer (:mod:`.recip`), which runs the
programs :func:`programs` returns: the "Finalize" steps of docs/bn-spec.md, operation for
operation (the sequencer may issue a step that writes an output earlier than listed, once its
operands are ready: the same operations on the same operands, so the same bits).
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lightnorm.golden import fp as gfp
from lightnorm.rtl.round import Unpack
from .common import fp_minmax, nested_forward
from .recip import Op
from .stats import acc_fmts

__all__ = ["programs", "SEGMENTS", "Range"]

#: Program segments, in the order :func:`programs` returns them (the sequencer's ``entry``).
SEGMENTS = ("fwd_mu", "fwd_final", "bwd_final")


def programs(cfg):
    """The per-channel programs of ``cfg``: ``[fwd_mu, fwd_final, bwd_final]`` (:data:`SEGMENTS`).

    ``fwd_final`` runs after the last statistics pass (range and conventional "sumsq": pass 1;
    conventional "centered": pass 2), ``fwd_mu`` after pass 1 of the centered conventional
    forward (the mean the variance pass needs), ``bwd_final`` after backward pass 1.  Operand
    names: sequencer inputs ``sum``/``vsum`` (the forward accumulator, W or its fixed-point
    word), ``sumsq`` (variance "sumsq": the sum of x*x in the dgamma accumulator),
    ``mx{j}``/``mn{j}`` (chunk extrema, F), ``inv_m_f, ck_f, eps_f,
    gamma_f, beta_f`` (A), ``dgamma_w, dbeta_w`` (WB) and ``inv_m_b, ck_b, gamma_b, s_b`` (AB).

    Every sum arrives in (or is accumulated here in) its wide format W and is rounded once into
    the accumulator format by a ``convert`` step; the constants the streaming passes use are
    rounded once into the constant format (``*_c``: C forward, CB backward) after they have
    been computed in the accumulator format (docs/bn-spec.md sections 4 and 5).  With the
    nested forward (:func:`lightnorm.rtl.bn.common.nested_forward`) ``a_c`` and ``b_c`` are
    kept widened exactly into PB, the format the datapath takes them in.
    """
    A, AB, K = cfg.fwd_acc_fmt, cfg.bwd_acc_fmt, cfg.chunks
    W, WB, C, CB = cfg.fwd_sum_fmt, cfg.bwd_sum_fmt, cfg.fwd_const, cfg.bwd_const
    one = int(gfp.encode(A, 1.0))
    # Source formats of the sums of m terms: W / WB, or the fixed-point accumulator words of
    # the exact sums (one shared FixedToFloat per (register, destination) rounds them).
    SF, SG, SB = (acc_fmts(cfg)[k] for k in "fgb")

    def cv(dst, fmt, src, src_fmt, store=None):
        return Op(dst, "convert", fmt, (src,), src_fmt, store)

    mean = [cv("sum_a", A, "sum", SF),
            Op("mu", "mul", A, ("sum_a", "inv_m_f")),
            cv("mu_c", C, "mu", A)]
    # The nested forward (normalize) takes a_c and b_c on its PB cores: the sequencer keeps
    # them as PB words, the C words widened exactly as they are written (Op.store).  mu_c * a_c
    # then takes the PB word as its first operand, beside the other A words, so the multiplier
    # still has one converter per operand slot (PB -> A there, C -> A for s_c and mu_c).
    wide = cfg.bwd_op if nested_forward(cfg) else None
    scale = [cv("s_c", C, "s", A),
             Op("a", "mul", A, ("gamma_f", "s_c")),
             cv("a_c", C, "a", A, wide),
             Op("mua", "mul", A, ("a_c", "mu_c") if wide else ("mu_c", "a_c")),
             Op("b", "sub", A, ("beta_f", "mua")),
             cv("b_c", C, "b", A, wide)]
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
    elif cfg.variance == "sumsq":
        # One pass: var = E[x^2] - mu^2 with the A word mu, a negative difference clamped to
        # +0 (bn-spec 4.2); the sum of squares sits in the dgamma accumulator (format SG).
        fwd = list(mean) + [
            cv("sumsq_a", A, "sumsq", SG),
            Op("e2", "mul", A, ("sumsq_a", "inv_m_f")),
            Op("mu2", "mul", A, ("mu", "mu")),
            Op("var", "sub", A, ("e2", "mu2")),
            Op("sig", "clamp0", A, ("var",)),
            Op("var_eps", "add", A, ("sig", "eps_f")),
            Op("den", "sqrt", A, ("var_eps",)),
            Op("s0", "div", A, (one, "den")),
            Op("s", "zsel", A, ("sig", "s0"))] + scale
        mu_only = list(mean)     # unused: no variance pass
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


class Range(wiring.Component):
    """Chunk extrema trackers and the backward argmax/argmin flags of all lanes.

    Parameters
    ----------
    cfg : BNConfig

    Attributes
    ----------
    x : In(F.width).array(G)
        The F word of each lane at the pipeline output.
    take : In(1)
        A statistics beat leaves the pipeline this cycle (range forward pass 1; backward pass 1
        with grad "range").
    first, last : In(1)
        Side-band of that beat: first/last position of its chunk.
    in_x : In(F.width).array(G)
        The F word of each lane of the beat entering the pipeline (after BFP decoding).
    in_first, in_last : In(1)
        Side-band of the entering beat: first/last position of its chunk.
    in_take : In(1)
        The entering beat is taken this cycle in backward pass 2 (updates the "seen" bits,
        rotates the extrema at a chunk end).
    mx, mn : Out(F.width).array(G, K)
        Stored chunk extrema (F words; lane l, chunk j), chunk j in entry j after a statistics
        pass.
    ismax, ismin : Out(1).array(G)
        Pass-2 flags of the entering beat, per lane (grad "range").
    """

    def __init__(self, cfg):
        self.cfg = cfg
        G, K, F = cfg.lanes, cfg.chunks, cfg.fwd_fmt
        super().__init__({
            "x": In(F.width).array(G),
            "take": In(1), "first": In(1), "last": In(1),
            "in_x": In(F.width).array(G),
            "in_first": In(1), "in_last": In(1), "in_take": In(1),
            "mx": Out(F.width).array(G, K),
            "mn": Out(F.width).array(G, K),
            "ismax": Out(1).array(G),
            "ismin": Out(1).array(G),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        G, K, F = cfg.lanes, cfg.chunks, cfg.fwd_fmt
        # Extrema are data (reset_less): a command's statistics pass writes every chunk's entry
        # (range BN needs m >= 2K, so no chunk is empty) before the sequencer or pass 2 reads it.
        # The mx / mn ports show these registers.
        mx = [[Signal(F.width, name=f"mx_l{l}_c{j}", reset_less=True) for j in range(K)]
              for l in range(G)]
        mn = [[Signal(F.width, name=f"mn_l{l}_c{j}", reset_less=True) for j in range(K)]
              for l in range(G)]
        for l in range(G):
            m.d.comb += [p.eq(r) for p, r in zip(self.mx[l] + self.mn[l], mx[l] + mn[l])]
        for l in range(cfg.lanes):
            if cfg.algorithm == "range":
                self._tracker(m, l, "max", mx[l])
                self._tracker(m, l, "min", mn[l])
            if cfg.grad == "range":
                word = self._canonical(m, l)
                self._flag(m, l, "max", word, mx[l], self.ismax[l])
                self._flag(m, l, "min", word, mn[l], self.ismin[l])
        return m

    def _tracker(self, m, l, kind, store):
        cfg = self.cfg
        F = cfg.fwd_fmt
        cur = Signal(F.width, name=f"{kind}_cur{l}", reset_less=True)
        x = self.x[l]
        # At a chunk's first position the comparator sees (x, x): the word itself, flushed and
        # canonicalized exactly as golden _chunk_extrema does.
        new = fp_minmax(m, f"{kind}_l{l}", F, Array([cur, x])[self.first], x, kind == "max")
        with m.If(self.take):
            m.d.sync += cur.eq(new)
            with m.If(self.last):              # chunk j ends: shift it in at the top
                m.d.sync += [a.eq(b) for a, b in zip(store, store[1:] + [new])]

    def _canonical(self, m, l):
        """The entering word as the FPMinMax trackers see it: ``fp.max(F, x, x)``.

        An FTZ subnormal becomes the zero of its sign, any NaN the canonical NaN (the rules of
        :class:`lightnorm.rtl.fpminmax.FPMinMax`, from the same Unpack classification); every
        other word is itself.  A bit-pattern rewrite, no comparison.
        """
        F = self.cfg.fwd_fmt
        m.submodules[f"unpack_in_x{l}"] = u = Unpack(F)
        m.d.comb += u.a.eq(self.in_x[l])
        word = Signal(F.width, name=f"canon_x{l}")
        m.d.comb += word.eq(Mux(u.is_nan, F.canonical_nan,
                                Mux(u.is_zero, Cat(Const(0, F.width - 1), u.sign),
                                    self.in_x[l])))
        return word

    def _flag(self, m, l, kind, word, store, flag):
        # The chunk's first position whose word equals its stored extremum: "seen" remembers a
        # hit earlier in the chunk; the chunk's first beat ignores it (cleared at each start).
        seen = Signal(name=f"{kind}_seen{l}", reset_less=True)
        hit = Signal(name=f"{kind}_hit{l}")
        m.d.comb += [hit.eq(word == store[0]),
                     flag.eq(hit & (self.in_first | ~seen))]
        with m.If(self.in_take):
            m.d.sync += seen.eq((seen & ~self.in_first) | hit)
            with m.If(self.in_last):           # the next chunk's extremum moves to entry 0
                m.d.sync += [a.eq(b) for a, b in zip(store, store[1:] + store[:1])]
