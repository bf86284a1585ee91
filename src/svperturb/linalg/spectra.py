"""Batched spectra: singular values, s_*, the condition number, tau_bar and tau_low.

All functions take stacks of matrices (..., n, n) and an array module `xp` (NumPy here).
They call LAPACK in float64 (gesdd for singular values, syevd for symmetric eigenvalues); the fast
paths of later versions must live here and be checked against these.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np


def singular_values(a, xp: ModuleType = np):
    """All singular values s_1 >= ... >= s_n of each matrix in the stack `a` (..., n, n)."""
    return xp.linalg.svd(a, compute_uv=False)


def rank_tolerance(s, xp: ModuleType = np):
    """Threshold below which a singular value counts as zero: n * eps * s_1 (as numpy.matrix_rank)."""
    return s.shape[-1] * xp.finfo(s.dtype).eps * s[..., 0]


def smallest_nonzero_singular_value(s, xp: ModuleType = np):
    """s_*: the smallest singular value above rank_tolerance (docs/claims.md, Objects); NaN if none is."""
    tol = rank_tolerance(s, xp)[..., None]
    masked = xp.where(s > tol, s, xp.inf)
    s_star = masked.min(axis=-1)
    return xp.where(xp.isfinite(s_star), s_star, xp.nan)


def numerical_rank(s, xp: ModuleType = np):
    """Number of singular values above rank_tolerance."""
    return (s > rank_tolerance(s, xp)[..., None]).sum(axis=-1)


def condition_number(s, xp: ModuleType = np):
    """kappa = s_1 / s_* (53), from singular values sorted in decreasing order."""
    return condition_number_of_extremes(s[..., 0], smallest_nonzero_singular_value(s, xp))


def condition_number_of_extremes(s1, s_star):
    """kappa = s_1 / s_* (53) from s_1 and s_* alone (engine.extremes)."""
    return s1 / s_star


def symmetric_part_extremes(mo, xp: ModuleType = np):
    """(tau_low, tau_bar): smallest and largest eigenvalues of Mo^T + Mo (Definition 15)."""
    eig = symmetric_part_eigenvalues(mo, xp)
    return eig[..., 0], eig[..., -1]


def symmetric_part_eigenvalues(mo, xp: ModuleType = np):
    """All eigenvalues of Mo^T + Mo, increasing."""
    return xp.linalg.eigvalsh(mo + xp.swapaxes(mo, -1, -2))


def add_identity(mo, rho: float, xp: ModuleType = np):
    """M(rho) = Mo + rho I (45) for a stack of square matrices."""
    n = mo.shape[-1]
    return mo + rho * xp.eye(n, dtype=mo.dtype)
