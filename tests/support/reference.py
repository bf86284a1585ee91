"""Reference spectra: LAPACK through SciPy, matrix by matrix, on other drivers than NumPy's."""

from __future__ import annotations

import numpy as np
import scipy.linalg


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
