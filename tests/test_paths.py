"""Claims 15 and 16: rho-paths (Figure 2), the toy network (Figure 8) and its linearisation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from support.reference import reference_singular_values
from support.studies import simulate_study, tampered_copy
from svperturb.analysis.claims import Results
from svperturb.analysis.claims import paths as claims_paths
from svperturb.analysis.claims.paths import (
    figure_2,
    figure_2a_check,
    figure_2a_closed_form,
    figure_2a_paths,
    non_increasing,
    toy_network,
)
from svperturb.analysis.figures.paths import FIGURES
from svperturb.analysis.fit import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, FitSettings
from svperturb.config import skip_path
from svperturb.linalg.spectra import condition_number
from svperturb.sampling.ensembles import unit_variance_matrices
from svperturb.studies import rho_paths
from svperturb.studies import toy_network as toy_study
from svperturb.theory.network import (
    activation_pattern_of,
    forward,
    kronecker_singular_values,
    leaky_relu,
    local_affine_form,
    subsequent_matrix,
    toy_targets,
)

SEED = 20220307
SETTINGS = FitSettings(bootstrap=20, seed=1)


def _toy_point(skip, width=6, eta=0.1):
    return {"width": width, "activation_slope": eta, "skip": list(skip), "seed": SEED}


def _paths_point(skip, width=15):
    return {"distribution": "gaussian", "width": width, "skip": list(skip), "seed": SEED}


# ---------------------------------------------------------------------------------------------
# The network and its linearisation


def test_forward_pass_matches_a_hand_computation():
    eta = 0.1
    x = np.array([1.0, -2.0])
    w0, b0 = np.array([[1.0, 1.0], [2.0, 0.5], [0.0, -1.0]]), np.array([0.5, 0.0, -3.0])
    w1, b1 = np.array([[1.0, -1.0, 2.0], [0.5, 0.5, 0.5], [-1.0, 0.0, 1.0]]), np.array([0.0, -1.0, 0.0])
    fp = forward(x, [w0, w1], [b0, b1], eta, [0.0, 0.5])
    t0 = np.array([1 - 2 + 0.5, 2 - 1, 2 - 3])  # [-0.5, 1, -1]
    z1 = np.array([-0.05, 1.0, -0.1])
    t1 = np.array([-0.05 - 1 - 0.2, 0.5 * (-0.05 + 1 - 0.1) - 1, 0.05 - 0.1])  # [-1.25, -0.575, -0.05]
    np.testing.assert_allclose(fp.preactivations[0], t0)
    np.testing.assert_allclose(fp.inputs[1], z1)
    np.testing.assert_allclose(fp.preactivations[1], t1)
    np.testing.assert_array_equal(fp.patterns[0], [eta, 1, eta])
    np.testing.assert_array_equal(fp.patterns[1], [eta, eta, eta])
    np.testing.assert_allclose(fp.output, eta * t1 + 0.5 * z1)


def test_leaky_relu_and_patterns():
    t = np.array([-2.0, -0.0, 0.0, 3.0])
    np.testing.assert_array_equal(leaky_relu(t, 0.1), [-0.2, 0, 0, 3])
    np.testing.assert_array_equal(leaky_relu(t, -1), np.abs(t))
    np.testing.assert_array_equal(activation_pattern_of(t, 0.1) * t, leaky_relu(t, 0.1))
    with pytest.raises(ValueError):
        leaky_relu(t, 1.5)


def _toy_network(samples=20, rho=0.7, n=6):
    x, weights, biases = toy_study.network_draws(SEED, n, 0, samples)
    skips = [0.0, 0.0, rho, 0.0]
    return x, weights, biases, skips, forward(x, weights, biases, 0.1, skips)


def test_subsequent_matrix_is_D2_W2_times_D1_W1_plus_rho_I():
    rho = 0.7
    _, weights, _, skips, fp = _toy_network(rho=rho)
    d1, d2 = fp.patterns[2], fp.patterns[3]
    expected = np.einsum("si,sij,sjk->sik", d2, weights[3], d1[:, :, None] * weights[2] + rho * np.eye(6))
    np.testing.assert_allclose(subsequent_matrix(weights, fp.patterns, skips, 1), expected, rtol=1e-13, atol=1e-13)


def test_local_affine_form_is_the_network_inside_its_region():
    """y_hat = M D W z + B (42) holds at the network's own W0, and stays exact for a change of W0
    small enough to keep every pattern (the network is affine in W0 inside the region)."""
    x, weights, biases, skips, fp = _toy_network(samples=50)
    m, offset = local_affine_form(fp, weights, biases, 1, skips)
    d, w, z = fp.patterns[1], weights[1], fp.inputs[1]
    predicted = np.einsum("sij,sj->si", m * d[:, None, :], np.einsum("sij,sj->si", w, z)) + offset
    np.testing.assert_allclose(predicted, fp.output, rtol=1e-12, atol=1e-12)
    step = 1e-6 * np.random.default_rng(0).standard_normal(w.shape)
    moved = [*weights[:1], w + step, *weights[2:]]
    fp2 = forward(x, moved, biases, 0.1, skips)
    same = np.ones(len(x), bool)
    for p1, p2 in zip(fp.patterns, fp2.patterns):
        same &= (p1 == p2).all(axis=-1)
    assert same.sum() >= 40
    linear = np.einsum("sij,sj->si", m * d[:, None, :], np.einsum("sij,sj->si", w + step, z)) + offset
    np.testing.assert_allclose(linear[same], fp2.output[same], rtol=1e-10, atol=1e-12)


def test_subsequent_matrix_is_the_jacobian_of_the_later_layers():
    """Central finite differences of z1 -> output against M (where no pattern flips)."""
    _, weights, biases, skips, fp = _toy_network(samples=10)
    m = subsequent_matrix(weights, fp.patterns, skips, 1)
    z1 = fp.inputs[2]
    h = 1e-6
    for s in range(10):
        def tail(v, s=s):
            out = forward(v, [w[s] for w in weights[2:]], [b[s] for b in biases[2:]], 0.1, skips[2:])
            return out.output, out.patterns
        base_patterns = tail(z1[s])[1]
        columns = []
        for j in range(6):
            e = np.zeros(6)
            e[j] = h
            (plus, p_plus), (minus, p_minus) = tail(z1[s] + e), tail(z1[s] - e)
            assert all((a == b).all() and (a == c).all() for a, b, c in zip(base_patterns, p_plus, p_minus))
            columns.append((plus - minus) / (2 * h))
        np.testing.assert_allclose(np.stack(columns, axis=1), m[s], rtol=1e-7, atol=1e-7)


def test_kronecker_singular_values_match_an_explicit_kron():
    """(51): s(diag(z) (x) MD) = s_i(MD) |z[j]|, against np.kron and SciPy's gesvd; and (54)."""
    rng = np.random.default_rng(3)
    md = rng.standard_normal((5, 6, 6))
    z = rng.standard_normal((5, 4))
    q = np.stack([np.kron(np.diag(z[s]), md[s]) for s in range(5)])  # 24 x 24
    reference = reference_singular_values(q)
    fast = kronecker_singular_values(reference_singular_values(md), z)
    np.testing.assert_allclose(fast, reference, rtol=1e-12, atol=1e-13 * reference.max())
    kappa_z = np.abs(z).max(axis=1) / np.abs(z).min(axis=1)
    np.testing.assert_allclose(condition_number(fast), condition_number(reference_singular_values(md)) * kappa_z,
                               rtol=1e-12)


