"""Off-chip traffic and energy MODEL for one training step (forward + backward) of a BN layer.

This is a model, not a measurement.  It multiplies counts by published per-operation and
per-access energies (Horowitz, "Computing's energy problem", ISSCC 2014, 45 nm, 0.9 V; figures
in shared/docs/lightnorm-background.md).  Its assumptions are listed in :data:`ASSUMPTIONS` and
printed with every result.

Traffic: the BN unit's streams (docs/bn-spec.md section 7) are taken to go to and from off-chip
DRAM.  Per element (one channel at one (n, h, w) position), one forward and one backward step
move ``passes_fwd * x + y + 2 * (x + dy) + dx`` bits, where a tensor costs its BFP bits per
element (``group_width / group``: magnitude, sign and the shared exponent's share) or its plain FP
word width; command and result beats add their bits divided by the elements per channel ``m``.

Operations: per element (streaming passes) and per channel (finalize steps, divided by ``m``),
taken from :func:`lightnorm.golden.bn.op_counts` when the golden model can run, else from the
passes documented in docs/bn-spec.md sections 4 and 5 (:func:`documented_op_counts`); the report
says which source was used.
"""

import math
import re

__all__ = ["HOROWITZ_PJ", "DRAM_PJ_PER_BIT", "ASSUMPTIONS", "DEFAULT_M", "tensor_bits",
           "traffic_bits", "documented_op_counts", "op_counts", "op_energy_pj", "model",
           "markdown"]

#: Horowitz 2014 (45 nm, 0.9 V), pJ per operation.
HOROWITZ_PJ = {"fp16_add": 0.4, "fp16_mul": 1.1, "fp32_add": 0.9, "fp32_mul": 3.7,
               "int8_add": 0.03, "int32_add": 0.1}
#: DRAM access, 1.3-2.6 nJ per 64 bits -> pJ per bit (low, high).
DRAM_PJ_PER_BIT = (1300 / 64, 2600 / 64)

#: Elements per channel for amortizing per-channel work: batch 32 x 14 x 14 (a mid-network
#: feature map of a mobile CNN).  An assumption; per-channel terms shrink as 1/m.
DEFAULT_M = 32 * 14 * 14

# Precision exponents of the power law E(p) = E16 * (p / 11) ** alpha through Horowitz' FP16
# (p = 11) and FP32 (p = 24) points: add alpha ~ 1.04 (linear), mul alpha ~ 1.55.
_ALPHA = {op: math.log(HOROWITZ_PJ[f"fp32_{op}"] / HOROWITZ_PJ[f"fp16_{op}"]) / math.log(24 / 11)
          for op in ("add", "mul")}

ASSUMPTIONS = (
    "A MODEL: counts x published energies; no layout, no wires, no control, no leakage.",
    "All four BN streams (x, dy in; y, dx out) and the command/result beats go to/from DRAM; "
    "no on-chip reuse between passes (each pass re-reads x, and dy in the backward pass).",
    "Stream contents as specified in docs/bn-spec.md section 7: range BN reads x twice forward, "
    "conventional BN three times; the backward pass reads x and dy twice (the range gradient's "
    "second pass re-detects the chunk argmax/argmin from x).",
    "DRAM energy 1.3-2.6 nJ per 64 bits (Horowitz 2014), reported as a low-high range.",
    f"Elements per channel m = {DEFAULT_M} (batch 32, 14 x 14) amortize per-channel work and the "
    "command/result beats.",
    "FP add/sub and mul energies follow a power law in significand precision p fitted through "
    "Horowitz' FP16 and FP32 points (add: E = 0.4 pJ (p/11)^%.2f, mul: E = 1.1 pJ (p/11)^%.2f); "
    "formats below p = 11 are extrapolated." % (_ALPHA["add"], _ALPHA["mul"]),
    "min/max cost one FP add of their format; div and sqrt cost 4 FP multiplies (once per "
    "channel, so they barely matter).",
    "Exact (widening) format conversions are wiring, 0 pJ; a rounding conversion or a BFP "
    "encode/decode of one element costs one INT8 add (0.03 pJ), the shared-exponent compare "
    "and shift being of that order.",
)


