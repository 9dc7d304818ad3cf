"""Part 2: error of the bit-exact BN unit against float64, per preset and over a format sweep.

Every configuration runs through the golden model (:mod:`lightnorm.golden.bn`, forward then
backward) and is compared by :func:`lightnorm.golden.report_errors.measure`, the project's one
definition of the error, with two float64 references (:mod:`lightnorm.golden.reference`):

* ``same``: the same algorithm (range BN with the config's K and gradient form, or BatchNorm2d):
  the error of the arithmetic alone (formats, BFP, rounding, accumulation order);
* ``bn``: BatchNorm2d semantics: what a user sees end to end, including range BN's different
  sigma estimate and gradient.

Metrics per output (y, dx, dgamma, dbeta): relative RMS and relative max (see
``report_errors.errors``).

Inputs: ``report_errors.standard_inputs`` (x = 0.5 + 2 N(0,1), dy = N(0,1), gamma, beta) on a
(8, 64, 8, 8) layer (m = 512, 64 channels, so BFP groups up to 64 are full), and a ReLU-shaped
variant (x clipped at 0: many equal minima, which stresses the range gradient's argmin rule).
The presets are also measured on realistic layer sizes (:data:`SIZE_SHAPES`: m = 25,088 as in a
32 x 28 x 28 feature map, and m = 65,536, the presets' ``max_m``), group ``"size"``.

The sweep varies one dimension of the LightNorm reference at a time, each in both rounding
modes: element formats (forward = backward format, accumulators +8 mantissa bits, BFP magnitude
= element precision), accumulator extra bits, BFP group, BFP magnitude width (and no BFP), and
the chunk count K.  A combination the BNConfig rejects (e.g. eps rounding to 0) is recorded with
its error message instead of numbers.
"""

import numpy as np

from .common import write_csv, write_json, pyplot

__all__ = ["INPUT_KINDS", "SIZE_SHAPES", "preset_points", "sweep_points", "layer_inputs", "measure_point",
           "run_error_study"]

OUTPUTS = ("y", "dx", "dgamma", "dbeta")
INPUT_KINDS = ("standard", "relu")
ROUNDINGS = ("rtz", "rne")
#: Realistic layer sizes (N, C, H, W) for the presets, m = N*H*W positions per channel:
#: batch 32 of 28 x 28 maps (m = 25,088; 64 channels like the m = 512 layer) and batch 64 of
#: 32 x 32 maps (m = 65,536 = max_m of the presets, the largest m a unit accepts; 32 channels
#: to halve the cost).  Every channel count is a whole number of BFP groups of up to 32.
SIZE_SHAPES = ((32, 64, 28, 28), (64, 32, 32, 32))


def layer_inputs(kind, shape=(8, 64, 8, 8), seed=0):
    """``x, dy, gamma, beta`` for input ``kind`` (``"standard"`` or ``"relu"``)."""
    from lightnorm.golden.report_errors import standard_inputs
    if kind not in INPUT_KINDS:
        raise ValueError(f"kind must be one of {INPUT_KINDS}, not {kind!r}")
    x, dy, gamma, beta = standard_inputs(shape, seed)
    if kind == "relu":
        x = np.maximum(x, 0.0)
    return x, dy, gamma, beta


def preset_points():
    """(group, label, BNConfig) for every training configuration of the presets."""
    from .train import training_configs
    return [("preset", name, cfg) for name, cfg in training_configs().items() if cfg is not None]


def _ln(**changes):
    from lightnorm.golden.bnconfig import LIGHTNORM
    return LIGHTNORM.replace(**changes)


def _acc_extra(rounding, extra):
    """LIGHTNORM with ``extra`` accumulator mantissa bits over the data formats."""
    from lightnorm.golden.bnconfig import LIGHTNORM, lightnorm_policy
    return lightnorm_policy(LIGHTNORM, acc_extra=(extra, extra), rounding=rounding)


def _bfp_all(group, man):
    from lightnorm.golden.formats import BfpFormat
    if man is None:
        return dict(x_bfp=None, y_bfp=None, dy_bfp=None, dx_bfp=None)
    b = BfpFormat(group, man)
    return dict(x_bfp=b, y_bfp=b, dy_bfp=b, dx_bfp=b)


