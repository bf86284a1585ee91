"""MPI ranks inside one simulate job (mpi4py).

The shard's sample blocks (of every point of a batched job) are dealt round-robin to the ranks;
after each round rank 0 gathers the blocks in sample order and alone writes them (h5py's wheels
have no parallel HDF5). Every sample's draws depend only on its index, so the shard is
bit-identical for any number of ranks. Without mpi4py, or outside an MPI launcher, or with one
rank, it is one process.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from svperturb.studies import simulate_points_range

log = logging.getLogger(__name__)

# Set by mpiexec (MPICH's hydra, Open MPI) or srun --mpi=pmi2/pmix in every rank's environment.
LAUNCHER_VARIABLES = ("PMI_RANK", "PMI_SIZE", "PMI_FD", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE",
                      "MPI_LOCALNRANKS", "HYDRA_CONTROL_FD")


@dataclass(frozen=True)
class World:
    """This process's place among the ranks of its job; comm is None for a single process."""

    rank: int = 0
    size: int = 1
    comm: Any = None

    @property
    def is_root(self) -> bool:
        return self.rank == 0


def launched_by_mpi(environ: Mapping[str, str] | None = None) -> bool:
    environ = os.environ if environ is None else environ
    return any(variable in environ for variable in LAUNCHER_VARIABLES)


def world() -> World:
    """MPI's COMM_WORLD when this process was started by an MPI launcher and mpi4py imports;
    otherwise a single-process world (with a log line when a launcher is seen but mpi4py is not)."""
    if not launched_by_mpi():
        return World()
    try:
        from mpi4py import MPI
    except ImportError as error:
        log.warning("started by an MPI launcher but mpi4py is not importable (%s): running as "
                    "one process; install svperturb[mpich]", error)
        return World()
    comm = MPI.COMM_WORLD
    if comm.Get_size() == 1:
        return World()
    return World(comm.Get_rank(), comm.Get_size(), comm)


def simulate_range_ranks(
    name: str,
    points: Sequence[Mapping[str, Any]],
    start: int,
    stop: int,
    block_size: int,
    xp: ModuleType,
    sinks: Sequence[Callable[[int, dict, dict], None]],
    here: World,
    spectra_stop: int | None = None,
) -> None:
    """simulate_points_range over `here.size` ranks: a rank computes a block of every point, and
    `sinks[k]` (point k's) is called on rank 0 only, block by block in sample order. A failure on
    any rank is raised on every rank (as RuntimeError naming it)."""
    if here.size == 1:
        simulate_points_range(name, points, start, stop, block_size, xp, sinks, spectra_stop)
        return
    blocks = [(b, min(b + block_size, stop)) for b in range(start, stop, block_size)]
    for first in range(0, len(blocks), here.size):
        mine = first + here.rank
        result = None
        if mine < len(blocks):
            b0, b1 = blocks[mine]
            parts: list[list] = [[] for _ in points]
            try:
                simulate_points_range(
                    name, points, b0, b1, b1 - b0, xp,
                    [lambda offset, per, spectra, b0=b0, part=part:
                     part.append((b0 + offset, per, spectra)) for part in parts], spectra_stop)
                result = ("ok", parts)
            except Exception as error:  # reported to every rank below, never swallowed
                result = ("error", (f"rank {here.rank}, samples [{b0}, {b1}): "
                                    f"{type(error).__name__}: {error}"))
        gathered = here.comm.gather(result, root=0)
        failure = None
        if here.is_root:
            failure = next((r[1] for r in gathered if r is not None and r[0] == "error"), None)
            if failure is None:
                try:
                    for r in gathered:
                        for sink, part in zip(sinks, r[1] if r is not None else []):
                            for offset, per, spectra in part:
                                sink(offset - start, per, spectra)
                except Exception as error:  # e.g. a full disk: the other ranks must stop too
                    failure = f"rank 0 writing: {type(error).__name__}: {error}"
                done = min(first + here.size, len(blocks))
                log.info("%s: %d/%d blocks on %d ranks", name, done, len(blocks), here.size)
        failure = here.comm.bcast(failure, root=0)
        if failure is not None:
            raise RuntimeError(f"simulate failed on {failure}")
