"""A compact, vectorized NumPy CNN for the training study: conv, BN, ReLU, max-pool, linear, softmax.

Everything is channels-last (NHWC), as the BN unit streams activations (docs/bn-spec.md), so a BN
layer sees its input as an ``(m, C)`` matrix with the positions ``(n, h, w)`` in row order and needs
no transpose.  Each layer keeps what its backward pass needs from the last forward pass; gradients of
parameters land in ``layer.grads`` (same keys as ``layer.params``).

The BN layer delegates all normalization arithmetic to a *backend* (:class:`FloatBN` here, the
bit-exact golden model through :class:`lightnorm.study.train.GoldenBN`), so the same network trains
with float32 BN and with every hardware preset.

The layers are checked against central finite differences in float64 by the smoke tests
(study/tests/test_study_smoke.py).
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "Conv2d", "BatchNorm", "FloatBN", "ReLU", "MaxPool2", "Flatten", "Linear",
    "softmax_cross_entropy", "Sequential", "SGD", "build_cnn",
]


class Layer:
    """Base class: a layer with (possibly empty) ``params`` and ``grads`` dictionaries."""

    def __init__(self):
        self.params = {}
        self.grads = {}

    def train(self, mode=True):
        """Switch between training (batch statistics) and evaluation; only BN cares."""
        self.training = mode


class Conv2d(Layer):
    """3x3-style 2-D convolution, stride 1, 'same' zero padding, NHWC.

    Parameters
    ----------
    cin, cout : int
        Input and output channels.
    k : int
        Odd kernel size.
    rng : numpy.random.Generator
        Source of the He-normal initial weights.
    dtype : numpy dtype
        Parameter and activation type (float32 for training, float64 for gradient checks).
    bias : bool
        Conv layers followed by BN carry no bias (BN's beta replaces it).
    """

    def __init__(self, cin, cout, k, rng, dtype=np.float32, bias=False):
        super().__init__()
        if k % 2 != 1:
            raise ValueError(f"k must be odd for 'same' padding, not {k}")
        self.k = k
        std = np.sqrt(2.0 / (k * k * cin))
        self.params["w"] = (rng.standard_normal((k, k, cin, cout)) * std).astype(dtype)
        if bias:
            self.params["b"] = np.zeros(cout, dtype)

    def forward(self, x):
        n, h, w, cin = x.shape
        k, p = self.k, self.k // 2
        xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
        # (n, h, w, cin, k, k) -> rows = output positions, columns = (ki, kj, cin) like the weights
        cols = sliding_window_view(xp, (k, k), axis=(1, 2)).transpose(0, 1, 2, 4, 5, 3)
        self._cols = cols.reshape(n * h * w, k * k * cin)
        self._shape = x.shape
        out = self._cols @ self.params["w"].reshape(k * k * cin, -1)
        if "b" in self.params:
            out += self.params["b"]
        return out.reshape(n, h, w, -1)

    def backward(self, dout):
        n, h, w, cin = self._shape
        k, p = self.k, self.k // 2
        wmat = self.params["w"].reshape(k * k * cin, -1)
        d2 = dout.reshape(n * h * w, -1)
        self.grads["w"] = (self._cols.T @ d2).reshape(self.params["w"].shape)
        if "b" in self.params:
            self.grads["b"] = d2.sum(axis=0)
        dcols = (d2 @ wmat.T).reshape(n, h, w, k, k, cin)
        dxp = np.zeros((n, h + 2 * p, w + 2 * p, cin), dout.dtype)
        for i in range(k):          # col2im: k*k shifted, vectorized accumulations
            for j in range(k):
                dxp[:, i:i + h, j:j + w, :] += dcols[:, :, :, i, j, :]
        return dxp[:, p:p + h, p:p + w, :]


class FloatBN:
    """Standard batch normalization in the network's own floating-point type (the baseline).

    PyTorch ``BatchNorm2d`` training semantics: biased batch variance for the normalization.
    ``forward``/``backward`` work on ``(m, C)`` matrices; the backend keeps what backward needs.

    Parameters
    ----------
    eps : float
        Added to the variance under the square root.
    """

    name = "float"

    def __init__(self, eps=1e-5):
        self.eps = eps

    def forward(self, x, gamma, beta):
        """Return ``(y, mean, sigma)``; ``sigma = sqrt(var + eps)`` is what running stats track."""
        mu = x.mean(axis=0)
        xc = x - mu
        var = (xc * xc).mean(axis=0)
        s = 1 / np.sqrt(var + self.eps)
        xhat = xc * s
        self._cache = (xhat, s, gamma)
        return gamma * xhat + beta, mu, np.sqrt(var + self.eps)

    def backward(self, dy):
        """Return ``(dx, dgamma, dbeta)``."""
        xhat, s, gamma = self._cache
        m = dy.shape[0]
        dbeta = dy.sum(axis=0)
        dgamma = (dy * xhat).sum(axis=0)
        dx = (gamma * s) * (dy - dbeta / m - xhat * dgamma / m)
        return dx, dgamma, dbeta


class BatchNorm(Layer):
    """BN layer over the channel axis of an NHWC tensor, with a pluggable arithmetic backend.

    Parameters
    ----------
    c : int
        Channels.
    backend : object
        Has ``forward(x2d, gamma, beta) -> (y, mean, sigma)`` and ``backward(dy2d) ->
        (dx, dgamma, dbeta)``; ``sigma`` is the backend's scale estimate (``sqrt(var + eps)`` for
        conventional BN, ``sigma_hat + eps`` for range BN), tracked as running statistic.
    dtype : numpy dtype
        Parameter type; backend results are cast to it.
    momentum : float
        Running-statistics momentum (PyTorch convention: new = (1-momentum)*old + momentum*batch).

    Notes
    -----
    Evaluation mode normalizes with the running mean and running sigma in the network's float
    type (inference is folded into ``a*x + b`` on any hardware; the study measures *training*).
    """

    def __init__(self, c, backend, dtype=np.float32, momentum=0.1):
        super().__init__()
        self.backend = backend
        self.momentum = momentum
        self.params["gamma"] = np.ones(c, dtype)
        self.params["beta"] = np.zeros(c, dtype)
        self.running_mean = np.zeros(c, dtype)
        self.running_sigma = np.ones(c, dtype)
        self.training = True

    def forward(self, x):
        x2 = x.reshape(-1, x.shape[-1])
        g, b = self.params["gamma"], self.params["beta"]
        if not self.training:
            a = g / self.running_sigma
            return (x2 * a + (b - self.running_mean * a)).reshape(x.shape)
        return self.finish_forward(x, *self.backend.forward(x2, g, b))

    def finish_forward(self, x, y, mu, sigma):
        """Take the backend's ``(y, mean, sigma)`` for input ``x``: update running statistics,
        return y shaped like x (split out so several networks can share one backend call)."""
        self._shape = x.shape
        dt = x.dtype
        mom = self.momentum
        self.running_mean = ((1 - mom) * self.running_mean + mom * np.asarray(mu)).astype(dt)
        self.running_sigma = ((1 - mom) * self.running_sigma + mom * np.asarray(sigma)).astype(dt)
        return np.asarray(y, dt).reshape(x.shape)

    def backward(self, dout):
        return self.finish_backward(dout, *self.backend.backward(dout.reshape(-1, dout.shape[-1])))

    def finish_backward(self, dout, dx, dgamma, dbeta):
        """Store the backend's parameter gradients; return dx shaped like the input."""
        dt = dout.dtype
        self.grads["gamma"] = np.asarray(dgamma, dt)
        self.grads["beta"] = np.asarray(dbeta, dt)
        return np.asarray(dx, dt).reshape(self._shape)


