"""Cycle model of the BN unit with no backpressure, read from the component (docs/interface.md).

Nothing here is a number: the pipeline latency ``L`` is :attr:`BNUnit.stream_latency`, the
scalar segment lengths are :meth:`BNUnit.scalar_cycles`, and the passes of each mode (and the
segment run after each) are :func:`lightnorm.rtl.bn.control.pass_plan`.  One command (one
channel group of G channels, m positions) then takes::

    (1 + G)                  header and lane beats
    + passes * (m + L)       one din beat per cycle per pass, then the pipeline drains
    + sum of its segments    per-channel arithmetic between passes

cycles from the cycle its header is accepted to the cycle of its last ``dout`` beat; the next
group's header is accepted ``GAP`` cycles after that last beat.  :mod:`lightnorm.gen` writes this
model into ``manifest.json``; :mod:`lightnorm.verif.bench` and the regression (``test_bn``) check
it against the cycles the simulator measures.
"""

import gc
import warnings

__all__ = ["GAP", "MODES", "cycle_model", "group_cycles", "layer_cycles", "floor_beats"]

#: Modes of the command stream, in the order of the ``mode`` header field.
MODES = ("forward", "backward", "inference")

#: Cycles between a group's last dout beat and the next header's acceptance (the FSM's FINISH
#: state returns to HEADER; measured by the regression, see :func:`layer_cycles`).
GAP = 1


def cycle_model(unit):
    """Per mode: passes, what runs between them, and the closed form ``a*m + b`` per group.

    Parameters
    ----------
    unit : lightnorm.rtl.bn.BNUnit or BNConfig
        The unit (or the config to build one from, only to ask it).

    Returns
    -------
    dict
        ``{"stream_latency": L, "scalar_cycles": {segment: cycles}, "modes": {mode: {...}}}``;
        each mode gives ``passes`` (list of ``{"kind", "beats": "m", "then": segment or None,
        "segment_cycles"}``), ``m_coeff`` and ``constant`` (group cycles = ``m_coeff*m +
        constant``), ``floor_m_coeff`` (din beats per position: the streaming floor) and the
        formula as text.
    """
    from lightnorm.rtl.bn.control import pass_plan, MODE_FWD, MODE_BWD, MODE_INFER
    from lightnorm.rtl.bn.rangestat import SEGMENTS

    from amaranth.hdl import UnusedElaboratable
    from lightnorm.rtl.bn import BNUnit

    # The properties build throw-away blocks to ask their latency (and a unit built from a
    # config is one too); Amaranth would warn when they are collected unelaborated.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        if not isinstance(unit, BNUnit):
            unit = BNUnit(unit)
        cfg = unit.cfg
        lat = unit.stream_latency
        seg = unit.scalar_cycles()
        del unit            # collected here, inside the filter, if it was built here
        gc.collect()
    from lightnorm.rtl.bn import control
    kind_names = {getattr(control, f"KIND_{k}"): k for k in ("STAT", "VAR", "Y", "BSTAT", "DX")}
    plan = pass_plan(cfg)
    modes = {}
    for mode, code in zip(MODES, (MODE_FWD, MODE_BWD, MODE_INFER)):
        steps = plan[code]
        passes = []
        for kind, segment, _ in steps:
            name = None if segment is None else SEGMENTS[segment]
            passes.append({"kind": kind_names[kind], "beats": "m", "drain": lat, "then": name,
                           "segment_cycles": 0 if name is None else seg[name]})
        n = len(passes)
        const = (1 + cfg.lanes) + n * lat + sum(p["segment_cycles"] for p in passes)
        formula = f"{n}*m + {const}" if n > 1 else f"m + {const}"
        modes[mode] = {"passes": passes, "m_coeff": n, "constant": const,
                       "floor_m_coeff": n, "formula": formula,
                       "terms": f"(1 + G) + {n}*(m + L) + "
                                + (" + ".join(p["then"] for p in passes if p["then"]) or "0")}
    return {"stream_latency": lat, "scalar_cycles": seg, "gap_between_groups": GAP,
            "modes": modes}


def group_cycles(model, mode, m):
    """Cycles of one channel group (header accepted -> last dout beat), no backpressure."""
    md = model["modes"][mode]
    return md["m_coeff"] * m + md["constant"]


def layer_cycles(model, mode, m, groups):
    """Cycles of a layer of ``groups`` channel groups sent back to back (first header accepted
    -> last dout beat of the last group)."""
    return groups * group_cycles(model, mode, m) + (groups - 1) * GAP


def floor_beats(model, mode, m, groups=1):
    """The streaming floor: din beats of the command (one per cycle at best)."""
    return groups * model["modes"][mode]["floor_m_coeff"] * m
