"""Claim 10, hard bounds (section 6.1): the bound formulas against hand cases, the bounded weight
patterns, the hard_bounds study against matrix-by-matrix SciPy spectra, and the claim's verdicts
(reproduced on real simulations, not reproduced with a saved counterexample, inconclusive where a
bound never applies).

Rounding allowance as in test_bounds.py: 64 n eps times the size of the compared quantity.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from scipy import stats

from support.devices import take_cupy_routes
from support.reference import reference_singular_values
from support.studies import simulate_study
from svperturb.analysis.claims.common import Results
from svperturb.analysis.claims.hard_bounds import COUNTEREXAMPLE, hard_bounds_claim
from svperturb.analysis.fit import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, FitSettings
from svperturb.sampling.ensembles import SEED_CHUNK, WEIGHT_PATTERNS, bounded_unit_matrices
from svperturb.studies import hard_bounds as study
from svperturb.theory import bounds
from svperturb.theory.bounds import (
    condition_bound_hard,
    condition_bound_leaky_direct,
    condition_bound_leaky_gram,
    condition_bound_relu_count,
    condition_bound_relu_fraction,
    condition_bound_relu_width,
    product_entry_bound,
    skip_hard_interval,
    spectral_norm_entry_bound,
)

EPS = np.finfo(np.float64).eps
SEED = 20220307
SETTINGS = FitSettings(bootstrap=50, seed=1)


def allowance(scale, n):
    return 64 * n * EPS * np.asarray(scale)


def point(**changes):
    base = {"width": 5, "entry_bound": 0.9, "weight_pattern": "rank_one", "depth": 1,
            "activation_slope": -1.0, "activity": 0.2, "seed": SEED}
    return {**base, **changes}


def signs(n, rng):
    return rng.choice([-1.0, 1.0], n)


# --- the bound formulas ---------------------------------------------------------------------------


def test_spectral_norm_bound_is_attained_by_the_constant_matrix_and_holds_for_any_bounded_matrix():
    rng = np.random.default_rng(1)
    for n in (2, 5, 13):
        c = 0.7 / n
        constant = np.full((1, n, n), c)
        np.testing.assert_allclose(reference_singular_values(constant)[0, 0], spectral_norm_entry_bound(c, n),
                                   rtol=0, atol=allowance(c * n, n))
        bounded = c * rng.uniform(-1, 1, (200, n, n))
        assert np.all(reference_singular_values(bounded)[:, 0] <= spectral_norm_entry_bound(c, n))


def test_product_entry_bound_hand_case_and_hypothesis():
    # n = 2, c = 1/2 (= 1/n): the product of two all-c matrices is all n c^2 = c: equality in Lemma 28.
    w = np.full((2, 2), 0.5)
    assert np.abs(w @ w).max() == product_entry_bound(0.5, 2) == 0.5
    assert np.isnan(product_entry_bound(0.6, 2))  # c > 1/n: Lemma 28 says nothing
    # and with c > 1/n the conclusion indeed fails: (all-c)^2 has entries n c^2 > c
    assert np.abs(np.full((2, 2), 0.6) @ np.full((2, 2), 0.6)).max() > 0.6


@pytest.mark.parametrize("n", [3, 5, 8])
def test_skip_interval_is_attained_by_aligned_and_anti_aligned_rank_one_weights(n):
    rng = np.random.default_rng(n)
    c = 0.6 / n
    s = signs(n, rng)
    lower, upper = skip_hard_interval(c, n)
    assert (lower, upper) == pytest.approx((1 - c * n, 1 + c * n), abs=4 * EPS)
    plus = reference_singular_values((np.eye(n) + c * np.outer(s, s))[None])[0]
    minus = reference_singular_values((np.eye(n) - c * np.outer(s, s))[None])[0]
    assert plus[0] == pytest.approx(upper, abs=allowance(2, n))  # s_1(I + c s s^T) = 1 + c n
    assert minus[-1] == pytest.approx(lower, abs=allowance(2, n))  # s_n(I - c s s^T) = 1 - c n
    assert np.isnan(skip_hard_interval(1.0 / n, n)[0])  # c n = 1: outside Lemma 29


def test_condition_bound_hard_closed_form_and_hypothesis():
    assert condition_bound_hard(0.5 / 4, 4) == pytest.approx(3.0)
    assert condition_bound_hard(0.9 / 10, 10) == pytest.approx(19.0)
    assert np.isnan(condition_bound_hard(0.25, 4))  # c n = 1


def test_relu_bounds_closed_forms_at_hand_values():
    n, m, cn = 5, 1, 0.04
    c = cn / n
    assert condition_bound_relu_width(c, n) == pytest.approx(1.04 / np.sqrt(1 - 2 * 0.04 * 6))
    assert condition_bound_relu_fraction(c, n, m) == pytest.approx(1.04 / (0.96 - np.sqrt(0.2)))
    assert condition_bound_relu_count(c, n, m) == pytest.approx(1.04 / np.sqrt(1 - 2 * 0.04 * 3))


def test_relu_bounds_are_nan_exactly_where_their_conditions_fail():
    n, m = 5, 1
    # (89): 2 c n < 1/(1 + n)  <=>  c n < 1/12
    assert np.isfinite(condition_bound_relu_width(0.083 / n, n))
    assert np.isnan(condition_bound_relu_width(0.084 / n, n))
    # (91): 2 c n < 1/(1 + 2m)  <=>  c n < 1/6
    assert np.isfinite(condition_bound_relu_count(0.166 / n, n, m))
    assert np.isnan(condition_bound_relu_count(0.167 / n, n, m))
    # (90): m <= n (1 - c n)^2; at equality (n = 4, m = 1, c n = 1/2) the bound is +inf
    assert condition_bound_relu_fraction(0.5 / 4, 4, 1) == np.inf
    assert np.isfinite(condition_bound_relu_fraction(0.49 / 4, 4, 1))
    assert np.isnan(condition_bound_relu_fraction(0.51 / 4, 4, 1))


def test_leaky_bounds_closed_forms_and_conditions():
    n, m, eta, cn = 5, 1, 0.9, 0.04
    c = cn / n
    assert condition_bound_leaky_gram(c, n, m, eta) == pytest.approx(1.04 / np.sqrt(0.96**2 - 0.4))
    assert condition_bound_leaky_direct(c, n, m, eta) == pytest.approx(1.04 / (0.96 - 0.1 * (3 * c + 1)))
    assert np.isnan(condition_bound_leaky_gram(c, 4, m, eta))  # (100) needs n >= 5
    assert np.isfinite(condition_bound_leaky_direct(c, 4, m, eta))  # (101) does not
    for bad_eta in (-1.0, 1.0):  # Theorem 32: 0 <= eta < 1
        assert np.isnan(condition_bound_leaky_gram(c, n, m, bad_eta))
        assert np.isnan(condition_bound_leaky_direct(c, n, m, bad_eta))
    # at eta = 0 and m >= 1 neither condition can hold: (1 - cn)^2 <= 1 < 4 sqrt(m), 1 - cn < m (3c + 1)
    assert np.isnan(condition_bound_leaky_gram(c, n, m, 0.0))
    assert np.isnan(condition_bound_leaky_direct(c, n, m, 0.0))
    # (101) needs 1 - cn > (1 - eta) m (3c + 1): m = 2, eta = 0.5 fails at any c
    assert np.isnan(condition_bound_leaky_direct(c, n, 2, 0.5))


def test_relu_bounds_are_never_below_the_absolute_value_bound():
    """(89)-(91) exceed (1 + cn)/(1 - cn) wherever they apply. Deleting m columns cannot push s_* of
    M(1) D below s_n(M(1)) >= 1 - cn, so the ReLU bounds hold with room to spare (see the report)."""
    for n in (5, 10, 50):
        for m in range(n):
            cn = np.linspace(0.001, 0.999, 500)
            hard = condition_bound_hard(cn / n, n)
            for bound in (condition_bound_relu_width(cn / n, n), condition_bound_relu_fraction(cn / n, n, m),
                          condition_bound_relu_count(cn / n, n, m)):
                ok = np.isfinite(bound)
                assert np.all(bound[ok] >= hard[ok] * (1 - 1e-15))


# --- the bounded weight patterns ------------------------------------------------------------------


@pytest.mark.parametrize("pattern", WEIGHT_PATTERNS)
def test_bounded_weights_seeding_is_split_independent(pattern):
    def draw(a, b):
        return bounded_unit_matrices(SEED, "hard_bounds", 4, pattern, a, b, stream="weights/layer=2")

    whole = draw(0, 3 * SEED_CHUNK)
    pieces = np.concatenate([draw(0, 1), draw(1, 64), draw(64, 130), draw(130, 3 * SEED_CHUNK)])
    np.testing.assert_array_equal(whole, pieces)
    assert np.all(np.abs(whole) <= 1)


def test_bounded_weight_patterns_have_their_laws():
    n, size = 6, 2000
    uniform = bounded_unit_matrices(SEED, "hard_bounds", n, "uniform", 0, size)
    # KS against U[-1, 1] on 72,000 entries: reject only at the 1e-4 level (a fixed seed makes it
    # deterministic; the level says how unlucky a correct sampler would have to be).
    assert stats.kstest(uniform.ravel(), stats.uniform(-1, 2).cdf).pvalue > 1e-4
    assert np.all(bounded_unit_matrices(SEED, "hard_bounds", n, "constant", 0, 10) == 1.0)
    sign_entries = bounded_unit_matrices(SEED, "hard_bounds", n, "random_signs", 0, size)
    assert set(np.unique(sign_entries)) == {-1.0, 1.0}
    plus = int((sign_entries > 0).sum())
    assert stats.binomtest(plus, sign_entries.size, 0.5).pvalue > 1e-4
    rank_one = bounded_unit_matrices(SEED, "hard_bounds", n, "rank_one", 0, size)
    assert set(np.unique(rank_one)) == {-1.0, 1.0}
    assert np.all(np.linalg.matrix_rank(rank_one) == 1)
    # s t^T with s, t independent uniform sign vectors: t = s (s s^T, diagonal +1) and t = -s
    # (-s s^T, diagonal -1) each with probability 2^-n; the counts are binomial.
    symmetric = np.all(rank_one == np.swapaxes(rank_one, 1, 2), axis=(1, 2))
    diagonal = np.diagonal(rank_one, axis1=1, axis2=2)
    for sign in (1.0, -1.0):
        count = int(np.sum(symmetric & np.all(diagonal == sign, axis=1)))
        assert stats.binomtest(count, size, 2.0 ** (-n)).pvalue > 1e-4
    with pytest.raises(ValueError, match="weight pattern"):
        bounded_unit_matrices(SEED, "hard_bounds", n, "diagonal", 0, 1)


# --- the study ------------------------------------------------------------------------------------


def test_sample_matrices_build_mo_layer_by_layer_and_pair_the_draws():
    p3 = point(depth=3, weight_pattern="uniform", activation_slope=0.5, activity=0.4)
    mats = study.sample_matrices(p3, 10, 40)
    c = study.entry_bound(p3)
    assert np.all(np.abs(mats["W"]) <= c)
    for k in range(30):
        expected = np.eye(5)
        for i in range(3):
            expected = np.diag(mats["D_hidden"][k, i]) @ mats["W"][k, i] @ expected
        np.testing.assert_allclose(mats["Mo"][k], expected, rtol=0, atol=allowance(c, 5))
    # two entries eta = 0.5 (m = round(0.4 * 5)), three entries 1, in each pattern
    assert np.all(np.sort(mats["D"], axis=1) == [0.5, 0.5, 1, 1, 1])
    # layer 1 is the same at every depth, c only scales the draw, eta only the pattern's values
    shallow = study.sample_matrices(point(depth=1, weight_pattern="uniform", entry_bound=0.3,
                                          activation_slope=0.0, activity=0.4), 10, 40)
    np.testing.assert_allclose(shallow["W"][:, 0] / 0.3, mats["W"][:, 0] / 0.9, rtol=1e-15)
    np.testing.assert_array_equal(shallow["D"] == 0.0, mats["D"] == 0.5)


@pytest.mark.parametrize("changes", [
    {},
    {"weight_pattern": "uniform", "depth": 2, "activation_slope": 0.0, "entry_bound": 0.04},
    {"weight_pattern": "random_signs", "activation_slope": 0.9, "entry_bound": 0.3, "width": 7},
])
def test_simulate_matches_matrix_by_matrix_scipy_spectra(changes):
    p = point(**changes)
    out, spectra = study.simulate(p, 0, 150, np)
    mats = study.sample_matrices(p, 0, 150)
    n, c = p["width"], study.entry_bound(p)
    m1 = mats["Mo"] + np.eye(n)
    s_m = reference_singular_values(m1)
    s_a = reference_singular_values(m1 * mats["D"][:, None, :])
    tol = allowance(2, n)
    np.testing.assert_allclose(out["s1_M"], s_m[:, 0], rtol=0, atol=tol)
    np.testing.assert_allclose(out["sn_M"], s_m[:, -1], rtol=0, atol=tol)
    np.testing.assert_allclose(spectra["singular_values_A"], s_a, rtol=0, atol=tol)
    m = round(p["activity"] * n)
    rank = n - m if p["activation_slope"] == 0 else n
    assert np.all(out["rank_A"] == rank)
    s_star = s_a[:, rank - 1]
    np.testing.assert_allclose(out["kappa_A"], s_a[:, 0] / s_star, rtol=1e-10)
    np.testing.assert_allclose(out["spectral_ratio"] * c * n,
                               reference_singular_values(mats["W"])[..., 0].max(axis=1), rtol=0, atol=tol)
    np.testing.assert_array_equal(out["max_entry_ratio"], np.abs(mats["Mo"]).max(axis=(1, 2)) / c)
    bound = study.bound_values(p)["87"]
    np.testing.assert_allclose(out["slack_87"], (bound - s_m[:, 0] / s_m[:, -1]) / bound, rtol=0, atol=1e-10)
    for key in study.BOUNDS:
        assert out[f"violations_{key}"].sum() == 0
        assert np.isfinite(out[f"slack_{key}"]).all() == np.isfinite(study.bound_values(p)[key])


@pytest.mark.parametrize("changes", [
    {"weight_pattern": "constant", "activation_slope": -1.0, "entry_bound": 0.99},
    {"weight_pattern": "rank_one", "activation_slope": 0.0, "entry_bound": 0.3, "depth": 2},
    {"weight_pattern": "uniform", "activation_slope": 0.5, "entry_bound": 0.99},
    {"weight_pattern": "random_signs", "activation_slope": 0.9, "entry_bound": 0.6, "depth": 2},
])
def test_on_the_routes_cupy_takes_the_study_agrees_with_lapack_and_finds_no_violation(
        changes, monkeypatch):
    """As on CuPy from n = 33 (forced here: the Gram route for s_1 of W_i and Mo, the Gram and
    augmented routes for M(1) and A): every value within the contract of the LAPACK run's, the
    rank as LAPACK's, no violation, though the constant pattern attains (85) exactly (its flag
    allows the Gram route's proven error, 9e-15 c n here, besides 16 n eps c n of rounding)."""
    from svperturb.linalg import engine

    p = point(width=40, **changes)
    lapack, _ = study.simulate(p, 0, 80, np)
    take_cupy_routes(monkeypatch)
    fast, _ = study.simulate(p, 0, 80, np)
    assert not np.array_equal(fast["s1_M"], lapack["s1_M"])  # the fast routes did run
    for key in ("s1_M", "s1_Mo", "s1_A", "spectral_ratio"):
        np.testing.assert_allclose(fast[key], lapack[key], rtol=engine.TOLERANCE_S1, atol=0, err_msg=key)
    for key in ("sn_M", "s_star_A"):
        np.testing.assert_allclose(fast[key], lapack[key], rtol=engine.TOLERANCE_S_MIN, atol=0,
                                   err_msg=key)
    for key in ("kappa_M", "kappa_A"):
        np.testing.assert_allclose(fast[key], lapack[key], rtol=1.01 * (engine.TOLERANCE_S1 + engine.TOLERANCE_S_MIN),
                                   atol=0, err_msg=key)
    np.testing.assert_array_equal(fast["rank_A"], lapack["rank_A"])
    for key in study.BOUNDS:
        assert fast[f"violations_{key}"].sum() == 0 == lapack[f"violations_{key}"].sum(), key


