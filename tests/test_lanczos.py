"""The batched Lanczos on a matrix-free operator (linalg/lanczos.py) against numpy.linalg.eigvalsh
of the same matrices: both ends, their bounds, and the bookkeeping (compaction, caps, starts).

Allowance for rounding: eigvalsh errs by p(N) eps ||A|| (p(N) taken as 16 N, as in bounds.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from svperturb.linalg.lanczos import RITZ_DENSE_LARGEST, MatrixFreeOperator, lanczos_ends

EPS = np.finfo(np.float64).eps


def dense_operator(matrices: np.ndarray) -> MatrixFreeOperator:
    return MatrixFreeOperator(lambda q: (matrices @ q[..., None])[..., 0],
                              lambda rows: dense_operator(matrices[rows]))


def symmetric(seed: int, batch: int, size: int, spectrum=None) -> np.ndarray:
    """Random symmetric matrices; with `spectrum` (batch, size) their eigenvalues."""
    rng = np.random.default_rng(seed)
    if spectrum is None:
        g = rng.standard_normal((batch, size, size))
        return (g + np.swapaxes(g, -1, -2)) / 2
    q, _ = np.linalg.qr(rng.standard_normal((batch, size, size)))
    return (q * spectrum[:, None, :]) @ np.swapaxes(q, -1, -2)


def run(matrices, **options):
    batch, size = matrices.shape[0], matrices.shape[-1]
    defaults = {"rtol": 1e-12, "max_iter": None, "seed": 3, "rounding_ulps": size, "ends": "both"}
    return lanczos_ends(dense_operator(matrices), batch, size, matrices.dtype, np,
                        **{**defaults, **options})


@pytest.mark.parametrize("size", [12, 60])  # both tridiagonal routes (RITZ_DENSE_LARGEST)
def test_both_ends_agree_with_eigvalsh_within_their_bounds(size):
    matrices = symmetric(size, 5, size)
    eigenvalues = np.linalg.eigvalsh(matrices)
    result = run(matrices, rtol=1e-10)
    rounding = 16 * size * EPS * np.abs(eigenvalues).max(axis=-1)
    top_error = np.abs(result.top - eigenvalues[:, -1])
    bottom_error = np.abs(result.bottom - eigenvalues[:, 0])
    assert np.all(top_error <= result.top_bound + rounding)
    assert np.all(bottom_error <= result.bottom_bound + rounding)
    scale = np.abs(eigenvalues).max(axis=-1)
    assert np.all(result.top_bound <= 1e-10 * scale + size * EPS * scale)  # stopped when tight
    assert np.all(top_error <= 1e-8 * scale) and np.all(bottom_error <= 1e-8 * scale)
    assert size <= RITZ_DENSE_LARGEST or result.steps.max() > RITZ_DENSE_LARGEST


def test_ritz_values_lie_inside_the_spectrum():
    matrices = symmetric(7, 4, 30)
    eigenvalues = np.linalg.eigvalsh(matrices)
    result = run(matrices, max_iter=6)
    rounding = 16 * 30 * EPS * np.abs(eigenvalues).max(axis=-1)
    assert np.all(result.top <= eigenvalues[:, -1] + rounding)
    assert np.all(result.bottom >= eigenvalues[:, 0] - rounding)


def test_a_run_cut_short_returns_a_bound_that_still_holds():
    # a clustered top end converges slowly: six steps leave a visible error, which the bound covers
    spectrum = np.tile(np.r_[np.linspace(-1, 1, 38), 1.01, 1.02], (3, 1))
    matrices = symmetric(8, 3, 40, spectrum)
    result = run(matrices, max_iter=6)
    assert np.all(result.steps == 6)
    error = np.abs(result.top - 1.02)
    assert np.all(error > 1e-6)  # really cut short
    assert np.all(error <= result.top_bound + 1e-12)


def test_the_top_end_alone_leaves_the_bottom_nan_and_gives_the_top_vector():
    spectrum = np.tile(np.r_[np.linspace(-3, 1, 19), 2.0], (2, 1))
    matrices = symmetric(9, 2, 20, spectrum)
    result = run(matrices, ends="top", vector=True)
    assert np.all(np.isnan(result.bottom)) and np.all(np.isnan(result.bottom_bound))
    np.testing.assert_allclose(result.top, 2.0, rtol=1e-12)
    _, vectors = np.linalg.eigh(matrices)
    cosine = np.abs((vectors[:, :, -1] * result.top_vectors).sum(axis=-1))
    np.testing.assert_allclose(cosine, 1, atol=1e-10)


def test_samples_leave_the_batch_as_they_finish_without_changing_the_others():
    # sample 0 (a multiple of the identity) stops at the first step; the others run on
    matrices = symmetric(10, 3, 16)
    matrices[0] = 2 * np.eye(16)
    start = np.random.default_rng(0).standard_normal((3, 16))
    together = run(matrices, start=start)
    alone = [run(matrices[j:j + 1], start=start[j:j + 1]) for j in range(3)]
    assert together.steps[0] == 1
    for j in range(3):
        assert together.steps[j] == alone[j].steps[0]
        np.testing.assert_allclose(together.top[j], alone[j].top[0], rtol=1e-14)
        np.testing.assert_allclose(together.bottom[j], alone[j].bottom[0], rtol=1e-14)


def test_a_given_start_replaces_the_seed():
    matrices = symmetric(11, 2, 10)
    start = np.random.default_rng(1).standard_normal((2, 10))
    a, b = run(matrices, start=start, seed=1), run(matrices, start=start, seed=2)
    np.testing.assert_array_equal(a.top, b.top)
    np.testing.assert_array_equal(a.steps, b.steps)


def test_bad_options_are_refused_by_name():
    matrices = symmetric(12, 1, 4)
    with pytest.raises(ValueError, match="ends: got 'bottom'; allowed: top, both"):
        run(matrices, ends="bottom")
    with pytest.raises(ValueError, match="vector"):
        run(matrices, ends="both", vector=True)