def _precision(name):
    m = re.match(r"e(\d+)m(\d+)", name)
    if not m:
        raise ValueError(f"cannot read a float format from {name!r}")
    return int(m.group(2)) + 1


def op_energy_pj(op, fmt_name):
    """Energy of one operation ``op`` (fp.py name) on format ``fmt_name``, in pJ (see ASSUMPTIONS)."""
    if op in ("bfp_encode", "bfp_decode"):
        return HOROWITZ_PJ["int8_add"]
    if op == "convert":
        src, dst = fmt_name.split("->")
        try:
            exact = (_precision(dst) >= _precision(src) and
                     int(re.match(r"e(\d+)", dst).group(1)) >= int(re.match(r"e(\d+)", src).group(1)))
        except ValueError:
            exact = False
        return 0.0 if exact else HOROWITZ_PJ["int8_add"]
    if op == "fixadd":
        # an exact sum's fixed-point accumulate: an integer add of the register width
        # (fmt_name "X51m18": 51 bits), priced as width / 8 INT8 adds
        width = int(re.match(r"x(\d+)", fmt_name.lower()).group(1))
        return HOROWITZ_PJ["int8_add"] * width / 8
    p = _precision(fmt_name)
    add = HOROWITZ_PJ["fp16_add"] * (p / 11) ** _ALPHA["add"]
    mul = HOROWITZ_PJ["fp16_mul"] * (p / 11) ** _ALPHA["mul"]
    if op in ("add", "sub", "min", "max"):
        return add
    if op == "mul":
        return mul
    if op in ("div", "sqrt"):
        return 4 * mul
    raise ValueError(f"no energy figure for operation {op!r}")


def tensor_bits(cfg, name):
    """Off-chip bits per element of tensor ``name`` (``"x"``, ``"y"``, ``"dy"``, ``"dx"``)."""
    return cfg.tensor_width(name) / cfg.lanes


def traffic_bits(cfg, m=DEFAULT_M):
    """Bits moved off chip per element for one forward + backward step, by stream."""
    x, y, dy, dx = (tensor_bits(cfg, t) for t in ("x", "y", "dy", "dx"))
    g = cfg.lanes
    out = {
        "x_fwd": cfg.forward_passes * x,
        "y": y,
        "x_bwd": 2 * x,
        "dy": 2 * dy,
        "dx": dx,
        # One forward and one backward command (header + G lane beats) and G result beats each,
        # shared by the G channels of the group and their m positions.
        "cmd_res": 2 * ((g + 1) * cfg.cmd_width + g * cfg.result_width) / (g * m),
    }
    out["total"] = sum(out.values())
    return out