def test_simulate_does_not_depend_on_the_block_split():
    p = point(weight_pattern="uniform", depth=2, activation_slope=0.9)
    whole, _ = study.simulate(p, 0, 200, np)
    parts = [study.simulate(p, a, b, np)[0] for a, b in ((0, 1), (1, 70), (70, 200))]
    for name, values in whole.items():
        np.testing.assert_array_equal(values, np.concatenate([q[name] for q in parts]), err_msg=name)


def test_a_jobs_points_share_their_draws_and_the_s1_of_their_weights(monkeypatch):
    """simulate_points (a batched job: c, eta, activity) draws once per depth and computes s_1 of
    the weights W_i = c U_i once per c, and gives each point, bit for bit, what simulate of that
    point alone gives."""
    points = [point(weight_pattern="uniform", depth=2, entry_bound=c, activation_slope=eta,
                    activity=activity)
              for c in (0.3, 0.9) for eta in (0.0, 0.5) for activity in (0.2, 0.6)]
    points.append(point(weight_pattern="uniform", depth=3, entry_bound=0.3, activation_slope=0.5))
    alone = [study.simulate(p, 4, 34, np) for p in points]
    draws, sizes = [], []
    real_draws, real_largest = study._draws, study.engine.largest_singular_values
    monkeypatch.setattr(study, "_draws", lambda *args: draws.append(args) or real_draws(*args))
    monkeypatch.setattr(study.engine, "largest_singular_values",
                        lambda a, xp: sizes.append(len(a)) or real_largest(a, xp))
    together = study.simulate_points(points, 4, 34, np)
    assert len(draws) == 2  # depth 2 and depth 3
    # s_1 of the W_i: 30 samples x p layers, once per (depth, c); of Mo: 30 per point
    assert sorted(sizes) == [30] * len(points) + [60, 60, 90]
    for p, (want_per, want_spectra), (per, spectra) in zip(points, alone, together):
        assert per.keys() == want_per.keys() and spectra.keys() == want_spectra.keys()
        for key in want_per:
            np.testing.assert_array_equal(per[key], want_per[key], err_msg=f"{p}: {key}")
        for key in want_spectra:
            np.testing.assert_array_equal(spectra[key], want_spectra[key], err_msg=f"{p}: {key}")
    assert len({float(per["s1_Mo"][0]) for per, _ in together}) > 4  # the points differ


