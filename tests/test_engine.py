"""engine.py: the accuracy contract (s_1 within 1e-12, every non-zero s_i within 1e-10 of float64
LAPACK gesvd), structural zeros of ReLU patterns exact, per-sample fallback where the Gram route
cannot prove its bound, and results independent of how the stack is split."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import scipy.linalg

from support.devices import take_cupy_routes
from support.reference import reference_singular_values
from svperturb.linalg import engine
from svperturb.linalg.backend import to_host
from svperturb.linalg.gpu import eigenvalue_kernel
from svperturb.linalg.spectra import rank_tolerance, smallest_nonzero_singular_value
from svperturb.sampling.ensembles import activation_pattern, unit_variance_matrices, weight_std

WIDTHS = (5, 32, 33, 100)


def layer_matrices(kind: str, n: int, count: int, seed: int = 11) -> np.ndarray:
    """The studies' matrices: unit-variance K_n, ResNet W1 + I, ConvNet D1 W1 D, ReLU
    (D1 W1 + I) D (m/n = 1/2)."""
    k = unit_variance_matrices(seed, "engine-test", n, "gaussian", 0, count)
    if kind == "unit_variance":
        return k
    w = k * weight_std(n, 2.0)
    eye = np.eye(n)
    if kind == "resnet":
        return w + eye
    rng = np.random.default_rng(seed)
    d1 = activation_pattern(rng.permuted(np.tile(np.arange(n), (count, 1)), axis=1), n // 2, 0.0)
    d = activation_pattern(rng.permuted(np.tile(np.arange(n), (count, 1)), axis=1), n // 2, 0.0)
    if kind == "convnet":
        return d1[:, :, None] * w * d[:, None, :]
    if kind == "relu":
        return (d1[:, :, None] * w + eye) * d[:, None, :]
    raise ValueError(kind)


def with_singular_values(s: np.ndarray, seed: int) -> np.ndarray:
    """U diag(s) V^T with random orthogonal U, V (QR of Gaussian matrices)."""
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.standard_normal((len(s), len(s))))
    v, _ = np.linalg.qr(rng.standard_normal((len(s), len(s))))
    return (u * s) @ v.T


def assert_meets_contract(values: np.ndarray, a: np.ndarray) -> None:
    reference = reference_singular_values(a)
    nonzero = reference > rank_tolerance(reference)[:, None]
    # the same singular values count as zero ...
    np.testing.assert_array_equal(values > rank_tolerance(values)[:, None], nonzero)
    # ... and the others meet the contract
    relative = np.abs(values - reference) / np.where(nonzero, reference, 1.0)
    assert relative[:, 0].max() <= engine.TOLERANCE_S1
    assert np.where(nonzero, relative, 0).max() <= engine.TOLERANCE_S_MIN


@pytest.mark.parametrize("n", WIDTHS)
@pytest.mark.parametrize("kind", ["unit_variance", "resnet", "convnet", "relu"])
@pytest.mark.parametrize("route", ["auto", "gram", "augmented"])
def test_every_route_meets_the_contract_on_the_studies_matrices(kind, n, route, xp):
    a = layer_matrices(kind, n, 40 if n < 100 else 12)
    values = to_host(engine.singular_values(xp.asarray(a), xp, route=route).values)
    assert values.shape == (len(a), n)
    assert np.all(np.diff(values, axis=1) <= 0)
    assert_meets_contract(values, a)


@pytest.mark.parametrize("kind", ["resnet", "unit_variance"])
def test_the_contract_holds_at_n_1000(kind, xp):
    a = layer_matrices(kind, 1000, 2)
    assert_meets_contract(to_host(engine.singular_values(xp.asarray(a), xp, route="gram").values), a)


def test_resnet_layers_take_the_fast_route_and_convnets_fall_back():
    # kappa(W1 + I) ~ 2: the Gram bound certifies; kappa(D1 W1 D) ~ n K: it cannot
    resnet = engine.singular_values(layer_matrices("resnet", 33, 50), route="gram")
    convnet = engine.singular_values(layer_matrices("convnet", 33, 50), route="gram")
    assert not resnet.fallback.any()
    assert convnet.fallback.mean() > 0.5


def test_relu_patterns_give_exact_structural_zeros():
    a = layer_matrices("relu", 33, 30)
    spectrum = engine.singular_values(a, route="gram")
    certified = ~spectrum.fallback
    assert certified.sum() > 20
    zero_columns = np.all(a == 0, axis=1).sum(axis=1)
    for values, zeros in zip(spectrum.values[certified], zero_columns[certified]):
        assert np.all(values[33 - zeros:] == 0) and np.all(values[:33 - zeros] > 0)


def test_zero_rows_are_structural_too():
    # more zero rows than zero columns: the Gram matrix A A^T carries the structural zeros
    a = layer_matrices("resnet", 20, 10)
    a[:, :6, :] = 0
    spectrum = engine.singular_values(a, route="gram")
    assert not spectrum.fallback.any()
    assert np.all(spectrum.values[:, 14:] == 0)
    assert_meets_contract(spectrum.values, a)


def test_a_singular_active_block_falls_back_to_lapack():
    a = layer_matrices("resnet", 8, 4)
    a[0, :, 3] = a[0, :, 2]  # rank deficient without a zero line: only LAPACK can say
    spectrum = engine.singular_values(a, route="gram")
    assert spectrum.fallback[0] and not spectrum.fallback[1:].any()
    assert_meets_contract(spectrum.values, a)


def test_the_error_bound_covers_the_actual_gram_error():
    a = layer_matrices("resnet", 33, 40)
    eigenvalues = np.linalg.eigvalsh(np.swapaxes(a, 1, 2) @ a)[:, ::-1]
    reference = reference_singular_values(a) ** 2
    delta = engine.gram_error_bound(engine.abs_norm_product(a), eigenvalues[:, 0], 33)
    assert np.all(np.abs(eigenvalues - reference) <= delta[:, None])


@pytest.mark.parametrize(("kind", "n", "cautious", "estimate"), [
    ("resnet", 1000, False, False), ("unit_variance", 1000, False, False),
    ("resnet", 100, True, True), ("unit_variance", 100, False, True)])
def test_the_a_priori_check_sends_hopeless_samples_straight_to_lapack(kind, n, cautious, estimate):
    """n = 1000 fails either form; K_100's s_1 passes the Gram certificate, which the cautious
    form (the CPU's) cannot see."""
    a = layer_matrices(kind, n, 2)
    norm_product = engine.abs_norm_product(a)
    assert np.all(engine.s1_certificate_likely(a, norm_product, np, cautious=True) == cautious)
    assert np.all(engine.s1_certificate_likely(a, norm_product, np, cautious=False) == estimate)
    assert engine.CAUTIOUS_S1_FILTER == {"numpy": True, "cupy": False}


def test_a_resnet_layer_with_a_quarter_skip_takes_the_gram_route_at_n_100(monkeypatch):
    """W1 + 0.25 I (kappa ~ 10) at n = 100: the Gram route certifies s_1 and s_n. The CPU's
    cautious filter sends them to LAPACK (an attempt there costs 0.8 gesdd, and W1 + 0.2 I fails
    it); CuPy's, forced here, lets them through."""
    w = unit_variance_matrices(3, "engine-test", 100, "gaussian", 0, 20) * weight_std(100, 2.0)
    a = w + 0.25 * np.eye(100)
    assert engine.singular_values(a, np, "gram").fallback.all()
    monkeypatch.setitem(engine.CAUTIOUS_S1_FILTER, "numpy", False)
    spectrum = engine.singular_values(a, np, "gram")
    assert not spectrum.fallback.any()
    assert_meets_contract(spectrum.values, a)


@pytest.mark.parametrize("route", ["lapack", "gram"])
def test_results_do_not_depend_on_how_the_stack_is_split(route):
    a = np.concatenate([layer_matrices("resnet", 33, 20), layer_matrices("convnet", 33, 20)])
    whole = engine.singular_values(a, route=route)
    threaded = engine.singular_values(a, route=route, workers=2)
    pieces = [engine.singular_values(a[i:i + 7], route=route).values for i in range(0, len(a), 7)]
    np.testing.assert_array_equal(whole.values, threaded.values)
    np.testing.assert_array_equal(whole.fallback, threaded.fallback)
    np.testing.assert_array_equal(whole.values, np.concatenate(pieces))


def test_auto_picks_lapack_for_small_n_and_gram_above():
    assert engine.choose_route(5) == "lapack"
    assert engine.choose_route(engine.GRAM_FROM_WIDTH["numpy"]) == "gram"


def test_bad_input_is_refused_by_name():
    with pytest.raises(ValueError, match=r"route: got 'qr'; allowed: auto, lapack, gram, augmented$"):
        engine.singular_values(np.eye(3)[None], route="qr")
    with pytest.raises(ValueError, match=r"stack of square matrices"):
        engine.singular_values(np.ones((2, 3, 4)))


def test_the_resnet_study_on_the_gram_route_is_block_invariant_and_violation_free():
    from svperturb.studies import get_study

    study = get_study("resnet_layer")
    point = {"distribution": "gaussian", "width": 24, "weight_scale": 2.0, "skip": [0.0, 0.5, 1.0],
             "seed": 3}
    assert engine.choose_route(24) == "gram"
    whole, _ = study.simulate(point, 0, 96, np)
    pieces = [study.simulate(point, start, start + 32, np)[0] for start in (0, 32, 64)]
    for key, values in whole.items():
        np.testing.assert_array_equal(values, np.concatenate([p[key] for p in pieces]))
    for family in ("70", "74", "71"):
        assert whole[f"violations_{family}"].sum() == 0
    lapack = reference_singular_values(
        unit_variance_matrices(3, "resnet_layer", 24, "gaussian", 0, 96) * weight_std(24, 2.0) + np.eye(24))
    np.testing.assert_allclose(whole["s_min"][:, 2], lapack[:, -1], rtol=engine.TOLERANCE_S_MIN)



def test_unit_variance_matrices_mostly_fall_back_at_n_50():
    """The Gram route proves s_n only if delta <= 1e-10 lambda_n, and delta >= n eps lambda_1, so
    only if kappa <= sqrt(1e-10 / (n eps)) = 95.3 at n = 50. kappa(K_n) / n follows Edelman's law
    P(kappa / n <= x) = exp(-2/x - 2/x^2): P(kappa <= 95.3) = 0.20, so at least 80 % of K_50 fall
    back (3 binomial sigmas below: 71 % of 200), while ResNet layers W1 + I (kappa < 3) never do.
    The unit-variance study therefore stays on LAPACK until an accurate s_n route exists."""
    n, count = 50, 200
    x = np.sqrt(1e-10 / (n * engine.EPS)) / n
    p_fall = 1 - np.exp(-2 / x - 2 / x**2)
    k = layer_matrices("unit_variance", n, count)
    floor = p_fall - 3 * np.sqrt(p_fall * (1 - p_fall) / count)
    assert engine.singular_values(k, route="gram").fallback.mean() >= floor
    assert not engine.singular_values(layer_matrices("resnet", n, count), route="gram").fallback.any()


# --- s_1 and s_n only: Gram route refined by certified inverse iteration -------------------------


@pytest.mark.parametrize("n", WIDTHS)
@pytest.mark.parametrize("kind", ["unit_variance", "resnet"])
def test_extreme_singular_values_meet_the_contract_and_their_bound_covers_the_error(kind, n, xp):
    a = layer_matrices(kind, n, 120 if n < 100 else 40)
    extremes = engine.extreme_singular_values(xp.asarray(a), xp)
    s1, s_min, error, route = (to_host(v) for v in (extremes.s1, extremes.s_min,
                                                    extremes.s_min_error, extremes.route))
    reference = reference_singular_values(a)
    assert np.abs(s1 / reference[:, 0] - 1).max() <= engine.TOLERANCE_S1
    assert np.abs(s_min / reference[:, -1] - 1).max() <= engine.TOLERANCE_S_MIN
    # the proved bound holds, up to the reference's own rounding (gesvd: n eps s_1 at most)
    slack = n * engine.EPS * reference[:, 0]
    assert np.all(np.abs(s_min - reference[:, -1]) <= error + slack)
    assert set(np.unique(route)) <= {0, 1, 2}


def test_inverse_iteration_proves_s_n_where_the_gram_route_cannot():
    a = layer_matrices("unit_variance", 33, 200)
    gram_proves = ~engine.singular_values(a, route="gram").fallback
    route = engine.extreme_singular_values(a).route
    assert np.all(route[gram_proves] == 0)
    assert np.count_nonzero(route == 1) > 0
    assert np.count_nonzero(route != 2) > np.count_nonzero(gram_proves)


@pytest.mark.parametrize("n", [100, 33])
def test_every_well_separated_s_n_is_proved_by_inverse_iteration(n):
    """Where s_(n-1) >= 1.5 s_n, 96 power steps shrink the start vector's other components by
    1.5^-192 ~ 1e-34, far below the residual the quadratic certificate needs (~1e-5 theta): every
    such unit-variance K_n is proved (the linear certificate of the last version proved 52 % of
    K_100, its rounding term gamma_n ||A|| being larger than 1e-10 s_n)."""
    a = layer_matrices("unit_variance", n, 200 if n == 33 else 80)
    reference = reference_singular_values(a)
    separated = reference[:, -2] >= 1.5 * reference[:, -1]
    route = engine.extreme_singular_values(a).route
    assert separated.mean() > 0.5
    assert np.all(route[separated] <= 1)


def test_a_known_spectrum_with_kappa_one_million_is_proved_within_its_bound():
    """A = U diag(s) V^T with U, V sign-flipped, permuted 64 x 64 Hadamard matrices / 8 and dyadic
    s_i of at most 20 bits: every entry of A is exact in float64, so its singular values are
    exactly s (closed form). s_n = 2^-20, s_(n-1) = 2^-17, s_1 = 1: kappa ~ 1e6, where a linear
    rounding term (gamma_n ||A|| ~ 1e-14) exceeds 1e-10 s_n; the quadratic certificate proves s_n,
    and its bound covers the exact error."""
    n = 64
    rng = np.random.default_rng(8)
    h = scipy.linalg.hadamard(n).astype(float)
    s = np.rint(np.geomspace(1.0, 2.0**-17, n - 1) * 2**20) / 2**20
    s = np.append(s, 2.0**-20)
    stack = []
    for _ in range(6):
        u = rng.choice([-1.0, 1.0], n)[:, None] * h[:, rng.permutation(n)] / 8
        v = rng.choice([-1.0, 1.0], n)[:, None] * h[:, rng.permutation(n)] / 8
        stack.append((u * s) @ v.T)
    stack = np.array(stack)
    np.testing.assert_array_equal((stack @ np.swapaxes(stack, 1, 2)).trace(axis1=1, axis2=2),
                                  np.full(6, np.sum(s**2)))  # the entries are exact (a check)
    extremes = engine.extreme_singular_values(stack)
    assert np.all(extremes.route == 1)
    assert np.all(np.abs(extremes.s_min - s[-1]) <= extremes.s_min_error)
    assert np.all(extremes.s_min_error <= engine.TOLERANCE_S_MIN * s[-1])
    assert np.all(extremes.s1 == 1.0) or np.abs(extremes.s1 - 1.0).max() <= engine.TOLERANCE_S1


@pytest.mark.parametrize("n", [5, 100, 1000])
def test_exact_matvec_is_within_its_bound_of_the_exact_product(n):
    """Against exact rational arithmetic: |y - A v| <= bound, and the bound is ~eps |A| |v| (at
    most 20 eps, not the gamma_n of a plain product), for entries spread over 10 orders of
    magnitude and a zero row."""
    rng = np.random.default_rng(n)
    a = rng.standard_normal((2, n, n)) * 10.0 ** rng.uniform(-5, 5, (2, n, n))
    a[1, 0] = 0.0
    v = rng.standard_normal((2, n)) * 10.0 ** rng.uniform(-3, 3, (2, n))
    y, bound = engine.exact_matvec(engine.split_rows(a), v)
    scale = (np.abs(a) @ np.abs(v)[..., None])[..., 0]
    assert np.all(bound <= 20 * engine.EPS * scale)
    assert y[1, 0] == 0.0 and bound[1, 0] == 0.0
    for b in range(2):
        for i in range(0, n, max(1, n // 25)):
            exact = sum(Fraction(x) * Fraction(w) for x, w in zip(a[b, i], v[b]))
            assert abs(Fraction(y[b, i]) - exact) <= Fraction(bound[b, i]), (b, i)


def test_a_cluster_at_the_bottom_cannot_be_proved_and_falls_back_to_lapack():
    """s_n and s_(n-1) 1e-9 apart with kappa = 1e6: the Gram bound separates neither, so LAPACK."""
    n = 12
    s = np.geomspace(1.0, 1e-6, n)
    s[-2] = s[-1] * (1 + 1e-9)
    a = with_singular_values(s, 4)
    extremes = engine.extreme_singular_values(np.stack([a, layer_matrices("resnet", n, 1)[0]]))
    assert extremes.route[0] == 2
    reference = reference_singular_values(a[None])[0]
    assert abs(extremes.s_min[0] / reference[-1] - 1) <= engine.TOLERANCE_S_MIN


def test_exactly_singular_matrices_are_left_to_lapack_and_the_others_are_unaffected(caplog):
    """Where the batched inverse fails (LinAlgError for the whole call) the batch is halved until
    the singular matrix is alone; the others are proved as they are without the singular ones."""
    a = layer_matrices("unit_variance", 40, 6)
    a[2][:, 0] = a[2][:, 1]  # two equal columns: LU finds a tiny pivot, the inverse is huge
    a[4][:, 3] = 0  # a zero column: LU finds a zero pivot, the batched inverse raises
    extremes = engine.extreme_singular_values(a)
    lapack = np.linalg.svd(a, compute_uv=False)
    for singular in (2, 4):
        assert extremes.route[singular] == 2 and extremes.s_min[singular] == lapack[singular, -1]
        assert extremes.s_min[singular] <= 1e-12 * extremes.s1[singular]
    assert caplog.text.count("batched inverse failed on a 40 x 40 matrix") == 1
    others = engine.extreme_singular_values(np.delete(a, [2, 4], axis=0))
    assert np.all(others.route < 2)
    for name in ("s1", "s_min", "route", "s_min_error"):
        np.testing.assert_array_equal(np.delete(getattr(extremes, name), [2, 4]),
                                      getattr(others, name))


def test_extremes_do_not_depend_on_how_the_stack_is_split():
    a = layer_matrices("unit_variance", 33, 64)
    whole = engine.extreme_singular_values(a)
    halves = [engine.extreme_singular_values(part) for part in (a[:21], a[21:])]
    for name in ("s1", "s_min", "route", "s_min_error"):
        np.testing.assert_array_equal(getattr(whole, name),
                                      np.concatenate([getattr(h, name) for h in halves]))


def test_extremes_refuse_what_is_not_a_stack_of_square_matrices():
    with pytest.raises(ValueError, match="square matrices"):
        engine.extreme_singular_values(np.ones((3, 4, 5)))


# --- engine.extremes: the faster of LAPACK and the Gram route with inverse iteration -------------


def test_extremes_take_lapack_on_the_cpu_and_the_gram_route_on_cupy_above_n_32():
    """On the CPU the Gram route with inverse iteration is slower than gesdd (bench: 0.31-0.33x);
    on CuPy the library SVD loops one matrix at a time above n = 32."""
    cupy_like = type(np)("cupy")
    assert [engine.choose_extremes_route(n) for n in (2, 33, 1000)] == ["lapack"] * 3
    assert [engine.choose_extremes_route(n, cupy_like) for n in (1, 32, 33, 1000)] == [
        "lapack", "lapack", "gram", "gram"]


@pytest.mark.parametrize("n", [5, 33, 100])
@pytest.mark.parametrize("kind", ["unit_variance", "resnet"])
def test_extremes_on_each_route_meet_the_contract_and_s_star_is_s_n(kind, n, xp):
    a = layer_matrices(kind, n, 60 if n < 100 else 24)
    reference = reference_singular_values(a)
    for route in ("auto", "lapack", "gram"):
        found = engine.extremes(xp.asarray(a), xp, route=route)
        s1, s_min, s_star = (to_host(v) for v in (found.s1, found.s_min, found.s_star))
        assert np.abs(s1 / reference[:, 0] - 1).max() <= engine.TOLERANCE_S1, route
        assert np.abs(s_min / reference[:, -1] - 1).max() <= engine.TOLERANCE_S_MIN, route
        np.testing.assert_array_equal(s_star, s_min)  # nonsingular: s_* = s_n


def test_the_lapack_route_of_extremes_is_the_library_spectrum_bit_for_bit():
    a = layer_matrices("unit_variance", 33, 30)
    values = np.linalg.svd(a, compute_uv=False)
    found = engine.extremes(a, route="lapack")
    np.testing.assert_array_equal(found.s1, values[:, 0])
    np.testing.assert_array_equal(found.s_min, values[:, -1])
    assert np.all(found.route == 2) and np.all(found.s_min_error == 0)


@pytest.mark.parametrize("route", ["lapack", "gram"])
def test_s_star_of_a_rank_deficient_matrix_is_its_smallest_non_zero_singular_value(route):
    """Two equal columns; diag(1, ..., 1, 2^-60), whose inverse iteration is exact but whose s_n
    lies below the certificate's rounding floor 2 (n + 4) eps s_1 (so below the rank tolerance
    n eps s_1); and s_n = 1e-17 s_1 behind random rotations: LAPACK takes them, and s_* is
    s_(n-1), as spectra.smallest_nonzero_singular_value finds it in the whole spectrum."""
    n = 40
    a = layer_matrices("unit_variance", n, 6)
    a[2][:, 0] = a[2][:, 1]
    a[3] = np.diag(np.append(np.ones(n - 1), 2.0**-60))
    a[4] = with_singular_values(np.append(np.geomspace(1.0, 1e-3, n - 1), 1e-17), 17)
    found = engine.extremes(a, route=route)
    spectra = np.linalg.svd(a, compute_uv=False)
    assert np.all(found.route[2:5] == 2)
    assert found.s_star[3] == 1.0 and found.s_min[3] == 2.0**-60
    for i in (2, 3, 4):
        assert found.s_star[i] == smallest_nonzero_singular_value(spectra[i])
        assert abs(found.s_star[i] / spectra[i, -2] - 1) <= 1e-12
        assert found.s_min[i] == spectra[i, -1]


def test_extremes_refuse_a_route_they_do_not_have():
    with pytest.raises(ValueError, match=r"route: got 'jacobi'; allowed: auto, lapack, gram$"):
        engine.extremes(np.eye(3)[None], route="jacobi")


# --- the augmented route: eigenvalues of [[0, A], [A^T, 0]], error eps kappa instead of kappa^2 ---


@pytest.mark.parametrize("n", [5, 33, 100])
@pytest.mark.parametrize("kind", ["unit_variance", "resnet", "convnet", "relu"])
def test_the_augmented_route_bound_covers_its_error_and_its_structural_zeros_are_exact(kind, n, xp):
    a = layer_matrices(kind, n, 30 if n < 100 else 10)
    spectrum = engine.singular_values(xp.asarray(a), xp, route="augmented")
    values, augmented, bound = (to_host(v) for v in (spectrum.values, spectrum.augmented,
                                                      spectrum.value_error(xp)))
    reference = reference_singular_values(a)
    # the bound holds up to the reference's own rounding (gesvd: n eps s_1 at most)
    slack = n * engine.EPS * reference[:, :1]
    assert np.all((np.abs(values - reference) <= bound + slack)[augmented])
    zero_lines = np.maximum(np.all(a == 0, axis=1).sum(axis=1), np.all(a == 0, axis=2).sum(axis=1))
    for row, zeros in zip(values[augmented], zero_lines[augmented]):
        assert np.all(row[n - zeros:] == 0) and np.all(row[:n - zeros] > 0)
    # it proves kappa up to 1e-10 / (2 n eps) (2,300 at n = 100): most of these matrices (Edelman:
    # P(kappa(K_n) > x n) is about 2 / x, 0.09 at n = 100)
    assert augmented.mean() > 0.5


def test_where_the_gram_route_fails_the_augmented_route_takes_over_before_lapack(monkeypatch):
    """As on CuPy from n = 33 (forced here): unit-variance K_33 and ConvNet layers, which the Gram
    bound (eps kappa^2) rarely certifies, are certified by the augmented one (2 n eps kappa)."""
    monkeypatch.setitem(engine.AUGMENTED_WIDTHS, "numpy", (33, 200))
    assert engine.tries_augmented(33) and not engine.tries_augmented(32)
    for kind in ("unit_variance", "convnet"):
        a = layer_matrices(kind, 33, 60)
        gram_only = engine.singular_values(a, route="gram")
        monkeypatch.setitem(engine.AUGMENTED_WIDTHS, "numpy", None)
        before = engine.singular_values(a, route="gram")
        monkeypatch.setitem(engine.AUGMENTED_WIDTHS, "numpy", (33, 200))
        assert before.fallback.mean() > 0.5 and not before.augmented.any()
        assert np.array_equal(gram_only.augmented | gram_only.fallback, before.fallback), kind
        assert gram_only.fallback.mean() < 0.2 * before.fallback.mean(), kind
        assert_meets_contract(gram_only.values, a)


def test_a_bottom_cluster_the_iteration_cannot_split_is_proved_by_the_augmented_route(monkeypatch):
    """s_n and s_(n-1) 1e-9 apart with kappa = 1e3: the Gram bound (n eps kappa^2 ~ 1e-8) cannot
    prove s_n, 96 power steps cannot separate the pair, the augmented bound (2 n eps kappa ~ 2e-11)
    can."""
    n = 40
    s = np.geomspace(1.0, 1e-3, n)
    s[-2] = s[-1] * (1 + 1e-9)
    a = with_singular_values(s, 5)[None]
    assert engine.extreme_singular_values(a).route[0] == 2
    monkeypatch.setitem(engine.AUGMENTED_WIDTHS, "numpy", (33, 200))
    extremes = engine.extreme_singular_values(a)
    reference = reference_singular_values(a)[0]
    assert extremes.route[0] == 3
    assert abs(extremes.s_min[0] - reference[-1]) <= extremes.s_min_error[0] + n * engine.EPS
    assert abs(extremes.s_min[0] / reference[-1] - 1) <= engine.TOLERANCE_S_MIN
    assert extremes.s_star[0] == extremes.s_min[0]


def test_the_resnet_study_with_the_augmented_fallback_is_violation_free(monkeypatch):
    """W1 alone (rho = 0) has kappa ~ n: the Gram bound fails and, as on CuPy from n = 33 (forced
    here), the augmented route certifies it; (70), (74), (71) hold with its error bound added, and
    s_n meets the contract."""
    from svperturb.studies import get_study

    monkeypatch.setitem(engine.AUGMENTED_WIDTHS, "numpy", (33, 200))
    monkeypatch.setitem(engine.GRAM_FROM_WIDTH_MIXED, "numpy", 33)  # W1 alone, as on CuPy
    calls = []
    real = engine.augmented_singular_values
    monkeypatch.setattr(engine, "augmented_singular_values",
                        lambda a, *rest: calls.append(len(a)) or real(a, *rest))
    point = {"distribution": "gaussian", "width": 40, "weight_scale": 2.0, "skip": [0.0, 0.5, 1.0],
             "seed": 3}
    per, _ = get_study("resnet_layer").simulate(point, 0, 64, np)
    assert sum(calls) > 32
    for family in ("70", "74", "71"):
        assert per[f"violations_{family}"].sum() == 0
    lapack = reference_singular_values(
        unit_variance_matrices(3, "resnet_layer", 40, "gaussian", 0, 64) * weight_std(40, 2.0))
    np.testing.assert_allclose(per["s_min"][:, 0], lapack[:, -1], rtol=engine.TOLERANCE_S_MIN)


# --- a failing eigensolver: the fast routes prove nothing and hand their samples on --------------


def _failing_eigensolver(matrices):
    raise np.linalg.LinAlgError("Eigenvalues did not converge")


@pytest.mark.parametrize("route", ["gram", "augmented"])
def test_a_failing_eigensolver_sends_every_sample_on_to_lapack(monkeypatch, caplog, route):
    """LAPACK's non-convergence, or cuSOLVER's devInfo (which the cupy backend makes raise): the
    route has no eigenvalues, so no certificate, and LAPACK computes every sample instead of the
    framework flagging them as numerical faults."""
    a = layer_matrices("resnet", 33, 16)
    expected = np.linalg.svd(a, compute_uv=False)
    monkeypatch.setattr(np.linalg, "eigvalsh", _failing_eigensolver)
    spectrum = engine.singular_values(a, np, route)
    np.testing.assert_array_equal(spectrum.values, expected)
    assert spectrum.fallback.all() and not spectrum.augmented.any()
    assert not spectrum.square_error.any() and not spectrum.absolute_error.any()
    assert caplog.text.count("symmetric eigensolver failed on a ") == 16  # one line per sample


def test_a_failing_matrix_takes_only_its_own_sample_to_lapack(monkeypatch):
    """The eigensolver fails on any stack that holds sample 5 (as a batched cuSOLVER call reports
    one devInfo failure for the whole call): the stack is halved until sample 5 is alone, which
    LAPACK then computes; the other samples keep their certified values, the same as without it."""
    a = layer_matrices("resnet", 33, 12)
    clean = engine.singular_values(a, np, "gram")
    real = np.linalg.eigvalsh
    marker = (np.swapaxes(a[5], -1, -2) @ a[5])[0, 0]

    def fails_with_sample_5(matrices):
        if np.any(matrices[:, 0, 0] == marker):
            raise np.linalg.LinAlgError("Eigenvalues did not converge")
        return real(matrices)

    monkeypatch.setattr(np.linalg, "eigvalsh", fails_with_sample_5)
    spectrum = engine.singular_values(a, np, "gram")
    others = np.arange(12) != 5
    assert not clean.fallback.any()
    np.testing.assert_array_equal(spectrum.fallback, ~others)
    np.testing.assert_array_equal(spectrum.values[5], np.linalg.svd(a[5], compute_uv=False))
    np.testing.assert_array_equal(spectrum.values[others], clean.values[others])
    np.testing.assert_array_equal(spectrum.square_error[others], clean.square_error[others])


def test_a_failing_eigensolver_leaves_the_extremes_to_lapack(monkeypatch):
    a = layer_matrices("unit_variance", 33, 12)
    expected = np.linalg.svd(a, compute_uv=False)
    monkeypatch.setattr(np.linalg, "eigvalsh", _failing_eigensolver)
    found = engine.extremes(a, route="gram")
    assert np.all(found.route == 2) and not found.s_min_error.any()
    np.testing.assert_array_equal(found.s1, expected[:, 0])
    np.testing.assert_array_equal(found.s_min, expected[:, -1])
    np.testing.assert_array_equal(found.s_star, expected[:, -1])


# --- the ConvNet study on the routes CuPy takes -------------------------------------------------


def test_convnet_layers_stay_on_lapack_on_the_cpu():
    """well_conditioned=False: on the CPU the Gram attempt would cost more than it saves."""
    cupy_like = type(np)("cupy")
    assert [engine.choose_route(n, np, well_conditioned=False) for n in (5, 33, 100)] == ["lapack"] * 3
    assert [engine.choose_route(n, cupy_like, well_conditioned=False) for n in (32, 33, 100)] == [
        "lapack", "gram", "gram"]
    assert engine.choose_route(100) == "gram"  # the default: mostly well-conditioned


@pytest.mark.parametrize("eta", [-1.0, 0.0, 0.1])
def test_the_convnet_study_on_the_cupy_routes_agrees_with_lapack(monkeypatch, eta):
    """As on CuPy from n = 33 (forced here): ConvNet layers (rho = 0) through the Gram and the
    augmented routes, ResNet layers (rho = 1) through the Gram route. s_1, s_*, kappa and the rank
    agree with the LAPACK run within the contract, and Proposition 23's identity (|eta| = 1) holds
    within 16 n eps s_1 beyond the routes' proven errors, as claim 9 checks it."""
    from svperturb.studies import get_study
    from svperturb.theory.bounds import rounding_tolerance

    study = get_study("convnet_vs_resnet")
    n = 40
    point = {"distribution": "gaussian", "width": n, "weight_scale": 2.0, "activation_slope": eta,
             "activity": 0.5, "skip": [0.0, 1.0], "seed": 5}
    lapack, _ = study.simulate(point, 0, 120, np)
    take_cupy_routes(monkeypatch)
    lapack_calls = []
    real = engine.lapack_singular_values
    monkeypatch.setattr(engine, "lapack_singular_values",
                        lambda a, xp: lapack_calls.append(len(a)) or real(a, xp))
    fast, fast_spectra = study.simulate(point, 0, 120, np)
    spectra_computed = 120 * 2 * (3 if abs(eta) == 1 else 1)
    assert sum(lapack_calls) < spectra_computed / 2  # the fast routes certified most ...
    resnet = engine.singular_values(_convnet_matrices(study, point, 1), well_conditioned=False)
    assert not resnet.fallback.any()  # ... and every ResNet layer
    np.testing.assert_allclose(fast["s1"], lapack["s1"], rtol=engine.TOLERANCE_S1, atol=0)
    np.testing.assert_allclose(fast["s_star"], lapack["s_star"], rtol=engine.TOLERANCE_S_MIN, atol=0)
    np.testing.assert_allclose(fast["kappa"], lapack["kappa"],
                               rtol=engine.TOLERANCE_S1 + 1.01 * engine.TOLERANCE_S_MIN, atol=0)
    np.testing.assert_array_equal(fast["rank"], lapack["rank"])
    for j in range(2):
        assert_meets_contract(fast_spectra["singular_values"][:, j],
                              _convnet_matrices(study, point, j))
    if abs(eta) == 1:
        assert np.all(fast["abs_identity_error"] <= rounding_tolerance(1.0, n))
        assert np.all(lapack["abs_identity_error"] <= rounding_tolerance(1.0, n))


def _convnet_matrices(study, point, j):
    """A(rho_j) = (D1 W1 + rho I) D of the convnet_vs_resnet samples [0, 120), rebuilt as the
    study builds them."""
    from svperturb.sampling.ensembles import active_count, pattern_ranks

    n, eta, seed = point["width"], point["activation_slope"], point["seed"]
    m = active_count(n, point["activity"])
    k = unit_variance_matrices(seed, study.NAME, n, point["distribution"], 0, 120)
    left = activation_pattern(pattern_ranks(seed, study.NAME, n, "left", 0, 120), m, eta)
    right = activation_pattern(pattern_ranks(seed, study.NAME, n, "right", 0, 120), m, eta)
    mo = left[:, :, None] * (k * weight_std(n, point["weight_scale"]))
    return (mo + sorted(point["skip"])[j] * np.eye(n)) * right[:, None, :]


# --- s_1 alone, and the proven error of kappa ---------------------------------------------------


@pytest.mark.parametrize("n", [5, 33, 100])
@pytest.mark.parametrize("kind", ["unit_variance", "resnet", "convnet", "rank_one"])
def test_largest_singular_values_meet_the_contract_and_their_bound_covers_the_error(kind, n, xp):
    """s_1 alone needs only s_1's certificate: rank-one and ConvNet matrices pass the Gram route
    too. The proven error covers the difference from gesvd up to gesvd's own rounding."""
    if kind == "rank_one":
        rng = np.random.default_rng(n)
        a = np.einsum("si,sj->sij", rng.standard_normal((30, n)), rng.standard_normal((30, n)))
    else:
        a = layer_matrices(kind, n, 30)
    reference = reference_singular_values(a)[:, 0]
    for route in ("gram", "lapack", "auto"):
        s1, error = (to_host(v) for v in engine.largest_singular_values(xp.asarray(a), xp, route))
        assert np.abs(s1 / reference - 1).max() <= engine.TOLERANCE_S1, route
        assert np.all(np.abs(s1 - reference) <= error + n * engine.EPS * reference), route
    s1, error = engine.largest_singular_values(a, np, "gram")
    assert np.all(error > 0)  # every one certified by the Gram route
    s1, error = engine.largest_singular_values(a, np, "lapack")
    np.testing.assert_array_equal(s1, np.linalg.svd(a, compute_uv=False)[:, 0])
    assert not error.any()


def test_largest_singular_values_leave_n_1000_to_lapack_without_an_eigensolver(monkeypatch):
    """K_1000's product rounding (gamma_n ||A||_1 ||A||_inf ~ 2e-11 lambda_1) can never meet 1e-12:
    the filter sends it to LAPACK before any eigensolver runs."""
    a = layer_matrices("unit_variance", 1000, 2)
    calls = []
    monkeypatch.setattr(np.linalg, "eigvalsh", lambda m: calls.append(len(m)))
    s1, error = engine.largest_singular_values(a, np, "gram")
    assert not calls
    np.testing.assert_array_equal(s1, np.linalg.svd(a, compute_uv=False)[:, 0])
    assert not error.any()


def test_largest_singular_values_refuse_bad_input():
    with pytest.raises(ValueError, match="route: got 'augmented'; allowed: auto, lapack, gram$"):
        engine.largest_singular_values(np.ones((2, 3, 3)), route="augmented")
    with pytest.raises(ValueError, match="square matrices"):
        engine.largest_singular_values(np.ones((3, 4, 5)))


@pytest.mark.parametrize("kind", ["resnet", "unit_variance", "relu"])
def test_the_condition_number_error_covers_the_fast_routes_error(kind, monkeypatch):
    """kappa = s_1/s_* from the Gram and augmented routes (forced as on CuPy) against gesvd's,
    within the proven bound plus gesvd's own rounding (n eps kappa (1 + kappa)); 0 for LAPACK."""
    from svperturb.linalg.spectra import condition_number

    monkeypatch.setitem(engine.AUGMENTED_WIDTHS, "numpy", (33, 200))
    a = layer_matrices(kind, 40, 60)
    reference = condition_number(reference_singular_values(a))
    spectrum = engine.singular_values(a, np, "gram")
    assert not spectrum.fallback.all()
    kappa, error = condition_number(spectrum.values), spectrum.condition_number_error(np)
    assert np.all(error[~spectrum.fallback] > 0) and not error[spectrum.fallback].any()
    assert np.all(np.abs(kappa - reference) <= error + 40 * engine.EPS * reference * (1 + reference))
    assert not engine.singular_values(a, np, "lapack").condition_number_error(np).any()


def test_svperturb_info_says_which_route_auto_takes_on_each_backend(capsys, monkeypatch):
    from svperturb.cli import main

    assert main(["info", "--backend", "numpy"]) == 0
    printed = capsys.readouterr().out
    assert "spectra engine on numpy (route auto):" in printed
    assert "  all singular values: lapack below n = 16, gram from it\n" in printed
    assert "(ConvNet layers): lapack at every n\n" in printed
    assert "  a priori s_1 filter: cautious\n" in printed
    assert "  symmetric eigenvalues: the library's\n" in printed
    monkeypatch.setattr(eigenvalue_kernel, "kernel_available", lambda xp: True)
    monkeypatch.setattr(eigenvalue_kernel, "_shared_limit", lambda xp: 232_448)  # an H100's
    on_cupy = engine.describe_routes(type(np)("cupy"))
    assert on_cupy == [
        "all singular values: lapack below n = 33, gram from it",
        ("all singular values, stacks that may be ill-conditioned (ConvNet layers): lapack below "
         "n = 33, gram from it"),
        "uncertified samples: augmented for 33 <= n <= 200, then lapack",
        "s_1, s_n, s_*: lapack below n = 33, gram + inverse iteration from it",
        "s_1 alone: lapack below n = 33, gram from it",
        "a priori s_1 filter: estimate",
        ("symmetric eigenvalues: svperturb's kernels for 33 <= n <= 400 on 4096 matrices or more, "
         "the library's otherwise; the tile kernels up to n = 168 (once they agree with the "
         "streaming ones here), the streaming ones above")]
    monkeypatch.setattr(eigenvalue_kernel, "kernel_available", lambda xp: False)
    assert engine.describe_routes(type(np)("cupy"))[-1].startswith(
        "symmetric eigenvalues: the library's (would be svperturb's kernels")


def test_beyond_the_augmented_routes_kappa_inverse_iteration_proves_s_n(
        cupy_routes, inverse_iteration_calls):
    """W1 alone at n = 100 (kappa ~ n, beyond 2,300 for 12 % of them): with CuPy's routes forced,
    the augmented route proves every s_i but s_n there, inverse iteration proves s_n, and no
    sample is left to LAPACK (CuPy's looping SVD); the contract and the proven errors hold
    against gesvd (up to its own rounding, n eps s_1)."""
    n = 100
    a = unit_variance_matrices(4, "engine-test", n, "gaussian", 0, 60) * weight_std(n, 2.0)
    spectrum = engine.singular_values(a, np, well_conditioned=False)
    assert sum(inverse_iteration_calls) > 0 and not spectrum.fallback.any()
    assert spectrum.augmented.all()
    reference = reference_singular_values(a)
    assert_meets_contract(spectrum.values, a)
    assert np.all(np.abs(spectrum.values - reference)
                  <= spectrum.value_error(np) + n * engine.EPS * reference[:, :1])
