"""Claims 11, 12 and the depth study: the bounds of Lemma 24, Proposition 25, Theorem 39 and
Corollary 40 against hand cases and explicit matrices, the studies relu_layer and depth against
float64 LAPACK (SciPy gesvd) on the matrices rebuilt from the seeded draws, and the verdicts on
real and tampered data."""

from __future__ import annotations

import math
from functools import reduce

import matplotlib.figure
import numpy as np
import pytest
import scipy.linalg

from support.reference import reference_singular_values
from support.studies import simulate_study, tampered_copy
from svperturb.analysis.claims.common import Results
from svperturb.analysis.claims.relu import (
    CLAIMS,
    depth_summary,
    relu_random_weights,
    relu_shrinks,
    samples_needed,
)
from svperturb.analysis.figures.relu import FIGURES
from svperturb.analysis.fit import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, FitSettings
from svperturb.sampling.ensembles import (
    activation_pattern,
    active_count,
    pattern_ranks,
    unit_variance_matrices,
    weight_std,
)
from svperturb.studies import depth, relu_layer
from svperturb.theory import bounds

SETTINGS = FitSettings(bootstrap=50, seed=1)
SEED = 20220307
EPS = np.finfo(float).eps


def _reference_kappa(s):
    """s_1 / s_* with s_* the smallest singular value above n eps s_1 (spectra's rule)."""
    tol = s.shape[-1] * EPS * s[..., :1]
    s_star = np.where(s > tol, s, np.inf).min(axis=-1)
    return s[..., 0], s_star, s[..., 0] / s_star


# ---------------------------------------------------------------------------------------------
# bounds.py


def test_nu_counts_the_entries_that_the_two_patterns_change():
    rng = np.random.default_rng(0)
    for n, m, m_left in ((8, 2, 2), (7, 3, 5), (5, 0, 1), (6, 6, 6)):
        d = activation_pattern(rng.permutation(n)[None], m, 0.0)[0]
        d1 = activation_pattern(rng.permutation(n)[None], m_left, 0.0)[0]
        changed = np.sum((d1[:, None] == 0) | (d[None, :] == 0))  # entries of W1 that D1 W1 D zeroes
        assert n * bounds.relu_interaction(m, m_left, n) == pytest.approx(changed)
    assert bounds.relu_interaction(2, 2, 8) == pytest.approx(3.5)


def test_theorem39_and_corollary40_closed_forms_and_hypotheses():
    # n = 16, m = m~ = 8: nu = 12, r = 50, theta = 5.5: 2 + 2 nu + theta = 31.5
    assert bounds.relu_condition_bound_spectral(16, 12.0, 50.0, 5.5) == pytest.approx(2 * 1.02 / (1 - 31.5 / 50))
    assert bounds.relu_condition_bound_symmetric(16, 12.0, 50.0, 5.5, 0.01) == pytest.approx(2 * 1.01 / (1 - 31.5 / 50))
    assert bounds.relu_condition_bound_symmetric(16, 12.0, 50.0, 5.5, 0.01, r_prime=3.0) == pytest.approx(
        2 * 1.01 / (1 - (3 + 36 + 5.5) / 50))
    c, upper = bounds.relu_uniform_singular_value_bounds(16, 50.0, 5.5)
    assert (c, upper) == (pytest.approx((1 - 39.5 / 50) / 2), pytest.approx(1.02))
    assert bounds.relu_condition_bound_uniform(16, 50.0, 5.5) == pytest.approx(1.02 / 0.105)
    # hypotheses: theta in (4, 2 sqrt(n)], r > 2 + 2 nu + theta (2 + 2 n + theta for Corollary 40), nu >= 1
    for args in ((16, 12.0, 50.0, 4.0), (16, 12.0, 50.0, 8.01), (16, 12.0, 31.5, 5.5), (16, 0.5, 50.0, 5.5)):
        assert np.isnan(bounds.relu_condition_bound_spectral(*args))
    assert np.isnan(bounds.relu_condition_bound_symmetric(16, 12.0, 50.0, 5.5, 0.01, r_prime=1.0))
    assert np.isnan(bounds.relu_condition_bound_uniform(16, 39.5, 5.5))
    assert np.isfinite(bounds.relu_condition_bound_uniform(16, 39.6, 5.5))
    assert bounds.relu_bound_probability(4.5) == pytest.approx(1 - 2 * math.exp(-10.125))


