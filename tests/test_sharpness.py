"""The sharpness of deep matrix factorization (Kamber & Parhi, arXiv 2509.25783): the largest
eigenvalue of the Hessian of L = ||M - W_L ... W_1||_F^2 at a minimizer (linalg/sharpness.py) and
its closed forms and bounds (theory/matrix_factorization.py), each against an independent route.

Minimizers: any weights W_i minimize L for M = W_L ... W_1 (zero loss).
The independent route for the Hessian is central differences of the loss's analytic gradient,
dL/dW_i = -2 A_i^T (M - W_L ... W_1) B_i^T. They are exact but for rounding: moving one entry of one
W_i by h moves the product linearly in h, so every entry of the gradient is a polynomial of degree
<= 2 in h, whose central difference is its derivative at h = 0 whatever h. So h = 1, and the
allowance is rounding alone (fd_allowance).
Rounding elsewhere: a float64 symmetric eigensolver on an N x N matrix errs by p(N) eps ||K||; as
in bounds.py we allow rounding_tolerance = 16 N eps times the value.
"""

from __future__ import annotations

import numpy as np
import pytest

from support import cupy_stand_in
from svperturb.linalg import sharpness as routes
from svperturb.linalg.backend import to_host
from svperturb.linalg.sharpness import (
    factor_products,
    least_sharpness_over_rescalings,
    sharpness,
    sharpness_dense,
    sharpness_lanczos,
    top_direction,
)
from svperturb.theory.bounds import rounding_tolerance
from svperturb.theory.matrix_factorization import (
    balanced_sharpness,
    cauchy_schwarz_sharpness_bound,
    depth_two_sharpness,
    least_scalar_sharpness,
    scalar_sharpness,
)

EPS = np.finfo(np.float64).eps
# The example of a depth-3 minimizer of M = I where Cauchy-Schwarz is not exact. Every K_i is
# diagonal, K = diag over (a, b) of G1[a] + G2[a] H2[b] + H3[b] with G1 = (1/9, 1),
# G2 = (1, 1/9), H2 = (9, 1), H3 = (1, 9): largest entry 1/9 + 9 + 1, so the sharpness is 182/9
# (20.22); the bound is 2 (||A_1||^2 + ||A_2||^2 ||B_2||^2 + ||B_3||^2) = 2 (1 + 9 + 9) = 38.
DIAGONAL_EXAMPLE = [np.diag([3.0, 1.0])[None], np.diag([1 / 3, 3.0])[None],
                    np.diag([1.0, 1 / 3])[None]]


# --- helpers: weights, products, the finite-difference Hessian ----------------------------------


