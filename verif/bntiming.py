"""Cycle model of the BN unit with no backpressure, read from the component (docs/interface.md).

Nothing here is a number: the pipeline latency ``L`` is :attr:`BNUnit.stream_latency`, the
scalar segment lengths are :meth:`BNUnit.scalar_cycles`, and the passes of each mode (and the
segment run after each) are :func:`lightnorm.rtl.bn.control.pass_plan`.  One command (one
channel group of G channels, m positions) then takes::

    (1 + G)                  header and lane beats
    + passes * (m + L)       one din beat per cycle per pass, then the pipeline drains
    + sum of its segments    per-channel arithmetic between passes

cycles from the cycle its header is accepted to the cycle of its last ``dout`` beat, both
included; then ``GAP`` idle cycle (the FSM's FINISH state), and the next header is accepted
``GAP + 1`` cycles after that last beat (unless the G result beats, sent from the first cycle of
the last pass, are still going: :func:`header_period`).  :func:`group_schedule` gives the cycle
of every step.  :mod:`lightnorm.gen` writes this model into ``manifest.json``;
:mod:`lightnorm.verif.bench` and the regression (``test_bn``) check it against the cycles the
simulator measures, and ``test_gen_bn`` checks docs/interface.md and docs/architecture.md
against it.
"""

import gc
import warnings

__all__ = ["GAP", "MODES", "cycle_model", "group_cycles", "group_schedule", "header_period",
           "layer_cycles", "floor_beats"]

from lightnorm.golden.bn import MODES as _MODE_CODES

#: Modes of the command stream (the names of :data:`lightnorm.golden.bn.MODES`, in the order
#: of their header codes).
MODES = tuple(sorted(_MODE_CODES, key=_MODE_CODES.get))

#: Idle cycles between a group's last dout beat and the next header's acceptance (the FSM's
#: FINISH state, which returns to HEADER; measured by the regression, see :func:`layer_cycles`).
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
    from lightnorm.rtl.bn.control import pass_plan
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
    for mode in MODES:
        steps = plan[_MODE_CODES[mode]]
        passes = []
        for kind, segment, results in steps:
            name = None if segment is None else SEGMENTS[segment]
            passes.append({"kind": kind_names[kind], "beats": "m", "drain": lat, "then": name,
                           "segment_cycles": 0 if name is None else seg[name],
                           "results_after": bool(results)})
        n = len(passes)
        const = (1 + cfg.lanes) + n * lat + sum(p["segment_cycles"] for p in passes)
        formula = f"{n}*m + {const}" if n > 1 else f"m + {const}"
        modes[mode] = {"passes": passes, "m_coeff": n, "constant": const,
                       "floor_m_coeff": n, "formula": formula,
                       "terms": f"(1 + G) + {n}*(m + L) + "
                                + (" + ".join(p["then"] for p in passes if p["then"]) or "0")}
    return {"stream_latency": lat, "scalar_cycles": seg, "gap_between_groups": GAP,
            "lanes": cfg.lanes, "modes": modes}


def group_cycles(model, mode, m):
    """Cycles of one channel group (header accepted -> last dout beat), no backpressure."""
    md = model["modes"][mode]
    return md["m_coeff"] * m + md["constant"]


def group_schedule(model, mode, m):
    """The cycle of every step of one channel group, no backpressure (cycle 0 = header accepted).

    Returns
    -------
    dict
        ``lanes`` (first, last lane beat); ``passes``: per pass ``din`` (first, last beat),
        ``drain`` (first, last cycle after the last beat, L cycles; None if L = 0) and
        ``segment`` (name, first, last cycle) or None; ``dout`` (first, last beat); ``res``
        (first, last beat; None for inference: the G result beats start with the pass after
        the segment that computes them); ``finish`` (the idle cycles, GAP of them, after the
        last dout beat); ``next_header`` (the cycle the next header is accepted when it is
        offered at once).
    """
    md = model["modes"][mode]
    G, L = model["lanes"], model["stream_latency"]
    t = 1 + G
    passes, res_first = [], None
    for p in md["passes"]:
        din = (t, t + m - 1)
        drain = (t + m, t + m + L - 1) if L else None
        t += m + L
        segment = None
        if p["then"] is not None:
            segment = (p["then"], t, t + p["segment_cycles"] - 1)
            t += p["segment_cycles"]
        if p["results_after"]:
            res_first = t                   # the result emitter starts with the next pass
        passes.append({"din": din, "drain": drain, "segment": segment})
    last = passes[-1]["din"]
    dout = (last[0] + L, last[1] + L)
    res = None if res_first is None else (res_first, res_first + G - 1)
    # FINISH waits for the last result beat: the next header comes GAP cycles after both ends.
    end = max(dout[1], -1 if res is None else res[1])
    return {"lanes": (1, G), "passes": passes, "dout": dout, "res": res,
            "finish": (end + 1, end + GAP), "next_header": end + GAP + 1}


def header_period(model, mode, m):
    """Cycles from a group's header to the next header's acceptance, no backpressure: one
    more (GAP) than :func:`group_cycles`, or more when G exceeds the last pass's m + L (the
    result beats then outlast the dout beats)."""
    return group_schedule(model, mode, m)["next_header"]


def layer_cycles(model, mode, m, groups):
    """Cycles of a layer of ``groups`` channel groups sent back to back (first header accepted
    -> last dout beat of the last group)."""
    return (groups - 1) * header_period(model, mode, m) + group_cycles(model, mode, m)


def floor_beats(model, mode, m, groups=1):
    """The streaming floor: din beats of the command (one per cycle at best)."""
    return groups * model["modes"][mode]["floor_m_coeff"] * m
