"""Shared test helpers: tiny grid points of each study (SPEC section 2) and a float64 reference SVD."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

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
