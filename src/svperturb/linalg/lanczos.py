"""Batched Lanczos on a matrix-free symmetric operator: both ends of the spectrum with error bounds.

The operator acts on a block (rows, N) of vectors, one per sample of the batch (each sample its own
symmetric N x N matrix), and can be restricted to some of the samples (`MatrixFreeOperator`).
Every sample advances together from a Gaussian start, with full reorthogonalisation (classical
Gram-Schmidt, twice); a sample leaves the batch when its bounds are met (compaction), so the work
follows the slowest samples only. Used by linalg/sharpness.py (the top end of a positive
semi-definite operator, Kamber & Parhi, arXiv 2509.25783) and linalg/smooth_network.py (both ends
of an indefinite Hessian, Banerjee et al., arXiv 2209.15106).

Bounds. After k steps with tridiagonal T_k and next coefficient beta_k, a Ritz pair (theta_j, y_j)
of T_k has the residual r_j = beta_k |e_k^T y_j| = ||A x_j - theta_j x_j||.
Guaranteed (exact arithmetic): lambda_min <= theta_n <= theta_1 <= lambda_max (Rayleigh-Ritz),
and some eigenvalue lies within r_j of theta_j.
Assumed: the eigenvalue near theta_1 is lambda_max and every other eigenvalue is <= theta_2 + r_2
(Lanczos has missed nothing at the top; symmetrically at the bottom). A start without a component
along the extreme eigenvector has probability zero; one too small to show within k steps is what
the assumption excludes (the tests check against dense eigensolvers).
Then with the gap delta = theta_1 - theta_2 - r_2 > 0, Kato-Temple gives
    0 <= lambda_max - theta_1 <= r_1^2 / delta,
and the bound is min(r_1, r_1^2 / delta) (r_1 where delta <= 0); at the bottom the same with
delta = theta_(n-1) - r_(n-1) - theta_n. To it the caller's rounding term is added:
`rounding_ulps` eps times the spectrum's scale (max |theta| of the ends computed).

Memory: the basis holds rows x steps x N floats (doubled as it grows, so at most 1.5 times that
during a copy); callers bound it through `max_iter` and the batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import scipy.linalg

from svperturb.linalg.backend import to_host

EPS = np.finfo(np.float64).eps
# The tridiagonal eigenproblems on the host: NumPy's batched eigh on the dense T is faster than
# stebz/stein sample by sample up to k = 32 steps (32 samples: 0.8 against 1.1 ms at k = 20, 4
# against 1.8 ms at k = 40, 2-core AMD EPYC), O(k^3) against O(k) beyond.
RITZ_DENSE_LARGEST = 32
ENDS = ("top", "both")


@dataclass(frozen=True)
class MatrixFreeOperator:
    """A batch of symmetric operators: `apply(block)` maps (rows, N) to (rows, N), row j by sample
    j's operator; `restrict(rows)` (an index array on xp) gives the operator of those samples."""

    apply: Callable
    restrict: Callable


@dataclass(frozen=True)
class LanczosEnds:
    """lanczos_ends's result per sample (host arrays): the top Ritz value and its bound, the bottom
    Ritz value and its bound (NaN with ends="top"), the steps taken, and with `vector` the top Ritz
    vector (batch, N) on xp (None otherwise)."""

    top: np.ndarray
    top_bound: np.ndarray
    bottom: np.ndarray
    bottom_bound: np.ndarray
    steps: np.ndarray
    top_vectors: object = None


