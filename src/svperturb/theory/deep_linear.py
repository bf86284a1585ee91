"""Deep linear networks with L2 regularization (Jacot et al., arXiv 2106.15933, the abstract).

A deep linear network A = W_L ... W_1 trained on a square loss against a teacher M with whitened
inputs has the loss 1/2 ||A - M||_F^2, and with L2 on the parameters
1/2 ||A - M||_F^2 + lambda/2 sum_i ||W_i||_F^2. The abstract states that the L2 term "corresponds
to the addition to the cost of a L_p-Schatten (quasi)norm on the linear map with p = 2/L":

    min { sum_i ||W_i||_F^2 : W_L ... W_1 = A } = L sum_j s_j(A)^(2/L)        (schatten_penalty)

(AM-GM on the factors' singular values; attained by the balanced factorization, every W_i with
singular values s(A)^(1/L) on A's singular vectors: sampling/factorizations.py, balanced_factors).
So the regularized problem splits along the teacher's singular values m: per m the scalar problem

    minimise 1/2 (s - m)^2 + (lambda L / 2) s^(2/L) over s >= 0          (l2_scalar_objective)

whose non-zero stationary points are the roots of g(s) = s - m + lambda s^(2/L - 1)
(stationarity_residual). Depth 2: g is s - m + lambda, the soft threshold s = max(m - lambda, 0).
Depth L >= 3: g'(s) = 1 - lambda (1 - 2/L) s^(2/L - 2) vanishes at
s_e = (lambda (1 - 2/L))^(L / (2L - 2)), so g falls from +inf to g(s_e) = m_e - m and rises again:
two non-zero roots (an unstable one below s_e, a stable one above) iff m > m_e = s_e + lambda
s_e^(2/L - 1), while s = 0 is always a local minimum (the penalty's slope is infinite there). The
global minimum jumps from 0 to s_c = (lambda (L - 2))^(L / (2L - 2)) at m_c = s_c + lambda
s_c^(2/L - 1), where the objective at the stable root equals its value 1/2 m^2 at 0: the
"depth-dependent low-rank bias" of the abstract; between m_e and m_c the non-zero branch is a local
minimum that is not global, and above m_c so is s = 0 ("for deep networks, some local minima
appear"). m_e / m_c = 2 L^(-L / (2L - 2)) whatever lambda.

Without L2 (the abstract's saddle-to-saddle regime) the loss at the saddle whose map is the best
rank-k approximation of M is 1/2 sum_(i > k) m_i^2 (plateau_losses).

Functions are NumPy-vectorised over their arguments, in float64.
"""

from __future__ import annotations

import numpy as np

# Bisection halvings of the roots' brackets: a bracket of relative width 1 reaches float64
# spacing after 53; 200 is a safe bound (the loop stops when the bracket no longer shrinks).
BISECTION_STEPS = 200
# The stationary points of the scalar problem, in the order stationary_points returns them.
ZERO, UNSTABLE, STABLE = 0, 1, 2
BRANCHES = {ZERO: "zero", UNSTABLE: "unstable", STABLE: "stable"}


def _depth(depth) -> int:
    depth = int(depth)
    if depth < 2:
        raise ValueError(f"depth: got {depth}; allowed: an integer >= 2")
    return depth


def schatten_penalty(singular_values, depth):
    """L sum_j s_j^(2/L) over the last axis: the least sum_i ||W_i||_F^2 over the factorizations
    W_L ... W_1 = A of a map with singular values s_j (Jacot et al., arXiv 2106.15933, the
    abstract: L2 on the parameters is the L_(2/L)-Schatten quasi-norm penalty on the map)."""
    depth = _depth(depth)
    s = np.asarray(singular_values, dtype=float)
    return depth * np.sum(s ** (2.0 / depth), axis=-1)


def l2_scalar_objective(s, m, l2, depth):
    """1/2 (s - m)^2 + (lambda L / 2) s^(2/L): the regularized loss along one singular direction of
    the teacher (value m) at a balanced network whose map has singular value s there (Jacot et
    al., arXiv 2106.15933, the abstract's L_(2/L) penalty)."""
    depth = _depth(depth)
    s = np.asarray(s, dtype=float)
    return 0.5 * (s - m) ** 2 + 0.5 * l2 * depth * s ** (2.0 / depth)


def stationarity_residual(s, m, l2, depth):
    """g(s) = s - m + lambda s^(2/L - 1), the derivative of l2_scalar_objective in s for s > 0:
    its roots are the non-zero stationary points (Jacot et al., arXiv 2106.15933)."""
    depth = _depth(depth)
    s = np.asarray(s, dtype=float)
    return s - m + l2 * s ** (2.0 / depth - 1)


def stationarity_slope(s, l2, depth):
    """g'(s) = 1 - lambda (1 - 2/L) s^(2/L - 2): positive on the stable branch (s > s_e)."""
    depth = _depth(depth)
    return 1 - l2 * (1 - 2.0 / depth) * np.asarray(s, dtype=float) ** (2.0 / depth - 2)


