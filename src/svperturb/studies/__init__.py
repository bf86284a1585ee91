"""The experiments: what to sample, which statistics to record. A study is data in, arrays out.

Each study module defines NAME, AXES (grid keys that make a grid point, each with its own
shards), INNER (grid keys vectorised inside a job, because every value is paired with the same
matrices), optionally BATCHED (axes among AXES whose points one job computes in turn, a shard
each: a process per point costs more than the point, and the values do not change the draws) and
`simulate(point, start, stop, xp) -> (per_sample, spectra)`: dicts of arrays whose first axis is
the samples [start, stop), and DATASETS: what each stored dataset holds, its axes, and whether it is
finite for every computable sample (studies/datasets.py; the merged files carry it).
A study may add `simulate_points(points, start, stop, xp)`, a list of what `simulate` gives for
each point, sharing the work the points share: a job of several points calls it once per block.
Full spectra are stored for the samples below a global index `spectra_stop` only (the config's
keep_spectra); a study with PARTIAL_ROWS = True takes it, `simulate(..., spectra_stop=...)`,
and returns spectra rows for [start, min(stop, spectra_stop)) alone, so that it need not compute
the others (unit_variance: s_1 and s_* of the rest by the engine's faster route); the others'
spectra are cut to those rows here.

Numerical faults: a sample whose spectra cannot be computed (LAPACK does not converge, or a NaN or
an infinity lands in one of the study's finite datasets) is recorded, not dropped: the per-sample
dataset `fault` holds FAULT_OK, FAULT_ERROR or FAULT_NON_FINITE, a warning names the sample and the
seed, and readers (io.PointData) leave faulty samples out of every statistic.
"""

from __future__ import annotations

import importlib
import itertools
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from svperturb.linalg.backend import to_host
from svperturb.sampling.ensembles import SEED_CHUNK
from svperturb.studies.datasets import finite_datasets
from svperturb.studies.faults import FAULT_ERROR, FAULT_NAMES, FAULT_NON_FINITE, FAULT_OK

log = logging.getLogger(__name__)

# Study name -> module svperturb.studies.<name>, imported when first used.
STUDIES: tuple[str, ...] = (
    "unit_variance",      # claims 2, 3, 4, 7
    "resnet_layer",       # claims 1, 5, 6, 7, 8
    "convnet_vs_resnet",  # claims 8, 9
    "hard_bounds",        # claim 10
    "relu_layer",         # claims 11, 12
    "depth",              # ConvNet vs ResNet vs a single skip over p layers (40), (44)
    "derivative",         # claim 13
    "data_factor",        # claim 14
    "rho_paths",          # claim 15 (Figure 2)
    "toy_network",        # claim 16 (Figure 8)
    "sharpness",          # Kamber & Parhi (arXiv 2509.25783): sharpness of deep matrix factorization
    "escape",             # claim 24: gradient descent's escape from those minima at eta = 2 / lambda_max
    "smooth_hessian",     # claims 31-33: Banerjee et al. (arXiv 2209.15106), Hessian of smooth networks
    "deep_linear_dynamics",  # claims 28-30: Jacot et al. (arXiv 2106.15933), initialization scale
    "deep_linear_l2",     # claims 25-27: Jacot et al. (arXiv 2106.15933), L2 regularization
)


# The type of each grid axis's values (command line, typed attributes of the merged groups).
AXIS_TYPES: dict[str, type] = {
    "distribution": str,
    "width": int,
    "weight_scale": float,
    "activation_slope": float,
    "activity": float,
    "depth": int,
    "entry_bound": float,
    "weight_pattern": str,
    "batch_size": int,
    "target": str,
    "imbalance": float,
    "activation": str,
    "init_std": float,
    "state": str,
    "teacher_spectrum": str,
    "init_exponent": float,
    "l2": float,
}


class StudyError(ValueError):
    """A study name or a grid point that no study has; the message names the key and the allowed
    values."""


