"""Gradient descent near minima of deep matrix factorization (Kamber & Parhi, arXiv 2509.25783):
the closed-form gradient, the linear-stability prediction |1 - 2c| on a hand case, the undecided
window, compaction, and what the escape study records and shares with the sharpness study."""

from __future__ import annotations

import numpy as np
import pytest

from support.studies import TINY_POINTS
from svperturb.config import config_schema, study_settings_schema
from svperturb.linalg.descent import (
    ESCAPED,
    MOVED,
    OUTCOMES,
    STAYED,
    UNDECIDED,
    descend,
    loss,
    loss_and_gradient,
)
from svperturb.linalg.sharpness import sharpness, top_direction
from svperturb.sampling.factorizations import step_factors
from svperturb.studies import escape
from svperturb.studies import sharpness as sharpness_study
from svperturb.theory.matrix_factorization import (
    linear_growth_factor,
    linearly_undecided,
    undecided_window,
)

EPS = np.finfo(float).eps


def random_factors(rng, batch=2, d=3, depth=3):
    return [rng.standard_normal((batch, d, d)) / np.sqrt(d) for _ in range(depth)]


# --- the gradient ------------------------------------------------------------------------------


@pytest.mark.parametrize(("d", "depth"), [(1, 4), (2, 2), (3, 3), (2, 5)])
def test_the_gradient_is_the_loss_derivative_by_central_differences(d, depth):
    """<grad L, V> against (L(W + hV) - L(W - hV)) / 2h in random directions V, away from a
    minimizer (a random M). The difference's error is h^2/6 |L'''| (L is a polynomial of degree
    2L in t with coefficients of order one here) plus the rounding of two losses, eps L / h: at
    h = 1e-5 both below 1e-8, against an error of order one for a wrong sign, factor or
    transpose."""
    rng = np.random.default_rng(11)
    weights, m = random_factors(rng, 3, d, depth), rng.standard_normal((3, d, d))
    value, gradients = loss_and_gradient(weights, m)
    np.testing.assert_allclose(value, loss(weights, m), rtol=1e-14)
    h = 1e-5
    for _ in range(5):
        direction = [rng.standard_normal(w.shape) for w in weights]
        plus = loss([w + h * v for w, v in zip(weights, direction)], m)
        minus = loss([w - h * v for w, v in zip(weights, direction)], m)
        analytic = sum((g * v).sum(axis=(-2, -1)) for g, v in zip(gradients, direction))
        tolerance = 1e-7 * np.maximum(1, np.abs(analytic))
        assert np.all(np.abs((plus - minus) / (2 * h) - analytic) <= tolerance)


def test_at_a_minimizer_the_gradient_vanishes_to_rounding():
    rng = np.random.default_rng(2)
    weights = random_factors(rng, 4, 3, 3)
    m = weights[2] @ weights[1] @ weights[0]
    _, gradients = loss_and_gradient(weights, m)
    assert max(np.abs(g).max() for g in gradients) < 1e3 * EPS


# --- linear stability on a hand case -----------------------------------------------------------

# Scalar factorization at depth 2, w1 w2 = m: J = (w2, w1), so lambda_max = 2 (w1^2 + w2^2) and the
# top eigenvector is (w2, w1) / sqrt(w1^2 + w2^2) (the only direction the Hessian 2 J^T J sees).
W1, W2 = 0.5, 3.0
HAND_LAMBDA = 2 * (W1**2 + W2**2)


def hand_case(batch=1):
    weights = [np.full((batch, 1, 1), W1), np.full((batch, 1, 1), W2)]
    return weights, weights[1] @ weights[0]


def test_the_hand_case_has_its_closed_form_lambda_max_and_top_direction():
    weights, _ = hand_case()
    assert sharpness(weights)[0] == pytest.approx(HAND_LAMBDA, rel=1e-14)
    u = np.array([x[0, 0, 0] for x in top_direction(weights)])
    np.testing.assert_allclose(np.abs(u), np.array([W2, W1]) / np.hypot(W1, W2), rtol=1e-14)
    assert u[0] * u[1] > 0  # the same sign: along (w2, w1), not across it


