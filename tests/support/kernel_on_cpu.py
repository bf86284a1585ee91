"""svperturb's GPU spectra kernels (eigenvalue_kernel.cu) run on the CPU, so that they are tested where
no GPU is, in two builds of the same text:
- as C (symmetric_eigenvalues_on_cpu, singular_values_on_cpu): a loop over the matrices where CUDA
  gives each matrix a thread, the same layout (entries of `chunk` matrices side by side);
- as its CUDA branch (all five kernels, the tile ones included), compiled as C++ with CUDA's
  names emulated (cuda_emulation): a launch runs the blocks in turn, each block's threads as
  concurrent std::threads meeting at a std::barrier for __syncthreads, its shared memory NaN
  until written; it stands in for CuPy's compiled kernels, so the wrappers' launches are tested
  too. Built with ThreadSanitizer, the same branch finds data races between a block's threads
  (tile_kernels_under_thread_sanitizer).
The draw kernel (draw_kernel.cu, svperturb.sampling.device_draws) likewise: its plain C build
(draws_on_cpu), and its CUDA branch, a launch's threads run in turn (draws_emulated, which the
CuPy stand-in launches).
What runs only on a GPU is compiled here as CuPy compiles it: by NVRTC (nvrtc_ptx), to the GPU's
machine code by ptxas (gpu_resources), from NVIDIA's wheels nvidia-cuda-nvrtc-cu12 and
nvidia-cuda-nvcc-cu12 (svperturb[test])."""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from tempfile import mkdtemp

import numpy as np

from svperturb.linalg.backend import to_host
from svperturb.linalg.gpu import eigenvalue_kernel
from svperturb.linalg.gpu.eigenvalue_kernel import (
    SINGULAR,
    SYMMETRIC,
    TILE_BIDIAGONALIZE,
    TRIDIAGONAL,
)
from svperturb.sampling import device_draws

CHUNK = 8  # matrices interleaved per call: one 64-byte cache line holds an entry of each
POINTER = ctypes.POINTER(ctypes.c_double)
ARGUMENTS = [POINTER, POINTER, POINTER, ctypes.c_int, ctypes.c_longlong]


def compiler() -> str | None:
    return shutil.which("cc") or shutil.which("gcc")


def cxx_compiler() -> str | None:
    return shutil.which("c++") or shutil.which("g++")


# CUDA's names for the CUDA branch of the source: each block's threads are std::threads meeting at a
# barrier for __syncthreads, with the block's shared memory (NaN where a kernel has not written
# it). Built once as a library (cuda_emulation), once with ThreadSanitizer as a program that
# reads a stack and writes the values (tile_kernels_under_thread_sanitizer).
CUDA_EMULATION = """
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <barrier>
#include <thread>
#include <vector>
#define __global__
#define __device__
struct Dimension { unsigned x; };
static thread_local Dimension blockIdx, blockDim, threadIdx;
static thread_local std::barrier<> *block_barrier;
static thread_local double *block_memory;
#define __syncthreads() block_barrier->arrive_and_wait()
#define TILE_MEMORY(name) double *name = block_memory
#include "eigenvalue_kernel.cu"

template <class Body>
static void grid(unsigned blocks, unsigned threads, size_t shared, Body body)
{
    for (unsigned block = 0; block < blocks; ++block) {
        std::vector<double> memory(shared / sizeof(double) + 1, nan(""));
        std::barrier<> barrier(threads);
        std::vector<std::thread> pool;
        for (unsigned t = 0; t < threads; ++t)
            pool.emplace_back([&, t] {
                blockIdx.x = block;
                blockDim.x = threads;
                threadIdx.x = t;
                block_barrier = &barrier;
                block_memory = memory.data();
                body();
            });
        for (std::thread &thread : pool)
            thread.join();
    }
}

extern "C" void launch(int singular, unsigned blocks, unsigned threads, double *a, double *work,
                       double *values, int n, long long batch)
{
    grid(blocks, threads, 0, [=] {
        (singular ? batched_singular_values : batched_symmetric_eigenvalues)(a, work, values, n,
                                                                             batch);
    });
}

extern "C" void launch_tile(int singular, unsigned blocks, unsigned threads, size_t shared,
                            const double *matrices, double *d, double *e, int n, long long batch)
{
    grid(blocks, threads, shared, [=] {
        (singular ? tile_bidiagonalize : tile_tridiagonalize)(matrices, d, e, n, batch);
    });
}

extern "C" void launch_tridiagonal(unsigned blocks, unsigned threads, double *d, double *e,
                                   int size, long long batch)
{
    grid(blocks, threads, 0, [=] { batched_tridiagonal_eigenvalues(d, e, size, batch); });
}

#ifdef SANITIZED_PROGRAM
/* program singular n count threads shared input output: the tile kernel, then the QR one */
int main(int argc, char **argv)
{
    if (argc != 8)
        return 2;
    const int singular = atoi(argv[1]), n = atoi(argv[2]);
    const long long count = atoll(argv[3]);
    const size_t entries = (size_t)(singular ? 2 : 1) * n * count;
    std::vector<double> matrices((size_t)count * n * n), d(entries), e(entries);
    FILE *input = fopen(argv[6], "rb");
    if (!input || fread(matrices.data(), sizeof(double), matrices.size(), input) != matrices.size())
        return 3;
    fclose(input);
    launch_tile(singular, (unsigned)count, (unsigned)atoi(argv[4]), (size_t)atoll(argv[5]),
                matrices.data(), d.data(), e.data(), n, count);
    launch_tridiagonal((unsigned)((count + 63) / 64), 64, d.data(), e.data(),
                       (singular ? 2 : 1) * n, count);
    FILE *output = fopen(argv[7], "wb");
    if (!output || fwrite(d.data(), sizeof(double), d.size(), output) != d.size())
        return 4;
    fclose(output);
    return 0;
}
#endif
"""