def test_bounds_apply_only_at_the_activation_slopes_the_paper_states_them_for():
    at = {eta: study.bound_values(point(activation_slope=eta, entry_bound=0.04)) for eta in (-1.0, 0.0, 0.5, 0.9)}
    applicable = {eta: {k for k, v in values.items() if np.isfinite(v)} for eta, values in at.items()}
    always = {"85", "28", "86_lower", "86_upper", "87"}
    assert applicable[-1.0] == always | {"88"}
    assert applicable[0.0] == always | {"89", "90", "91"}
    assert applicable[0.5] == always | {"101"}
    assert applicable[0.9] == always | {"100", "101"}
    # ReLU with m = n: M(1) D = 0 has no condition number
    assert np.isnan(study.bound_values(point(activation_slope=0.0, activity=1.0, entry_bound=0.04))["89"])


def test_adversarial_patterns_attain_the_bounds():
    """Constant weights: s_1(W) = c n (85). Rank one c s t^T with D_1 s = -t (probability 2^-n at
    n = 5, eta = -1): s_n(M(1)) = 1 - c n, and with D_1 s = t: s_1(M(1)) = 1 + c n (86)."""
    constant, _ = study.simulate(point(weight_pattern="constant"), 0, 20, np)
    assert np.abs(constant["slack_85"]).max() <= allowance(1, 5)
    rank_one, _ = study.simulate(point(), 0, 1000, np)
    assert np.sum(np.abs(rank_one["slack_86_lower"]) <= allowance(10, 5)) > 0
    assert np.sum(np.abs(rank_one["slack_86_upper"]) <= allowance(1, 5)) > 0
    # at p = 1 every adversarial pattern has an entry of modulus c: Lemma 28 is attained
    assert np.all(rank_one["slack_28"] == 0)


