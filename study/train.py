"""Part 3: does a network train as well when its BN layers run on LightNorm arithmetic?

A small CNN (:func:`lightnorm.study.nn.build_cnn`) learns scikit-learn's bundled 8x8 digits (no
download).  Each training configuration names the arithmetic of the BN layers only; convolutions,
ReLU, pooling, the classifier and the optimizer are float32 in every run:

* ``float32``: the network's own float32 BN (:class:`lightnorm.study.nn.FloatBN`);
* ``<preset>/<grad>``: BN forward and backward computed bit-exactly by the golden model
  :mod:`lightnorm.golden.bn` for a :class:`~lightnorm.golden.bnconfig.BNConfig` preset, with the
  gradient form ``grad`` ("range": exact gradient of range BN, "bn": standard BN gradient).

Every configuration trains the same seeds; a seed fixes the initial weights and the mini-batch
order, so configurations are compared *paired*, seed by seed.  The seeds of one configuration
train in lock step and share one golden-model call per BN layer and step: the channels of all
seeds are concatenated (BN channels are independent, and each network's channel count is a
multiple of the BFP group, so no BFP group mixes two networks).  The golden model's per-position
accumulation loop then runs once for all seeds.

Evaluation uses the running statistics, folded into ``a*x + b`` in float32 (the question is how
well the network *trains*; inference is a separate, one-multiply-add datapath).
"""

import time

import numpy as np

from . import nn
from .common import write_csv, write_json, pyplot

__all__ = ["load_digits_split", "GoldenBN", "training_configs", "sweep_config", "train_config",
           "run_training_study", "summarize_training", "joint_forward", "joint_backward"]