def random_weights(seed, dims, batch=1):
    """W_i (batch, dims[i], dims[i-1]), i = 1..L, iid N(0, 1/dims[i-1]) entries."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((batch, dims[i], dims[i - 1])) / np.sqrt(dims[i - 1])
            for i in range(1, len(dims))]


def chain(weights, size):
    """W_k ... W_1 of the list (W_1 first); the identity of `size` for an empty list."""
    out = np.eye(size)
    for w in weights:
        out = w @ out
    return out


def haar(rng, d, batch):
    q, r = np.linalg.qr(rng.standard_normal((batch, d, d)))
    return q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[..., None, :]


def balanced(u, s, vt, depth):
    """The balanced factorization of M = U diag(s) V^T: W_1 = S^(1/L) V^T, W_i = S^(1/L),
    W_L = U S^(1/L)."""
    root = s ** (1 / depth)
    middle = root[..., :, None] * np.eye(s.shape[-1])
    return [root[..., :, None] * vt, *([middle] * (depth - 2)), u * root[..., None, :]]


def imbalanced(weights, seed, strength):
    """W_i -> G_i W_i G_(i-1)^(-1) (G_0 = G_L = I), G_i = I + strength Z_i: the same product."""
    rng = np.random.default_rng(seed)
    out, previous = [], None
    for i, w in enumerate(weights):
        g = None
        if i < len(weights) - 1:
            g = np.eye(w.shape[-2]) + strength * rng.standard_normal(w.shape[:-1] + (w.shape[-2],))
        w = w if g is None else g @ w
        out.append(w if previous is None else w @ np.linalg.inv(previous))
        previous = g
    return out


def spectral_norm(a):
    return np.linalg.norm(a, ord=2, axis=(-2, -1))


def loss_gradient(weights, m):
    """dL/dW_i = -2 A_i^T (M - W_L ... W_1) B_i^T, one sample (W_i 2-d), flattened W_1 first."""
    residual = m - chain(weights, weights[0].shape[1])
    parts = []
    for i in range(len(weights)):
        left = chain(weights[i + 1:], weights[i].shape[0])
        right = chain(weights[:i], weights[0].shape[1])
        parts.append((-2 * left.T @ residual @ right.T).ravel())
    return np.concatenate(parts)


def fd_hessian(weights, h=1.0):
    """The Hessian of L at the minimizer `weights` (one sample) by central differences of the
    gradient, symmetrised; exact up to rounding for any h (module docstring)."""
    shapes = [w.shape for w in weights]
    flat = np.concatenate([w.ravel() for w in weights])
    m = chain(weights, shapes[0][1])

    def unflatten(p):
        sizes = np.cumsum([0] + [a * b for a, b in shapes])
        return [p[sizes[i]:sizes[i + 1]].reshape(shapes[i]) for i in range(len(shapes))]

    columns = []
    for j in range(len(flat)):
        step = np.zeros_like(flat)
        step[j] = h
        columns.append((loss_gradient(unflatten(flat + step), m)
                        - loss_gradient(unflatten(flat - step), m)) / (2 * h))
    hessian = np.array(columns).T
    return (hessian + hessian.T) / 2


def fd_allowance(weights, h=1.0):
    """A bound on ||fd_hessian - Hessian||_F from rounding. At the points moved by h, every product
    of factors in the gradient has Frobenius norm <= Pi = prod_i (||W_i||_F + h), the residual
    <= ||M||_F + Pi, so each gradient entry is computed with an error <= gamma S, S = 2 Pi (||M||_F
    + Pi), gamma = (2 L + 1) d eps (products of <= 2 L + 1 matrices of sizes <= d, then a
    difference); the central difference divides the error of two such entries by 2 h, and P
    parameters make ||E||_F <= P gamma S / h."""
    norms = [np.linalg.norm(w) for w in weights]
    pi = np.prod([n + h for n in norms])
    m_norm = np.linalg.norm(chain(weights, weights[0].shape[1]))
    size = sum(w.size for w in weights)
    width = max(max(w.shape) for w in weights)
    gamma = (2 * len(weights) + 1) * width * EPS
    return size * gamma * 2 * pi * (m_norm + pi) / h


# --- the Hessian's top eigenpair ----------------------------------------------------------------

FD_DIMS = [(1, 1, 1), (2, 3, 2), (3, 1, 2),
           (2, 2, 2, 2), (1, 3, 2, 2), (3, 2, 1, 2),
           (2, 2, 2, 2, 2), (3, 2, 3, 1, 2), (1, 1, 1, 1, 1)]


@pytest.mark.parametrize("dims", FD_DIMS)
def test_the_finite_difference_hessian_top_eigenpair_is_the_sharpness_and_top_direction(dims):
    weights = random_weights(11 + len(dims), dims, batch=3)
    value = sharpness_dense(weights)
    direction = np.concatenate([u.reshape(3, -1) for u in top_direction(weights)], axis=1)
    for k in range(3):
        sample = [w[k] for w in weights]
        eigenvalues, eigenvectors = np.linalg.eigh(fd_hessian(sample))
        allowance = fd_allowance(sample) + rounding_tolerance(value[k], dims[0] * dims[-1])
        assert abs(eigenvalues[-1] - value[k]) <= allowance
        # Davis-Kahan: sin(angle) <= ||E|| / (gap - ||E||), gap of the finite-difference Hessian
        gap = eigenvalues[-1] - eigenvalues[-2]
        assert gap > 2 * allowance  # the seeds give a simple top eigenvalue
        # (the sine as the norm of the orthogonal part: 1 - cos^2 would cancel to sqrt(eps))
        top = eigenvectors[:, -1]
        sine = np.linalg.norm(top - (top @ direction[k]) * direction[k])
        assert sine <= allowance / (gap - allowance) + 4 * top.size * EPS
        assert np.linalg.norm(direction[k]) == pytest.approx(1, abs=64 * EPS)


# --- closed forms -------------------------------------------------------------------------------


@pytest.mark.parametrize("dims", [(3, 5, 2), (4, 4, 4), (2, 1, 3), (1, 6, 1)])
def test_depth_two_sharpness_is_twice_the_sum_of_the_squared_spectral_norms(dims):
    weights = random_weights(3, dims, batch=20)
    exact = sharpness_dense(weights)
    np.testing.assert_allclose(depth_two_sharpness(*weights), exact, rtol=0,
                               atol=rounding_tolerance(exact.max(), dims[0] * dims[-1]))


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_scalar_sharpness_is_twice_the_sum_of_the_products_of_the_other_squares(depth):
    w = np.random.default_rng(depth).standard_normal((50, depth)) * 2
    exact = sharpness_dense([w[:, i, None, None] for i in range(depth)])
    np.testing.assert_allclose(scalar_sharpness(w), exact, rtol=16 * depth * EPS)


@pytest.mark.parametrize("depth", [2, 3, 6])
def test_the_least_scalar_sharpness_is_reached_at_equal_magnitudes(depth):
    w = np.random.default_rng(depth).standard_normal((200, depth)) * 2
    m = w.prod(axis=1)
    assert np.all(scalar_sharpness(w) >= least_scalar_sharpness(m, depth) * (1 - 16 * depth * EPS))
    signs = np.sign(w)  # any signs with the product's sign
    equal = signs * np.abs(m)[:, None] ** (1 / depth)
    np.testing.assert_allclose(equal.prod(axis=1), m, rtol=16 * depth * EPS)
    np.testing.assert_allclose(scalar_sharpness(equal), least_scalar_sharpness(m, depth),
                               rtol=16 * depth * EPS)


def balanced_minimizers(seed, d, depth, batch, top_multiplicity=1):
    """Balanced factorizations of random d x d targets (singular values in [1/2, 2]); the largest
    `top_multiplicity` of them equal."""
    rng = np.random.default_rng(seed)
    s = np.sort(rng.uniform(0.5, 2.0, (batch, d)), axis=1)[:, ::-1]
    s[:, :top_multiplicity] = s[:, :1]
    u, v = haar(rng, d, batch), haar(rng, d, batch)
    return balanced(u, s, np.swapaxes(v, -1, -2), depth), s[:, 0]


@pytest.mark.parametrize("d, depth", [(2, 2), (3, 3), (4, 5), (5, 2)])
def test_balanced_factorizations_have_sharpness_2_L_norm_to_the_2_minus_2_over_L(d, depth):
    weights, norm_m = balanced_minimizers(d + depth, d, depth, batch=10)
    np.testing.assert_allclose(spectral_norm(chain(weights, d)), norm_m, rtol=64 * depth * d * EPS)
    exact = sharpness_dense(weights)
    np.testing.assert_allclose(balanced_sharpness(norm_m, depth), exact,
                               rtol=16 * depth * d * d * EPS)


@pytest.mark.parametrize("dims", [(2, 2, 2), (3, 3, 3, 3), (2, 4, 3, 2), (4, 2, 5, 3, 4)])
def test_no_minimizer_is_flatter_than_the_balanced_value(dims):
    """With u, v the top singular vectors of M and V = u v^T, <V, K V> = sum_i ||A_i^T u||^2
    ||B_i v||^2 >= L (prod_i ||A_i^T u|| ||B_i v||)^(2/L) (AM-GM), and the product regroups into
    prod_(i=2..L) ||A_(i-1)^T u|| ||B_i v|| >= ||M||^(L-1), since A_(i-1) B_i = M: so every
    minimizer's sharpness is >= 2 L ||M||^(2 - 2/L)."""
    weights = imbalanced(random_weights(7, dims, batch=30), 8, 0.5)
    norm_m = spectral_norm(chain(weights, dims[0]))
    exact = sharpness_dense(weights)
    least = balanced_sharpness(norm_m, len(dims) - 1)
    assert np.all(exact >= least * (1 - 16 * max(dims) ** 2 * EPS))


