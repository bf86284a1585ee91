# Validate the config (JSON schema + cross-key checks) before anything is scheduled, and build the grid.
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

from svperturb.config import ConfigError, study_configs, validate_config
from svperturb.io import point_path
from svperturb.resume import compare_with_existing_shards
from svperturb.studies import get_study, grid_points

try:
    CONFIG = validate_config(config)
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None

STUDIES = study_configs(CONFIG)
RESULTS = "results"
# A rerun keeps finished shards; a config that would re-split them is refused before any job.
_problems, _notes = compare_with_existing_shards(RESULTS, STUDIES, CONFIG["seed"])
if _problems:
    raise WorkflowError("the config does not fit the results already computed:\n  "
                        + "\n  ".join(_problems))
for _note in _notes:
    logger.warning(f"svperturb: {_note}")
RESOURCES = CONFIG["resources"]
# ranks > 1: "<launcher> -n <ranks> svperturb simulate ..."; the launcher is resources.mpi, i.e.
# the config's mpi_launcher (mpiexec) unless a profile's set-resources says otherwise (srun).
LAUNCH = "{resources.mpi} -n {resources.tasks} " if RESOURCES["ranks"] > 1 else ""
# Simulate jobs carry the group "simulate"; how many go into one cluster job is Snakemake's
# --group-components simulate=N, which `svperturb cluster-args --config FILE` derives from the
# config's resources.group_size (used by `make slurm`). Local runs ignore groups.
# Rules call `svperturb` from the environment that runs Snakemake (the project's .venv or conda
# env), found first on PATH even when that environment is not activated. The command text does
# not contain the interpreter's path, so moving the checkout does not trigger reruns.
envvars:
    "PATH",


os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


wildcard_constraints:
    study="|".join(STUDIES),
    shard=r"\d\d\d\d+",


def study_points(study):
    """Hive-style paths of a study's grid points."""
    axes = get_study(study).AXES
    return [point_path(p, axes) for p in grid_points(study, STUDIES[study].grid)]


def shard_paths(study):
    return [
        f"{RESULTS}/shards/{study}/{point}/shard-{shard:04d}.h5"
        for point in study_points(study)
        for shard in range(STUDIES[study].n_shards)
    ]


def simulate_arguments(wildcards):
    study = STUDIES[wildcards.study]
    start, stop = study.shard_range(int(wildcards.shard))
    args = [f"--study {wildcards.study}", f"--point {wildcards.point}",
            f"--start {start}", f"--stop {stop}", f"--seed {CONFIG['seed']}",
            f"--keep-spectra {CONFIG['keep_spectra']}", f"--backend {CONFIG['backend']}",
            inner_arguments(wildcards.study)]
    if RESOURCES["device_memory_mb"]:
        args.append(f"--device-memory-mb {RESOURCES['device_memory_mb']}")
    return " ".join(arg for arg in args if arg)


def inner_arguments(study_name):
    """--skip / --theta lists of a study's inner axes, as simulate and aggregate take them."""
    study = STUDIES[study_name]
    return " ".join(f"--{axis} " + " ".join(format(v, ".12g") for v in sorted(study.grid[axis]))
                    for axis in get_study(study_name).INNER)


def aggregate_settings(wildcards):
    force = " --force" if CONFIG["accept_version_mismatch"] else ""
    return f"--seed {CONFIG['seed']} {inner_arguments(wildcards.study)}{force}"


def final_targets():
    return [
        f"{RESULTS}/fits.json",
        f"{RESULTS}/claims.json",
        f"{RESULTS}/report/index.html",
        f"{RESULTS}/report/claims.md",
    ]