def load_digits_split(test_size=0.3, split_seed=0):
    """scikit-learn's 8x8 digits (1797 images, bundled with the package), stratified split.

    Pixels are scaled by the training set's mean and standard deviation.

    Returns
    -------
    x_train, y_train, x_test, y_test : ndarray
        Images as float32 NHWC ``(n, 8, 8, 1)``, labels as int64.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    d = load_digits()
    x = d.images.astype(np.float32)[..., None]
    xtr, xte, ytr, yte = train_test_split(x, d.target, test_size=test_size, stratify=d.target,
                                          random_state=split_seed)
    mu, sd = xtr.mean(), xtr.std()
    return (xtr - mu) / sd, ytr.astype(np.int64), (xte - mu) / sd, yte.astype(np.int64)


# -- golden-model BN backend ------------------------------------------------------------------
class GoldenBN:
    """BN backend that runs forward and backward through the bit-exact golden model.

    Parameters
    ----------
    cfg : lightnorm.golden.bnconfig.BNConfig
        The hardware configuration (formats, BFP, rounding, K, gradient form).

    Notes
    -----
    The float32 activations, gradients, gamma and beta enter the unit the way a host would feed
    it: rounded once into the stream formats by the golden model's own encoders.  ``sigma``
    returned for the running statistics is ``1 / s`` (``s`` = the unit's reciprocal scale), i.e.
    ``sigma_hat + eps`` for range BN and ``sqrt(var + eps)`` for conventional BN.
    """

    name = "golden"

    def __init__(self, cfg):
        from lightnorm.golden import bn
        self.cfg = cfg
        self._bn = bn

    def forward(self, x, gamma, beta):
        """``x`` (m, C) in stream order -> ``(y, mu, sigma)`` from :func:`lightnorm.golden.bn.forward`.

        The (m, C) matrix is handed over as an NCHW layer of shape (m, C, 1, 1): its stream
        order (n, h, w) is then exactly the row order, with no copy of the data layout.
        """
        x4 = np.asarray(x, np.float64)[:, :, None, None]
        self._gamma = np.asarray(gamma, np.float64)
        self._fwd = self._bn.forward(self.cfg, x4, self._gamma, np.asarray(beta, np.float64))
        s = self._fwd.s
        # s = 0 is the unit's zero-spread rule (constant channel); keep the running sigma finite.
        sigma = np.where(s > 0, 1.0 / np.where(s > 0, s, 1.0), 1.0)
        return self._fwd.y[:, :, 0, 0], self._fwd.mu, sigma

    def backward(self, dy):
        """``dy`` (m, C) -> ``(dx, dgamma, dbeta)`` from :func:`lightnorm.golden.bn.backward`."""
        res = self._bn.backward(self.cfg, np.asarray(dy, np.float64)[:, :, None, None],
                                self._gamma, self._fwd)
        return res.dx[:, :, 0, 0], res.dgamma, res.dbeta


def training_configs(names=None):
    """The training configurations: name -> BNConfig (``None`` for the float32 baseline).

    Range presets train with both gradient forms; conventional presets with the "bn" gradient.

    Parameters
    ----------
    names : iterable of str, optional
        Restrict to these names (``ValueError`` for an unknown one).  Names of the form
        ``"sweep/<group>/<label>/<rounding>"`` (:func:`sweep_config`) add part-2 sweep points.
    """
    from lightnorm.golden.bnconfig import BN_PRESETS
    out = {"float32": None}
    for pname, cfg in BN_PRESETS.items():
        grads = ("range", "bn") if cfg.algorithm == "range" else ("bn",)
        for g in grads:
            out[f"{pname}/{g}"] = cfg.replace(grad=g)
    if names is not None:
        names = list(names)
        for n in names:
            if n.startswith("sweep/") and n not in out:
                out[n] = sweep_config(n)
        bad = [n for n in names if n not in out]
        if bad:
            raise ValueError(f"unknown training configuration(s) {bad}; known: {list(out)}")
        out = {n: out[n] for n in names}
    return out


def sweep_config(name):
    """BNConfig of a part-2 sweep point named ``"sweep/<group>/<label>/<rounding>"``.

    E.g. ``"sweep/acc_extra/+2/rtz"``: the same configuration as that row of ``bn_errors.csv``
    (:func:`lightnorm.study.bnerror.sweep_points`), for training runs beyond the presets.
    """
    from .bnerror import sweep_points
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "sweep":
        raise ValueError(f"a sweep configuration is 'sweep/<group>/<label>/<rounding>', "
                         f"not {name!r}")
    _, group, label, rounding = parts
    for g, l, build in sweep_points():
        if (g, l) == (group, label):
            return build(rounding)
    raise ValueError(f"no sweep point {group}/{label} (see bnerror.sweep_points)")


# -- lock-step training of several networks ---------------------------------------------------
def _bn_joint_forward(layers, xs):
    """One backend call for the same BN layer of several networks (channels concatenated)."""
    if not layers[0].training:
        return [l.forward(x) for l, x in zip(layers, xs)]
    cs = [x.shape[-1] for x in xs]
    x2 = np.concatenate([x.reshape(-1, c) for x, c in zip(xs, cs)], axis=1)
    g = np.concatenate([l.params["gamma"] for l in layers])
    b = np.concatenate([l.params["beta"] for l in layers])
    y, mu, sigma = layers[0].backend.forward(x2, g, b)
    ys, lo = [], 0
    for l, x, c in zip(layers, xs, cs):
        sl = slice(lo, lo + c)
        lo += c
        ys.append(l.finish_forward(x, y[:, sl], np.asarray(mu)[sl], np.asarray(sigma)[sl]))
    return ys


def _bn_joint_backward(layers, douts):
    cs = [d.shape[-1] for d in douts]
    d2 = np.concatenate([d.reshape(-1, c) for d, c in zip(douts, cs)], axis=1)
    dx, dg, db = layers[0].backend.backward(d2)
    out, lo = [], 0
    for l, d, c in zip(layers, douts, cs):
        sl = slice(lo, lo + c)
        lo += c
        out.append(l.finish_backward(d, dx[:, sl], np.asarray(dg)[sl], np.asarray(db)[sl]))
    return out


def joint_forward(nets, xs):
    """Forward several structurally identical networks in lock step (see module notes)."""
    for li in range(len(nets[0].layers)):
        layers = [n.layers[li] for n in nets]
        if isinstance(layers[0], nn.BatchNorm):
            xs = _bn_joint_forward(layers, xs)
        else:
            xs = [l.forward(x) for l, x in zip(layers, xs)]
    return xs


def joint_backward(nets, douts):
    for li in reversed(range(len(nets[0].layers))):
        layers = [n.layers[li] for n in nets]
        if isinstance(layers[0], nn.BatchNorm):
            douts = _bn_joint_backward(layers, douts)
        else:
            douts = [l.backward(d) for l, d in zip(layers, douts)]
    return douts


def _evaluate(net, x, y, batch=512):
    net.train(False)
    loss, correct = 0.0, 0
    for i in range(0, len(x), batch):
        logits = net.forward(x[i:i + batch])
        l, _ = nn.softmax_cross_entropy(logits, y[i:i + batch])
        loss += l * len(logits)
        correct += int((logits.argmax(axis=1) == y[i:i + batch]).sum())
    net.train(True)
    return loss / len(x), correct / len(x)


def train_config(name, cfg, seeds, data, epochs=12, batch=32, widths=(8, 16), lr=0.05,
                 momentum=0.9, weight_decay=1e-4, max_steps=None):
    """Train one configuration for all ``seeds`` in lock step.

    Parameters
    ----------
    name : str
        Configuration name (for the records).
    cfg : BNConfig or None
        ``None``: float32 BN.
    seeds : sequence of int
        One network per seed (initial weights and batch order).
    data : tuple
        ``load_digits_split()`` output.
    epochs, batch : int
        Passes over the training set; mini-batch size (the last partial batch is dropped so every
        BN call sees the same m).
    widths : tuple of int
        Conv channels per block (multiples of the BFP group for golden configurations).
    lr, momentum, weight_decay : float
        SGD; the learning rate follows a cosine schedule to 0 over the run.
    max_steps : int, optional
        Stop each epoch after this many steps (smoke tests).

    Returns
    -------
    records : list of dict
        One per (seed, epoch): train loss (mean over the epoch), test loss and accuracy.
    seconds : float
        Wall-clock time of the run.
    """
    xtr, ytr, xte, yte = data
    if cfg is not None:
        g = cfg.lanes
        bad = [w for w in widths if w % g]
        if bad:
            raise ValueError(f"widths must be multiples of the config's lanes ({g}), not {widths}")
    t0 = time.perf_counter()
    nets, rngs, opts = [], [], []
    for s in seeds:
        rng = np.random.default_rng(s)
        factory = nn.FloatBN if cfg is None else (lambda: GoldenBN(cfg))
        net = nn.build_cnn(factory, rng, widths=widths)
        nets.append(net)
        rngs.append(rng)
        opts.append(nn.SGD(net, lr=lr, momentum=momentum, weight_decay=weight_decay))
    steps_per_epoch = len(xtr) // batch
    if max_steps is not None:
        steps_per_epoch = min(steps_per_epoch, max_steps)
    total = epochs * steps_per_epoch
    records, step = [], 0
    for epoch in range(epochs):
        perms = [r.permutation(len(xtr)) for r in rngs]
        losses = np.zeros(len(seeds))
        for i in range(steps_per_epoch):
            rate = 0.5 * lr * (1 + np.cos(np.pi * step / total))
            idx = [p[i * batch:(i + 1) * batch] for p in perms]
            logits = joint_forward(nets, [xtr[j] for j in idx])
            grads = []
            for k, (lg, j) in enumerate(zip(logits, idx)):
                l, d = nn.softmax_cross_entropy(lg, ytr[j])
                losses[k] += l
                grads.append(d)
            joint_backward(nets, grads)
            for o in opts:
                o.lr = rate
                o.step()
            step += 1
        for k, (s, net) in enumerate(zip(seeds, nets)):
            tl, acc = _evaluate(net, xte, yte)
            records.append({"config": name, "seed": s, "epoch": epoch + 1,
                            "train_loss": losses[k] / steps_per_epoch, "test_loss": tl,
                            "test_acc": acc})
    return records, time.perf_counter() - t0


def _train_worker(args):
    from threadpoolctl import threadpool_limits
    name, seeds, kw = args
    with threadpool_limits(1):    # one BLAS thread per process: the pool provides parallelism
        cfg = training_configs([name])[name]
        return name, train_config(name, cfg, seeds, load_digits_split(), **kw)


def run_training_study(out, configs=None, seeds=(0, 1, 2), jobs=2, **kw):
    """Train every configuration for every seed; write CSVs, a JSON summary and a plot.

    Each configuration's records are also written as soon as it finishes
    (``train_part_<name>.json``), so an interrupted study keeps what it finished
    (:func:`summarize_training` assembles them).

    Parameters
    ----------
    out : str
        Output folder: ``train_curves.csv``, ``train_summary.csv``, ``train.json``, ``train.png``.
    configs : iterable of str, optional
        Names from :func:`training_configs` (default: all).  ``float32`` is always included: it
        is the baseline of the accuracy differences.
    seeds : sequence of int
    jobs : int
        Worker processes (one configuration each at a time).
    **kw
        Passed to :func:`train_config`.

    Returns
    -------
    dict
        ``{"summary": rows, "curves": records, "settings": ...}``.
    """
    from concurrent.futures import ProcessPoolExecutor, as_completed
    names = list(training_configs(configs))
    if "float32" not in names:
        names.insert(0, "float32")
    settings = {"seeds": list(seeds), **kw}
    tasks = [(n, tuple(seeds), kw) for n in names]
    results = {}

    def keep(name, res):
        results[name] = res
        write_json(f"{out}/train_part_{name.replace('/', '_')}.json",
                   {"config": name, "records": res[0], "seconds": res[1], "settings": settings})

    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as ex:
            for fut in as_completed([ex.submit(_train_worker, t) for t in tasks]):
                keep(*fut.result())
    else:
        for t in tasks:
            keep(*_train_worker(t))
    return summarize_training(out, {n: results[n] for n in names}, settings)


def summarize_training(out, results=None, settings=None):
    """Summary rows (accuracy, paired difference to float32), CSVs, JSON and plot.

    Parameters
    ----------
    out : str
        Output folder.
    results : dict, optional
        name -> (records, seconds); default: every ``train_part_*.json`` in ``out``.
    settings : dict, optional
        Recorded in ``train.json`` (default: from the part files).
    """
    if results is None:
        import glob
        import json
        results = {}
        for path in sorted(glob.glob(f"{out}/train_part_*.json")):
            with open(path) as f:
                part = json.load(f)
            results[part["config"]] = (part["records"], part["seconds"])
            settings = settings or part["settings"]
        order = list(training_configs())
        results = dict(sorted(results.items(), key=lambda kv: (
            order.index(kv[0]) if kv[0] in order else len(order), kv[0])))
    if "float32" not in results:
        raise ValueError("the float32 baseline is missing: nothing to compare with")
    names = list(results)
    curves = [r for n in names for r in results[n][0]]
    final = {}
    for n in names:
        recs = results[n][0]
        last = max(r["epoch"] for r in recs)
        final[n] = {r["seed"]: r for r in recs if r["epoch"] == last}
    seeds = sorted(final["float32"])
    summary = []
    for n in names:
        acc = np.array([final[n][s]["test_acc"] for s in seeds])
        base = np.array([final["float32"][s]["test_acc"] for s in seeds])
        diff = 100 * (acc - base)
        summary.append({
            "config": n, "seeds": len(seeds),
            "acc_mean_pct": 100 * acc.mean(),
            "acc_std_pct": 100 * acc.std(ddof=1) if len(acc) > 1 else 0.0,
            "diff_vs_float32_pp": diff.mean(), "diff_min_pp": diff.min(),
            "diff_max_pp": diff.max(),
            "test_loss_mean": float(np.mean([final[n][s]["test_loss"] for s in seeds])),
            "train_loss_mean": float(np.mean([final[n][s]["train_loss"] for s in seeds])),
            "within_0.5pp": bool(diff.mean() >= -0.5),
            "seconds": results[n][1],
        })
    write_csv(f"{out}/train_curves.csv", curves)
    write_csv(f"{out}/train_summary.csv", summary)
    res = {"summary": summary, "curves": curves, "settings": settings}
    write_json(f"{out}/train.json", res)
    _plot(curves, names, f"{out}/train.png")
    return res


def _plot(curves, names, path):
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for i, n in enumerate(names):
        recs = [r for r in curves if r["config"] == n]
        epochs = sorted({r["epoch"] for r in recs})
        acc = [100 * np.mean([r["test_acc"] for r in recs if r["epoch"] == e]) for e in epochs]
        loss = [np.mean([r["train_loss"] for r in recs if r["epoch"] == e]) for e in epochs]
        kw = {"color": "k", "lw": 2} if n == "float32" else {"color": f"C{i}"}
        ax1.plot(epochs, acc, "o-", label=n, ms=3, **kw)
        ax2.plot(epochs, loss, "o-", label=n, ms=3, **kw)
    from matplotlib.ticker import MaxNLocator
    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("test accuracy % (mean over seeds)")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("training loss (mean over seeds)")
    ax2.set_yscale("log")
    ax1.legend(fontsize=7)
    fig.suptitle("CNN on sklearn digits: BN layers in float32 vs bit-exact golden BN presets")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
