"""svperturb's own batched spectra kernels for the GPU (eigenvalue_kernel.cu): eigenvalues of
symmetric matrices (Householder tridiagonalization, then implicit QR steps with Wilkinson's shift)
and singular values (Golub-Kahan bidiagonalization, then the same QR steps on the Golub-Kahan
tridiagonal: the augmented matrix's eigenvalues without forming it). Two kinds: the streaming
kernels, one CUDA thread per matrix in device memory, and the tile kernels, one thread block per
matrix in shared memory (up to widest_tile: n <= 168 on an H100 or H200), whose tridiagonal goes
to a third kernel, one thread per matrix, for the QR steps.

Why (docs/engine.md, Reference rates): above n = 32 the libraries' batched eigensolver is the spectra engine's
bottleneck on CuPy (eigvalsh of the Gram matrices: 49,000 matrices/s at n = 100, 2,900/s at
n = 200; of the 2n x 2n augmented matrices 3,100/s at n = 100). The streaming kernels read each
matrix from device memory, entries of neighbouring matrices side by side, so that a warp's 32
threads read 256 consecutive bytes, and update 4 rows of the trailing block per pass, so that a
vector entry is read once for 4 matrix entries. The symmetric one moves about 0.7 n^3 reads and writes of
8 bytes per matrix (5.7 MB at n = 100), which an H200's 4.3 TB/s would allow at most ~750,000
times a second; the singular-value one about 7 n^3 / 3 (19 MB, ~230,000 a second), against 45 MB
for the 2n x 2n augmented matrix by the symmetric one. The tile kernels read it from device
memory once (80 kB at n = 100) and make their passes in shared memory. Their speed is measured by
`svperturb bench --kernel-sweep` on a GPU; engine.EIGENVALUE_KERNEL says where the engine uses
kernels, WIDEST_TILE up to which width the tile ones.

The streaming kernels' source is also plain C: the test suite compiles it with the C compiler and
checks it against LAPACK on the CPU. It compiles the CUDA branch as C++, each block's threads
std::threads meeting at a barrier, in place of CuPy's compiled kernels, once more with
ThreadSanitizer (the tile kernels' threads share memory), and compiles it with NVRTC and ptxas as
CuPy does (tests/support/kernel_on_cpu.py): only the GPU itself is left to the GPU tests.
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
TILE_TRIDIAGONALIZE = "tile_tridiagonalize"
TILE_BIDIAGONALIZE = "tile_bidiagonalize"
TRIDIAGONAL = "batched_tridiagonal_eigenvalues"
KERNELS = (SYMMETRIC, SINGULAR, TILE_TRIDIAGONALIZE, TILE_BIDIAGONALIZE, TRIDIAGONAL)
# The widest matrices the tile kernels take (None: as wide as a block's shared memory holds): a
# design estimate until `svperturb bench --kernel-sweep` on a GPU suggests a value. By arithmetic
# they move the matrix through device memory once instead of about 0.7 n times (5.7 MB at n = 100
# for the streaming symmetric kernel), their passes reading shared memory instead.
WIDEST_TILE: int | None = None
# Two warps per block: a multiprocessor still fills up (32 blocks of 64 = 2,048 threads), and a
# batch of a few thousand matrices spreads over all of a GPU's multiprocessors instead of a quarter.
THREADS_PER_BLOCK = 64
# NVRTC's options; CuPy adds the GPU's architecture (the tests compile the source with the same
# options for the GPUs svperturb targets, where no GPU is: tests/support/kernel_on_cpu.py)
NVRTC_OPTIONS = ("--std=c++11",)


def source() -> str:
    """The kernels' source text (CUDA C, and C)."""
    return resources.files(__package__).joinpath("eigenvalue_kernel.cu").read_text()


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
    kernels = {name: module.get_function(name) for name in KERNELS}
    for name in (TILE_TRIDIAGONALIZE, TILE_BIDIAGONALIZE):  # once: tiles may exceed 48 kB
        kernels[name].max_dynamic_shared_size_bytes = _device_shared_limit(cupy.cuda.Device().id)
        # all of a multiprocessor's L1 as shared memory (a hint): two tiles of n = 100 fit
        kernels[name].preferred_shared_memory_carveout = 100
    return kernels


def kernel_resources() -> dict[str, dict[str, int]]:
    """Per compiled kernel, as the GPU's driver loaded it: registers per thread and local memory
    (bytes per thread, where spilled registers and arrays indexed at run time go): what the tests
    read from ptxas where no GPU is (tests/support/kernel_on_cpu.gpu_resources)."""
    return {name: {"registers": int(kernel.attributes["num_regs"]),
                   "local_bytes": int(kernel.attributes["local_size_bytes"])}
            for name, kernel in _compiled().items()}


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


