"""A stand-in for CuPy on the CPU: NumPy computes, CuPy's wall between host and device stands, and
CuPy's device interface is there, so that the code svperturb runs only on CuPy runs and is tested
without a GPU.

The wall: code written for `xp` must move data across it explicitly, `xp.asarray(host)` up,
`backend.to_host(device)` (CuPy's `.get()`) down. CuPy refuses everything else with a TypeError,
and so does the stand-in (HostDeviceMixing): an implicit `numpy.asarray(device)` (h5py writing
a device array, NumPy code handed one), a NumPy array as an operand of a device ufunc
(`device + host`, `np.minimum(device, host)`), a NumPy array passed to an `xp` function or to a
kernel, or assigned into a device array. Python and NumPy scalars pass, as in CuPy; so do NumPy
index arrays (CuPy copies them to the device). A study that mixes the two fails here, on a machine
without a GPU, as it would on one.

The device: choosing the backend (cuda.runtime, cuda.Device, cupyx.seterr), sizing blocks from
device memory, the memory pool (its limit raises CuPy's OutOfMemoryError for an array larger than
it), compiling and launching the spectra and draw kernels through RawModule (which compiles
nothing and launches the kernels' CUDA branch emulated, kernel_on_cpu.cuda_emulation; a launch
asking for more than 48 kB of shared memory without raising the kernel's limit is refused, as the
driver refuses it), the tile kernels' first-call check, the kernel sweep. Its one GPU (or
`device_count`) reports an H100's shared memory and the free memory given to `build`.

`install(monkeypatch)` puts it in sys.modules as `cupy` (and `cupyx`) for a test; with
SVPERTURB_STAND_IN_GPU=1 the whole test run has it as CuPy (support.devices). `build(name=...)`
makes one under another name: svperturb takes NumPy's routes on an array module whose name does
not start with "cupy" (no kernels, no device draws), so its results equal NumPy's bit for bit
while the wall still stands (test_device_boundary).

It is a test double, not a GPU: the numerics are NumPy's; it says nothing of speed, nor of
cuSOLVER's accuracy.
"""

from __future__ import annotations

import sys
import types
from typing import Any

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

from . import kernel_on_cpu

UPLOAD = ("asarray", "array", "asanyarray", "ascontiguousarray")  # host -> device, explicit
LAUNCHES: list[str] = []  # the name of each kernel launched, in order
DEFAULT_SHARED_MEMORY = 48 * 1024  # a block's shared memory unless the kernel's limit is raised


class HostDeviceMixing(TypeError):
    """A NumPy array met a device array where CuPy would refuse it."""


class OutOfMemoryError(MemoryError):
    """cupy.cuda.memory.OutOfMemoryError."""


class MemoryPool:
    """CuPy's memory pool, as far as its limit goes: an array larger than the limit (set_limit)
    raises OutOfMemoryError when it is made (a real pool counts all arrays alive together).
    `released` counts the calls of free_all_blocks."""

    def __init__(self) -> None:
        self.limit = 0
        self.released = 0

    def set_limit(self, size: int) -> None:
        self.limit = size

    def free_all_blocks(self) -> None:
        self.released += 1

    def used_bytes(self) -> int:
        return 0

    def allocate(self, array: np.ndarray) -> ndarray:
        """`array` as a device array of this pool."""
        if self.limit and array.nbytes > self.limit:
            raise OutOfMemoryError(f"Out of memory allocating {array.nbytes:,} bytes "
                                   f"(pool limit {self.limit:,})")
        return ndarray(array, self)


def _unwrap(value: Any, where: str) -> Any:
    """The NumPy array inside a device array; a host array is refused; containers recursively."""
    if isinstance(value, ndarray):
        return value._a
    if isinstance(value, np.ndarray):
        raise HostDeviceMixing(f"{where}: a NumPy array of shape {value.shape} met a device array "
                               "(CuPy refuses it: use xp.asarray(...) or backend.to_host(...))")
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v, where) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v, where) for k, v in value.items()}
    return value


