"""The LightNorm BN unit: streaming forward, backward and inference batch normalization.

:class:`BNUnit` is built from one :class:`~lightnorm.golden.bnconfig.BNConfig` and matches
:mod:`lightnorm.golden.bn` bit for bit (docs/bn-spec.md).  Its submodules are the blocks a
synthesis report lists separately (docs/architecture.md):

``control``   command/result framing, pass FSM, counters (:mod:`.control`)
``bfp``       x/dy decoders, y/dx encoders (:mod:`.bfp`)
``normalize`` the streaming per-lane datapath (:mod:`.normalize`)
``stats``     the per-lane accumulators (:mod:`.stats`)
``range``     chunk max/min, the backward argmax/argmin flags (:mod:`.rangestat`: a module
              named ``range`` would shadow the builtin inside this package)
``recip``     the shared scalar sequencer: mean, range/variance, reciprocal, sqrt, a, b,
              gradient constants (:mod:`.recip`)

Every block is a ``wiring.Component`` built from the config alone, whose signature says what it
consumes and produces (its docstring lists the ports); no block is given another block.
:meth:`BNUnit.elaborate` instantiates them and makes every connection, so the unit's data flow
reads there (docs/architecture.md, "Connections").

Streams and beat layouts: docs/interface.md.  The AXI4-Stream top level that ``make verilog``
writes around the unit's Verilog (``bn_<preset>_axis``) is :class:`.axis.BNAxis`.
"""

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from lightnorm.golden.bn import error_width
from lightnorm.golden.bnconfig import BNConfig

from .bfp import Codecs
from .control import Control
from .common import nested_forward
from .normalize import Normalize, pipeline_latency
from .rangestat import Range, programs, SEGMENTS
from .recip import ScalarSequencer
from .stats import Stats, acc_fmts, acc_widths, sum_latency

__all__ = ["BNUnit"]


def _lanes(dst, src):
    """``dst[l].eq(src[l])`` for every lane (and chunk: nested lists) of two port lists."""
    if isinstance(dst, (list, tuple)):
        if len(dst) != len(src):
            raise ValueError(f"lane counts differ: {len(dst)} and {len(src)}")
        return [a for d, s in zip(dst, src) for a in _lanes(d, s)]
    return [dst.eq(src)]


