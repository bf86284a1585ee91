"""Claims 13 and 14: Lemma 14's derivative against independent routes, the finite-difference error
budget, the data-factor matrices of Lemma 8 - Corollary 11 against np.kron, the identity (50), and
the claims' verdicts on real (small) simulations and on data made to break them."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from support.reference import reference_singular_values
from support.studies import simulate_study, tampered_copy
from svperturb.analysis.claims import Results
from svperturb.analysis.claims.derivative_data import CLAIMS, data_factor, derivative
from svperturb.analysis.figures.derivative_data import FIGURES
from svperturb.analysis.fit import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, FitSettings
from svperturb.linalg.spectra import condition_number
from svperturb.studies import data_factor as data_study
from svperturb.studies import derivative as derivative_study
from svperturb.theory.bounds import (
    batch_condition_bound,
    batch_singular_value_lower_bound,
    batch_singular_value_upper_bound,
)
from svperturb.theory.perturbation import (
    STEP,
    central_difference,
    central_difference_weights,
    derivative_tolerances,
    isolation_distances,
    singular_value_derivatives,
    stencil_moments,
    stencil_singular_values,
    truncation_bound,
)

SEED = 20220307
SETTINGS = FitSettings(bootstrap=20, seed=1)


# ---------------------------------------------------------------------------------------------
# Lemma 14 and the finite-difference error budget


def test_seven_point_stencil_and_its_moments():
    np.testing.assert_allclose(central_difference_weights(3), np.array([-1, 9, -45, 0, 45, -9, 1]) / 60,
                               atol=1e-15)
    np.testing.assert_allclose(central_difference_weights(1), [-0.5, 0, 0.5], atol=1e-15)
    moments = stencil_moments(central_difference_weights(3), [1, 3, 5, 7])
    np.testing.assert_allclose(moments, [1, 0, 0, 36], atol=1e-11)
    q = np.array([1e-3, 0.05, 0.1])
    bound = truncation_bound(q)
    assert np.all(bound >= 36 * q**6) and np.all(bound <= 36 * q**6 * 1.2)
    assert np.isinf(truncation_bound(1 / 3)) and np.isinf(truncation_bound(0.5))


def test_central_difference_of_a_polynomial_is_exact():
    h = 0.01
    t = np.arange(-3, 4) * h + 0.3
    values = 2 * t**6 - t**3 + 5 * t  # degree 6: the 7-point stencil is exact
    assert central_difference(values, h) == pytest.approx(12 * 0.3**5 - 3 * 0.3**2 + 5, abs=1e-10)


def test_truncation_bound_holds_on_the_two_level_model():
    """f(x) = sqrt(x^2 + c^2): two singular values +-f meeting at the branch points x = +-ic, at
    distance d/2 = f(x) from x (d = 2 f(x) the isolation distance). The error of the stencil must
    stay below T(2h/d), and not by orders of magnitude (the bound is a Cauchy estimate)."""
    h = 1e-3
    worst = 0.0
    for c in (0.01, 0.02, 0.05):
        for x in np.linspace(-0.1, 0.1, 41):
            t = x + np.arange(-3, 4) * h
            f = np.sqrt(t**2 + c**2)
            exact = x / np.sqrt(x**2 + c**2)
            d = 2 * np.sqrt(x**2 + c**2)
            if 2 * h / d > 0.1:
                continue
            bound = truncation_bound(2 * h / d)
            error = abs(central_difference(f, h) - exact)
            assert error <= bound + 1e-12
            worst = max(worst, error / bound)
    assert worst > 1e-3  # the bound is not vacuous


def test_derivative_of_a_diagonal_family():
    """Mo = diag(-0.4, -0.2, -0.1): s_i(rho) = |a_i + rho|, s_i' = sign(a_i + rho)."""
    mo = np.diag([-0.4, -0.2, -0.1])[None]
    s, ds, dlambda = singular_value_derivatives(mo, 0.32)
    np.testing.assert_allclose(s[0], [0.22, 0.12, 0.08], atol=1e-15)
    np.testing.assert_allclose(ds[0], [1, 1, -1], atol=1e-15)
    np.testing.assert_allclose(dlambda[0], 2 * s[0] * ds[0], atol=1e-15)


def test_derivative_of_a_jordan_block_closed_form():
    """M = [[rho, a], [0, rho]]: s = sqrt(rho^2 + a^2/4) +- a/2, both with slope rho / sqrt(rho^2 + a^2/4)."""
    a = 0.6
    mo = np.array([[[0.0, a], [0.0, 0.0]]])
    for rho in (0.1, 0.5, 1.0):
        s, ds, dlambda = singular_value_derivatives(mo, rho)
        root = np.sqrt(rho**2 + a**2 / 4)
        np.testing.assert_allclose(s[0], [root + a / 2, root - a / 2], rtol=1e-14)
        np.testing.assert_allclose(ds[0], [rho / root] * 2, rtol=1e-13)
        np.testing.assert_allclose(dlambda[0], 2 * s[0] * rho / root, rtol=1e-13)