# --- the claim ------------------------------------------------------------------------------------


def _grid(etas=(-1, 0, 0.9), bounds_=(0.04, 0.9), patterns=("uniform", "rank_one")):
    return [f"width=5/entry_bound={e}/weight_pattern={pat}/depth=1/activation_slope={eta}/activity=0.2"
            for e in bounds_ for pat in patterns for eta in etas]


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("hard_bounds")
    simulate_study(directory, "hard_bounds", _grid(), 200)
    return directory


def test_claim_is_reproduced_on_real_simulations(results_dir):
    stale = results_dir / COUNTEREXAMPLE
    stale.parent.mkdir(exist_ok=True)
    stale.write_text("from an earlier run")
    outcome = hard_bounds_claim(Results(results_dir), SETTINGS)
    assert outcome.verdict == REPRODUCED, outcome.measured
    assert not stale.exists()  # no violation now: an old counterexample would mislead
    for key in study.BOUNDS:
        assert outcome.evidence[key]["violations"] == 0
        assert outcome.evidence[key]["checks"] > 0
    assert outcome.evidence["85"]["checks"] == 12 * 200
    assert outcome.evidence["88"]["checks"] == 4 * 200  # eta = -1 only
    assert abs(outcome.evidence["86_lower"]["smallest_relative_slack"]) < 1e-12  # rank one, n = 5
    assert "0 of 2,400 checks" in outcome.measured