def norms_of_factors(weights):
    lefts, rights = factor_products(weights)
    return (np.stack([spectral_norm(a) for a in lefts], axis=-1),
            np.stack([spectral_norm(b) for b in rights], axis=-1))


@pytest.mark.parametrize("dims", [(2, 3, 2), (3, 2, 4, 2), (2, 2, 2, 2, 2), (4, 3, 1, 3, 2, 4, 3)])
def test_the_cauchy_schwarz_bound_holds_and_is_exact_at_depth_two(dims):
    weights = random_weights(5, dims, batch=40)
    exact = sharpness_dense(weights)
    bound = cauchy_schwarz_sharpness_bound(*norms_of_factors(weights))
    tolerance = rounding_tolerance(bound, dims[0] * dims[-1])
    assert np.all(bound >= exact - tolerance)
    if len(dims) == 3:  # K is a Kronecker sum: its top eigenvalue is the sum of the two tops
        np.testing.assert_allclose(bound, exact, rtol=0, atol=tolerance.max())
    else:  # no equality for random factors at depth >= 3
        assert np.all(bound > exact + tolerance)


def test_the_cauchy_schwarz_bound_is_exact_on_balanced_and_scalar_factorizations():
    """There every K_i has the same top eigenvector (u_1 v_1^T, or the number 1)."""
    weights, _ = balanced_minimizers(2, 3, 4, batch=10)
    w = np.random.default_rng(3).standard_normal((10, 4))
    for case in (weights, [w[:, i, None, None] for i in range(4)]):
        exact = sharpness_dense(case)
        np.testing.assert_allclose(cauchy_schwarz_sharpness_bound(*norms_of_factors(case)), exact,
                                   rtol=64 * 9 * EPS)


