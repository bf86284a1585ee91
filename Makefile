# svperturb: the two set-up commands (see README.md).
#   make run    create .venv if missing, install, run the workflow on config/config.yaml
#   make test   create .venv if missing, install, run the test suite
#   make resume after a crash, a kill or a node failure: release Snakemake's lock, then make run
#               (finished jobs are kept, interrupted ones rerun: rerun-incomplete is in the profile)
#   make slurm  the same on a SLURM cluster (workflow/profiles/slurm; edit its SITE lines)
# Variables: PYTHON (interpreter that creates the venv), CONFIG (workflow config), CORES, ARGS
# (extra snakemake arguments), PYTEST_ARGS.

PYTHON ?= python3
VENV ?= .venv
CONFIG ?= config/config.yaml
CORES ?= all
ARGS ?=
PYTEST_ARGS ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run resume slurm test install dryrun clean-results gpu-wheels

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
	@echo "report: $(CURDIR)/results/report/index.html"

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

# Wheels the lent GPU machine's image lacks, for .ci/gpu-check there (README: GPU check).
gpu-wheels: $(STAMP)
	VENV=$(VENV) bash .ci/gpu-wheels

# Removes generated results (shards, merged files, fits, report). Asks nothing: think first.
clean-results:
	rm -rf results .snakemake