def run_hand_case(c, max_steps=200, start_distance=1e-8, escape_factor=100.0, stay_factor=1000.0,
                  compact=True):
    weights, m = hand_case(len(np.atleast_1d(c)))
    u = top_direction(weights)
    delta = start_distance * np.hypot(W1, W2)
    start = [w + delta * x for w, x in zip(weights, u)]
    rates = 2 * np.atleast_1d(np.asarray(c, dtype=float)) / HAND_LAMBDA
    return descend(start, m, rates, max_steps, escape_factor, stay_factor, compact=compact)


@pytest.mark.parametrize(("c", "outcome", "steps"), [
    # stays at the first k with 0.8^(2k) <= 1e-6: k = ceil(ln 1e3 / ln 1.25) = 31
    (0.9, STAYED, 31),
    # escapes at the first k with 1.2^(2k) >= 1e4: k = ceil(ln 100 / ln 1.2) = 26
    (1.1, ESCAPED, 26),
])
def test_the_hand_case_stays_or_escapes_at_the_predicted_step_with_growth_one_minus_two_c(
        c, outcome, steps):
    """The measured growth per step, (l_end / l_0)^(1/2k), equals |1 - 2c| to ~1e-6: the loss ratio
    departs from (1 - 2c)^(2k) by the cubic terms (relative ~ the deviation over w1, at most 1e-8
    x 3 x 100 / 0.5 = 6e-6 at the escape) and by rounding (relative 2 sqrt(eps^2 m^2 / l_end) ~
    1e-5 at the stay threshold), each divided by 2k ~ 50 in the growth."""
    run = run_hand_case(c)
    assert run.outcome[0] == outcome and run.steps[0] == steps
    growth = (run.end_loss[0] / run.start_loss[0]) ** (1 / (2 * run.steps[0]))
    assert growth == pytest.approx(abs(1 - 2 * c), rel=1e-6)
    assert linear_growth_factor(c) == pytest.approx(abs(1 - 2 * c), rel=1e-15)
    # the start's loss is lambda_max / 2 times the squared deviation
    delta = 1e-8 * np.hypot(W1, W2)
    assert run.start_loss[0] == pytest.approx(delta**2 * HAND_LAMBDA / 2, rel=1e-6)


def test_the_loss_ratio_follows_the_linear_recursion_step_by_step():
    """Below the escape threshold, l_k / l_0 = (1 - 2c)^(2k) at every k of the hand case."""
    for c, k in [(0.95, 40), (1.02, 60)]:
        run = run_hand_case(c, max_steps=k, escape_factor=1e6, stay_factor=1e6)
        assert run.outcome[0] == UNDECIDED and run.steps[0] == k
        ratio = run.end_loss[0] / run.start_loss[0]
        assert ratio == pytest.approx((1 - 2 * c) ** (2 * k), rel=1e-5)


def test_a_catapult_to_another_minimizer_is_recorded_as_moved_and_the_default_escape_decides_first():
    """Deep imbalanced scalar minimizers (the sharpness study's, L = 8, kappa = 1) at c = 1.02:
    waiting for a million-fold growth, gradient descent leaves the linear regime first (its loss
    peaks 4e8-fold), slides to a flatter minimizer and its loss falls back: moved, not stayed.
    Escape at a hundred-fold growth (the default) is decided before that, in the linear regime."""
    from svperturb.sampling.factorizations import (
        balanced_factors,
        imbalance_directions,
        imbalanced_factors,
        target_matrices,
    )

    m = target_matrices(20220307, "sharpness", 1, "gaussian", 0, 64)
    weights = imbalanced_factors(balanced_factors(m, 8),
                                 imbalance_directions(20220307, "sharpness", 1, 8, 0, 64), 1.0)
    lam, u = sharpness(weights), top_direction(weights)
    norm = np.sqrt(sum((w * w).sum(axis=(-2, -1)) for w in weights))
    start = [w + (1e-9 * norm)[:, None, None] * x for w, x in zip(weights, u)]
    late = descend(start, m, 2 * 1.02 / lam, 4000, 1e6, 1e3)
    moved = late.outcome == MOVED
    assert moved.sum() >= 10 and not np.any(late.outcome == STAYED)
    assert np.all(late.peak_loss[moved] > 1e3 * late.start_loss[moved])
    assert np.all(late.end_loss[moved] < late.start_loss[moved])
    early = descend(start, m, 2 * 1.02 / lam, 4000, 100.0, 1e3)
    assert np.all(early.outcome == ESCAPED)