def test_relu_bounds_on_a_hand_case():
    # M = diag(3, 2, 1), D zeroes column 2: s(M) = (3, 2, 1), s(M D) = (3, 1, 0)
    m = np.diag([3.0, 2.0, 1.0])
    d = np.array([1.0, 0.0, 1.0])
    s, s_md = np.array([3.0, 2.0, 1.0]), np.array([3.0, 1.0, 0.0])
    assert np.allclose(np.linalg.svd(m * d[None, :], compute_uv=False), s_md)
    assert np.array_equal(bounds.singular_value_shrinkage(s, s_md), [0.0, 1.0, 1.0])
    removed = ((m * (1 - d)[None, :]) ** 2).sum()
    members = bounds.relu_energy_identity(s, s_md, (m**2).sum(), ((m * d) ** 2).sum(), removed)
    assert members == (pytest.approx(4.0),) * 4
    assert bounds.relu_perturbation_sum(s, s_md) == pytest.approx(2.0)
    assert bounds.relu_perturbation_bound(removed) == pytest.approx(4.0)


@pytest.mark.parametrize("eta", [0.0, 0.1, 0.5])
def test_lemma24_and_proposition25_on_random_matrices(eta):
    rng = np.random.default_rng(1)
    n = 7
    for _ in range(200):
        mat = rng.standard_normal((n, n)) * rng.uniform(0.01, 3) + rng.uniform(0, 1) * np.eye(n)
        d = activation_pattern(rng.permutation(n)[None], int(rng.integers(0, n + 1)), eta)[0]
        s = reference_singular_values(mat[None])[0]
        tol = 16 * n * EPS * s[0]
        for masked in (mat * d[None, :], d[:, None] * mat):
            t = reference_singular_values(masked[None])[0]
            # (80) for every i: s_i(M D) <= s_i(M) ||D|| and ||D|| = 1 for |eta| <= 1
            assert np.all(bounds.singular_value_shrinkage(s, t) >= -tol)
            removed = ((mat - masked) ** 2).sum()  # = the zeroed columns' (rows') energy at eta = 0
            lhs = bounds.relu_perturbation_sum(s, t)
            assert lhs <= bounds.relu_perturbation_bound(removed) + 16 * n * EPS * (mat**2).sum()
            if eta == 0:
                members = bounds.relu_energy_identity(s, t, (mat**2).sum(), (masked**2).sum(), removed)
                assert np.ptp(members) <= 16 * n * EPS * (mat**2).sum()


# ---------------------------------------------------------------------------------------------
# study relu_layer

RELU_POINT = {"distribution": "gaussian", "width": 6, "weight_scale": 50.0, "activation_slope": 0.0,
              "activity": 0.5, "skip": [0.0, 0.5, 1.0], "theta": [4.0, 4.2, 4.9], "seed": SEED}


def _relu_matrices(point, start, stop):
    n = point["width"]
    m = active_count(n, point["activity"])
    name = relu_layer.NAME
    w = unit_variance_matrices(point["seed"], name, n, point["distribution"], start, stop) * weight_std(
        n, point["weight_scale"])
    d1 = activation_pattern(pattern_ranks(point["seed"], name, n, "left", start, stop), m, point["activation_slope"])
    d = activation_pattern(pattern_ranks(point["seed"], name, n, "right", start, stop), m, point["activation_slope"])
    return w, d1, d


def test_relu_layer_matches_explicit_matrices():
    point = RELU_POINT
    n, r = point["width"], point["weight_scale"]
    out, spectra = relu_layer.simulate(point, 0, 96, np)
    w, d1, d = _relu_matrices(point, 0, 96)
    s_w = reference_singular_values(w)
    assert np.allclose(out["s1_W"], s_w[:, 0], rtol=1e-12)
    tau = np.array([np.linalg.eigvalsh(a + a.T)[0] for a in w])
    assert np.allclose(out["tau_low_W"], tau, atol=1e-14)
    for j, rho in enumerate(point["skip"]):
        a = (np.einsum("bi,bij->bij", d1, w) + rho * np.eye(n)) * d[:, None, :]
        s1, s_star, kappa = _reference_kappa(reference_singular_values(a))
        assert np.allclose(out["s1"][:, j], s1, rtol=1e-12)
        assert np.allclose(out["s_star"][:, j], s_star, rtol=1e-8)
        assert np.allclose(out["kappa"][:, j], kappa, rtol=1e-8)
        assert np.allclose(spectra["singular_values"][:, j], reference_singular_values(a), atol=1e-14)
        assert (out["violations_80"][:, j] == 0).all() and (out["violations_82"][:, j] == 0).all()
        assert np.nanmax(out["identity_81_error"][:, j]) <= 16 * n * EPS
    # Theorem 39 at rho = 1: theta = 4 is outside 4 < theta <= 2 sqrt(6) = 4.899, so only 4.2 applies
    m = active_count(n, point["activity"])
    nu = bounds.relu_interaction(m, m, n)
    kappa = out["kappa"][:, 2]
    assert (out["holds_128"][:, [0, 2]] == -1).all() and np.isnan(out["ratio_128"][:, [0, 2]]).all()
    assert np.allclose(out["ratio_128"][:, 1], kappa / bounds.relu_condition_bound_spectral(n, nu, r, 4.2))
    assert np.allclose(out["ratio_129"][:, 1],
                       kappa / bounds.relu_condition_bound_symmetric(n, nu, r, 4.2, s_w[:, 0]))
    assert np.allclose(out["ratio_151"][:, 1], kappa / bounds.relu_condition_bound_uniform(n, r, 4.2))
    for key in ("128", "129", "151"):
        assert (out[f"holds_{key}"][:, 1] == 1).all()


