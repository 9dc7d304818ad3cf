"""Compiled fast path for the golden BN model's sequential loops (optional, needs numba).

The BN model (:mod:`lightnorm.golden.bn`) accumulates sums position by position and tracks
chunk extrema position by position, exactly as the hardware streams them.  Written with the
vectorized operators of :mod:`lightnorm.golden.fp`, each position costs one NumPy call chain of
~1.5 ms on a handful of channels, which makes training studies hours long.  This module runs the
same loops in compiled scalar code:

* :func:`seq_add` -- ``acc = fp.add(fmt, acc, terms[p])`` for ``p = 0 .. m-1`` from ``+0``, per
  column, in the same order;
* :func:`chunk_extrema` -- the per-chunk running ``fp.max``/``fp.min``;
* :func:`add`, :func:`max`, :func:`min` -- elementwise scalar kernels, exposed for the
  equivalence tests.

The scalar kernels transcribe :func:`lightnorm.golden.fp.add`, ``round_pack``, ``round_shift``,
``unpack`` and ``_minmax`` step by step (same alignment width, same sticky convention, same
special-case overrides), so the results are the same bits; golden/tests/test_fastfp.py checks
them exhaustively on small formats and on random and corner operands of every preset format,
and the BN model with and without this path on every preset.  fp.py stays the definition.

``AVAILABLE`` is False when numba is not installed; :mod:`~lightnorm.golden.bn` then uses its
NumPy loops.  Setting the environment variable ``LIGHTNORM_GOLDEN_FAST=0`` disables the fast
path too.
"""

import os

import numpy as np

from .formats import FloatFormat

__all__ = ["AVAILABLE", "enabled", "seq_add", "chunk_extrema", "add", "max", "min"]

try:
    import numba
except ImportError:          # the NumPy loops of bn.py remain the (slow) path
    numba = None

AVAILABLE = numba is not None


def enabled():
    """True if the compiled path is available and not disabled by ``LIGHTNORM_GOLDEN_FAST=0``."""
    return AVAILABLE and os.environ.get("LIGHTNORM_GOLDEN_FAST", "1") != "0"


def _fmt_args(fmt):
    if not isinstance(fmt, FloatFormat):
        raise TypeError(f"fmt must be a FloatFormat, not {fmt!r}")
    return fmt.exp_bits, fmt.man_bits, fmt.rounding == "rne", fmt.subnormals