def branch_onset(l2, depth):
    """(s_e, m_e): the non-zero stationary points exist iff m >= m_e; s_e = (lambda (1 -
    2/L))^(L/(2L-2)) where g' vanishes, m_e = s_e + lambda s_e^(2/L - 1) (Jacot et al., arXiv
    2106.15933: local minima appear for deep networks). Depth 2: (0, lambda)."""
    depth = _depth(depth)
    l2 = np.asarray(l2, dtype=float)
    if depth == 2:
        return np.zeros_like(l2), l2.copy()
    s_e = (l2 * (1 - 2.0 / depth)) ** (depth / (2.0 * depth - 2))
    return s_e, s_e + l2 * s_e ** (2.0 / depth - 1)


def jump_point(l2, depth):
    """(s_c, m_c): the global minimum is 0 for m < m_c and jumps to s_c at m_c; s_c = (lambda
    (L - 2))^(L/(2L-2)), m_c = s_c + lambda s_c^(2/L - 1) (Jacot et al., arXiv 2106.15933: the
    low-rank bias grows with depth). Depth 2: (0, lambda), no jump (the soft threshold)."""
    depth = _depth(depth)
    l2 = np.asarray(l2, dtype=float)
    if depth == 2:
        return np.zeros_like(l2), l2.copy()
    s_c = (l2 * (depth - 2)) ** (depth / (2.0 * depth - 2))
    return s_c, s_c + l2 * s_c ** (2.0 / depth - 1)


def soft_threshold(m, l2):
    """max(m - lambda, 0): the minimizer of 1/2 (s - m)^2 + lambda s over s >= 0, depth 2's
    l2_scalar_objective (Jacot et al., arXiv 2106.15933: for shallow networks every critical point
    is a strict saddle or a global minimum)."""
    return np.maximum(np.asarray(m, dtype=float) - l2, 0.0)


def _bisect(function, low, high, logarithmic: bool):
    """A root of `function` between low and high (arrays, function(low) and function(high) of
    opposite signs), by bisection (geometric means where `logarithmic`) until the bracket stops
    shrinking."""
    low, high = np.array(low, dtype=float), np.array(high, dtype=float)
    sign_low = np.sign(function(low))
    for _ in range(BISECTION_STEPS):
        middle = np.sqrt(low * high) if logarithmic else (low + high) / 2
        done = (middle <= np.minimum(low, high)) | (middle >= np.maximum(low, high))
        if np.all(done):
            break
        same = np.sign(function(middle)) == sign_low
        low = np.where(same & ~done, middle, low)
        high = np.where(~same & ~done, middle, high)
    return (low + high) / 2


def nonzero_roots(m, l2, depth):
    """(unstable, stable): the roots of stationarity_residual, NaN where there is none (Jacot et
    al., arXiv 2106.15933). Depth 2: stable = m - lambda for m > lambda, no unstable one. Depth
    L >= 3, m >= m_e: the unstable root in (0, s_e] (g falls there) and the stable one in
    [s_e, m] (g rises; g(m) = lambda m^(2/L - 1) > 0), each by bisection."""
    depth = _depth(depth)
    m = np.asarray(m, dtype=float)
    l2 = np.broadcast_to(np.asarray(l2, dtype=float), m.shape)
    if depth == 2:
        return np.full(m.shape, np.nan), np.where(m > l2, m - l2, np.nan)
    s_e, m_e = branch_onset(l2, depth)
    exists = m >= m_e
    mm = np.where(exists, m, m_e)  # placeholders where no root exists, dropped below

    def residual(s):
        return stationarity_residual(s, mm, l2, depth)

    # below (lambda / m)^(L / (L - 2)) the penalty's slope alone exceeds m: g > 0 there
    floor = 0.5 * np.minimum((l2 / mm) ** (depth / (depth - 2.0)), s_e)
    unstable = _bisect(residual, floor, s_e, logarithmic=True)
    stable = _bisect(residual, s_e, np.maximum(mm, s_e), logarithmic=False)
    return np.where(exists, unstable, np.nan), np.where(exists, stable, np.nan)


def stationary_points(m, l2, depth):
    """The stationary points of l2_scalar_objective over s >= 0, (..., 3): [0, unstable root,
    stable root] (indices ZERO, UNSTABLE, STABLE), NaN where a root does not exist. s = 0 is a
    local minimum at every depth >= 3 and, at depth 2, for m < lambda."""
    unstable, stable = nonzero_roots(m, l2, depth)
    return np.stack([np.zeros_like(stable), unstable, stable], axis=-1)