def test_toy_targets():
    np.testing.assert_allclose(toy_targets(np.array([3.0, -4.0])), [3, -4, -0.5, 3, -4, 5])


# ---------------------------------------------------------------------------------------------
# The toy_network study


def _independent_kappa(sample: int, rho: float, eta=0.1):
    """kappa(Q) of one sample by plain loops, np.kron and SciPy's gesvd."""
    x, weights, biases = toy_study.network_draws(SEED, 6, sample, sample + 1)
    z = x[0]
    inputs, patterns = [], []
    for k, (w, b) in enumerate(zip(weights, biases)):
        t = w[0] @ z + b[0]
        inputs.append(z)
        patterns.append(np.where(t >= 0, 1.0, eta))
        z = np.maximum(t, eta * t) + (rho * z if k == 2 else 0)
    m = np.diag(patterns[3]) @ weights[3][0] @ (np.diag(patterns[2]) @ weights[2][0] + rho * np.eye(6))
    q = np.kron(np.diag(inputs[1]), m @ np.diag(patterns[1]))
    s = scipy.linalg.svd(q, compute_uv=False, lapack_driver="gesvd")
    return s[0] / s[-1], z


def test_toy_network_study_matches_an_independent_computation():
    skips = skip_path(11)
    per_sample, spectra = toy_study.simulate(_toy_point(skips), 0, 6, np)
    for sample in range(6):
        for j, rho in enumerate(skips):
            kappa, _ = _independent_kappa(sample, rho)
            assert per_sample["kappa_Q"][sample, j] == pytest.approx(kappa, rel=1e-6)
    assert spectra["singular_values_Q"].shape == (6, 11, 36)
    np.testing.assert_allclose(per_sample["kappa_Q"], per_sample["kappa_MD"] * per_sample["kappa_diag_z"][:, None],
                               rtol=1e-12)


