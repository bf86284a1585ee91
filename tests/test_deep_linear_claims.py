"""Claims 25-30 (Jacot et al., arXiv 2106.15933): each verdict rule on constructed data that must
pass and data that must fail, and both deep linear studies through the command line (simulate,
aggregate, fit, report) on tiny grids, with their figures."""

from __future__ import annotations

import itertools

import matplotlib.pyplot as plt
import numpy as np
import pytest

from support.studies import fit_and_report, simulate_study
from svperturb.analysis.captions import CAPTIONS
from svperturb.analysis.claims import Results
from svperturb.analysis.claims import deep_linear as claims
from svperturb.analysis.figures.deep_linear import FIGURES
from svperturb.analysis.fit import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, FitSettings
from svperturb.config import ConfigError, validate_config
from svperturb.results.io import point_path
from svperturb.sampling.factorizations import balanced_factors
from svperturb.studies import deep_linear_dynamics, deep_linear_l2
from svperturb.theory.deep_linear import STABLE, ZERO, jump_point, schatten_penalty

SETTINGS = FitSettings(bootstrap=20)


class Constructed(dict):
    """A grid point's datasets, as PointData gives them."""

    def __init__(self, point, **arrays):
        super().__init__({k: np.asarray(v) for k, v in arrays.items()})
        self.point = point


# --- claim 25 --------------------------------------------------------------------------------------


def identity_data(depth=3, shortfall=0.0):
    """A point whose random maps are factorized exactly (balanced), whose imbalanced factorization
    lies 10 % above, and whose trained factorizations lie `shortfall` below the penalty."""
    rng = np.random.default_rng(depth)
    a = rng.standard_normal((8, 4, 4))
    s = np.linalg.svd(a, compute_uv=False)
    penalty = schatten_penalty(s, depth)
    balanced = sum((w**2).sum(axis=(-2, -1)) for w in balanced_factors(a, depth))
    return Constructed({"depth": depth, "width": 6}, random_map_singular_values=s,
                       random_map_penalty=penalty, balanced_norm_sum=balanced,
                       imbalanced_norm_sum=1.1 * penalty, imbalanced_penalty=penalty,
                       imbalanced_singular_values=s, imbalanced_factor_norms=np.full(8, 10.0),
                       norm_sum=penalty - shortfall, final_penalty=penalty, final_singular_values=s,
                       final_factor_norms=np.full(8, 10.0), stopped=np.ones(8, dtype=np.uint8))


def test_claim_25_passes_on_exact_factorizations_and_fails_below_the_penalty():
    assert claims.judge_identity([claims.identity_violations(identity_data())]).verdict == REPRODUCED
    # 1e-6 below: far beyond the rounding allowance of O(1) values (~1e-13)
    failed = claims.judge_identity([claims.identity_violations(identity_data(shortfall=1e-6))])
    assert failed.verdict == NOT_REPRODUCED and failed.evidence["final"] == 8
    assert claims.judge_identity([]).verdict == INCONCLUSIVE


# --- claims 26, 27 ----------------------------------------------------------------------------------


def roots_data(distance=1e-9, bound=1e-7, branch=STABLE):
    shape = (5, 3)
    return Constructed({"depth": 3, "width": 6, "l2": 0.1},
                       root_distance=np.full(shape, distance), distance_bound=np.full(shape, bound),
                       stopped=np.ones(5, dtype=np.uint8), branch=np.full(shape, branch, np.uint8),
                       root=np.tile([1.0, 0.5, 0.2], (5, 1)),
                       final_singular_values=np.tile([1.0, 0.5, 0.2], (5, 1)) + distance,
                       alignment_residual=np.zeros(5), final_factor_norms=np.ones(5))


def test_claim_26_passes_within_1e_6_and_fails_beyond_and_needs_a_converged_run():
    assert claims.judge_roots([roots_data()]).verdict == REPRODUCED
    assert claims.judge_roots([roots_data(distance=2e-6)]).verdict == NOT_REPRODUCED
    # a bound above 1e-6: the stopping rule does not certify the run, whatever its distance
    assert claims.judge_roots([roots_data(distance=2e-6, bound=1e-5)]).verdict == INCONCLUSIVE