def _complex_step_derivative(mo, rho, s):
    """s_i'(rho) from the complex-step derivative of the eigenvalue of [[0, A], [A^T, 0]] near s_i:
    A(rho + i t) is analytic in rho, the eigenvalue real on the real axis, so s_i' = Im lambda / t."""
    n = mo.shape[-1]
    t = 1e-30
    a = mo + (rho + 1j * t) * np.eye(n)
    h = np.block([[np.zeros((n, n)), a], [a.T, np.zeros((n, n))]])
    eig = scipy.linalg.eigvals(h)
    picked = np.array([eig[np.argmin(np.abs(eig - value))] for value in s])
    return picked.imag / t


def test_lemma_14_against_complex_step_and_hellmann_feynman():
    rng = np.random.default_rng(3)
    n = 6
    mo = rng.standard_normal((5, n, n)) / np.sqrt(8 * n)
    for rho in (0.0, 0.37, 1.0):
        s, ds, dlambda = singular_value_derivatives(mo, rho)
        np.testing.assert_allclose(s, reference_singular_values(mo + rho * np.eye(n)), rtol=1e-12)
        for k in range(len(mo)):
            np.testing.assert_allclose(ds[k], _complex_step_derivative(mo[k], rho, s[k]), atol=1e-9)
            # Hellmann-Feynman on N = M^T M with SciPy's eigh: lambda' = u^T (M + M^T) u (67)
            m = mo[k] + rho * np.eye(n)
            _, vec = scipy.linalg.eigh(m.T @ m)
            direct = np.einsum("ki,kl,li->i", vec, m + m.T, vec)[::-1]
            np.testing.assert_allclose(dlambda[k], direct, atol=1e-12)
            assert np.all(np.abs(ds[k]) <= 1 + 1e-12)


def test_isolation_distances():
    s = np.array([[3.0, 2.5, 1.0, 0.2]])
    np.testing.assert_allclose(isolation_distances(s), [[0.5, 0.5, 0.8, 0.4]])


def test_finite_differences_agree_within_the_derived_tolerance():
    rng = np.random.default_rng(4)
    n = 8
    mo = rng.standard_normal((40, n, n)) / (2 * np.sqrt(8 * n))
    s1_mo = np.linalg.norm(mo, ord=2, axis=(-2, -1))
    for rho in (0.0, 0.5, 1.0):
        s, ds, dlambda = singular_value_derivatives(mo, rho)
        nodes = stencil_singular_values(mo, rho)
        isolation = isolation_distances(s)
        tol_66, tol_65 = derivative_tolerances(s, isolation, s1_mo, rho)
        ok = isolation >= 20 * STEP
        assert ok.mean() > 0.9
        assert np.all(np.abs(central_difference(nodes) - ds)[ok] <= tol_66[ok])
        assert np.all(np.abs(central_difference(nodes**2) - dlambda)[ok] <= tol_65[ok])
        # a derivative off by one part in 10^6 must be caught
        assert np.all(np.abs(central_difference(nodes) - ds * (1 + 1e-6))[ok & (np.abs(ds) > 0.1)]
                      > tol_66[ok & (np.abs(ds) > 0.1)])


# ---------------------------------------------------------------------------------------------
# The data factor: explicit matrices


def test_data_factor_matrix_is_the_kronecker_product_of_lemma_8():
    rng = np.random.default_rng(5)
    z, md = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4, 4))
    q = data_study.data_factor_matrix(z, md)
    t = data_study.loss_form_matrix(z, md)
    for index in np.ndindex(2, 3):
        np.testing.assert_array_equal(q[index], np.kron(np.diag(z[index]), md[index]))
        np.testing.assert_array_equal(t[index], np.kron(md[index], z[index][None, :]))
        s_md = reference_singular_values(md[index])
        np.testing.assert_allclose(data_study.predicted_singular_values(s_md, z[index]),
                                   reference_singular_values(q[index]), rtol=1e-12, atol=1e-14)


