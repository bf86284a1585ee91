"""Targets and minimizers of deep matrix factorization (sampling/factorizations.py): every
minimizer's product is the target, to float64 rounding, and the draws are paired across depth and
imbalance and independent of how the samples are split."""

from __future__ import annotations

import numpy as np
import pytest

from svperturb.sampling.factorizations import (
    TARGET_CONDITION,
    balanced_factors,
    imbalance_directions,
    imbalanced_factors,
    target_matrices,
)

SEED, STUDY = 5, "sharpness"
EPS = np.finfo(float).eps


def product(factors):
    out = factors[0]
    for w in factors[1:]:
        out = w @ out
    return out


def relative_residual(m, factors):
    return np.linalg.norm(m - product(factors), axis=(-2, -1)) / np.linalg.norm(m, axis=(-2, -1))


@pytest.mark.parametrize("target", ["gaussian", "ill_conditioned"])
@pytest.mark.parametrize("d", [1, 2, 5, 16])
@pytest.mark.parametrize("depth", [2, 3, 6])
def test_balanced_and_imbalanced_minimizers_multiply_to_the_target(target, d, depth):
    m = target_matrices(SEED, STUDY, d, target, 0, 40)
    balanced = balanced_factors(m, depth)
    directions = imbalance_directions(SEED, STUDY, d, depth, 0, 40)
    # rounding: each of the L products and the SVD adds ~ d eps relative error; expm's condition
    # number at kappa = 2 adds a factor exp(2 kappa ||Z|| / sqrt(d)) <~ e^(8) in the worst layer
    assert relative_residual(m, balanced).max() < 64 * depth * d * EPS
    for kappa in (0.5, 2.0):
        factors = imbalanced_factors(balanced, directions, kappa)
        assert relative_residual(m, factors).max() < 1e-9
        assert not np.allclose(factors[0], balanced[0])  # imbalance changed the factors


def test_balanced_factors_carry_the_target_singular_values_to_the_power_one_over_depth():
    m = target_matrices(SEED, STUDY, 6, "gaussian", 0, 20)
    s = np.linalg.svd(m, compute_uv=False)
    for w in balanced_factors(m, 4):
        np.testing.assert_allclose(np.linalg.svd(w, compute_uv=False), s ** 0.25, rtol=1e-12)


def test_ill_conditioned_targets_have_the_stated_spectrum():
    m = target_matrices(SEED, STUDY, 8, "ill_conditioned", 0, 10)
    s = np.linalg.svd(m, compute_uv=False)
    np.testing.assert_allclose(s, np.broadcast_to(TARGET_CONDITION ** -(np.arange(8) / 7), s.shape),
                               rtol=1e-10)
    np.testing.assert_allclose(np.abs(target_matrices(SEED, STUDY, 1, "ill_conditioned", 0, 10)), 1.0)


def test_gaussian_targets_have_entries_of_variance_one_over_d():
    d, samples = 10, 2000
    m = target_matrices(SEED, STUDY, d, "gaussian", 0, samples)
    # the sample variance of N = samples d^2 entries has relative standard error sqrt(2/N)
    assert abs(m.var() * d - 1) < 5 * np.sqrt(2 / m.size)


def test_draws_are_paired_across_depth_and_independent_of_the_split():
    deep = imbalance_directions(SEED, STUDY, 4, 6, 0, 100)
    shallow = imbalance_directions(SEED, STUDY, 4, 3, 0, 100)
    for a, b in zip(shallow, deep[:2], strict=True):
        np.testing.assert_array_equal(a, b)
    whole = target_matrices(SEED, STUDY, 4, "gaussian", 0, 100)
    parts = np.concatenate([target_matrices(SEED, STUDY, 4, "gaussian", a, b)
                            for a, b in ((0, 37), (37, 64), (64, 100))])
    np.testing.assert_array_equal(whole, parts)
    assert not np.array_equal(whole, target_matrices(SEED + 1, STUDY, 4, "gaussian", 0, 100))


def test_an_unknown_target_is_refused_naming_the_allowed_ones():
    with pytest.raises(ValueError, match="gaussian, ill_conditioned"):
        target_matrices(SEED, STUDY, 3, "lognormal", 0, 4)