def counts(depth, directions=20, not_global=0, between=10, between_stable=5):
    return {"depth": depth, "directions": directions, "not_global": not_global, "between": between,
            "between_stable": between_stable, "between_zero": between - between_stable,
            "above_zero": 0}


def test_claim_27_passes_with_local_minima_at_depth_3_and_none_at_depth_2():
    good = [counts(2, between=0, between_stable=0), counts(3, not_global=5)]
    assert claims.judge_local_minima(good, SETTINGS).verdict == REPRODUCED
    # a depth-2 run away from the global minimum contradicts the abstract
    bad = [counts(2, not_global=1, between=0, between_stable=0), counts(3, not_global=5)]
    assert claims.judge_local_minima(bad, SETTINGS).verdict == NOT_REPRODUCED
    # no local minimum found at depth 3: existence not shown
    none = [counts(2, between=0, between_stable=0), counts(3, between_stable=0)]
    assert claims.judge_local_minima(none, SETTINGS).verdict == INCONCLUSIVE
    assert claims.judge_local_minima([counts(3)], SETTINGS).verdict == INCONCLUSIVE


def test_branch_counts_compare_with_the_global_minimizer():
    """m = 0.95 m_c (between m_e and m_c at L = 3) on the stable branch is a non-global local
    minimum; m = 2 m_c at 0 is one too; m = 0.5 m_c at 0 is the global one."""
    _, m_c = jump_point(0.1, 3)
    data = Constructed({"depth": 3, "l2": 0.1}, stopped=np.ones(1, np.uint8),
                       distance_bound=np.zeros((1, 3)),
                       teacher_singular_values=[[2 * m_c, 0.95 * m_c, 0.5 * m_c]],
                       branch=np.array([[ZERO, STABLE, ZERO]], np.uint8))
    c = claims.branch_counts(data)
    assert (c["not_global"], c["between"], c["between_stable"], c["above_zero"]) == (2, 1, 1, 1)


# --- claims 28-30 ----------------------------------------------------------------------------------

TEACHER = np.array([5.0, 3.0, 1.8, 1.08, 0.648])
TIME = np.linspace(0, 10, 200)


def curves(sequential: bool, runs=4):
    """Projections p_k(t) = m_k q_k(t), q_k a logistic step at t_k (one after another, or all at
    once), and the loss 1/2 sum_k m_k^2 (1 - q_k)^2 of a map on the teacher's directions."""
    centres = np.arange(1, 6) * 1.8 if sequential else np.full(5, 4.0)
    q = 1 / (1 + np.exp(-(TIME[:, None] - centres) * 8))
    q = (q - q[0]) / (1 - q[0])
    projections = np.broadcast_to(TEACHER * q, (runs, *q.shape)).copy()
    loss = 0.5 * (((TEACHER * (1 - q)) ** 2).sum(axis=-1))
    return projections, np.broadcast_to(loss, (runs, len(TIME))).copy(), np.tile(TEACHER, (runs, 1))


def test_the_staircase_is_saddle_to_saddle_and_the_simultaneous_rise_is_not():
    for sequential in (True, False):
        projections, loss, teacher = curves(sequential)
        q = claims.progress(projections, teacher)
        flags, deviation = claims.saddle_to_saddle(q, loss, teacher)
        assert flags.all() == sequential and flags.any() == sequential
        # between the steps the loss rests on 1/2 sum_(i>k) m_i^2 (the logistic tails are e^-7 there);
        # with every q_k equal there is no window between learning times
        assert np.nanmax(deviation) < 0.01 if sequential else np.isnan(deviation).all()
        bias = claims.rank_bias(q)
        assert np.all(bias > 0.9) if sequential else np.allclose(bias, 0)
    # a run that learns m_2 before m_1 is not ordered
    projections, loss, teacher = curves(True)
    projections[:, :, [0, 1]] = projections[:, :, [1, 0]] * (teacher[:, [0, 1]] / teacher[:, [1, 0]])[:, None]
    assert not claims.saddle_to_saddle(claims.progress(projections, teacher), loss, teacher)[0].any()