@dataclass(frozen=True)
class StudyConfig:
    """One study's settings with its grid resolved (study overrides applied): its samples per grid
    point, split into shards of shard_size consecutive samples, and the settings only it takes
    (config.study_settings: e.g. escape's max_steps), which every point of it carries."""

    name: str
    samples: int
    shard_size: int
    grid: dict[str, list]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def n_shards(self) -> int:
        return -(-self.samples // self.shard_size)

    def shard_range(self, shard: int) -> tuple[int, int]:
        """Global sample indices [start, stop) of shard `shard`."""
        if not 0 <= shard < self.n_shards:
            raise ValueError(f"shard: got {shard}; allowed: 0..{self.n_shards - 1}")
        start = shard * self.shard_size
        return start, min(start + self.shard_size, self.samples)


def get_study(name: str) -> ModuleType:
    if name not in STUDIES:
        raise StudyError(f"study: got {name!r}; allowed: {', '.join(STUDIES)}")
    return importlib.import_module(f"svperturb.studies.{name}")


def grid_points(name: str, grid: Mapping[str, list]) -> Iterator[dict[str, Any]]:
    """Every grid point of a study (its AXES), inner axes attached as lists."""
    study = get_study(name)
    inner = {axis: sorted(grid[axis]) for axis in study.INNER}
    for values in itertools.product(*(grid[axis] for axis in study.AXES)):
        yield {**dict(zip(study.AXES, values)), **inner}


def batched_axes(name: str) -> tuple[str, ...]:
    """The study's BATCHED axes: one job computes all their points (a shard each)."""
    return tuple(getattr(get_study(name), "BATCHED", ()))


def job_axes(name: str) -> tuple[str, ...]:
    """The axes that tell a study's simulate jobs apart: AXES but the BATCHED ones."""
    return tuple(axis for axis in get_study(name).AXES if axis not in batched_axes(name))


def jobs_per_shard(name: str, grid: Mapping[str, list]) -> int:
    """How many simulate jobs make one shard of every grid point: the job axes' combinations."""
    return math.prod(len(grid[axis]) for axis in job_axes(name))


def job_points(name: str, grid: Mapping[str, list]) -> list[list[dict[str, Any]]]:
    """The grid points of each simulate job of one shard (jobs_per_shard of them): the points
    sharing the values of the job axes, in grid order."""
    jobs: dict[tuple, list[dict[str, Any]]] = {}
    for point in grid_points(name, grid):
        jobs.setdefault(tuple(point[axis] for axis in job_axes(name)), []).append(point)
    return list(jobs.values())


# Most samples per block. On a GPU more: svperturb's spectra kernels (eigenvalue_kernel) run one
# thread per matrix, and an H200 keeps some 84,000 to 100,000 of their threads resident at once
# (132 multiprocessors; 20 and 24 warps each by their registers, ptxas): a block of 8,192 matrices
# would leave most of it idle.
BLOCK_CAP, GPU_BLOCK_CAP = 8192, 65536
# Bytes per sample of a study without its own bytes_per_sample, in n x n float64 matrices: peaks of
# 2 to 7 (NumPy's routes) and 3.5 to 10 (CuPy's routes forced on NumPy) were measured with
# tracemalloc for the four such studies at n = 64, whatever the number of skip values (their loops
# over inner values free each value's arrays); the rest is head-room for a GPU library's workspace,
# which tracemalloc does not see (an out-of-memory error still halves the block).
MATRICES_PER_SAMPLE = 16


def block_size_for(name: str, point: Mapping[str, Any], memory_mb: int,
                   device_free_bytes: int | None = None) -> int:
    """Matrices per block so that one block's arrays stay within about half of `memory_mb`.

    A study may say what one sample needs in bytes (`bytes_per_sample(point)`); otherwise a block
    holds MATRICES_PER_SAMPLE n x n float64 matrices per sample. The interpreter and libraries take
    ~200 MB of the budget. On a GPU those arrays live in device memory, within half the free
    device memory (`device_free_bytes`), and a block may hold more samples (GPU_BLOCK_CAP); the
    host, within half of `memory_mb` (a scheduler kills a job that exceeds what it granted), keeps
    the block's results, and its draws: a study with bytes_per_sample whole, the others one piece
    at a time whatever the block's size (ensembles.unit_variance_matrices with xp: about
    DEVICE_TRANSFER_BYTES, twice while drawn; 1 GB at n = 1000, where a piece is a seed chunk).
    """
    study = get_study(name)
    host_budget = max(memory_mb - 200, 50) * 2**20 // 2
    if hasattr(study, "bytes_per_sample"):
        per_sample = on_host = int(study.bytes_per_sample(point))
    else:
        n = point["width"]
        per_sample = MATRICES_PER_SAMPLE * n * n * 8
        # results: fewer than 16 values per inner value and a kept spectrum, per sample
        on_host = 8 * (n + 16 * (1 + sum(len(point[axis]) for axis in study.INNER)))
    if device_free_bytes is None:
        block = min(host_budget // per_sample, BLOCK_CAP)
    else:
        block = min(device_free_bytes // 2 // per_sample, host_budget // on_host, GPU_BLOCK_CAP)
    block = max(1, block)
    return block - block % SEED_CHUNK if block >= SEED_CHUNK else block


def simulate_range(
    name: str,
    point: Mapping[str, Any],
    start: int,
    stop: int,
    block_size: int,
    xp: ModuleType,
    sink: Callable[[int, dict, dict], None],
    spectra_stop: int | None = None,
) -> None:
    """Simulate samples [start, stop) in blocks of `block_size`, handing each block to `sink`.

    `sink(offset, per_sample, spectra)` receives host (NumPy) arrays; offset counts from `start`;
    spectra hold the block's samples below `spectra_stop` (None: all). Logs progress with an
    estimate of the time left.
    """
    simulate_points_range(name, [point], start, stop, block_size, xp, [sink], spectra_stop)


def simulate_points_range(
    name: str,
    points: Sequence[Mapping[str, Any]],
    start: int,
    stop: int,
    block_size: int,
    xp: ModuleType,
    sinks: Sequence[Callable[[int, dict, dict], None]],
    spectra_stop: int | None = None,
) -> None:
    """simulate_range for the points of one job (a BATCHED study's), block by block and, within a
    block, point by point: `sinks[k]` receives point k's blocks. A study with
    `simulate_points(points, start, stop, xp)` computes a block of all of them at once, sharing
    what the points share (hard_bounds: the draws); the values are those of `simulate` alone.
    """
    if len(sinks) != len(points):
        raise ValueError(f"{len(points)} points but {len(sinks)} sinks")
    study = get_study(name)
    began = time.perf_counter()
    total = stop - start
    block_start = start
    # per point: blocks none of whose samples could be computed
    failed: list[list[tuple[int, int]]] = [[] for _ in points]
    while block_start < stop:
        block_stop = min(block_start + block_size, stop)
        try:
            results = _simulate_block(study, points, block_start, block_stop, xp, spectra_stop)
        except Exception as error:
            if not is_out_of_memory(error) or block_size == 1:
                raise
            # results do not depend on the block size (draws are per sample): retry smaller
            _free_device_memory(xp)
            block_size = max(1, block_size // 2)
            log.warning("%s: out of memory on a block of %d samples (%s); retrying with blocks "
                        "of %d", name, block_stop - block_start, type(error).__name__, block_size)
            continue
        for result, sink, gaps in zip(results, sinks, failed):
            if result is None:
                gaps.append((block_start, block_stop))
                continue
            sink(block_start - start, *result)
            for a, b in gaps:  # rows of NaN / zeros shaped like this block's
                sink(a - start, *_blank_rows(*result, b - a, spectra_rows(a, b, spectra_stop)))
            gaps.clear()
        block_start = block_stop
        done = block_stop - start
        elapsed = time.perf_counter() - began
        log.info(
            "%s: %d/%d samples (%.0f%%)%s, %.1f s elapsed, ~%.1f s left",
            name, done, total, 100 * done / total,
            f" of {len(points)} points" if len(points) > 1 else "", elapsed,
            elapsed * (total - done) / done,
        )
    if any(failed):
        raise RuntimeError(f"{name}: no sample of [{start}, {stop}) could be computed (numerical "
                           "errors for every sample; see the warnings above)")


class _EverySampleFailed(Exception):
    """No sample of a block could be computed: its rows wait for another block's layout."""


def is_numerical_error(error: BaseException) -> bool:
    """LAPACK / cuSOLVER non-convergence or a NaN refused by a library (not a bug in the code)."""
    return isinstance(error, (np.linalg.LinAlgError, FloatingPointError)) or (
        isinstance(error, ValueError) and "infs or NaNs" in str(error))


def spectra_rows(start: int, stop: int, spectra_stop: int | None) -> int:
    """How many of the samples [start, stop) lie below `spectra_stop` (None: all of them)."""
    if spectra_stop is None:
        return stop - start
    return min(max(spectra_stop - start, 0), stop - start)


def _call_study(study: ModuleType, points, start: int, stop: int, xp,
                spectra_stop: int | None) -> list[tuple[dict, dict]]:
    """Each point's (per_sample, spectra) as host arrays, spectra cut to the samples below
    `spectra_stop`: study.simulate_points for several points where the study has it, else
    study.simulate for each."""
    partial = {"spectra_stop": spectra_stop} if getattr(study, "PARTIAL_ROWS", False) else {}
    if len(points) > 1 and hasattr(study, "simulate_points"):
        results = study.simulate_points(points, start, stop, xp, **partial)
    else:
        results = [study.simulate(point, start, stop, xp, **partial) for point in points]
    rows = spectra_rows(start, stop, spectra_stop)
    out = []
    for per_sample, spectra in results:
        spectra = {key: values[:rows] for key, values in spectra.items()}  # before leaving the device
        for key, values in spectra.items():
            if len(values) != rows:
                raise RuntimeError(f"{study.NAME}: spectra/{key} has {len(values)} rows for "
                                   f"samples [{start}, {stop}) with spectra_stop {spectra_stop}; "
                                   f"expected {rows}")
        out.append((_to_host(per_sample), _to_host(spectra)))
    return out


def _simulate_block(study: ModuleType, points, start: int, stop: int, xp,
                    spectra_stop: int | None = None) -> list[tuple[dict, dict] | None]:
    """Per point, host arrays of samples [start, stop) with the per-sample `fault` dataset
    (spectra for the samples below `spectra_stop`), or None where no sample could be computed.

    A numerical error for the block is retried point by point (where there are several), then
    sample by sample: the samples that fail again get FAULT_ERROR and rows of NaN (floats) or
    zeros (integers); the others are computed as usual.
    """
    try:
        outcomes = [(per_sample, spectra, np.zeros(stop - start, dtype=np.uint8), {})
                    for per_sample, spectra in _call_study(study, points, start, stop, xp,
                                                           spectra_stop)]
    except Exception as error:
        if not is_numerical_error(error):
            raise
        log.warning("%s: samples [%d, %d): %s: %s; computing them %s", study.NAME, start, stop,
                    type(error).__name__, error,
                    "point by point" if len(points) > 1 else "one at a time")
        outcomes = [_point_alone(study, point, start, stop, xp, spectra_stop, len(points) > 1)
                    for point in points]
    return [None if outcome is None else _with_faults(study, point, start, stop, *outcome)
            for point, outcome in zip(points, outcomes)]


def _point_alone(study: ModuleType, point, start: int, stop: int, xp, spectra_stop: int | None,
                 whole_block_first: bool):
    """(per_sample, spectra, fault, errors) of one point after a numerical error in its block, or
    None where no sample could be computed."""
    if whole_block_first:
        try:
            [(per_sample, spectra)] = _call_study(study, [point], start, stop, xp, spectra_stop)
            return per_sample, spectra, np.zeros(stop - start, dtype=np.uint8), {}
        except Exception as error:
            if not is_numerical_error(error):
                raise
    try:
        return _sample_by_sample(study, point, start, stop, xp, spectra_stop)
    except _EverySampleFailed:
        return None


def _with_faults(study: ModuleType, point, start: int, stop: int, per_sample, spectra, fault,
                 errors) -> tuple[dict, dict]:
    """Marks the samples with a non-finite value in a finite dataset, warns of every fault, adds
    `fault`."""
    non_finite = _non_finite_rows(study, stop - start, {
        **per_sample, **{f"spectra/{k}": v for k, v in spectra.items()}})
    fault[(fault == FAULT_OK) & non_finite] = FAULT_NON_FINITE
    for offset in np.flatnonzero(fault):
        index = start + int(offset)
        log.warning("%s: numerical fault at sample %d (seed %s, point %s): %s; recorded in the "
                    "dataset `fault` and left out of every statistic", study.NAME, index,
                    point.get("seed"), {k: v for k, v in point.items() if k != "seed"},
                    errors.get(index, FAULT_NAMES[int(fault[offset])]))
    return {**per_sample, "fault": fault}, spectra


def _sample_by_sample(study: ModuleType, point, start: int, stop: int, xp,
                      spectra_stop: int | None):
    rows, errors = [], {}
    for index in range(start, stop):
        try:
            [row] = _call_study(study, [point], index, index + 1, xp, spectra_stop)
            rows.append(row)
        except Exception as error:
            if not is_numerical_error(error):
                raise
            errors[index] = f"{type(error).__name__}: {error}"
            rows.append(None)
    template = next((row for row in rows if row is not None), None)
    if template is None:
        for index, error in errors.items():
            log.warning("%s: sample %d (seed %s): %s", study.NAME, index, point.get("seed"), error)
        raise _EverySampleFailed
    fault = np.array([FAULT_ERROR if row is None else FAULT_OK for row in rows], dtype=np.uint8)
    rows = [_blank_rows(*template, 1, spectra_rows(index, index + 1, spectra_stop)) if row is None
            else row for index, row in zip(range(start, stop), rows)]
    per_sample = {key: np.concatenate([row[0][key] for row in rows]) for key in template[0]}
    spectra = {key: np.concatenate([row[1][key] for row in rows]) for key in template[1]}
    return per_sample, spectra, fault, errors


def _blank_rows(per_sample: Mapping[str, np.ndarray], spectra: Mapping[str, np.ndarray],
                count: int, spectra_count: int) -> tuple[dict, dict]:
    """`count` rows (`spectra_count` of spectra) shaped like the given arrays: NaN (floats), zeros
    (integers, booleans), and FAULT_ERROR in `fault`."""
    def blank(like: np.ndarray, count: int = count) -> np.ndarray:
        shape = (count, *like.shape[1:])
        return (np.zeros(shape, like.dtype) if like.dtype.kind in "biu"
                else np.full(shape, np.nan, like.dtype))

    per = {key: blank(value) for key, value in per_sample.items()}
    if "fault" in per:
        per["fault"][:] = FAULT_ERROR
    return per, {key: blank(value, spectra_count) for key, value in spectra.items()}


def _non_finite_rows(study: ModuleType, size: int, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """Which of `size` samples have a NaN or an infinity in one of the study's finite datasets
    (spectra: of the first samples, those that have one)."""
    bad = np.zeros(size, dtype=bool)
    for key in finite_datasets(study.DATASETS):
        values = arrays[key]
        if len(values):
            bad[:len(values)] |= ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
    return bad


def is_out_of_memory(error: BaseException) -> bool:
    """A host MemoryError or CuPy's (cupy.cuda.memory.OutOfMemoryError, cuSOLVER/cuBLAS alloc)."""
    return isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError" or (
        "CUBLAS_STATUS_ALLOC_FAILED" in str(error) or "CUSOLVER_STATUS_ALLOC_FAILED" in str(error))


def _free_device_memory(xp: ModuleType) -> None:
    if xp.__name__.startswith("cupy"):
        xp.get_default_memory_pool().free_all_blocks()


def _to_host(arrays: Mapping[str, Any]) -> dict[str, Any]:
    return {k: to_host(v) for k, v in arrays.items()}
