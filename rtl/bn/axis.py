"""AXI4-Stream top level of the BN unit: the Verilog module an FPGA or SoC design instantiates.

:class:`BNAxis` wraps the Verilog module generated from :class:`~lightnorm.rtl.bn.BNUnit`
(``bn_<preset>``, instantiated by name, so the unit's netlist exists once) in AXI4-Stream
naming (docs/interface.md, "AXI4-Stream top level"):

* every stream member of ``BNUnit``'s signature becomes ``<name>_tdata``, ``<name>_tvalid``,
  ``<name>_tready`` and ``<name>_tlast`` in the same direction (the signature is read, not
  listed here, so a stream added to the unit appears on the wrapper without edits);
* ``tdata`` is the payload zero-extended to whole bytes (AXI4-Stream data is an integer number
  of bytes); the extra bits of an input are ignored, those of an output are 0;
* input ``tlast`` is ignored: the unit frames its input by content (a header and G lane beats
  per command, passes x m data beats); output ``tlast`` comes from the unit's
  ``<name>_last`` port (``dout``: the m-th beat of a command, ``res``: the G-th result beat),
  and is 1 on every beat of an output stream without such a port;
* other plain ports of the unit pass through under their own names;
* ``aclk`` and ``aresetn`` (active low, synchronous) replace ``clk`` and ``rst``.

The wrapper is wires only: no register, no cycle of latency, the unit's handshakes unchanged.
"""

import gc
import re
import warnings
from dataclasses import dataclass

from amaranth.hdl import ClockDomain, ClockSignal, Instance, Module, ResetSignal, Shape
from amaranth.hdl import Signal, UnusedElaboratable, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import Flow, In, Out

from lightnorm.golden.bnconfig import BNConfig

__all__ = ["AxisStream", "BNAxis", "axis_streams", "bn_axis_streams", "tdata_width"]