def _as_bits(fmt, x, name):
    """Validate bit patterns of ``fmt`` (like fp._bits) and return a C-contiguous int64 array."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "ui":
        raise TypeError(f"{name} must be an integer array of {fmt.name} bit patterns, "
                        f"not dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= (1 << fmt.width)):
        raise ValueError(f"{name} holds values outside the {fmt.width}-bit {fmt.name} patterns")
    return np.ascontiguousarray(arr, dtype=np.int64)


if AVAILABLE:
    _jit = numba.njit(cache=True, nogil=True)

    # Operand classes, as in fp.py.
    _ZERO, _SUB, _NORMAL, _INF, _NAN = 0, 1, 2, 3, 4

    @_jit
    def _classify(E, M, sub, b):
        ea = (1 << E) - 1
        e = (b >> M) & ea
        m = b & ((1 << M) - 1)
        if e == 0:
            if m == 0:
                return _ZERO
            return _SUB if sub else _ZERO
        if e == ea:
            return _INF if m == 0 else _NAN
        return _NORMAL

    @_jit
    def _round_pack(E, M, rne, sub, sign, exp, sig, sticky):
        """fp.round_pack for one element (sig >= 0, sign 0/1)."""
        bias = (1 << (E - 1)) - 1
        emin = 1 - bias
        width = 1 + E + M
        pos_inf = ((1 << E) - 1) << M
        max_finite = pos_inf - 1
        n = 0
        t = sig
        while t > 0:
            t >>= 1
            n += 1
        if n == 0:
            er = emin
        else:
            er = exp + n - 1
            if er < emin:
                er = emin
        s = er - M - exp
        if sticky and s <= 0:
            raise ValueError("round_pack: sticky is set but sig has no bit below the result's LSB")
        # fp.round_shift
        if s <= 0:
            left = -s
            if left > 63:
                left = 63
            mag = sig << left
        else:
            sr = s if s < 63 else 63
            mag = sig >> sr
            if rne:
                guard = (sig >> (sr - 1)) & 1
                rest = ((sig & ((np.int64(1) << (sr - 1)) - 1)) != 0) or sticky
                if guard == 1 and (rest or (mag & 1) == 1):
                    mag += 1
        enc = ((er - emin) << M) + mag
        if enc >= pos_inf:
            enc = pos_inf if rne else max_finite
        if not sub and (enc >> M) == 0:
            enc = 0
        return enc | (sign << (width - 1))

    @_jit
    def _add1(E, M, rne, sub, a, b):
        """fp.add for one pair of bit patterns (int64)."""
        bias = (1 << (E - 1)) - 1
        emin = 1 - bias
        width = 1 + E + M
        prec = M + 1
        pos_inf = ((1 << E) - 1) << M
        cnan = pos_inf | (1 << (M - 1))
        ca = _classify(E, M, sub, a)
        cb = _classify(E, M, sub, b)
        sa = (a >> (width - 1)) & 1
        sb = (b >> (width - 1)) & 1
        # fp.unpack
        fa = (a >> M) & ((1 << E) - 1)
        fb = (b >> M) & ((1 << E) - 1)
        ma = a & ((1 << M) - 1)
        mb = b & ((1 << M) - 1)
        ea = (fa if fa > 1 else 1) - bias - M
        eb = (fb if fb > 1 else 1) - bias - M
        if fa != 0:
            ma |= 1 << M
        if fb != 0:
            mb |= 1 << M
        if ca == _ZERO:
            ma = 0
        if cb == _ZERO:
            mb = 0
        if ca >= _INF:
            ma = a & ((1 << M) - 1)
            ea = 0
        if cb >= _INF:
            mb = b & ((1 << M) - 1)
            eb = 0
        # fp.add
        if ca >= _INF or cb >= _INF:
            ma = 0
            mb = 0
        key_a = ((ea - (emin - M)) << (prec + 1)) + ma
        key_b = ((eb - (emin - M)) << (prec + 1)) + mb
        if key_b > key_a:
            sx, ex, mx, sy, ey, my = sb, eb, mb, sa, ea, ma
        else:
            sx, ex, mx, sy, ey, my = sa, ea, ma, sb, eb, mb
        g = 3                                   # fp._ADD_EXTRA_BITS
        d = ex - ey
        if d < 0:
            d = 0
        if d > prec + g + 1:
            d = prec + g + 1
        X = mx << g
        Yfull = my << g
        Y = Yfull >> d
        st = (Yfull & ((np.int64(1) << d) - 1)) != 0
        if (sx ^ sy) == 1:
            sig = X - Y - (1 if st else 0)
        else:
            sig = X + Y
        if sig == 0 and not st:
            sign = sa & sb
        else:
            sign = sx
        res = _round_pack(E, M, rne, sub, sign, ex - g, sig, st)
        if ca == _INF or cb == _INF:
            inf_sign = sa if ca == _INF else sb
            res = pos_inf | (inf_sign << (width - 1))
        if ca == _NAN or cb == _NAN or (ca == _INF and cb == _INF and sa != sb):
            res = cnan
        return res

    @_jit
    def _minmax1(E, M, sub, a, b, want_max):
        """fp._minmax for one pair of bit patterns (int64)."""
        width = 1 + E + M
        sign_mask = np.int64(1) << (width - 1)
        mag_mask = sign_mask - 1
        cnan = (((1 << E) - 1) << M) | (1 << (M - 1))
        ca = _classify(E, M, sub, a)
        cb = _classify(E, M, sub, b)
        if ca == _ZERO:
            a = a & sign_mask
        if cb == _ZERO:
            b = b & sign_mask
        ka = -(a & mag_mask) - 1 if (a & sign_mask) != 0 else a & mag_mask
        kb = -(b & mag_mask) - 1 if (b & sign_mask) != 0 else b & mag_mask
        pick_a = ka >= kb if want_max else ka <= kb
        res = a if pick_a else b
        if ca == _NAN:
            res = b
        if cb == _NAN:
            res = a
        if ca == _NAN and cb == _NAN:
            res = cnan
        return res

    @_jit
    def _add_arrays(E, M, rne, sub, a, b, out):
        for i in range(a.size):
            out[i] = _add1(E, M, rne, sub, a[i], b[i])

    @_jit
    def _minmax_arrays(E, M, sub, a, b, out, want_max):
        for i in range(a.size):
            out[i] = _minmax1(E, M, sub, a[i], b[i], want_max)

    @_jit
    def _seq_add_kernel(E, M, rne, sub, terms, acc):
        # Column by column; within a column the positions in stream order, as the hardware.
        for c in range(terms.shape[1]):
            s = np.int64(0)
            for p in range(terms.shape[0]):
                s = _add1(E, M, rne, sub, s, terms[p, c])
            acc[c] = s

    @_jit
    def _extrema_kernel(E, M, sub, x, starts, lengths, mx, mn):
        for j in range(starts.size):
            p0 = starts[j]
            for c in range(x.shape[1]):
                first = x[p0, c]
                cmx = _minmax1(E, M, sub, first, first, True)
                cmn = _minmax1(E, M, sub, first, first, False)
                for t in range(1, lengths[j]):
                    v = x[p0 + t, c]
                    cmx = _minmax1(E, M, sub, cmx, v, True)
                    cmn = _minmax1(E, M, sub, cmn, v, False)
                mx[j, c] = cmx
                mn[j, c] = cmn


def _require():
    if not AVAILABLE:
        raise RuntimeError("lightnorm.golden.fastfp needs numba (pip install numba)")


def _elementwise(fmt, a, b, run):
    """Broadcast ``a`` and ``b`` (bit patterns of ``fmt``), call ``run(a, b, out)`` on flat int64
    arrays and return ``out`` in their shape and ``fmt``'s dtype."""
    _require()
    a, b = np.broadcast_arrays(_as_bits(fmt, a, "a"), _as_bits(fmt, b, "b"))
    shape = a.shape
    a, b = np.ascontiguousarray(a).ravel(), np.ascontiguousarray(b).ravel()
    out = np.empty(a.size, dtype=np.int64)
    run(a, b, out)
    return out.reshape(shape).astype(fmt.dtype)


