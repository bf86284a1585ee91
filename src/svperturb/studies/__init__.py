"""The experiments: what to sample, which statistics to record. A study is data in, arrays out.

Each study module defines NAME, AXES (grid keys that make a job), INNER (grid keys vectorised
inside a job, because every value is paired with the same matrices) and
`simulate(point, start, stop, xp) -> (per_sample, spectra)`: dicts of arrays whose first axis is
the samples [start, stop).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from types import ModuleType
from typing import Any

from svperturb.config import ConfigError
from svperturb.ensembles import SEED_CHUNK
from svperturb.studies import convnet_vs_resnet, resnet_layer, unit_variance

log = logging.getLogger(__name__)

STUDIES: dict[str, ModuleType] = {
    module.NAME: module for module in (unit_variance, resnet_layer, convnet_vs_resnet)
}


def get_study(name: str) -> ModuleType:
    try:
        return STUDIES[name]
    except KeyError:
        raise ConfigError(f"study: got {name!r}; allowed: {', '.join(STUDIES)}") from None


def grid_points(name: str, grid: Mapping[str, list]) -> Iterator[dict[str, Any]]:
    """Every job-level grid point of a study (its AXES), inner axes attached as lists."""
    study = get_study(name)
    inner = {axis: sorted(grid[axis]) for axis in study.INNER}
    for values in itertools.product(*(grid[axis] for axis in study.AXES)):
        yield {**dict(zip(study.AXES, values)), **inner}


def block_size_for(name: str, point: Mapping[str, Any], memory_mb: int) -> int:
    """Matrices per block so that one block's arrays stay within about half of `memory_mb`.

    A block holds, per sample and per inner value, a few n x n float64 matrices (inputs, the
    LAPACK copy and workspace); the interpreter and libraries take ~200 MB of the budget.
    """
    n = point["width"]
    copies = 6 * (1 + sum(len(point[axis]) for axis in get_study(name).INNER))
    per_sample = copies * n * n * 8
    budget = max(memory_mb - 200, 50) * 2**20 // 2
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
    for block_start in range(start, stop, block_size):
        block_stop = min(block_start + block_size, stop)
        per_sample, spectra = study.simulate(point, block_start, block_stop, xp)
        sink(block_start - start, _to_host(per_sample, xp), _to_host(spectra, xp))
        done = block_stop - start
        elapsed = time.perf_counter() - began
        log.info(
            "%s: %d/%d samples (%.0f%%), %.1f s elapsed, ~%.1f s left",
            name, done, total, 100 * done / total, elapsed, elapsed * (total - done) / done,
        )


def _to_host(arrays: Mapping[str, Any], xp: ModuleType) -> dict[str, Any]:
    if xp.__name__ == "numpy":
        return dict(arrays)
    return {k: xp.asnumpy(v) for k, v in arrays.items()}