# --- the undecided window ----------------------------------------------------------------------


def linear_recursion_outcome(c, max_steps, escape_factor, stay_factor):
    """The outcome of the loss recursion l_k = (1 - 2c)^2 l_(k-1), l_0 = 1, with descend's
    thresholds: the first k that crosses one decides."""
    g2, value = (1 - 2 * c) ** 2, 1.0
    for _ in range(max_steps):
        value *= g2
        if value >= escape_factor**2:
            return ESCAPED
        if value <= stay_factor**-2:
            return STAYED
    return UNDECIDED


@pytest.mark.parametrize(("max_steps", "escape_factor", "stay_factor"),
                         [(4000, 100.0, 1000.0), (300, 100.0, 1000.0), (50, 10.0, 3.0)])
def test_the_undecided_window_is_where_the_linear_recursion_decides_nothing(
        max_steps, escape_factor, stay_factor):
    low, high = undecided_window(max_steps, escape_factor, stay_factor)
    assert 0.5 < low < 1 < high
    width = high - low
    # a grid across both ends, none of its points within 1e-9 of an end (the recursion's rounding)
    c = np.concatenate([np.linspace(low - width, high + width, 311),  # no point on an end
                        [low - 1e-6 * width, low + 1e-6 * width, high - 1e-6 * width,
                         high + 1e-6 * width]])
    for value in c:
        inside = low < value < high
        outcome = linear_recursion_outcome(value, max_steps, escape_factor, stay_factor)
        assert (outcome == UNDECIDED) == inside, value
        assert (outcome == STAYED) == (value <= low), value
        assert bool(linearly_undecided(value, max_steps, escape_factor, stay_factor)) == inside


def test_the_undecided_window_has_a_mirror_image_near_zero_and_the_margin_widens_it():
    max_steps, escape_factor, stay_factor = 100, 10.0, 10.0
    low, high = undecided_window(max_steps, escape_factor, stay_factor)
    mirror = (1 - high, 1 - low)  # |1 - 2c| is symmetric about c = 1/2
    middle = (mirror[0] + mirror[1]) / 2
    assert linearly_undecided(middle, max_steps, escape_factor, stay_factor)
    assert linear_recursion_outcome(middle, max_steps, escape_factor, stay_factor) == UNDECIDED
    just_above = high + 0.005 * (high - low)
    assert not linearly_undecided(just_above, max_steps, escape_factor, stay_factor)
    assert linearly_undecided(just_above, max_steps, escape_factor, stay_factor, margin=0.01)


def test_gradient_descent_is_undecided_inside_the_window_and_decided_just_outside():
    """The hand case by real gradient descent at c 5 % of the window's width inside and outside
    each end (the loss ratio's departures from the recursion move an end by far less)."""
    max_steps, escape_factor, stay_factor = 400, 10.0, 10.0
    low, high = undecided_window(max_steps, escape_factor, stay_factor)
    step = 0.05 * (high - low)
    c = np.array([low - step, low + step, high - step, high + step])
    run = run_hand_case(c, max_steps, 1e-8, escape_factor, stay_factor)
    assert run.outcome.tolist() == [STAYED, UNDECIDED, UNDECIDED, ESCAPED]


# --- compaction --------------------------------------------------------------------------------


