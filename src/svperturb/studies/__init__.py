"""The experiments: what to sample, which statistics to record. A study is data in, arrays out.

Each study module defines NAME, AXES (grid keys that make a job), INNER (grid keys vectorised
inside a job, because every value is paired with the same matrices) and
`simulate(point, start, stop, xp) -> (per_sample, spectra)`: dicts of arrays whose first axis is
the samples [start, stop).
"""

from __future__ import annotations

import importlib
import itertools
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from types import ModuleType
from typing import Any

from svperturb.backend import to_host
from svperturb.config import ConfigError
from svperturb.ensembles import SEED_CHUNK

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
)


def get_study(name: str) -> ModuleType:
    if name not in STUDIES:
        raise ConfigError(f"study: got {name!r}; allowed: {', '.join(STUDIES)}")
    return importlib.import_module(f"svperturb.studies.{name}")


def grid_points(name: str, grid: Mapping[str, list]) -> Iterator[dict[str, Any]]:
    """Every job-level grid point of a study (its AXES), inner axes attached as lists."""
    study = get_study(name)
    inner = {axis: sorted(grid[axis]) for axis in study.INNER}
    for values in itertools.product(*(grid[axis] for axis in study.AXES)):
        yield {**dict(zip(study.AXES, values)), **inner}


def block_size_for(name: str, point: Mapping[str, Any], memory_mb: int,
                   device_free_bytes: int | None = None) -> int:
    """Matrices per block so that one block's arrays stay within about half of `memory_mb`.

    A study may say what one sample needs in bytes (`bytes_per_sample(point)`); otherwise a block
    holds, per sample and per inner value, a few n x n float64 matrices (inputs, the LAPACK copy
    and workspace). The interpreter and libraries take ~200 MB of the budget. On a GPU the budget
    is half the free device memory (`device_free_bytes`).
    """
    study = get_study(name)
    if hasattr(study, "bytes_per_sample"):
        per_sample = int(study.bytes_per_sample(point))
    else:
        n = point["width"]
        copies = 6 * (1 + sum(len(point[axis]) for axis in study.INNER))
        per_sample = copies * n * n * 8
    budget = max(memory_mb - 200, 50) * 2**20 // 2
    if device_free_bytes is not None:  # on a GPU the arrays live in device memory
        budget = device_free_bytes // 2
    block = max(1, min(budget // per_sample, 8192))
    return block - block % SEED_CHUNK if block >= SEED_CHUNK else block


def simulate_range(
    name: str,
    point: Mapping[str, Any],
    start: int,
    stop: int,
    block_size: int,
    xp: ModuleType,
    sink: Callable[[int, dict, dict], None],
) -> None:
    """Simulate samples [start, stop) in blocks of `block_size`, handing each block to `sink`.

    `sink(offset, per_sample, spectra)` receives host (NumPy) arrays; offset counts from `start`.
    Logs progress with an estimate of the time left.
    """
    study = get_study(name)
    began = time.perf_counter()
    total = stop - start
    block_start = start
    while block_start < stop:
        block_stop = min(block_start + block_size, stop)
        try:
            per_sample, spectra = study.simulate(point, block_start, block_stop, xp)
        except Exception as error:
            if not is_out_of_memory(error) or block_size == 1:
                raise
            # results do not depend on the block size (draws are per sample): retry smaller
            _free_device_memory(xp)
            block_size = max(1, block_size // 2)
            log.warning("%s: out of memory on a block of %d samples (%s); retrying with blocks "
                        "of %d", name, block_stop - block_start, type(error).__name__, block_size)
            continue
        sink(block_start - start, _to_host(per_sample), _to_host(spectra))
        block_start = block_stop
        done = block_stop - start
        elapsed = time.perf_counter() - began
        log.info(
            "%s: %d/%d samples (%.0f%%), %.1f s elapsed, ~%.1f s left",
            name, done, total, 100 * done / total, elapsed, elapsed * (total - done) / done,
        )


def is_out_of_memory(error: BaseException) -> bool:
    """A host MemoryError or CuPy's (cupy.cuda.memory.OutOfMemoryError, cuSOLVER/cuBLAS alloc)."""
    return isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError" or (
        "CUBLAS_STATUS_ALLOC_FAILED" in str(error) or "CUSOLVER_STATUS_ALLOC_FAILED" in str(error))


def _free_device_memory(xp: ModuleType) -> None:
    if xp.__name__.startswith("cupy"):
        xp.get_default_memory_pool().free_all_blocks()


def _to_host(arrays: Mapping[str, Any]) -> dict[str, Any]:
    return {k: to_host(v) for k, v in arrays.items()}