def _compile(command: list[str], source_name: str, text: str, target_name: str) -> Path:
    """The kernels' source and `text` (which includes it) built by `command` into a file."""
    folder = Path(mkdtemp(prefix="svperturb-kernel-"))
    (folder / "eigenvalue_kernel.cu").write_text(eigenvalue_kernel.source())
    (folder / "draw_kernel.cu").write_text(device_draws.source())
    (folder / source_name).write_text(text)
    target = folder / target_name
    done = subprocess.run([*command, "-Wall", "-Werror", "-I", str(folder),
                           str(folder / source_name), "-o", str(target), "-lm"],
                          capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed on the kernels:\n{done.stderr}")
    return target


def _build(command: list[str], source_name: str, text: str) -> ctypes.CDLL:
    return ctypes.CDLL(str(_compile([*command, "-O2", "-shared", "-fPIC"], source_name, text,
                                    "kernel.so")))


@cache
def _library() -> ctypes.CDLL:
    library = _build([compiler(), "-std=c99"], "eigenvalue_kernel.c", eigenvalue_kernel.source())
    for name in (SYMMETRIC, SINGULAR):
        getattr(library, name).argtypes = ARGUMENTS
        getattr(library, name).restype = None
    return library


@cache
def _emulation() -> ctypes.CDLL:
    library = _build([cxx_compiler(), "-std=c++20", "-pthread", "-D__CUDACC_RTC__"],
                     "emulation.cpp", CUDA_EMULATION)
    library.launch.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint, *ARGUMENTS]
    library.launch_tile.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint, ctypes.c_size_t,
                                    *ARGUMENTS]
    library.launch_tridiagonal.argtypes = [ctypes.c_uint, ctypes.c_uint, POINTER, POINTER,
                                           ctypes.c_int, ctypes.c_longlong]
    for name in ("launch", "launch_tile", "launch_tridiagonal"):
        getattr(library, name).restype = None
    return library


# The draw kernel's CUDA branch (draw_kernel.cu): one thread per chunk, no shared memory, so a
# launch runs its threads in turn; the intrinsics are the C operations they round as.
DRAW_EMULATION = """
#include <math.h>
#define __global__
#define __device__
struct Dimension { unsigned x; };
static Dimension blockIdx, blockDim, threadIdx;
#define __dmul_rn(a, b) ((a) * (b))
#define __dadd_rn(a, b) ((a) + (b))
#define __umul64hi(a, b) \\
    ((unsigned long long)(((unsigned __int128)(a) * (unsigned __int128)(b)) >> 64))
static unsigned long long atomicAdd(unsigned long long *counter, unsigned long long value)
{
    const unsigned long long old = *counter;
    *counter += value;
    return old;
}
#include "draw_kernel.cu"

extern "C" void launch_draws(unsigned blocks, unsigned threads, const unsigned long long *streams,
                             const long long *plan, const double *tables,
                             const unsigned long long *ki, double *out, long long *tail_at,
                             double *tail_u, unsigned long long *tails, long long tail_capacity,
                             int *uncertain, int gaussian, double low, double range, double scale,
                             double r, double inverse_r, double tolerance, long long chunks)
{
    blockDim.x = threads;
    for (blockIdx.x = 0; blockIdx.x < blocks; ++blockIdx.x)
        for (threadIdx.x = 0; threadIdx.x < threads; ++threadIdx.x)
            pcg64_draws(streams, plan, tables, ki, out, tail_at, tail_u, tails, tail_capacity,
                        uncertain, gaussian, low, range, scale, r, inverse_r, tolerance, chunks);
}
"""
# pcg64_draws' parameters, in order, as ctypes
DRAW_ARGUMENTS = [*[ctypes.c_void_p] * 8, ctypes.c_longlong, ctypes.c_void_p, ctypes.c_int,
                  *[ctypes.c_double] * 6, ctypes.c_longlong]
