"""`svperturb info --config F --cost`: what a config's simulate jobs will cost, measured on the
machine that runs it before any job is submitted.

Every simulate job of one shard (studies.job_points) is run on a few samples, on one core and the
backend the jobs would use, nothing written: from 1 sample, the count grows until a probe takes
PROBE_SECONDS (so that per-block overheads are spread as in a real block) or reaches the shard.
Its seconds per sample times the job's samples, summed over the shards, is the job's compute; a
study's cost is the sum over its jobs. A job's process also starts Python and imports svperturb
once: measured here by starting `python -m svperturb --version`, and added per job. The estimate
is only as good as the assumption that a sample costs the same at index 0 as at index 10^6 (true
of every study: draws are per sample) and that the probed machine is the one that will run.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from dataclasses import dataclass
from types import ModuleType

from threadpoolctl import threadpool_limits

from svperturb.config import StudyConfig
from svperturb.studies import job_points, simulate_points_range

log = logging.getLogger(__name__)

PROBE_SECONDS = 0.1  # a probe grows until it takes this long (or covers a shard)
PROGRESS_SECONDS = 30.0  # a study's probe reports how far it is at most this often


@dataclass(frozen=True)
class StudyCost:
    """A study's simulate jobs (all shards): their count, the estimated core-seconds of compute
    (all of them, and the longest job's), and the samples probed."""

    name: str
    jobs: int
    core_seconds: float
    longest_job_seconds: float
    probed_samples: int


def process_start_seconds() -> float:
    """Wall time of starting a Python process that imports svperturb's command line (what every
    simulate job pays once), the best of two."""
    best = float("inf")
    for _ in range(2):
        began = time.perf_counter()
        subprocess.run([sys.executable, "-m", "svperturb", "--version"], check=True,
                       capture_output=True)
        best = min(best, time.perf_counter() - began)
    return best


def seconds_per_sample(name: str, points: list[dict], keep_spectra: int, largest: int,
                       xp: ModuleType) -> tuple[float, int]:
    """(seconds per sample, samples of the last probe) of one job of `points`, from probes of
    1, 2, 4, ... samples (at most `largest`) until one takes PROBE_SECONDS."""
    count = 1
    while True:
        began = time.perf_counter()
        simulate_points_range(name, points, 0, count, count, xp, [_discard] * len(points),
                              keep_spectra)
        seconds = time.perf_counter() - began
        if seconds >= PROBE_SECONDS or count >= largest:
            return seconds / count, count
        count = min(largest, 2 * count)


def study_cost(study: StudyConfig, seed: int, keep_spectra: int, xp: ModuleType) -> StudyCost:
    """Probe every job of one shard of `study` (one core) and scale to all its shards."""
    groups = [[{**point, **study.settings, "seed": seed} for point in points]
              for points in job_points(study.name, study.grid)]
    quiet = logging.getLogger("svperturb.studies")  # its per-block progress lines, not for probes
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        with threadpool_limits(1, user_api="blas"):
            return _probe_jobs(study, groups, keep_spectra, xp)
    finally:
        quiet.setLevel(level)


def _probe_jobs(study: StudyConfig, groups: list[list[dict]], keep_spectra: int,
                xp: ModuleType) -> StudyCost:
    largest = min(study.shard_size, study.samples)
    total = longest = 0.0
    probed = 0
    seconds_per_sample(study.name, groups[0], keep_spectra, 1, xp)  # warm-up: first use of a route
    reported = time.perf_counter()
    for k, points in enumerate(groups, 1):
        rate, count = seconds_per_sample(study.name, points, keep_spectra, largest, xp)
        total += rate * study.samples
        longest = max(longest, rate * study.shard_size)
        probed += count * len(points)
        if k < len(groups) and time.perf_counter() - reported >= PROGRESS_SECONDS:
            log.info("cost: %s, %d/%d jobs probed", study.name, k, len(groups))
            reported = time.perf_counter()
    return StudyCost(study.name, len(groups) * study.n_shards, total, longest, probed)


def _discard(*block) -> None:
    """A probe's sink: nothing is written."""


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def format_costs(costs: list[StudyCost], start_seconds: float, device: str,
                 runtime_minutes: int | None = None, ranks: int = 1) -> list[str]:
    """The table `info --cost` prints: per study, its jobs, core time and longest job; then the
    total with the processes' start-up; then a warning for each study whose longest job, shared by
    `ranks`, would outlast the wall-time limit a SLURM job asks for (`runtime_minutes`)."""
    lines = [f"  measured on {device}, one core per job, probing every job of one shard:",
             f"  {'study':20s} {'jobs':>6s} {'core time':>11s} {'longest job':>12s} {'probed':>8s}"]
    for c in costs:
        lines.append(f"  {c.name:20s} {c.jobs:6d} {_duration(c.core_seconds):>11s} "
                     f"{_duration(c.longest_job_seconds):>12s} {c.probed_samples:8d}")
    jobs = sum(c.jobs for c in costs)
    compute = sum(c.core_seconds for c in costs)
    start = jobs * start_seconds
    lines.append(f"  {'total':20s} {jobs:6d} {_duration(compute + start):>11s}   ({(compute + start) / 3600:.2f} "
                 f"core-hours: compute {_duration(compute)}, process start {start_seconds:.2f} s x "
                 f"{jobs} jobs = {_duration(start)}; HDF5 writes not included)")
    for c in costs:
        if runtime_minutes is not None and c.longest_job_seconds / ranks > 60 * runtime_minutes:
            lines.append(f"  warning: {c.name}'s longest job ({_duration(c.longest_job_seconds / ranks)}"
                         f"{f' on {ranks} ranks' if ranks > 1 else ''}) would outlast "
                         f"resources.runtime_minutes ({runtime_minutes}) on a cluster: lower "
                         f"studies.{c.name}.shard_size or raise resources.runtime_minutes")
    return lines
