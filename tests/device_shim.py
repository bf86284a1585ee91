"""A stand-in for CuPy that computes with NumPy but keeps CuPy's wall between host and device.

Code written for `xp` must move data across that wall explicitly: `xp.asarray(host)` up,
`backend.to_host(device)` (CuPy's `.get()`) down. CuPy refuses everything else with a TypeError:
an implicit `numpy.asarray(device)` (h5py, `np.linalg` on a device array), a NumPy array as an
operand of a device ufunc (`device + host`, `np.minimum(device, host)`), a NumPy array passed to
an `xp` function, or assigned into a device array. This module refuses the same, so that a study
that mixes the two fails here, on a machine without a GPU, as it would on one. Python and NumPy
scalars pass, as in CuPy; so do NumPy index arrays (CuPy copies them to the device).

It is a test double, not a backend: it says nothing of cuSOLVER's speed or accuracy.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

UPLOAD = ("asarray", "array", "asanyarray", "ascontiguousarray")  # host -> device, explicit


class HostDeviceMixing(TypeError):
    """A NumPy array met a device array where CuPy would refuse it."""


def _unwrap(value: Any, where: str) -> Any:
    """The NumPy array inside a DeviceArray; a host array is refused; containers recursively."""
    if isinstance(value, DeviceArray):
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
    if isinstance(key, DeviceArray):
        return key._a
    if isinstance(key, tuple):
        return tuple(_index(k) for k in key)
    return key


def _wrap(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return DeviceArray(value)
    if isinstance(value, tuple):
        return type(value)(*map(_wrap, value)) if hasattr(value, "_fields") else tuple(map(_wrap, value))
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


class DeviceArray(NDArrayOperatorsMixin):
    """An array 'on the device': arithmetic with device arrays and scalars only."""

    __slots__ = ("_a",)

    def __init__(self, array: np.ndarray) -> None:
        self._a = array

    def __array__(self, dtype=None, copy=None):
        raise HostDeviceMixing("implicit conversion of a device array to a NumPy array (CuPy "
                               "refuses it: use backend.to_host(...))")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        where = f"numpy.{ufunc.__name__}.{method}" if method != "__call__" else f"numpy.{ufunc.__name__}"
        if "out" in kwargs:
            kwargs["out"] = _unwrap(kwargs["out"], where)
        return _wrap(getattr(ufunc, method)(*_unwrap(inputs, where), **kwargs))

    def __array_function__(self, func, types_, args, kwargs):
        where = f"numpy.{func.__name__}"
        return _wrap(func(*_unwrap(args, where), **_unwrap(kwargs, where)))

    def get(self) -> np.ndarray:
        """The host copy (CuPy's ndarray.get)."""
        return self._a.copy()

    def __getitem__(self, key):
        return _wrap(self._a[_index(key)])

    def __setitem__(self, key, value):
        self._a[_index(key)] = _unwrap(value, "device[...] = value")

    def __len__(self) -> int:
        return len(self._a)

    def __iter__(self):
        return (_wrap(row) for row in self._a)

    def __float__(self) -> float:
        return float(self._a)

    def __int__(self) -> int:
        return int(self._a)

    def __bool__(self) -> bool:
        return bool(self._a)

    def __index__(self) -> int:
        return self._a.__index__()

    def __repr__(self) -> str:
        return f"DeviceArray({self._a!r})"

    @property
    def T(self):
        return DeviceArray(self._a.T)

    def __getattr__(self, name: str):
        if name.startswith("__"):  # no __array_interface__ / __array_struct__: no implicit copy
            raise AttributeError(name)
        attribute = getattr(self._a, name)
        if callable(attribute):
            def method(*args, **kwargs):
                where = f"device.{name}()"
                return _wrap(attribute(*_unwrap(args, where), **_unwrap(kwargs, where)))
            return method
        return _wrap(attribute)


class _Namespace(types.ModuleType):
    """`xp`, `xp.linalg`, ...: NumPy's functions on device arrays, results on the device."""

    def __init__(self, name: str, source: types.ModuleType) -> None:
        super().__init__(name)
        self._source = source

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        value = getattr(self._source, name)
        if name == "ndarray":
            return DeviceArray
        if isinstance(value, types.ModuleType):
            return _Namespace(f"{self.__name__}.{name}", value)
        if name in UPLOAD:
            return lambda a, *args, **kwargs: DeviceArray(
                np.array(a._a if isinstance(a, DeviceArray) else a, *args, copy=True, **kwargs))
        if isinstance(value, type) or not callable(value):
            return value  # dtypes, finfo, constants
        where = f"{self.__name__}.{name}"

        def function(*args, **kwargs):
            return _wrap(value(*_unwrap(args, where), **_unwrap(kwargs, where)))
        return function


xp = _Namespace("device_shim", np)