def lanczos_ends(operator: MatrixFreeOperator, batch: int, size: int, dtype, xp: ModuleType,
                 rtol: float, max_iter: int | None, seed: int, rounding_ulps: float,
                 ends: str = "top", vector: bool = False, start: np.ndarray | None = None) -> LanczosEnds:
    """The extreme eigenvalues of each sample's operator by Lanczos, with their bounds (module
    docstring). A sample stops when each end's bound is <= max(rtol scale, rounding), scale the
    largest |theta| of its ends, rounding = rounding_ulps eps scale, or after `max_iter` steps
    (default N: the Krylov space is then the whole space); its bounds are returned either way. With
    `vector` (ends="top" only), the top end stops on r_1 itself, so that the Ritz vector is within
    r_1 / gap of the top eigenvector (Davis-Kahan), not only the value within r_1^2 / gap. The
    start vectors are `start` (batch, N) on the host where given (normalised here), else drawn from
    Generator(seed)."""
    if ends not in ENDS:
        raise ValueError(f"ends: got {ends!r}; allowed: {', '.join(ENDS)}")
    if vector and ends != "top":
        raise ValueError("vector: only with ends='top'")
    both = ends == "both"
    max_iter = size if max_iter is None else max(1, min(max_iter, size))
    if start is None:
        start = np.random.default_rng(seed).standard_normal((batch, size))
    basis = xp.zeros((batch, min(max_iter, 16), size), dtype=dtype)
    basis[:, 0] = xp.asarray(start / np.linalg.norm(start, axis=-1, keepdims=True))
    alphas, betas = np.zeros((batch, max_iter)), np.zeros((batch, max_iter))
    live = np.arange(batch)  # the samples still iterating; the arrays on xp hold their rows only
    beta = xp.zeros(batch, dtype=dtype)
    top, top_bound, steps = np.zeros(batch), np.zeros(batch), np.zeros(batch, dtype=np.int64)
    bottom, bottom_bound = np.full(batch, np.nan), np.full(batch, np.nan)
    vectors = xp.zeros((batch, size), dtype=dtype) if vector else None
    for k in range(max_iter):
        w, alpha, beta = _lanczos_step(operator.apply, basis, k, beta, xp)
        alphas[live, k], betas[live, k] = to_host(alpha), to_host(beta)
        pairs = _ritz_bounds(alphas[live, :k + 1], betas[live, :k + 1], both)
        ritz, exact, residual, tops = pairs[:4]
        scale = np.abs(ritz)
        if both:
            low, low_exact = pairs[4:]
            scale = np.maximum(scale, np.abs(low))
        rounding = rounding_ulps * EPS * scale
        allowed = np.maximum(rtol * scale, rounding)
        done = ((residual if vector else exact) <= allowed) | (k + 1 == max_iter)
        if both:
            done &= (low_exact <= allowed) | (k + 1 == max_iter)
        if done.any():
            finished, rest = xp.asarray(np.flatnonzero(done)), xp.asarray(np.flatnonzero(~done))
            ended = live[done]
            top[ended], top_bound[ended], steps[ended] = ritz[done], (exact + rounding)[done], k + 1
            if both:
                bottom[ended], bottom_bound[ended] = low[done], (low_exact + rounding)[done]
            if vector:
                vectors[xp.asarray(ended)] = xp.einsum("bkn,bk->bn", basis[finished, :k + 1],
                                                       xp.asarray(tops[done]))
            live, w, beta, basis = live[~done], w[rest], beta[rest], basis[rest]
            if not len(live):
                break
            operator = operator.restrict(rest)
        if k + 1 == basis.shape[1]:
            basis = _grown(basis, min(2 * (k + 1), max_iter), xp)
        basis[:, k + 1] = w / beta[:, None]
    return LanczosEnds(top, top_bound, bottom, bottom_bound, steps, vectors)


def _lanczos_step(apply: Callable, basis, k: int, beta_before, xp: ModuleType):
    """(w, alpha_k, beta_k): A q_k orthogonalised against q_0 .. q_k (before normalisation)."""
    q = basis[:, k]
    w = apply(q)
    alpha = (q * w).sum(axis=-1)
    w = w - alpha[:, None] * q
    if k:
        w = w - beta_before[:, None] * basis[:, k - 1]
    for _ in range(2):  # twice is enough (Kahan, Parlett) to keep the basis orthonormal
        w = w - xp.einsum("bkn,bk->bn", basis[:, :k + 1],
                          xp.einsum("bkn,bn->bk", basis[:, :k + 1], w))
    return w, alpha, xp.sqrt((w * w).sum(axis=-1))


