"""Estimators and verdict rules: each against a closed form or a case whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from svperturb.analysis.fit import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    REPRODUCED,
    FitSettings,
    clopper_pearson,
    combine_verdicts,
    dkw_halfwidth,
    fit_limit,
    interval_verdict,
    kolmogorov_distance,
    law_convergence,
)
from svperturb.theory.asymptotics import edelman_cdf, edelman_ppf

SETTINGS = FitSettings(bootstrap=200, seed=3)


def test_clopper_pearson_upper_bound_for_zero_events_is_the_rule_of_three_closed_form():
    # With k = 0 the exact one-sided bound solves (1 - p)^n = alpha: p = 1 - alpha^(1/n).
    for n in (10, 1000, 500_000):
        assert clopper_pearson(0, n, 0.95, "upper")[1] == pytest.approx(1 - 0.05 ** (1 / n), rel=1e-9)


def test_clopper_pearson_lower_bound_for_all_events_mirrors_the_upper_bound():
    assert clopper_pearson(100, 100, 0.95, "lower")[0] == pytest.approx(0.05 ** (1 / 100), rel=1e-9)


def test_clopper_pearson_two_sided_interval_matches_beta_quantiles():
    k, n = 7, 40
    lo, hi = clopper_pearson(k, n, 0.9)
    assert lo == pytest.approx(stats.beta.ppf(0.05, k, n - k + 1), rel=1e-9)
    assert hi == pytest.approx(stats.beta.ppf(0.95, k + 1, n - k), rel=1e-9)


def test_clopper_pearson_rejects_an_unknown_side():
    with pytest.raises(ValueError, match="side"):
        clopper_pearson(1, 10, 0.95, "both")


def test_dkw_halfwidth_is_massarts_bound():
    assert dkw_halfwidth(10_000, 0.95) == pytest.approx(np.sqrt(np.log(40) / 20_000))


def test_kolmogorov_distance_equals_scipys_ks_statistic():
    x = np.random.default_rng(1).normal(size=777)
    assert kolmogorov_distance(x, stats.norm.cdf) == pytest.approx(stats.kstest(x, "norm").statistic, abs=1e-15)


def test_edelman_quantile_inverts_the_cdf():
    q = np.array([0.01, 0.1, 0.5, 0.9, 0.99])
    np.testing.assert_allclose(edelman_cdf(edelman_ppf(q)), q, rtol=1e-12)
    with pytest.raises(ValueError, match="q"):
        edelman_ppf(1.0)


def _synthetic_medians(limit, amplitude, exponent, widths, size, seed):
    """Samples at each n with median limit + amplitude n^-exponent (normal noise, sd 0.1)."""
    rng = np.random.default_rng(seed)
    return [limit + amplitude * n ** (-exponent) + 0.1 * rng.standard_normal(size) for n in widths]


REPLICATIONS = 30
# If the intervals have their nominal 95% coverage, the number of the 30 replications that cover
# the truth is Binomial(30, 0.95); P[X <= 24] = 0.003, so >= 25 covers is the test.
MIN_COVERS = 25


def test_fit_limit_intervals_cover_a_known_limit_and_rate_at_their_nominal_level():
    widths = [5, 10, 25, 50, 100, 200]
    settings = FitSettings(bootstrap=100, seed=3)
    covers_limit = covers_rate = 0
    for replication in range(REPLICATIONS):
        samples = _synthetic_medians(1.0, -0.4, 0.7, widths, 4000, seed=100 + replication)
        fit = fit_limit(widths, samples, settings, rng_key=replication)
        covers_limit += fit.limit_ci[0] <= 1.0 <= fit.limit_ci[1]
        covers_rate += fit.exponent_ci[0] <= 0.7 <= fit.exponent_ci[1]
        # informative: of the order of the median's standard error (0.1 * 1.2533 / sqrt(4000)
        # ~ 0.002) amplified by the extrapolation, far below the signal (0.4)
        assert fit.limit_ci[1] - fit.limit_ci[0] < 0.05
    assert stats.binom.cdf(MIN_COVERS - 1, REPLICATIONS, 0.95) < 0.005
    assert covers_limit >= MIN_COVERS and covers_rate >= MIN_COVERS


def test_fit_limit_with_a_known_rate_covers_the_limit_at_its_nominal_level():
    widths = [5, 10, 25, 50, 100]
    settings = FitSettings(bootstrap=100, seed=4)
    covers = 0
    for replication in range(REPLICATIONS):
        samples = _synthetic_medians(1.8028, -1.1, 2 / 3, widths, 3000, seed=200 + replication)
        fit = fit_limit(widths, samples, settings, exponent=2 / 3, rng_key=replication)
        assert fit.exponent == 2 / 3
        covers += fit.limit_ci[0] <= 1.8028 <= fit.limit_ci[1]
    assert covers >= MIN_COVERS


def test_law_convergence_reproduced_when_samples_follow_the_law():
    rng = np.random.default_rng(5)
    samples = [rng.normal(size=5000) for _ in range(4)]
    law = law_convergence([5, 10, 20, 40], samples, stats.norm.cdf, SETTINGS)
    # D ~ 0.012 at N = 5000, band 0.019: D + band < 0.05
    assert law.verdict == REPRODUCED


def test_law_convergence_not_reproduced_when_the_law_is_wrong_and_stays_wrong():
    rng = np.random.default_rng(6)
    samples = [rng.normal(0.5, 1, size=5000) for _ in range(4)]  # D ~ 0.19 at every n
    law = law_convergence([5, 10, 20, 40], samples, stats.norm.cdf, SETTINGS)
    assert law.verdict == NOT_REPRODUCED


def test_law_convergence_reproduced_when_the_distance_decays():
    rng = np.random.default_rng(7)
    widths = [5, 10, 25, 50, 100]
    samples = [rng.normal(2.0 / np.sqrt(n), 1, size=5000) for n in widths]  # shift -> 0
    law = law_convergence(widths, samples, stats.norm.cdf, SETTINGS)
    assert law.exponent_ci[0] > 0 and law.verdict == REPRODUCED


@pytest.mark.parametrize("ci, verdict", [
    ((0.995, 1.004), REPRODUCED),
    ((1.02, 1.03), NOT_REPRODUCED),
    ((0.985, 1.0), INCONCLUSIVE),
    ((np.nan, 1.0), INCONCLUSIVE),
])
def test_interval_verdict_is_an_equivalence_test(ci, verdict):
    assert interval_verdict(ci, (0.99, 1.01)) == verdict


def test_combine_verdicts_needs_every_part():
    assert combine_verdicts([REPRODUCED, REPRODUCED]) == REPRODUCED
    assert combine_verdicts([REPRODUCED, INCONCLUSIVE]) == INCONCLUSIVE
    assert combine_verdicts([INCONCLUSIVE, NOT_REPRODUCED]) == NOT_REPRODUCED
    assert combine_verdicts([]) == INCONCLUSIVE