def tdata_width(width):
    """Bits of ``tdata`` for a ``width``-bit payload: the next multiple of 8."""
    return -(-width // 8) * 8


@dataclass(frozen=True)
class AxisStream:
    """One AXI4-Stream port of the wrapper.

    Attributes
    ----------
    name : str
        Stream name in the unit's signature (``cmd``); the ports are ``<name>_t*``.
    direction : str
        ``"in"`` (the host sends, the unit drives ``tready``) or ``"out"``.
    width : int
        Payload bits of the unit's stream.
    tdata_width : int
        ``width`` rounded up to whole bytes.
    last : str or None
        The unit's port that drives ``tlast`` (outputs only); ``None``: ``tlast`` is ignored
        (inputs) or 1 on every beat (an output without a ``<name>_last`` port).
    """

    name: str
    direction: str
    width: int
    tdata_width: int
    last: str = None

    @property
    def tlast_rule(self):
        """The ``tlast`` rule of this port, in words (for the manifest and messages)."""
        if self.direction == "in":
            return "ignored (the unit frames its input by content)"
        if self.last is None:
            return "1 on every beat (no frame-end port on the unit)"
        return f"from the unit's {self.last} port: last beat of each frame"


def _is_stream(member):
    return member.is_signature and isinstance(member.signature, stream.Signature)


def axis_streams(signature):
    """The AXI4-Stream ports for a unit signature, and the plain ports passed through.

    Parameters
    ----------
    signature : wiring.Signature
        Signature of the unit (``BNUnit(cfg).signature``).

    Returns
    -------
    (list of AxisStream, dict)
        The streams in signature order, and ``{name: member}`` of the plain ports that are
        neither a stream nor a stream's ``<name>_last`` frame end.
    """
    members = signature.members
    streams, plain = [], {}
    for name, member in members.items():
        if _is_stream(member):
            direction = "in" if member.flow == Flow.In else "out"
            last = f"{name}_last"
            has_last = (direction == "out" and last in members and members[last].is_port
                        and members[last].flow == Flow.Out
                        and Shape.cast(members[last].shape).width == 1)
            width = Shape.cast(member.signature.members["payload"].shape).width
            streams.append(AxisStream(name, direction, width, tdata_width(width),
                                      last if has_last else None))
        elif member.is_port:
            plain[name] = member
        else:
            raise TypeError(f"member {name!r} of the unit's signature is an interface that is "
                            f"not a stream ({member.signature!r}): the AXI4-Stream wrapper "
                            f"maps only streams and plain ports")
    frame_ends = {s.last for s in streams if s.last}
    plain = {n: m for n, m in plain.items() if n not in frame_ends}
    clash = sorted({"aclk", "aresetn", "clk", "rst"} & set(plain))
    if clash:
        raise ValueError(f"the unit's ports {clash} clash with the wrapper's clock/reset ports")
    return streams, plain


def bn_axis_streams(cfg):
    """The :class:`AxisStream` ports of ``BNAxis(cfg)``, without building the wrapper."""
    return axis_streams(_unit_signature(cfg))[0]


def _unit_signature(cfg):
    from . import BNUnit
    # A unit built only to read its signature is never elaborated; Amaranth would warn when
    # it is collected (as in verif/bntiming.py).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        unit = BNUnit(cfg)
        signature = unit.signature
        del unit
        gc.collect()
    return signature


class BNAxis(wiring.Component):
    """AXI4-Stream top level around the Verilog module of ``BNUnit(cfg)``.

    Parameters
    ----------
    cfg : BNConfig
        The unit's configuration (its signature gives the streams and widths).
    core : str
        Name of the Verilog module generated from ``BNUnit(cfg)`` (``bn_<preset>``), which is
        instantiated as ``core``; compile its file together with this wrapper's.

    Attributes
    ----------
    aclk, aresetn : In(1)
        Clock and active-low synchronous reset (the unit's ``clk``, ``rst = ~aresetn``).
    <name>_tdata, <name>_tvalid, <name>_tready, <name>_tlast
        One AXI4-Stream port per stream of the unit (:attr:`streams`).
    streams : list of AxisStream
        The stream ports and their ``tlast`` rules.
    """

    def __init__(self, cfg, core):
        if not isinstance(cfg, BNConfig):
            raise TypeError(f"cfg must be a BNConfig, not {cfg!r}")
        if not isinstance(core, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", core):
            raise ValueError(f"core must be a Verilog module name, not {core!r}")
        self.cfg = cfg
        self.core = core
        self._unit_sig = _unit_signature(cfg)
        self.streams, self._plain = axis_streams(self._unit_sig)
        members = {"aclk": In(1), "aresetn": In(1)}
        for s in self.streams:
            data = In if s.direction == "in" else Out
            back = Out if s.direction == "in" else In
            members.update({f"{s.name}_tdata": data(s.tdata_width), f"{s.name}_tvalid": data(1),
                            f"{s.name}_tready": back(1), f"{s.name}_tlast": data(1)})
        members.update(self._plain)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        # The wrapper is the top of its design: it defines the unit's clock domain from the
        # AXI clock and reset instead of inheriting Amaranth's implicit clk/rst ports.
        m.domains.sync = ClockDomain("sync")
        m.d.comb += [ClockSignal("sync").eq(self.aclk), ResetSignal("sync").eq(~self.aresetn)]

        ports = {"i_clk": ClockSignal("sync"), "i_rst": ResetSignal("sync")}
        for s in self.streams:
            payload, valid, ready = (Signal(s.width, name=f"{s.name}_payload"),
                                     Signal(name=f"{s.name}_valid"), Signal(name=f"{s.name}_ready"))
            tdata, tvalid, tready, tlast = (getattr(self, f"{s.name}_{k}")
                                            for k in ("tdata", "tvalid", "tready", "tlast"))
            if s.direction == "in":
                # tdata's padding bits and tlast are not read (module docstring).
                ports.update({f"i_{s.name}__payload": payload, f"i_{s.name}__valid": valid,
                              f"o_{s.name}__ready": ready})
                m.d.comb += [payload.eq(tdata[:s.width]), valid.eq(tvalid), tready.eq(ready)]
            else:
                ports.update({f"o_{s.name}__payload": payload, f"o_{s.name}__valid": valid,
                              f"i_{s.name}__ready": ready})
                m.d.comb += [tdata.eq(payload), tvalid.eq(valid), ready.eq(tready)]
                if s.last is None:
                    m.d.comb += tlast.eq(1)
                else:
                    last = Signal(name=s.last)
                    ports[f"o_{s.last}"] = last
                    m.d.comb += tlast.eq(last)
        for name, member in self._plain.items():
            port = getattr(self, name)
            wire = Signal.like(Value.cast(port), name=f"core_{name}")
            if member.flow == Flow.In:
                ports[f"i_{name}"] = wire
                m.d.comb += wire.eq(port)
            else:
                ports[f"o_{name}"] = wire
                m.d.comb += port.eq(wire)
        m.submodules.core = Instance(self.core, **ports)
        return m