def test_the_cauchy_schwarz_bound_is_not_exact_at_depth_three():
    assert sharpness_dense(DIAGONAL_EXAMPLE)[0] == pytest.approx(182 / 9, rel=64 * EPS)
    assert cauchy_schwarz_sharpness_bound(*norms_of_factors(DIAGONAL_EXAMPLE))[0] == \
        pytest.approx(38, rel=64 * EPS)


# --- Lanczos against the dense route ------------------------------------------------------------


def ill_conditioned_minimizers(seed, d, depth, batch):
    """Balanced factorizations of targets with singular values from 1 down to 1e-8, made
    imbalanced (kappa(M) = 1e8; the factors' condition numbers multiply by the G_i's)."""
    rng = np.random.default_rng(seed)
    s = np.broadcast_to(np.geomspace(1, 1e-8, d), (batch, d)).copy()
    u, v = haar(rng, d, batch), haar(rng, d, batch)
    return imbalanced(balanced(u, s, np.swapaxes(v, -1, -2), depth), seed, 0.5)


LANCZOS_CASES = {
    "random 16": lambda: random_weights(1, (16, 16, 16), batch=8),
    "random 16 x 12 deep": lambda: random_weights(2, (12, 8, 16, 10, 16), batch=8),
    "random non-square": lambda: random_weights(3, (5, 7, 3, 2, 6), batch=16),
    "random depth 6": lambda: random_weights(4, (3, 3, 3, 3, 3, 3, 3), batch=16),
    "ill-conditioned M": lambda: ill_conditioned_minimizers(5, 8, 3, batch=8),
    "repeated top eigenvalue": lambda: balanced_minimizers(6, 6, 3, batch=8, top_multiplicity=2)[0],
    "K a multiple of I": lambda: balanced_minimizers(7, 4, 3, batch=4, top_multiplicity=4)[0],
}