def test_only_the_last_pattern_moves_with_rho_and_poles_are_singular_points():
    skips = skip_path(51)
    per_sample, _ = toy_study.simulate(_toy_point(skips), 0, 200, np)
    for k in (-1, 0, 1):
        assert per_sample[f"pattern_changes_layer={k}"].sum() == 0
    assert (per_sample["pattern_changes_layer=2"] > 0).sum() > 0
    # a pole: D1 W1 + rho I singular at rho = -lambda, so s_min(MD) = 0 there
    x, weights, biases = toy_study.network_draws(SEED, 6, 0, 200)
    sample = int(np.argmax(per_sample["kappa_poles"] > 0))
    fp = forward(x[sample], [w[sample] for w in weights], [b[sample] for b in biases], 0.1)
    eig = np.linalg.eigvals(fp.patterns[2][:, None] * weights[2][sample])
    rho = -eig[(eig.imag == 0) & (eig.real <= 0) & (eig.real >= -1)].real[0]
    fp = forward(x[sample], [w[sample] for w in weights], [b[sample] for b in biases], 0.1, [0, 0, rho, 0])
    m = subsequent_matrix([w[sample] for w in weights], fp.patterns, [0, 0, rho, 0], 1)
    s = np.linalg.svd(m * fp.patterns[1], compute_uv=False)
    assert s[-1] < 1e-12 * s[0]


@pytest.mark.parametrize("study, point", [
    (toy_study, _toy_point(skip_path(6))),
    (rho_paths, _paths_point(skip_path(11), width=5)),
])
def test_draws_do_not_depend_on_how_samples_are_split(study, point):
    whole_ps, whole_sp = study.simulate(point, 0, 100, np)
    parts = [study.simulate(point, a, b, np) for a, b in ((0, 37), (37, 64), (64, 100))]
    for name, values in whole_ps.items():
        np.testing.assert_array_equal(values, np.concatenate([p[0][name] for p in parts]), err_msg=name)
    for name, values in whole_sp.items():
        np.testing.assert_array_equal(values, np.concatenate([p[1][name] for p in parts]), err_msg=name)


# ---------------------------------------------------------------------------------------------
# The rho_paths study


def test_extrema_on_hand_made_paths():
    paths = np.array([[0, 1, 2, 1, 0], [3, 2, 2, 2, 3], [1, 1, 1, 1, 1], [0, 1, 2, 3, 4],
                      [1, 0, 1, 0, 1]], dtype=float).T[None]  # (1, R = 5, 5 "singular values")
    maxima, minima = rho_paths.interior_extrema(paths, 1e-12)
    np.testing.assert_array_equal(maxima[0].sum(axis=0), [1, 0, 0, 0, 1])
    np.testing.assert_array_equal(minima[0].sum(axis=0), [0, 1, 0, 0, 2])
    noisy = paths + 1e-15 * np.random.default_rng(0).standard_normal(paths.shape)
    m2, n2 = rho_paths.interior_extrema(noisy, 1e-12)
    np.testing.assert_array_equal(m2.sum(axis=1), maxima.sum(axis=1))
    np.testing.assert_array_equal(n2.sum(axis=1), minima.sum(axis=1))


def test_rho_paths_against_reference_svd_and_theory():
    skips = skip_path(201)
    per_sample, spectra = rho_paths.simulate(_paths_point(skips), 0, 40, np)
    paths = spectra["singular_values"]
    mo = rho_paths.SIGMA * unit_variance_matrices(SEED, "rho_paths", 15, "gaussian", 0, 40)
    stack = mo[:3, None] + np.array(skips)[None, :, None, None] * np.eye(15)
    np.testing.assert_allclose(paths[:3], reference_singular_values(stack), rtol=0, atol=1e-13)
    # s_1 of an affine family is a norm: convex in rho
    assert per_sample["s1_slope_drop"].max() <= 1e-10
    assert (per_sample["n_extrema"][:, 0] <= 1).all()
    # kinks seen on the grid are the zeros of s_n (real eigenvalues of Mo in [-1, 0]), unless two
    # zeros share a grid step or one sits within a step of an end
    h = 1 / 200
    eig = np.linalg.eigvals(mo)
    for s in np.nonzero(per_sample["kinks_on_grid"] != per_sample["zeros_of_s_min"])[0]:
        zeros = np.sort(-eig[s][(eig[s].imag == 0) & (eig[s].real <= 0) & (eig[s].real >= -1)].real)
        assert (np.diff(zeros) < 2 * h).any() or zeros.min() < h or zeros.max() > 1 - h


