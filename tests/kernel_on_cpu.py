"""svperturb's GPU spectra kernels (eigenvalue_kernel.cu) run on the CPU, so that they are tested where
no GPU is, in two builds of the same text:
- as C (symmetric_eigenvalues_on_cpu, singular_values_on_cpu): a loop over the matrices where CUDA
  gives each matrix a thread, the same layout (entries of `chunk` matrices side by side);
- as its CUDA branch, compiled as C++ with CUDA's thread indices emulated (cuda_emulation): a
  launch runs every thread of every block in turn, which is exact for kernels whose threads share
  nothing; it stands in for CuPy's compiled kernels, so the wrapper's launch is tested too."""

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
from svperturb.eigenvalue_kernel import SINGULAR, SYMMETRIC

CHUNK = 8  # matrices interleaved per call: one 64-byte cache line holds an entry of each
POINTER = ctypes.POINTER(ctypes.c_double)
ARGUMENTS = [POINTER, POINTER, POINTER, ctypes.c_int, ctypes.c_longlong]


def compiler() -> str | None:
    return shutil.which("cc") or shutil.which("gcc")


def cxx_compiler() -> str | None:
    return shutil.which("c++") or shutil.which("g++")


# CUDA's names for the CUDA branch of the source, and a launch that runs each thread in turn
CUDA_EMULATION = """
#include <math.h>
#define __global__
#define __device__
struct Dimension { unsigned x; };
static Dimension blockIdx, blockDim, threadIdx;
#include "eigenvalue_kernel.cu"
typedef void (*Kernel)(double *, double *, double *, int, long long);
extern "C" void launch(int singular, unsigned blocks, unsigned threads, double *a, double *work,
                       double *values, int n, long long batch)
{
    const Kernel kernel = singular ? batched_singular_values : batched_symmetric_eigenvalues;
    blockDim.x = threads;
    for (blockIdx.x = 0; blockIdx.x < blocks; ++blockIdx.x)
        for (threadIdx.x = 0; threadIdx.x < threads; ++threadIdx.x)
            kernel(a, work, values, n, batch);
}
"""


def _build(command: list[str], source_name: str, text: str) -> ctypes.CDLL:
    folder = Path(mkdtemp(prefix="svperturb-kernel-"))
    (folder / "eigenvalue_kernel.cu").write_text(eigenvalue_kernel.source())
    (folder / source_name).write_text(text)
    target = folder / "kernel.so"
    done = subprocess.run([*command, "-O2", "-Wall", "-Werror", "-shared", "-fPIC", "-I",
                           str(folder), str(folder / source_name), "-o", str(target), "-lm"],
                          capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed on the kernels:\n{done.stderr}")
    return ctypes.CDLL(str(target))


@cache
def _library() -> ctypes.CDLL:
    library = _build([compiler(), "-std=c99"], "eigenvalue_kernel.c", eigenvalue_kernel.source())
    for name in (SYMMETRIC, SINGULAR):
        getattr(library, name).argtypes = ARGUMENTS
        getattr(library, name).restype = None
    return library


@cache
def _emulation() -> ctypes.CDLL:
    library = _build([cxx_compiler(), "-std=c++11", "-D__CUDACC_RTC__"], "emulation.cpp",
                     CUDA_EMULATION)
    library.launch.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint, *ARGUMENTS]
    library.launch.restype = None
    return library


def cuda_emulation() -> dict:
    """In place of eigenvalue_kernel._compiled(): each kernel's CUDA branch, called as CuPy calls a
    compiled kernel, kernel(grid, block, (a, work, values, numpy.int32 n, numpy.int64 batch))."""

    def kernel(name):
        def launch(grid, block, args):
            (blocks,), (threads,) = grid, block
            *arrays, n, batch = args
            assert all(isinstance(x, np.ndarray) and x.dtype == np.float64 and x.flags.c_contiguous
                       for x in arrays)
            assert isinstance(n, np.int32) and isinstance(batch, np.int64)
            _emulation().launch(name == SINGULAR, blocks, threads,
                                *(x.ctypes.data_as(POINTER) for x in arrays), int(n), int(batch))
        return launch

    return {name: kernel(name) for name in (SYMMETRIC, SINGULAR)}


def _on_cpu(name: str, matrices, xp, chunk: int, entries: int):
    host = np.asarray(to_host(matrices), dtype=np.float64)
    parts = [np.empty((0, entries(host.shape[-1])))]
    for i in range(0, len(host), chunk):
        a, work, values = eigenvalue_kernel.buffers(host[i:i + chunk], name, np)
        getattr(_library(), name)(*(x.ctypes.data_as(POINTER) for x in (a, work, values)),
                                  host.shape[-1], a.shape[-1])
        parts.append(values.T[:, : entries(host.shape[-1])])
    return xp.asarray(np.concatenate(parts))


def symmetric_eigenvalues_on_cpu(matrices, xp=np, chunk: int = CHUNK):
    """Eigenvalues (samples, n), decreasing, by the symmetric kernel's C build, `chunk` matrices per
    call; a stack of module `xp` in (the device stand-in's too), one of `xp` out, as on the GPU."""
    return _on_cpu(SYMMETRIC, matrices, xp, chunk, lambda n: n)


def singular_values_on_cpu(matrices, xp=np, chunk: int = CHUNK):
    """Singular values (samples, n), decreasing, by the singular-value kernel's C build."""
    return _on_cpu(SINGULAR, matrices, xp, chunk, lambda n: n)


def all_values_on_cpu(matrices, chunk: int = CHUNK) -> np.ndarray:
    """The singular-value kernel's whole output (samples, 2n): s_i, then -s_(n+1-i)."""
    return _on_cpu(SINGULAR, matrices, np, chunk, lambda n: 2 * n)