def _index(key: Any) -> Any:
    """Indices may be host arrays (CuPy uploads them) or device arrays."""
    if isinstance(key, ndarray):
        return key._a
    if isinstance(key, tuple):
        return tuple(_index(k) for k in key)
    return key


def _wrap(value: Any, pool: MemoryPool) -> Any:
    """NumPy results as device arrays of `pool` (tuples, named tuples and lists of them too)."""
    if isinstance(value, np.ndarray):
        return pool.allocate(value)
    if isinstance(value, tuple):
        parts = [_wrap(v, pool) for v in value]
        return type(value)(*parts) if hasattr(value, "_fields") else tuple(parts)
    if isinstance(value, list):
        return [_wrap(v, pool) for v in value]
    return value


class ndarray(NDArrayOperatorsMixin):  # CuPy's name
    """An array 'on the device': arithmetic with device arrays and scalars only, `.get()` to the
    host."""

    __slots__ = ("_a", "_pool")

    def __init__(self, array: np.ndarray, pool: MemoryPool) -> None:
        self._a, self._pool = array, pool

    def __array__(self, dtype=None, copy=None):
        raise HostDeviceMixing("implicit conversion of a device array to a NumPy array (CuPy "
                               "refuses it: use backend.to_host(...))")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        where = f"numpy.{ufunc.__name__}.{method}" if method != "__call__" else f"numpy.{ufunc.__name__}"
        if "out" in kwargs:
            kwargs["out"] = _unwrap(kwargs["out"], where)
        return _wrap(getattr(ufunc, method)(*_unwrap(inputs, where), **kwargs), self._pool)

    def __array_function__(self, func, types_, args, kwargs):
        where = f"numpy.{func.__name__}"
        return _wrap(func(*_unwrap(args, where), **_unwrap(kwargs, where)), self._pool)

    def get(self) -> np.ndarray:
        """The host copy (CuPy's ndarray.get)."""
        return self._a.copy()

    def __getitem__(self, key):
        return _wrap(self._a[_index(key)], self._pool)

    def __setitem__(self, key, value):
        self._a[_index(key)] = _unwrap(value, "device[...] = value")

    def __len__(self) -> int:
        return len(self._a)

    def __iter__(self):
        return (_wrap(row, self._pool) for row in self._a)

    def __float__(self) -> float:
        return float(self._a)

    def __int__(self) -> int:
        return int(self._a)

    def __bool__(self) -> bool:
        return bool(self._a)

    def __index__(self) -> int:
        return self._a.__index__()

    def __repr__(self) -> str:
        return f"stand-in device array({self._a!r})"

    @property
    def T(self):
        return ndarray(self._a.T, self._pool)

    def __getattr__(self, name: str):
        if name.startswith("__"):  # no __array_interface__ / __array_struct__: no implicit copy
            raise AttributeError(name)
        attribute = getattr(self._a, name)
        if callable(attribute):
            def method(*args, **kwargs):
                where = f"device.{name}()"
                return _wrap(attribute(*_unwrap(args, where), **_unwrap(kwargs, where)), self._pool)
            return method
        return _wrap(attribute, self._pool)


class _Namespace(types.ModuleType):
    """`xp`, `xp.linalg`, ...: NumPy's functions on device arrays, results on the device; the
    attributes given (`own`) as they are."""

    def __init__(self, name: str, source: types.ModuleType, pool: MemoryPool, **own) -> None:
        super().__init__(name)
        self._source, self._pool = source, pool
        self.__dict__.update(own)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        value = getattr(self._source, name)
        pool = self._pool
        if name == "ndarray":
            return ndarray
        if isinstance(value, types.ModuleType):
            submodule = _Namespace(f"{self.__name__}.{name}", value, pool)
            setattr(self, name, submodule)
            return submodule
        if name in UPLOAD:
            return lambda a, *args, **kwargs: pool.allocate(
                np.array(a._a if isinstance(a, ndarray) else a, *args, copy=True, **kwargs))
        if isinstance(value, type) or not callable(value):
            return value  # dtypes, finfo, constants
        where = f"{self.__name__}.{name}"

        def function(*args, **kwargs):
            return _wrap(value(*_unwrap(args, where), **_unwrap(kwargs, where)), pool)
        function.__name__ = name
        return function


