"""svperturb's batched eigenvalue kernel (eigenvalue_kernel.cu): run here as its C build
(kernel_on_cpu), on a GPU through CuPy. The engine's certificates assume of any symmetric
eigensolver a backward error of at most n eps ||G||_2 (engine module docstring), so the kernel's
eigenvalues must lie within 2 n eps ||G||_2 of LAPACK's (each within n eps ||G||_2 of the exact
ones)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import kernel_on_cpu
from conftest import CUPY
from svperturb import eigenvalue_kernel, engine
from svperturb.ensembles import unit_variance_matrices, weight_std
from svperturb.spectra import add_identity

pytestmark = pytest.mark.skipif(kernel_on_cpu.compiler() is None, reason="needs a C compiler")

EPS = np.finfo(np.float64).eps
on_cpu = kernel_on_cpu.symmetric_eigenvalues_on_cpu


def assert_within_twice_the_bound(ours, reference, p: float, what: str) -> None:
    """|ours - reference| <= 2 p eps ||G||_2 for every eigenvalue (||G||_2 the largest |lambda|):
    both within the backward-error bound p eps ||G||_2 of the exact eigenvalues."""
    bound = 2 * p * EPS * np.abs(reference).max(axis=1, keepdims=True)
    excess = np.abs(ours - reference) / np.where(bound > 0, bound, np.inf)
    assert np.all(np.abs(ours - reference) <= bound), (
        f"{what}: error {np.nanmax(excess):.2f} times 2 p eps ||G||")


def gram(a: np.ndarray) -> np.ndarray:
    return np.swapaxes(a, -1, -2) @ a


def symmetric_stacks(n: int, count: int = 12) -> dict[str, np.ndarray]:
    """The symmetric matrices the engine hands the eigensolver, and harder ones."""
    rng = np.random.default_rng(n)
    w = unit_variance_matrices(5, "kernel", n, "gaussian", 0, count) * weight_std(n, 2.0)
    relu = rng.standard_normal((count, n, n)) * (rng.random((count, n, 1)) < 0.5)  # zero rows
    indefinite = rng.standard_normal((count, n, n))
    q = np.linalg.qr(rng.standard_normal((count, n, n)))[0]
    clustered = np.where(np.arange(n) < n // 2, 1.0, 1.0 + 1e-9)  # two eigenvalues, repeated
    graded = 10.0 ** -np.linspace(0, 12, n)
    return {
        "Gram of K_n": gram(rng.standard_normal((count, n, n))),
        "Gram of ResNet W1 + I": gram(add_identity(w, 1.0)),
        "Gram of W1 alone": gram(w),
        "Gram of a ReLU layer (zero rows)": gram(np.swapaxes(relu, -1, -2)),
        "augmented [[0, A], [A^T, 0]] (n / 2)": np.block([
            [np.zeros((count, n // 2, n // 2)), indefinite[:, : n // 2, : n // 2]],
            [np.swapaxes(indefinite[:, : n // 2, : n // 2], -1, -2),
             np.zeros((count, n // 2, n // 2))]]) if n >= 2 else indefinite,
        "indefinite": indefinite + np.swapaxes(indefinite, -1, -2),
        "clustered": (q * clustered[None, None, :]) @ np.swapaxes(q, -1, -2),
        "graded diagonal": np.broadcast_to(np.diag(graded), (count, n, n)).copy(),
        "zero": np.zeros((count, n, n)),
        "tiny (1e-200 K^T K)": 1e-200 * gram(indefinite),
        "huge (1e200 K^T K)": 1e200 * gram(indefinite),
    }


@pytest.mark.parametrize("n", [33, 64, 100, 200])
def test_eigenvalues_lie_within_the_engines_eigensolver_bound_of_lapack(n):
    """At the widths where the engine calls the kernel (EIGENVALUE_KERNEL)."""
    for kind, stack in symmetric_stacks(n, count=40).items():
        ours = on_cpu(stack)
        reference = np.linalg.eigvalsh(stack)[:, ::-1]
        assert np.all(np.diff(ours, axis=1) <= 0), kind  # decreasing
        assert_within_twice_the_bound(ours, reference, n, f"{kind}, n = {n}")


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_small_widths_are_correct_to_rounding(n):
    """Below n = 33 the engine never calls the kernel (the library's Jacobi solvers are exact and
    fast there) and p(n) = n is no safe constant: 10 n eps ||G|| checks the algorithm."""
    for kind, stack in symmetric_stacks(n, count=40).items():
        reference = np.linalg.eigvalsh(stack)[:, ::-1]
        assert_within_twice_the_bound(on_cpu(stack), reference, 5 * n, f"{kind}, n = {n}")


def test_hand_cases():
    """[[2, 1], [1, 2]]: 3 and 1; the second-difference matrix tridiag(-1, 2, -1) of order 3:
    2 + sqrt(2), 2, 2 - sqrt(2); a diagonal matrix: its diagonal, sorted, exactly."""
    np.testing.assert_allclose(on_cpu(np.array([[[2.0, 1.0], [1.0, 2.0]]]))[0], [3.0, 1.0],
                               rtol=0, atol=4 * EPS * 3)
    second = np.array([[[2.0, -1.0, 0.0], [-1.0, 2.0, -1.0], [0.0, -1.0, 2.0]]])
    np.testing.assert_allclose(on_cpu(second)[0], [2 + np.sqrt(2), 2.0, 2 - np.sqrt(2)],
                               rtol=0, atol=6 * EPS * 4)
    diagonal = np.diag([0.5, -3.0, 7.0, 0.0, 1e-30])[None]
    np.testing.assert_array_equal(on_cpu(diagonal)[0], [7.0, 0.5, 1e-30, 0.0, -3.0])


def test_each_matrix_is_independent_of_its_neighbours_and_of_the_batch():
    """The layout puts entry k of every matrix side by side (stride = the batch); each matrix's
    arithmetic must not depend on it: one at a time, 8 and 37 (odd stride) per call agree bit for
    bit."""
    stack = symmetric_stacks(40, count=74)["Gram of ResNet W1 + I"]
    one = on_cpu(stack, chunk=1)
    np.testing.assert_array_equal(on_cpu(stack, chunk=8), one)
    np.testing.assert_array_equal(on_cpu(stack, chunk=37), one)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_matrix_with_a_non_finite_entry_gets_nan_and_the_others_keep_their_values(bad):
    stack = symmetric_stacks(36, count=8)["Gram of K_n"]
    clean = on_cpu(stack, chunk=8)
    stack[3, 5, 2] = stack[3, 2, 5] = bad
    values = on_cpu(stack, chunk=8)
    assert np.isnan(values[3]).all()
    np.testing.assert_array_equal(np.delete(values, 3, axis=0), np.delete(clean, 3, axis=0))


def test_the_engine_takes_the_kernel_on_cupys_routes_from_n_33(cupy_routes, monkeypatch):
    """With CuPy's routes (conftest.take_cupy_routes) the engine's eigenvalues come from the
    kernel's C build from n = 33 on, and the Gram and augmented routes still meet the contract."""
    calls = []
    real = eigenvalue_kernel.symmetric_eigenvalues_by_kernel
    monkeypatch.setattr(eigenvalue_kernel, "symmetric_eigenvalues_by_kernel",
                        lambda m, xp: calls.append(m.shape) or real(m, xp))
    w = unit_variance_matrices(7, "kernel", 40, "gaussian", 0, 60) * weight_std(40, 2.0)
    spectrum = engine.singular_values(w, np, well_conditioned=False)
    assert calls[0] == (60, 40, 40) and (int(spectrum.augmented.sum()), 80, 80) in calls
    reference = np.linalg.svd(w, compute_uv=False)
    np.testing.assert_allclose(spectrum.values[:, 0], reference[:, 0], rtol=1e-12, atol=0)
    np.testing.assert_allclose(spectrum.values[:, -1], reference[:, -1], rtol=1e-10, atol=0)
    calls.clear()
    engine.singular_values(w[:, :32, :32], np)  # n = 32: the library's batched Jacobi SVD
    assert calls == []


