"""svperturb's GPU eigenvalue kernel (eigenvalue_kernel.cu) compiled as C and run on the CPU, so that
its arithmetic is tested where no GPU is: the same text, with a loop over the matrices where CUDA
gives each matrix a thread, and the same layout (entries of `chunk` matrices side by side)."""

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


@cache
def _library() -> ctypes.CDLL:
    folder = Path(mkdtemp(prefix="svperturb-kernel-"))
    source = folder / "eigenvalue_kernel.c"
    source.write_text(eigenvalue_kernel.source())
    target = folder / "eigenvalue_kernel.so"
    subprocess.run([compiler(), "-O2", "-std=c99", "-Wall", "-Werror", "-shared", "-fPIC",
                    str(source), "-o", str(target), "-lm"], check=True, capture_output=True)
    library = ctypes.CDLL(str(target))
    function = getattr(library, eigenvalue_kernel.NAME)
    pointer = ctypes.POINTER(ctypes.c_double)
    function.argtypes = [pointer, pointer, pointer, ctypes.c_int, ctypes.c_longlong]
    function.restype = None
    return library


def _call(matrices: np.ndarray) -> np.ndarray:
    packed, work, values = eigenvalue_kernel.buffers(matrices, np)
    pointer = ctypes.POINTER(ctypes.c_double)
    getattr(_library(), eigenvalue_kernel.NAME)(
        *(x.ctypes.data_as(pointer) for x in (packed, work, values)), matrices.shape[-1],
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