def test_compaction_changes_no_number():
    """Taking decided runs out of the batch gives bit for bit the numbers of running every run
    on: each sample's arithmetic (stacked matmuls, elementwise steps, sums over its own axes) does
    not depend on which samples share its batch."""
    rng = np.random.default_rng(5)
    d, depth, batch = 3, 3, 40
    m = rng.standard_normal((batch, d, d)) / np.sqrt(d)
    from svperturb.sampling.factorizations import balanced_factors
    weights = balanced_factors(m, depth)
    lam, u = sharpness(weights), top_direction(weights)
    start = [w + 1e-9 * x for w, x in zip(weights, u)]
    c = np.r_[np.linspace(0.8, 1.2, batch - 4), 0.9995, 1.0003, 0.5, 1.5]
    runs = [descend(start, m, 2 * c / lam, 600, 100.0, 1000.0, compact=flag) for flag in (True, False)]
    assert {STAYED, ESCAPED, UNDECIDED} <= set(runs[0].outcome.tolist())
    for name in ("outcome", "steps", "start_loss", "end_loss", "peak_loss"):
        np.testing.assert_array_equal(getattr(runs[0], name), getattr(runs[1], name), err_msg=name)


# --- the step factors --------------------------------------------------------------------------


def test_the_step_factors_are_split_independent_and_uniform_in_the_interval():
    first = step_factors(7, "escape", 3, "gaussian", 0.8, 1.2, 0, 10)
    np.testing.assert_array_equal(first, step_factors(7, "escape", 3, "gaussian", 0.8, 1.2, 0, 20)[:10])
    np.testing.assert_array_equal(step_factors(7, "escape", 3, "gaussian", 0.8, 1.2, 5, 70)[:5],
                                  first[5:])
    many = step_factors(7, "escape", 3, "gaussian", 0.8, 1.2, 0, 2000)
    assert many.min() >= 0.8 and many.max() < 1.2
    assert abs(many.mean() - 1.0) < 4 * 0.4 / np.sqrt(12 * 2000)  # four standard errors
    assert not np.array_equal(first, step_factors(7, "escape", 3, "ill_conditioned", 0.8, 1.2, 0, 10))
    with pytest.raises(ValueError, match="low < high"):
        step_factors(7, "escape", 3, "gaussian", 1.2, 0.8, 0, 10)


# --- the study ---------------------------------------------------------------------------------


def point(**changes):
    return {**TINY_POINTS["escape"], "seed": 3, **changes}


def test_the_studys_settings_are_the_schemas_escape_settings():
    assert tuple(study_settings_schema("escape")) == escape.SETTINGS
    assert config_schema()["properties"]["studies"]["properties"]["escape"]
    assert all(key in TINY_POINTS["escape"] for key in escape.SETTINGS)


def test_every_recorded_dataset_is_declared_and_one_value_per_sample():
    per_sample, spectra = escape.simulate(point(), 0, 24, np)
    assert spectra == {}
    assert set(per_sample) == set(escape.DATASETS)
    assert all(values.shape == (24,) for values in per_sample.values())
    assert set(per_sample["outcome"].tolist()) <= set(OUTCOMES)
    assert escape.DATASETS["outcome"].codes == OUTCOMES
    np.testing.assert_array_equal(per_sample["predicted_growth_per_step"],
                                  linear_growth_factor(per_sample["step_factor"]))


def test_the_minimizers_and_lambda_max_are_the_sharpness_studys():
    for changes in ({}, {"width": 1, "depth": 4, "imbalance": 1.0},
                    {"target": "ill_conditioned", "depth": 2, "imbalance": 0.0}):
        mine, _ = escape.simulate(point(**changes), 0, 16, np)
        theirs, _ = sharpness_study.simulate(point(**changes), 0, 16, np)
        np.testing.assert_array_equal(mine["lambda_max"], theirs["lambda_max"])


def test_the_start_is_delta_along_the_top_direction_well_above_the_rounding_floor():
    per_sample, _ = escape.simulate(point(imbalance=1.0, depth=4), 0, 32, np)
    predicted = per_sample["start_deviation"] ** 2 * per_sample["lambda_max"] / 2
    np.testing.assert_allclose(per_sample["start_loss"], predicted, rtol=1e-5)
    stay = point()["stay_factor"]
    assert np.all(per_sample["minimizer_loss"] < 1e-3 * per_sample["start_loss"] / stay**2)


