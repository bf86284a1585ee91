# svperturb: the two set-up commands (see README.md).
#   make run    create .venv if missing, install, run the workflow on config/config.yaml
#   make test   create .venv if missing, install, run the test suite
#   make resume after a crash, a kill or a node failure: release Snakemake's lock, then make run
#               (finished jobs are kept, interrupted ones rerun: rerun-incomplete is in the profile)
#   make slurm  the same on a SLURM cluster (workflow/profiles/slurm; edit its SITE lines)
#   make gpu-wheels  where PyPI is reachable: the wheels a CUDA node without network needs (docs/gpu.md)
#   make gpu-check   on the CUDA node: the GPU acceptance check, logs into LOGS (docs/gpu.md)
# Variables: PYTHON (interpreter that creates the venv; for gpu-check, the node's interpreter),
# CONFIG (workflow config), CORES, ARGS (extra snakemake arguments), PYTEST_ARGS, WHEELS (wheel
# folder, default .whl), LOGS (gpu-check's log folder, default gpu-check-logs).

PYTHON ?= python3
VENV ?= .venv
CONFIG ?= config/config.yaml
CORES ?= all
ARGS ?=
PYTEST_ARGS ?=
WHEELS ?= .whl
LOGS ?= gpu-check-logs
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run resume slurm test install dryrun clean-results gpu-wheels gpu-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall when the package metadata changes (the package itself is installed editable).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(STAMP)

run: $(STAMP)
	$(BIN)/svperturb info --config $(CONFIG)
	$(BIN)/snakemake --workflow-profile workflow/profiles/default --configfile $(CONFIG) \
		--cores $(CORES) $(ARGS)
	@echo "report: $$($(BIN)/svperturb info --config $(CONFIG) --print report)"

# After a killed run: a SIGKILLed Snakemake leaves its lock behind. Only when no other Snakemake
# is running in this directory.
resume: $(STAMP)
	$(BIN)/snakemake --workflow-profile workflow/profiles/default --configfile $(CONFIG) --unlock $(ARGS)
	$(MAKE) run

# On a SLURM cluster (edit the SITE lines of workflow/profiles/slurm/config.yaml first).
slurm: $(STAMP)
	$(BIN)/svperturb info --config $(CONFIG)
	$(BIN)/snakemake $$($(BIN)/svperturb cluster-args --config $(CONFIG)) \
		--workflow-profile workflow/profiles/slurm --configfile $(CONFIG) $(ARGS)

dryrun: $(STAMP)
	$(BIN)/snakemake --workflow-profile workflow/profiles/default --configfile $(CONFIG) -n $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The wheels that a CUDA node's Python environment lacks, at this .venv's versions, into WHEELS:
# run where PyPI is reachable, then bring the folder to the node with the checkout (docs/gpu.md).
gpu-wheels: $(STAMP)
	VENV=$(VENV) bash scripts/gpu-wheels $(WHEELS)

# The GPU acceptance check, on the CUDA node; needs no network when WHEELS is there. Installs
# nothing from PyPI and does not create .venv: PYTHON is the node's interpreter (with CuPy).
gpu-check:
	PYTHON=$(PYTHON) WHEELS=$(WHEELS) bash scripts/gpu-check $(LOGS)

# Removes CONFIG's results folder (shards, merged files, fits, report, logs). Other configs'
# folders and Snakemake's state stay. Asks nothing: think first.
clean-results: $(STAMP)
	rm -rf "$$($(BIN)/svperturb info --config $(CONFIG) --print results)"