class ReLU(Layer):
    def forward(self, x):
        self._mask = x > 0
        return x * self._mask

    def backward(self, dout):
        return dout * self._mask


class MaxPool2(Layer):
    """2x2 max pooling, stride 2 (H and W must be even); the gradient goes to the first maximum."""

    def forward(self, x):
        n, h, w, c = x.shape
        if h % 2 or w % 2:
            raise ValueError(f"MaxPool2 needs even H and W, not {h}x{w}")
        win = x.reshape(n, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 5, 2, 4)
        win = win.reshape(n, h // 2, w // 2, c, 4)
        self._arg = win.argmax(axis=-1)
        self._shape = x.shape
        return np.take_along_axis(win, self._arg[..., None], axis=-1)[..., 0]

    def backward(self, dout):
        n, h, w, c = self._shape
        win = np.zeros(dout.shape + (4,), dout.dtype)
        np.put_along_axis(win, self._arg[..., None], dout[..., None], axis=-1)
        win = win.reshape(n, h // 2, w // 2, c, 2, 2).transpose(0, 1, 4, 2, 5, 3)
        return win.reshape(self._shape)


class Flatten(Layer):
    def forward(self, x):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        return dout.reshape(self._shape)


class Linear(Layer):
    """Fully connected layer ``x @ w + b`` (He-normal init)."""

    def __init__(self, din, dout, rng, dtype=np.float32):
        super().__init__()
        self.params["w"] = (rng.standard_normal((din, dout)) * np.sqrt(2.0 / din)).astype(dtype)
        self.params["b"] = np.zeros(dout, dtype)

    def forward(self, x):
        self._x = x
        return x @ self.params["w"] + self.params["b"]

    def backward(self, dout):
        self.grads["w"] = self._x.T @ dout
        self.grads["b"] = dout.sum(axis=0)
        return dout @ self.params["w"].T


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy loss and its gradient with respect to ``logits``.

    Returns
    -------
    loss : float
    dlogits : ndarray, same shape and type as ``logits``
    """
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    n = logits.shape[0]
    loss = -logp[np.arange(n), labels].mean()
    d = np.exp(logp)
    d[np.arange(n), labels] -= 1
    return float(loss), (d / n).astype(logits.dtype)


class Sequential:
    """A plain stack of layers."""

    def __init__(self, layers):
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout):
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def train(self, mode=True):
        for layer in self.layers:
            layer.train(mode)

    def parameters(self):
        """Yield ``(layer, name)`` for every parameter."""
        for layer in self.layers:
            for name in layer.params:
                yield layer, name


class SGD:
    """SGD with heavy-ball momentum and optional L2 weight decay on conv and linear weights.

    Parameters
    ----------
    model : Sequential
    lr, momentum, weight_decay : float
    """

    def __init__(self, model, lr=0.05, momentum=0.9, weight_decay=0.0):
        self.model, self.lr, self.momentum, self.wd = model, lr, momentum, weight_decay
        self.v = {(id(l), n): np.zeros_like(l.params[n]) for l, n in model.parameters()}

    def step(self):
        for layer, name in self.model.parameters():
            g = layer.grads[name]
            if self.wd and name == "w":
                g = g + self.wd * layer.params[name]
            v = self.v[id(layer), name]
            v *= self.momentum
            v += g
            layer.params[name] -= self.lr * v


def build_cnn(backend_factory, rng, widths=(8, 16), dtype=np.float32, image=8, classes=10):
    """The study's CNN: ``[conv3x3 - maxpool2 - BN - ReLU] x len(widths) - linear``.

    BN sits after the pooling so that it sees a quarter of the positions: the bit-exact golden
    model accumulates position by position (as the hardware streams), and its cost grows with
    the positions per channel m, not with the channel count.  Max-pooling commutes with the
    per-channel monotone ReLU, and BN normalizes the pooled features as well as the raw ones.

    Parameters
    ----------
    backend_factory : callable
        ``backend_factory()`` returns a fresh BN backend for each BN layer.
    rng : numpy.random.Generator
        Initial weights.
    widths : tuple of int
        Channels of the conv blocks; each block halves H and W.
    image : int
        Input height = width (1 input channel); must stay even through every block.
    """
    layers, cin, size = [], 1, image
    for c in widths:
        layers += [Conv2d(cin, c, 3, rng, dtype), MaxPool2(),
                   BatchNorm(c, backend_factory(), dtype), ReLU()]
        cin, size = c, size // 2
    layers += [Flatten(), Linear(cin * size * size, classes, rng, dtype)]
    return Sequential(layers)