# no fused multiply-add where the kernel rounds a product and a sum one at a time (DMUL, DADD)
DRAW_FLAGS = ["-ffp-contract=off"]


@cache
def _draw_library(prelude: str = "") -> ctypes.CDLL:
    """The draw kernel's plain C build, after `prelude` (C text, e.g. macros in place of exp)."""
    library = _build([compiler(), "-std=gnu99", *DRAW_FLAGS], "draw_kernel.c",
                     f'{prelude}\n#include "draw_kernel.cu"\n')
    library.pcg64_draws.argtypes = DRAW_ARGUMENTS
    library.pcg64_draws.restype = None
    return library


@cache
def _draw_emulation() -> ctypes.CDLL:
    library = _build([cxx_compiler(), "-std=c++20", "-D__CUDACC_RTC__", *DRAW_FLAGS],
                     "draw_emulation.cpp", DRAW_EMULATION)
    library.launch_draws.argtypes = [ctypes.c_uint, ctypes.c_uint, *DRAW_ARGUMENTS]
    library.launch_draws.restype = None
    return library


def _draw_arguments(args) -> list:
    """pcg64_draws' arguments as CuPy passes them (arrays, NumPy scalars), for ctypes."""
    assert len(args) == len(DRAW_ARGUMENTS)
    converted = []
    for value, kind in zip(args, DRAW_ARGUMENTS):
        if kind is ctypes.c_void_p:
            assert isinstance(value, np.ndarray) and value.flags.c_contiguous
            converted.append(value.ctypes.data)
        else:
            assert isinstance(value, (np.int32, np.int64, np.float64)), type(value)
            converted.append(value.item())
    return converted


def draws_on_cpu_with_exp_and_log_off(relative: float):
    """The draw kernel's C build with exp and log1p a relative `relative` too large, as a GPU's
    would round otherwise than the C library's (by far more than its 1 ulp), as a launcher."""
    prelude = f"""#include <math.h>
static double exp_off(double x) {{ return exp(x) * (1.0 + {relative!r}); }}
static double log1p_off(double x) {{ return log1p(x) * (1.0 + {relative!r}); }}
#define exp exp_off
#define log1p log1p_off"""

    def launch(grid, block, args, shared_mem=0) -> None:
        _draw_library(prelude).pcg64_draws(*_draw_arguments(args))
    return launch


def draws_on_cpu(grid, block, args, shared_mem=0) -> None:
    """The draw kernel's plain C build called as CuPy calls the compiled kernel (its chunks a
    loop: the grid and block are not used)."""
    assert shared_mem == 0
    _draw_library().pcg64_draws(*_draw_arguments(args))


def draws_emulated(grid, block, args, shared_mem=0) -> None:
    """The draw kernel's CUDA branch, each thread in turn, called as CuPy calls it."""
    (blocks,), (threads,) = grid, block
    assert shared_mem == 0
    _draw_emulation().launch_draws(blocks, threads, *_draw_arguments(args))