def sweep_points(exps=(4, 5, 6, 8), mans=(2, 3, 4, 5, 7, 10), extras=(0, 2, 4, 8, 12),
                 groups=(1, 4, 8, 16, 32, 64), bfp_mans=(2, 3, 4, 5, 6, 8, None),
                 chunks=(1, 2, 4, 8, 16, 32)):
    """The format sweep around the LightNorm reference, as (group, label, build) triples.

    The builder makes the BNConfig for a rounding mode (``build(rounding)``) and may raise
    ``ValueError`` for a combination BNConfig rejects.
    """
    from lightnorm.golden.formats import FloatFormat, BfpFormat
    pts = []
    for e in exps:
        for mb in mans:
            def mk(r, e=e, mb=mb):
                from lightnorm.golden.bnconfig import LIGHTNORM, lightnorm_policy
                f = FloatFormat(e, mb)
                x = min(8, 23 - mb)
                # LightNorm's policy for the new data format (ops and constants in f, "+8"
                # accumulators wide enough for every sum).
                return lightnorm_policy(LIGHTNORM, f, f, acc_extra=(x, x), rounding=r,
                                        **_bfp_all(8, mb + 1))
            pts.append(("element", f"e{e}m{mb}", mk))
    for x in extras:
        pts.append(("acc_extra", f"+{x}", lambda r, x=x: _acc_extra(r, x)))
    for g in groups:
        pts.append(("bfp_group", f"G{g}", lambda r, g=g: _ln(
            rounding=r, lanes=g, x_bfp=BfpFormat(g, 5), y_bfp=BfpFormat(g, 5),
            dy_bfp=BfpFormat(g, 4), dx_bfp=BfpFormat(g, 4))))
    for w in bfp_mans:
        pts.append(("bfp_man", "none" if w is None else f"w{w}",
                    lambda r, w=w: _ln(rounding=r, **_bfp_all(8, w))))
    for k in chunks:
        pts.append(("chunks", f"K{k}", lambda r, k=k: _ln(rounding=r, chunks=k)))
    return pts


def measure_point(args):
    """Measure one ``(group, label, cfg, rounding, kind, shape)`` task; returns a flat row.

    ``cfg`` is a BNConfig, or the message of the ``ValueError`` BNConfig raised for this point.
    """
    group, label, cfg, rounding, kind, shape = args
    row = {"group": group, "point": label, "rounding": rounding, "kind": kind,
           "m": None if shape is None else shape[0] * shape[2] * shape[3]}
    if isinstance(cfg, str):
        row.update(valid=False, note=cfg)
        return row
    from lightnorm.golden.report_errors import measure
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1):
        x, dy, gamma, beta = layer_inputs(kind, shape)
        res = measure(cfg, x, dy, gamma, beta)
    row.update(valid=True, note="", grad=cfg.grad, algorithm=cfg.algorithm,
               rounding=cfg.rounding, fwd=cfg.fwd_fmt.name, bwd=cfg.bwd_fmt.name,
               fwd_acc=cfg.fwd_acc_fmt.name, bwd_acc=cfg.bwd_acc_fmt.name,
               x_bfp=cfg.x_bfp.name if cfg.x_bfp else "none",
               dy_bfp=cfg.dy_bfp.name if cfg.dy_bfp else "none", K=cfg.chunks,
               nan_outputs=res["nan_outputs"])
    for ref in ("same", "bn"):
        for o in OUTPUTS:
            for metric in ("rel_rms", "rel_max"):
                row[f"{ref}_{o}_{metric}"] = res[ref][o][metric]
    return row


def run_error_study(out, jobs=2, kinds=INPUT_KINDS, shape=(8, 64, 8, 8), sweep=True,
                    sizes=SIZE_SHAPES, **sweep_kw):
    """Presets, presets at other layer sizes and (optionally) the format sweep; writes
    ``bn_errors.csv/json`` and a plot.

    Parameters
    ----------
    out : str
        Output folder.
    jobs : int
        Worker processes.
    kinds : sequence of str
        Input kinds (:data:`INPUT_KINDS`).
    shape : tuple
        NCHW layer shape; C must be a multiple of every swept BFP group for full groups.
    sweep : bool
        Include the format sweep (``sweep_kw`` passed to :func:`sweep_points`).
    sizes : sequence of tuple
        Further NCHW layer shapes on which the presets are measured (group ``"size"``; default
        :data:`SIZE_SHAPES`).

    Returns
    -------
    list of dict
        One row per (configuration, input kind).
    """
    tasks = [(g, l, c, c.rounding, k, shape) for g, l, c in preset_points() for k in kinds]
    for sh in sizes:
        tasks += [("size", l, c, c.rounding, k, tuple(sh)) for _, l, c in preset_points()
                  for k in kinds]
    if sweep:
        for g, l, build in sweep_points(**sweep_kw):
            for r in ROUNDINGS:
                try:
                    cfg = build(r)
                except ValueError as e:     # a combination BNConfig rejects: keep the reason
                    cfg = str(e)
                tasks += [(g, l, cfg, r, k, shape) for k in kinds]
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(max_workers=jobs) as ex:
            rows = list(ex.map(measure_point, tasks, chunksize=2))
    else:
        rows = [measure_point(t) for t in tasks]
    # Invalid rows lack the numeric columns: give every row the same keys for the CSV.
    keys = list(dict.fromkeys(k for r in rows if r["valid"] for k in r))
    keys += [k for r in rows for k in r if k not in keys]
    rows = [{k: r.get(k, "") for k in keys} for r in rows]
    write_csv(f"{out}/bn_errors.csv", rows)
    write_json(f"{out}/bn_errors.json", rows)
    _plot(rows, f"{out}/bn_errors.png", sweep)
    return rows