def test_relu_layer_outside_theorem39_marks_not_applicable():
    uniform = {**RELU_POINT, "distribution": "uniform"}
    out, _ = relu_layer.simulate(uniform, 0, 20, np)
    assert (out["holds_128"] == -1).all() and np.isfinite(out["ratio_128"][:, 1]).all()  # reported, not judged
    leaky = {**RELU_POINT, "activation_slope": 0.1}
    out, _ = relu_layer.simulate(leaky, 0, 20, np)
    assert (out["holds_151"] == -1).all() and np.isnan(out["ratio_151"]).all()
    assert np.isnan(out["identity_81_error"]).all() and np.isnan(out["s1_W"]).all()
    assert (out["violations_80"] == 0).all()  # every i, although the paper claims only i = 1


def test_relu_layer_does_not_depend_on_the_split():
    whole, _ = relu_layer.simulate(RELU_POINT, 0, 150, np)
    parts = [relu_layer.simulate(RELU_POINT, a, b, np)[0] for a, b in ((0, 37), (37, 64), (64, 150))]
    for name, values in whole.items():
        assert np.array_equal(values, np.concatenate([p[name] for p in parts]), equal_nan=True), name


# ---------------------------------------------------------------------------------------------
# study depth

DEPTH_POINT = {"distribution": "gaussian", "width": 5, "weight_scale": 2.0, "activation_slope": 0.1,
               "activity": 0.4, "depth": 3, "skip": [0.0, 0.5, 1.0], "seed": SEED}


def test_depth_matches_explicit_products():
    point = DEPTH_POINT
    n, p, r = point["width"], point["depth"], point["weight_scale"]
    m = active_count(n, point["activity"])
    out, spectra = depth.simulate(point, 0, 80, np)
    layers = []
    for k in range(1, p + 1):
        stream = "weights" if k == 1 else f"weights/layer={k}"
        w = unit_variance_matrices(SEED, "depth", n, "gaussian", 0, 80, stream=stream) * weight_std(n, r)
        dk = activation_pattern(pattern_ranks(SEED, "depth", n, f"layer={k}", 0, 80), m, 0.1)
        layers.append(np.einsum("bi,bij->bij", dk, w))
    d = activation_pattern(pattern_ranks(SEED, "depth", n, "right", 0, 80), m, 0.1)
    for j, rho in enumerate(point["skip"]):
        mo = np.array([np.linalg.multi_dot([layers[k][b] for k in reversed(range(p))]) for b in range(80)])
        single = (mo + rho * np.eye(n)) * d[:, None, :]
        per_layer = np.array([reduce(lambda acc, k: (layers[k][b] + rho * np.eye(n)) @ acc, range(p),
                                     np.eye(n)) for b in range(80)]) * d[:, None, :]
        for arch, a in (("single", single), ("layers", per_layer)):
            s1, s_star, kappa = _reference_kappa(reference_singular_values(a))
            assert np.allclose(out[f"s1_{arch}"][:, j], s1, rtol=1e-12)
            assert np.allclose(out[f"kappa_{arch}"][:, j], kappa, rtol=1e-8), (arch, rho)
            assert np.allclose(out[f"s_star_{arch}"][:, j], s_star, rtol=1e-8)
            assert np.allclose(spectra[f"singular_values_{arch}"][:, j], reference_singular_values(a), atol=1e-13)
    assert np.array_equal(out["kappa_single"][:, 0], out["kappa_layers"][:, 0])  # rho = 0: both the ConvNet
    assert (out["rank_single"] == n).all() and (out["rank_layers"] == n).all()
    relu = {**point, "activation_slope": 0.0}
    out, _ = depth.simulate(relu, 0, 40, np)
    assert depth.expected_rank(relu) == n - m
    assert (out["rank_single"] == n - m).all() and (out["rank_layers"] == n - m).all()
    hidden, right = depth.layer_matrices(relu, 0, 40)  # ConvNet at eta = 0: the block route
    conv = np.array([np.linalg.multi_dot([hidden[k][b] for k in reversed(range(p))]) for b in range(40)])
    _, s_star, kappa = _reference_kappa(reference_singular_values(conv * right[:, None, :]))
    assert np.allclose(out["s_star_single"][:, 0], s_star, rtol=1e-8)
    assert np.allclose(out["kappa_layers"][:, 0], kappa, rtol=1e-8)


