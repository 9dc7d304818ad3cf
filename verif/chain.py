"""Test-only composite: the BFP encoder feeding the BFP decoder, for round-trip regressions.

Streams between units are part of what is tested: the encoder's ``o`` drives the decoder's ``i``
directly (``wiring.connect``), so back-pressure crosses the unit boundary.
"""

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.data import ArrayLayout
from amaranth.hdl import unsigned
from amaranth.lib.wiring import In, Out

from lightnorm.rtl.bfp import BfpDecoder, BfpEncoder

__all__ = ["BfpRoundTrip"]


class BfpRoundTrip(wiring.Component):
    """``fmt`` group -> BFP -> ``fmt`` group, through :class:`BfpEncoder` and :class:`BfpDecoder`.

    Parameters
    ----------
    bfmt : BfpFormat
    fmt : FloatFormat
    stages : int, keyword-only
        Pipeline depth of each of the two codecs.

    Attributes
    ----------
    latency : int
        Sum of the two codecs' latencies.
    """

    def __init__(self, bfmt, fmt, *, stages=1):
        self.encoder = BfpEncoder(bfmt, fmt, stages=stages)
        self.decoder = BfpDecoder(bfmt, fmt, stages=stages)
        layout = ArrayLayout(unsigned(fmt.width), bfmt.group)
        super().__init__({"i": In(stream.Signature(layout)), "o": Out(stream.Signature(layout))})

    @property
    def latency(self):
        return self.encoder.latency + self.decoder.latency

    def elaborate(self, platform):
        m = Module()
        m.submodules.encoder = self.encoder
        m.submodules.decoder = self.decoder
        wiring.connect(m, wiring.flipped(self.i), self.encoder.i)
        wiring.connect(m, self.encoder.o, self.decoder.i)
        wiring.connect(m, self.decoder.o, wiring.flipped(self.o))
        return m