def _plot(rows, path, sweep):
    plt = pyplot()
    std = [r for r in rows if r["kind"] == "standard" and r["valid"]]
    presets = [r for r in std if r["group"] == "preset"]
    ncols = 4 if sweep else 1
    nrows = 2 if sweep else 1
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.6 * nrows), squeeze=False)
    ax = axes[0][0]
    width = 0.8 / len(OUTPUTS)
    # ReLU-shaped inputs (if measured) as hatched bars beside the standard ones.
    relu = {r["point"]: r for r in rows
            if r["kind"] == "relu" and r["valid"] and r["group"] == "preset"}
    for i, o in enumerate(OUTPUTS):
        ax.bar(np.arange(len(presets)) + i * width, [r[f"same_{o}_rel_rms"] for r in presets],
               width / (2 if relu else 1), label=o, color=f"C{i}")
        if relu:
            ax.bar(np.arange(len(presets)) + (i + 0.5) * width,
                   [relu[r["point"]][f"same_{o}_rel_rms"] for r in presets], width / 2,
                   color=f"C{i}", alpha=0.5, hatch="//", label=f"{o} (ReLU x)" if i == 0 else None)
    # The presets at the realistic layer sizes (group "size", standard x) as markers on the bars.
    for j, m in enumerate(sorted({r["m"] for r in std if r["group"] == "size"})):
        size = {r["point"]: r for r in std if r["group"] == "size" and r["m"] == m}
        for i, o in enumerate(OUTPUTS):
            xs = [k + i * width for k, r in enumerate(presets) if r["point"] in size]
            ax.plot(xs, [size[r["point"]][f"same_{o}_rel_rms"] for r in presets
                         if r["point"] in size], "v^sD"[j % 4], color="k", markersize=3,
                    linestyle="none", label=f"m = {m:,}" if i == 0 else None)
    ax.set_xticks(np.arange(len(presets)) + 0.4 - width / 2)
    ax.set_xticklabels([r["point"] for r in presets], rotation=35, ha="right", fontsize=7)
    ax.set_yscale("log")
    ax.set_title("presets: rel. RMS vs same algorithm")
    ax.legend(fontsize=6)
    if sweep:
        def line(ax, group, outputs, ref="same", xlabels=None):
            for o, color in zip(outputs, ["C0", "C1", "C2", "C3"]):
                for rnd, style in (("rne", "o-"), ("rtz", "x:")):
                    pts = [r for r in std if r["group"] == group and r["rounding"] == rnd]
                    ax.plot(range(len(pts)), [r[f"{ref}_{o}_rel_rms"] for r in pts], style,
                            color=color, label=f"{o} {rnd}")
                    labels = [r["point"] for r in pts]
            ax.set_xticks(range(len(labels)))
            ax.set_xticklabels(labels, fontsize=7, rotation=35)
            ax.set_yscale("log")
            ax.set_title(f"{group}: rel. RMS vs {ref}")
            ax.legend(fontsize=6)
        # element formats: one line per exponent width, y error (rne solid, rtz dotted)
        for ax, o in ((axes[0][1], "y"), (axes[0][2], "dx")):
            elem = [r for r in std if r["group"] == "element"]
            for i, e in enumerate(sorted({r["fwd"].split("m")[0] for r in elem})):
                for rnd, style in (("rne", "o-"), ("rtz", "x:")):
                    pts = [r for r in elem if r["fwd"].startswith(e + "m") and
                           r["rounding"] == rnd]
                    ax.plot([int(r["point"].split("m")[1]) for r in pts],
                            [r[f"same_{o}_rel_rms"] for r in pts], style, color=f"C{i}",
                            label=f"{e} {rnd}")
            ax.set_yscale("log")
            ax.set_xlabel("element mantissa bits")
            ax.set_title(f"element format: {o} rel. RMS vs same")
            ax.legend(fontsize=6)
        line(axes[0][3], "acc_extra", ("dgamma", "dbeta"))
        line(axes[1][0], "bfp_group", ("y", "dx"))
        line(axes[1][1], "bfp_man", ("y", "dx"))
        line(axes[1][2], "chunks", ("y", "dx"), ref="bn")
        line(axes[1][3], "chunks", ("y", "dx"))
    fig.suptitle("BN golden model vs float64 reference (m = 512, markers: presets at larger m;"
                 " sweeps: standard inputs; presets: standard and, hatched, ReLU-shaped x)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
