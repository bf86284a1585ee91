"""Derivatives of singular values along M(rho) = Mo + rho I (Lemma 14) and the finite differences
that check them, with a rigorous error budget.

Notation as in the paper: in NumPy's A = U S Vh, the right singular vector u_i is Vh[i] and the
left one v_i is U[:, i] (A u_i = s_i v_i). Lemma 14: lambda_i = s_i^2 has derivative
lambda_i' = 2 u_i^T Mo u_i + 2 rho (65), and s_i' = lambda_i' / (2 s_i) = u_i^T v_i (66), wherever
s_i is simple and non-zero.

Error budget of a central difference (why the tolerances below are bounds, not guesses). The
singular values of A(rho) are the non-negative eigenvalues of the symmetric H(rho) =
[[0, A], [A^T, 0]], whose spectrum is {+-s_j}; H(rho + t) = H(rho) + t J with J = [[0, I], [I, 0]],
||J|| = 1. Let d_i be the isolation distance of s_i in {+-s_j}: min(s_{i-1} - s_i, s_i - s_{i+1})
and, for i = n, also 2 s_n (the distance to -s_n; s_i is not differentiable where it vanishes).
For complex |t| < d_i / 2 the circle of radius d_i / 2 around s_i encloses exactly one eigenvalue
of H(rho) + t J (the resolvent bound ||t J R(z)|| <= 2|t|/d_i < 1, Kato II-3), so
f(t) = s_i(rho + t) extends analytically to that disc, and by Bauer-Fike |f(t) - f(0)| <= |t|.
Cauchy's estimate gives |f^(j)(0)| / j! <= (2 / d_i)^(j - 1). A central stencil
D_h f = (1/h) sum_k w_k f(k h), |k| <= m, exact to order p = 2m, therefore errs by at most
    T(q) = sum_{j odd > p} |c_j| q^(j - 1),   c_j = sum_k w_k k^j,   q = 2 h / d_i,
provided m q < 1 (every node inside the disc). For the 7-point stencil (m = 3) T(q) = 36 q^6 + ...
For f = s_i^2 the same argument with |f(t) - f(0)| <= |t| (2 s_i + |t|) multiplies T by
(2 s_i + d_i / 2). Rounding: each computed s_i is exact for A + E with ||E|| <= delta =
16 n eps s_1 (bounds.rounding_tolerance, the project's convention for backward-stable LAPACK), so
the stencil adds at most (sum |w_k| / h) delta; the computed vectors are off by an angle
<= delta / (d_i - delta) (Davis-Kahan on H), which moves u^T v = x^T J x (x = [v; u] / sqrt 2)
by at most 4 delta / d_i and u^T Mo u by 4 s_1(Mo) delta / d_i.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from svperturb.theory.bounds import rounding_tolerance

STEP = 2.0**-14  # finite-difference step h (a power of 2: rho + k h is exact for dyadic rho)
HALF_WIDTH = 3  # stencil nodes rho + k h, |k| <= 3: the 7-point, 6th-order central difference
GAP_FACTOR = 20.0  # check s_i only where d_i >= GAP_FACTOR h, i.e. q = 2h/d_i <= 0.1, m q <= 0.3


def central_difference_weights(half_width: int = HALF_WIDTH) -> np.ndarray:
    """Weights w_k, k = -m..m, of the central difference f'(0) ~ (1/h) sum_k w_k f(k h), exact for
    polynomials of degree <= 2m (order 2m); from the Vandermonde system sum_k w_k k^j = [j = 1]."""
    k = np.arange(-half_width, half_width + 1, dtype=float)
    powers = np.arange(2 * half_width + 1)
    vandermonde = k[None, :] ** powers[:, None]
    rhs = (powers == 1).astype(float)
    weights = np.linalg.solve(vandermonde, rhs)
    return np.where(np.abs(weights) < 1e-14, 0.0, weights)


def stencil_moments(weights: np.ndarray, orders) -> np.ndarray:
    """c_j = sum_k w_k k^j for the given orders j."""
    m = (len(weights) - 1) // 2
    k = np.arange(-m, m + 1, dtype=float)
    return np.array([float(np.sum(weights * k**j)) for j in orders])


def truncation_bound(q, half_width: int = HALF_WIDTH, terms: int = 80):
    """T(q) = sum_{j odd > 2m} |c_j| q^(j-1): the largest truncation error of the central
    difference of a function analytic on the disc of radius h/q with |f(t) - f(0)| <= |t| (module
    docstring). Infinite where m q >= 1 (the series need not converge)."""
    q = np.asarray(q, dtype=float)
    weights = central_difference_weights(half_width)
    orders = np.arange(2 * half_width + 1, 2 * half_width + 1 + 2 * terms, 2)
    moments = np.abs(stencil_moments(weights, orders))
    inside = half_width * q < 1
    safe_q = np.where(inside, q, 0.0)
    total = np.zeros_like(safe_q)
    for order, moment in zip(orders, moments):
        total = total + moment * safe_q ** (order - 1)
    return np.where(inside, total, np.inf)


def isolation_distances(s, xp: ModuleType = np):
    """d_i: distance of s_i to the rest of {+-s_j} (decreasing s, shape (..., n)):
    min(s_{i-1} - s_i, s_i - s_{i+1}), and 2 s_n for the last. s_i is analytic in rho on a disc of
    radius d_i / 2 (module docstring)."""
    gaps = s[..., :-1] - s[..., 1:]
    inf = xp.full(s.shape[:-1] + (1,), xp.inf)
    above = xp.concatenate([inf, gaps], axis=-1)
    below = xp.concatenate([gaps, 2 * s[..., -1:]], axis=-1)
    return xp.minimum(above, below)


def singular_value_derivatives(mo, rho: float, xp: ModuleType = np):
    """Lemma 14 at M = Mo + rho I for a stack mo (..., n, n): returns (s, ds, dlambda) with
    s the singular values, ds = u_i^T v_i (66) and dlambda = 2 u_i^T Mo u_i + 2 rho (65)."""
    n = mo.shape[-1]
    left, s, right = xp.linalg.svd(mo + rho * xp.eye(n), full_matrices=False)
    ds = xp.einsum("...ki,...ik->...i", left, right)  # v_i = U[:, i], u_i = Vh[i]
    dlambda = 2 * xp.einsum("...ik,...kl,...il->...i", right, mo, right) + 2 * rho
    return s, ds, dlambda


def stencil_singular_values(mo, rho: float, step: float = STEP, half_width: int = HALF_WIDTH,
                            xp: ModuleType = np):
    """s_i(rho + k h), k = -m..m, for a stack mo (..., n, n); shape (2m + 1, ..., n). Nodes below
    0 are fine: M(rho) = Mo + rho I is defined for every real rho."""
    n = mo.shape[-1]
    eye = xp.eye(n)
    return xp.stack([xp.linalg.svd(mo + (rho + k * step) * eye, compute_uv=False)
                     for k in range(-half_width, half_width + 1)])


def central_difference(values, step: float = STEP, weights=None):
    """(1/h) sum_k w_k values[k] over the first axis (the stencil nodes)."""
    weights = central_difference_weights((len(values) - 1) // 2) if weights is None else weights
    return np.tensordot(weights, values, axes=1) / step


def derivative_tolerances(s, isolation, s1_mo, rho: float, step: float = STEP,
                          half_width: int = HALF_WIDTH):
    """Largest |analytic - finite difference| that the error budget allows, for (66) and (65).

    s, isolation: (..., n) singular values of M(rho) and their isolation distances d_i; s1_mo (...)
    the spectral norm of Mo. delta = 16 n eps s_1 over the stencil (s_1(rho) + m h) plus the
    rounding of the nodes rho + k h. Returns (tol_66, tol_65), infinite where m q >= 1.
    """
    n = s.shape[-1]
    weights = central_difference_weights(half_width)
    spread = np.abs(weights).sum() / step
    eps = np.finfo(float).eps
    delta = (rounding_tolerance(s[..., :1] + half_width * step, n)
             + eps * (abs(rho) + half_width * step))
    with np.errstate(divide="ignore", invalid="ignore"):
        q = 2 * step / isolation
        truncation = truncation_bound(q, half_width)
        vectors = 4 * delta / np.maximum(isolation - delta, 0)
    tol_66 = truncation + spread * (delta + eps * s[..., :1]) + vectors + n * eps
    square_delta = (2 * s + delta) * delta
    tol_65 = ((2 * s + isolation / 2) * truncation + spread * (square_delta + eps * s[..., :1] ** 2)
              + 2 * s1_mo[..., None] * vectors + rounding_tolerance(s1_mo[..., None] + abs(rho), n))
    return tol_66, tol_65


def checkable(isolation, step: float = STEP, gap_factor: float = GAP_FACTOR):
    """Mask of the s_i whose isolation distance allows the stencil: d_i >= gap_factor h."""
    return isolation >= gap_factor * step