def test_claim_is_inconclusive_where_a_bound_never_applies(tmp_path):
    simulate_study(tmp_path, "hard_bounds", _grid(etas=(-1,), bounds_=(0.9,), patterns=("uniform",)), 64)
    outcome = hard_bounds_claim(Results(tmp_path), SETTINGS)
    assert outcome.verdict == INCONCLUSIVE
    assert "Theorem 32 (100): never applicable on this grid" in outcome.measured
    assert outcome.evidence["88"]["violations"] == 0


def test_claim_is_not_reproduced_on_a_real_violation_and_saves_its_matrices(tmp_path, monkeypatch):
    # A bound made too strong (kappa <= 1) is violated by every matrix that is not orthogonal: the
    # pipeline must report it, name where, and store matrices that reproduce the violation.
    monkeypatch.setattr(study, "condition_bound_hard", lambda c, n: np.float64(1.0))
    simulate_study(tmp_path, "hard_bounds", _grid(etas=(0,), bounds_=(0.3,), patterns=("uniform",)), 64)
    outcome = hard_bounds_claim(Results(tmp_path), SETTINGS)
    assert outcome.verdict == NOT_REPRODUCED
    assert "first violation: Lemma 29 (87)" in outcome.measured and "sample 0" in outcome.measured
    saved = outcome.evidence["counterexample"]
    assert saved["sample_index"] == 0 and saved["bounds"] == ["87"]
    with h5py.File(tmp_path / COUNTEREXAMPLE, "r") as fh:
        w, d_hidden, d, mo = fh["W"][()], fh["D_hidden"][()], fh["D"][()], fh["Mo"][()]
        violated = json.loads(fh.attrs["violated"])
        assert json.loads(fh.attrs["point_json"])["entry_bound"] == 0.3
    np.testing.assert_allclose(mo, np.diag(d_hidden[0]) @ w[0], rtol=0, atol=1e-15)
    assert sorted(d) == [0.0, 1.0, 1.0, 1.0, 1.0]
    s = reference_singular_values((mo + np.eye(5))[None])[0]
    assert violated["87"]["recomputed_value"] == pytest.approx(s[0] / s[-1], rel=1e-12)
    assert violated["87"]["recorded_value"] == pytest.approx(s[0] / s[-1], rel=1e-12)
    assert s[0] / s[-1] > violated["87"]["bound_value"] == 1.0


