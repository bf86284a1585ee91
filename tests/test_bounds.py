"""bounds.py: every inequality of the paper holds on seeded random matrices whose spectra are computed
independently (SciPy's gesvd / syev, matrix by matrix), is attained on the hand cases where the paper's
proofs give equality, and is NaN exactly where its hypothesis fails.

Rounding allowance: float64 LAPACK returns s_i and the eigenvalues of Mo^T + Mo with absolute errors
of order p(n) eps ||.||; squares double the relative error. We allow 64 n eps times the size of the
compared quantity, orders of magnitude below any violation a wrong bound would produce.
"""

from __future__ import annotations

import numpy as np
import pytest

from support.reference import reference_singular_values, reference_symmetric_eigenvalues
from svperturb.theory.bounds import (
    bound_efficiencies,
    condition_bound_lemma36,
    condition_bound_small_norm,
    condition_bound_symmetric_part,
    extreme_singular_value_growth,
    rounding_tolerance,
    singular_value_growth_interval,
    skip_weyl_interval,
    symmetric_part_norm_bound,
)

EPS = np.finfo(np.float64).eps
RHOS = (0.0, 0.1, 0.5, 1.0)


def allowance(scale, n):
    return 64 * n * EPS * np.asarray(scale)


class Sample:
    """A stack Mo with its spectra computed by SciPy, and those of Mo + rho I on demand."""

    def __init__(self, mo):
        self.mo = mo
        self.n = mo.shape[-1]
        self.s0 = reference_singular_values(mo)
        eig = reference_symmetric_eigenvalues(mo)
        self.tau_low, self.tau_bar = eig[:, 0], eig[:, -1]
        self.s1_0, self.sn_0 = self.s0[:, 0], self.s0[:, -1]

    def s(self, rho):
        return reference_singular_values(self.mo + rho * np.eye(self.n))

    def kappa(self, rho):
        s = self.s(rho)
        return s[:, 0] / s[:, -1]


def _random_stacks():
    """Gaussian and Uniform Mo at the paper's scale (111) with r = 2 and r = 1.2, and at sigma = 1
    (where s_1(Mo) > 1 and tau_low < -1, so the NaN branches are exercised too)."""
    rng = np.random.default_rng(20220307)
    out = {}
    for n in (3, 10, 30):
        for r in (2.0, 1.2):
            sigma = 1 / (r * np.sqrt(8 * n))
            out[f"gaussian-n{n}-r{r}"] = sigma * rng.standard_normal((60, n, n))
            out[f"uniform-n{n}-r{r}"] = sigma * rng.uniform(-np.sqrt(3), np.sqrt(3), (60, n, n))
        out[f"gaussian-n{n}-sigma1"] = rng.standard_normal((60, n, n))
    return out


STACKS = _random_stacks()


@pytest.fixture(scope="module", params=sorted(STACKS))
def sample(request):
    return Sample(STACKS[request.param])


# --- (69) ----------------------------------------------------------------------------------------


def test_symmetric_part_norm_is_at_most_twice_the_spectral_norm(sample):
    """(69): ||Mo^T + Mo||_op = max(-tau_low, tau_bar) <= 2 s_1(Mo)."""
    bound = symmetric_part_norm_bound(sample.s1_0)
    np.testing.assert_array_equal(bound, 2 * sample.s1_0)
    assert np.all(np.maximum(-sample.tau_low, sample.tau_bar) <= bound + allowance(bound, sample.n))


def test_symmetric_part_norm_bound_is_attained_by_symmetric_matrices():
    b = np.random.default_rng(1).standard_normal((20, 5, 5))
    sym = Sample(b + np.swapaxes(b, -1, -2))
    bound = symmetric_part_norm_bound(sym.s1_0)
    np.testing.assert_allclose(np.maximum(-sym.tau_low, sym.tau_bar), bound,
                               rtol=0, atol=allowance(bound.max(), 5))


