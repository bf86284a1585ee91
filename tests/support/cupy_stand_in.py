"""A stand-in for CuPy on the CPU, so that the code svperturb runs only on CuPy (choosing the
backend, sizing blocks from device memory, the CuPy memory pool, sending draws to the device,
compiling and launching the spectra kernels through RawModule, the tile kernels' first-call check,
the kernel sweep) runs and is tested here, without a GPU.

`install(monkeypatch)` puts it in sys.modules as `cupy` (and `cupyx`). Its arrays are NumPy arrays
of a subclass with CuPy's .get(); its functions are NumPy's, returning that subclass; its
RawModule compiles nothing and launches the kernels' CUDA branch emulated (kernel_on_cpu); its
device reports an H100's shared memory and the free memory given to install. It is an interface
stand-in, not a GPU: the numerics are NumPy's, and unlike CuPy it lets numpy.asarray take its
arrays, so that an implicit copy to the host goes unnoticed here.
"""

from __future__ import annotations

import sys
import types

import numpy as np

import kernel_on_cpu


class ndarray(np.ndarray):  # CuPy's name
    """A "device" array: NumPy's, with CuPy's copy to the host."""

    def get(self) -> np.ndarray:
        return np.array(self, copy=True).view(np.ndarray)


class OutOfMemoryError(MemoryError):
    """cupy.cuda.memory.OutOfMemoryError."""


class _Pool:
    """CuPy's memory pool, as far as its limit goes: an array larger than the limit (set_limit)
    raises OutOfMemoryError when it is made (a real pool counts all arrays alive together)."""

    def __init__(self):
        self.limit = 0

    def set_limit(self, size: int) -> None:
        self.limit = size

    def free_all_blocks(self) -> None:
        pass

    def used_bytes(self) -> int:
        return 0

    def on_device(self, value):
        """NumPy results as device arrays (tuples and named tuples of them too)."""
        if isinstance(value, np.ndarray):
            if self.limit and value.nbytes > self.limit:
                raise OutOfMemoryError(f"Out of memory allocating {value.nbytes:,} bytes "
                                       f"(pool limit {self.limit:,})")
            return value if isinstance(value, ndarray) else value.view(ndarray)
        if isinstance(value, tuple):
            parts = [self.on_device(v) for v in value]
            return type(value)(*parts) if hasattr(value, "_fields") else type(value)(parts)
        return value


def _module(name: str, numpy_module, pool: _Pool, **own) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(own)

    def wrapped(function):
        def call(*args, **kwargs):
            return pool.on_device(function(*args, **kwargs))

        call.__name__ = getattr(function, "__name__", "function")
        return call

    def attribute(key: str):
        value = getattr(numpy_module, key)
        return wrapped(value) if callable(value) and not isinstance(value, type) else value

    module.__getattr__ = attribute
    return module


LAUNCHES: list[str] = []  # the name of each kernel launched, in order


class _Loaded:
    """A compiled kernel as CuPy's RawKernel: callable as kernel(grid, block, args, shared_mem=),
    with the driver's attributes, and the settable shared-memory attributes."""

    def __init__(self, name: str, launch):
        self.name, self.launch = name, launch
        self.attributes = {"num_regs": 40, "local_size_bytes": 0}
        self.max_dynamic_shared_size_bytes = 0
        self.preferred_shared_memory_carveout = -1

    def __call__(self, grid, block, args, shared_mem=0):
        if shared_mem > max(self.max_dynamic_shared_size_bytes, 48 * 1024):
            raise RuntimeError(f"CUDA_ERROR_INVALID_VALUE: {shared_mem} bytes of shared memory "
                               "without raising max_dynamic_shared_size_bytes")
        LAUNCHES.append(self.name)
        args = tuple(np.asarray(a) if isinstance(a, ndarray) else a for a in args)
        self.launch(grid, block, args, shared_mem=shared_mem)


class _RawModule:
    def __init__(self, code: str, options=()):
        self.code, self.options = code, options
        self._kernels = kernel_on_cpu.cuda_emulation()

    def get_function(self, name: str) -> _Loaded:
        if name not in self._kernels:
            raise RuntimeError(f"CUDA_ERROR_NOT_FOUND: named symbol not found ({name})")
        return _Loaded(name, self._kernels[name])


def build(free_bytes: int = 60 * 2**30, total_bytes: int = 80 * 2**30) -> types.ModuleType:
    """The stand-in `cupy` module: one GPU with `free_bytes` free of `total_bytes`."""
    pool = _Pool()

    class Device:
        def __init__(self, index: int = 0):
            self.id = index
            self.attributes = {"MaxSharedMemoryPerBlockOptin": 232_448,
                               "MultiProcessorCount": 132}

        def use(self) -> None:
            pass

    runtime = types.SimpleNamespace(
        getDeviceCount=lambda: 1,
        memGetInfo=lambda: (free_bytes, total_bytes),
        deviceSynchronize=lambda: None,
        getDeviceProperties=lambda index: {"name": b"stand-in GPU (NumPy)",
                                           "totalGlobalMem": total_bytes})
    cuda = types.SimpleNamespace(runtime=runtime, Device=Device,
                                 memory=types.SimpleNamespace(OutOfMemoryError=OutOfMemoryError))
    linalg = _module("cupy.linalg", np.linalg, pool)

    def asarray(a, dtype=None):
        return pool.on_device(np.array(a, dtype=dtype, copy=True))

    return _module("cupy", np, pool, ndarray=ndarray, cuda=cuda, linalg=linalg, asarray=asarray,
                   RawModule=_RawModule, get_default_memory_pool=lambda: pool,
                   __version__="stand-in", __file__="<svperturb's stand-in for CuPy>")


def cupyx() -> types.ModuleType:
    module = types.ModuleType("cupyx")
    errors = {"linalg": "ignore"}
    module.seterr = errors.update
    module.geterr = lambda: dict(errors)
    return module


def install(monkeypatch, **memory) -> types.ModuleType:
    """`cupy` and `cupyx` in sys.modules for the rest of the test: the stand-in."""
    cupy = build(**memory)
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setitem(sys.modules, "cupyx", cupyx())
    return cupy