def test_the_kernel_needs_enough_matrices(monkeypatch):
    """Below the table's fewest matrices, the library's eigensolver (one thread per matrix leaves a
    GPU idle on a small batch)."""
    monkeypatch.setitem(engine.EIGENVALUE_KERNEL, "numpy", (33, 400, 10))
    monkeypatch.setattr(eigenvalue_kernel, "kernel_available", lambda xp: True)
    assert not engine.uses_eigenvalue_kernel(9, 40, np)
    assert engine.uses_eigenvalue_kernel(10, 40, np)
    assert not engine.uses_eigenvalue_kernel(10, 401, np)
    assert not engine.uses_eigenvalue_kernel(10, 32, np)


def test_without_nvrtc_the_library_solver_is_used_and_said_once(caplog, monkeypatch):
    """Where the kernel cannot compile (no CuPy here), kernel_available is False, with one warning
    that names the cause."""
    eigenvalue_kernel._compiles.cache_clear()
    monkeypatch.setattr(eigenvalue_kernel, "_compiled", lambda: (_ for _ in ()).throw(
        ImportError("No module named 'cupy'")))
    try:
        with caplog.at_level(logging.WARNING, logger="svperturb.eigenvalue_kernel"):
            assert not eigenvalue_kernel._compiles()
            assert not eigenvalue_kernel._compiles()
    finally:
        eigenvalue_kernel._compiles.cache_clear()
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "No module named 'cupy'" in warnings[0]
    assert not eigenvalue_kernel.kernel_available(np)


@pytest.mark.skipif(CUPY is None, reason="needs CuPy and a usable GPU")
@pytest.mark.parametrize("n", [33, 100, 200])
def test_on_the_gpu_the_kernel_meets_the_bound_and_agrees_with_its_c_build(n):
    for kind, stack in symmetric_stacks(n, count=300).items():
        ours = eigenvalue_kernel.symmetric_eigenvalues_by_kernel(CUPY.asarray(stack), CUPY).get()
        reference = np.linalg.eigvalsh(stack)[:, ::-1]
        assert_within_twice_the_bound(ours, reference, n, f"{kind}, n = {n}, GPU")
        assert_within_twice_the_bound(ours, on_cpu(stack), n, f"{kind}, n = {n}, GPU vs C")


@pytest.mark.skipif(kernel_on_cpu.cxx_compiler() is None, reason="needs a C++ compiler")
@pytest.mark.parametrize("count", [1, 128, 300])
def test_the_cuda_branch_launched_as_cupy_launches_it_equals_the_c_build(monkeypatch, count):
    """symmetric_eigenvalues_by_kernel with the kernel's CUDA branch (thread indices emulated) in
    place of CuPy's compiled kernel: its grid covers every matrix (300 = 2 full blocks of 128 and
    a partial one, whose idle threads must write nothing), its arguments are what the kernel
    takes, and each matrix gets the C build's eigenvalues bit for bit."""
    monkeypatch.setattr(eigenvalue_kernel, "_compiled", lambda: kernel_on_cpu.cuda_emulation)
    stack = symmetric_stacks(34, count=count)["Gram of ResNet W1 + I"]
    np.testing.assert_array_equal(eigenvalue_kernel.symmetric_eigenvalues_by_kernel(stack, np),
                                  on_cpu(stack, chunk=count))
