"""ensembles.py: paired, split-independent seeding (docs/studies.md, The grid and seeding), the weight laws, (111) and (78)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from svperturb.sampling import ensembles
from svperturb.sampling.ensembles import (
    DISTRIBUTIONS,
    SEED_CHUNK,
    WEIGHT_PATTERNS,
    activation_pattern,
    active_count,
    bounded_unit_matrices,
    pattern_ranks,
    sample_draws,
    unit_variance_matrices,
    weight_std,
)
from svperturb.studies import get_study

SEED = 20220307


def drawn_in_pieces(draw, start, stop, cuts):
    """Rows [start, stop) drawn as consecutive calls split at `cuts`."""
    edges = [start, *cuts, stop]
    return np.concatenate([draw(a, b) for a, b in zip(edges[:-1], edges[1:])])


# --- seeding: a pure function of (seed, study, n, distribution, sample index) --------------------


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
@pytest.mark.parametrize(
    "start, stop, cuts",
    [
        (0, 200, [1, 63, 64, 65, 127, 128, 150]),  # around every chunk boundary
        (5, 190, [6, 70, 71, 129]),  # start and stop inside chunks
        (0, 3 * SEED_CHUNK, [SEED_CHUNK, 2 * SEED_CHUNK]),  # whole chunks
        (100, 101, []),  # a single sample
    ],
)
def test_weights_drawn_at_once_equal_weights_drawn_in_pieces(distribution, start, stop, cuts):
    def draw(a, b):
        return unit_variance_matrices(SEED, "resnet_layer", 3, distribution, a, b)

    whole = draw(start, stop)
    assert whole.shape == (stop - start, 3, 3)
    np.testing.assert_array_equal(whole, drawn_in_pieces(draw, start, stop, cuts))


class DeviceStandIn:
    """An array module that is not NumPy (so the draws take the device path), recording the host
    arrays sent to it."""

    def __init__(self):
        self.__name__ = "device stand-in"  # a module's name; not CuPy's, so no device draws
        self.sent: list[np.ndarray] = []

    def empty(self, shape):
        return np.full(shape, np.nan)

    def asarray(self, host):
        self.sent.append(host)
        return host.copy()


@pytest.mark.parametrize("start, stop", [(0, 1), (37, 37 + 5 * SEED_CHUNK + 9), (128, 640)])
def test_weights_for_a_device_cross_the_host_in_pieces_and_equal_the_host_draws(
        start, stop, monkeypatch):
    """On a device the block's weights reach it a piece at a time (two seed chunks here), so that
    the host never holds the whole block; the values are the host's draws times `scale`, bit for
    bit, and each piece after the first starts on a seed chunk (no chunk is drawn twice)."""
    n, scale = 6, weight_std(6, 2.0)
    monkeypatch.setattr(ensembles, "DEVICE_TRANSFER_BYTES", 2 * SEED_CHUNK * n * n * 8)
    device = DeviceStandIn()
    ours = unit_variance_matrices(SEED, "resnet_layer", n, "uniform", start, stop, xp=device,
                                  scale=scale)
    np.testing.assert_array_equal(
        ours, unit_variance_matrices(SEED, "resnet_layer", n, "uniform", start, stop) * scale)
    sizes = [len(piece) for piece in device.sent]
    assert sum(sizes) == stop - start and max(sizes) <= 2 * SEED_CHUNK
    firsts = np.cumsum([start, *sizes[:-1]])
    assert all(first % SEED_CHUNK == 0 for first in firsts[1:])
    assert len(sizes) == len(range(start // (2 * SEED_CHUNK), (stop - 1) // (2 * SEED_CHUNK) + 1))


def test_a_device_draw_refuses_a_bad_range_as_a_host_draw_does():
    with pytest.raises(ValueError, match="need 0 <= start < stop"):
        unit_variance_matrices(SEED, "resnet_layer", 3, "gaussian", 5, 2, xp=DeviceStandIn())


DRAWS = {
    **{f"weights/{d}": lambda a, b, d=d: unit_variance_matrices(SEED, "unit_variance", 7, d, a, b)
       for d in DISTRIBUTIONS},
    **{f"bounded/{p}": lambda a, b, p=p: bounded_unit_matrices(SEED, "hard_bounds", 5, p, a, b)
       for p in WEIGHT_PATTERNS},
    "pattern": lambda a, b: pattern_ranks(SEED, "relu_layer", 9, "left", a, b),
    "input": lambda a, b: sample_draws(SEED, "derivative", 4, "input", a, b,
                                       lambda g, size: g.standard_normal((size, 4))),
}


@pytest.mark.parametrize("threads", [2, 3, 8])
@pytest.mark.parametrize("kind", sorted(DRAWS))
def test_draws_are_the_same_on_any_number_of_threads(kind, threads, monkeypatch):
    """Each seed chunk has its own generator, so drawing the chunks concurrently changes nothing."""
    monkeypatch.setattr(ensembles, "THREADED_CHUNK_BYTES", 0)  # threads even for these small chunks
    draw = DRAWS[kind]
    ranges = [(0, 1), (5, 190), (0, 7 * SEED_CHUNK), (63, 65)]
    serial = [draw(a, b) for a, b in ranges]
    try:
        ensembles.set_draw_threads(threads)
        for (a, b), expected in zip(ranges, serial):
            np.testing.assert_array_equal(draw(a, b), expected, err_msg=f"[{a}, {b}), {threads} threads")
    finally:
        ensembles.set_draw_threads(1)


def test_draw_threads_must_be_positive():
    with pytest.raises(ValueError, match="draw threads: got 0"):
        ensembles.set_draw_threads(0)


def test_each_sample_is_a_function_of_its_index_only():
    rows = unit_variance_matrices(SEED, "unit_variance", 4, "gaussian", 0, 150)
    for index in (0, 63, 64, 99, 149):
        np.testing.assert_array_equal(
            unit_variance_matrices(SEED, "unit_variance", 4, "gaussian", index, index + 1)[0],
            rows[index])


def test_weights_are_reproducible_across_calls():
    a = unit_variance_matrices(SEED, "unit_variance", 5, "uniform", 10, 80)
    b = unit_variance_matrices(SEED, "unit_variance", 5, "uniform", 10, 80)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "other",
    [
        {"seed": SEED + 1},
        {"study": "convnet_vs_resnet"},
        {"distribution": "uniform"},
    ],
)
def test_different_seed_study_or_distribution_gives_different_weights(other):
    base = {"seed": SEED, "study": "resnet_layer", "distribution": "gaussian"}
    changed = {**base, **other}
    a = unit_variance_matrices(base["seed"], base["study"], 4, base["distribution"], 0, 100)
    b = unit_variance_matrices(changed["seed"], changed["study"], 4, changed["distribution"], 0, 100)
    assert not np.any(a == b)  # continuous laws: any shared value would mean a shared stream


def test_different_widths_use_different_streams():
    """n is part of the key: the first entries for n = 4 are not those for n = 5."""
    a = unit_variance_matrices(SEED, "resnet_layer", 4, "gaussian", 0, 1).ravel()
    b = unit_variance_matrices(SEED, "resnet_layer", 5, "gaussian", 0, 1).ravel()
    assert not np.any(np.isin(a, b))


def test_chunks_and_samples_are_not_repeated():
    rows = unit_variance_matrices(SEED, "unit_variance", 3, "gaussian", 0, 4 * SEED_CHUNK)
    flat = rows.reshape(len(rows), -1)
    assert len(np.unique(flat[:, 0])) == len(rows)
    assert len(np.unique(flat)) == flat.size


def test_draws_do_not_depend_on_r_eta_or_rho():
    """Pairing (docs/studies.md, The grid and seeding): two values of r see the same K_n, so s_1(W1) r is the same number."""
    study = get_study("resnet_layer")
    point = {"distribution": "gaussian", "width": 6, "skip": [0.0, 1.0], "seed": SEED}
    out = {r: study.simulate({**point, "weight_scale": r}, 0, 40, np)[0] for r in (2.0, 3.0)}
    np.testing.assert_allclose(out[2.0]["s1_W"] * 2.0, out[3.0]["s1_W"] * 3.0, rtol=1e-13)
    np.testing.assert_allclose(out[2.0]["tau_low"] * 2.0, out[3.0]["tau_low"] * 3.0, rtol=1e-12)
    # the skip coefficients ride on the same matrices: rho = 0 of W1 + rho I is W1 itself
    np.testing.assert_array_equal(out[2.0]["s1"][:, 0], out[2.0]["s1_W"])


def test_weights_are_paired_across_eta():
    """eta = 1 and eta = -1 see the same W1 (docs/studies.md, The grid and seeding); at rho = 0 a sign pattern changes no
    singular value of D1 W1 D (Proposition 23), so both give the spectrum of the same W1."""
    study = get_study("convnet_vs_resnet")
    point = {"distribution": "gaussian", "width": 6, "weight_scale": 2.0, "activity": 0.5,
             "skip": [0.0, 1.0], "seed": SEED}
    linear = study.simulate({**point, "activation_slope": 1.0}, 0, 30, np)[0]
    absolute = study.simulate({**point, "activation_slope": -1.0}, 0, 30, np)[0]
    # rho = 0: D1 W1 D has the singular values of W1 whatever the sign pattern
    np.testing.assert_allclose(absolute["s1"][:, 0], linear["s1"][:, 0], rtol=1e-12)
    np.testing.assert_allclose(absolute["kappa"][:, 0], linear["kappa"][:, 0], rtol=1e-9)


# --- pattern ranks ------------------------------------------------------------------------------


def test_pattern_ranks_are_permutations_and_split_independent():
    def draw(a, b):
        return pattern_ranks(SEED, "convnet_vs_resnet", 7, "left", a, b)

    whole = draw(0, 150)
    np.testing.assert_array_equal(np.sort(whole, axis=1), np.broadcast_to(np.arange(7), (150, 7)))
    np.testing.assert_array_equal(whole, drawn_in_pieces(draw, 0, 150, [3, 64, 65, 100]))


def test_left_and_right_patterns_are_independent_streams():
    left = pattern_ranks(SEED, "convnet_vs_resnet", 10, "left", 0, 200)
    right = pattern_ranks(SEED, "convnet_vs_resnet", 10, "right", 0, 200)
    # two independent uniform permutations of 10 coincide with probability 1/10!; 200 pairs: ~5e-5
    assert not np.any(np.all(left == right, axis=1))


def test_pattern_ranks_are_uniform_over_positions():
    """Position 0 is among the first m = 3 of n = 10 with probability 3/10. 3000 samples: standard
    error sqrt(0.3 * 0.7 / 3000) = 0.0084; allow 5 standard errors."""
    ranks = pattern_ranks(SEED, "convnet_vs_resnet", 10, "right", 0, 3000)
    frequency = np.mean(np.any(ranks[:, :3] == 0, axis=1))
    assert abs(frequency - 0.3) <= 5 * math.sqrt(0.3 * 0.7 / 3000)


# --- the laws: zero mean, unit variance, support ------------------------------------------------


@pytest.mark.parametrize("distribution, fourth_moment", [("gaussian", 3.0), ("uniform", 9 / 5)])
def test_entries_have_zero_mean_and_unit_variance(distribution, fourth_moment):
    """N = 400 matrices of 20 x 20 = 160000 iid entries. Standard error of the mean 1/sqrt(N) = 0.0025;
    of the sample variance sqrt((m4 - 1)/N) with m4 = 3 (Gaussian), 9/5 (Uniform); allow 5 of each."""
    x = unit_variance_matrices(SEED, "unit_variance", 20, distribution, 0, 400).ravel()
    size = x.size
    assert abs(x.mean()) <= 5 / math.sqrt(size)
    assert abs(x.var() - 1) <= 5 * math.sqrt((fourth_moment - 1) / size)


@pytest.mark.parametrize("distribution, law", [("gaussian", stats.norm()),
                                               ("uniform", stats.uniform(-math.sqrt(3), 2 * math.sqrt(3)))])
def test_entries_follow_their_law(distribution, law):
    """Kolmogorov distance of 160000 iid entries to N(0,1) or U[-sqrt 3, sqrt 3]; DKW at level 1e-6:
    sqrt(ln(2/1e-6)/(2N)) = 0.0067."""
    x = unit_variance_matrices(SEED, "resnet_layer", 20, distribution, 0, 400).ravel()
    assert stats.kstest(x, law.cdf).statistic <= math.sqrt(math.log(2 / 1e-6) / (2 * x.size))


def test_uniform_support_is_plus_minus_sqrt3():
    """max |x| <= sqrt(3) always; and P[max |x| < sqrt(3)(1 - 1e-3)] = (1 - 1e-3)^160000 ~ e^-160."""
    x = unit_variance_matrices(SEED, "unit_variance", 20, "uniform", 0, 400)
    assert np.abs(x).max() <= math.sqrt(3)
    assert x.max() > math.sqrt(3) * (1 - 1e-3)
    assert x.min() < -math.sqrt(3) * (1 - 1e-3)


def test_unknown_distribution_is_rejected_naming_the_key():
    with pytest.raises(ValueError, match="distribution.*cauchy.*gaussian, uniform"):
        unit_variance_matrices(SEED, "unit_variance", 3, "cauchy", 0, 1)


@pytest.mark.parametrize("start, stop", [(5, 5), (6, 5), (-1, 3)])
def test_empty_or_negative_sample_ranges_are_rejected(start, stop):
    with pytest.raises(ValueError, match="sample range"):
        unit_variance_matrices(SEED, "unit_variance", 3, "gaussian", start, stop)


# --- (111) ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("n, r, expected", [(2, 1.0, 0.25), (50, 2.0, 0.025), (8, 3.0, 1 / 24)])
def test_weight_std_is_one_over_r_sqrt_8n(n, r, expected):
    assert weight_std(n, r) == pytest.approx(expected, rel=1e-15)
    assert weight_std(n, r) == pytest.approx(1 / (r * math.sqrt(8 * n)), rel=1e-15)


# --- D(m, n, eta) (78) ----------------------------------------------------------------------------


@pytest.mark.parametrize("eta", [-1.0, 0.0, 0.1])
def test_activation_pattern_has_exactly_m_entries_equal_to_eta(eta):
    n = 9
    ranks = pattern_ranks(SEED, "convnet_vs_resnet", n, "left", 0, 50)
    for m in range(n + 1):
        diag = activation_pattern(ranks, m, eta)
        assert diag.shape == (50, n)
        np.testing.assert_array_equal((diag == eta).sum(axis=1), m)
        np.testing.assert_array_equal((diag == 1.0).sum(axis=1), n - m)
        # trace condition of (78): trace(D) = m eta + n - m
        np.testing.assert_allclose(diag.sum(axis=1), m * eta + n - m)


def test_activation_patterns_are_nested_across_m():
    ranks = pattern_ranks(SEED, "convnet_vs_resnet", 8, "right", 0, 40)
    previous = np.zeros((40, 8), dtype=bool)
    for m in range(9):
        at_eta = activation_pattern(ranks, m, 0.0) == 0.0
        assert np.all(at_eta[previous])  # every position set for m - 1 stays set for m
        previous = at_eta


def test_activation_pattern_puts_eta_where_the_ranks_say():
    ranks = np.array([[2, 0, 3, 1]])
    np.testing.assert_array_equal(activation_pattern(ranks, 2, -1.0), [[-1.0, 1.0, -1.0, 1.0]])


@pytest.mark.parametrize("m", [-1, 5])
def test_activation_pattern_rejects_m_outside_zero_to_n(m):
    with pytest.raises(ValueError, match="m"):
        activation_pattern(np.array([[0, 1, 2, 3]]), m, 0.0)


@pytest.mark.parametrize("n, activity, m", [(10, 0.5, 5), (25, 0.1, 2), (4, 1.0, 4), (7, 0.0, 0),
                                            (6, 0.4, 2)])
def test_active_count_rounds_activity_times_n(n, activity, m):
    assert active_count(n, activity) == m
