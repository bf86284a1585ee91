# svperturb: the two set-up commands (see README.md).
#   make run    create .venv if missing, install the runtime, run the workflow on config/config.yaml
#   make test   create .venv if missing, install the runtime and the test extra, run the test suite
#   make resume after a crash, a kill or a node failure: release Snakemake's lock, then make run
#               (finished jobs are kept, interrupted ones rerun: rerun-incomplete is in the profile)
#   make slurm  the same on a SLURM cluster (workflow/profiles/slurm; edit its SITE lines)
#   make slurm-resume  after Snakemake itself died on the login node: cancel the jobs its run
#               left queued or running, release the lock, then make slurm (docs/cluster.md)
#   make gpu-wheels  where PyPI is reachable: the wheels a CUDA node without network needs (docs/gpu.md)
#   make gpu-check   on the CUDA node: the GPU acceptance check, logs into LOGS (docs/gpu.md)
#   make install     create .venv if missing, install the runtime (the workflow and mpich extras)
#   make dryrun      list the jobs of CONFIG without running them
#   make clean-results  remove CONFIG's results folder
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
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run resume slurm slurm-resume test install dryrun clean-results gpu-wheels gpu-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The runtime: the package (editable) with its workflow and mpich extras. Redone, like the test
# stamp after it, when the package metadata changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[workflow,mpich]'
	touch $@

# The test extra on top. Named, not '.[test]': pip takes the svperturb installed just before
# (editable) and adds only what the extra lacks, without rebuilding the package. The check
# first keeps pip from looking for an svperturb on PyPI should none be installed.
$(TEST_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip show --quiet svperturb
	$(BIN)/python -m pip install --quiet 'svperturb[test]'
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

# Only when no `make slurm` of this CONFIG is running in this checkout (as --unlock).
slurm-resume: $(STAMP)
	$(BIN)/svperturb slurm-cancel --config $(CONFIG)
	$(BIN)/snakemake --workflow-profile workflow/profiles/slurm --configfile $(CONFIG) --unlock
	$(MAKE) slurm

dryrun: $(STAMP)
	$(BIN)/snakemake --workflow-profile workflow/profiles/default --configfile $(CONFIG) -n $(ARGS)

test: $(TEST_STAMP)
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