def documented_op_counts(cfg):
    """Operation counts from docs/bn-spec.md sections 2-5, shaped like ``bn.op_counts``.

    Per element for the streaming phases, per channel for the ``*_final`` phases.  The precision
    policy: streaming ops in P / PB, sums in W / WB or exact (``fixadd`` of the register,
    rounded once into A / AB), per-channel
    arithmetic in A / AB, constants rounded into C / CB.  Conversions of a per-channel constant
    inside a streaming phase (1/m per element, exact, priced 0) are left out.
    """
    n = lambda f: f.name  # noqa: E731
    A, AB, F, B = n(cfg.fwd_acc_fmt), n(cfg.bwd_acc_fmt), n(cfg.fwd_fmt), n(cfg.bwd_fmt)
    P, PB, C, CB = n(cfg.fwd_op), n(cfg.bwd_op), n(cfg.fwd_const), n(cfg.bwd_const)
    W, WB = n(cfg.fwd_sum_fmt), n(cfg.bwd_sum_fmt)
    rng = cfg.algorithm == "range"
    sumsq = cfg.variance == "sumsq"      # conventional, one pass: x*x summed in pass 1
    dec = lambda t: {f"bfp_decode {t}": 1.0} if getattr(cfg, f"{t}_bfp") else {}  # noqa: E731
    enc = lambda t, src, dst: ({f"bfp_encode {t}": 1.0} if getattr(cfg, f"{t}_bfp")  # noqa: E731
                               else {} if src == dst else {f"convert {src}->{dst}": 1.0})

    def cv(src, dst, k=1.0):
        return {} if src == dst else {f"convert {src}->{dst}": k}

    def merge(*parts):
        out = {}
        for p in parts:
            for key, v in p.items():
                out[key] = out.get(key, 0.0) + v
        return out

    k = cfg.chunks
    if cfg.exact_sums:
        # exact sums: fixed-point adds of the term's register, one rounding into A / AB each
        sx = lambda k: {f"fixadd {cfg.fix_fmt(k).name}": 1.0}  # noqa: E731
        c = {"fwd_pass1": merge(sx("f"), dec("x"),
                                {f"max {F}": 1.0, f"min {F}": 1.0} if rng else {},
                                merge({f"mul {P}": 1.0}, cv(F, P), sx("g")) if sumsq else {})}
        if not rng and not sumsq:
            c["fwd_pass2"] = merge({f"sub {P}": 1.0, f"mul {P}": 1.0}, sx("f"),
                                   cv(F, P), dec("x"))
        fin = {f"convert fixed->{A}": 1.0 if rng else 2.0}
        bfin = {f"convert fixed->{AB}": 2.0}
        bsum = merge(sx("g"), sx("b"))
        W_A = 2.0 if rng else 0.0
    else:
        c = {"fwd_pass1": merge({f"add {W}": 1.0}, cv(F, W), dec("x"),
                                {f"max {F}": 1.0, f"min {F}": 1.0} if rng else {},
                                merge({f"mul {P}": 1.0, f"add {W}": 1.0}, cv(F, P), cv(P, W))
                                if sumsq else {})}
        if not rng and not sumsq:
            c["fwd_pass2"] = merge({f"sub {P}": 1.0, f"mul {P}": 1.0, f"add {W}": 1.0},
                                   cv(F, P), cv(P, W), dec("x"))
        fin, bfin = {}, cv(WB, AB, 2.0)
        bsum = merge({f"add {WB}": 2.0}, cv(PB, WB), cv(B, WB))
        W_A = 3.0 if rng else 2.0
    # The last forward pass (range and one-pass: 2, conventional: 3) normalizes; phase names
    # as in bn.py.
    last = "fwd_pass3" if cfg.forward_passes == 3 else "fwd_pass2"
    c[last] = merge({f"mul {P}": 1.0, f"add {P}": 1.0}, cv(F, P), dec("x"), enc("y", P, F))
    consts = merge(cv(A, C, 4.0), cv(C, A, 3.0))
    if rng:
        c["fwd_final"] = merge({f"mul {A}": 4.0, f"add {A}": 1.0, f"sub {A}": 2.0,
                                f"div {A}": 1.0, f"add {W}": 2.0 * k}, cv(F, W, 2.0 * k),
                               cv(W, A, W_A), fin, consts)
    else:
        # one-pass: e2 = sumsq/m and mu*mu (mul), var = e2 - mu^2 (sub); the clamp is a
        # selection
        c["fwd_final"] = merge({f"mul {A}": 5.0 if sumsq else 4.0, f"add {A}": 1.0,
                                f"sub {A}": 2.0 if sumsq else 1.0,
                                f"sqrt {A}": 1.0, f"div {A}": 1.0}, cv(W, A, W_A), fin,
                               consts)
    # grad "range" re-detects the chunk extrema of x: pass 1 tracks them as the forward does,
    # pass 2 decodes x for its flags (word compares, no FP operation)
    c["bwd_pass1"] = merge({f"sub {PB}": 1.0, f"mul {PB}": 2.0}, bsum, cv(F, PB),
                           cv(B, PB), dec("x"), dec("dy"),
                           {f"max {F}": 1.0, f"min {F}": 1.0} if cfg.grad == "range" else {})
    if cfg.grad == "range":
        c["bwd_final"] = merge({f"mul {AB}": 5.0, f"add {AB}": 1.0, f"sub {AB}": 1.0},
                               bfin, cv(AB, CB, 6.0))
        c["bwd_pass2"] = merge({f"mul {PB}": 1.0, f"sub {PB}": 1.0}, dec("x"), dec("dy"),
                               enc("dx", PB, B))
    else:
        c["bwd_final"] = merge({f"mul {AB}": 6.0}, bfin, cv(AB, CB, 5.0))
        c["bwd_pass2"] = merge({f"mul {PB}": 2.0, f"sub {PB}": 3.0}, dec("x"), dec("dy"),
                               enc("dx", PB, B))
    return {ph: v for ph, v in c.items() if v}


