"""svperturb's GPU eigenvalue kernel (eigenvalue_kernel.cu) run on the CPU, so that it is tested where
no GPU is, in two builds of the same text:
- as C (symmetric_eigenvalues_on_cpu): a loop over the matrices where CUDA gives each matrix a
  thread, the same layout (entries of `chunk` matrices side by side);
- as its CUDA branch, compiled as C++ with CUDA's thread indices emulated (cuda_emulation): a
  launch runs every thread of every block in turn, which is exact for a kernel whose threads share
  nothing; it stands in for CuPy's compiled kernel, so the wrapper's launch is tested too."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from functools import cache
from pathlib import Path
from tempfile import mkdtemp

import numpy as np

from svperturb import eigenvalue_kernel
from svperturb.backend import to_host

CHUNK = 8  # matrices interleaved per call: one 64-byte cache line holds an entry of each


def compiler() -> str | None:
    return shutil.which("cc") or shutil.which("gcc")


def cxx_compiler() -> str | None:
    return shutil.which("c++") or shutil.which("g++")


# CUDA's names for the CUDA branch of the source, and a launch that runs each thread in turn
CUDA_EMULATION = """
#include <math.h>
#define __global__
struct Dimension { unsigned x; };
static Dimension blockIdx, blockDim, threadIdx;
#include "eigenvalue_kernel.cu"
extern "C" void launch(unsigned blocks, unsigned threads, double *packed, double *work,
                       double *values, int n, long long batch)
{
    blockDim.x = threads;
    for (blockIdx.x = 0; blockIdx.x < blocks; ++blockIdx.x)
        for (threadIdx.x = 0; threadIdx.x < threads; ++threadIdx.x)
            batched_symmetric_eigenvalues(packed, work, values, n, batch);
}
"""

POINTER = ctypes.POINTER(ctypes.c_double)


def _build(command: list[str], source_name: str, text: str) -> ctypes.CDLL:
    folder = Path(mkdtemp(prefix="svperturb-kernel-"))
    (folder / "eigenvalue_kernel.cu").write_text(eigenvalue_kernel.source())
    (folder / source_name).write_text(text)
    target = folder / "kernel.so"
    subprocess.run([*command, "-O2", "-Wall", "-Werror", "-shared", "-fPIC", "-I", str(folder),
                    str(folder / source_name), "-o", str(target), "-lm"], check=True,
                   capture_output=True)
    return ctypes.CDLL(str(target))


@cache
def _library() -> ctypes.CDLL:
    library = _build([compiler(), "-std=c99"], "eigenvalue_kernel.c", eigenvalue_kernel.source())
    function = getattr(library, eigenvalue_kernel.NAME)
    function.argtypes = [POINTER, POINTER, POINTER, ctypes.c_int, ctypes.c_longlong]
    function.restype = None
    return library


@cache
def _emulation() -> ctypes.CDLL:
    library = _build([cxx_compiler(), "-std=c++11", "-D__CUDACC_RTC__"], "emulation.cpp",
                     CUDA_EMULATION)
    library.launch.argtypes = [ctypes.c_uint, ctypes.c_uint, POINTER, POINTER, POINTER,
                               ctypes.c_int, ctypes.c_longlong]
    library.launch.restype = None
    return library


def cuda_emulation(grid: tuple, block: tuple, args: tuple) -> None:
    """The kernel's CUDA branch, called as CuPy calls a compiled kernel: kernel(grid, block, args),
    args (packed, work, values, numpy.int32 n, numpy.int64 batch) with NumPy arrays."""
    (blocks,), (threads,) = grid, block
    packed, work, values, n, batch = args
    assert all(isinstance(x, np.ndarray) and x.dtype == np.float64 and x.flags.c_contiguous
               for x in (packed, work, values))
    assert isinstance(n, np.int32) and isinstance(batch, np.int64)
    _emulation().launch(blocks, threads, *(x.ctypes.data_as(POINTER) for x in (packed, work, values)),
                        int(n), int(batch))


def _call(matrices: np.ndarray) -> np.ndarray:
    packed, work, values = eigenvalue_kernel.buffers(matrices, np)
    getattr(_library(), eigenvalue_kernel.NAME)(
        *(x.ctypes.data_as(POINTER) for x in (packed, work, values)), matrices.shape[-1],
        len(matrices))
    return values.T


def symmetric_eigenvalues_on_cpu(matrices, xp=np, chunk: int = CHUNK):
    """Eigenvalues (samples, n), decreasing, by the kernel's C build, `chunk` matrices per call;
    a stack of module `xp` in (the device stand-in's too), one of `xp` out, as on the GPU."""
    host = np.asarray(to_host(matrices), dtype=np.float64)
    if not len(host):
        return xp.asarray(np.empty(host.shape[:-1]))
    return xp.asarray(np.concatenate([_call(host[i:i + chunk])
                                      for i in range(0, len(host), chunk)]))