def test_figure_2a_paths_are_the_closed_form():
    for points in (201, 200, 7):
        rhos = skip_path(points)
        np.testing.assert_allclose(figure_2a_paths(rhos), figure_2a_closed_form(rhos), rtol=0, atol=1e-15)
    check = figure_2a_check(skip_path(201))
    assert check["passed"] and check["s1_argmin_rho"] == 0.25
    assert figure_2a_check(skip_path(200))["passed"]  # 0.25 not on this grid: nearest point


# ---------------------------------------------------------------------------------------------
# Claims and figures on real (small) simulations


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("paths")
    # 3000 paths on a coarse grid: enough for a Clopper-Pearson upper bound below 1e-3 at 0 events
    simulate_study(directory, "rho_paths", ["distribution=gaussian/width=15"], 3000,
                   "--skip", *map(str, skip_path(26)))
    simulate_study(directory, "toy_network", ["width=6/activation_slope=0.1"], 300,
                   "--skip", *map(str, skip_path(51)))
    return directory


def test_claim_15_reproduced_on_simulated_paths(results_dir):
    outcome = figure_2(Results(results_dir), SETTINGS)
    assert outcome.verdict == REPRODUCED, outcome.measured
    assert outcome.evidence["a"]["passed"]
    assert outcome.evidence["gaussian/width=15"]["two_isolated_extrema"]["count"] > 0


def test_claim_15_not_reproduced_without_multiple_extrema(results_dir, tmp_path):
    results = tampered_copy(results_dir, tmp_path, "rho_paths", {"two_isolated_extrema": np.zeros_like})
    outcome = figure_2(results, SETTINGS)
    assert outcome.verdict == NOT_REPRODUCED
    assert outcome.evidence["verdicts"] == {"a": REPRODUCED, "b": NOT_REPRODUCED}


def test_claim_15_part_a_fails_if_the_paths_were_wrong(results_dir, monkeypatch):
    monkeypatch.setattr(claims_paths, "singular_values", lambda a: np.linalg.svd(1.001 * a, compute_uv=False))
    outcome = figure_2(Results(results_dir), SETTINGS)
    assert outcome.evidence["verdicts"]["a"] == NOT_REPRODUCED and outcome.verdict == NOT_REPRODUCED


def test_claim_16_not_reproduced_on_simulated_networks(results_dir):
    outcome = toy_network(Results(results_dir), SETTINGS)
    assert outcome.verdict == NOT_REPRODUCED, outcome.measured
    stats = outcome.evidence["width=6/activation_slope=0.1"]
    assert stats["earlier_pattern_changes"] == 0
    assert stats["kappa_non_increasing"]["N"] == 300


def test_claim_16_reproduced_when_kappa_decreases(results_dir, tmp_path):
    def decreasing(kappa):
        return -np.sort(-kappa, axis=1)

    results = tampered_copy(results_dir, tmp_path, "toy_network", {"kappa_Q": decreasing})
    assert non_increasing(results.points("toy_network")[0]["kappa_Q"]).all()
    assert toy_network(results, SETTINGS).verdict == REPRODUCED


def test_claim_16_inconclusive_on_eight_realisations(tmp_path):
    simulated, tampered = tmp_path / "simulated", tmp_path / "tampered"
    tampered.mkdir()
    simulate_study(simulated, "toy_network", ["width=6/activation_slope=0.1"], 8,
                   "--skip", *map(str, skip_path(11)))
    results = tampered_copy(simulated, tampered, "toy_network",
                            {"kappa_Q": lambda k: -np.sort(-k, axis=1)})
    outcome = toy_network(results, SETTINGS)
    assert outcome.verdict == INCONCLUSIVE  # 8 of 8 monotone: CP lower bound 0.05^(1/8) = 0.69 < 0.95


def test_claims_inconclusive_without_their_studies(tmp_path):
    assert figure_2(Results(tmp_path), SETTINGS).verdict == INCONCLUSIVE
    assert toy_network(Results(tmp_path), SETTINGS).verdict == INCONCLUSIVE


def test_figures_draw(results_dir, tmp_path):
    import matplotlib.pyplot as plt

    for stem, (draw, needs_fits) in FIGURES.items():
        assert not needs_fits
        fig = draw(Results(results_dir))
        assert fig is not None, stem
        fig.savefig(tmp_path / f"{stem}.png", dpi=40)
        plt.close(fig)
        assert draw(Results(tmp_path)) is None
