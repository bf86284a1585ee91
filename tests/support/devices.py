"""The array modules the tests run on: CUPY, and CuPy's routes taken by NumPy."""

from __future__ import annotations

import os
import sys

from . import kernel_on_cpu


def _usable_cupy():
    from svperturb.linalg.backend import select_backend

    if os.environ.get("SVPERTURB_STAND_IN_GPU") == "1":
        # the CuPy stand-in in place of CuPy for this whole run: the GPU-only tests run on the CPU
        from . import cupy_stand_in

        sys.modules["cupy"], sys.modules["cupyx"] = cupy_stand_in.build(), cupy_stand_in.cupyx()

    backend = select_backend("auto")  # never raises: NumPy where CuPy cannot run
    return backend.xp if backend.is_gpu else None


# CuPy where a GPU is usable (the stand-in with SVPERTURB_STAND_IN_GPU=1), else None
CUPY = _usable_cupy()

# The engine's route tables: each maps an array module's name to what `auto` does there.
ROUTE_TABLES = ("GRAM_FROM_WIDTH", "GRAM_FROM_WIDTH_MIXED", "AUGMENTED_WIDTHS",
                "EXTREMES_GRAM_FROM_WIDTH", "LARGEST_GRAM_FROM_WIDTH", "CAUTIOUS_S1_FILTER")


def take_cupy_routes(monkeypatch) -> None:
    """From now on (in this test), NumPy takes every route that the engine's `auto` takes on CuPy
    (each table's cupy entry), so that the GPU's code paths run, and are checked, here; the GPU's
    spectra kernels run as their C build (kernel_on_cpu) where a C compiler is."""
    from svperturb.linalg import engine
    from svperturb.linalg.gpu import eigenvalue_kernel

    for name in ROUTE_TABLES:
        table = getattr(engine, name)
        monkeypatch.setitem(table, "numpy", table["cupy"])
    if kernel_on_cpu.compiler() is not None:
        # the GPU's spectra kernels, compiled as C, at CuPy's widths and on any batch
        smallest, largest, _ = engine.EIGENVALUE_KERNEL["cupy"]
        monkeypatch.setitem(engine.EIGENVALUE_KERNEL, "numpy", (smallest, largest, 1))
        monkeypatch.setattr(eigenvalue_kernel, "kernel_available", lambda xp: True)
        monkeypatch.setattr(eigenvalue_kernel, "symmetric_eigenvalues_by_kernel",
                            kernel_on_cpu.symmetric_eigenvalues_on_cpu)
        monkeypatch.setattr(eigenvalue_kernel, "singular_values_by_kernel",
                            kernel_on_cpu.singular_values_on_cpu)
