"""Which array library computes the spectra, and on what device.

Every numerical routine takes the array module `xp` it should use, so NumPy and CuPy share one
code path. `auto` takes CuPy when it imports, sees a GPU and passes a tiny SVD; otherwise NumPy,
with one log line saying why. One GPU per process: an MPI rank (or SLURM task) r of a node with
g visible GPUs uses GPU r % g. On CuPy, failures that cuSOLVER and cuBLAS report in devInfo
(non-convergence, a singular matrix) raise numpy.linalg.LinAlgError, as LAPACK's do on NumPy,
instead of CuPy's default of returning whatever the solver left.
"""

from __future__ import annotations

import logging
import os
import platform
from dataclasses import dataclass
from types import ModuleType

import numpy as np

log = logging.getLogger(__name__)

BACKENDS = ("auto", "numpy", "cupy")

# Environment variables that carry a process's rank among the tasks of a job, in order of trust.
RANK_VARIABLES = ("OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID",
                  "OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID")


class BackendError(RuntimeError):
    """The requested backend cannot run here."""


@dataclass(frozen=True)
class Backend:
    """The chosen array module and a description of the device it runs on."""

    name: str
    xp: ModuleType
    device: str

    @property
    def is_gpu(self) -> bool:
        return self.name == "cupy"


def local_rank() -> int:
    """This process's rank on its node (0 outside MPI / SLURM), from the launcher's environment."""
    for variable in RANK_VARIABLES:
        value = os.environ.get(variable, "")
        if value.isdigit():
            return int(value)
    return 0


def _cpu_description() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"cpu: {model}, {os.cpu_count()} logical cores"


def _cupy_backend(rank: int) -> Backend:
    """CuPy on GPU rank % (number of GPUs); raises BackendError saying why it cannot."""
    try:
        import cupy
        import cupyx
    except Exception as error:  # ImportError, or a CUDA library that fails to load
        raise BackendError(f"CuPy is not importable ({type(error).__name__}: {error}); install "
                           "the extra svperturb[gpu]") from error
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:
        raise BackendError(f"CuPy sees no CUDA device ({type(error).__name__}: {error})") from error
    if count < 1:
        raise BackendError("CuPy sees no CUDA device")
    index = rank % count
    try:
        cupy.cuda.Device(index).use()
        # CuPy ignores devInfo by default; "raise" makes a cuSOLVER failure a LinAlgError, which the
        # engine's fast routes hand on to LAPACK and the studies' framework retries sample by
        # sample, as on NumPy. The setting is per thread: every CuPy call of svperturb runs in the
        # thread that selects the backend.
        cupyx.seterr(linalg="raise")
        probe = cupy.linalg.svd(cupy.eye(3) + 0.5, compute_uv=False)
        cupy.cuda.runtime.deviceSynchronize()
        if not bool(cupy.all(cupy.isfinite(probe))):
            raise BackendError("a 3 x 3 SVD on the GPU returned non-finite values")
        properties = cupy.cuda.runtime.getDeviceProperties(index)
        name = properties["name"]
        name = name.decode() if isinstance(name, bytes) else str(name)
        memory = properties["totalGlobalMem"] / 2**30
    except BackendError:
        raise
    except Exception as error:
        raise BackendError(f"GPU {index} is unusable ({type(error).__name__}: {error})") from error
    return Backend("cupy", cupy, f"gpu {index} of {count}: {name}, {memory:.0f} GiB (local rank {rank})")


def select_backend(requested: str = "auto", rank: int | None = None) -> Backend:
    """Resolve `requested` (one of BACKENDS) to a usable backend and log the choice once.

    `cupy` that cannot run is an error; `auto` falls back to NumPy and says why."""
    if requested not in BACKENDS:
        raise BackendError(f"backend: got {requested!r}; allowed: {', '.join(BACKENDS)}")
    rank = local_rank() if rank is None else rank
    if requested in ("auto", "cupy"):
        try:
            backend = _cupy_backend(rank)
        except BackendError as error:
            if requested == "cupy":
                raise BackendError(f"backend: cupy requested but {error}; use backend auto or "
                                   "numpy") from error
            backend = Backend("numpy", np, _cpu_description())
            log.info("backend auto -> numpy: %s; device %s", error, backend.device)
            return backend
        log.info("backend %s -> cupy; device %s", requested, backend.device)
        return backend
    backend = Backend("numpy", np, _cpu_description())
    log.info("backend numpy; device %s", backend.device)
    return backend


def to_host(array):
    """A NumPy array from a NumPy or CuPy array."""
    return array.get() if hasattr(array, "get") and not isinstance(array, np.ndarray) else np.asarray(array)