def global_minimizer(m, l2, depth):
    """The global minimizer of l2_scalar_objective: depth 2, the soft threshold; depth L >= 3, 0
    below m_c and the stable root from m_c on (Jacot et al., arXiv 2106.15933)."""
    depth = _depth(depth)
    if depth == 2:
        return soft_threshold(m, l2)
    m = np.asarray(m, dtype=float)
    _, m_c = jump_point(l2, depth)
    _, stable = nonzero_roots(m, l2, depth)
    return np.where(m >= m_c, stable, 0.0)


def local_minima(m, l2, depth):
    """(..., 3) booleans: which of stationary_points are local minima of l2_scalar_objective:
    0 at depth >= 3 always, at depth 2 for m < lambda; the stable root wherever it exists (at
    m = m_e, a double root, neither)."""
    depth = _depth(depth)
    points = stationary_points(m, l2, depth)
    m = np.asarray(m, dtype=float)
    zero = np.full(m.shape, True) if depth > 2 else m < np.broadcast_to(l2, m.shape)
    stable = np.isfinite(points[..., STABLE]) & (stationarity_slope(
        np.where(np.isfinite(points[..., STABLE]), points[..., STABLE], 1.0), l2, depth) > 0)
    return np.stack([zero, np.zeros_like(zero), stable], axis=-1)


def stationary_distance_bound(s, m, l2, depth, gradient_norm, branch):
    """A first-order bound on |s - s*|, s* the stationary point of `branch` (ZERO, UNSTABLE,
    STABLE) of the scalar problem, for a network whose map has the value s along the teacher's
    singular direction of value m, from the norm G of the gradient of the regularized loss in all
    parameters (linalg/linear_network.py), at a balanced point aligned with the teacher.

    Non-zero branches: there each layer's gradient along the direction is s^(1 - 1/L) g(s), so
    sqrt(L) s^(1 - 1/L) |g(s)| <= G, and g(s) = g'(s) (s - s*) to first order:
    |s - s*| <= G / (sqrt(L) s^(1 - 1/L) |g'(s)|). The zero branch: each factor w_i's gradient is
    lambda w_i - (m - s) prod_(j != i) w_j, so |w_i| <= G / (lambda - m [L = 2]) to first order
    and |s| <= (G / (lambda - m [L = 2]))^L. Infinite where the bound does not apply (s <= 0 on
    a non-zero branch, g' = 0, a zero branch at depth 2 with m >= lambda)."""
    depth = _depth(depth)
    s, m = np.asarray(s, dtype=float), np.asarray(m, dtype=float)
    g_norm = np.asarray(gradient_norm, dtype=float)
    branch = np.asarray(branch)
    with np.errstate(divide="ignore", invalid="ignore"):
        positive = np.where(s > 0, s, np.nan)
        slope = np.abs(stationarity_slope(positive, l2, depth))
        nonzero = g_norm / (np.sqrt(depth) * positive ** (1 - 1.0 / depth) * slope)
        margin = l2 - (m if depth == 2 else 0.0)
        zero = np.where(margin > 0, (g_norm / np.where(margin > 0, margin, 1.0)) ** depth, np.inf)
    bound = np.where(branch == ZERO, zero, nonzero)
    return np.where(np.isfinite(bound), bound, np.inf)


def plateau_losses(teacher_singular_values):
    """1/2 sum_(i > k) m_i^2 for k = 0 .. d (last axis; m sorted decreasing first): the loss
    1/2 ||A - M||_F^2 at the saddle where A is the best rank-k approximation of M, the plateau
    levels of the saddle-to-saddle regime (Jacot et al., arXiv 2106.15933, the abstract: "a
    sequence of saddles, each corresponding to linear maps of increasing rank")."""
    m = -np.sort(-np.asarray(teacher_singular_values, dtype=float), axis=-1)
    tail = np.cumsum((m**2)[..., ::-1], axis=-1)[..., ::-1]  # sum_(i >= k) for k = 1 .. d
    return 0.5 * np.concatenate([tail, np.zeros(m.shape[:-1] + (1,))], axis=-1)


def schatten_penalty_perturbation(singular_values, delta, depth):
    """The most L sum_j s_j^(2/L) can change when every s_j moves by at most delta (Weyl's bound
    for a perturbation of norm delta): L sum_j min(delta^(2/L), (2/L) s_j^(2/L - 1) delta), since
    t -> t^p, p = 2/L <= 1, is concave with |(s + e)^p - s^p| <= |e|^p and <= p s^(p-1) |e|
    (first order). Near s_j = 0 the penalty is not Lipschitz: a rounding error of eps ||A|| in a
    zero singular value changes it by (eps ||A||)^(2/L)."""
    depth = _depth(depth)
    s = np.asarray(singular_values, dtype=float)
    delta = np.asarray(delta, dtype=float)[..., None]
    p = 2.0 / depth
    with np.errstate(divide="ignore"):
        linear = np.where(s > 0, p * np.where(s > 0, s, 1.0) ** (p - 1) * delta, np.inf)
    return depth * np.sum(np.minimum(delta**p, linear), axis=-1)
