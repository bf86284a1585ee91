"""svperturb's own batched spectra kernels for the GPU (eigenvalue_kernel.cu), one CUDA thread per
matrix: eigenvalues of symmetric matrices (Householder tridiagonalization, then implicit QR steps
with Wilkinson's shift) and singular values (Golub-Kahan bidiagonalization, then the same QR steps
on the Golub-Kahan tridiagonal: the augmented matrix's eigenvalues without forming it).

Why (SPEC section 4): above n = 32 the libraries' batched eigensolver is the spectra engine's
bottleneck on CuPy (eigvalsh of the Gram matrices: 49,000 matrices/s at n = 100, 2,900/s at
n = 200; of the 2n x 2n augmented matrices 3,100/s at n = 100). The kernels stream each matrix
from device memory, entries of neighbouring matrices side by side, so that a warp's 32 threads
read 256 consecutive bytes, and update 4 rows of the trailing block per pass, so that a vector
entry is read once for 4 matrix entries. The symmetric one moves about 0.7 n^3 reads and writes of
8 bytes per matrix (5.7 MB at n = 100), which an H200's 4.3 TB/s would allow at most ~750,000
times a second; the singular-value one about 7 n^3 / 3 (19 MB, ~230,000 a second), against 45 MB
for the 2n x 2n augmented matrix by the symmetric one. Their speed is measured by `svperturb bench` on a GPU;
engine.EIGENVALUE_KERNEL says where the engine uses them.

The same source is plain C: the test suite compiles it with the C compiler and checks it against
LAPACK on the CPU, and compiles its CUDA branch as C++ with CUDA's thread indices emulated in
place of CuPy's compiled kernel, and compiles it with NVRTC and ptxas as CuPy does
(tests/kernel_on_cpu.py): only the GPU itself is left to the GPU tests.
"""

from __future__ import annotations

import logging
from functools import cache
from importlib import resources
from types import ModuleType

import numpy as np

log = logging.getLogger(__name__)

SYMMETRIC = "batched_symmetric_eigenvalues"
SINGULAR = "batched_singular_values"
# Two warps per block: a multiprocessor still fills up (32 blocks of 64 = 2,048 threads), and a
# batch of a few thousand matrices spreads over all of a GPU's multiprocessors instead of a quarter.
THREADS_PER_BLOCK = 64
# NVRTC's options; CuPy adds the GPU's architecture (the tests compile the source with the same
# options for the GPUs svperturb targets, where no GPU is: tests/kernel_on_cpu.py)
NVRTC_OPTIONS = ("--std=c++11",)


def source() -> str:
    """The kernels' source text (CUDA C, and C)."""
    return resources.files("svperturb").joinpath("eigenvalue_kernel.cu").read_text()


def buffers(matrices, name: str, xp: ModuleType = np):
    """(a, work, values): the arrays kernel `name` takes for a stack (samples, n, n): a copy of the
    matrices as (n, n, samples) C-contiguous (entry (i, j) of every matrix side by side), and its
    work and output vectors (entries, samples)."""
    count, n = matrices.shape[0], matrices.shape[-1]
    # a copy in every case: the kernels overwrite it (a transpose of one matrix, or of 1 x 1 ones,
    # is already contiguous, and ascontiguousarray would hand them the caller's array)
    a = xp.asarray(matrices, dtype=xp.float64).transpose(1, 2, 0).copy()
    entries = n if name == SYMMETRIC else 2 * n
    return a, xp.empty((entries, count)), xp.empty((entries, count))


@cache
def _compiled():
    import cupy

    module = cupy.RawModule(code=source(), options=NVRTC_OPTIONS)
    return {name: module.get_function(name) for name in (SYMMETRIC, SINGULAR)}


def kernel_available(xp: ModuleType) -> bool:
    """Whether the kernels run on this array module: CuPy, where they compile (NVRTC)."""
    return xp.__name__.startswith("cupy") and _compiles()


@cache
def _compiles() -> bool:
    """Whether the kernels compile here; logged once when they do not."""
    try:
        _compiled()
    except Exception as error:  # noqa: BLE001 - NVRTC absent or failing: the library's solvers
        log.warning("svperturb's batched spectra kernels do not compile here (%s: %s); the "
                    "library's eigensolver is used instead", type(error).__name__, error)
        return False
    return True


def _launch(name: str, matrices, xp: ModuleType):
    """values (entries, samples) of kernel `name` on a CuPy stack (samples, n, n)."""
    count, n = matrices.shape[0], matrices.shape[-1]
    a, work, values = buffers(matrices, name, xp)
    if count:
        blocks = (count + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
        _compiled()[name]((blocks,), (THREADS_PER_BLOCK,),
                          (a, work, values, np.int32(n), np.int64(count)))
    return values


def symmetric_eigenvalues_by_kernel(matrices, xp: ModuleType):
    """Eigenvalues (samples, n) of each symmetric matrix of a CuPy stack (samples, n, n), decreasing
    (its lower triangle is read); NaN for a matrix on which the QR steps do not converge."""
    return xp.ascontiguousarray(_launch(SYMMETRIC, matrices, xp).T)


def singular_values_by_kernel(matrices, xp: ModuleType):
    """Singular values (samples, n) of each matrix of a CuPy stack (samples, n, n), decreasing:
    the n largest eigenvalues of the augmented [[0, A], [A^T, 0]], reduced to the Golub-Kahan
    tridiagonal without being formed (tiny negative values where s_i = 0); NaN for a matrix on
    which the QR steps do not converge."""
    n = matrices.shape[-1]
    return xp.ascontiguousarray(_launch(SINGULAR, matrices, xp)[:n].T)
