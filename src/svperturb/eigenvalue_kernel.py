"""svperturb's own batched symmetric eigensolver for the GPU: eigenvalue_kernel.cu, one CUDA thread
per matrix (Householder tridiagonalization, then implicit QR steps with Wilkinson's shift).

Why (SPEC section 4): above n = 32 the libraries' batched eigensolver is the spectra engine's
bottleneck on CuPy (eigvalsh of the Gram matrices: 49,000 matrices/s at n = 100, 2,900/s at
n = 200; of the 2n x 2n augmented matrices 3,100/s at n = 100). The kernel streams each matrix's
lower triangle from device memory, entries of neighbouring matrices side by side, so that a warp's
32 threads read 256 consecutive bytes: about 4 n^3 / 3 reads and writes of 8 bytes per matrix
(11 MB at n = 100), which the GPU's 4 TB/s would allow ~350,000 times a second. Its speed is
measured by `svperturb bench` on a GPU; engine.EIGENVALUE_KERNEL says where the engine uses it.

The same source is plain C: the test suite compiles it with the C compiler and checks it against
LAPACK on the CPU (tests/kernel_on_cpu.py), so only the two lines that map a CUDA thread to its
matrix are left to the GPU tests.
"""

from __future__ import annotations

import logging
from functools import cache
from importlib import resources
from types import ModuleType

import numpy as np

log = logging.getLogger(__name__)

NAME = "batched_symmetric_eigenvalues"
THREADS_PER_BLOCK = 128


def source() -> str:
    """The kernel's source text (CUDA C, and C)."""
    return resources.files("svperturb").joinpath("eigenvalue_kernel.cu").read_text()


def pack_lower(matrices, xp: ModuleType = np):
    """The kernel's input: the lower triangles of a stack (samples, n, n), row by row, as an
    (n (n + 1) / 2, samples) C-contiguous array (entry k of every matrix side by side)."""
    rows, columns = np.tril_indices(matrices.shape[-1])
    return xp.ascontiguousarray(matrices[:, xp.asarray(rows), xp.asarray(columns)].T)


def buffers(matrices, xp: ModuleType = np):
    """(packed, work, values): the kernel's three arrays for a stack (samples, n, n)."""
    count, n = matrices.shape[0], matrices.shape[-1]
    packed = pack_lower(xp.asarray(matrices, dtype=xp.float64), xp)
    return packed, xp.empty((n, count)), xp.empty((n, count))


@cache
def _compiled():
    import cupy

    return cupy.RawModule(code=source(), options=("--std=c++11",)).get_function(NAME)


def kernel_available(xp: ModuleType) -> bool:
    """Whether the kernel runs on this array module: CuPy, where it compiles (NVRTC)."""
    return xp.__name__.startswith("cupy") and _compiles()


@cache
def _compiles() -> bool:
    """Whether the kernel compiles here; logged once when it does not."""
    try:
        _compiled()
    except Exception as error:  # noqa: BLE001 - NVRTC absent or failing: the library's solver
        log.warning("the batched eigenvalue kernel does not compile here (%s: %s); the library's "
                    "eigensolver is used instead", type(error).__name__, error)
        return False
    return True


def symmetric_eigenvalues_by_kernel(matrices, xp: ModuleType):
    """Eigenvalues (samples, n) of each symmetric matrix of a CuPy stack (samples, n, n), decreasing
    (the lower triangle is read); NaN for a matrix on which the QR steps do not converge."""
    count, n = matrices.shape[0], matrices.shape[-1]
    packed, work, values = buffers(matrices, xp)
    if count:
        blocks = (count + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
        _compiled()((blocks,), (THREADS_PER_BLOCK,),
                    (packed, work, values, np.int32(n), np.int64(count)))
    return xp.ascontiguousarray(values.T)
