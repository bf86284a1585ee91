"""Claims 31-33 (analysis/claims/smooth_hessian.py; Banerjee et al., arXiv 2209.15106): each
verdict rule on constructed data that must pass and constructed data that must fail.

Constructed samples: log-normal scatter of 10 % (sigma 0.1) around a curve, 40 samples per x. The
bootstrap interval of a slope over widths 16..256 then has a half-width of about 2 * 0.1 /
sqrt(40) * sqrt(2) / ln(16) ~ 0.02 (the mean's error at the two ends over the log range), far
inside the tolerance 1/4, so a slope of -1/2 is inside and one of 0 or -1 outside with certainty
(fixed seeds).
"""

from __future__ import annotations

import numpy as np

from svperturb.analysis.claims.smooth_hessian import (
    DepthGroup,
    SlopeGroup,
    depth_group,
    held,
    judge_depth,
    judge_descent,
    judge_slopes,
    log_slope_replicates,
)
from svperturb.analysis.fit import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, FitSettings

SETTINGS = FitSettings(bootstrap=200, seed=1)
WIDTHS = (16, 32, 64, 128, 256)
DEPTHS = (1, 2, 3, 4, 6, 8)


def scattered(curve, xs, seed, count=40):
    rng = np.random.default_rng(seed)
    return [curve(x) * np.exp(0.1 * rng.standard_normal(count)) for x in xs]


def slope_group(exponent, seed=0) -> SlopeGroup:
    slope, replicates = log_slope_replicates(WIDTHS, scattered(lambda m: m ** exponent, WIDTHS, seed),
                                             SETTINGS, seed)
    return SlopeGroup(f"g{seed}", WIDTHS, slope, replicates)


def test_the_slope_is_the_exponent_of_a_power_law():
    slope, replicates = log_slope_replicates(WIDTHS, [np.full(5, 3.0 * m ** -0.5) for m in WIDTHS],
                                             SETTINGS)
    assert abs(slope + 0.5) < 1e-12 and np.allclose(replicates, -0.5)


def test_claim_31_inverse_square_root_is_reproduced():
    outcome = judge_slopes([slope_group(-0.5, s) for s in range(3)], SETTINGS)
    assert outcome.verdict == REPRODUCED
    assert abs(outcome.evidence["pooled_slope"] + 0.5) < 0.05


def test_claim_31_a_hessian_that_does_not_vanish_is_not_reproduced():
    assert judge_slopes([slope_group(0.0, s) for s in range(3)], SETTINGS).verdict == NOT_REPRODUCED


def test_claim_31_one_group_decaying_as_one_over_m_fails_the_claim():
    groups = [slope_group(-0.5, 0), slope_group(-0.5, 1), slope_group(-1.0, 2)]
    outcome = judge_slopes(groups, SETTINGS)
    assert outcome.verdict == NOT_REPRODUCED and "outside: g2" in outcome.measured
    assert outcome.evidence["upper_bound_reading_held"] == 3  # the bound reading still holds


def test_claim_31_a_slope_at_the_tolerance_edge_is_inconclusive():
    assert judge_slopes([slope_group(-0.25, 0)], SETTINGS).verdict == INCONCLUSIVE


def test_claim_31_without_groups_is_inconclusive():
    assert judge_slopes([], SETTINGS).verdict == INCONCLUSIVE


def group(curve, std, seed) -> DepthGroup:
    return depth_group(f"s{std}/{seed}", std, DEPTHS, scattered(curve, DEPTHS, seed), SETTINGS, seed)


def test_claim_32_polynomial_at_small_and_exponential_at_large_sigma_is_reproduced():
    groups = [group(lambda d: d ** 1.5, 0.25, 0), group(lambda d: d ** 2, 0.5, 1),
              group(lambda d: np.exp(0.6 * d), 1.5, 2)]
    outcome = judge_depth(groups, SETTINGS)
    assert [g.kind(SETTINGS) for g in groups] == ["polynomial", "polynomial", "exponential"]
    assert outcome.verdict == REPRODUCED


def test_claim_32_exponential_growth_at_small_sigma_is_not_reproduced():
    groups = [group(lambda d: np.exp(0.5 * d), 0.5, 0), group(lambda d: np.exp(0.6 * d), 1.5, 1)]
    assert judge_depth(groups, SETTINGS).verdict == NOT_REPRODUCED


def test_claim_32_exponential_decay_counts_as_at_most_polynomial():
    groups = [group(lambda d: np.exp(-0.5 * d), 0.5, 0), group(lambda d: np.exp(0.6 * d), 1.5, 1)]
    assert groups[0].kind(SETTINGS) == "polynomial"
    assert judge_depth(groups, SETTINGS).verdict == REPRODUCED


def test_claim_32_polynomial_growth_at_large_sigma_leaves_it_inconclusive():
    groups = [group(lambda d: d, 0.5, 0), group(lambda d: d ** 2, 1.5, 1)]
    assert judge_depth(groups, SETTINGS).verdict == INCONCLUSIVE


def paths(count, contraction, rsc_floor, steps=20, seed=0):
    """Runs whose loss falls by `contraction` per step and whose RSC quantity falls to rsc_floor of
    its start; linear rate rho_0 = 0.8."""
    rng = np.random.default_rng(seed)
    q0 = rng.uniform(0.5, 2, count)
    rsc = q0[:, None] * np.linspace(1, rsc_floor, steps + 1)[None]
    loss = rng.uniform(0.5, 2, count)[:, None] * contraction ** np.arange(steps + 1)[None]
    return rsc, loss, np.full(count, 0.8)


def test_claim_33_held_needs_both_the_rsc_floor_and_the_contraction():
    assert held(*paths(5, 0.85, 0.6)).all()  # 0.85 <= 1 - (1 - 0.8) / 2 = 0.9, 0.6 >= 0.5
    assert not held(*paths(5, 0.95, 0.6)).any()  # too slow
    assert not held(*paths(5, 0.85, 0.4)).any()  # the average gradient fell below half
    rsc, loss, rate = paths(5, 0.85, 0.6)
    loss[:, 10] *= 1.5  # one step where the loss rose
    assert not held(rsc, loss, rate).any()


def test_claim_33_ratios_at_the_rounding_floor_are_not_judged():
    rsc, loss, rate = paths(3, 0.1, 0.6, steps=40)  # reaches 1e-40 of its start
    loss[:, 30:] = loss[:, 30:31] * np.r_[1, 3, 1, 2, 1, 5, 1, 1, 2, 1, 1]  # noise at the floor
    assert held(rsc, loss, rate).all()
    loss[:, 5] = loss[:, 4]  # a stall above the floor
    assert not held(rsc, loss, rate).any()


def test_claim_33_verdicts_follow_the_clopper_pearson_bounds():
    # 100 of 100: lower bound 0.970 >= 0.95
    assert judge_descent(np.ones(100, dtype=bool), SETTINGS).verdict == REPRODUCED
    # 80 of 100: upper bound 0.87 < 0.95
    outcome = judge_descent(np.r_[np.ones(80), np.zeros(20)].astype(bool), SETTINGS)
    assert outcome.verdict == NOT_REPRODUCED and "20 violations in 100 runs" in outcome.measured
    # 20 of 20: lower bound 0.861 < 0.95 and upper bound 1: not enough runs to decide
    assert judge_descent(np.ones(20, dtype=bool), SETTINGS).verdict == INCONCLUSIVE
    assert judge_descent(np.zeros(0, dtype=bool), SETTINGS).verdict == INCONCLUSIVE
