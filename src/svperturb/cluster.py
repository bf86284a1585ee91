"""Cluster runs: the Snakemake arguments a config implies, and the SLURM jobs a lost run leaves.

A run submitted by `make slurm` names its SLURM jobs `<prefix>_<run id>`, the prefix taken from
the config's results folder (`slurm_job_prefix`), and SLURM records the checkout as each job's
working directory. When Snakemake itself dies (SIGKILL, a lost login session), its queued and
running jobs live on: resumed beside them, a new run would compute the same shards twice and
write beside them. `cancel_orphaned_jobs` finds them by prefix and working directory, cancels
them with scancel and waits until they have left the queue (docs/cluster.md, "Resume").
"""

from __future__ import annotations

import logging
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("svperturb")

# squeue states of a job that may still run, or still be writing
LIVE_STATES = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED",
               "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED")


class ClusterError(RuntimeError):
    """SLURM's commands are missing or failed."""


def slurm_job_prefix(config: dict) -> str:
    """'svperturb-<results folder>', within the SLURM plugin's rule for a job-name prefix
    (letters, digits, '_' and '-', at most 50 characters)."""
    folder = re.sub(r"[^A-Za-z0-9_-]+", "-", str(Path(config["results"]))).strip("-") or "results"
    return f"svperturb-{folder}"[:50]


def cluster_arguments(config: dict) -> list[str]:
    """Snakemake arguments that a config implies for cluster runs: the simulate group's size
    (--group-components takes several values: keep these first) and the jobs' name prefix."""
    size = config["resources"]["group_size"]
    grouping = [f"--group-components simulate={size}"] if size > 1 else []
    return [*grouping, f"--slurm-jobname-prefix {slurm_job_prefix(config)}"]


def _run(command: list[str]) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    except FileNotFoundError:
        raise ClusterError(f"{command[0]}: not found; run this on a SLURM login node") from None
    if result.returncode != 0:
        raise ClusterError(f"{' '.join(command)} failed: {result.stderr.strip()}")
    return result.stdout


def orphaned_jobs(config: dict, workdir: str | Path) -> dict[str, str]:
    """{job id: state} of this user's live SLURM jobs that a run of `config` in `workdir` submitted."""
    prefix, workdir = slurm_job_prefix(config) + "_", Path(workdir).resolve()
    out = _run(["squeue", "--me", "--noheader", "--states", ",".join(LIVE_STATES),
                "--format", "%i|%j|%T|%Z"])
    found = {}
    for line in out.splitlines():
        job, name, state, directory = (line.split("|", 3) + ["", "", ""])[:4]
        if name.startswith(prefix) and Path(directory.strip()).resolve() == workdir:
            found[job.strip()] = state.strip()
    return found


def cancel_orphaned_jobs(config: dict, workdir: str | Path, timeout: float = 600,
                         sleep: Callable[[float], None] = time.sleep) -> list[str]:
    """Cancel the jobs `orphaned_jobs` finds and wait until none is left; returns their ids.

    Run it only while no Snakemake of this config runs in `workdir` (as Snakemake's --unlock)."""
    jobs = orphaned_jobs(config, workdir)
    if not jobs:
        log.info("no SLURM job of an earlier run of this config is left")
        return []
    summary = ", ".join(f"{job} ({state.lower()})" for job, state in sorted(jobs.items()))
    log.info("cancelling %d SLURM job(s) of an earlier run: %s", len(jobs), summary)
    _run(["scancel", *sorted(jobs)])
    deadline = time.monotonic() + timeout
    while left := set(orphaned_jobs(config, workdir)) & set(jobs):
        if time.monotonic() > deadline:
            raise ClusterError(f"jobs {', '.join(sorted(left))} were cancelled but are still in the "
                               f"queue after {timeout:.0f} s; wait for them, then resume")
        sleep(1)
    log.info("the %d job(s) have left the queue", len(jobs))
    return sorted(jobs)