def runs(saddles: int, total: int = 16, bias: float = 0.0, spread: float = 0.05):
    rng = np.random.default_rng(saddles)
    return {"runs": total, "finished": total, "saddle_to_saddle": np.arange(total) < saddles,
            "bias": bias + spread * rng.standard_normal(total), "spread": np.full(total, 0.2),
            "plateau_deviation": np.full((total, 4), 0.01)}


def test_claim_28_needs_most_runs_saddle_to_saddle_at_the_smallest_initialization():
    key = ("linear", "L=3", "w=16")
    assert claims.judge_saddles({key: {0.5: runs(0), 2.0: runs(16)}}, SETTINGS).verdict == REPRODUCED
    assert claims.judge_saddles({key: {2.0: runs(2)}}, SETTINGS).verdict == NOT_REPRODUCED
    assert claims.judge_saddles({key: {2.0: runs(8)}}, SETTINGS).verdict == INCONCLUSIVE
    assert claims.judge_saddles({key: {1.0: runs(16)}}, SETTINGS).verdict == INCONCLUSIVE
    # a gamma whose runs mostly did not finish is passed over for the next smaller one
    unfinished = {**runs(0, total=16), "finished": 3}
    outcome = claims.judge_saddles({key: {2.0: runs(16), 3.0: unfinished}}, SETTINGS)
    assert outcome.verdict == REPRODUCED and outcome.evidence["linear/L=3/w=16"]["gamma"] == 2.0


def test_claim_29_reads_the_rank_bias_at_the_largest_width_and_smallest_gamma():
    lazy = {("linear", "L=3", "w=16"): {0.5: runs(0, bias=0.9)}, ("linear", "L=3", "w=64"): {0.5: runs(0)}}
    assert claims.judge_lazy(lazy, SETTINGS).verdict == REPRODUCED  # w = 16 is not the largest
    biased = {("linear", "L=3", "w=64"): {0.5: runs(0, bias=0.9)}}
    assert claims.judge_lazy(biased, SETTINGS).verdict == NOT_REPRODUCED
    assert claims.judge_lazy({("linear", "L=3", "w=64"): {1.5: runs(0)}}, SETTINGS).verdict == INCONCLUSIVE


def test_claim_30_needs_the_crossover_between_the_neighbours_of_one():
    key = ("linear", "L=3", "w=64")
    good = {key: {0.5: runs(0, bias=0.0), 0.75: runs(0, bias=0.1), 1.5: runs(0, bias=0.9)}}
    outcome = claims.judge_crossover(good, SETTINGS)
    assert outcome.verdict == REPRODUCED
    late = {key: {0.75: runs(0, bias=0.1), 1.5: runs(0, bias=0.2), 2.0: runs(0, bias=0.9)}}
    assert claims.judge_crossover(late, SETTINGS).verdict == NOT_REPRODUCED
    assert claims.judge_crossover({key: {1.5: runs(0, bias=0.9)}}, SETTINGS).verdict == INCONCLUSIVE
    # gamma* by linear interpolation: 0.2 at 1, 0.8 at 1.5 -> 1.25
    by_gamma = {1.0: runs(0, bias=0.2, spread=0.0), 1.5: runs(0, bias=0.8, spread=0.0)}
    assert claims.crossover_exponent(by_gamma) == pytest.approx(1.25)


# --- the studies through the command line -----------------------------------------------------------

DYNAMICS_GRID = {"teacher_spectrum": ("geometric",), "width": (8,), "depth": (2, 3),
                 "init_exponent": (0.5, 2.0)}
DYNAMICS_SETTINGS = ["--settings", "training_steps=4000", "rate_factor=0.5", "steps_per_decade=10",
                     "loss_tolerance=1e-08"]
