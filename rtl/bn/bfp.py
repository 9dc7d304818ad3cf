"""``bfp`` block: the stream codecs of the BN unit (x and dy decoders, y and dx encoders).

Each tensor either travels as packed BFP groups (its ``BfpFormat`` in the config; one
:class:`lightnorm.rtl.bfp.BfpDecoder` / :class:`~lightnorm.rtl.bfp.BfpEncoder` per tensor, used as a
combinational core) or as ``G`` plain FP words, lane 0 in the low bits (decode = slicing; encode =
one FPConvert per lane from the op format, the single output rounding of
docs/bn-spec.md section 2).  The pipeline registers around the codecs belong to the
``normalize`` block, which owns the one whole-datapath stall.
"""

from amaranth.hdl import Cat, Module, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .common import core, fp_convert

__all__ = ["Codecs", "codec_signature"]


def codec_signature(cfg):
    """The ports of the ``bfp`` block (:class:`Codecs`), as it sees them.

    The ``normalize`` block, which uses the codecs inside its pipeline, has the flipped
    signature (``In(codec_signature(cfg))``), so the unit connects the two with one
    ``wiring.connect``.
    """
    G, F, B = cfg.lanes, cfg.fwd_fmt, cfg.bwd_fmt
    A, AB = cfg.fwd_op, cfg.bwd_op
    return wiring.Signature({
        "x_raw": In(cfg.tensor_width("x")),
        "dy_raw": In(cfg.tensor_width("dy")),
        "x_words": Out(F.width).array(G),
        "dy_words": Out(B.width).array(G),
        "y_acc": In(A.width).array(G),
        "dx_acc": In(AB.width).array(G),
        "y_raw": Out(cfg.tensor_width("y")),
        "dx_raw": Out(cfg.tensor_width("dx")),
    })


class Codecs(wiring.Component):
    """Combinational codecs of the four streamed tensors.

    Parameters
    ----------
    cfg : BNConfig

    Attributes
    ----------
    x_raw, dy_raw : In(cfg.tensor_width("x")), In(cfg.tensor_width("dy"))
        Packed x / dy beats.
    x_words, dy_words : Out(F.width).array(G), Out(B.width).array(G)
        Per-lane F / B words.
    y_acc, dx_acc : In(P.width).array(G), In(PB.width).array(G)
        Per-lane results in the op formats P / PB.
    y_raw, dx_raw : Out(cfg.tensor_width("y")), Out(cfg.tensor_width("dx"))
        Packed y / dx beats.
    """

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__(codec_signature(cfg))

    def _decode(self, m, name, bfmt, fmt, raw, words):
        if bfmt is None:
            for l, w in enumerate(words):
                m.d.comb += w.eq(raw[l * fmt.width:(l + 1) * fmt.width])
            return
        from lightnorm.rtl.bfp import BfpDecoder
        out = core(m, f"{name}_decoder", BfpDecoder(bfmt, fmt, stages=0), payload=raw)
        for l, w in enumerate(words):
            m.d.comb += w.eq(out[l])

    def _encode(self, m, name, bfmt, acc_fmt, fmt, accs, raw):
        if bfmt is None:
            m.d.comb += raw.eq(Cat(*(fp_convert(m, f"{name}_round_l{l}", acc_fmt, fmt, a)
                                     for l, a in enumerate(accs))))
            return
        from lightnorm.rtl.bfp import BfpEncoder
        out = core(m, f"{name}_encoder", BfpEncoder(bfmt, acc_fmt, stages=0), payload=Cat(*accs))
        m.d.comb += raw.eq(Value.cast(out))

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        F, B, A, AB = cfg.fwd_fmt, cfg.bwd_fmt, cfg.fwd_op, cfg.bwd_op
        self._decode(m, "x", cfg.x_bfp, F, self.x_raw, self.x_words)
        self._decode(m, "dy", cfg.dy_bfp, B, self.dy_raw, self.dy_words)
        self._encode(m, "y", cfg.y_bfp, A, F, self.y_acc, self.y_raw)
        self._encode(m, "dx", cfg.dx_bfp, AB, B, self.dx_acc, self.dx_raw)
        return m
