# Validate the config (JSON schema + cross-key checks) before anything is scheduled, and build the grid.
import itertools
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

from svperturb.config import (
    ConfigError,
    check_results_folder,
    settings_arguments,
    study_configs,
    validate_config,
)
from svperturb.results.io import point_path
from svperturb.results.resume import compare_with_existing_shards
from svperturb.studies import batched_axes, get_study, grid_points, job_axes

try:
    CONFIG = validate_config(config)
    # The config's own results folder (relative to the working directory, --directory): shards,
    # merged files, fits, report, logs and benchmarks all go under it.
    check_results_folder(CONFIG["results"], os.getcwd(), workflow.basedir)
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None

STUDIES = study_configs(CONFIG)
RESULTS = os.path.normpath(CONFIG["results"])
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


def _simulate_arguments(study_name, points, shard):
    study = STUDIES[study_name]
    start, stop = study.shard_range(int(shard))
    args = [f"--study {study_name}", "--point " + " ".join(points),
            f"--start {start}", f"--stop {stop}", f"--seed {CONFIG['seed']}",
            f"--keep-spectra {CONFIG['keep_spectra']}", f"--backend {CONFIG['backend']}",
            inner_arguments(study_name), settings_arguments(study.settings)]
    if RESOURCES["device_memory_mb"]:
        args.append(f"--device-memory-mb {RESOURCES['device_memory_mb']}")
    return " ".join(arg for arg in args if arg)


def simulate_arguments(wildcards):
    return _simulate_arguments(wildcards.study, [wildcards.point], wildcards.shard)


# Studies with BATCHED axes: one job per combination of the other axes (job_axes) and shard
# computes the points of every combination of the batched ones, a shard file each (rule
# simulate_<study>); the job axes are the job's wildcards.
BATCHED_STUDIES = [name for name in STUDIES if batched_axes(name)]


def _wildcards(study_name):
    """{axis: "{axis}"} for the study's job axes: Snakemake's wildcards in a path."""
    return {axis: f"{{{axis}}}" for axis in job_axes(study_name)}


def batched_points(study_name):
    """The point paths of one batched job, its job axes as wildcards ({width}, ...)."""
    grid = STUDIES[study_name].grid
    batched = batched_axes(study_name)
    return [point_path({**_wildcards(study_name), **dict(zip(batched, values))},
                       get_study(study_name).AXES)
            for values in itertools.product(*(grid[axis] for axis in batched))]


def batched_shards(study_name):
    return [f"{RESULTS}/shards/{study_name}/{point}/shard-{{shard}}.h5"
            for point in batched_points(study_name)]


def batched_job_path(study_name):
    """The job's own name (logs, benchmarks): its job axes' values and its shard."""
    return f"{point_path(_wildcards(study_name), job_axes(study_name))}/shard-{{shard}}"


def batched_simulate_arguments(study_name):
    templates, axes = batched_points(study_name), job_axes(study_name)  # once, not per job

    def arguments(wildcards):
        values = {axis: getattr(wildcards, axis) for axis in axes}
        return _simulate_arguments(study_name, [p.format(**values) for p in templates],
                                   wildcards.shard)

    return arguments


def inner_arguments(study_name):
    """--skip / --theta lists of a study's inner axes, as simulate and aggregate take them."""
    study = STUDIES[study_name]
    return " ".join(f"--{axis} " + " ".join(format(v, ".12g") for v in sorted(study.grid[axis]))
                    for axis in get_study(study_name).INNER)


def aggregate_settings(wildcards):
    """--seed, the inner axes and the study's own settings (escape's), which every shard must
    match; --force with accept_version_mismatch."""
    force = " --force" if CONFIG["accept_version_mismatch"] else ""
    settings = settings_arguments(STUDIES[wildcards.study].settings)
    settings = f" {settings}" if settings else ""  # other studies' commands stay as they were
    return f"--seed {CONFIG['seed']} {inner_arguments(wildcards.study)}{settings}{force}"


def final_targets():
    return [
        f"{RESULTS}/fits.json",
        f"{RESULTS}/claims.json",
        f"{RESULTS}/report/index.html",
        f"{RESULTS}/report/claims.md",
    ]