def test_symmetric_part_norm_bound_is_strict_for_a_rotation():
    theta = 1.0
    rotation = np.array([[[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]])
    rot = Sample(rotation)
    assert np.maximum(-rot.tau_low, rot.tau_bar)[0] == pytest.approx(2 * np.cos(theta))
    assert symmetric_part_norm_bound(rot.s1_0)[0] == pytest.approx(2.0)


# --- Theorem 16 (70) -----------------------------------------------------------------------------


@pytest.mark.parametrize("rho", RHOS)
def test_every_squared_singular_value_grows_within_rho_tau_plus_rho_squared(sample, rho):
    """(70): rho tau_low + rho^2 <= s_i(rho)^2 - s_i(0)^2 <= rho tau_bar + rho^2, for every i."""
    lower, upper = singular_value_growth_interval(sample.s0, sample.tau_low, sample.tau_bar, rho)
    assert lower.shape == upper.shape == sample.s0.shape
    squares = sample.s(rho) ** 2
    tol = allowance((sample.s1_0 + rho) ** 2, sample.n)[:, None]
    assert np.all(squares >= lower - tol)
    assert np.all(squares <= upper + tol)


def test_growth_interval_is_the_closed_form_of_70():
    s0 = np.array([[0.5, 0.2]])
    lower, upper = singular_value_growth_interval(s0, np.array([-0.3]), np.array([0.4]), 0.5)
    np.testing.assert_allclose(lower, [[0.25 - 0.15 + 0.25, 0.04 - 0.15 + 0.25]])
    np.testing.assert_allclose(upper, [[0.25 + 0.20 + 0.25, 0.04 + 0.20 + 0.25]])


@pytest.mark.parametrize("c", [-0.6, -0.2, 0.3])
@pytest.mark.parametrize("rho", [0.25, 1.0])
def test_growth_interval_is_attained_by_a_multiple_of_the_identity(c, rho):
    """Mo = c I: s_i(rho)^2 - s_i(0)^2 = (c + rho)^2 - c^2 = rho (2c) + rho^2, and tau_low = tau_bar = 2c."""
    n = 4
    mo = Sample(c * np.eye(n)[None])
    lower, upper = singular_value_growth_interval(mo.s0, mo.tau_low, mo.tau_bar, rho)
    exact = (c + rho) ** 2
    np.testing.assert_allclose(lower, exact, rtol=1e-13)
    np.testing.assert_allclose(upper, exact, rtol=1e-13)
    np.testing.assert_allclose(mo.s(rho) ** 2, exact, rtol=1e-13)


def test_growth_interval_is_attained_at_the_extreme_entries_of_a_positive_diagonal():
    """Mo = diag(d), d > 0: s_i(rho) = d_i + rho; the largest d reaches the upper end, the smallest the lower."""
    d = np.array([0.5, 0.2, 0.1])
    mo = Sample(np.diag(d)[None])
    rho = 0.7
    lower, upper = singular_value_growth_interval(mo.s0, mo.tau_low, mo.tau_bar, rho)
    s = mo.s(rho)[0]
    np.testing.assert_allclose(s, d + rho, rtol=1e-14)
    assert s[0] ** 2 == pytest.approx(upper[0, 0], rel=1e-14)
    assert s[-1] ** 2 == pytest.approx(lower[0, -1], rel=1e-14)


# --- Lemma 21 (74) -------------------------------------------------------------------------------


@pytest.mark.parametrize("rho", RHOS)
def test_extreme_singular_values_grow_within_lemma_21(sample, rho):
    """(74): s_n(0)^2 + rho tau_low + rho^2 <= s_n(rho)^2 and s_1(rho)^2 <= s_1(0)^2 + rho tau_bar + rho^2."""
    lower_sn, upper_s1 = extreme_singular_value_growth(
        sample.s1_0, sample.sn_0, sample.tau_low, sample.tau_bar, rho)
    s = sample.s(rho)
    tol = allowance((sample.s1_0 + rho) ** 2, sample.n)
    assert np.all(s[:, -1] ** 2 >= lower_sn - tol)
    assert np.all(s[:, 0] ** 2 <= upper_s1 + tol)


def test_lemma_21_holds_for_a_nilpotent_matrix_with_a_zero_singular_value():
    """Lemma 21 needs no assumption on Mo: Mo = [[0, 1], [0, 0]] has s = (1, 0), tau = -1, 1."""
    mo = Sample(np.array([[[0.0, 1.0], [0.0, 0.0]]]))
    np.testing.assert_allclose([mo.tau_low[0], mo.tau_bar[0]], [-1.0, 1.0], atol=1e-15)
    for rho in np.linspace(0, 2, 21):
        lower_sn, upper_s1 = extreme_singular_value_growth(mo.s1_0, mo.sn_0, mo.tau_low,
                                                           mo.tau_bar, rho)
        s = mo.s(rho)[0]
        assert s[-1] ** 2 >= lower_sn[0] - 1e-14
        assert s[0] ** 2 <= upper_s1[0] + 1e-14


def test_lemma_21_is_attained_by_a_positive_diagonal():
    d = np.array([0.5, 0.2, 0.1])
    mo = Sample(np.diag(d)[None])
    for rho in (0.3, 1.0):
        lower_sn, upper_s1 = extreme_singular_value_growth(mo.s1_0, mo.sn_0, mo.tau_low,
                                                           mo.tau_bar, rho)
        assert lower_sn[0] == pytest.approx((0.1 + rho) ** 2, rel=1e-14)
        assert upper_s1[0] == pytest.approx((0.5 + rho) ** 2, rel=1e-14)


# --- Lemma 17 (71)/(72) --------------------------------------------------------------------------


@pytest.mark.parametrize("rho", RHOS)
def test_weyl_interval_contains_every_singular_value_of_the_skip_layer(sample, rho):
    """(71)/(72): |s_i(M(rho)) - rho| <= s_1(Mo) for every i."""
    lower, upper = skip_weyl_interval(sample.s1_0, rho)
    np.testing.assert_allclose(upper - lower, 2 * sample.s1_0)
    s = sample.s(rho)
    tol = allowance(sample.s1_0 + rho, sample.n)[:, None]
    assert np.all(s >= lower[:, None] - tol)
    assert np.all(s <= upper[:, None] + tol)


@pytest.mark.parametrize("c", [0.3, -0.3])
def test_weyl_interval_is_attained_by_a_multiple_of_the_identity(c):
    """Mo = c I: s_i(M(rho)) = |rho + c| = rho + s_1(Mo) for c > 0, rho - s_1(Mo) for -rho < c < 0."""
    rho = 0.8
    mo = Sample(c * np.eye(3)[None])
    lower, upper = skip_weyl_interval(mo.s1_0, rho)
    attained = upper if c > 0 else lower
    np.testing.assert_allclose(mo.s(rho)[0], attained[0], rtol=1e-14)


# --- Theorem 22 (76) = (114), (77); Lemma 36 (116) -----------------------------------------------


def test_small_norm_condition_bound_holds_where_s1_below_one(sample):
    """(76)/(114): kappa(Mo + I) <= sqrt(1 + tau_bar + s_1^2)/(1 - s_1) <= (1 + s_1)/(1 - s_1)."""
    first, second = condition_bound_small_norm(sample.s1_0, sample.tau_bar)
    valid = sample.s1_0 < 1
    assert np.all(np.isnan(first[~valid])) and np.all(np.isnan(second[~valid]))
    assert np.all(np.isfinite(first[valid])) and np.all(np.isfinite(second[valid]))
    kappa = sample.kappa(1.0)[valid]
    assert np.all(kappa <= first[valid] * (1 + allowance(1, sample.n)))
    assert np.all(first[valid] <= second[valid] * (1 + allowance(1, sample.n)))


def test_symmetric_part_condition_bound_holds_where_tau_low_above_minus_one(sample):
    """(77): kappa(Mo + I) <= sqrt((1 + tau_bar + s_1^2)/(1 + tau_low + s_n^2)) <= (1 + s_1)/sqrt(1 + tau_low)."""
    first, second = condition_bound_symmetric_part(sample.s1_0, sample.sn_0, sample.tau_low,
                                                   sample.tau_bar)
    valid = sample.tau_low > -1
    assert np.all(np.isnan(first[~valid])) and np.all(np.isnan(second[~valid]))
    assert np.all(np.isfinite(first[valid])) and np.all(np.isfinite(second[valid]))
    kappa = sample.kappa(1.0)[valid]
    assert np.all(kappa <= first[valid] * (1 + allowance(1, sample.n)))
    assert np.all(first[valid] <= second[valid] * (1 + allowance(1, sample.n)))


def test_lemma_36_condition_bound_holds_where_tau_low_above_minus_one(sample):
    """(116): kappa(W1 + I) <= sqrt((s_1^2 + tau_bar + 1)/(tau_low + 1)) <= (s_1 + 1)/sqrt(tau_low + 1).
    It drops s_n^2 from the denominator of (77), so it is never sharper than (77)."""
    first, second = condition_bound_lemma36(sample.s1_0, sample.tau_low, sample.tau_bar)
    valid = sample.tau_low > -1
    assert np.all(np.isnan(first[~valid])) and np.all(np.isnan(second[~valid]))
    kappa = sample.kappa(1.0)[valid]
    assert np.all(kappa <= first[valid] * (1 + allowance(1, sample.n)))
    assert np.all(first[valid] <= second[valid] * (1 + allowance(1, sample.n)))
    sharper = condition_bound_symmetric_part(sample.s1_0, sample.sn_0, sample.tau_low,
                                             sample.tau_bar)[0]
    assert np.all(sharper[valid] <= first[valid])


def test_the_random_stacks_exercise_both_sides_of_every_hypothesis():
    """Guard for the tests above: they would prove nothing if no sample had s_1 < 1 or tau_low <= -1."""
    s1 = np.concatenate([Sample(s).s1_0 for s in STACKS.values()])
    tau_low = np.concatenate([Sample(s).tau_low for s in STACKS.values()])
    assert (s1 < 1).sum() > 100 and (s1 >= 1).sum() > 100
    assert (tau_low > -1).sum() > 100 and (tau_low <= -1).sum() > 100


@pytest.mark.parametrize("c", [0.1, 0.5, 0.9])
def test_both_bounds_of_76_are_attained_by_diag_c_minus_c(c):
    """Mo = diag(c, -c): Mo + I = diag(1 + c, 1 - c), kappa = (1 + c)/(1 - c), tau_bar = 2c, s_1 = c, so
    sqrt(1 + 2c + c^2)/(1 - c) = (1 + c)/(1 - c): equality throughout (76)."""
    mo = Sample(np.diag([c, -c])[None])
    first, second = condition_bound_small_norm(mo.s1_0, mo.tau_bar)
    exact = (1 + c) / (1 - c)
    assert mo.kappa(1.0)[0] == pytest.approx(exact, rel=1e-13)
    assert first[0] == pytest.approx(exact, rel=1e-13)
    assert second[0] == pytest.approx(exact, rel=1e-13)


@pytest.mark.parametrize("c", [0.1, 0.4])
def test_first_bound_of_77_is_attained_by_diag_c_minus_c(c):
    """Mo = diag(c, -c): tau_low = -2c, s_n = c, so sqrt((1 + c)^2/(1 - c)^2) = kappa(Mo + I)."""
    mo = Sample(np.diag([c, -c])[None])
    first, second = condition_bound_symmetric_part(mo.s1_0, mo.sn_0, mo.tau_low, mo.tau_bar)
    assert first[0] == pytest.approx((1 + c) / (1 - c), rel=1e-13)
    assert second[0] == pytest.approx((1 + c) / np.sqrt(1 - 2 * c), rel=1e-13)
    assert first[0] == pytest.approx(mo.kappa(1.0)[0], rel=1e-13)


@pytest.mark.parametrize("c", [0.2, 0.7])
def test_bounds_77_and_116_are_attained_by_diag_c_zero(c):
    """Mo = diag(c, 0): tau_low = 0, s_n = 0, tau_bar = 2c, kappa(Mo + I) = 1 + c = every bound of (77), (116)."""
    mo = Sample(np.diag([c, 0.0])[None])
    exact = 1 + c
    assert mo.kappa(1.0)[0] == pytest.approx(exact, rel=1e-14)
    for bound in (condition_bound_symmetric_part(mo.s1_0, mo.sn_0, mo.tau_low, mo.tau_bar),
                  condition_bound_lemma36(mo.s1_0, mo.tau_low, mo.tau_bar)):
        assert bound[0][0] == pytest.approx(exact, rel=1e-14)
        assert bound[1][0] == pytest.approx(exact, rel=1e-14)


def test_hypotheses_are_strict_inequalities():
    """Theorem 22 needs s_1 < 1 (so s_1 = 1 gives NaN), (77) and Lemma 36 need tau_low > -1."""
    first, second = condition_bound_small_norm(np.array([1.0, 0.999, 2.0]), np.array([0.5, 0.5, 0.5]))
    np.testing.assert_array_equal(np.isnan(first), [True, False, True])
    np.testing.assert_array_equal(np.isnan(second), [True, False, True])
    tau_low = np.array([-1.0, -0.999, -3.0])
    for first, second in (
        condition_bound_symmetric_part(np.full(3, 0.5), np.full(3, 0.1), tau_low, np.full(3, 0.5)),
        condition_bound_lemma36(np.full(3, 0.5), tau_low, np.full(3, 0.5)),
    ):
        np.testing.assert_array_equal(np.isnan(first), [True, False, True])
        np.testing.assert_array_equal(np.isnan(second), [True, False, True])


def test_condition_bounds_emit_no_floating_point_warnings_outside_their_hypotheses():
    # pytest runs with filterwarnings=error: a RuntimeWarning (divide by zero, sqrt of a negative)
    # from the NaN branches would fail this test.
    condition_bound_small_norm(np.array([1.0, 3.0]), np.array([0.0, -5.0]))
    condition_bound_symmetric_part(np.array([3.0]), np.array([0.0]), np.array([-4.0]), np.array([1.0]))
    condition_bound_lemma36(np.array([3.0]), np.array([-4.0]), np.array([1.0]))
    bound_efficiencies(*(np.array([x]) for x in (3.0, 0.1, -4.0, 4.0, 3.5, 0.5)))


# --- Figure 6: efficiencies of (115) and (116) at rho = 1 ----------------------------------------


@pytest.mark.parametrize("n", [5, 10, 25])
@pytest.mark.parametrize("distribution", ["gaussian", "uniform"])
def test_figure_6_bound_efficiencies_are_at_least_one(n, distribution):
    """Lemma 36 at r = 2: each ratio (a), (b), (c) is >= 1 whenever tau_low > -1 (all samples here)."""
    rng = np.random.default_rng(600 + n)
    sigma = 1 / (2 * np.sqrt(8 * n))
    k = (rng.standard_normal((200, n, n)) if distribution == "gaussian"
         else rng.uniform(-np.sqrt(3), np.sqrt(3), (200, n, n)))
    w = Sample(sigma * k)
    s1 = w.s(1.0)
    assert np.all(w.tau_low > -1)
    a, b, c = bound_efficiencies(w.s1_0, w.sn_0, w.tau_low, w.tau_bar, s1[:, 0], s1[:, -1])
    tol = allowance(1, n)
    for ratio in (a, b, c):
        assert np.all(np.isfinite(ratio))
        assert np.all(ratio >= 1 - tol)
    # the ratios are those of Figure 6, computed here from their definitions
    np.testing.assert_allclose(a, s1[:, -1] ** 2 / (w.sn_0**2 + w.tau_low + 1), rtol=1e-13)
    np.testing.assert_allclose(b, (w.s1_0**2 + w.tau_bar + 1) / s1[:, 0] ** 2, rtol=1e-13)
    np.testing.assert_allclose(
        c, np.sqrt((w.s1_0**2 + w.tau_bar + 1) / (w.tau_low + 1)) / (s1[:, 0] / s1[:, -1]),
        rtol=1e-13)


def test_figure_6_efficiencies_are_exactly_one_for_diag_c_zero():
    mo = Sample(np.diag([0.3, 0.0])[None])
    s1 = mo.s(1.0)
    for ratio in bound_efficiencies(mo.s1_0, mo.sn_0, mo.tau_low, mo.tau_bar, s1[:, 0], s1[:, -1]):
        assert ratio[0] == pytest.approx(1.0, rel=1e-14)


def test_figure_6_efficiencies_a_and_c_are_nan_when_tau_low_is_at_most_minus_one():
    a, b, c = bound_efficiencies(np.array([1.2, 1.2]), np.array([0.1, 0.1]), np.array([-1.5, -1.0]),
                                 np.array([1.5, 1.5]), np.array([2.0, 2.0]), np.array([0.3, 0.3]))
    assert np.all(np.isnan(a)) and np.all(np.isnan(c))
    assert np.all(np.isfinite(b))


# --- the library's own rounding allowance --------------------------------------------------------


def test_rounding_tolerance_scales_with_n_eps_and_the_quantity():
    assert rounding_tolerance(2.0, 10) == 16 * 10 * EPS * 2.0
    np.testing.assert_array_equal(rounding_tolerance(np.array([1.0, 3.0]), 5),
                                  [80 * EPS, 240 * EPS])


# --- the studies record the same bounds ------------------------------------------------------------


def study_weights(point, stop):
    from svperturb.sampling.ensembles import unit_variance_matrices, weight_std

    k = unit_variance_matrices(point["seed"], "resnet_layer", point["width"], point["distribution"],
                               0, stop)
    return weight_std(point["width"], point["weight_scale"]) * k


@pytest.mark.parametrize("distribution", ["gaussian", "uniform"])
def test_resnet_layer_study_counts_no_growth_bound_violations(distribution):
    """Claim 1: Theorem 16, Lemma 21 and Lemma 17 hold on every sample, so the study's violation
    counts are all zero; its Figure 6 ratios and bounds (114), (116) match the functions above."""
    from svperturb.studies import get_study

    point = {"distribution": distribution, "width": 7, "weight_scale": 2.0,
             "skip": [0.0, 0.25, 1.0], "seed": 5}
    out, spectra = get_study("resnet_layer").simulate(point, 0, 300, np)
    for family in ("70", "74", "71"):
        np.testing.assert_array_equal(out[f"violations_{family}"], 0)
        assert np.all(out[f"slack_{family}"] >= -allowance(1, 7))
    w = Sample(study_weights(point, 300))
    np.testing.assert_allclose(out["s1_W"], w.s1_0, rtol=1e-12)
    np.testing.assert_allclose(out["tau_low"], w.tau_low, rtol=1e-10, atol=1e-14)
    s1 = w.s(1.0)
    np.testing.assert_allclose(spectra["singular_values"][:, -1], s1, rtol=1e-12)
    a, b, c = bound_efficiencies(w.s1_0, w.sn_0, w.tau_low, w.tau_bar, s1[:, 0], s1[:, -1])
    np.testing.assert_allclose(out["efficiency_a"], a, rtol=1e-9)
    np.testing.assert_allclose(out["efficiency_b"], b, rtol=1e-9)
    np.testing.assert_allclose(out["efficiency_c"], c, rtol=1e-9)
    np.testing.assert_allclose(out["bound_114"], condition_bound_small_norm(w.s1_0, w.tau_bar)[0],
                               rtol=1e-9)
    np.testing.assert_allclose(out["bound_116"],
                               condition_bound_lemma36(w.s1_0, w.tau_low, w.tau_bar)[0], rtol=1e-9)
    assert np.all(out["kappa"][:, -1] <= out["bound_116"] * (1 + allowance(1, 7)))


def test_absolute_value_patterns_change_no_singular_value_in_the_convnet_study():
    """Claim 8, Proposition 23 (79): for |eta| = 1, s_i(M) = s_i(M D) = s_i(D M); the study records the
    largest deviation relative to s_1, which must be rounding only."""
    from svperturb.studies import get_study

    point = {"distribution": "gaussian", "width": 8, "weight_scale": 2.0, "activation_slope": -1.0,
             "activity": 0.5, "skip": [0.0, 1.0], "seed": 9}
    out, _ = get_study("convnet_vs_resnet").simulate(point, 0, 200, np)
    assert np.all(out["abs_identity_error"] <= allowance(1, 8))
    np.testing.assert_array_equal(out["rank"], 8)