def test_every_depth_and_imbalance_of_a_sample_has_the_same_step_factor_and_batched_equals_alone():
    points = [point(depth=depth, imbalance=kappa) for depth in (2, 3) for kappa in (0.0, 1.0)]
    together = escape.simulate_points(points, 0, 20, np)
    for p, (per_sample, _) in zip(points, together, strict=True):
        np.testing.assert_array_equal(per_sample["step_factor"], together[0][0]["step_factor"])
        alone, _ = escape.simulate(p, 0, 20, np)
        for key in alone:
            np.testing.assert_array_equal(per_sample[key], alone[key], err_msg=key)


def test_runs_below_one_stay_and_above_escape_outside_the_window():
    per_sample, _ = escape.simulate(point(width=2, depth=3, imbalance=1.0), 0, 64, np)
    c, outcome = per_sample["step_factor"], per_sample["outcome"]
    settings = point()
    inside = linearly_undecided(c, settings["max_steps"], settings["escape_factor"],
                                settings["stay_factor"])
    assert np.all(outcome[(c < 1) & ~inside] == STAYED)
    assert np.all(outcome[(c > 1) & ~inside] == ESCAPED)
    assert not np.any(outcome == MOVED)
    decided = (outcome == STAYED) | (outcome == ESCAPED)
    np.testing.assert_allclose(per_sample["growth_per_step"][decided],
                               per_sample["predicted_growth_per_step"][decided], rtol=1e-4)


# --- the settings reach the shards, and a change of one is seen -------------------------------


def simulate_escape_shard(results, settings: list[str], seed: int = 5):
    """Shard 0 (samples [0, 8)) of one escape point, as the workflow writes it."""
    from svperturb.cli import main

    point = "target=gaussian/width=2/depth=2/imbalance=0"
    shard = results / "shards" / "escape" / point / "shard-0000.h5"
    assert main(["simulate", "--study", "escape", "--point", point, "--start", "0", "--stop", "8",
                 "--seed", str(seed), "--backend", "numpy", "--settings", *settings,
                 "--output", str(shard)]) == 0
    return point, shard


def test_the_settings_are_in_the_shards_point_and_data_hash(tmp_path):
    import json

    from svperturb.results import io

    _, shard = simulate_escape_shard(tmp_path / "a", ["max_steps=40", "escape_factor=10"])
    _, other = simulate_escape_shard(tmp_path / "b", ["max_steps=50", "escape_factor=10"])
    stored = json.loads(io.read_attrs(shard)["point_json"])
    assert stored["max_steps"] == 40 and stored["escape_factor"] == 10.0
    assert stored["step_factor"] == [0.8, 1.2] and stored["start_distance"] == 1e-9  # defaults
    assert io.read_attrs(shard)["data_hash"] != io.read_attrs(other)["data_hash"]


def test_aggregate_refuses_a_shard_computed_with_other_settings(tmp_path, caplog):
    from svperturb.cli import main

    _, shard = simulate_escape_shard(tmp_path, ["max_steps=40"])
    merged = tmp_path / "escape.h5"
    common = ["aggregate", "--study", "escape", "--samples", "8", "--seed", "5"]
    assert main([*common, "--settings", "max_steps=40", "--output", str(merged), str(shard)]) == 0
    caplog.clear()
    assert main([*common, "--settings", "max_steps=50", "--output", str(merged), str(shard)]) == 2
    assert "max_steps: shard 40, config 50" in caplog.text


def test_resume_says_that_changed_settings_recompute_the_study(tmp_path):
    from svperturb.config import study_settings
    from svperturb.results.resume import compare_with_existing_shards
    from svperturb.studies import StudyConfig

    simulate_escape_shard(tmp_path, ["max_steps=40"])
    grid = {"target": ["gaussian"], "width": [2], "depth": [2], "imbalance": [0.0]}

    def config(**given):
        settings = study_settings("escape", given, "studies.escape")
        return {"escape": StudyConfig("escape", 8, 8, grid, settings)}

    assert compare_with_existing_shards(tmp_path, config(max_steps=40), 5) == ([], [])
    problems, notes = compare_with_existing_shards(tmp_path, config(max_steps=60, stay_factor=10),
                                                   5)
    assert problems == []
    assert "study escape: the config changes max_steps (40 -> 60), stay_factor (1000.0 -> 10.0)" \
        in notes[0] and "all of them will be recomputed" in notes[0]