class RawKernel:
    """A compiled kernel as CuPy's RawKernel: callable as kernel(grid, block, args, shared_mem=),
    its arguments device arrays and NumPy scalars (a host array is refused, as CuPy refuses it),
    with the driver's attributes and the settable shared-memory attributes. `launch` gets the
    device arrays' NumPy arrays, which it writes in place."""

    def __init__(self, name: str, launch):
        self.name, self.launch = name, launch
        self.attributes = {"num_regs": 40, "local_size_bytes": 0}
        self.max_dynamic_shared_size_bytes = 0
        self.preferred_shared_memory_carveout = -1

    def __call__(self, grid, block, args, shared_mem=0):
        if shared_mem > max(self.max_dynamic_shared_size_bytes, DEFAULT_SHARED_MEMORY):
            raise RuntimeError(f"CUDA_ERROR_INVALID_VALUE: {shared_mem} bytes of shared memory "
                               "without raising max_dynamic_shared_size_bytes")
        LAUNCHES.append(self.name)
        self.launch(grid, block, _unwrap(tuple(args), f"kernel {self.name}"), shared_mem=shared_mem)


class RawModule:
    """CuPy's RawModule: compiles nothing; its functions are the kernels' CUDA branch, emulated."""

    def __init__(self, code: str, options=()):
        self.code, self.options = code, options
        self._kernels = kernel_on_cpu.cuda_emulation()

    def get_function(self, name: str) -> RawKernel:
        if name not in self._kernels:
            raise RuntimeError(f"CUDA_ERROR_NOT_FOUND: named symbol not found ({name})")
        return RawKernel(name, self._kernels[name])


def build(free_bytes: int = 60 * 2**30, total_bytes: int = 80 * 2**30, device_count: int = 1,
          name: str = "cupy") -> types.ModuleType:
    """The stand-in `cupy` module: `device_count` GPUs, each with `free_bytes` free of
    `total_bytes`; cuda.runtime.getDevice() is the one last used (cuda.Device(i).use()), and
    cuda.used (the stand-in's own record) every device used, in order."""
    pool = MemoryPool()
    current, used = [0], []

    class Device:
        def __init__(self, index: int | None = None):
            self.id = current[0] if index is None else index
            self.attributes = {"MaxSharedMemoryPerBlockOptin": 232_448,
                               "MultiProcessorCount": 132}

        def use(self) -> None:
            if not 0 <= self.id < device_count:
                raise RuntimeError(f"cudaErrorInvalidDevice: device {self.id}")
            current[0] = self.id
            used.append(self.id)

    def properties(index: int) -> dict:
        return {"name": b"stand-in GPU (NumPy)", "totalGlobalMem": total_bytes}

    runtime = types.SimpleNamespace(
        getDeviceCount=lambda: device_count,
        getDevice=lambda: current[0],
        memGetInfo=lambda: (free_bytes, total_bytes),
        deviceSynchronize=lambda: None,
        getDeviceProperties=properties)
    cuda = types.SimpleNamespace(runtime=runtime, Device=Device, used=used,
                                 memory=types.SimpleNamespace(OutOfMemoryError=OutOfMemoryError))
    return _Namespace(name, np, pool, cuda=cuda, RawModule=RawModule, RawKernel=RawKernel,
                      get_default_memory_pool=lambda: pool, __version__="stand-in",
                      __file__="<svperturb's stand-in for CuPy>")


def cupyx() -> types.ModuleType:
    """The stand-in `cupyx`: seterr and geterr (linalg "ignore" at first, as CuPy's)."""
    module = types.ModuleType("cupyx")
    errors = {"linalg": "ignore"}
    module.seterr = lambda **kwargs: errors.update(kwargs)
    module.geterr = lambda: dict(errors)
    return module


def install(monkeypatch, **device) -> types.ModuleType:
    """`cupy` and `cupyx` in sys.modules for the rest of the test: the stand-in (`device`: build's
    arguments)."""
    cupy = build(**device)
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setitem(sys.modules, "cupyx", cupyx())
    return cupy