def test_claim_is_not_reproduced_on_a_recorded_violation(results_dir, tmp_path):
    """Tampered data (a violation flag set at sample 7 of one grid point) is reported as such, and
    the saved counterexample shows by recomputation that the matrices themselves satisfy the bound."""
    import shutil

    shutil.copy(results_dir / "hard_bounds.h5", tmp_path / "hard_bounds.h5")
    with h5py.File(tmp_path / "hard_bounds.h5", "r+") as fh:
        groups = []
        fh.visititems(lambda name, obj: groups.append(name) if "point_json" in obj.attrs else None)
        target = next(g for g in sorted(groups) if "activation_slope=0/" in g + "/" and "entry_bound=0.04" in g)
        flags = fh[target]["violations_89"][()]
        flags[7] = 1
        fh[target]["violations_89"][...] = flags
    outcome = hard_bounds_claim(Results(tmp_path), SETTINGS)
    assert outcome.verdict == NOT_REPRODUCED
    assert "Theorem 31 (89)" in outcome.measured and "sample 7" in outcome.measured
    saved = outcome.evidence["counterexample"]
    assert saved["recomputed"]["89"] <= saved["bound_values"]["89"]
    assert (tmp_path / COUNTEREXAMPLE).exists()


def test_rounding_allowance_of_kappa_grows_with_kappa():
    assert study.kappa_tolerance(10.0, 5) == pytest.approx(bounds.rounding_tolerance(110.0, 5))


def test_figures_draw_from_real_results_and_skip_a_missing_study(results_dir, tmp_path):
    import matplotlib.pyplot as plt

    from svperturb.analysis.figures.hard_bounds import FIGURES

    for stem, (draw, needs_fits) in FIGURES.items():
        assert not needs_fits
        fig = draw(Results(results_dir))
        assert fig is not None, stem
        assert all(ax.get_xlabel() == "c n" for ax in fig.axes if ax.has_data())
        plt.close(fig)
        assert draw(Results(tmp_path)) is None