def add(fmt, a, b):
    """Elementwise ``fp.add(fmt, a, b)`` through the scalar kernel (for the equivalence tests)."""
    E, M, rne, sub = _fmt_args(fmt)
    return _elementwise(fmt, a, b, lambda a, b, out: _add_arrays(E, M, rne, sub, a, b, out))


def _minmax(fmt, a, b, want_max):
    E, M, _, sub = _fmt_args(fmt)
    return _elementwise(fmt, a, b,
                        lambda a, b, out: _minmax_arrays(E, M, sub, a, b, out, want_max))


def max(fmt, a, b):  # noqa: A001 - mirrors fp.max
    """Elementwise ``fp.max(fmt, a, b)`` through the scalar kernel."""
    return _minmax(fmt, a, b, True)


def min(fmt, a, b):  # noqa: A001 - mirrors fp.min
    """Elementwise ``fp.min(fmt, a, b)`` through the scalar kernel."""
    return _minmax(fmt, a, b, False)


def seq_add(fmt, terms):
    """Sequential sum over axis 0 from +0, per element of the other axes, in ``fmt``.

    Parameters
    ----------
    fmt : FloatFormat
    terms : integer array, shape (m, ...)
        Bit patterns of ``fmt``.

    Returns
    -------
    ndarray of ``fmt.dtype``, shape ``terms.shape[1:]``
        The same bits as ``acc = fp.add(fmt, acc, terms[p])`` for ``p = 0 .. m-1``.
    """
    _require()
    E, M, rne, sub = _fmt_args(fmt)
    t = _as_bits(fmt, terms, "terms")
    if t.ndim < 1:
        raise ValueError("terms must have at least one axis (the positions)")
    rest = t.shape[1:]
    t2 = np.ascontiguousarray(t.reshape(t.shape[0], -1))
    acc = np.empty(t2.shape[1], dtype=np.int64)
    _seq_add_kernel(E, M, rne, sub, t2, acc)
    return acc.reshape(rest).astype(fmt.dtype)


def chunk_extrema(fmt, x, starts, lengths):
    """Per-chunk running max/min of ``x`` (m, Cp).

    Parameters
    ----------
    fmt : FloatFormat
        Format of the words ``x``.
    x : integer array, shape (m, Cp)
    starts, lengths : int arrays, shape (K,)
        Chunk layout (:func:`lightnorm.golden.bn.chunk_layout`); every length >= 1.

    Returns
    -------
    mx, mn : ndarray of ``fmt.dtype``, shape (K, Cp)
        What the NumPy loop ``bn._chunk_extrema_loop`` returns, bit for bit.
    """
    _require()
    E, M, _, sub = _fmt_args(fmt)
    xb = _as_bits(fmt, x, "x")
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    lengths = np.ascontiguousarray(lengths, dtype=np.int64)
    if lengths.min() < 1 or (starts + lengths).max() > xb.shape[0]:
        raise ValueError("chunks must be non-empty and lie inside x")
    k, cp = starts.size, xb.shape[1]
    mx = np.empty((k, cp), np.int64)
    mn = np.empty((k, cp), np.int64)
    _extrema_kernel(E, M, sub, xb, starts, lengths, mx, mn)
    return mx.astype(fmt.dtype), mn.astype(fmt.dtype)