def _qr_chain_smallest_singular_value(factors, column_scale):
    """s_n of F_p ... F_1 diag(column_scale) by the QR chain F_k Q_(k-1) = Q_k R_k (Q_0 = I after the
    diagonal): s_n = 1 / s_1(diag^-1 R_1^-1 ... R_p^-1) with triangular solves (SciPy), an independent
    route to the inverse product of studies.depth."""
    n = factors[0].shape[0]
    q = np.eye(n)
    inverse = np.diag(1 / column_scale)
    for f in factors:
        q, r = scipy.linalg.qr(f @ q)
        inverse = inverse @ scipy.linalg.solve_triangular(r, np.eye(n))
    return 1 / scipy.linalg.svd(inverse, compute_uv=False, lapack_driver="gesvd")[0]


def test_depth_draws_its_layers_once_per_block(monkeypatch):
    """The ConvNet's s_* at rho = 0 (the inverse product) reuses the block's draws: one _draws
    call per simulate, the same values as drawing them again (test above)."""
    calls = []
    draws = depth._draws
    monkeypatch.setattr(depth, "_draws", lambda *args: calls.append(args) or draws(*args))
    depth.simulate(DEPTH_POINT, 0, 12, np)
    assert len(calls) == 1


def test_depth_convnet_kappa_beyond_the_direct_svd():
    # n = 16, p = 8, eta = 0.1: kappa ~ 5e12, the direct SVD loses s_* in a large share of samples
    point = {**DEPTH_POINT, "width": 16, "activity": 0.5, "depth": 8}
    out, _ = depth.simulate(point, 0, 24, np)
    hidden, right = depth.layer_matrices(point, 0, 24)
    reference = np.array([_qr_chain_smallest_singular_value([h[b] for h in hidden], right[b]) for b in range(24)])
    assert np.allclose(out["s_star_single"][:, 0], reference, rtol=1e-6)
    assert (out["rank_single"][:, 0] < 16).any()  # the regime where the direct route fails
    assert (out["kappa_single"][:, 0] > 1e10).all()


def test_depth_layers_are_paired_and_independent():
    shallow, _ = depth.layer_matrices({**DEPTH_POINT, "depth": 1}, 0, 2000)
    deep, right = depth.layer_matrices({**DEPTH_POINT, "depth": 2}, 0, 2000)
    assert np.array_equal(shallow[0], deep[0])  # layer 1 is the same at every depth
    # layers 1 and 2 are independent: the sample correlation of their norms is N(0, 1/N) under
    # independence; 4 standard deviations
    a, b = (np.linalg.norm(x, axis=(1, 2)) for x in deep)
    assert abs(np.corrcoef(a, b)[0, 1]) < 4 / math.sqrt(len(a))
    # the hidden pattern D_1 and the trained layer's D come from different streams
    first_left = pattern_ranks(SEED, "depth", 5, "layer=1", 0, 2000)[:, 0]
    first_right = pattern_ranks(SEED, "depth", 5, "right", 0, 2000)[:, 0]
    assert abs(np.corrcoef(first_left == 0, first_right == 0)[0, 1]) < 4 / math.sqrt(len(a))
    assert right.shape == (2000, 5)


def test_depth_does_not_depend_on_the_split():
    whole, _ = depth.simulate(DEPTH_POINT, 0, 130, np)
    parts = [depth.simulate(DEPTH_POINT, a, b, np)[0] for a, b in ((0, 64), (64, 100), (100, 130))]
    for name, values in whole.items():
        assert np.array_equal(values, np.concatenate([p[name] for p in parts])), name