def _one_thread_per_matrix(count: int) -> tuple[tuple[int], tuple[int]]:
    """(grid, block) of a launch with a thread for each of `count` matrices."""
    return ((count + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK,), (THREADS_PER_BLOCK,)


def _launch(name: str, matrices, xp: ModuleType):
    """values (entries, samples) of kernel `name` on a CuPy stack (samples, n, n)."""
    count, n = matrices.shape[0], matrices.shape[-1]
    a, work, values = buffers(matrices, name, xp)
    if count:
        _compiled()[name](*_one_thread_per_matrix(count),
                          (a, work, values, np.int32(n), np.int64(count)))
    return values


def tile_threads(n: int) -> int:
    """Threads of a tile kernel's block at width n: a power of two (the sums halve it) at least n
    (a line of each pass per thread), from 32 to 256."""
    return min(256, max(32, 1 << (n - 1).bit_length()))


def tile_bytes(n: int) -> int:
    """Shared memory of a tile kernel's block at width n: the matrix (rows of stride n | 1), two
    vectors of n and an entry per thread for the sums (eigenvalue_kernel.cu)."""
    return 8 * (n * (n | 1) + 2 * n + tile_threads(n))


def _shared_limit(xp: ModuleType) -> int:
    """The most shared memory one block may ask for on xp's device (0 where there is none)."""
    if not xp.__name__.startswith("cupy"):
        return 0
    return _device_shared_limit(xp.cuda.Device().id)


@cache
def _device_shared_limit(device: int) -> int:
    import cupy

    return int(cupy.cuda.Device(device).attributes["MaxSharedMemoryPerBlockOptin"])


@cache
def _widest_fitting(limit: int) -> int:
    n = 0
    while tile_bytes(n + 1) <= limit:
        n += 1
    return n


def widest_tile(xp: ModuleType) -> int:
    """The widest matrices the tile kernels take on xp's device: those whose tile fits in a
    block's shared memory, and at most WIDEST_TILE (0: none)."""
    widest = _widest_fitting(_shared_limit(xp))
    return widest if WIDEST_TILE is None else min(widest, WIDEST_TILE)


def uses_tile(n: int, xp: ModuleType) -> bool:
    """Whether the kernels reduce width-n matrices by the tile kernels (one block per matrix, in
    shared memory) rather than the streaming ones (one thread per matrix, in device memory): up to
    widest_tile, once the tile kernels agreed with the streaming ones on this GPU
    (_tile_agrees)."""
    return n <= widest_tile(xp) and _tile_agrees()


def _launch_tile(name: str, matrices, xp: ModuleType):
    """d (entries, samples): tile kernel `name`, then the tridiagonal QR steps, on a stack."""
    count, n = matrices.shape[0], matrices.shape[-1]
    a = xp.ascontiguousarray(matrices, dtype=xp.float64)  # read only
    entries = n if name == TILE_TRIDIAGONALIZE else 2 * n
    d, e = xp.empty((entries, count)), xp.empty((entries, count))
    if count:
        kernels = _compiled()
        kernels[name]((count,), (tile_threads(n),), (a, d, e, np.int32(n), np.int64(count)),
                      shared_mem=tile_bytes(n))
        kernels[TRIDIAGONAL](*_one_thread_per_matrix(count),
                             (d, e, np.int32(entries), np.int64(count)))
    return d


def _by_kernel(matrices, xp: ModuleType, tile: bool | None, streaming: str, tiled: str):
    """The first n values (samples, n) of the streaming kernel or of the tile kernel (`tile`;
    None: uses_tile) on a stack (samples, n, n)."""
    n = matrices.shape[-1]
    if uses_tile(n, xp) if tile is None else tile:
        values = _launch_tile(tiled, matrices, xp)
    else:
        values = _launch(streaming, matrices, xp)
    return xp.ascontiguousarray(values[:n].T)


def symmetric_eigenvalues_by_kernel(matrices, xp: ModuleType, tile: bool | None = None):
    """Eigenvalues (samples, n) of each symmetric matrix of a CuPy stack (samples, n, n), decreasing
    (its lower triangle is read); NaN for a matrix on which the QR steps do not converge. By the
    tile kernels where `tile` (None: uses_tile), else by the streaming one."""
    return _by_kernel(matrices, xp, tile, SYMMETRIC, TILE_TRIDIAGONALIZE)


def singular_values_by_kernel(matrices, xp: ModuleType, tile: bool | None = None):
    """Singular values (samples, n) of each matrix of a CuPy stack (samples, n, n), decreasing:
    the n largest eigenvalues of the augmented [[0, A], [A^T, 0]], reduced to the Golub-Kahan
    tridiagonal without being formed (tiny negative values where s_i = 0); NaN for a matrix on
    which the QR steps do not converge. By the tile kernels where `tile` (None: uses_tile)."""
    return _by_kernel(matrices, xp, tile, SINGULAR, TILE_BIDIAGONALIZE)


@cache
def _tile_agrees() -> bool:
    """Whether, on this GPU, the tile kernels give the streaming ones' values (within 8 n eps of
    the largest) on a few matrices at n = 40 and at n = 100 (where they ask for more than the
    default shared memory); logged once when they do not, and the streaming kernels used."""
    import cupy

    rng = np.random.default_rng(0)
    try:
        for n in (40, 100):
            a = cupy.asarray(rng.standard_normal((3, n, n)))
            g = a.transpose(0, 2, 1) @ a
            for by_kernel, stack in ((symmetric_eigenvalues_by_kernel, g),
                                     (singular_values_by_kernel, a)):
                tiled, streamed = (by_kernel(stack, cupy, tile).get() for tile in (True, False))
                bound = 8 * n * np.finfo(np.float64).eps * np.abs(streamed).max()
                if not np.abs(tiled - streamed).max() <= bound:
                    raise ArithmeticError(f"{by_kernel.__name__} at n = {n}: tile and streaming "
                                          f"kernels differ by {np.abs(tiled - streamed).max():.3g}")
    except Exception as error:  # noqa: BLE001 - any failure: the streaming kernels, said once
        log.warning("svperturb's tile kernels fail their check on this GPU (%s: %s); the "
                    "streaming kernels are used instead", type(error).__name__, error)
        return False
    return True
