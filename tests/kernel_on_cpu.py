"""svperturb's GPU spectra kernels (eigenvalue_kernel.cu) run on the CPU, so that they are tested where
no GPU is, in two builds of the same text:
- as C (symmetric_eigenvalues_on_cpu, singular_values_on_cpu): a loop over the matrices where CUDA
  gives each matrix a thread, the same layout (entries of `chunk` matrices side by side);
- as its CUDA branch, compiled as C++ with CUDA's thread indices emulated (cuda_emulation): a
  launch runs every thread of every block in turn, which is exact for kernels whose threads share
  nothing; it stands in for CuPy's compiled kernels, so the wrapper's launch is tested too.
What runs only on a GPU is compiled here as CuPy compiles it: by NVRTC (nvrtc_ptx), to the GPU's
machine code by ptxas (gpu_resources), from NVIDIA's wheels nvidia-cuda-nvrtc-cu12 and
nvidia-cuda-nvcc-cu12 (svperturb[test])."""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
from dataclasses import dataclass
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


def _nvidia_file(package: str, relative: str) -> Path | None:
    """A file of NVIDIA's wheel `package` (nvidia.<package>), None where it is not installed."""
    try:
        module = __import__(f"nvidia.{package}", fromlist=["__path__"])
    except ImportError:
        return None
    found = [Path(folder) / relative for folder in module.__path__]
    return next((path for path in found if path.exists()), None)


def nvrtc_path() -> Path | None:
    return _nvidia_file("cuda_nvrtc", "lib/libnvrtc.so.12")


def ptxas_path() -> Path | None:
    return _nvidia_file("cuda_nvcc", "bin/ptxas")


def nvrtc_ptx(architecture: int, options=eigenvalue_kernel.NVRTC_OPTIONS) -> tuple[str, str]:
    """(PTX, NVRTC's log) of the kernels' source compiled by NVRTC as CuPy compiles it, with
    `options` and -arch=compute_<architecture> (90: H100, H200); RuntimeError with the log where
    NVRTC refuses it."""
    library = ctypes.CDLL(str(nvrtc_path()))
    program = ctypes.c_void_p()
    status = library.nvrtcCreateProgram(ctypes.byref(program), eigenvalue_kernel.source().encode(),
                                        b"eigenvalue_kernel.cu", 0, None, None)
    if status:
        raise RuntimeError(f"nvrtcCreateProgram: status {status}")
    try:
        arguments = [*(o.encode() for o in options), f"-arch=compute_{architecture}".encode()]
        status = library.nvrtcCompileProgram(
            program, len(arguments), (ctypes.c_char_p * len(arguments))(*arguments))
        size = ctypes.c_size_t()
        library.nvrtcGetProgramLogSize(program, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        library.nvrtcGetProgramLog(program, log)
        if status:
            raise RuntimeError(f"NVRTC refused the kernels (status {status}):\n{log.value.decode()}")
        library.nvrtcGetPTXSize(program, ctypes.byref(size))
        ptx = ctypes.create_string_buffer(size.value)
        library.nvrtcGetPTX(program, ptx)
        return ptx.value.decode(), log.value.decode()
    finally:
        library.nvrtcDestroyProgram(ctypes.byref(program))


@dataclass(frozen=True)
class Resources:
    """What ptxas gives one kernel (per thread): registers, and bytes of local memory."""

    registers: int
    stack_frame: int
    spill_stores: int
    spill_loads: int


def gpu_resources(architecture: int) -> dict[str, Resources]:
    """Each kernel's Resources in the machine code of sm_<architecture>, by ptxas -v on NVRTC's
    PTX (what the GPU's driver does with it when CuPy loads the module)."""
    ptx, _ = nvrtc_ptx(architecture)
    folder = Path(mkdtemp(prefix="svperturb-ptx-"))
    (folder / "kernels.ptx").write_text(ptx)
    done = subprocess.run([str(ptxas_path()), f"-arch=sm_{architecture}", "-v",
                           str(folder / "kernels.ptx"), "-o", str(folder / "kernels.cubin")],
                          capture_output=True, text=True, check=True)
    report = done.stdout + done.stderr
    names = re.findall(r"Function properties for (\w+)", report)
    frames = re.findall(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill "
                        r"loads", report)
    registers = re.findall(r"Used (\d+) registers", report)
    if not names or not len(names) == len(frames) == len(registers):
        raise RuntimeError(f"unexpected ptxas report:\n{report}")
    return {name: Resources(int(count), *map(int, frame))
            for name, frame, count in zip(names, frames, registers)}