def test_identity_50_fails_for_n_above_one_and_the_true_form_has_rank_n():
    """(50) says ||MDWz||^2 = w^T Q^T Q w; by algebra MDWz = (MD (x) z^T) w, whose Gram matrix
    (MD)^T MD (x) z z^T has rank n and singular values ||z|| s_i(MD). Q^T Q has rank n^2: no
    flattening of W can make the two forms equal. Their traces agree (equal expectations over an
    isotropic W)."""
    rng = np.random.default_rng(6)
    n = 4
    md, z, w = rng.standard_normal((n, n)), rng.standard_normal(n), rng.standard_normal((n, n))
    q = np.kron(np.diag(z), md)
    t = np.kron(md, z[None, :])
    loss = np.sum((md @ w @ z) ** 2)
    assert w.reshape(-1) @ t.T @ t @ w.reshape(-1) == pytest.approx(loss, rel=1e-13)
    for flat in (w.reshape(-1), w.T.reshape(-1)):  # row by row (the paper) or column by column
        assert abs(flat @ q.T @ q @ flat - loss) > 1e-3 * loss
    assert np.linalg.matrix_rank(q.T @ q) == n * n and np.linalg.matrix_rank(t.T @ t) == n
    np.testing.assert_allclose(scipy.linalg.svd(t, compute_uv=False, lapack_driver="gesvd"),
                               np.linalg.norm(z) * reference_singular_values(md), rtol=1e-13)
    assert np.trace(q.T @ q) == pytest.approx(np.trace(t.T @ t), rel=1e-13)
    # n = 1: the identity is trivially true
    assert (np.kron(np.diag(z[:1]), md[:1, :1]) @ w[:1, :1].reshape(-1)) ** 2 == pytest.approx(
        (md[0, 0] * w[0, 0] * z[0]) ** 2)


def test_batch_bounds_by_hand():
    z = np.array([[[1.0, 2.0], [3.0, 0.0]]])  # one sample, G = 2, n = 2
    s1, sn = np.array([[2.0, 1.0]]), np.array([[1.0, 0.5]])
    np.testing.assert_allclose(batch_singular_value_upper_bound(z, s1), [[(4 + 9) / 2, (16 + 0) / 2]])
    np.testing.assert_allclose(batch_singular_value_lower_bound(z, sn), [[(1 + 9 * 0.25) / 2, 4 / 2]])
    zbar = np.sqrt([(1 + 9) / 2, 4 / 2])
    np.testing.assert_allclose(batch_condition_bound(z, s1, sn), [2.0 / 0.5 * zbar.max() / zbar.min()])
    assert np.isnan(batch_condition_bound(z, s1, np.array([[1.0, 0.0]]))[0])  # c = 0


def _data_point(width=3, eta=0.1, batch=4, skip=(0.0, 1.0)):
    return {"distribution": "gaussian", "width": width, "weight_scale": 2.0, "activation_slope": eta,
            "activity": 0.5, "batch_size": batch, "skip": list(skip), "seed": SEED}


def test_data_factor_study_against_an_independent_computation():
    point = _data_point(width=3, eta=0.1, batch=3)
    per_sample, spectra = data_study.simulate(point, 0, 6, np)
    z, left, right, probe = data_study._draws(point, 0, 6)
    from svperturb.sampling.ensembles import unit_variance_matrices, weight_std
    w1 = unit_variance_matrices(SEED, "data_factor", 3, "gaussian", 0, 6) * weight_std(3, 2.0)
    for k, rho in enumerate(point["skip"]):
        for s in range(6):
            mds = [(np.diag(left[s, g]) @ w1[s] + rho * np.eye(3)) @ np.diag(right[s, g]) for g in range(3)]
            qs = [np.kron(np.diag(z[s, g]), mds[g]) for g in range(3)]
            a = sum(q.T @ q for q in qs) / 3
            s_batch = np.sqrt(np.clip(scipy.linalg.eigh(a, eigvals_only=True)[::-1], 0, None))
            assert per_sample["kappa_Q_batch"][s, k] == pytest.approx(s_batch[0] / s_batch[-1], rel=1e-8)
            np.testing.assert_allclose(spectra["singular_values_Q"][s, k],
                                       reference_singular_values(qs[0]), rtol=1e-12, atol=1e-15)
            loss = np.sum((mds[0] @ probe[s] @ z[s, 0]) ** 2)
            assert per_sample["loss_true"][s, k] == pytest.approx(loss, rel=1e-12)
            w = probe[s].reshape(-1)
            assert per_sample["loss_paper"][s, k] == pytest.approx(w @ qs[0].T @ qs[0] @ w, rel=1e-12)
            kappa_md = condition_number(reference_singular_values(mds[0]))
            assert per_sample["kappa_true"][s, k] == pytest.approx(kappa_md, rel=1e-10)
    for name in ("violations_51", "violations_54", "violations_57", "violations_58", "violations_59",
                 "violations_63"):
        assert per_sample[name].sum() == 0, name
    assert per_sample["violations_50"].sum() == per_sample["violations_50"].size  # (50) fails for n = 3


def test_identity_50_holds_in_the_study_at_n_equal_one():
    per_sample, _ = data_study.simulate(_data_point(width=1, batch=2), 0, 64, np)
    assert per_sample["violations_50"].sum() == 0 and per_sample["violations_56"].sum() == 0
    assert np.nanmax(per_sample["err_50"]) < 1e-14


