"""Commands the BN unit cannot execute: refused with one ``err`` beat, never hung or leaked.

docs/interface.md ("Refused commands") is the contract, :func:`lightnorm.golden.bn.command_error`
its golden model.  The HDL test streams, on the simulator named by ``SIM``, every kind of bad
header (m = 0 in each mode, m < K (empty chunks: the case that used to leak the previous
command's chunk state -- then its argmax/argmin positions), K <= m < 2K, m = max_m + 1 and the
largest m the field holds, the unknown mode 3, q/r that disagree with m, r >= K) each followed by a valid command
that must be bit-exact, without pauses (cycles: the valid commands keep the cycle model, the
refused ones take the documented cycles) and with random pauses on all five streams.  It runs
on a G = 2, K = 3, max_m = 40 LightNorm unit: K = 3 is not a power of two, so q*K + r and
r >= K are real checks, and max_m = 40 < 63 leaves room for m > max_m in the 6-bit m field.
"""

import numpy as np
import pytest

from lightnorm.golden import bn as gbn
from lightnorm.golden.bnconfig import BN_PRESETS

from .test_bn import commands_for, cycle_problems, make_phase, run_bn, run_pysim, small_config

#: The unit of the HDL test (see the module docstring).
ERR_CFG = small_config(BN_PRESETS["lightnorm"], 2, 3, max_m=40)
#: A conventional unit for the Python-simulator test (other rules: no chunks, 3 passes).
CONV_CFG = small_config(BN_PRESETS["bf16_bn"], 2, 2, max_m=20)


def _mode_value(mode):
    return gbn.MODES[mode] if isinstance(mode, str) else int(mode)


def host_chunks(cfg, mode, m):
    """The q, r a host sends (golden host_constants): divmod(m, K) for range training."""
    if cfg.algorithm == "range" and _mode_value(mode) in (0, 1):
        return divmod(m, cfg.chunks)
    return 0, 0


