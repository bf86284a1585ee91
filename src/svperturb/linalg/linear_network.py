"""Full-batch gradient descent on deep linear networks, many runs at once (Jacot et al., arXiv
2106.15933: the deep_linear_dynamics and deep_linear_l2 studies).

A network A = W_L ... W_1 (W_1: w x d_0, W_i: w x w, W_L: d_L x w) fits a teacher M on whitened
inputs, so its loss is

    F(W) = 1/2 ||A - M||_F^2 + lambda/2 sum_i ||W_i||_F^2,
    grad_(W_i) F = -A_i^T R B_i^T + lambda W_i,   R = M - A,

A_i = W_L ... W_(i+1), B_i = W_(i-1) ... W_1 (linalg/sharpness.py: factor_products; the product
A_i^T R B_i^T is linalg/descent.py's residual_products, which the factorization loss shares).

The step: W_i <- W_i - eta_t grad_(W_i) F with eta_t = step_factor / beta_t per run, beta_t =
max(sum_i ||A_i||^2 ||B_i||^2 + lambda, L ||M||^(2 - 2/L)) (spectral norms). The first term
bounds the Gauss-Newton part of the Hessian (||J||^2 <= sum_i ||A_i||^2 ||B_i||^2, Cauchy-Schwarz;
A_i and B_i have d_L rows and d_0 columns, so their norms come from small Gram matrices); the
floor is the sharpness of the balanced minimizer of 1/2 ||A - M||^2
(Kamber & Parhi, arXiv 2509.25783; theory/matrix_factorization.py: balanced_sharpness, halved),
so that a small initialization does not take steps that the end of training could not. Where the
initialization is small beta_t sits on the floor the whole run: a constant step, and time in steps
is proportional to gradient-flow time; elsewhere the flow time t = sum eta_t is recorded too.

Stopping rule, per run, checked every step: the gradient norm G = (sum_i ||grad_(W_i) F||_F^2)^(1/2)
is at most `gradient_tolerance`, or the data loss 1/2 ||A - M||_F^2 is at most `loss_tolerance`.
What G guarantees: at a balanced point aligned with the teacher, along a teacher singular direction
of value m the map's value s lies within theory/deep_linear.py's stationary_distance_bound (G over
the local curvature sqrt(L) s^(1 - 1/L) |g'(s)| on a non-zero branch, (G / lambda)^L on the zero
one) of the stationary point, to first order; with lambda > 0 gradient descent's limit points are
balanced (d/dt (W_(i+1)^T W_(i+1) - W_i W_i^T) = -2 lambda (...) under gradient flow).

Recording: at the steps `record_steps` only (a logarithmic grid), the data loss, the map's
singular values and its projections u_k^T A v_k on the teacher's singular pairs (u_k, v_k); a run
that stopped keeps its last values for the later grid steps. Memory holds the batch's weights and
these records: it does not grow with the number of steps. A stopped run leaves the batch
(compaction): every operation acts on each run alone, so its numbers do not depend on which runs
share its batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy as np

from svperturb.linalg.backend import to_host
from svperturb.linalg.descent import residual_products
from svperturb.linalg.sharpness import factor_products
from svperturb.theory.matrix_factorization import balanced_sharpness


def loss_and_gradient(weights, m, l2, xp: ModuleType = np):
    """(data loss 1/2 ||A - M||_F^2 (batch,), [grad_(W_i) F], the map A, and the Gauss-Newton
    bound sum_i ||A_i||^2 ||B_i||^2 (batch,)) at `weights` (module docstring); `l2` a number
    or per run (batch, 1, 1)."""
    lefts, rights = factor_products(weights, xp)
    a = weights[-1] @ rights[-1]
    r = m - a
    gradients = [l2 * w - p for w, p in zip(weights, residual_products(lefts, rights, r, xp))]
    # ||A_i||^2 and ||B_i||^2 from the d_L x d_L and d_0 x d_0 Gram matrices, every layer at once
    left_norms = xp.linalg.eigvalsh(xp.stack([x @ xp.swapaxes(x, -1, -2) for x in lefts]))[..., -1]
    right_norms = xp.linalg.eigvalsh(xp.stack([xp.swapaxes(x, -1, -2) @ x for x in rights]))[..., -1]
    gauss_newton = (left_norms * right_norms).sum(axis=0)
    return 0.5 * (r * r).sum(axis=(-2, -1)), gradients, a, gauss_newton


def gradient_norm(gradients, xp: ModuleType = np):
    """(sum_i ||G_i||_F^2)^(1/2) per run."""
    return xp.sqrt(sum((g * g).sum(axis=(-2, -1)) for g in gradients))


def logarithmic_steps(max_steps: int, per_decade: int) -> np.ndarray:
    """0 and about `per_decade` steps per decade from 1 to max_steps (rounded, distinct,
    max_steps included): the grid at which training is recorded."""
    decades = np.log10(max(max_steps, 1))
    grid = np.rint(np.logspace(0, decades, max(int(np.ceil(decades * per_decade)), 1) + 1))
    return np.unique(np.concatenate([[0], grid.astype(np.int64), [max_steps]]))


@dataclass(frozen=True)
class Training:
    """train's result, host (NumPy) arrays: per run the steps taken, whether the stopping rule was
    met, the final gradient norm, data loss and regularized loss; on the grid `record_steps`
    (T steps) the data loss (runs, T), the flow time sum eta (runs, T), the map's singular
    values (runs, T, d) decreasing and its projections u_k^T A v_k (runs, T, d); and the final
    weights (on `xp`)."""

    steps: np.ndarray
    stopped: np.ndarray
    gradient_norm: np.ndarray
    loss: np.ndarray
    objective: np.ndarray
    record_steps: np.ndarray
    loss_curve: np.ndarray
    flow_time: np.ndarray
    singular_value_curve: np.ndarray
    projection_curve: np.ndarray
    weights: list


def _map_statistics(a, u, v, xp):
    """(singular values (runs, d) decreasing, projections diag(U^T A V) (runs, d)) on the host."""
    values = xp.linalg.svd(a, compute_uv=False)
    projections = (u * (a @ v)).sum(axis=-2)
    return to_host(values), to_host(projections)


def train(weights, m, u, v, l2, step_factor: float, max_steps: int, record_steps,
          gradient_tolerance: float, loss_tolerance: float, xp: ModuleType = np) -> Training:
    """Gradient descent from `weights` (list of L arrays (runs, d_i, d_(i-1)), W_1 first) on
    F = 1/2 ||W_L ... W_1 - M||_F^2 + l2/2 sum_i ||W_i||_F^2, M = U diag(m_k) V^T given as `m`
    (runs, d, d) with its singular vectors `u`, `v` (runs, d, d; columns), until the stopping
    rule or `max_steps` (module docstring); `l2` a number or one per run. `record_steps` (sorted,
    from 0) are the grid steps."""
    record_steps = np.asarray(record_steps, dtype=np.int64)
    if record_steps[0] != 0 or np.any(np.diff(record_steps) <= 0) or record_steps[-1] > max_steps:
        raise ValueError("record_steps: need 0 first, increasing, at most max_steps")
    runs, depth = m.shape[0], len(weights)
    l2_host = np.broadcast_to(np.asarray(l2, dtype=float), (runs,)).copy()
    lam = xp.asarray(l2_host)[:, None, None]
    d = min(m.shape[-2:])
    floor = balanced_sharpness(np.linalg.norm(to_host(m), ord=2, axis=(-2, -1)), depth) / 2
    shape = (runs, len(record_steps))
    loss_curve, flow = np.full(shape, np.nan), np.zeros(shape)
    values_curve, projections_curve = np.full(shape + (d,), np.nan), np.full(shape + (d,), np.nan)
    steps = np.full(runs, max_steps, dtype=np.int64)
    stopped = np.zeros(runs, dtype=bool)
    final_gradient, final_loss, final_objective = (np.full(runs, np.nan) for _ in range(3))
    final_weights: list = [None] * runs
    rows = np.arange(runs)  # the runs of the arrays' rows
    time = np.zeros(runs)
    weights = list(weights)
    slot = 0  # next record step
    for step in range(max_steps + 1):
        value, gradients, a, gauss_newton = loss_and_gradient(weights, m, lam, xp)
        norms = to_host(gradient_norm(gradients, xp))
        losses = to_host(value)
        done = (norms <= gradient_tolerance) | (losses <= loss_tolerance) | (step == max_steps)
        if slot < len(record_steps) and step == record_steps[slot]:
            sv, proj = _map_statistics(a, u, v, xp)
            loss_curve[rows, slot], flow[rows, slot] = losses, time
            values_curve[rows, slot], projections_curve[rows, slot] = sv, proj
            slot += 1
        if done.any():
            finished = rows[done]
            chosen = xp.asarray(np.flatnonzero(done))
            sv, proj = (_map_statistics(a[chosen], u[chosen], v[chosen], xp)
                        if slot < len(record_steps) else (None, None))
            for k, run in enumerate(finished):  # the later grid steps keep the final state
                loss_curve[run, slot:], flow[run, slot:] = losses[done][k], time[done][k]
                if sv is not None:
                    values_curve[run, slot:], projections_curve[run, slot:] = sv[k], proj[k]
            steps[finished] = step
            stopped[finished] = ((norms <= gradient_tolerance) | (losses <= loss_tolerance))[done]
            final_gradient[finished], final_loss[finished] = norms[done], losses[done]
            penalty = to_host(sum((w * w).sum(axis=(-2, -1)) for w in weights))
            final_objective[finished] = (losses + 0.5 * l2_host[rows] * penalty)[done]
            for row, run in zip(np.flatnonzero(done), finished):
                final_weights[run] = [w[int(row)] for w in weights]
            live = ~done
            if not live.any():
                break
            keep = xp.asarray(np.flatnonzero(live))
            rows, time = rows[live], time[live]
            weights = [w[keep] for w in weights]
            gradients = [g[keep] for g in gradients]
            m, u, v, lam = m[keep], u[keep], v[keep], lam[keep]
            gauss_newton = gauss_newton[keep]
        rate = step_factor / xp.maximum(gauss_newton + lam[:, 0, 0], xp.asarray(floor[rows]))
        time = time + to_host(rate)
        weights = [w - rate[:, None, None] * g for w, g in zip(weights, gradients)]
    stacked = [xp.stack([final_weights[run][i] for run in range(runs)]) for i in range(depth)]
    return Training(steps, stopped, final_gradient, final_loss, final_objective, record_steps,
                    loss_curve, flow, values_curve, projections_curve, stacked)