def op_counts(cfg):
    """(counts, source): the golden model's ``op_counts`` if it runs, else the documented ones."""
    try:
        from ..golden import bn
        return bn.op_counts(cfg, m=64), "golden model (lightnorm.golden.bn.op_counts, m = 64)"
    except Exception as exc:  # noqa: BLE001 - the golden BN model lands in parallel
        return documented_op_counts(cfg), (
            f"documented passes of docs/bn-spec.md (golden op_counts unavailable: "
            f"{exc.__class__.__name__}: {exc})")


def _energy_of(counts, m):
    per_elem = 0.0
    for phase, ops in counts.items():
        scale = 1.0 / m if phase.endswith("final") else 1.0
        for key, n in ops.items():
            op, fmt_name = key.split(" ", 1)
            per_elem += scale * n * op_energy_pj(op, fmt_name)
    return per_elem


def model(presets=None, m=DEFAULT_M):
    """Traffic and energy per element for each BN preset.

    Returns
    -------
    dict
        ``{"assumptions": [...], "m": m, "presets": {name: {"bits": {...}, "ops": {...},
        "ops_source": str, "compute_pj", "dram_pj": (low, high), "total_pj": (low, high)}}}``.
    """
    if presets is None:
        from ..golden.bnconfig import BN_PRESETS as presets
    out = {"assumptions": list(ASSUMPTIONS), "m": m, "presets": {}}
    for name, cfg in presets.items():
        bits = traffic_bits(cfg, m)
        counts, source = op_counts(cfg)
        compute = _energy_of(counts, m)
        dram = tuple(bits["total"] * e for e in DRAM_PJ_PER_BIT)
        out["presets"][name] = {"bits": bits, "ops": counts, "ops_source": source,
                                "compute_pj": compute, "dram_pj": dram,
                                "total_pj": tuple(compute + d for d in dram)}
    return out


def markdown(data, reference="fp32_bn"):
    """Report section (list of lines) for :func:`model` output."""
    p = data["presets"]
    lines = ["## Off-chip traffic and energy (MODEL, not a measurement)", "",
             f"One forward + backward training step of a BN layer, per element, m = {data['m']}.",
             "", "| preset | bits off chip / element | vs " + reference +
             " | compute pJ / element | DRAM pJ / element (low-high) | total pJ (low-high) |",
             "|---|---:|---:|---:|---:|---:|"]
    ref = p.get(reference)
    for name, v in p.items():
        ratio = f"{v['bits']['total'] / ref['bits']['total']:.2f}" if ref else "-"
        lines.append(f"| {name} | {v['bits']['total']:.1f} | {ratio} | {v['compute_pj']:.2f} | "
                     f"{v['dram_pj'][0]:.0f}-{v['dram_pj'][1]:.0f} | "
                     f"{v['total_pj'][0]:.0f}-{v['total_pj'][1]:.0f} |")
    lines += ["", "Bits per element by stream: " + "; ".join(
        f"{n}: " + ", ".join(f"{k} {b:.2f}" for k, b in v["bits"].items() if k != "total")
        for n, v in p.items()), ""]
    lines += ["Operation counts from:", ""]
    lines += [f"- {n}: {v['ops_source']}" for n, v in p.items()]
    lines += ["", "Assumptions:", ""]
    lines += [f"- {a}" for a in data["assumptions"]] + [""]
    return lines


if __name__ == "__main__":
    print("\n".join(markdown(model())))