def cuda_emulation() -> dict:
    """In place of eigenvalue_kernel._compiled(): each kernel's CUDA branch, called as CuPy calls a
    compiled kernel, kernel(grid, block, arguments, shared_mem=bytes)."""

    def arrays(*given):
        assert all(isinstance(x, np.ndarray) and x.dtype == np.float64 and x.flags.c_contiguous
                   for x in given)
        return [x.ctypes.data_as(POINTER) for x in given]

    def kernel(name):
        def launch(grid, block, args, shared_mem=0):
            (blocks,), (threads,) = grid, block
            *given, n, batch = args
            assert isinstance(n, np.int32) and isinstance(batch, np.int64)
            if name in (SYMMETRIC, SINGULAR):
                assert shared_mem == 0
                _emulation().launch(name == SINGULAR, blocks, threads, *arrays(*given), int(n),
                                    int(batch))
            elif name == TRIDIAGONAL:
                _emulation().launch_tridiagonal(blocks, threads, *arrays(*given), int(n),
                                                int(batch))
            else:
                assert shared_mem == eigenvalue_kernel.tile_bytes(int(n))
                assert threads == eigenvalue_kernel.tile_threads(int(n))
                _emulation().launch_tile(name == TILE_BIDIAGONALIZE, blocks, threads, shared_mem,
                                         *arrays(*given), int(n), int(batch))
        return launch

    return {**{name: kernel(name) for name in eigenvalue_kernel.KERNELS},
            device_draws.KERNEL: draws_emulated}


def tile_kernels_under_thread_sanitizer(name: str, matrices: np.ndarray) -> np.ndarray:
    """The tile kernel `name`, then the tridiagonal one, in the CUDA branch built with
    ThreadSanitizer: every block's threads run concurrently, and a read and a write (or two
    writes) of one shared or device address by two threads with no barrier between them is
    reported, the program then failing (RuntimeError with the report). Returns d (samples, size):
    the eigenvalues, decreasing."""
    count, n = matrices.shape[0], matrices.shape[-1]
    program = _sanitized_program()
    folder = Path(mkdtemp(prefix="svperturb-tsan-"))
    np.ascontiguousarray(matrices, dtype=np.float64).tofile(folder / "in.bin")
    done = subprocess.run(
        [str(program), str(int(name == TILE_BIDIAGONALIZE)), str(n), str(count),
         str(eigenvalue_kernel.tile_threads(n)), str(eigenvalue_kernel.tile_bytes(n)),
         str(folder / "in.bin"), str(folder / "out.bin")],
        capture_output=True, text=True, check=False, timeout=600,
        env={**os.environ, "TSAN_OPTIONS": "halt_on_error=1 exitcode=66"})
    if done.returncode:
        raise RuntimeError(f"{name} under ThreadSanitizer: exit {done.returncode}\n"
                           f"{done.stderr[-6000:]}")
    size = 2 * n if name == TILE_BIDIAGONALIZE else n
    return np.fromfile(folder / "out.bin").reshape(size, count).T


@cache
def _sanitized_program() -> Path:
    return _compile([cxx_compiler(), "-std=c++20", "-pthread", "-D__CUDACC_RTC__",
                     "-DSANITIZED_PROGRAM", "-fsanitize=thread", "-O1", "-g"], "sanitized.cpp",
                    CUDA_EMULATION, "sanitized")


@cache
def thread_sanitizer_available() -> bool:
    """Whether the C++ compiler builds and runs a ThreadSanitizer program here."""
    if cxx_compiler() is None:
        return False
    try:
        folder = Path(mkdtemp(prefix="svperturb-tsan-probe-"))
        (folder / "probe.cpp").write_text("int main() { return 0; }\n")
        subprocess.run([cxx_compiler(), "-fsanitize=thread", str(folder / "probe.cpp"), "-o",
                        str(folder / "probe")], check=True, capture_output=True)
        subprocess.run([str(folder / "probe")], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return False
    return True


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


def nvrtc_ptx(architecture: int, options=eigenvalue_kernel.NVRTC_OPTIONS,
              source: str = eigenvalue_kernel.source()) -> tuple[str, str]:
    """(PTX, NVRTC's log) of a kernel source (the spectra kernels', or device_draws') compiled by
    NVRTC as CuPy compiles it, with `options` and -arch=compute_<architecture> (90: H100, H200);
    RuntimeError with the log where NVRTC refuses it."""
    library = ctypes.CDLL(str(nvrtc_path()))
    program = ctypes.c_void_p()
    status = library.nvrtcCreateProgram(ctypes.byref(program), source.encode(), b"kernels.cu", 0,
                                        None, None)
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
            raise RuntimeError(f"NVRTC refused the kernels (status {status}):\n"
                               f"{log.value.decode()}")
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


def gpu_resources(architecture: int, source: str = eigenvalue_kernel.source()
                  ) -> dict[str, Resources]:
    """Each kernel's Resources in the machine code of sm_<architecture>, by ptxas -v on NVRTC's
    PTX of `source` (what the GPU's driver does with it when CuPy loads the module)."""
    ptx, _ = nvrtc_ptx(architecture, source=source)
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
