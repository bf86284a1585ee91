"""Shared test helpers: tiny grid points of each study (docs/studies.md, The grid and seeding) and a float64 reference SVD."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import scipy.linalg

import kernel_on_cpu

# One job-level grid point per study, small enough that hundreds of samples take milliseconds.
# The convnet point uses eta = -1 so that the absolute-value branch (Proposition 23) is exercised.
TINY_POINTS = {
    "unit_variance": {"distribution": "gaussian", "width": 4},
    "resnet_layer": {"distribution": "uniform", "width": 4, "weight_scale": 2.0,
                     "skip": [0.0, 0.5, 1.0]},
    "convnet_vs_resnet": {"distribution": "gaussian", "width": 5, "weight_scale": 2.0,
                          "activation_slope": -1.0, "activity": 0.4, "skip": [0.0, 1.0]},
    "hard_bounds": {"width": 4, "entry_bound": 0.3, "weight_pattern": "random_signs", "depth": 2,
                    "activation_slope": 0.0, "activity": 0.5},
    "relu_layer": {"distribution": "gaussian", "width": 6, "weight_scale": 50.0,
                   "activation_slope": 0.1, "activity": 0.5, "skip": [0.0, 1.0], "theta": [4.1]},
    "depth": {"distribution": "gaussian", "width": 5, "weight_scale": 2.0, "activation_slope": 0.0,
              "activity": 0.6, "depth": 2, "skip": [0.0, 1.0]},
    "derivative": {"distribution": "uniform", "width": 4, "weight_scale": 2.0, "skip": [0.0, 0.5]},
    "data_factor": {"distribution": "gaussian", "width": 3, "weight_scale": 2.0, "activation_slope": 0.1,
                    "activity": 0.5, "batch_size": 2, "skip": [0.0, 1.0]},
    "rho_paths": {"distribution": "gaussian", "width": 4, "skip": [0.0, 0.25, 0.5, 0.75, 1.0]},
    "toy_network": {"width": 3, "activation_slope": 0.1, "skip": [0.0, 0.5, 1.0]},
}


@pytest.fixture(params=sorted(TINY_POINTS))
def tiny_study(request):
    """(study name, grid point with a seed) for each study."""
    return request.param, {**TINY_POINTS[request.param], "seed": 20220307}


def _usable_cupy():
    from svperturb.linalg.backend import select_backend

    if os.environ.get("SVPERTURB_STAND_IN_GPU") == "1":
        # tests/fake_cupy in place of CuPy for this whole run: the GPU-only tests run on the CPU
        import fake_cupy

        sys.modules["cupy"], sys.modules["cupyx"] = fake_cupy.build(), fake_cupy.cupyx()

    backend = select_backend("auto")  # never raises: NumPy where CuPy cannot run
    return backend.xp if backend.is_gpu else None


CUPY = _usable_cupy()


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.skipif(
    CUPY is None, reason="needs CuPy and a usable GPU"))])
def xp(request):
    """NumPy, and CuPy where a GPU is usable: the same test on each array module."""
    return np if request.param == "numpy" else CUPY


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


@pytest.fixture
def cupy_routes(monkeypatch):
    """take_cupy_routes for the whole test."""
    take_cupy_routes(monkeypatch)


@pytest.fixture
def inverse_iteration_calls(monkeypatch):
    """The stack sizes engine._inverse_iteration is called with, in order."""
    from svperturb.linalg import engine

    calls = []
    real = engine._inverse_iteration
    monkeypatch.setattr(engine, "_inverse_iteration",
                        lambda a, *rest: calls.append(len(a)) or real(a, *rest))
    return calls


def reference_singular_values(stack: np.ndarray) -> np.ndarray:
    """Singular values matrix by matrix with LAPACK gesvd through SciPy (not NumPy's gesdd route)."""
    flat = stack.reshape(-1, *stack.shape[-2:])
    out = np.array([scipy.linalg.svd(a, compute_uv=False, lapack_driver="gesvd") for a in flat])
    return out.reshape(*stack.shape[:-2], stack.shape[-1])


def reference_symmetric_eigenvalues(stack: np.ndarray) -> np.ndarray:
    """Eigenvalues of A^T + A matrix by matrix with SciPy's eigh (driver 'ev', not syevd), increasing."""
    flat = stack.reshape(-1, *stack.shape[-2:])
    out = np.array([scipy.linalg.eigh(a + a.T, eigvals_only=True, driver="ev") for a in flat])
    return out.reshape(*stack.shape[:-2], stack.shape[-1])


def simulate_study(directory, study: str, points: list[str], samples: int, *inner: str,
                   block_size: int | None = None) -> None:
    """Each Hive-style grid point of `study` simulated through the CLI (seed 5, NumPy, one shard
    of `samples`, blocks of `block_size` if given), merged into directory/<study>.h5 as the
    workflow merges, every shard checked against the seed and the inner axes `inner` (e.g.
    "--skip", "0", "1"), which go to every simulate too."""
    from svperturb.cli import main

    size = ["--block-size", str(block_size)] if block_size else []
    shards = []
    for i, point in enumerate(points):
        shard = directory / "shards" / f"{study}-{i}.h5"
        assert main(["simulate", "--study", study, "--point", point, "--start", "0", "--stop",
                     str(samples), "--seed", "5", "--backend", "numpy", "--output", str(shard),
                     *size, *inner]) == 0
        shards.append(str(shard))
    assert main(["aggregate", "--study", study, "--samples", str(samples), "--seed", "5", *inner,
                 "--output", str(directory / f"{study}.h5"), *shards]) == 0


def tampered_copy(results_dir, tmp_path, study: str, changes: dict, where: str = "",
                  every: bool = False):
    """A copy of the merged results in tmp_path where `changes` {dataset: f(array)} edit the first
    grid point whose path contains `where` (every such point with every=True); f returns the new
    array, or None after editing its argument in place."""
    import shutil

    import h5py

    from svperturb.analysis.claims import Results

    for path in results_dir.glob("*.h5"):
        shutil.copy(path, tmp_path / path.name)
    with h5py.File(tmp_path / f"{study}.h5", "r+") as fh:
        groups = []
        fh.visititems(lambda name, obj: groups.append(name)
                      if "point_json" in obj.attrs and where in name + "/" else None)
        assert groups, f"no grid point of {study} matches {where!r}"
        for group in groups if every else groups[:1]:
            for dataset, change in changes.items():
                values = fh[group][dataset][()]
                new = change(values)
                fh[group][dataset][...] = values if new is None else new
    return Results(tmp_path)