@pytest.mark.parametrize("case", sorted(LANCZOS_CASES))
def test_lanczos_agrees_with_the_dense_route_within_its_bound(case):
    weights = LANCZOS_CASES[case]()
    size = weights[-1].shape[-2] * weights[0].shape[-1]
    exact = sharpness_dense(weights)
    result = sharpness_lanczos(weights)
    error = np.abs(result.values - exact)
    # the dense route's own error is rounding_tolerance; the bound covers Lanczos's
    assert np.all(error <= result.error_bounds + rounding_tolerance(exact, size))
    assert np.all(error <= 1e-10 * exact)
    assert np.all(result.error_bounds <= 1e-10 * exact)  # rtol = 1e-12 or the rounding term
    assert np.all((result.iterations >= 1) & (result.iterations <= size))


def test_lanczos_stops_at_the_first_step_when_k_is_a_multiple_of_the_identity():
    weights, _ = balanced_minimizers(7, 4, 3, batch=4, top_multiplicity=4)
    assert np.all(sharpness_lanczos(weights).iterations == 1)


def test_lanczos_cut_short_says_so_in_its_bound():
    weights = random_weights(9, (16, 16, 16), batch=4)
    result = sharpness_lanczos(weights, max_iter=3)
    assert np.all(result.iterations == 3)
    assert np.all(result.error_bounds > 1e-12 * result.values)


def test_the_top_direction_by_lanczos_is_the_dense_one():
    """Lanczos stops the vector V at a residual r <= 1e-12 lambda_1 (or its rounding term), so
    sin(phi) <= r / gap for its angle phi to the top eigenvector (Davis-Kahan); the dense one's
    angle is within 16 N eps lambda_1 / gap. In parameter space J^T scales the top component by
    sqrt(lambda_1) and the rest by at most sqrt(lambda_2): tan phi' <= tan phi <= 2 sin phi."""
    weights = random_weights(10, (12, 10, 12), batch=6)
    dense = np.concatenate([u.reshape(6, -1) for u in top_direction(weights, route="dense")], 1)
    lanczos = np.concatenate([u.reshape(6, -1) for u in top_direction(weights, route="lanczos")],
                             1)
    g, h = routes.operator_factors(weights)
    eigenvalues = np.linalg.eigvalsh(routes.operator_matrix(g, h))
    size = eigenvalues.shape[-1]
    gap = eigenvalues[:, -1] - eigenvalues[:, -2]
    lanczos_rounding = (size + 2 * (12 + 12)) * EPS
    allowance = (1e-12 + lanczos_rounding + 16 * size * EPS) * eigenvalues[:, -1] / gap
    cosine = np.sum(dense * lanczos, axis=1)
    sine = np.linalg.norm(lanczos - cosine[:, None] * dense, axis=1)
    assert np.all(sine <= 2 * allowance)


def test_sharpness_takes_the_dense_route_up_to_the_threshold_then_lanczos():
    side = int(np.sqrt(routes.DENSE_LARGEST))
    small = random_weights(12, (side, 3, side), batch=4)
    large = random_weights(12, (side + 1, 3, side + 1), batch=4)
    np.testing.assert_array_equal(sharpness(small), sharpness_dense(small))
    np.testing.assert_array_equal(sharpness(large), sharpness_lanczos(large).values)
    np.testing.assert_array_equal(sharpness(large, route="dense"), sharpness_dense(large))
    with pytest.raises(ValueError, match="route"):
        sharpness(small, route="fast")


