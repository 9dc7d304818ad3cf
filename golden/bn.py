"""Bit-exact golden model of the BN unit: forward, backward and inference, per docs/bn-spec.md.

Every arithmetic step is one call of :mod:`lightnorm.golden.fp` (or :mod:`lightnorm.golden.bfp`
for the stream codecs) in the format the spec's precision policy names (op formats P / PB per
element, accumulator formats A / AB per channel, constants rounded into C / CB); sums are
sequential loops over positions, exactly as the hardware streams them, in the wide sum format
W / WB and rounded once into the accumulator format (docs/bn-spec.md, "Sums").  The RTL in ``rtl/bn/``
must reproduce these bits.

Two levels of API:

* stream level (``forward_stream``, ``backward_stream``, ``inference_stream``): bit patterns in,
  bit patterns out, shape ``(m, Cp)`` (positions in (n, h, w) stream order, channels padded to a
  multiple of G).  This is what the hardware sees, and what a testbench can drive with arbitrary
  bit patterns (NaN, Inf, subnormals).
* layer level (``forward``, ``backward``, ``inference``): NCHW float64 arrays in, a result object
  out with the stream beats a testbench sends and expects (command, data-in, data-out, result
  streams, docs/bn-spec.md section 7) and float64 views of every output.  Every per-channel
  argument (gamma, beta; inference a, b) is float64 and rounded once here into the command's
  format, as the host would; the command words themselves are in the result objects
  (``*_bits``, ``inputs``).  :func:`inference_constants` is the host's recipe for a, b.

Modes are named by the strings of :data:`MODES` everywhere in this API; the integer next to each
name is the 2-bit ``mode`` code of the command header (and of ``rtl/bn/control.py``'s
``MODE_FWD/MODE_BWD/MODE_INFER``).  The lane words of a command are named per mode
(:data:`LANE_WORDS`): every result object's ``inputs`` holds exactly the keywords
:func:`command_beats` takes, e.g. ``command_beats(cfg, "backward", m, **bwd.inputs)``.

``op_counts`` counts the operations the model actually executes, per pass and per format, for
the energy model.
"""

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from . import bfp, fastfp, fp
from .bnconfig import BNConfig
from .formats import FloatFormat

__all__ = [
    "MODES", "LANE_WORDS", "ERRORS", "ERROR_CODE_BITS", "check_m", "command_error",
    "command_data_beats", "header_beat", "error_width", "error_beat", "parse_error_beat",
    "chunk_layout", "range_constant", "host_constants",
    "layer_to_stream", "stream_to_layer", "pad_channels", "encode_tensor", "tensor_beats",
    "decode_output", "forward_stream", "backward_stream", "inference_stream",
    "ForwardResult", "BackwardResult", "InferenceResult", "forward", "backward", "inference",
    "backward_inputs", "inference_constants", "command_beats", "din_beats", "result_beats",
    "parse_result_beat", "parse_command_beat", "unpack_words", "op_counts",
]

#: Mode names (the vocabulary of every function here) -> the command header's 2-bit ``mode``
#: code (docs/bn-spec.md section 7; ``rtl/bn/control.py`` MODE_FWD, MODE_BWD, MODE_INFER).
MODES = {"forward": 0, "backward": 1, "inference": 2}

#: Lane words of a command per mode, in slot order (``p0``, ``p1``, ``p2`` of the lane beat,
#: docs/bn-spec.md section 7; an unused slot is sent as 0).  These are the keyword names of
#: :func:`command_beats` and the keys of ``ForwardResult.inputs``, ``BackwardResult.inputs``
#: and ``InferenceResult.inputs``.
LANE_WORDS = {"forward": ("gamma", "beta"), "backward": ("gamma", "mu", "s"),
              "inference": ("a", "b")}


def _check_mode(mode):
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(map(repr, MODES))}, not {mode!r}")
    return mode


#: Codes of the ``err`` stream (docs/interface.md, "Refused commands"): why the unit refused a
#: command header.  One code per refused command, the first rule it breaks in this order.
ERRORS = {
    "mode": 1,          # mode field 3: not forward, backward or inference
    "m_zero": 2,        # m = 0
    "m_max": 3,         # m > max_m (the m field is max_m.bit_length() bits wide)
    "m_chunks": 4,      # range BN, training mode: m < 2*K
    "chunks_qr": 5,     # range BN, training mode: (q, r) != divmod(m, K)
}
#: Width of the ``code`` field of an ``err`` beat.
ERROR_CODE_BITS = 3

# Exact float64 views of BFP outputs: BFP values have <= 24 significant bits and 8-bit shared
# exponents; FP32 with subnormals holds all of them for the presets (decode is then exact).
_VIEW_FMT = FloatFormat(8, 23)


# -- counting executor ----------------------------------------------------------------------------
class _Ops:
    """Calls the golden fp functions and counts executed element operations per phase."""

    def __init__(self):
        self.counts = Counter()
        self.phase = "setup"

    def __call__(self, op, fmt, *args, n=None):
        out = getattr(fp, op)(fmt, *args)
        self.counts[(self.phase, op, fmt.name)] += int(np.size(out) if n is None else n)
        return out

    def cv(self, src, bits, dst, n=None):
        """``fp.convert``; counted only when the formats differ (equal formats: a no-op)."""
        if src == dst:
            return np.asarray(bits).astype(dst.dtype)
        out = fp.convert(src, bits, dst)
        self.counts[(self.phase, "convert", f"{src.name}->{dst.name}")] += int(
            np.size(out) if n is None else n)
        return out

    def count(self, op, name, n):
        self.counts[(self.phase, op, name)] += int(n)


# -- host-side rules ----------------------------------------------------------------------------
def check_m(cfg, m, mode="forward"):
    """Validate the positions per channel ``m`` for ``cfg`` and ``mode`` (bn-spec section 3).

    Every mode needs ``1 <= m <= max_m``; training range BN also ``m >= 2*K``.  These are the
    m rules of :func:`command_error`, by which the unit refuses a header.
    """
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)):
        raise ValueError(f"m must be an integer, not {m!r}")
    m = int(m)
    if not 1 <= m <= cfg.max_m:
        raise ValueError(f"m must be between 1 and max_m ({cfg.max_m}), not {m}")
    if cfg.algorithm == "range" and mode != "inference" and m < 2 * cfg.chunks:
        raise ValueError(f"m must be at least 2*chunks ({2 * cfg.chunks}) for range BN, not {m}")
    return m


def _uses_chunks(cfg, mode):
    """True when a command of ``mode`` (field value) uses the chunk layout q, r."""
    return cfg.algorithm == "range" and mode in (MODES["forward"], MODES["backward"])