@pytest.mark.parametrize("study, point", [
    (data_study, _data_point(width=3, eta=0.0, batch=2)),
    (derivative_study, {"distribution": "uniform", "width": 4, "weight_scale": 2.0, "skip": [0.0, 1.0],
                        "seed": SEED}),
])
def test_draws_do_not_depend_on_how_samples_are_split(study, point):
    whole, _ = study.simulate(point, 0, 70, np)
    first, _ = study.simulate(point, 0, 23, np)
    second, _ = study.simulate(point, 23, 70, np)
    for name, values in whole.items():
        np.testing.assert_array_equal(values, np.concatenate([first[name], second[name]]), err_msg=name)


def test_batches_are_nested():
    """Datum 1 is the same whatever the batch size: the single-datum checks agree."""
    one, _ = data_study.simulate(_data_point(batch=1), 0, 10, np)
    many, _ = data_study.simulate(_data_point(batch=5), 0, 10, np)
    for name in ("loss_true", "loss_paper", "kappa_MD", "kappa_Q", "kappa_true"):
        np.testing.assert_array_equal(one[name], many[name], err_msg=name)


# ---------------------------------------------------------------------------------------------
# Claims and figures on real (small) simulations


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("derivative_data")
    simulate_study(directory, "derivative",
                   [f"distribution=gaussian/width={n}/weight_scale=2" for n in (4, 8)], 100,
                   "--skip", "0", "0.5", "1")
    simulate_study(directory, "data_factor",
                   [f"distribution=gaussian/width=3/weight_scale=2/activation_slope={eta}/activity=0.5/"
                    f"batch_size={g}" for eta in (0, 0.1) for g in (1, 4)], 64, "--skip", "0", "1")
    return directory


def test_claim_13_reproduced_on_simulated_derivatives(results_dir):
    outcome = derivative(Results(results_dir), SETTINGS)
    assert outcome.verdict == REPRODUCED, outcome.measured
    assert outcome.evidence["checked"] > 0.9 * 200 * 3 * 6
    assert outcome.evidence["largest_ratio_66"] < 1


def test_claim_13_not_reproduced_when_a_derivative_disagrees(results_dir, tmp_path):
    def one_violation(x):
        x = x.copy()
        x[0, 0] = 1
        return x
    outcome = derivative(tampered_copy(results_dir, tmp_path, "derivative",
                                       {"violations_66": one_violation}, every=True),
                         SETTINGS)
    assert outcome.verdict == NOT_REPRODUCED


def test_claim_13_inconclusive_when_nothing_is_isolated(results_dir, tmp_path):
    zero = {name: np.zeros_like for name in ("checked", "violations_66", "violations_65")}
    nan = {name: (lambda x: np.full_like(x, np.nan)) for name in ("error_66", "error_65", "max_ratio_66",
                                                                    "max_ratio_65")}
    outcome = derivative(tampered_copy(results_dir, tmp_path, "derivative", {**zero, **nan}, every=True), SETTINGS)
    assert outcome.verdict == INCONCLUSIVE


def test_claim_14_not_reproduced_because_identity_50_fails(results_dir):
    outcome = data_factor(Results(results_dir), SETTINGS)
    assert outcome.verdict == NOT_REPRODUCED, outcome.measured
    assert outcome.evidence["50"]["verdict"] == NOT_REPRODUCED
    for part in ("51", "54", "57", "58", "59", "63"):
        assert outcome.evidence["verdicts"][part] == REPRODUCED, part
    assert "(50) fails" in outcome.measured


def test_claim_14_judged_by_the_bounds_if_50_held(results_dir, tmp_path):
    holds = {name: np.zeros_like for name in ("violations_50", "violations_56")}
    results = tampered_copy(results_dir, tmp_path, "data_factor", holds, every=True)
    assert data_factor(results, SETTINGS).verdict == REPRODUCED

    def one_violation(x):
        x = x.copy()
        x[0, 0] = 1
        return x
    broken = tampered_copy(results_dir, tmp_path, "data_factor",
                           {**holds, "violations_57": one_violation}, every=True)
    outcome = data_factor(broken, SETTINGS)
    assert outcome.verdict == NOT_REPRODUCED and outcome.evidence["verdicts"]["57"] == NOT_REPRODUCED


def test_claims_inconclusive_without_their_studies(tmp_path):
    for claim in CLAIMS:
        assert claim.measure(Results(tmp_path), SETTINGS).verdict == INCONCLUSIVE


def test_figures_draw(results_dir, tmp_path):
    import matplotlib.pyplot as plt
    for stem, (draw, needs_fits) in FIGURES.items():
        fig = draw(Results(results_dir), {}) if needs_fits else draw(Results(results_dir))
        assert fig is not None
        fig.savefig(tmp_path / f"{stem}.png")
        plt.close(fig)
        assert draw(Results(tmp_path / "none")) is None
