"""The sharpness study (Kamber & Parhi, arXiv 2509.25783): what one job records, per sample, at
minimizers of deep matrix factorization, and how its points share their draws."""

from __future__ import annotations

import numpy as np
import pytest

from svperturb.studies import sharpness

EPS = np.finfo(float).eps


def point(**axes):
    return {"seed": 3, "target": "gaussian", "width": 3, "depth": 3, "imbalance": 0.0, **axes}


def run(samples=24, spectra_stop=None, **axes):
    per_sample, spectra = sharpness.simulate(point(**axes), 0, samples, np, spectra_stop)
    return per_sample, spectra


def rounding(per_sample, d):
    """Absolute allowance for lambda_max: K is a sum of PSD terms whose entries carry a relative
    error of a few d eps each, so its eigenvalues move by at most ~ N eps times the sum of the
    terms' norms, which the Cauchy-Schwarz sum bounds (N = d^2, the operator's size)."""
    return 64 * d * d * EPS * per_sample["cauchy_schwarz_bound"]


@pytest.mark.parametrize("target", ["gaussian", "ill_conditioned"])
@pytest.mark.parametrize(("width", "depth"), [(1, 4), (3, 2), (4, 2), (1, 2)])
def test_the_closed_forms_are_recorded_and_agree_with_the_exact_value(target, width, depth):
    for kappa in (0.0, 1.0):
        values, _ = run(target=target, width=width, depth=depth, imbalance=kappa)
        assert np.all(np.abs(values["closed_form"] - values["lambda_max"]) <= rounding(values, width))


def test_no_closed_form_is_claimed_where_none_applies():
    values, _ = run(width=3, depth=4)
    assert np.isnan(values["closed_form"]).all()


@pytest.mark.parametrize("target", ["gaussian", "ill_conditioned"])
@pytest.mark.parametrize("depth", [2, 3, 6])
def test_balanced_minimizers_reach_the_balanced_value_and_imbalanced_ones_lie_above(target, depth):
    balanced, _ = run(target=target, depth=depth, imbalance=0.0)
    allowance = rounding(balanced, 3)
    assert np.all(np.abs(balanced["lambda_max"] - balanced["balanced_value"]) <= allowance)
    for kappa in (0.5, 2.0):
        values, _ = run(target=target, depth=depth, imbalance=kappa)
        assert np.all(values["lambda_max"] >= values["balanced_value"] - rounding(values, 3))
        assert np.all(values["lambda_max"] <= values["cauchy_schwarz_bound"] + rounding(values, 3))
        assert np.all(values["least_over_rescalings"] <= values["lambda_max"] * (1 + 1e-12))
        assert np.all(values["product_residual"] < 1e-9)


def test_rescaling_to_equal_products_changes_nothing_where_they_are_equal():
    values, _ = run(imbalance=0.0)  # balanced: ||A_i|| ||B_i|| = ||M||^((L-1)/L) for every i
    np.testing.assert_allclose(values["lambda_max_equal_products"], values["lambda_max"], rtol=1e-12)
    products = values["factor_norm_product"]
    np.testing.assert_allclose(products, products[:, :1] * np.ones((1, 3)), rtol=1e-12)


def test_stored_spectra_hold_the_hessians_top_eigenvalues_for_the_kept_samples():
    values, spectra = run(samples=10, spectra_stop=4, width=3, depth=4, imbalance=1.0)
    eigenvalues = spectra["hessian_eigenvalues"]
    assert eigenvalues.shape == (4, 9)
    np.testing.assert_allclose(eigenvalues[:, 0], values["lambda_max"][:4], rtol=1e-12)
    assert np.all(np.diff(eigenvalues, axis=1) <= 0)


def test_a_batched_job_equals_its_points_computed_alone():
    points = [point(depth=depth, imbalance=kappa) for depth in (2, 4) for kappa in (0.0, 1.0)]
    together = sharpness.simulate_points(points, 0, 16, np, 3)
    for p, (per_sample, spectra) in zip(points, together, strict=True):
        alone, alone_spectra = sharpness.simulate(p, 0, 16, np, 3)
        for key in alone:
            np.testing.assert_array_equal(per_sample[key], alone[key], err_msg=key)
        np.testing.assert_array_equal(spectra["hessian_eigenvalues"], alone_spectra["hessian_eigenvalues"])


def test_every_depth_and_imbalance_of_a_sample_factorizes_the_same_target():
    norms = [run(depth=depth, imbalance=kappa)[0]["norm_target"]
             for depth in (2, 5) for kappa in (0.0, 1.5)]
    for other in norms[1:]:
        np.testing.assert_array_equal(other, norms[0])