# --- the least sharpness over layer rescalings --------------------------------------------------


OPTIMIZER_RTOL = 10 * routes.RESCALING_FTOL  # at a smooth minimum (see the tests that use it)


def rescaled(weights, scales):
    return [w * scales[:, i, None, None] for i, w in enumerate(weights)]


@pytest.mark.parametrize("dims", [(2, 2, 2, 2), (3, 2, 4, 3), (2, 3, 2, 3, 2), (3, 3, 3, 3, 3, 3)])
def test_the_least_rescaling_keeps_the_product_and_lowers_the_sharpness(dims):
    weights = random_weights(13, dims, batch=4)
    values, scales, _ = least_sharpness_over_rescalings(weights)
    size, depth = dims[0] * dims[-1], len(dims) - 1
    np.testing.assert_allclose(scales.prod(axis=1), 1, rtol=16 * depth * EPS)
    product = chain(weights, dims[0])
    np.testing.assert_allclose(chain(rescaled(weights, scales), dims[0]), product,
                               rtol=0, atol=64 * depth * EPS * np.abs(product).max())
    # the value is the sharpness of the rescaled minimizer, no higher than at c = 1, and no lower
    # than the least over all minimizers of M
    np.testing.assert_allclose(values, sharpness_dense(rescaled(weights, scales)),
                               rtol=16 * size * EPS)
    assert np.all(values <= sharpness_dense(weights) * (1 + 16 * size * EPS))
    norm_m = spectral_norm(product)
    assert np.all(values >= balanced_sharpness(norm_m, depth) * (1 - 16 * size * EPS))


@pytest.mark.parametrize("dims", [(2, 3, 2), (4, 4, 4), (3, 1, 2)])
def test_at_depth_two_the_least_is_four_times_the_product_of_the_norms(dims):
    """lambda_max = t ||W_2||^2 + ||W_1||^2 / t is least at t = ||W_1|| / ||W_2||, where it is
    2 ||W_1|| ||W_2||: the least sharpness is 4 ||W_1|| ||W_2|| >= 4 ||M||, with equality where
    ||W_2 W_1|| = ||W_2|| ||W_1|| (balanced factorizations, and any with d_1 = 1). SLSQP stops when
    s (scaled to 1) moves by less than ftol; at this smooth minimum the value errs by about as
    much: allow 10 ftol."""
    weights = random_weights(14, dims, batch=10)
    values, _, _ = least_sharpness_over_rescalings(weights)
    closed = 4 * spectral_norm(weights[0]) * spectral_norm(weights[1])
    np.testing.assert_allclose(values, closed, rtol=OPTIMIZER_RTOL)
    assert np.all(closed >= 4 * spectral_norm(weights[1] @ weights[0]) * (1 - 64 * max(dims) * EPS))
    square, norm_m = balanced_minimizers(15, 3, 2, batch=10)
    np.testing.assert_allclose(least_sharpness_over_rescalings(square)[0], 4 * norm_m,
                               rtol=OPTIMIZER_RTOL)


def test_balanced_factorizations_need_no_rescaling():
    """Their K_i share eigenvectors; at u_1 v_1^T, sum_i t_i ||M||^(2 - 2/L) >= L ||M||^(2 - 2/L)
    when prod t_i = 1 (AM-GM): c = 1 is optimal."""
    weights, norm_m = balanced_minimizers(16, 3, 4, batch=6)
    values, scales, _ = least_sharpness_over_rescalings(weights)
    np.testing.assert_allclose(values, balanced_sharpness(norm_m, 4), rtol=OPTIMIZER_RTOL)
    np.testing.assert_allclose(values, sharpness_dense(weights), rtol=OPTIMIZER_RTOL)
    # a value within ftol of a smooth minimum puts u within about sqrt(ftol) of it
    np.testing.assert_allclose(scales, 1, atol=np.sqrt(OPTIMIZER_RTOL))