def _ritz_bounds(alphas: np.ndarray, betas: np.ndarray, bottom: bool = False):
    """(theta_1, the exact-arithmetic bound min(r_1, r_1^2 / delta), r_1, y_1) per sample from the
    Lanczos coefficients alpha_0..alpha_k and beta_0..beta_k (module docstring); with `bottom`
    also (theta_n, its bound)."""
    ritz, last, tops, lows, lows_last = _extreme_ritz_pairs(alphas, betas[:, :-1], bottom)
    exact, residual = _kato_temple(ritz[:, 0] - ritz[:, 1], betas[:, -1:] * np.abs(last))
    if not bottom:
        return ritz[:, 0], exact, residual, tops
    low_exact, _ = _kato_temple(lows[:, 1] - lows[:, 0], betas[:, -1:] * np.abs(lows_last))
    return ritz[:, 0], exact, residual, tops, lows[:, 0], low_exact


def _kato_temple(spacing: np.ndarray, residual: np.ndarray):
    """(min(r_1, r_1^2 / delta), r_1) with delta = spacing - r_2, from the residuals (n, 2) of the
    extreme Ritz value and its neighbour, `spacing` their distance (NaN at k = 1)."""
    gap = spacing - residual[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        exact = np.where(gap > 0, np.minimum(residual[:, 0], residual[:, 0] ** 2 / gap),
                         residual[:, 0])
    return exact, residual[:, 0]


def _extreme_ritz_pairs(alphas: np.ndarray, betas: np.ndarray, bottom: bool):
    """For each row's tridiagonal T (diagonal `alphas` (n, k), off-diagonal `betas` (n, k-1)): the
    two largest eigenvalues (n, 2), decreasing (the second NaN for k = 1), their eigenvectors' last
    components (n, 2), the top eigenvector (n, k); with `bottom` the two smallest eigenvalues,
    increasing, and their last components (else None). Host work: one batched dense eigh up to
    RITZ_DENSE_LARGEST steps, beyond LAPACK stebz/stein (O(k)) sample by sample."""
    n, k = alphas.shape
    lows = lows_last = None
    if k <= RITZ_DENSE_LARGEST:
        t = np.zeros((n, k, k))
        index = np.arange(k)
        t[:, index, index] = alphas
        t[:, index[1:], index[:-1]] = t[:, index[:-1], index[1:]] = betas
        every_value, every_vector = np.linalg.eigh(t)
        values, vectors = every_value[:, -2:], every_vector[:, :, -2:]
        if bottom:
            low_values, low_vectors = every_value[:, :2], every_vector[:, :, :2]
    else:
        pairs = [scipy.linalg.eigh_tridiagonal(alphas[j], betas[j], select="i",
                                               select_range=(k - 2, k - 1)) for j in range(n)]
        values, vectors = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
        if bottom:
            pairs = [scipy.linalg.eigh_tridiagonal(alphas[j], betas[j], select="i",
                                                   select_range=(0, 1)) for j in range(n)]
            low_values, low_vectors = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    ritz = values[:, ::-1] if k > 1 else np.c_[values, np.full(n, np.nan)]
    last = vectors[:, -1, ::-1] if k > 1 else np.c_[vectors[:, -1], np.zeros(n)]
    if bottom:
        lows = low_values if k > 1 else np.c_[low_values, np.full(n, np.nan)]
        lows_last = low_vectors[:, -1] if k > 1 else np.c_[low_vectors[:, -1], np.zeros(n)]
    return ritz, last, vectors[:, :, -1], lows, lows_last


def _grown(basis, length: int, xp: ModuleType):
    grown = xp.zeros((basis.shape[0], length, basis.shape[-1]), dtype=basis.dtype)
    grown[:, :basis.shape[1]] = basis
    return grown