L2_GRID = {"width": (7,), "depth": (2, 3), "l2": (0.1,), "init_exponent": (1.0, 2.0)}
L2_SETTINGS = ["--settings", "training_steps=20000", "rate_factor=0.5", "gradient_tolerance=1e-09"]
SAMPLES = 8


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    directory = tmp_path_factory.mktemp("deep_linear")
    for study, grid, settings in ((deep_linear_dynamics, DYNAMICS_GRID, DYNAMICS_SETTINGS),
                                  (deep_linear_l2, L2_GRID, L2_SETTINGS)):
        points = [point_path(dict(zip(grid, values)), study.AXES)
                  for values in itertools.product(*grid.values())]
        simulate_study(directory, study.NAME, points, SAMPLES, *settings)
    return directory


def test_the_studies_record_what_the_claims_need(results):
    data = Results(results)
    for point in data.points(deep_linear_l2.NAME):
        assert all(name in point for name in deep_linear_l2.DATASETS)
        assert np.asarray(point["stopped"]).all()  # 20,000 steps suffice at width 7
        assert np.asarray(point["root_distance"]).max() <= 1e-6
    for point in data.points(deep_linear_dynamics.NAME):
        assert all(name in point for name in deep_linear_dynamics.DATASETS)
        steps = np.asarray(point["recorded_steps"])
        assert steps[0, 0] == 0 and np.all(steps == steps[0])
        assert np.asarray(point["loss_curve"]).shape == steps.shape
        assert np.asarray(point["finished"]).all()


def test_fit_and_report_give_every_claim_a_verdict_and_every_figure(results, tmp_path):
    index, rows, table = fit_and_report(results, tmp_path)
    by_id = {row["id"]: row for row in table}
    for claim in range(25, 31):
        assert by_id[claim]["source"] == "2106.15933" and str(claim) in rows
    # exact on any converged data: the identity and the roots
    assert by_id[25]["verdict"] == REPRODUCED and by_id[26]["verdict"] == REPRODUCED
    assert by_id[27]["verdict"] in (REPRODUCED, INCONCLUSIVE)
    for stem in FIGURES:
        assert stem in CAPTIONS and f"{stem}.png" in index


@pytest.mark.parametrize("stem", sorted(FIGURES))
def test_each_figure_draws_and_none_without_its_study(results, tmp_path, stem):
    draw, _ = FIGURES[stem]
    fig = draw(Results(results))
    assert fig is not None and all(ax.get_xlabel() for ax in fig.axes if ax.get_visible())
    plt.close(fig)
    assert draw(Results(tmp_path)) is None


# --- bad configuration ------------------------------------------------------------------------------


def test_a_bad_deep_linear_config_is_refused_naming_the_key_and_what_is_allowed():
    base = {"seed": 1, "grid": {"distribution": ["gaussian"], "width": [16], "weight_scale": [2],
                                "activation_slope": [0], "activity": [0.5], "skip": [0, 1]}}
    cases = {
        "narrow": ({"deep_linear_l2": {"samples": 2, "shard_size": 2, "grid": {"width": [4]}}},
                   ["studies.deep_linear_l2.grid.width", ">= 7"]),
        "shallow": ({"deep_linear_dynamics": {"samples": 2, "shard_size": 2, "grid": {"depth": [1]}}},
                    ["studies.deep_linear_dynamics.grid.depth", ">= 2"]),
        "spectrum": ({"deep_linear_dynamics": {"samples": 2, "shard_size": 2,
                                               "grid": {"teacher_spectrum": ["flat"]}}},
                     ["teacher_spectrum", "linear", "geometric"]),
        "setting": ({"deep_linear_l2": {"samples": 2, "shard_size": 2, "gradient_tolerance": -1}},
                    ["studies.deep_linear_l2.gradient_tolerance"]),
    }
    for studies, fragments in cases.values():
        with pytest.raises(ConfigError) as error:
            validate_config({**base, "studies": studies})
        for fragment in fragments:
            assert fragment in str(error.value), (fragment, str(error.value))