class BNUnit(wiring.Component):
    """Batch-normalization unit for one :class:`BNConfig`.

    Parameters
    ----------
    cfg : BNConfig
        Formats, lanes G, chunks K, algorithm, gradient form and pipeline depths.

    Attributes
    ----------
    cmd : In(stream.Signature(unsigned(cfg.cmd_width)))
        Commands: per channel group a header beat and G lane beats.
    din : In(stream.Signature(unsigned(cfg.din_width)))
        Data in: ``x | dy << XW``, one position (G channels) per beat.
    dout : Out(stream.Signature(unsigned(cfg.dout_width)))
        y (last forward pass, inference) or dx (backward pass 2), one position per beat.
    res : Out(stream.Signature(unsigned(cfg.result_width)))
        Per-channel results, G beats per training command.
    err : Out(stream.Signature(unsigned(lightnorm.golden.bn.error_width(cfg))))
        One beat ``code | mode | m`` per refused command (docs/interface.md, "Refused
        commands"); never for a command the unit executes.
    dout_last, res_last : Out(1)
        Frame ends, meaningful while the stream's ``valid`` is high: the ``dout`` beat on offer
        is the last (m-th) of its command, the ``res`` beat on offer the last (G-th) of its
        command.  The AXI4-Stream top level (:mod:`.axis`) drives ``tlast`` from them; a
        stream-native integration can ignore them.
    """

    def __init__(self, cfg):
        if not isinstance(cfg, BNConfig):
            raise TypeError(f"cfg must be a BNConfig, not {cfg!r}")
        self.cfg = cfg
        super().__init__({
            "cmd": In(stream.Signature(cfg.cmd_width)),
            "din": In(stream.Signature(cfg.din_width)),
            "dout": Out(stream.Signature(cfg.dout_width)),
            "res": Out(stream.Signature(cfg.result_width)),
            "err": Out(stream.Signature(error_width(cfg))),
            "dout_last": Out(1),
            "res_last": Out(1),
        })

    @property
    def stream_latency(self):
        """Register stages from ``din`` to ``dout`` (and to the accumulators)."""
        return pipeline_latency(self.cfg)

    def scalar_cycles(self):
        """Cycles of each sequencer segment, ``{segment name: cycles}`` (exact)."""
        seq = self._sequencer()
        return {name: seq.cycles(k) for k, name in enumerate(SEGMENTS)}

    def _sequencer(self):
        """The ``recip`` block: the sequencer of :func:`.rangestat.programs`, its operand ports
        (``elaborate`` connects them) and the outputs the other blocks read."""
        cfg = self.cfg
        F, A, AB, G = cfg.fwd_fmt, cfg.fwd_acc_fmt, cfg.bwd_acc_fmt, cfg.lanes
        sf, sw = acc_fmts(cfg), acc_widths(cfg)
        # name -> (port width, or a list of G for one word per lane; the program's format)
        inputs = {
            "sum": ([sw["f"]] * G, sf["f"]), "vsum": ([sw["f"]] * G, sf["f"]),
            "dgamma_w": ([sw["g"]] * G, sf["g"]), "dbeta_w": ([sw["b"]] * G, sf["b"]),
            "sumsq": ([sw["g"]] * G, sf["g"]),     # variance "sumsq": forward sum of x*x
            "inv_m_f": (A.width, A), "ck_f": (A.width, A), "eps_f": (A.width, A),
            "gamma_f": ([A.width] * G, A), "beta_f": ([A.width] * G, A),
            "inv_m_b": (AB.width, AB), "ck_b": (AB.width, AB),
            "gamma_b": ([AB.width] * G, AB), "s_b": ([AB.width] * G, AB),
        }
        for j in range(cfg.chunks):
            inputs[f"mx{j}"] = ([F.width] * G, F)
            inputs[f"mn{j}"] = ([F.width] * G, F)
        stages = {"add": cfg.add_stages, "mul": cfg.mul_stages, "div": cfg.div_stages,
                  "sqrt": cfg.sqrt_stages, "minmax": cfg.minmax_stages,
                  # an exact sum's FixedToFloat: negate, normalize and round, as an adder does
                  "fix": cfg.add_stages}
        # What the other blocks read (normalize: the streaming constants; the result beats:
        # mu_c, sig, s_c, dgamma, dbeta): these keep their own registers, everything else
        # shares the sequencer's temporary slots.
        outputs = ["mu_c", "sig", "s_c", "a_c", "b_c", "dgamma", "dbeta", "a_bc", "c0_c"]
        outputs += ["c1_c"] if cfg.grad == "bn" else ["c0p_c", "c0m_c"]
        # the nested forward's a_c, b_c (PB words) also take an inference command's a and b
        loads = ["a_c", "b_c"] if nested_forward(cfg) else []
        return ScalarSequencer(G, programs(cfg), inputs, stages, outputs=outputs, loads=loads,
                               delay=sum_latency(cfg), name="seq")

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        G = cfg.lanes
        m.submodules.control = ctl = Control(cfg)
        m.submodules.bfp = codecs = Codecs(cfg)
        m.submodules.normalize = norm = Normalize(cfg)
        m.submodules.stats = stats = Stats(cfg)
        m.submodules.range = rng = Range(cfg)
        m.submodules.recip = seq = self._sequencer()

        # The unit's streams: commands, results and refusals at control, data at normalize.
        # The datapath sees din except while control drops a refused command's beats.
        wiring.connect(m, wiring.flipped(self.cmd), ctl.cmd)
        wiring.connect(m, wiring.flipped(self.res), ctl.res)
        wiring.connect(m, wiring.flipped(self.err), ctl.err)
        m.d.comb += [
            norm.din.payload.eq(self.din.payload), norm.din.valid.eq(self.din.valid),
            self.din.ready.eq(norm.din.ready | ctl.drop),
            ctl.drop_fire.eq(self.din.valid & ctl.drop),
        ]
        wiring.connect(m, wiring.flipped(self.dout), norm.dout)
        m.d.comb += [self.dout_last.eq(ctl.dout_last), self.res_last.eq(ctl.res_last)]

        # control <-> normalize: the command and pass, the beats entering and leaving the
        # pipeline, the command's lane words and (backward) its lane beats as they arrive
        m.d.comb += [norm.ctl.mode.eq(ctl.mode), norm.ctl.kind.eq(ctl.kind),
                     norm.ctl.accept.eq(ctl.accept),
                     norm.ctl.first.eq(ctl.first), norm.ctl.last.eq(ctl.last),
                     ctl.in_fire.eq(norm.ctl.in_fire), ctl.out_fire.eq(norm.ctl.out_fire),
                     *_lanes(norm.ctl.p0, ctl.p0), *_lanes(norm.ctl.p1, ctl.p1),
                     *_lanes(norm.ctl.p2, ctl.p2),
                     norm.ctl.load_lane.eq(ctl.load_lane), norm.ctl.load_index.eq(ctl.load_index),
                     *_lanes(norm.ctl.load_words, ctl.load_words)]
        # normalize <-> bfp: the codecs at both ends of the pipeline
        wiring.connect(m, norm.codec, codecs)
        # normalize -> stats: the terms of the sums, on the beats of a statistics pass;
        # control -> stats: clear at a command's start and before the variance pass
        m.d.comb += [stats.take_f.eq(norm.stats.take_f), stats.take_b.eq(norm.stats.take_b),
                     *_lanes(stats.term_f, norm.stats.term_f),
                     *_lanes(stats.term_g, norm.stats.term_g),
                     *_lanes(stats.term_b, norm.stats.term_b),
                     stats.clear.eq(ctl.clear)]
        # normalize <-> range: the beats of the passes that track the chunk extrema (leaving
        # the pipeline) and of backward pass 2 (entering it: its argmax/argmin flags); control
        # -> range: the entering beat's chunk flags
        m.d.comb += [rng.take.eq(norm.rng.take), rng.first.eq(norm.rng.first),
                     rng.last.eq(norm.rng.last), *_lanes(rng.x, norm.rng.x),
                     *_lanes(rng.in_x, norm.rng.in_x), rng.in_take.eq(norm.rng.in_take),
                     rng.in_first.eq(ctl.first), rng.in_last.eq(ctl.last),
                     *_lanes(norm.rng.ismax, rng.ismax), *_lanes(norm.rng.ismin, rng.ismin)]
        # control <-> recip: run a program segment between two passes
        m.d.comb += [seq.start.eq(ctl.seq_start), seq.entry.eq(ctl.seq_entry),
                     ctl.seq_done.eq(seq.done)]
        # control -> recip (nested forward): an inference lane beat's a and b, widened into PB,
        # into the registers of a_c, b_c
        if seq.loads:
            m.d.comb += [seq.load.eq(ctl.load_ab), seq.load_lane.eq(ctl.load_index),
                         seq.load_value.a_c.eq(ctl.load_ab_words[0]),
                         seq.load_value.b_c.eq(ctl.load_ab_words[1])]
        # control, stats, range -> recip: the operands of the per-channel programs (an operand
        # port is as wide as the program's format: a control word's low bits)
        operands = {
            "sum": stats.acc_f, "vsum": stats.acc_f,
            "dgamma_w": stats.acc_g, "dbeta_w": stats.acc_b, "sumsq": stats.acc_g,
            "inv_m_f": ctl.inv_m, "ck_f": ctl.ck, "eps_f": ctl.eps,
            "gamma_f": ctl.p0, "beta_f": ctl.p1,
            "inv_m_b": ctl.inv_m, "ck_b": ctl.ck, "gamma_b": ctl.p0, "s_b": ctl.p2,
        }
        for j in range(cfg.chunks):
            operands[f"mx{j}"] = [rng.mx[l][j] for l in range(G)]
            operands[f"mn{j}"] = [rng.mn[l][j] for l in range(G)]
        if set(operands) != set(seq.operand.signature.members):
            raise AssertionError(f"sequencer operands {sorted(seq.operand.signature.members)} "
                                 f"are not the connected ones {sorted(operands)}")
        for name, src in operands.items():
            m.d.comb += _lanes(getattr(seq.operand, name), src)
        # recip -> normalize (the streaming constants) and -> control (what the result beats
        # carry): their seq port groups, named as the sequencer's outputs
        for block in (norm, ctl):
            for name in block.seq.signature.members:
                m.d.comb += _lanes(getattr(block.seq, name), getattr(seq.result, name))
        return m
