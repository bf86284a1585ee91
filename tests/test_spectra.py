"""spectra.py against independent routes: SciPy's LAPACK (gesvd, syev) matrix by matrix, and hand cases.

Tolerances: a backward-stable float64 SVD or symmetric eigensolver returns each singular value or
eigenvalue with absolute error at most p(n) eps ||A||_2 with p(n) a modest polynomial; we allow
16 n eps ||A||_2, far below any error a wrong formula would make.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group

from support.reference import reference_singular_values, reference_symmetric_eigenvalues
from svperturb.linalg.spectra import (
    add_identity,
    condition_number,
    numerical_rank,
    rank_tolerance,
    singular_values,
    smallest_nonzero_singular_value,
    symmetric_part_eigenvalues,
    symmetric_part_extremes,
)

EPS = np.finfo(np.float64).eps


def lapack_tolerance(scale, n):
    return 16 * n * EPS * np.asarray(scale)[..., None]


def matrix_with_singular_values(s, seed):
    """U diag(s) V^T with Haar-random orthogonal U, V: a matrix whose singular values are known."""
    n = len(s)
    u = ortho_group.rvs(n, random_state=seed)
    v = ortho_group.rvs(n, random_state=seed + 1)
    return u @ np.diag(s) @ v.T


# --- singular values -----------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 7, 33])
@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_singular_values_agree_with_scipy_gesvd_on_each_matrix(n, scale):
    rng = np.random.default_rng(1000 + n)
    stack = scale * rng.standard_normal((20, n, n))
    s = singular_values(stack)
    reference = reference_singular_values(stack)
    assert s.shape == (20, n)
    assert np.all(np.abs(s - reference) <= lapack_tolerance(reference[:, 0], n))


def test_singular_values_are_sorted_decreasing_and_nonnegative():
    stack = np.random.default_rng(1).standard_normal((50, 6, 6))
    s = singular_values(stack)
    assert np.all(s >= 0)
    assert np.all(np.diff(s, axis=-1) <= 0)


def test_singular_values_accept_extra_batch_axes():
    stack = np.random.default_rng(2).uniform(-1, 1, (3, 4, 5, 5))
    s = singular_values(stack)
    assert s.shape == (3, 4, 5)
    assert np.all(np.abs(s - reference_singular_values(stack)) <= lapack_tolerance(s[..., 0], 5))


def test_singular_values_of_a_diagonal_matrix_are_its_sorted_absolute_diagonal():
    s = singular_values(np.diag([-0.4, 3.0, -0.1, 2.0]))
    np.testing.assert_allclose(s, [3.0, 2.0, 0.4, 0.1], rtol=0, atol=4 * EPS * 3)


def test_prescribed_singular_values_are_recovered():
    target = np.array([10.0, 5.0, 1.0, 0.1, 1e-3])
    s = singular_values(matrix_with_singular_values(target, seed=3))
    assert np.all(np.abs(s - target) <= lapack_tolerance(10.0, 5))


# --- s_*, rank and the condition number (53) -----------------------------------------------------


def test_s_star_of_diag_3_2_0_is_the_smallest_nonzero_singular_value():
    s = singular_values(np.diag([3.0, 2.0, 0.0]))
    assert smallest_nonzero_singular_value(s) == 2.0
    assert numerical_rank(s) == 2
    assert condition_number(s) == 1.5


def test_s_star_skips_every_zero_singular_value():
    s = singular_values(np.diag([0.0, -5.0, 0.0, 0.5, 0.0]))
    assert smallest_nonzero_singular_value(s) == 0.5
    assert numerical_rank(s) == 2
    assert condition_number(s) == 10.0


def test_s_star_of_a_full_rank_matrix_is_s_n():
    stack = np.random.default_rng(4).standard_normal((30, 8, 8))
    s = singular_values(stack)
    np.testing.assert_array_equal(smallest_nonzero_singular_value(s), s[:, -1])
    np.testing.assert_array_equal(numerical_rank(s), 8)


@pytest.mark.parametrize("rank", [1, 3, 5])
def test_s_star_of_a_rank_deficient_product_is_the_rank_th_singular_value(rank):
    """B C with B n x k, C k x n has rank k: s_* = s_k (computed by SciPy), rank = numpy.matrix_rank."""
    n = 6
    rng = np.random.default_rng(10 + rank)
    stack = rng.standard_normal((40, n, rank)) @ rng.standard_normal((40, rank, n))
    s = singular_values(stack)
    reference = reference_singular_values(stack)
    np.testing.assert_array_equal(numerical_rank(s), rank)
    np.testing.assert_array_equal(numerical_rank(s), np.linalg.matrix_rank(stack))
    s_star = smallest_nonzero_singular_value(s)
    assert np.all(np.abs(s_star - reference[:, rank - 1]) <= 16 * n * EPS * reference[:, 0])
    np.testing.assert_allclose(condition_number(s), reference[:, 0] / reference[:, rank - 1],
                               rtol=1e-8)


def test_prescribed_rank_deficient_spectrum_gives_s_star_and_kappa():
    s = singular_values(matrix_with_singular_values(np.array([4.0, 2.0, 0.1, 0.0, 0.0]), seed=5))
    assert numerical_rank(s) == 3
    assert smallest_nonzero_singular_value(s) == pytest.approx(0.1, rel=1e-12)
    assert condition_number(s) == pytest.approx(40.0, rel=1e-12)


def test_rank_tolerance_is_n_eps_s1_like_numpy_matrix_rank():
    s = np.array([[2.0, 1.0, 0.5], [7.0, 0.0, 0.0]])
    np.testing.assert_array_equal(rank_tolerance(s), [3 * EPS * 2.0, 3 * EPS * 7.0])
    # a singular value just above the tolerance counts, one below does not
    tol = 2 * EPS * 1.0
    assert smallest_nonzero_singular_value(np.array([1.0, 2 * tol])) == 2 * tol
    assert smallest_nonzero_singular_value(np.array([1.0, tol / 2])) == 1.0
    assert smallest_nonzero_singular_value(np.array([1.0, 1e-10])) == 1e-10


def test_zero_matrix_has_no_s_star_and_no_condition_number():
    s = singular_values(np.zeros((2, 3, 3)))
    assert np.all(np.isnan(smallest_nonzero_singular_value(s)))
    assert np.all(np.isnan(condition_number(s)))
    np.testing.assert_array_equal(numerical_rank(s), 0)


def test_condition_number_of_an_orthogonal_matrix_is_one():
    q = ortho_group.rvs(7, random_state=6)
    assert condition_number(singular_values(q)) == pytest.approx(1.0, abs=16 * 7 * EPS)


def test_condition_number_is_s1_over_sn_for_prescribed_spectra():
    target = np.array([10.0, 5.0, 1.0, 0.1])
    kappa = condition_number(singular_values(matrix_with_singular_values(target, seed=7)))
    assert kappa == pytest.approx(100.0, rel=1e-10)


def test_condition_number_agrees_with_numpy_cond_on_random_matrices():
    stack = np.random.default_rng(8).standard_normal((25, 10, 10))
    kappa = condition_number(singular_values(stack))
    np.testing.assert_allclose(kappa, np.linalg.cond(stack, 2), rtol=1e-9)


def test_condition_number_is_invariant_under_scaling():
    a = np.random.default_rng(9).standard_normal((5, 6, 6))
    np.testing.assert_allclose(condition_number(singular_values(1e-6 * a)),
                               condition_number(singular_values(a)), rtol=1e-10)


# --- tau_low, tau_bar (Definition 15) ------------------------------------------------------------


@pytest.mark.parametrize("theta", [0.0, 0.3, np.pi / 2, 2.0, np.pi])
def test_tau_of_a_rotation_by_theta_is_twice_its_cosine(theta):
    """R + R^T = 2 cos(theta) I for a plane rotation: tau_low = tau_bar = 2 cos(theta)."""
    c, s = np.cos(theta), np.sin(theta)
    tau_low, tau_bar = symmetric_part_extremes(np.array([[c, -s], [s, c]]))
    assert tau_low == pytest.approx(2 * c, abs=8 * EPS)
    assert tau_bar == pytest.approx(2 * c, abs=8 * EPS)


def test_tau_of_a_rotation_embedded_in_three_dimensions():
    """R = rotation in the (x, y) plane, identity on z: R + R^T = diag(2cos, 2cos, 2)."""
    theta = 1.1
    c, s = np.cos(theta), np.sin(theta)
    rotation = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    tau_low, tau_bar = symmetric_part_extremes(rotation)
    assert tau_low == pytest.approx(2 * c, abs=8 * EPS)
    assert tau_bar == pytest.approx(2.0, abs=8 * EPS)


def test_tau_of_a_symmetric_matrix_are_the_extreme_eigenvalues_of_twice_it():
    rng = np.random.default_rng(11)
    b = rng.standard_normal((10, 6, 6))
    a = b + np.swapaxes(b, -1, -2)
    eig = symmetric_part_eigenvalues(a)
    np.testing.assert_allclose(eig, 2 * np.linalg.eigvalsh(a), rtol=0,
                               atol=16 * 6 * EPS * np.abs(eig).max())


def test_tau_of_a_skew_symmetric_matrix_is_zero():
    b = np.random.default_rng(12).standard_normal((5, 4, 4))
    tau_low, tau_bar = symmetric_part_extremes(b - np.swapaxes(b, -1, -2))
    np.testing.assert_array_equal(tau_low, 0.0)
    np.testing.assert_array_equal(tau_bar, 0.0)


def test_tau_of_a_diagonal_matrix_is_twice_its_extreme_entries():
    tau_low, tau_bar = symmetric_part_extremes(np.diag([-0.4, -0.2, -0.1]))
    assert (tau_low, tau_bar) == (pytest.approx(-0.8), pytest.approx(-0.2))


@pytest.mark.parametrize("n", [3, 12, 40])
def test_symmetric_part_eigenvalues_agree_with_scipy_eigh(n):
    stack = np.random.default_rng(13 + n).standard_normal((15, n, n))
    eig = symmetric_part_eigenvalues(stack)
    reference = reference_symmetric_eigenvalues(stack)
    scale = np.abs(reference).max(axis=-1)
    assert np.all(np.abs(eig - reference) <= lapack_tolerance(scale, n))
    tau_low, tau_bar = symmetric_part_extremes(stack)
    np.testing.assert_array_equal(tau_low, eig[:, 0])
    np.testing.assert_array_equal(tau_bar, eig[:, -1])
    assert np.all(tau_low <= tau_bar)


# --- M(rho) = Mo + rho I (45) --------------------------------------------------------------------


def test_add_identity_adds_rho_to_the_diagonal_only():
    mo = np.random.default_rng(14).standard_normal((4, 5, 5))
    before = mo.copy()
    m = add_identity(mo, 0.7)
    np.testing.assert_array_equal(mo, before)  # the input is not modified
    np.testing.assert_array_equal(m, mo + 0.7 * np.eye(5))
    np.testing.assert_array_equal(add_identity(mo, 0.0), mo)


def test_add_identity_works_on_extra_batch_axes():
    mo = np.zeros((2, 3, 4, 4))
    np.testing.assert_array_equal(add_identity(mo, 1.0), np.broadcast_to(np.eye(4), (2, 3, 4, 4)))


def test_skip_of_a_symmetric_matrix_shifts_its_eigenvalues():
    """For symmetric Mo with eigenvalues l_i, s_i(Mo + rho I) = |l_i + rho| (sorted decreasing)."""
    rng = np.random.default_rng(15)
    b = rng.standard_normal((6, 6))
    mo = (b + b.T) / 4
    lam = np.linalg.eigvalsh(mo)
    for rho in (0.0, 0.3, 1.0):
        s = singular_values(add_identity(mo, rho))
        expected = np.sort(np.abs(lam + rho))[::-1]
        assert np.all(np.abs(s - expected) <= 16 * 6 * EPS * expected[0])