def command_error(cfg, mode, m, q=0, r=0):
    """Why the unit refuses a command header, or None if it executes it (docs/interface.md).

    The hardware applies these rules to the header fields before any pass starts and reports a
    refusal as one ``err`` beat (:func:`error_beat`); this function is its golden model.  The
    first rule broken, in this order, gives the code (:data:`ERRORS`):

    1. ``mode`` is not 0, 1 or 2 (``"mode"``);
    2. ``m = 0`` (``"m_zero"``);
    3. ``m > max_m`` (``"m_max"``);
    4. range BN, forward or backward: ``m < 2*K`` (``"m_chunks"``);
    5. range BN, forward or backward: ``(q, r) != divmod(m, K)`` (``"chunks_qr"``).

    Fields a mode does not use (q and r of inference and conventional BN, the constants) are
    not checked.  A header :func:`command_beats` builds is never refused; every m that
    :func:`check_m` rejects for a mode is refused.

    Parameters
    ----------
    cfg : BNConfig
    mode : int or str
        The header's mode field (0..3) or a name of :data:`MODES`.
    m, q, r : int
        The header's m, q and r fields (they must fit their field widths).

    Returns
    -------
    int or None
        A value of :data:`ERRORS`, or None.
    """
    if isinstance(mode, str):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {tuple(MODES)} or 0..3, not {mode!r}")
        mode = MODES[mode]
    for name, value, width in (("mode", mode, 2), ("m", m, cfg.m_bits), ("q", q, cfg.m_bits),
                               ("r", r, cfg.r_bits)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not (
                0 <= value < 1 << width):
            raise ValueError(f"{name} must be an integer of {width} bits (the header field), "
                             f"not {value!r}")
    if mode not in MODES.values():
        return ERRORS["mode"]
    if m == 0:
        return ERRORS["m_zero"]
    if m > cfg.max_m:
        return ERRORS["m_max"]
    if _uses_chunks(cfg, mode):
        if m < 2 * cfg.chunks:
            return ERRORS["m_chunks"]
        if (q, r) != divmod(m, cfg.chunks):
            return ERRORS["chunks_qr"]
    return None


def command_data_beats(cfg, mode, m):
    """Data-in beats the unit takes for a header with these fields, executed or refused.

    ``passes * m``: forward 2 (range) or 3 (conventional), backward 2, inference 1; 0 for an
    unknown mode (3).  A refused command consumes and drops this many ``din`` beats
    (docs/interface.md, "Refused commands").
    """
    if isinstance(mode, str):
        mode = MODES[mode]
    passes = {MODES["forward"]: cfg.forward_passes, MODES["backward"]: 2,
              MODES["inference"]: 1}.get(int(mode), 0)
    return passes * int(m)


def header_beat(cfg, mode, m, q=0, r=0, inv_m=0, ck=0, eps=0):
    """One command header payload from raw field values (no validation of their meaning).

    :func:`command_beats` builds headers the unit executes; this packs any field values (e.g.
    a header the unit must refuse, for a test).  Every value must fit its field.
    """
    if isinstance(mode, str):
        mode = MODES[mode]
    cw, mb = cfg.const_width, cfg.m_bits
    fields = (("mode", mode, 2), ("m", m, mb), ("q", q, mb), ("r", r, cfg.r_bits),
              ("inv_m", inv_m, cw), ("ck", ck, cw), ("eps", eps, cw))
    for name, value, width in fields:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not (
                0 <= value < 1 << width):
            raise ValueError(f"{name} must be an integer of {width} bits (the header field), "
                             f"not {value!r}")
    return _fields([(v, w) for _, v, w in fields])


def error_width(cfg):
    """Width of the ``err`` stream payload: ``code[3] | mode[2] | m[MB]``."""
    return ERROR_CODE_BITS + 2 + cfg.m_bits


def error_beat(cfg, code, mode, m):
    """The ``err`` payload the unit sends for a refused header: ``code | mode << 3 | m << 5``
    (mode and m: the refused header's fields, to tell the host which command it was)."""
    if isinstance(mode, str):
        mode = MODES[mode]
    return _fields([(code, ERROR_CODE_BITS), (mode, 2), (m, cfg.m_bits)])


def parse_error_beat(cfg, beat):
    """Decode one ``err`` payload into ``{"code", "mode", "m"}``."""
    return dict(zip(("code", "mode", "m"), _unfields(beat, (ERROR_CODE_BITS, 2, cfg.m_bits))))


def chunk_layout(cfg, m):
    """Chunk starts and lengths: ``q = m // K``, the first ``m % K`` chunks one longer.

    Returns
    -------
    starts, lengths : ndarray of int64, shape (K,)
    """
    q, r = divmod(int(m), cfg.chunks)
    lengths = np.array([q + 1 if j < r else q for j in range(cfg.chunks)], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return starts, lengths


def range_constant(m, chunks):
    """Range-BN constant ``1 / sqrt(2 ln(m / K))`` (float64)."""
    return 1.0 / math.sqrt(2.0 * math.log(m / chunks))


def host_constants(cfg, m, mode):
    """Command-header constants the host precomputes for one layer.

    Parameters
    ----------
    cfg : BNConfig
    m : int
        Positions per channel (N*H*W).
    mode : str
        ``"forward"``, ``"backward"`` or ``"inference"``.

    Returns
    -------
    dict
        ``q, r`` (chunk length / remainder, 0 for conventional), ``inv_m``, ``ck``, ``eps``
        as Python ints (bit patterns of the mode's accumulator format; 0 where unused).
    """
    _check_mode(mode)
    m = check_m(cfg, m, mode)
    acc = cfg.bwd_acc_fmt if mode == "backward" else cfg.fwd_acc_fmt
    out = {"q": 0, "r": 0, "inv_m": 0, "ck": 0, "eps": 0}
    if mode == "inference":
        return out
    if cfg.algorithm == "range":
        out["q"], out["r"] = divmod(m, cfg.chunks)
    out["inv_m"] = int(fp.encode(acc, 1.0 / m))
    if cfg.algorithm == "range" and (mode == "forward" or cfg.grad == "range"):
        out["ck"] = int(fp.encode(acc, range_constant(m, cfg.chunks) / cfg.chunks))
    if mode == "forward":
        out["eps"] = int(fp.encode(acc, cfg.eps))
    return out


# -- layout and stream codecs --------------------------------------------------------------------
def layer_to_stream(x):
    """NCHW array -> (m, C) in stream order (positions in n, h, w order)."""
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"x must be NCHW (4 dimensions), not shape {x.shape}")
    n, c, h, w = x.shape
    return x.transpose(0, 2, 3, 1).reshape(n * h * w, c)


def stream_to_layer(s, shape):
    """(m, >=C) stream-order array -> NCHW of ``shape`` (padding channels dropped)."""
    n, c, h, w = shape
    return np.asarray(s)[:, :c].reshape(n, h, w, c).transpose(0, 3, 1, 2)


def pad_channels(cfg, a, value=0.0):
    """Pad the last axis (channels) to a multiple of ``cfg.lanes`` with ``value``."""
    a = np.asarray(a)
    c = a.shape[-1]
    cp = -(-c // cfg.lanes) * cfg.lanes
    if cp == c:
        return a
    pad = [(0, 0)] * (a.ndim - 1) + [(0, cp - c)]
    return np.pad(a, pad, constant_values=value)


def _tensor_fmts(cfg, name):
    bfmt = getattr(cfg, f"{name}_bfp")
    fmt = cfg.fwd_fmt if name in ("x", "y") else cfg.bwd_fmt
    return bfmt, fmt


def _pack_words(fmt, words, lanes):
    """(..., Cp) words -> (ngroups, ...) object array of Python ints (lane 0 in the low bits)."""
    w = np.asarray(words).astype(np.int64)
    lead = w.shape[:-1]
    g = w.reshape(lead + (-1, lanes)).astype(object)          # (..., ng, G)
    shifts = np.array([lane * fmt.width for lane in range(lanes)], dtype=object)
    packed = (g << shifts).sum(axis=-1)                        # (..., ng)
    return np.moveaxis(packed, -1, 0)


def unpack_words(fmt, beats, lanes):
    """Inverse of the plain-word packing: Python ints -> (..., G) array of ``fmt.dtype``."""
    b = np.asarray(beats, dtype=object)
    mask = (1 << fmt.width) - 1
    out = np.empty(b.shape + (lanes,), dtype=fmt.dtype)
    for lane in range(lanes):
        out[..., lane] = np.vectorize(lambda v, s=lane * fmt.width: (int(v) >> s) & mask,
                                      otypes=[np.int64])(b)
    return out


def encode_tensor(cfg, name, bits):
    """What the host sends for tensor ``name`` (``"x"`` or ``"dy"``) and what the unit decodes.

    Parameters
    ----------
    cfg : BNConfig
    name : str
        ``"x"`` (words of ``fwd_fmt``) or ``"dy"`` (words of ``bwd_fmt``).
    bits : array, shape (m, Cp)
        Element bit patterns (already padded), in the element format.

    Returns
    -------
    decoded : ndarray, shape (m, Cp)
        The element values the lanes see: BFP-encoded then decoded into the element format
        (``bfp.decode``), or ``bits`` itself for plain FP words.
    beats : ndarray of object, shape (ngroups, m)
        Packed stream payloads (Python ints) per channel group and position.
    """
    bfmt, fmt = _tensor_fmts(cfg, name)
    bits = np.asarray(bits).astype(fmt.dtype)
    m, cp = bits.shape
    ng = cp // cfg.lanes
    if bfmt is None:
        return bits, _pack_words(fmt, bits, cfg.lanes)
    grouped = bits.reshape(m, ng, cfg.lanes)
    shared, elems = bfp.encode(bfmt, fmt, grouped)
    decoded = bfp.decode(bfmt, shared, elems, fmt).reshape(m, cp)
    beats = np.asarray(bfp.pack(bfmt, shared, elems), dtype=object).reshape(m, ng).T
    return decoded, beats


def tensor_beats(cfg, name, acc_bits, acc_fmt, ops=None):
    """Round an output tensor (``"y"`` or ``"dx"``) once from its accumulator format.

    Returns
    -------
    beats : ndarray of object, shape (ngroups, m)
    view : ndarray of float64, shape (m, Cp)
        Exact values of what was sent.
    """
    ops = ops or _Ops()
    bfmt, fmt = _tensor_fmts(cfg, name)
    acc_bits = np.asarray(acc_bits)
    m, cp = acc_bits.shape
    ng = cp // cfg.lanes
    if bfmt is None:
        words = ops.cv(acc_fmt, acc_bits, fmt)
        return _pack_words(fmt, words, cfg.lanes), fp.decode(fmt, words)
    shared, elems = bfp.encode(bfmt, acc_fmt, acc_bits.reshape(m, ng, cfg.lanes))
    ops.count("bfp_encode", f"{acc_fmt.name}->{bfmt.name}", acc_bits.size)
    view = fp.decode(_VIEW_FMT, bfp.decode(bfmt, shared, elems, _VIEW_FMT)).reshape(m, cp)
    beats = np.asarray(bfp.pack(bfmt, shared, elems), dtype=object).reshape(m, ng).T
    return beats, view


def decode_output(cfg, name, beats):
    """Data-out beats (ngroups, m) of tensor ``name`` -> float64 (m, Cp) (exact values)."""
    bfmt, fmt = _tensor_fmts(cfg, name)
    beats = np.asarray(beats, dtype=object)
    ng, m = beats.shape
    if bfmt is None:
        words = unpack_words(fmt, beats.T, cfg.lanes)            # (m, ng, G)
        return fp.decode(fmt, words).reshape(m, ng * cfg.lanes)
    shared, elems = bfp.unpack(bfmt, beats.T)
    return fp.decode(_VIEW_FMT, bfp.decode(bfmt, shared, elems, _VIEW_FMT)).reshape(
        m, ng * cfg.lanes)


# -- the model at stream level ---------------------------------------------------------------
def _seq_accumulate(ops, fmt, terms):
    """Sequential sum over axis 0 from +0: ``acc = add(acc, terms[p])`` in stream order.

    With numba installed the loop runs compiled (:func:`lightnorm.golden.fastfp.seq_add`, the
    same bits, counted as the same m element additions); otherwise :func:`_seq_accumulate_loop`.
    """
    if fastfp.enabled():
        acc = fastfp.seq_add(fmt, terms)
        ops.count("add", fmt.name, terms.size)
        return acc
    return _seq_accumulate_loop(ops, fmt, terms)


def _seq_accumulate_loop(ops, fmt, terms):
    """:func:`_seq_accumulate` with one vectorized ``fp.add`` per position (the definition)."""
    acc = np.zeros(terms.shape[1:], dtype=fmt.dtype)
    for p in range(terms.shape[0]):
        acc = ops("add", fmt, acc, terms[p])
    return acc


def _chunk_extrema(ops, cfg, x, starts, lengths):
    """Per-chunk max/min ``MX, MN`` (K, Cp) of the F words ``x`` (m, Cp) (bn-spec section 4).

    Compiled (:func:`lightnorm.golden.fastfp.chunk_extrema`) when numba is installed, else
    :func:`_chunk_extrema_loop`; the same bits, the same operation counts.
    """
    if fastfp.enabled():
        F = cfg.fwd_fmt
        mx, mn = fastfp.chunk_extrema(F, x, starts, lengths)
        ops.count("max", F.name, x.size)
        ops.count("min", F.name, x.size)
        return mx, mn
    return _chunk_extrema_loop(ops, cfg, x, starts, lengths)


def _chunk_extrema_loop(ops, cfg, x, starts, lengths):
    """:func:`_chunk_extrema` with one vectorized ``fp.max``/``fp.min`` per position.

    The chunks advance in lock step (they are independent, so this is the hardware's sequence
    per chunk): at the chunk's first position the comparator sees ``max(x, x)`` (the word
    itself, subnormals flushed for FTZ formats, NaN canonical); afterwards ``max(cur, x)``.
    """
    F = cfg.fwd_fmt
    first = x[starts]                                           # (K, Cp)
    mx = ops("max", F, first, first)
    mn = ops("min", F, first, first)
    for t in range(1, int(lengths.max())):
        active = (t < lengths)[:, None]
        idx = np.minimum(starts + t, x.shape[0] - 1)
        cand = x[idx]
        n = int(active.sum()) * x.shape[1]
        mx = np.where(active, ops("max", F, mx, cand, n=n), mx).astype(F.dtype)
        mn = np.where(active, ops("min", F, mn, cand, n=n), mn).astype(F.dtype)
    return mx, mn


def _extremum_flags(cfg, x, mx, mn, starts, lengths):
    """Backward pass 2 of grad "range": ``ismax, ismin`` (m, Cp) from re-detected extrema.

    In chunk j the flag is set at the FIRST position whose word, as the trackers compared it
    (``fp.max(F, x, x)``: FTZ subnormals flushed, NaN canonical), equals ``MX[j]`` (``MN[j]``
    for ismin): the hardware's "seen" bit per lane and kind, cleared at each chunk start.  This
    is the element the forward's first-occurrence argmax/argmin rule picks (docs/bn-spec.md
    section 5; golden/tests/test_bn_extrema.py checks it against that rule).  The compares are
    bit-pattern equalities, not FP operations, and are not counted.
    """
    F = cfg.fwd_fmt
    cx = fp.max(F, x, x)                                        # (m, Cp)
    chunk_of = np.repeat(np.arange(cfg.chunks), lengths)        # (m,)
    flags = []
    for ext in (mx, mn):
        eq = cx == ext[chunk_of]
        hits = np.cumsum(eq, axis=0)                            # hits up to and including p
        before = np.concatenate([np.zeros((1, eq.shape[1]), hits.dtype), hits])[starts]
        flags.append(eq & (hits - before[chunk_of] == 1))       # the chunk's first hit
    return flags[0], flags[1]


def _clamp_negative(fmt, bits):
    """``+0`` for a negative word (sign set and not NaN: -0, negative finite, -Inf), else the
    word itself: the one-pass variance's ``max(var, +0)`` that lets a NaN through (the RTL's
    ``clamp0`` sequencer step, a selection, not counted as an operation)."""
    bits = np.asarray(bits)
    cls, sign, _, _ = fp.unpack(fmt, bits)
    neg = (sign != 0) & (cls != fp.NAN)
    return np.where(neg, 0, bits).astype(fmt.dtype)


def _is_zero(fmt, bits):
    """+-0 bit patterns (the hardware's zero detect on exponent and mantissa)."""
    return (np.asarray(bits).astype(np.int64) & (fmt.sign_mask - 1)) == 0


#: Limb width of :func:`_exact_sum`: a sum of up to 2**24 (max_m) limbs < 2**32 fits int64.
_LIMB = 32


def _exact_sum(term_fmt, terms, acc):
    """The exact sum over axis 0 of ``term_fmt`` words ``terms``, rounded ONCE into ``acc``.

    Each finite term is the integer ``(-1)**s * sig << (exp - lsb)`` times ``2**lsb``
    (``lsb = emin - man_bits`` of ``term_fmt``, :func:`~lightnorm.golden.bnconfig.exact_sum_format`
    sizes the hardware register).  The integers are summed in 32-bit limbs with int64 NumPy
    sums (no limb sum can overflow for m <= 2**24) and recombined per lane in Python integers,
    so the sum is exact and independent of the order of the terms.  Rounding: ``fp.round_pack``
    of ``acc`` (its mode; overflow gives Inf (rne) or the largest finite (rtz), as every op of
    the format).  An exact zero sum is +0.  Specials: any NaN, or +Inf and -Inf together, give
    NaN; otherwise an infinite term gives that Inf (IEEE sequential-sum semantics).
    """
    terms = np.asarray(terms)
    cls, sign, exp, sig = fp.unpack(term_fmt, terms)
    lsb = term_fmt.emin - term_fmt.man_bits
    finite = cls < fp.INF
    shift = np.where(finite, exp - lsb, 0)
    sig = np.where(finite, sig, 0).astype(np.uint64)
    neg = sign.astype(bool)
    top = int(shift.max(initial=0)) + term_fmt.precision
    mask = np.uint64((1 << _LIMB) - 1)
    totals = [0] * int(np.prod(terms.shape[1:], dtype=np.int64))
    for k in range(0, top, _LIMB):
        off = shift - k
        left = np.where((off >= 0) & (off < 64), sig << np.clip(off, 0, 63).astype(np.uint64), 0)
        right = np.where((off < 0) & (off > -64), sig >> np.clip(-off, 0, 63).astype(np.uint64), 0)
        limb = (np.where(off >= 0, left, right).astype(np.uint64) & mask).astype(np.int64)
        part = np.where(neg, -limb, limb).sum(axis=0).reshape(-1)
        for c, v in enumerate(part.tolist()):
            totals[c] += v << k
    s_out = np.array([int(v < 0) for v in totals], dtype=np.int64)
    mag = [abs(v) for v in totals]
    # round_pack takes < 2**62 significands: keep the top 62 bits and a sticky (62 >= any
    # precision + 2, so the rounding is that of the exact value).
    drop = [max(0, v.bit_length() - 62) for v in mag]
    sig_r = np.array([v >> d for v, d in zip(mag, drop)], dtype=np.int64)
    sticky = np.array([int(v & ((1 << d) - 1) != 0) for v, d in zip(mag, drop)], dtype=np.int64)
    exp_r = np.array(drop, dtype=np.int64) + lsb
    out = fp.round_pack(acc, s_out, exp_r, sig_r, sticky)
    shape = terms.shape[1:]
    isnan = (cls == fp.NAN).any(axis=0).reshape(-1)
    pinf = ((cls == fp.INF) & ~neg).any(axis=0).reshape(-1)
    ninf = ((cls == fp.INF) & neg).any(axis=0).reshape(-1)
    out = np.where(pinf, acc.pos_inf, out)
    out = np.where(ninf, acc.pos_inf | acc.sign_mask, out)
    out = np.where(isnan | (pinf & ninf), acc.canonical_nan, out)
    return out.astype(acc.dtype).reshape(shape)


def _sum(ops, cfg, direction, terms, term_fmt, exact=None, reg=None):
    """A sum of the unit (docs/bn-spec.md, "Sums").

    ``exact`` (default: ``cfg.exact_sums``): the exact sum of the terms rounded once into the
    accumulator format (:func:`_exact_sum`; the stats block's fixed-point accumulators and the
    sequencer's fixed-to-float ``convert`` step); returns ``(None, sum in acc)``.  Otherwise
    sequential over axis 0 in the wide format W: the terms (``term_fmt`` words, held exactly by
    W) are converted into W = ``sum_format(acc)``, added one per position in stream order from
    +0 (``acc = add_W(acc, term)``, the stats block's loop) and the complete sum is rounded ONCE
    into the accumulator format (the sequencer's ``convert`` step).  Returns ``(sum in W, sum
    in acc)``.  ``reg`` names the stats block's accumulator (``"f"``, ``"g"``; default that of
    the direction) for the operation counts of an exact sum.
    """
    acc = cfg.fwd_acc_fmt if direction == "forward" else cfg.bwd_acc_fmt
    final = direction[:3].replace("for", "fwd").replace("bac", "bwd") + "_final"
    if cfg.exact_sums if exact is None else exact:
        # counted as integer adds of the register width ("fixadd X51m18") and one
        # fixed-to-float rounding per lane (synth/energy.py prices both)
        reg = cfg.fix_fmt(reg or ("f" if direction == "forward" else "g"))
        ops.count("fixadd", reg.name, np.size(terms))
        phase, ops.phase = ops.phase, final
        ops.count("convert", f"fixed->{acc.name}", np.size(terms) // max(1, len(terms)))
        ops.phase = phase
        return None, _exact_sum(term_fmt, terms, acc)
    W = cfg.fwd_sum_fmt if direction == "forward" else cfg.bwd_sum_fmt
    total = _seq_accumulate(ops, W, ops.cv(term_fmt, terms, W))
    phase, ops.phase = ops.phase, final
    rounded = ops.cv(W, total, acc)            # on the scalar sequencer, after the pass
    ops.phase = phase
    return total, rounded


def _forward_finalize(ops, cfg, gamma, beta, mu_c, s):
    """Finalize steps 3-4 after s: ``s, a, b`` rounded into C (docs/bn-spec.md section 4).

    ``mu_c`` is the C word of the mean, ``s`` an A word; returns C words ``s_c, a_c, b_c``.
    """
    A, C = cfg.fwd_acc_fmt, cfg.fwd_const
    s_c = ops.cv(A, s, C)
    a, b = _affine(ops, A, gamma, beta, ops.cv(C, mu_c, A), ops.cv(C, s_c, A), C)
    return s_c, a, b


def forward_stream(cfg, x, gamma, beta, ops=None):
    """Forward (training) pass of the unit on stream bit patterns (docs/bn-spec.md section 4).

    Parameters
    ----------
    cfg : BNConfig
    x : array, shape (m, Cp)
        ``fwd_fmt`` words the lanes see (after BFP decoding), positions in stream order.
    gamma, beta : array, shape (Cp,)
        ``fwd_acc_fmt`` words from the command.
    ops : _Ops, optional
        Operation counter (internal).

    Returns
    -------
    dict
        ``y_acc`` (m, Cp) op-format (P) words before the output rounding; per lane (Cp,)
        ``sum, sig`` (A words), ``mu, s, a, b`` (C words: the constants the unit stores and
        uses); range BN also ``mx, mn`` (K, Cp) chunk extrema (F words, the sequencer's
        operands); ``consts`` (host constants).
    """
    if not isinstance(cfg, BNConfig):
        raise TypeError(f"cfg must be a BNConfig, not {cfg!r}")
    ops = ops or _Ops()
    F, A, P, C = cfg.fwd_fmt, cfg.fwd_acc_fmt, cfg.fwd_op, cfg.fwd_const
    x = np.asarray(x).astype(F.dtype)
    m = check_m(cfg, x.shape[0])
    k = host_constants(cfg, m, "forward")
    inv_m, ck, eps = (np.asarray(k[n], dtype=A.dtype) for n in ("inv_m", "ck", "eps"))
    gamma = np.asarray(gamma).astype(A.dtype)
    beta = np.asarray(beta).astype(A.dtype)

    ops.phase = "fwd_pass1"
    _, total = _sum(ops, cfg, "forward", x, F)
    sumsq = cfg.algorithm == "conventional" and cfg.variance == "sumsq"
    if sumsq:
        # one-pass variance: the squares in P, summed like the sum of x (the unit's dgamma
        # accumulator holds this sum in the forward)
        xp = ops.cv(F, x, P)
        _, sqsum = _sum(ops, cfg, "forward", ops("mul", P, xp, xp), P, reg="g")
    extrema = {}
    if cfg.algorithm == "range":
        starts, lengths = chunk_layout(cfg, m)
        mx, mn = _chunk_extrema(ops, cfg, x, starts, lengths)
        extrema = {"mx": mx, "mn": mn}

    ops.phase = "fwd_final"
    mu = ops("mul", A, total, inv_m)
    mu_c = ops.cv(A, mu, C)
    if cfg.algorithm == "range":
        # chunk order, max and min: two sums of K terms in W on the sequencer
        _, sums = _sum(ops, cfg, "forward", np.stack([mx, mn], axis=1), F, exact=False)
        rng = ops("sub", A, sums[0], sums[1])
        sig = ops("mul", A, rng, ck)
        spread = rng
        den = ops("add", A, sig, eps)
    elif sumsq:
        # var = E[x^2] - mu^2 with the A word mu (not mu_c); a negative difference (rounding,
        # cancellation when |mu| >> sigma) is clamped to +0: a sign select that keeps NaN.
        e2 = ops("mul", A, sqsum, inv_m)
        var = ops("sub", A, e2, ops("mul", A, mu, mu))
        sig = _clamp_negative(A, var)
        spread = sig
        den = ops("sqrt", A, ops("add", A, sig, eps))
    else:
        ops.phase = "fwd_pass2"
        d = ops("sub", P, ops.cv(F, x, P), ops.cv(C, mu_c, P))
        _, vsum = _sum(ops, cfg, "forward", ops("mul", P, d, d), P)
        ops.phase = "fwd_final"
        sig = ops("mul", A, vsum, inv_m)
        spread = vsum
        den = ops("sqrt", A, ops("add", A, sig, eps))
    one = np.asarray(fp.encode(A, 1.0), dtype=A.dtype)
    s = ops("div", A, one, den)
    # Zero-spread rule: a constant channel gets s = +0, i.e. x_hat = 0, y = beta, dx = 0.
    s = np.where(_is_zero(A, spread), 0, s).astype(A.dtype)
    s_c, a_c, b_c = _forward_finalize(ops, cfg, gamma, beta, mu_c, s)

    ops.phase = "fwd_pass3" if cfg.forward_passes == 3 else "fwd_pass2"
    y_acc = _affine_pass(ops, cfg, x, a_c, b_c)
    return {"y_acc": y_acc, "sum": total, "mu": mu_c, "sig": sig, "s": s_c, "a": a_c, "b": b_c,
            **extrema, "consts": k}


def _affine(ops, A, gamma, beta, mu, s, C=None):
    """bn-spec section 4, finalize step 4: ``a = gamma*s``, ``b = beta - mu*a`` in ``A``.

    With a constant format ``C``, ``a`` is rounded into C before ``b`` uses it (the unit keeps
    and uses the C word) and both results are C words.
    """
    a = ops("mul", A, gamma, s)
    if C is None:
        return a, ops("sub", A, beta, ops("mul", A, mu, a))
    a_c = ops.cv(A, a, C)
    b = ops("sub", A, beta, ops("mul", A, mu, ops.cv(C, a_c, A)))
    return a_c, ops.cv(A, b, C)


def _affine_pass(ops, cfg, x, a, b):
    """The Y pass: ``y = add_P(mul_P(a, x), b)`` with the C words a, b (P holds F and C)."""
    F, P, C = cfg.fwd_fmt, cfg.fwd_op, cfg.fwd_const
    return ops("add", P, ops("mul", P, ops.cv(C, a, P), ops.cv(F, x, P)), ops.cv(C, b, P))


def inference_stream(cfg, x, a, b, ops=None):
    """Inference pass: ``y = add_P(mul_P(a, x), b)`` with ``fwd_const`` (C) words a, b.

    Returns y_acc (m, Cp), op-format (P) words before the output rounding.
    """
    ops = ops or _Ops()
    F, C = cfg.fwd_fmt, cfg.fwd_const
    x = np.asarray(x).astype(F.dtype)
    check_m(cfg, x.shape[0], "inference")
    ops.phase = "inf_pass"
    return _affine_pass(ops, cfg, x, np.asarray(a).astype(C.dtype), np.asarray(b).astype(C.dtype))


def backward_stream(cfg, x, dy, gamma, mu, s, ops=None):
    """Backward pass of the unit on stream bit patterns (docs/bn-spec.md section 5).

    Parameters
    ----------
    cfg : BNConfig
    x : array, shape (m, Cp)
        ``fwd_fmt`` words: the same x the forward pass saw (the host sends the forward's x
        again; grad ``"range"`` re-detects each chunk's argmax/argmin element from it).
    dy : array, shape (m, Cp)
        ``bwd_fmt`` words (after BFP decoding).
    gamma, mu, s : array, shape (Cp,)
        ``bwd_acc_fmt`` words from the command.

    Returns
    -------
    dict
        ``dx_acc`` (m, Cp) op-format (PB) words before the output rounding; ``dgamma, dbeta``
        (AB words, the results), ``a, c0`` and ``c1`` (bn) or ``c2, c0p, c0m`` (range) (CB
        words, what the unit uses; c2 in AB), ``mu_c, s_c`` (the command's mu, s rounded into
        CB for the datapath); grad ``"range"`` also ``mx, mn`` (K, Cp) (the chunk extrema of x,
        pass 1) and ``ismax, ismin`` (m, Cp) bool (the pass-2 flags); ``consts``.
    """
    if not isinstance(cfg, BNConfig):
        raise TypeError(f"cfg must be a BNConfig, not {cfg!r}")
    ops = ops or _Ops()
    F, B, AB, PB, CB = cfg.fwd_fmt, cfg.bwd_fmt, cfg.bwd_acc_fmt, cfg.bwd_op, cfg.bwd_const
    x = np.asarray(x).astype(F.dtype)
    dy = np.asarray(dy).astype(B.dtype)
    if dy.shape != x.shape:
        raise ValueError(f"dy must have the shape of x {x.shape}, not {dy.shape}")
    m = check_m(cfg, x.shape[0])
    k = host_constants(cfg, m, "backward")
    inv_m, ck = (np.asarray(k[n], dtype=AB.dtype) for n in ("inv_m", "ck"))
    gamma, mu, s = (np.asarray(v).astype(AB.dtype) for v in (gamma, mu, s))

    # The datapath's mu and s: the command words rounded once into CB (exact for the forward
    # results of a config whose CB holds C); per channel, counted with the finalize ops.
    ops.phase = "bwd_final"
    mu_c, s_c = ops.cv(AB, mu, CB), ops.cv(AB, s, CB)
    ops.phase = "bwd_pass1"
    xpb = ops.cv(F, x, PB)
    dyp = ops.cv(B, dy, PB)
    mu_p = ops.cv(CB, mu_c, PB)
    d = ops("sub", PB, xpb, mu_p)
    xh = ops("mul", PB, d, ops.cv(CB, s_c, PB))
    pr = ops("mul", PB, dyp, xh)
    _, dgamma = _sum(ops, cfg, "backward", pr, PB)
    _, dbeta = _sum(ops, cfg, "backward", dy, B)
    if cfg.grad == "range":
        # the chunk extrema of x, tracked exactly as in forward pass 1
        starts, lengths = chunk_layout(cfg, m)
        mx, mn = _chunk_extrema(ops, cfg, x, starts, lengths)

    ops.phase = "bwd_final"
    a = ops("mul", AB, gamma, s)
    dbm = ops("mul", AB, dbeta, inv_m)
    c0 = ops("mul", AB, a, dbm)
    out = {"dgamma": dgamma, "dbeta": dbeta, "mu_c": mu_c, "s_c": s_c, "consts": k}
    if cfg.grad == "bn":
        dgm = ops("mul", AB, dgamma, inv_m)
        c1 = ops("mul", AB, ops("mul", AB, a, s), dgm)
        out["c1"] = ops.cv(AB, c1, CB)
    else:
        c2 = ops("mul", AB, ops("mul", AB, a, dgamma), ck)
        out.update(c2=c2, c0p=ops.cv(AB, ops("add", AB, c0, c2), CB),
                   c0m=ops.cv(AB, ops("sub", AB, c0, c2), CB))
    out["a"] = a_c = ops.cv(AB, a, CB)
    out["c0"] = c0_c = ops.cv(AB, c0, CB)

    ops.phase = "bwd_pass2"
    t = ops("mul", PB, ops.cv(CB, a_c, PB), dyp)
    if cfg.grad == "bn":
        d2 = ops("sub", PB, xpb, mu_p)                   # recomputed: the same bits as pass 1
        q = ops("mul", PB, ops.cv(CB, out["c1"], PB), d2)
        dx = ops("sub", PB, ops("sub", PB, t, ops.cv(CB, c0_c, PB)), q)
    else:
        ismax, ismin = _extremum_flags(cfg, x, mx, mn, starts, lengths)     # (m, Cp)
        out.update(mx=mx, mn=mn, ismax=ismax, ismin=ismin)
        sel = np.where(ismax & ~ismin, out["c0p"], np.where(ismin & ~ismax, out["c0m"], c0_c))
        dx = ops("sub", PB, t, ops.cv(CB, sel.astype(CB.dtype), PB))
    out["dx_acc"] = dx
    return out


# -- layer-level API ----------------------------------------------------------------------------
def _as_layer(name, v):
    v = np.asarray(v, dtype=np.float64)
    if v.ndim != 4:
        raise ValueError(f"{name} must be NCHW (4 dimensions), not shape {v.shape}")
    return v


def _as_channels(name, v, c):
    v = np.asarray(v, dtype=np.float64)
    if v.shape != (c,):
        raise ValueError(f"{name} must have shape ({c},), not {v.shape}")
    return v


def _as_words(name, v, fmt, shape=None):
    """Bit patterns of ``fmt``: an integer array (of ``shape``) with every value a ``fmt`` word.

    A float array is refused rather than cast: ``1.5`` would silently become the word 1.
    """
    v = np.asarray(v)
    if v.dtype.kind not in "ui":
        raise TypeError(f"{name} must be an integer array of {fmt.name} words (bit patterns), "
                        f"not dtype {v.dtype}; round float64 values with "
                        f"fp.encode({fmt.name}, values)")
    if shape is not None and v.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, not {v.shape}")
    if v.size and (v.min() < 0 or v.max() >> fmt.width):
        bad = v.min() if v.min() < 0 else v.max()
        raise ValueError(f"{name} holds {int(bad)}, which is not a {fmt.width}-bit {fmt.name} "
                         f"word")
    return v.astype(fmt.dtype)


@dataclass(frozen=True)
class ForwardResult:
    """Outputs of :func:`forward` (bit patterns padded to Cp channels, float64 views to C).

    Attributes
    ----------
    cfg : BNConfig
    shape : tuple
        NCHW shape of the layer.
    x_bits : ndarray (m, Cp)
        ``fwd_fmt`` words the lanes saw.
    x_beats : ndarray of object (ngroups, m)
        Data-in x payloads.
    gamma_bits, beta_bits : ndarray (Cp,)
        ``fwd_acc_fmt`` command words.
    y : ndarray (N, C, H, W) float64
        Exact values of the output stream.
    y_beats : ndarray of object (ngroups, m)
        Data-out payloads.
    stats : dict
        (Cp,) words: ``mu, s, a, b`` in ``fwd_const`` (C), ``sig`` in ``fwd_acc_fmt``.
    mu, sig, s : ndarray (C,) float64
    inputs : dict
        The forward command's lane words ``gamma``, ``beta``: the keywords of
        :func:`command_beats` (``command_beats(cfg, "forward", m, **fwd.inputs)``).
    """

    cfg: BNConfig
    shape: tuple
    x_bits: np.ndarray
    x_beats: np.ndarray
    gamma_bits: np.ndarray
    beta_bits: np.ndarray
    y: np.ndarray
    y_beats: np.ndarray
    y_acc: np.ndarray
    stats: dict
    consts: dict

    @property
    def m(self):
        return self.x_bits.shape[0]

    @property
    def inputs(self):
        return {"gamma": self.gamma_bits, "beta": self.beta_bits}

    def _view(self, key):
        fmt = self.cfg.fwd_acc_fmt if key == "sig" else self.cfg.fwd_const
        return fp.decode(fmt, self.stats[key])[:self.shape[1]]

    @property
    def mu(self):
        return self._view("mu")

    @property
    def sig(self):
        return self._view("sig")

    @property
    def s(self):
        return self._view("s")


@dataclass(frozen=True)
class BackwardResult:
    """Outputs of :func:`backward`.

    Attributes
    ----------
    dx : ndarray (N, C, H, W) float64
        Exact values of the dx stream.
    dx_beats, dy_beats : ndarray of object (ngroups, m)
    dy_bits : ndarray (m, Cp)
        ``bwd_fmt`` words the lanes saw.
    dgamma_bits, dbeta_bits : ndarray (Cp,)
        ``bwd_acc_fmt`` words (result stream).
    dgamma, dbeta : ndarray (C,) float64
    inputs : dict
        The backward command's lane words, from :func:`backward_inputs`: ``gamma, mu, s``
        (``bwd_acc_fmt``, (Cp,)): the keywords of :func:`command_beats`
        (``command_beats(cfg, "backward", m, **bwd.inputs)``).
    """

    cfg: BNConfig
    shape: tuple
    dy_bits: np.ndarray
    dy_beats: np.ndarray
    dx: np.ndarray
    dx_beats: np.ndarray
    dx_acc: np.ndarray
    dgamma_bits: np.ndarray
    dbeta_bits: np.ndarray
    inputs: dict
    internals: dict
    consts: dict

    @property
    def dgamma(self):
        return fp.decode(self.cfg.bwd_acc_fmt, self.dgamma_bits)[:self.shape[1]]

    @property
    def dbeta(self):
        return fp.decode(self.cfg.bwd_acc_fmt, self.dbeta_bits)[:self.shape[1]]


@dataclass(frozen=True)
class InferenceResult:
    """Outputs of :func:`inference`.

    Attributes
    ----------
    y : ndarray (N, C, H, W) float64
        Exact values of the output stream.
    y_beats, x_beats : ndarray of object (ngroups, m)
    a_bits, b_bits : ndarray (Cp,)
        ``fwd_const`` command words (padding lanes 0).
    inputs : dict
        ``a``, ``b`` (= a_bits, b_bits): the keywords of :func:`command_beats`
        (``command_beats(cfg, "inference", m, **inf.inputs)``).
    """

    cfg: BNConfig
    shape: tuple
    x_bits: np.ndarray
    x_beats: np.ndarray
    a_bits: np.ndarray
    b_bits: np.ndarray
    y: np.ndarray
    y_beats: np.ndarray

    @property
    def inputs(self):
        return {"a": self.a_bits, "b": self.b_bits}


def _quantize_x(cfg, x):
    xs = pad_channels(cfg, layer_to_stream(np.asarray(x, dtype=np.float64)))
    return encode_tensor(cfg, "x", fp.encode(cfg.fwd_fmt, xs))


def forward(cfg, x, gamma, beta, *, ops=None):
    """Forward training pass of one layer.

    Parameters
    ----------
    cfg : BNConfig
    x : array (N, C, H, W)
        Activations (float64); the host rounds them into ``fwd_fmt`` (``fp.encode``) and then
        into ``x_bfp`` groups of G channels at one position.
    gamma, beta : array (C,)
        Parameters, rounded into ``fwd_acc_fmt``; padding lanes get 0.

    Returns
    -------
    ForwardResult
    """
    ops = ops or _Ops()
    x = _as_layer("x", x)
    shape, c = x.shape, x.shape[1]
    check_m(cfg, shape[0] * shape[2] * shape[3])
    A = cfg.fwd_acc_fmt
    gamma_bits = fp.encode(A, pad_channels(cfg, _as_channels("gamma", gamma, c)))
    beta_bits = fp.encode(A, pad_channels(cfg, _as_channels("beta", beta, c)))
    x_bits, x_beats = _quantize_x(cfg, x)
    if cfg.x_bfp is not None:        # the unit decodes x in every pass
        for k in range(1, cfg.forward_passes + 1):
            ops.counts[(f"fwd_pass{k}", "bfp_decode", cfg.x_bfp.name)] += x_bits.size
    core = forward_stream(cfg, x_bits, gamma_bits, beta_bits, ops=ops)
    y_beats, yv = tensor_beats(cfg, "y", core["y_acc"], cfg.fwd_op, ops)
    stats = {key: core[key] for key in ("mu", "sig", "s", "a", "b")}
    return ForwardResult(cfg, tuple(shape), x_bits, x_beats, gamma_bits, beta_bits,
                         stream_to_layer(yv, shape), y_beats, core["y_acc"], stats,
                         core["consts"])


def backward_inputs(cfg, fwd, gamma):
    """Backward command words from a forward result (the host's conversion rule).

    Parameters
    ----------
    cfg : BNConfig
    fwd : ForwardResult
        The forward pass of the layer (its result stream: mu and s).
    gamma : array (C,)
        float64, rounded once into ``bwd_acc_fmt`` (``fp.encode``).

    Returns
    -------
    dict
        Exactly the keywords :func:`command_beats` takes for ``"backward"``: ``gamma``, ``mu``,
        ``s`` (``bwd_acc_fmt`` words, (Cp,), padding lanes 0; mu and s are the forward results
        converted once with ``fp.convert(fwd_const -> bwd_acc_fmt)``).  No positions: a
        grad ``"range"`` backward re-detects the chunk extrema from x (bn-spec section 5).
    """
    if fwd.cfg != cfg:
        raise ValueError("fwd was computed with a different BNConfig")
    C, AB = cfg.fwd_const, cfg.bwd_acc_fmt
    c = fwd.shape[1]
    return {"gamma": fp.encode(AB, pad_channels(cfg, _as_channels("gamma", gamma, c))),
            "mu": fp.convert(C, fwd.stats["mu"], AB),
            "s": fp.convert(C, fwd.stats["s"], AB)}


def backward(cfg, dy, gamma, fwd, *, ops=None):
    """Backward pass of one layer, using the x and statistics of a :func:`forward` result.

    Parameters
    ----------
    cfg : BNConfig
    dy : array (N, C, H, W)
        Output gradient (float64), rounded into ``bwd_fmt`` then ``dy_bfp``.
    gamma : array (C,)
    fwd : ForwardResult
        The forward pass of the same layer with the same ``cfg``; its x words (``x_bits``,
        the same ``x_beats``) are what the backward command streams again.

    Returns
    -------
    BackwardResult
    """
    ops = ops or _Ops()
    if fwd.cfg != cfg:
        raise ValueError("fwd was computed with a different BNConfig")
    dy = np.asarray(dy, dtype=np.float64)
    if dy.shape != fwd.shape:
        raise ValueError(f"dy must have the layer shape {fwd.shape}, not {dy.shape}")
    B, AB = cfg.bwd_fmt, cfg.bwd_acc_fmt
    dys = pad_channels(cfg, layer_to_stream(dy))
    dy_bits, dy_beats = encode_tensor(cfg, "dy", fp.encode(B, dys))
    inp = backward_inputs(cfg, fwd, gamma)
    # the unit decodes dy and x in both passes (pass 2: grad "bn" centres x, grad "range"
    # re-detects the chunk extrema in it)
    for phase in ("bwd_pass1", "bwd_pass2"):
        if cfg.dy_bfp is not None:
            ops.counts[(phase, "bfp_decode", cfg.dy_bfp.name)] += dy_bits.size
        if cfg.x_bfp is not None:
            ops.counts[(phase, "bfp_decode", cfg.x_bfp.name)] += dy_bits.size
    core = backward_stream(cfg, fwd.x_bits, dy_bits, ops=ops, **inp)
    dx_beats, dxv = tensor_beats(cfg, "dx", core["dx_acc"], cfg.bwd_op, ops)
    internals = {k: v for k, v in core.items() if k not in ("dx_acc", "consts")}
    return BackwardResult(cfg, fwd.shape, dy_bits, dy_beats, stream_to_layer(dxv, fwd.shape),
                          dx_beats, core["dx_acc"], core["dgamma"], core["dbeta"], inp,
                          internals, core["consts"])


def inference_constants(cfg, gamma, beta, mu, s):
    """The host's inference constants ``a = gamma*s``, ``b = beta - mu*a`` (bn-spec section 4).

    The result stream of a forward command carries ``mu, sig, s`` but not ``a, b``; this is the
    unit's own finalize step 4, in ``fwd_acc_fmt`` with one rounding per operation
    (``fp.mul``, ``fp.sub``) and a, b rounded into ``fwd_const`` (C) as the unit does, so
    :func:`inference` with these a, b on the same x gives the forward command's y bit for bit.
    Like every layer-level function it takes and returns float64 values; gamma, beta are
    rounded once into ``fwd_acc_fmt``, mu, s into ``fwd_const`` (``fp.encode``).

    Parameters
    ----------
    cfg : BNConfig
    gamma, beta : array (C,)
        float64 parameters (rounded as :func:`forward` rounds them).
    mu, s : array (C,)
        float64 statistics.  The forward results are ``fwd_const`` values, so these round
        exactly: ``fwd.mu``, ``fwd.s``, or ``fp.decode(cfg.fwd_const, w)`` of the ``r0`` and
        ``r2`` words of the result beats (``parse_result_beat``).  Running statistics work the
        same way: the mean and ``1/sqrt(var + eps)`` (range BN: ``1/(sigma_hat + eps)``).

    Returns
    -------
    dict
        ``a``, ``b``: float64 (C,), the exact values of ``fwd_const`` words (so
        :func:`inference` rounds them exactly): ``inference(cfg, x, **inference_constants(...))``.
    """
    A, C = cfg.fwd_acc_fmt, cfg.fwd_const
    gamma = np.asarray(gamma, dtype=np.float64)
    if gamma.ndim != 1:
        raise ValueError(f"gamma must have shape (C,), not {gamma.shape}")
    c = gamma.shape[0]
    ops = _Ops()
    g, b0 = (fp.encode(A, _as_channels(n, v, c)) for n, v in (("gamma", gamma), ("beta", beta)))
    mu_c, s_c = (fp.encode(C, _as_channels(n, v, c)) for n, v in (("mu", mu), ("s", s)))
    a, b = _affine(ops, A, g, b0, ops.cv(C, mu_c, A), ops.cv(C, s_c, A), C)
    return {"a": fp.decode(C, a), "b": fp.decode(C, b)}


def inference(cfg, x, a, b):
    """Inference pass ``y = a*x + b`` of one layer with host-given per-channel a, b.

    Parameters
    ----------
    cfg : BNConfig
    x : array (N, C, H, W)
        Activations (float64), rounded into ``fwd_fmt`` and ``x_bfp`` as in :func:`forward`.
    a, b : array (C,)
        float64 values, rounded once into ``fwd_const`` (``fp.encode``): the command carries
        them as ``fwd_const`` words (``a_bits``, ``b_bits``; bn-spec section 4).  For the
        forward pass's own a, b use :func:`inference_constants`.  Padding lanes get 0.

    Returns
    -------
    InferenceResult
    """
    x = _as_layer("x", x)
    c = x.shape[1]
    C = cfg.fwd_const
    a_bits = fp.encode(C, pad_channels(cfg, _as_channels("a", a, c)))
    b_bits = fp.encode(C, pad_channels(cfg, _as_channels("b", b, c)))
    x_bits, x_beats = _quantize_x(cfg, x)
    y_acc = inference_stream(cfg, x_bits, a_bits, b_bits)
    y_beats, yv = tensor_beats(cfg, "y", y_acc, cfg.fwd_op)
    return InferenceResult(cfg, x.shape, x_bits, x_beats, a_bits, b_bits,
                           stream_to_layer(yv, x.shape), y_beats)


# -- stream beats (docs/bn-spec.md section 7) -----------------------------------------------------
def _fields(values_widths):
    """Concatenate (value, width) pairs LSB first into one Python int (values masked)."""
    out, shift = 0, 0
    for value, width in values_widths:
        out |= (int(value) & ((1 << width) - 1)) << shift
        shift += width
    return out


def _lane_beat(cfg, p0, p1, p2):
    cw = cfg.const_width
    return _fields([(p0, cw), (p1, cw), (p2, cw)])


def command_beats(cfg, mode, m, *, gamma=None, beta=None, mu=None, s=None, a=None, b=None):
    """Command beats for a layer: per channel group one header beat and G lane beats.

    The lane words are named as in :data:`LANE_WORDS` and are exactly the ``inputs`` of the
    result objects, so ``command_beats(cfg, mode, m, **result.inputs)`` builds the command of
    a :func:`forward`, :func:`backward` or :func:`inference` result.

    Parameters
    ----------
    cfg : BNConfig
    mode : str
        ``"forward"``, ``"backward"`` or ``"inference"`` (header code :data:`MODES`).
    m : int
        Positions per channel (checked with :func:`check_m`).
    gamma, beta : array (Cp,)
        forward: ``fwd_acc_fmt`` words (slots p0, p1).
    gamma, mu, s : array (Cp,)
        backward: ``bwd_acc_fmt`` words (slots p0, p1, p2), e.g. from :func:`backward_inputs`.
    a, b : array (Cp,)
        inference: ``fwd_const`` (C) words (slots p0, p1), e.g. ``InferenceResult.inputs``.

    Every word of the mode is required and every other one must be None (a missing word is not
    sent as 0, an unused one is not dropped silently); words must be integer arrays of the
    mode's accumulator format with Cp a multiple of G.

    Returns
    -------
    ndarray of object, shape (ngroups, G + 1)
        Python-int payloads, header first.
    """
    _check_mode(mode)
    k = host_constants(cfg, m, mode)
    given = {"gamma": gamma, "beta": beta, "mu": mu, "s": s, "a": a, "b": b}
    names = LANE_WORDS[mode]
    extra = [n for n, v in given.items() if v is not None and n not in names]
    if extra:
        raise ValueError(f"a {mode} command carries {', '.join(names)}, not {', '.join(extra)}")
    missing = [n for n in names if given[n] is None]
    if missing:
        raise ValueError(f"a {mode} command needs {', '.join(missing)}")
    fmt = {"forward": cfg.fwd_acc_fmt, "backward": cfg.bwd_acc_fmt,
           "inference": cfg.fwd_const}[mode]
    first = np.asarray(given[names[0]])
    cp = first.shape[0] if first.ndim == 1 else -1
    if cp <= 0 or cp % cfg.lanes:
        raise ValueError(f"{names[0]} must have shape (Cp,) with Cp a multiple of lanes "
                         f"({cfg.lanes}), not {first.shape}")
    words = [_as_words(n, given[n], fmt, (cp,)).astype(np.int64) for n in names]
    words += [np.zeros(cp, dtype=np.int64)] * (3 - len(words))
    header = header_beat(cfg, mode, m, k["q"], k["r"], k["inv_m"], k["ck"], k["eps"])
    ng = cp // cfg.lanes
    out = np.empty((ng, cfg.lanes + 1), dtype=object)
    for g in range(ng):
        out[g, 0] = header
        for lane in range(cfg.lanes):
            c = g * cfg.lanes + lane
            out[g, 1 + lane] = _lane_beat(cfg, words[0][c], words[1][c], words[2][c])
    return out


def _unfields(value, widths):
    out, shift = [], 0
    for w in widths:
        out.append((int(value) >> shift) & ((1 << w) - 1))
        shift += w
    return out


def parse_command_beat(cfg, beat, header):
    """Decode one command payload into a dict of raw field values (``header`` selects the layout).

    Header: ``mode`` (the 2-bit code; the name is the key of :data:`MODES` with that value),
    ``m, q, r, inv_m, ck, eps``.  Lane beat: the slots ``p0, p1, p2`` (named per mode by
    :data:`LANE_WORDS`).
    """
    cw, mb = cfg.const_width, cfg.m_bits
    if header:
        names = ("mode", "m", "q", "r", "inv_m", "ck", "eps")
        return dict(zip(names, _unfields(beat, (2, mb, mb, cfg.r_bits, cw, cw, cw))))
    return parse_result_beat(cfg, beat, names=("p0", "p1", "p2"))


def parse_result_beat(cfg, beat, names=("r0", "r1", "r2")):
    """Decode one result-stream payload (or a command lane beat): its three constant slots."""
    cw = cfg.const_width
    return dict(zip(names, _unfields(beat, [cw, cw, cw])))


def result_beats(cfg, result):
    """Expected result-stream payloads (ngroups, G) for a ForwardResult or BackwardResult."""
    if isinstance(result, ForwardResult):
        words = (result.stats["mu"], result.stats["sig"], result.stats["s"])
    elif isinstance(result, BackwardResult):
        words = (result.dgamma_bits, result.dbeta_bits, np.zeros_like(result.dgamma_bits))
    else:
        raise TypeError(f"result must be a ForwardResult or BackwardResult, not {result!r}")
    cp = words[0].shape[0]
    out = np.empty((cp // cfg.lanes, cfg.lanes), dtype=object)
    for c in range(cp):
        out[c // cfg.lanes, c % cfg.lanes] = _lane_beat(cfg, words[0][c], words[1][c],
                                                        words[2][c])
    return out


def din_beats(cfg, mode, x_beats, dy_beats=None):
    """Data-in payloads per group for one command: ``x | dy << XW``, repeated once per pass.

    Returns an object array (ngroups, passes * m): forward 2 (range) or 3 (conventional)
    passes, backward 2, inference 1.
    """
    _check_mode(mode)
    x_beats = np.asarray(x_beats, dtype=object)
    if mode == "backward":
        if dy_beats is None:
            raise ValueError("dy_beats are required for a backward command")
        one = x_beats + (np.asarray(dy_beats, dtype=object) << cfg.tensor_width("x"))
        passes = 2
    else:
        one = x_beats
        passes = cfg.forward_passes if mode == "forward" else 1
    return np.concatenate([one] * passes, axis=1)


# -- operation counts -----------------------------------------------------------------------------
def op_counts(cfg, m=256, seed=0):
    """Operations the model executes, per pass, per element (passes) or per channel (finalize).

    Runs :func:`forward` and :func:`backward` on one group of G channels of standard normal
    data (m positions, ``seed``) and divides the counted element operations by ``m * G``
    (streaming passes) or ``G`` (``*_final`` phases).

    Returns
    -------
    dict
        ``{phase: {"op fmt": count}}``, e.g. ``{"fwd_pass1": {"add e6m31_rtz": 1.0, ...}}``.
        Exact conversions between formats are listed as ``convert``; ``bfp_encode`` is the
        output rounding per element.
    """
    rng = np.random.default_rng(seed)
    g = cfg.lanes
    x = rng.standard_normal((1, g, m, 1))
    dy = rng.standard_normal((1, g, m, 1))
    ops = _Ops()
    fwd = forward(cfg, x, np.ones(g), np.zeros(g), ops=ops)
    backward(cfg, dy, np.ones(g), fwd, ops=ops)
    out = {}
    for (phase, op, name), n in sorted(ops.counts.items()):
        per = g if phase.endswith("final") else m * g
        if phase == "setup":
            continue
        out.setdefault(phase, {})[f"{op} {name}"] = n / per
    return out
