"""The predictor of a smooth deep network, its gradient and Hessian-vector products by hand, both
ends of its Hessian by Lanczos, and gradient descent on the square loss (linalg/smooth_network.py;
Banerjee et al., arXiv 2209.15106), each against an independent route.

Finite differences. A central difference of a smooth g with step h errs by h^2 |g'''| / 6
(truncation) plus about eps |g| / h (rounding). The derivatives here are O(1) (the networks are
small, sigma_0 <= 1, entries of the inputs O(1)), so with h = 1e-4 truncation is ~2e-9 and rounding
~1e-12 times the scale of g; we allow FD_RTOL = 1e-6 of the largest entry, a factor 500 above the
truncation estimate for third derivatives up to O(10) (the activations' third derivatives are
below 5 on the real line, and a depth-3 chain multiplies a few of them).
Eigenvalues: numpy.linalg.eigvalsh of the dense Hessian built from Hessian-vector products on the
unit vectors errs by p(P) eps ||H|| (P parameters, taken p(P) = 16 P as in bounds.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from svperturb.linalg.smooth_network import (
    ACTIVATIONS,
    DIVERGED,
    SmoothNetwork,
    activation,
    flatten,
    gradient_descent,
    gram_eigenvalues,
    hessian_ends,
    loss_hessian_ends,
    predictions,
    predictor,
    predictor_gradient,
    predictor_hessian_dense,
    predictor_hvp,
    predictor_jacobian,
    spectral_norm,
    square_loss,
    square_loss_hvp,
    unflatten,
)

EPS = np.finfo(np.float64).eps
STEP = 1e-4
FD_RTOL = 1e-6  # see the module docstring
DEPTHS = (1, 2, 3)


def network(seed, batch=2, width=4, dim=3, depth=2, std=0.8, act="tanh"):
    rng = np.random.default_rng(seed)
    weights = [std * rng.standard_normal((batch, width, dim))]
    weights += [std * rng.standard_normal((batch, width, width)) for _ in range(depth - 1)]
    return SmoothNetwork(weights, rng.standard_normal((batch, width)), act), \
        rng.standard_normal((batch, dim))


def unit(batch, size, j, h=1.0):
    e = np.zeros((batch, size))
    e[:, j] = h
    return e


def central_differences(function, net, x):
    """d function(theta; x) / d theta_j by central differences of step STEP, j last."""
    return np.stack([(function(net.moved(unit(2, net.size, j, STEP)), x)
                      - function(net.moved(unit(2, net.size, j, -STEP)), x)) / (2 * STEP)
                     for j in range(net.size)], axis=-1)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_derivatives_match_central_differences(name):
    phi = activation(name)
    z = np.linspace(-6, 6, 241)
    first = (phi.value(z + STEP, np) - phi.value(z - STEP, np)) / (2 * STEP)
    second = (phi.first(z + STEP, np) - phi.first(z - STEP, np)) / (2 * STEP)
    np.testing.assert_allclose(phi.first(z, np), first, atol=FD_RTOL)
    np.testing.assert_allclose(phi.second(z, np), second, atol=FD_RTOL)


def test_activations_take_their_closed_values():
    z = np.array([-2.0, 0.0, 1.5])
    np.testing.assert_allclose(activation("softplus").value(z, np), np.log1p(np.exp(z)), rtol=1e-15)
    np.testing.assert_allclose(activation("softplus").first(z, np), 1 / (1 + np.exp(-z)), rtol=1e-15)
    gelu = 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z ** 3)))
    np.testing.assert_allclose(activation("gelu").value(z, np), gelu, rtol=1e-15)
    with pytest.raises(ValueError, match="activation: got 'relu'; allowed: tanh, softplus, gelu"):
        activation("relu")


def test_a_depth_one_network_is_its_formula():
    net, x = network(1, depth=1, act="tanh")
    w, v = net.weights[0], net.v
    expected = (v * np.tanh((w @ x[..., None])[..., 0] / 2)).sum(axis=-1) / 2  # sqrt(m) = 2
    np.testing.assert_allclose(predictor(net, x), expected, rtol=1e-14)


def test_flatten_and_unflatten_invert_each_other():
    net, _ = network(2, depth=3)
    flat = np.random.default_rng(0).standard_normal((2, net.size))
    assert net.size == 4 * 3 + 2 * 16 + 4
    np.testing.assert_array_equal(flatten(unflatten(flat, net)), flat)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("depth", DEPTHS)
def test_the_gradient_matches_central_differences_of_the_predictor(name, depth):
    net, x = network(10 + depth, depth=depth, act=name)
    fd = central_differences(predictor, net, x)
    gradient = predictor_gradient(net, x)
    np.testing.assert_allclose(gradient, fd, atol=FD_RTOL * np.abs(fd).max())


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("depth", DEPTHS)
def test_hessian_vector_products_match_the_finite_difference_hessian(name, depth):
    net, x = network(20 + depth, depth=depth, act=name)
    size = net.size
    fd = central_differences(predictor_gradient, net, x)
    dense = predictor_hessian_dense(net, x)
    np.testing.assert_allclose(dense, fd, atol=FD_RTOL * np.abs(fd).max())
    # symmetric to rounding, v's block zero (f is linear in v), and linear in the direction
    np.testing.assert_allclose(dense, np.swapaxes(dense, -1, -2), atol=64 * EPS * np.abs(dense).max())
    assert np.all(dense[:, -4:, -4:] == 0)
    direction = np.random.default_rng(depth).standard_normal((2, size))
    np.testing.assert_allclose(predictor_hvp(net, x, direction),
                               (dense @ direction[..., None])[..., 0],
                               atol=64 * size * EPS * np.abs(dense).max() * np.abs(direction).max())


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_lanczos_both_ends_agree_with_dense_eigenvalues_within_1e_8(name):
    net, x = network(30, batch=3, width=6, dim=6, depth=3, std=1.0, act=name)
    eigenvalues = np.linalg.eigvalsh(predictor_hessian_dense(net, x))
    ends = hessian_ends(net, x, rtol=1e-10)
    norm, bound = spectral_norm(ends)
    exact_norm = np.abs(eigenvalues).max(axis=-1)
    rounding = 16 * net.size * EPS * exact_norm
    assert np.all(np.abs(norm - exact_norm) <= 1e-8 * exact_norm)  # the target
    assert np.all(np.abs(norm - exact_norm) <= bound + rounding)  # the bound holds
    assert np.all(np.abs(ends.top - eigenvalues[:, -1]) <= ends.top_bound + rounding)
    assert np.all(np.abs(ends.bottom - eigenvalues[:, 0]) <= ends.bottom_bound + rounding)
    assert np.all(ends.bottom < 0) and np.all(ends.top > 0)  # indefinite
    assert np.all(bound <= 1e-10 * norm + net.size * 8 * EPS * norm)  # tight: what it was asked
    assert np.all(ends.steps < net.size)


def test_the_loss_hessian_is_gauss_newton_plus_weighted_predictor_hessians():
    net, _ = network(40, depth=2, width=3, dim=3)
    rng = np.random.default_rng(4)
    inputs, targets = rng.standard_normal((2, 3, 3)), rng.standard_normal((2, 3))
    size = net.size

    def loss_gradient(n):
        r = predictions(n, inputs) - targets
        return (r[:, :, None] * predictor_jacobian(n, inputs)).mean(axis=1)

    fd = np.stack([(loss_gradient(net.moved(unit(2, size, j, STEP)))
                    - loss_gradient(net.moved(unit(2, size, j, -STEP)))) / (2 * STEP)
                   for j in range(size)], axis=-1)
    residuals = predictions(net, inputs) - targets
    hessian = np.stack([square_loss_hvp(net, inputs, residuals, unit(2, size, j))
                        for j in range(size)], axis=-1)
    np.testing.assert_allclose(hessian, fd, atol=FD_RTOL * np.abs(fd).max())
    norm = np.abs(np.linalg.eigvalsh(hessian)).max(axis=-1)
    ends = loss_hessian_ends(net, inputs, targets, rtol=1e-10)
    np.testing.assert_allclose(spectral_norm(ends)[0], norm, rtol=1e-8)


def test_the_gauss_newton_norm_is_that_of_the_jacobians_gram_matrix():
    net, _ = network(41, depth=2)
    inputs = np.random.default_rng(5).standard_normal((2, 3, 3))
    jacobian = predictor_jacobian(net, inputs)
    gauss_newton = np.swapaxes(jacobian, -1, -2) @ jacobian / 3  # P x P
    top = np.linalg.eigvalsh(gauss_newton)[:, -1]
    np.testing.assert_allclose(gram_eigenvalues(jacobian)[:, -1], top, rtol=1e-12)


def test_gradient_descent_takes_the_steps_it_says_and_stops_a_diverging_run():
    net, _ = network(42, depth=2, width=5, dim=3, std=0.5)
    rng = np.random.default_rng(6)
    inputs, targets = rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 4))
    step = np.array([0.05, 1e6])  # the second would overflow
    run = gradient_descent(net, inputs, targets, step, 3)
    # by hand: three steps of theta - eta (1/n) sum_i r_i grad f_i on the first sample
    by_hand = net
    for _ in range(3):
        r = predictions(by_hand, inputs) - targets
        by_hand = by_hand.moved(-step[:, None] * (r[:, :, None] * predictor_jacobian(by_hand, inputs))
                                .mean(axis=1))
    np.testing.assert_allclose(run.network.weights[1][0], by_hand.weights[1][0], rtol=1e-13)
    assert run.losses.shape == (2, 4) and run.average_gradient_norm2.shape == (2, 4)
    assert run.losses[0, 0] == pytest.approx(square_loss(net, inputs, targets)[0], rel=1e-14)
    assert run.diverged_at[0] == -1 and run.diverged_at[1] == 1
    assert np.all(run.losses[1] == run.losses[1, 0])  # it stayed at its start
    assert np.all(np.isfinite(run.losses)) and DIVERGED > 1