def grid_values(blocks, a, b):
    """lambda_max(sum_i exp(u_i) K_i) at u = (a, b, -a - b) for every pair of the 1-d grids a, b."""
    aa, bb = np.meshgrid(a, b, indexing="ij")
    u = np.stack([aa, bb, -aa - bb], axis=-1).reshape(-1, 3)
    return np.linalg.eigvalsh(np.tensordot(np.exp(u), blocks, axes=1))[:, -1].reshape(aa.shape)


@pytest.mark.parametrize("seed", [None, 17, 18, 19])
def test_the_least_over_rescalings_is_the_least_of_a_brute_force_grid(seed):
    """L = 3, d = 2. f(u) = lambda_max(sum_i exp(u_i) K_i) has gradient g_i = exp(u_i) v^T K_i v
    >= 0, sum g_i = f, so |d log f / da| + |d log f / db| <= 1 in (a, b) = (u_1, u_2): a grid of
    step h has a point within f* e^h of the minimum f* (and none below it). A coarse grid over [-3, 3]^2,
    then a fine one around its best point; the optimizer's value must be no higher than any grid
    value (up to rounding) and within the grid's e^h of the best."""
    weights = DIAGONAL_EXAMPLE if seed is None else random_weights(seed, (2, 2, 2, 2))
    value, scales, _ = least_sharpness_over_rescalings(weights)
    value = value[0] / 2  # lambda_max(K) at the optimum
    u = -2 * np.log(scales[0])  # t_i = 1 / c_i^2
    g, h = routes.operator_factors(weights)
    blocks = to_host(routes.operator_blocks(g, h))[:, 0]
    rounding = rounding_tolerance(value, 4)
    coarse_step, fine_step = 0.01, 1e-4
    a = np.arange(-3, 3 + coarse_step / 2, coarse_step)
    coarse = grid_values(blocks, a, a)
    i, j = np.unravel_index(np.argmin(coarse), coarse.shape)
    assert value <= coarse.min() + rounding
    assert coarse.min() <= value * np.exp(coarse_step) + rounding
    assert np.all(np.abs(u[:2]) < 3)  # the optimum lies inside the coarse grid
    fine_a = a[i] + np.arange(-100, 101) * fine_step
    fine_b = a[j] + np.arange(-100, 101) * fine_step
    fine = grid_values(blocks, fine_a, fine_b)
    assert value <= fine.min() + rounding
    assert fine_a[0] < u[0] < fine_a[-1] and fine_b[0] < u[1] < fine_b[-1]  # inside the fine one
    assert fine.min() <= value * np.exp(fine_step) + rounding


# --- on a device array module -------------------------------------------------------------------

# The CuPy stand-in under another name: NumPy's numerics behind CuPy's wall between host and device
# (tests/support/cupy_stand_in.py); every result must be a device array equal to NumPy's.
shim = cupy_stand_in.build(name="sharpness_shim")


def test_every_route_runs_on_a_device_array_module_and_equals_numpy():
    host = random_weights(20, (4, 3, 5, 4), batch=5)
    device = [shim.asarray(w) for w in host]

    def results(weights, xp):
        lefts, rights = factor_products(weights, xp)
        lanczos = sharpness_lanczos(weights, xp)
        return [sharpness_dense(weights, xp), lanczos.values, lanczos.error_bounds,
                lanczos.iterations, *top_direction(weights, xp),
                *top_direction(weights, xp, route="lanczos"),
                *least_sharpness_over_rescalings(weights, xp), *lefts, *rights]

    for on_host, on_device in zip(results(host, np), results(device, shim), strict=True):
        assert isinstance(on_device, shim.ndarray)
        np.testing.assert_array_equal(to_host(on_device), on_host)
