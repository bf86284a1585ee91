"""Deep linear networks (Jacot et al., arXiv 2106.15933): every formula of theory/deep_linear.py
against an independent route (scipy.optimize, brute-force grids, the explicit balanced
factorization, hand cases), the trainer's gradient against central differences, compaction, the
records, and the stopping rule's guarantee on real runs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.optimize

from svperturb.linalg.linear_network import logarithmic_steps, loss_and_gradient, train
from svperturb.sampling.factorizations import balanced_factors, haar_orthogonal
from svperturb.sampling.linear_networks import initial_weights, teacher_frames, teacher_matrices
from svperturb.theory.deep_linear import (
    STABLE,
    UNSTABLE,
    ZERO,
    branch_onset,
    global_minimizer,
    jump_point,
    l2_scalar_objective,
    local_minima,
    nonzero_roots,
    plateau_losses,
    schatten_penalty,
    schatten_penalty_perturbation,
    soft_threshold,
    stationarity_residual,
    stationary_distance_bound,
    stationary_points,
)

EPS = np.finfo(float).eps
DEPTHS = (2, 3, 4, 6)


def product(weights):
    out = weights[0]
    for w in weights[1:]:
        out = w @ out
    return out


def norm_sum(weights):
    return sum((w**2).sum(axis=(-2, -1)) for w in weights)


# --- the identity min sum ||W_i||_F^2 = L sum s_j^(2/L) ------------------------------------------


def test_the_penalty_on_a_hand_case():
    """A = diag(4, 1), L = 2: 2 (4 + 1) = 10, and W_1 = W_2 = diag(2, 1) has sum 4 + 1 + 4 + 1."""
    assert schatten_penalty([4.0, 1.0], 2) == pytest.approx(10.0, rel=1e-15)
    w = np.diag([2.0, 1.0])[None]
    assert norm_sum([w, w])[0] == pytest.approx(10.0, rel=1e-15)
    # L = 4, A = 16 (scalar): every |w_i| = 2, sum 16 = 4 * 16^(1/2)
    assert schatten_penalty([16.0], 4) == pytest.approx(16.0, rel=1e-15)


@pytest.mark.parametrize("depth", DEPTHS)
def test_the_balanced_factorization_attains_the_penalty(depth):
    """The explicit balanced factorization of random maps: sum ||W_i||_F^2 equals L sum s^(2/L) to
    rounding (a sum of ~L d^2 terms, relative ~1e-15), and its product is the map."""
    rng = np.random.default_rng(depth)
    a = rng.standard_normal((20, 4, 4))
    factors = balanced_factors(a, depth)
    np.testing.assert_allclose(product(factors), a, atol=1e-13)
    np.testing.assert_allclose(norm_sum(factors), schatten_penalty(np.linalg.svd(a, compute_uv=False),
                                                                   depth), rtol=1e-12)


@pytest.mark.parametrize("depth", (2, 3, 4))
def test_other_factorizations_never_go_below_and_a_minimisation_reaches_it(depth):
    """Random factorizations W_i -> G_i W_i G_(i-1)^(-1) (invertible G_i) of the same map stay above
    the penalty; minimising sum ||G_i W_i G_(i-1)^(-1)||_F^2 over the G_i with scipy's BFGS from a
    random start reaches it to 1e-6 relative (the optimizer's tolerance on a smooth problem)."""
    rng = np.random.default_rng(10 + depth)
    d = 3
    a = rng.standard_normal((1, d, d))
    target = schatten_penalty(np.linalg.svd(a, compute_uv=False), depth)[0]
    factors = [f[0] for f in balanced_factors(a, depth)]

    def transformed(x):
        g = [scipy.linalg.expm(z) for z in x.reshape(depth - 1, d, d)]
        out = []
        for i, w in enumerate(factors):
            left = g[i] @ w if i < depth - 1 else w
            out.append(left @ np.linalg.inv(g[i - 1]) if i > 0 else left)
        return out

    for _ in range(20):
        x = rng.standard_normal((depth - 1) * d * d)
        others = transformed(x)
        np.testing.assert_allclose(product(others), a[0], atol=1e-9 * np.abs(a).max() * 1e3)
        assert sum((w**2).sum() for w in others) >= target * (1 - 1e-12)
    start = 0.5 * rng.standard_normal((depth - 1) * d * d)
    best = scipy.optimize.minimize(lambda x: sum((w**2).sum() for w in transformed(x)), start,
                                   method="BFGS", options={"gtol": 1e-10})
    assert best.fun >= target * (1 - 1e-12)
    assert best.fun == pytest.approx(target, rel=1e-6)


def test_the_penalty_perturbation_bounds_every_change_of_the_singular_values():
    """Moving every s_j by at most delta changes the penalty by at most the bound (random moves,
    zero singular values included, where the bound is delta^(2/L) a value); the bound is tight for
    s = 0: delta^(2/L) L exactly."""
    rng = np.random.default_rng(4)
    for depth in DEPTHS:
        s = np.concatenate([rng.uniform(0, 2, (500, 3)), np.zeros((500, 1))], axis=1)
        delta = 10.0 ** rng.uniform(-12, -2, 500)
        moved = np.abs(s + rng.uniform(-1, 1, s.shape) * delta[:, None])
        change = np.abs(schatten_penalty(moved, depth) - schatten_penalty(s, depth))
        assert np.all(change <= schatten_penalty_perturbation(s, delta, depth) * (1 + 1e-9))
        assert schatten_penalty_perturbation([0.0], 1e-6, depth) == pytest.approx(
            depth * 1e-6 ** (2 / depth), rel=1e-12)


# --- the scalar problem --------------------------------------------------------------------------


def test_the_thresholds_on_a_hand_case():
    """L = 3, lambda = 1: s_c = (1 * 1)^(3/4) = 1, m_c = 1 + 1^(-1/3) = 2; at m = 2 the root s = 1
    has g(1) = 1 - 2 + 1 = 0 and objective 1/2 + 3/2 = 2 = 1/2 m^2, the value at 0.
    s_e = (1/3)^(3/4), m_e = s_e + s_e^(-1/3) = s_e (1 + 3) = 4 s_e."""
    s_c, m_c = jump_point(1.0, 3)
    assert (s_c, m_c) == (pytest.approx(1.0), pytest.approx(2.0))
    assert stationarity_residual(1.0, 2.0, 1.0, 3) == pytest.approx(0, abs=1e-15)
    assert l2_scalar_objective(1.0, 2.0, 1.0, 3) == pytest.approx(l2_scalar_objective(0.0, 2.0, 1.0, 3))
    s_e, m_e = branch_onset(1.0, 3)
    assert s_e == pytest.approx(3 ** -0.75, rel=1e-15) and m_e == pytest.approx(4 * s_e, rel=1e-14)
    for depth in (3, 4, 6):  # m_e / m_c = 2 L^(-L/(2L-2)) whatever lambda
        for l2 in (0.01, 0.3, 2.0):
            ratio = branch_onset(l2, depth)[1] / jump_point(l2, depth)[1]
            assert ratio == pytest.approx(2 * depth ** (-depth / (2 * depth - 2)), rel=1e-12)


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("l2", [0.05, 0.7])
def test_the_roots_against_sign_changes_on_a_dense_grid_and_brentq(depth, l2):
    """Every sign change of g on a log-spaced grid of s, refined by scipy's brentq, is one of
    nonzero_roots, and there are none where it finds none; the roots solve g = 0 to rounding."""
    _, m_c = jump_point(l2, depth)
    m_values = m_c * np.linspace(0.3, 2.5, 37) if depth > 2 else l2 * np.linspace(0.3, 2.5, 37)
    unstable, stable = nonzero_roots(m_values, l2, depth)
    grid = np.logspace(-12, np.log10(3 * m_values.max()), 20001)
    for m, u, s in zip(m_values, unstable, stable):
        g = stationarity_residual(grid, m, l2, depth)
        changes = np.flatnonzero(np.sign(g[:-1]) != np.sign(g[1:]))
        roots = sorted(scipy.optimize.brentq(lambda x, m=m: stationarity_residual(x, m, l2, depth),
                                             grid[i], grid[i + 1], xtol=1e-300, rtol=4 * EPS)
                       for i in changes)
        found = sorted(x for x in (u, s) if np.isfinite(x))
        assert len(found) == len(roots), (m, found, roots)
        np.testing.assert_allclose(found, roots, rtol=1e-12)
        for x in found:
            assert abs(stationarity_residual(x, m, l2, depth)) <= 1e-12 * max(m, 1)


@pytest.mark.parametrize("depth", DEPTHS)
def test_the_global_minimizer_against_a_brute_force_grid(depth):
    """The least objective over a grid of 200,001 points in [0, 1.2 m] (with s = 0): its argmin
    within two grid steps of global_minimizer, and the objective there no lower than at it
    (tolerance 1e-12 relative, rounding)."""
    l2 = 0.2
    _, m_c = jump_point(l2, depth)
    for m in m_c * np.array([0.5, 0.9, 0.99, 1.01, 1.1, 2.0]):
        grid = np.linspace(0, 1.2 * m, 200001)
        values = l2_scalar_objective(grid, m, l2, depth)
        best = global_minimizer(m, l2, depth)
        assert abs(grid[np.argmin(values)] - best) <= 2 * grid[1]
        assert l2_scalar_objective(best, m, l2, depth) <= values.min() * (1 + 1e-12)
    np.testing.assert_allclose(global_minimizer(np.array([0.5, 1.5]), 1.0, 2), soft_threshold(
        np.array([0.5, 1.5]), 1.0))


@pytest.mark.parametrize("depth", DEPTHS)
def test_local_minima_against_scipy_minimisation_from_each_side(depth):
    """scipy's bounded minimize_scalar on small intervals around each stationary point: the
    points local_minima calls minima are (the minimizer stays there), the unstable root is not
    (its neighbours are lower: the objective's second difference there is negative)."""
    l2 = 0.3
    _, m_c = jump_point(l2, depth)
    for m in m_c * np.array([0.92, 0.97, 1.2]):
        points = stationary_points(m, l2, depth)
        minima = local_minima(m, l2, depth)
        for index in (ZERO, UNSTABLE, STABLE):
            s = points[index]
            if not np.isfinite(s):
                continue
            h = 1e-4 * max(s, m)
            low, high = max(s - h, 0.0), s + h
            found = scipy.optimize.minimize_scalar(lambda x, m=m: l2_scalar_objective(x, m, l2, depth),
                                                   bounds=(low, high), method="bounded",
                                                   options={"xatol": 1e-12})
            at_point = abs(found.x - s) <= 1e-7 * max(s, m) or (
                s == 0 and l2_scalar_objective(found.x, m, l2, depth)
                >= l2_scalar_objective(0.0, m, l2, depth))
            assert at_point == bool(minima[index]), (m, index, s, found.x)


def test_depth_two_has_the_soft_threshold_and_no_jump():
    """L = 2: the stable root is m - lambda above lambda, none below; no unstable root; 0 a minimum
    only below lambda (scipy's bounded minimisation over [0, 2m] agrees)."""
    m = np.array([0.2, 0.6, 1.4, 3.0])
    unstable, stable = nonzero_roots(m, 1.0, 2)
    assert np.all(np.isnan(unstable))
    np.testing.assert_array_equal(np.isnan(stable), m <= 1.0)
    for value in m:
        found = scipy.optimize.minimize_scalar(lambda x, value=value: l2_scalar_objective(x, value, 1.0, 2),
                                               bounds=(0, 2 * value), method="bounded",
                                               options={"xatol": 1e-12})
        assert found.x == pytest.approx(soft_threshold(value, 1.0), abs=1e-6)


def test_plateau_levels_on_a_hand_case():
    """m = (5, 4, 3, 2, 1): 1/2 (55, 30, 14, 5, 1, 0); the order of the input does not matter."""
    np.testing.assert_allclose(plateau_losses([1.0, 3.0, 5.0, 2.0, 4.0]),
                               [27.5, 15.0, 7.0, 2.5, 0.5, 0.0], rtol=1e-15)


# --- the trainer -----------------------------------------------------------------------------------


def network(rng, runs, d, width, depth, scale):
    shapes = [(width, d)] + [(width, width)] * (depth - 2) + [(d, width)]
    return [scale * rng.standard_normal((runs, *shape)) for shape in shapes]


def teacher(rng, runs, values):
    u = haar_orthogonal(rng.standard_normal((runs, len(values), len(values))))
    v = haar_orthogonal(rng.standard_normal((runs, len(values), len(values))))
    return u, v, (u * np.asarray(values)) @ np.swapaxes(v, -1, -2)


def objective(weights, m, l2):
    r = product(weights) - m
    return 0.5 * (r * r).sum(axis=(-2, -1)) + 0.5 * l2 * norm_sum(weights)


@pytest.mark.parametrize(("width", "depth"), [(3, 2), (4, 3), (5, 4)])
def test_the_gradient_is_the_derivative_by_central_differences(width, depth):
    """<grad F, V> against (F(W + hV) - F(W - hV)) / 2h in random directions, rectangular layers,
    lambda per run. The difference's error is h^2/6 |F'''| (a polynomial of degree 2L with O(1)
    coefficients here) plus the rounding eps F / h: at h = 1e-5 both below 1e-8; a wrong sign,
    factor or transpose errs by O(1)."""
    rng = np.random.default_rng(width)
    weights = network(rng, 3, 2, width, depth, 0.7)
    m = rng.standard_normal((3, 2, 2))
    l2 = np.array([0.0, 0.3, 1.1])
    value, gradients, a, _ = loss_and_gradient(weights, m, l2[:, None, None])
    np.testing.assert_allclose(a, product(weights), rtol=1e-14)
    np.testing.assert_allclose(value + 0.5 * l2 * norm_sum(weights), objective(weights, m, l2),
                               rtol=1e-14)
    h = 1e-5
    for _ in range(5):
        direction = [rng.standard_normal(w.shape) for w in weights]
        plus = objective([w + h * v for w, v in zip(weights, direction)], m, l2)
        minus = objective([w - h * v for w, v in zip(weights, direction)], m, l2)
        analytic = sum((g * v).sum(axis=(-2, -1)) for g, v in zip(gradients, direction))
        assert np.all(np.abs((plus - minus) / (2 * h) - analytic) <= 1e-7 * np.maximum(1, np.abs(analytic)))


def test_the_gauss_newton_bound_is_above_the_hessians_top_eigenvalue_at_a_minimizer():
    """At a zero-loss point (lambda = 0) the Hessian of F is J^T J; its top eigenvalue by a dense
    finite-difference Hessian (central differences of the analytic gradient, error ~h^2) lies at
    or below sum_i ||A_i||^2 ||B_i||^2, the step's bound."""
    rng = np.random.default_rng(8)
    weights = network(rng, 1, 2, 3, 3, 0.8)
    m = product(weights)
    _, _, _, bound = loss_and_gradient(weights, m, 0.0)
    sizes = [w[0].size for w in weights]
    flat = np.concatenate([w[0].ravel() for w in weights])

    def gradient(x):
        parts = np.split(x, np.cumsum(sizes)[:-1])
        ws = [p.reshape(w.shape) for p, w in zip(parts, weights)]
        return np.concatenate([g[0].ravel() for g in loss_and_gradient(ws, m, 0.0)[1]])

    h = 1e-6
    hessian = np.stack([(gradient(flat + h * e) - gradient(flat - h * e)) / (2 * h)
                        for e in np.eye(flat.size)])
    top = np.linalg.eigvalsh((hessian + hessian.T) / 2)[-1]
    assert top <= bound[0] * (1 + 1e-6)
    assert top >= bound[0] / 10  # and not vacuous: within the Cauchy-Schwarz factor here


def test_records_sit_on_the_grid_and_a_run_is_the_same_alone_or_in_a_batch():
    """The grid: 0 first, increasing, max_steps last; memory: records of len(grid) whatever the
    steps. Compaction: a run's records, steps and final weights are bit-identical alone and in a
    batch where others stop earlier."""
    steps = logarithmic_steps(5000, 10)
    assert steps[0] == 0 and steps[-1] == 5000 and np.all(np.diff(steps) > 0)
    assert 35 <= len(steps) <= 42  # 37 decades' points, rounding merges a few small ones
    rng = np.random.default_rng(5)
    u, v, m = teacher(rng, 4, [3.0, 2.0, 1.0])
    weights = network(rng, 4, 3, 6, 3, 6 ** -0.75)
    l2 = np.array([0.1, 0.1, 0.5, 0.0])
    grid = logarithmic_steps(3000, 5)
    batch = train(weights, m, u, v, l2, 0.5, 3000, grid, 1e-6, 1e-12)
    assert batch.loss_curve.shape == (4, len(grid)) and batch.projection_curve.shape == (4, len(grid), 3)
    assert len(set(batch.steps.tolist())) > 1  # the runs stop at different steps
    for run in range(4):
        alone = train([w[run:run + 1] for w in weights], m[run:run + 1], u[run:run + 1],
                      v[run:run + 1], l2[run], 0.5, 3000, grid, 1e-6, 1e-12)
        assert alone.steps[0] == batch.steps[run]
        for name in ("loss_curve", "projection_curve", "singular_value_curve", "flow_time"):
            np.testing.assert_array_equal(getattr(alone, name)[0], getattr(batch, name)[run])
        for a, b in zip(alone.weights, batch.weights):
            np.testing.assert_array_equal(a[0], b[run])
    # a stopped run keeps its final state on the later grid steps
    first = int(np.argmin(batch.steps))
    later = grid > batch.steps[first]
    assert np.all(batch.loss_curve[first, later] == batch.loss[first])


@pytest.mark.parametrize("depth", (2, 3, 4))
def test_the_stopping_rule_bounds_the_distance_to_the_stationary_point(depth):
    """The guarantee, on real runs: stopped at a loose gradient_tolerance (1e-4), every teacher
    direction's u_k^T A v_k lies within stationary_distance_bound (first order: within 1.5 times
    it) of the stationary point that a long run (tolerance 1e-12) converges to, the nearest one.
    The bound can be loose by orders of magnitude at L >= 3: the gradient norm also carries the
    slow weight decay (rate lambda) of the weights' parts that do not reach the map."""
    rng = np.random.default_rng(20 + depth)
    l2 = 0.1
    _, m_c = jump_point(l2, depth)
    values = m_c * np.array([2.0, 1.3, 0.5])
    u, v, m = teacher(rng, 6, values)
    weights = network(rng, 6, 3, 5, depth, 5 ** -0.5)
    grid = logarithmic_steps(40000, 2)
    loose = train(weights, m, u, v, l2, 0.5, 40000, grid, 1e-4, 0.0)
    tight = train(weights, m, u, v, l2, 0.5, 40000, grid, 1e-12, 0.0)
    assert loose.stopped.all() and tight.stopped.all()
    a_loose, a_tight = loose.projection_curve[:, -1], tight.projection_curve[:, -1]
    points = stationary_points(np.broadcast_to(values, a_tight.shape), l2, depth)
    distance = np.abs(a_tight[..., None] - points)
    branch = np.argmin(np.where(np.isfinite(distance), distance, np.inf), axis=-1)
    assert np.take_along_axis(distance, branch[..., None], -1).max() <= 1e-9
    root = np.take_along_axis(points, branch[..., None], -1)[..., 0]
    bound = stationary_distance_bound(a_loose, values, l2, depth, loose.gradient_norm[:, None], branch)
    realised = np.abs(a_loose - root)
    assert np.all(realised <= 1.5 * bound + 1e-14)


# --- the draws -----------------------------------------------------------------------------------


def test_draws_are_paired_across_gamma_and_split_independent():
    """Every gamma scales the same Gaussian draws (W at gamma 2 is w^(-1/2) times W at gamma 1),
    the teacher's frames are orthogonal, and a sample's draws do not depend on the range drawn."""
    one = initial_weights(3, "deep_linear_dynamics", 6, 5, 3, 1.0, 0, 10)
    two = initial_weights(3, "deep_linear_dynamics", 6, 5, 3, 2.0, 0, 10)
    assert [w.shape[1:] for w in one] == [(6, 5), (6, 6), (5, 6)]
    for a, b in zip(one, two):
        np.testing.assert_allclose(b, a * 6 ** -0.5, rtol=1e-15)
    part = initial_weights(3, "deep_linear_dynamics", 6, 5, 3, 1.0, 4, 10)
    for a, b in zip(one, part):
        np.testing.assert_array_equal(a[4:], b)
    u, v = teacher_frames(3, "deep_linear_l2", 4, 0, 6)
    np.testing.assert_allclose(np.swapaxes(u, -1, -2) @ u, np.broadcast_to(np.eye(4), u.shape), atol=1e-14)
    m = teacher_matrices(u, v, [4.0, 3.0, 2.0, 1.0])
    np.testing.assert_allclose(np.linalg.svd(m, compute_uv=False), np.tile([4.0, 3.0, 2.0, 1.0], (6, 1)),
                               rtol=1e-14)
    np.testing.assert_array_equal(teacher_frames(3, "deep_linear_l2", 4, 2, 6)[0], u[2:])
