"""asymptotics.py: the paper's normalisations and limits, as closed forms and as laws of seeded samples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, optimize, stats

from svperturb.linalg.spectra import singular_values, symmetric_part_extremes
from svperturb.sampling.ensembles import weight_std
from svperturb.theory.asymptotics import (
    condition_bound_limit_121,
    condition_bound_limit_122,
    edelman_cdf,
    edelman_pdf,
    edelman_ppf,
    largest_singular_statistic,
    spectral_norm_limit,
    symmetric_edge_statistic,
    symmetric_to_spectral_ratio,
    wishart_centering,
)
from svperturb.theory.bounds import condition_bound_lemma36, condition_bound_small_norm

# Tracy-Widom beta = 1 moments (Bornemann 2010, Table; also Tracy & Widom 1996): mean, variance,
# excess kurtosis.
TW1_MEAN = -1.2065335745820
TW1_VARIANCE = 1.6077810345810
TW1_EXCESS_KURTOSIS = 0.1652429384


# --- Theorem 38: the deterministic limits (121), (122) -------------------------------------------


def test_limit_121_at_r_2_is_the_papers_1_8028():
    assert condition_bound_limit_121(2.0) == pytest.approx(math.sqrt(6.5 / 2), abs=1e-15)
    assert round(float(condition_bound_limit_121(2.0)), 4) == 1.8028


def test_limit_122_at_r_2_is_the_papers_1_9719():
    assert condition_bound_limit_122(2.0) == pytest.approx(math.sqrt(6.5) / (2 - 1 / math.sqrt(2)),
                                                           abs=1e-15)
    assert round(float(condition_bound_limit_122(2.0)), 4) == 1.9719


@pytest.mark.parametrize("r", [2.0, 3.0])
def test_limit_122_is_slightly_larger_than_121(r):
    assert condition_bound_limit_121(r) < condition_bound_limit_122(r)


@pytest.mark.parametrize("r", [1.5, 2.0, 3.0, 10.0])
def test_limits_121_and_122_are_the_bounds_116_and_114_at_the_limits_of_their_inputs(r):
    """Theorem 38's proof: s_1(W1) -> 1/(sqrt(2) r), tau_bar -> 1/r, tau_low -> -1/r (from (112));
    plugging these into the first bounds of (116) and (114) gives (121) and (122)."""
    s1 = spectral_norm_limit(r)
    assert condition_bound_lemma36(s1, -1 / r, 1 / r)[0] == pytest.approx(
        condition_bound_limit_121(r), rel=1e-14)
    assert condition_bound_small_norm(np.float64(s1), 1 / r)[0] == pytest.approx(
        condition_bound_limit_122(r), rel=1e-14)


def test_limits_decrease_to_one_as_the_weights_shrink():
    r = np.array([1.5, 2.0, 3.0, 10.0, 1e6])
    for limit in (condition_bound_limit_121(r), condition_bound_limit_122(r)):
        assert np.all(np.diff(limit) < 0)
        assert limit[-1] == pytest.approx(1.0, abs=1e-5)


def test_spectral_norm_limit_is_one_over_sqrt2_r():
    assert spectral_norm_limit(2.0) == pytest.approx(1 / (2 * math.sqrt(2)), rel=1e-15)
    assert spectral_norm_limit(1.0) == pytest.approx(math.sqrt(0.5), rel=1e-15)


def test_spectral_norm_limit_follows_from_109_and_the_weight_scale_111():
    """s_1(K_n)/sqrt(n) -> 2 (109) and W1 = K_n/(r sqrt(8n)): s_1(W1) ~ sigma_n sqrt(mu_n) -> 1/(sqrt(2) r)."""
    for r in (2.0, 3.0):
        n = 10**12
        mu, _ = wishart_centering(n)
        assert weight_std(n, r) * math.sqrt(mu) == pytest.approx(spectral_norm_limit(r), rel=1e-6)


# --- Theorem 35: Wishart centring (mu_n, q_n) ----------------------------------------------------


def test_wishart_centering_at_hand_values_of_n():
    # n = 5: mu = (2 + sqrt 5)^2 = 9 + 4 sqrt 5; q = (2 + sqrt 5) (1/2 + 1/sqrt 5)^(1/3)
    mu, q = wishart_centering(5)
    assert mu == pytest.approx(9 + 4 * math.sqrt(5), rel=1e-15)
    assert mu == pytest.approx(17.94427191, abs=1e-8)
    assert q == pytest.approx(4.16018102, abs=1e-8)
    # n = 2: mu = (1 + sqrt 2)^2 = 3 + 2 sqrt 2; q = (1 + sqrt 2) (1 + 1/sqrt 2)^(1/3)
    mu, q = wishart_centering(2)
    assert mu == pytest.approx(3 + 2 * math.sqrt(2), rel=1e-15)
    assert q == pytest.approx((1 + math.sqrt(2)) * (1 + 1 / math.sqrt(2)) ** (1 / 3), rel=1e-15)


def test_wishart_centering_is_vectorised():
    mu, q = wishart_centering(np.array([2, 5]))
    np.testing.assert_allclose(mu, [3 + 2 * math.sqrt(2), 9 + 4 * math.sqrt(5)], rtol=1e-15)
    assert q.shape == (2,)


def test_wishart_centering_obeys_the_estimates_used_for_lemma_36():
    """Text before Lemma 36: for n >= 2, mu_n <= 4n and q_n <= 2^(3/2) n^(1/3)."""
    n = np.arange(2, 100_001)
    mu, q = wishart_centering(n)
    assert np.all(mu <= 4 * n)
    assert np.all(q <= 2**1.5 * n ** (1 / 3))
    # and both estimates are asymptotically sharp
    assert mu[-1] / (4 * n[-1]) == pytest.approx(1, abs=1e-4)
    assert q[-1] / (2 ** (4 / 3) * n[-1] ** (1 / 3)) == pytest.approx(1, abs=1e-4)


def test_largest_singular_statistic_inverts_to_equation_113():
    """(110) and (111) give (113) exactly: s_1(W1)^2 = (mu_n/(4n) + n^(-2/3) q_n/(4 n^(1/3)) Y_n)/(2 r^2)."""
    n, r = 12, 2.0
    k = np.random.default_rng(113).standard_normal((50, n, n))
    y = largest_singular_statistic(singular_values(k)[:, 0], n)
    s1_w = singular_values(weight_std(n, r) * k)[:, 0]
    mu, q = wishart_centering(n)
    rhs = (mu / (4 * n) + n ** (-2 / 3) * q / (4 * n ** (1 / 3)) * y) / (2 * r**2)
    np.testing.assert_allclose(s1_w**2, rhs, rtol=1e-12)


# --- Theorem 33: Z_n (107), (108) ----------------------------------------------------------------


def test_symmetric_edge_statistic_closed_form():
    assert symmetric_edge_statistic(np.sqrt(8 * 64.0), 64) == 0.0
    assert symmetric_edge_statistic(np.sqrt(8 * 64.0) + 1.0, 64) == pytest.approx(2.0)


def test_z_n_rewrites_tau_of_the_scaled_layer_as_equation_112():
    """(112): tau_bar_n(r) = (1 + Z_n/(sqrt(8) n^(2/3)))/r and -tau_low_n(r) = (1 + Z~_n/(sqrt(8) n^(2/3)))/r."""
    n, r = 9, 3.0
    k = np.random.default_rng(112).uniform(-np.sqrt(3), np.sqrt(3), (40, n, n))
    tau_low_k, tau_bar_k = symmetric_part_extremes(k)
    z = symmetric_edge_statistic(tau_bar_k, n)
    z_tilde = symmetric_edge_statistic(-tau_low_k, n)
    tau_low_w, tau_bar_w = symmetric_part_extremes(weight_std(n, r) * k)
    np.testing.assert_allclose(tau_bar_w, (1 + z / (np.sqrt(8) * n ** (2 / 3))) / r, rtol=1e-12)
    np.testing.assert_allclose(-tau_low_w, (1 + z_tilde / (np.sqrt(8) * n ** (2 / 3))) / r,
                               rtol=1e-12)


def test_z_n_over_sqrt2_has_the_tracy_widom_1_mean_and_spread_for_gaussian_n_25():
    """K_n + K_n^T = sqrt(2) GOE, so Z_n/sqrt(2) = (lambda_max(GOE) - 2 sqrt(n)) n^(1/6) -> TW_1.

    Finite n: Johnstone & Ma (2012, Ann. Appl. Probab.) show that centring the GOE edge at
    2 sqrt(n - 1/2) (in this variance normalisation) leaves an O(n^(-2/3)) error. So the mean of
    Z_n/sqrt(2) is E[TW_1] + c_n with c_n = (2 sqrt(n - 1/2) - 2 sqrt(n)) n^(1/6) (= -0.172 at n = 25),
    up to O(n^(-2/3)) (= 0.117 at n = 25, allowing constant 1). Sampling: N = 4000 draws, standard
    error of the mean sd/sqrt(N) = 0.020, of the standard deviation
    sd sqrt((kurt_excess + 2)/(4N)) = 0.015; we allow 5 of each.
    A wrong centring (sqrt(8n)) or exponent (n^(1/6)) moves these by 0.5 or more.
    """
    n, size = 25, 4000
    k = np.random.default_rng(33).standard_normal((size, n, n))
    _, tau_bar = symmetric_part_extremes(k)
    z = symmetric_edge_statistic(tau_bar, n) / np.sqrt(2)
    sd = math.sqrt(TW1_VARIANCE)
    finite_n = n ** (-2 / 3)
    shift = (2 * math.sqrt(n - 0.5) - 2 * math.sqrt(n)) * n ** (1 / 6)
    assert abs(z.mean() - (TW1_MEAN + shift)) <= 5 * sd / math.sqrt(size) + finite_n
    se_sd = sd * math.sqrt((TW1_EXCESS_KURTOSIS + 2) / (4 * size))
    assert abs(z.std(ddof=1) - sd) <= 5 * se_sd + finite_n


def test_ratio_is_tau_bar_over_sqrt2_s1():
    assert symmetric_to_spectral_ratio(np.sqrt(2.0), 1.0) == pytest.approx(1.0)
    np.testing.assert_allclose(symmetric_to_spectral_ratio(np.array([2.0, 1.0]), np.array([1.0, 2.0])),
                               [np.sqrt(2.0), 1 / (2 * np.sqrt(2.0))])


# --- Edelman's law (154) --------------------------------------------------------------------------


@pytest.mark.parametrize("t", [0.3, 1.0, 2.5, 7.0, 40.0])
def test_edelman_cdf_is_the_integral_of_the_density_154(t):
    integral, error = integrate.quad(edelman_pdf, 0, t, limit=200)
    assert error < 1e-8
    assert edelman_cdf(t) == pytest.approx(integral, abs=1e-8)


def test_edelman_density_integrates_to_one():
    # the tail decays like 2/t^2, so integrate on (0, 1] and [1, inf) separately
    head, _ = integrate.quad(edelman_pdf, 0, 1)
    tail, _ = integrate.quad(edelman_pdf, 1, np.inf)
    assert head + tail == pytest.approx(1.0, abs=1e-8)


def test_edelman_density_is_the_derivative_of_the_cdf():
    t = np.array([0.5, 1.0, 3.0, 10.0])
    h = 1e-6
    np.testing.assert_allclose((edelman_cdf(t + h) - edelman_cdf(t - h)) / (2 * h), edelman_pdf(t),
                               rtol=1e-6)


def test_edelman_cdf_limits_and_support():
    assert edelman_cdf(1e-3) == 0.0
    assert edelman_cdf(1e8) == pytest.approx(1.0, abs=1e-7)
    assert edelman_cdf(np.inf) == 1.0
    np.testing.assert_array_equal(edelman_cdf(np.array([-5.0, -1e-9, 0.0])), 0.0)
    np.testing.assert_array_equal(edelman_pdf(np.array([-5.0, 0.0])), 0.0)
    values = edelman_cdf(np.linspace(0.05, 100, 2000))
    assert np.all(np.diff(values) >= 0)
    assert np.all((values >= 0) & (values <= 1))


def test_edelman_median_in_closed_form():
    """exp(-2/t - 2/t^2) = 1/2 <=> 1/t = (sqrt(1 + 2 ln 2) - 1)/2, i.e. t = 3.6713."""
    assert edelman_ppf(0.5) == pytest.approx(2 / (math.sqrt(1 + 2 * math.log(2)) - 1), rel=1e-14)
    assert edelman_ppf(0.5) == pytest.approx(3.6713177, abs=1e-6)


def test_edelman_ppf_inverts_the_cdf():
    q = np.array([1e-6, 0.01, 0.25, 0.5, 0.9, 0.999])
    np.testing.assert_allclose(edelman_cdf(edelman_ppf(q)), q, rtol=1e-12)


@pytest.mark.parametrize("q", [0.0, 1.0, -0.1, 1.5])
def test_edelman_ppf_rejects_probabilities_outside_the_open_unit_interval(q):
    with pytest.raises(ValueError, match="q"):
        edelman_ppf(q)


def test_kappa_over_n_of_a_gaussian_50_by_50_matrix_follows_edelmans_law():
    """Theorem 42's input (Edelman 1988, Thm 6.1): kappa(G)/n -> K with CDF exp(-2/t - 2/t^2).

    Tolerance = sampling + finite-n allowance.
    Sampling (DKW): P[sup |F_N - F_n| > e] <= 2 exp(-2 N e^2); with N = 8000 and level 1e-3,
    e = sqrt(ln(2/1e-3)/(2N)) = 0.0195.
    Finite n: kappa/n = (s_1/sqrt(n)) / (sqrt(n) s_n) and the limit takes s_1/sqrt(n) = 2. At finite n,
    s_1^2 ~ mu_n + q_n TW_1 (Theorem 35), so s_1/sqrt(n) ~ 2(1 - d_n) with
    d_n = 1 - sqrt(mu_n + q_n E[TW_1])/(2 sqrt(n)) (= 0.033 at n = 50). Scaling K by (1 - d_n) moves its
    CDF by at most d_n sup_t t f_K(t) = 0.47 d_n = 0.016. Offline (60000 samples) the measured
    KS distance at n = 10, 25, 50 was 1.3, 1.2, 1.5 times this first-order term, the rest coming from
    the finite-n law of sqrt(n) s_n and the spread of s_1; we allow twice the term.
    A wrong law (exp(-2/t), the complex case exp(-4/t^2), a 10 % scale error) sits 0.05-0.24 away.
    """
    n, size = 50, 8000
    rng = np.random.default_rng(1988)
    kappa = np.concatenate([
        (lambda s: s[:, 0] / s[:, -1])(singular_values(rng.standard_normal((1000, n, n))))
        for _ in range(size // 1000)
    ])
    dkw = math.sqrt(math.log(2 / 1e-3) / (2 * size))
    mu, q = wishart_centering(n)
    d_n = 1 - math.sqrt(mu + q * TW1_MEAN) / (2 * math.sqrt(n))
    peak = -optimize.minimize_scalar(lambda t: -t * edelman_pdf(t), bounds=(0.1, 50),
                                     method="bounded").fun
    assert 0.46 < peak < 0.48
    tolerance = dkw + 2 * peak * d_n
    distance = stats.kstest(kappa / n, edelman_cdf).statistic
    assert distance <= tolerance