# ---------------------------------------------------------------------------------------------
# claims 11, 12, depth summary and figures on real (small) simulations


THETA = 4.1
ENOUGH = samples_needed(THETA, 0.95) + 100  # zero failures reach the guarantee


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("relu")
    simulate_study(directory, "relu_layer",
                   [f"distribution=gaussian/width=8/weight_scale=50/activation_slope={eta}/activity=0.25"
                    for eta in (0, 0.1)], ENOUGH, "--skip", "0", "1", "--theta", str(THETA))
    simulate_study(directory, "depth",
                   [f"distribution=gaussian/width=6/weight_scale=2/activation_slope=0/activity=0.5/depth={p}"
                    for p in (1, 2)], 300, "--skip", "0", "1")
    return directory


def test_samples_needed_is_the_smallest_sufficient_count():
    for theta in (4.1, 4.5):
        n = samples_needed(theta, 0.95)
        g = 1 - 2 * math.exp(-theta**2 / 2)
        assert 0.05 ** (1 / n) >= g > 0.05 ** (1 / (n - 1))


def test_claims_are_reproduced_on_simulated_data(results_dir):
    results = Results(results_dir)
    eleven = relu_random_weights(results, SETTINGS)
    assert eleven.verdict == REPRODUCED, eleven.measured
    assert eleven.evidence["cells"] == 3  # one cell per bound: n = 8, r = 50, m/n = 1/4, theta = 4.1
    twelve = relu_shrinks(results, SETTINGS)
    assert twelve.verdict == REPRODUCED, twelve.measured
    assert twelve.evidence["80"]["checks"] == 2 * ENOUGH * 2 * 8
    assert [c.id for c in CLAIMS] == [11, 12]


def test_too_few_samples_leave_claim_11_inconclusive(results_dir, tmp_path):
    simulate_study(tmp_path, "relu_layer",
                   ["distribution=gaussian/width=8/weight_scale=50/activation_slope=0/activity=0.25"],
                   300, "--skip", "0", "1", "--theta", str(THETA))
    assert relu_random_weights(Results(tmp_path), SETTINGS).verdict == INCONCLUSIVE


def test_frequent_failures_make_claim_11_not_reproduced(results_dir, tmp_path):
    def fail_one_percent(holds):
        holds[:: 100, 0] = 0

    outcome = relu_random_weights(
        tampered_copy(results_dir, tmp_path, "relu_layer", {"holds_151": fail_one_percent},
                      where="activation_slope=0/"), SETTINGS)
    assert outcome.verdict == NOT_REPRODUCED
    assert [c["verdict"] for c in outcome.fits["cells"] if c["bound"] == "151"] == [NOT_REPRODUCED]


@pytest.mark.parametrize("dataset, value, eta", [("violations_80", 1, 0.0), ("violations_80_first", 1, 0.1),
                                                 ("violations_82", 1, 0.0), ("identity_81_error", 1e-9, 0.0)])
def test_one_violation_makes_claim_12_not_reproduced(results_dir, tmp_path, dataset, value, eta):
    def spoil(values):
        values[7, 1] = value

    broken = tampered_copy(results_dir, tmp_path, "relu_layer", {dataset: spoil},
                           where=f"activation_slope={eta:g}/")
    assert relu_shrinks(broken, SETTINGS).verdict == NOT_REPRODUCED


def test_depth_summary(results_dir):
    measured, evidence, fits = depth_summary(Results(results_dir), SETTINGS)
    assert fits["depth"] == evidence["rows"]
    assert "p = 1" in measured and "p = 2" in measured
    rows = evidence["rows"]
    assert [row["depth"] for row in rows] == [1, 2] and rows[0]["samples"] == 300
    assert all(row[f"{arch}_rank_deficient"] == 0 for row in rows for arch in ("conv", "single", "layers"))
    assert all(row["P_conv_ge_single_ci"][0] <= row["P_conv_ge_single"] <= row["P_conv_ge_single_ci"][1]
               for row in rows)
    assert depth_summary(Results(results_dir / "nowhere"), SETTINGS)[1] == {}


def test_figures_draw_and_skip_missing_studies(results_dir, tmp_path):
    for stem, (draw, needs_fits) in FIGURES.items():
        assert not needs_fits
        assert isinstance(draw(Results(results_dir)), matplotlib.figure.Figure), stem
        assert draw(Results(tmp_path)) is None, stem