def refused_command(cfg, rng, mode, m, q=None, r=None):
    """A command entry (as :func:`lightnorm.verif.test_bn.commands_for` makes them) that the
    unit must refuse: the header, G random lane beats, the ``passes * m`` random data beats it
    announces, no dout/res beats and one err beat."""
    dq, dr = host_chunks(cfg, mode, m)
    q, r = dq if q is None else q, dr if r is None else r
    code = gbn.command_error(cfg, mode, m, q, r)
    assert code is not None, f"{mode} m={m} q={q} r={r} is not refused"
    n_din = gbn.command_data_beats(cfg, mode, m)

    def rand(width, n):         # random payloads: the unit must not use them
        return [int.from_bytes(rng.bytes((width + 7) // 8), "little") & ((1 << width) - 1)
                for _ in range(n)]
    mode_v = _mode_value(mode)
    return {"mode": mode if isinstance(mode, str) else f"mode{mode}", "m": m, "groups": 1,
            "lanes": cfg.lanes, "passes": 0, "refused": True, "code": code,
            "din_beats": n_din, "shape": None, "kind": "refused",
            "cmd": [gbn.header_beat(cfg, mode_v, m, q, r, 1, 2, 3)] + rand(cfg.cmd_width,
                                                                          cfg.lanes),
            "din": rand(cfg.din_width, n_din), "dout": [], "res": [],
            "err": [gbn.error_beat(cfg, code, mode_v, m)]}


def with_header_fields(cfg, command, **fields):
    """``command`` with every header beat rewritten (e.g. junk in fields the mode ignores)."""
    out = dict(command)
    cmd = list(command["cmd"])
    for k in range(0, len(cmd), cfg.lanes + 1):
        h = gbn.parse_command_beat(cfg, cmd[k], True)
        h.update(fields)
        cmd[k] = gbn.header_beat(cfg, **h)
    out["cmd"] = cmd
    return out


def inference_command(cfg, rng, shape):
    """An inference command entry for any m >= 1 (commands_for needs a forward: m >= 2K)."""
    n, c, h, w = shape
    x = rng.standard_normal(shape)
    inf = gbn.inference(cfg, x, rng.uniform(-2, 2, c), rng.uniform(-1, 1, c))
    cmd = gbn.command_beats(cfg, "inference", n * h * w, **inf.inputs)
    return {"mode": "inference", "m": n * h * w, "groups": cmd.shape[0], "lanes": cfg.lanes,
            "passes": 1, "cmd": list(cmd.ravel()),
            "din": list(gbn.din_beats(cfg, "inference", inf.x_beats).ravel()),
            "dout": list(np.asarray(inf.y_beats).ravel()), "res": [], "shape": shape,
            "kind": "normal"}


#: Bad headers of the HDL test: (mode, m, q, r); q, r None = what a host would send.
BAD_HEADERS = [
    ("forward", 0, None, None), ("inference", 0, None, None), ("backward", 0, None, None),
    ("forward", 2, None, None),                 # m < K: an empty chunk (stale extrema)
    ("forward", 5, None, None), ("backward", 5, None, None),   # K <= m < 2K
    ("forward", 41, None, None), ("inference", 63, None, None),   # m > max_m (field: 63)
    ("backward", 41, None, None),
    (3, 10, 3, 1), (3, 0, 0, 0),                # unknown mode
    ("forward", 12, 3, 0), ("forward", 13, 4, 0),   # q, r disagree with m
    ("backward", 12, 3, 3),                     # q*K + r = m but r = K
]


def refused_cycles(cfg, entry):
    """Cycles from a refused header to the next header, no pauses (docs/interface.md):
    header and lane beats, the dropped beats, one cycle per pass (at least one), the return."""
    passes = gbn.command_data_beats(cfg, entry["mode"] if entry["mode"] in gbn.MODES else 3, 1)
    return 1 + cfg.lanes + entry["din_beats"] + max(passes, 1) + 1


def error_sequence(cfg, seed):
    """Valid layers and bad headers interleaved: every refused command is followed by a valid
    one, the first bad header comes right after a range forward (its positions in the unit)."""
    rng = np.random.default_rng(seed)
    valid = []
    for shape, kind, modes in (((1, 3, 2, 4), "normal", ("forward", "backward", "inference")),
                               ((2, 2, 1, 3), "const", ("forward", "backward", "inference")),
                               ((1, 2, 1, 40), "offset", ("forward", "inference"))):
        valid += commands_for(cfg, rng, shape, kind, modes)
    # Accepted although unusual: inference with m = 1 < K, and junk in q, r (unused there).
    valid.append(inference_command(cfg, rng, (1, 2, 1, 1)))
    valid.append(with_header_fields(cfg, valid[2], q=(1 << cfg.m_bits) - 1,
                                    r=(1 << cfg.r_bits) - 1))
    bad = [refused_command(cfg, rng, *h) for h in BAD_HEADERS]
    # forward, then the m < K header (4th), then a forward: the stale-state case first.
    order = [bad[3]] + bad[:3] + bad[4:]
    seq = []
    for k, b in enumerate(order):
        seq += [valid[(3 * k) % len(valid)], b]
    seq.append(valid[0])
    return seq


@pytest.mark.sim
def test_bn_refused_hdl():
    """Every bad header of BAD_HEADERS refused (one err beat with its code, data beats
    dropped), each followed by a valid command computed bit for bit; no pauses (cycles) and
    random pauses on all five streams; then the checker is shown to catch a unit that does
    not refuse."""
    cfg = ERR_CFG
    seq = error_sequence(cfg, 5)
    phases = [make_phase(cfg, seq, 0.0), make_phase(cfg, seq, 0.3)]
    verdict = run_bn(cfg, "lightnorm_g2k3_m40", phases)
    assert not cycle_problems(cfg, verdict), cycle_problems(cfg, verdict)
    cmds = verdict["phases"][0]["commands"]
    n_refused = 0
    for k, c in enumerate(cmds):
        if not c.get("refused"):
            continue
        n_refused += 1
        assert c["err_cycle"] - c["header_cycle"] == cfg.lanes + 1, c
        took = cmds[k + 1]["header_cycle"] - c["header_cycle"]
        assert took == refused_cycles(cfg, c), (c, took)
    assert n_refused == len(BAD_HEADERS)
    codes = {c["code"] for c in cmds if c.get("refused")}
    assert codes == set(gbn.ERRORS.values()), codes

    # The checker can fail.  A unit that executed a header it should refuse: give a valid
    # forward the expectations of a refused one (an err beat, no dout/res, its data dropped).
    # And a refused command whose err beat carries another code than expected.
    fwd = seq[0]
    as_refused = dict(fwd, refused=True, code=gbn.ERRORS["m_chunks"], passes=0,
                      din_beats=len(fwd["din"]), dout=[], res=[],
                      err=[gbn.error_beat(cfg, gbn.ERRORS["m_chunks"], 0, fwd["m"])])
    wrong = dict(seq[1], err=[seq[1]["err"][0] ^ 1])
    fault = make_phase(cfg, [as_refused, wrong, seq[2]], 0.0)
    fault["max_cycles"] = 2000          # the missing err beat ends the run by timeout
    with pytest.raises(AssertionError) as caught:
        run_bn(cfg, "lightnorm_g2k3_m40", [fault])
    message = str(caught.value)
    for expected in ("err beat 0: expected", "err: expected 2 beats, received 1 (lost",
                     "dout: expected", "duplicated beats"):
        assert expected in message, f"{expected!r} not reported:\n{message}"


def test_command_error_rules():
    """command_error against check_m (the golden layer API) and the headers command_beats
    builds; q/r checked exactly where they are used; field widths enforced."""
    for cfg in (ERR_CFG, CONV_CFG, small_config(BN_PRESETS["lightnorm"], 2, 1, max_m=9)):
        for mode in gbn.MODES:
            for m in range(1 << cfg.m_bits):
                q, r = host_chunks(cfg, mode, m)
                code = gbn.command_error(cfg, mode, m, q, r)
                try:
                    gbn.check_m(cfg, m, mode)
                    ok = True
                except ValueError as exc:
                    assert str(m) in str(exc)
                    ok = False
                assert ok == (code is None), (cfg.name, mode, m, code)
                if ok:
                    cp = cfg.lanes
                    words = {n: np.zeros(cp, dtype=np.int64) for n in gbn.LANE_WORDS[mode]}
                    beats = gbn.command_beats(cfg, mode, m, **words)
                    h = gbn.parse_command_beat(cfg, beats[0, 0], True)
                    assert gbn.command_error(cfg, h["mode"], h["m"], h["q"], h["r"]) is None
                # q, r: every other value is refused exactly when the mode uses the chunks
                uses = cfg.algorithm == "range" and mode != "inference"
                for q2, r2 in ((q + 1, r), (q, (r + 1) % (1 << cfg.r_bits))):
                    if q2 >= 1 << cfg.m_bits or (q2, r2) == (q, r):
                        continue
                    got = gbn.command_error(cfg, mode, m, q2, r2)
                    assert got == (gbn.ERRORS["chunks_qr"] if uses and ok else code), (
                        cfg.name, mode, m, q2, r2, got)
            assert gbn.command_error(cfg, 3, 5) == gbn.ERRORS["mode"]
    with pytest.raises(ValueError, match="m must be an integer of 6 bits.*not 64"):
        gbn.command_error(ERR_CFG, 0, 64, 0, 0)
    with pytest.raises(ValueError, match="r must be an integer of 2 bits.*not 4"):
        gbn.header_beat(ERR_CFG, 0, 12, 4, 4)
    assert gbn.parse_error_beat(ERR_CFG, gbn.error_beat(ERR_CFG, 5, 1, 41)) == {
        "code": 5, "mode": 1, "m": 41}
    assert gbn.command_data_beats(ERR_CFG, "forward", 7) == 14
    assert gbn.command_data_beats(CONV_CFG, "forward", 7) == 21
    assert gbn.command_data_beats(ERR_CFG, 3, 7) == 0


def test_err_layout_in_manifest():
    """The manifest's err layout (gen.generate.bn_layouts) is code | mode | m; the generator
    checks that it spans the err__payload port (_bn_entry)."""
    from lightnorm.gen.generate import bn_layouts
    for cfg in (ERR_CFG, BN_PRESETS["lightnorm"]):
        lay = bn_layouts(cfg)["err"]
        assert [(f["field"], f["offset"], f["width"]) for f in lay] == [
            ("code", 0, gbn.ERROR_CODE_BITS), ("mode", 3, 2), ("m", 5, cfg.m_bits)]
        assert gbn.error_width(cfg) == 5 + cfg.m_bits


@pytest.mark.parametrize("variance", ["centered", "sumsq"])
def test_bn_pysim_refused_conventional(variance):
    """The conventional rules in Amaranth's simulator (bf16_bn, G = 2, K = 2, max_m = 20):
    m = 0, m > max_m, mode 3 refused; m < 2K and junk q, r run (no chunks); each refused
    command followed by a valid one, with pauses.  The one-pass variance (``"sumsq"``) drops
    2m data beats of a refused forward instead of 3m."""
    cfg = CONV_CFG.replace(variance=variance)
    assert gbn.command_data_beats(cfg, "forward", 5) == (15 if variance == "centered" else 10)
    rng = np.random.default_rng(3)
    valid = commands_for(cfg, rng, (1, 3, 1, 3), "normal", ("forward", "backward",
                                                              "inference"))
    valid.append(with_header_fields(cfg, valid[0], q=7, r=1))
    bad = [refused_command(cfg, rng, *h) for h in (("forward", 0), ("backward", 21),
                                                   ("inference", 31), (3, 4))]
    seq = []
    for k, b in enumerate(bad):
        seq += [valid[k % len(valid)], b]
    seq.append(valid[3])
    phase = make_phase(cfg, seq, 0.25)
    dout, res, err, _ = run_pysim(cfg, phase, with_err=True)
    from .test_bn import check_beats
    check_beats("dout", phase["dout"], dout)
    check_beats("res", phase["res"], res)
    check_beats("err", phase["err"], err)
