"""svperturb's batched spectra kernels (eigenvalue_kernel.cu): run here as their C build
(kernel_on_cpu), on a GPU through CuPy. The engine's certificates assume of any symmetric
eigensolver a backward error of at most n eps ||G||_2 (engine module docstring), so the symmetric
kernel's eigenvalues must lie within 2 n eps ||G||_2 of LAPACK's (each within n eps ||G||_2 of the
exact ones); of the singular-value kernel they assume 3n eps ||A||_2 (the bidiagonalization's n,
the QR steps' 2n on the 2n x 2n tridiagonal), so its values must lie within (3n + n) eps s_1 of
LAPACK's."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from support import kernel_on_cpu
from support.devices import CUPY
from svperturb.linalg import engine
from svperturb.linalg.gpu import eigenvalue_kernel
from svperturb.linalg.spectra import add_identity
from svperturb.sampling.ensembles import unit_variance_matrices, weight_std

pytestmark = pytest.mark.skipif(kernel_on_cpu.compiler() is None, reason="needs a C compiler")

EPS = np.finfo(np.float64).eps
on_cpu = kernel_on_cpu.symmetric_eigenvalues_on_cpu
svd_on_cpu = kernel_on_cpu.singular_values_on_cpu


def assert_within(ours, reference, p: float, what: str) -> None:
    """|ours - reference| <= p eps ||G||_2 for every value (||G||_2 the largest |reference|)."""
    bound = p * EPS * np.abs(reference).max(axis=1, keepdims=True)
    excess = np.abs(ours - reference) / np.where(bound > 0, bound, np.inf)
    assert np.all(np.abs(ours - reference) <= bound), (
        f"{what}: error {np.nanmax(excess):.2f} times {p} eps ||G||")


def assert_within_twice_the_bound(ours, reference, p: float, what: str) -> None:
    """Both within the backward-error bound p eps ||G||_2 of the exact eigenvalues."""
    assert_within(ours, reference, 2 * p, what)


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
    middle = (n - 1) / 2  # Wilkinson's W+: its largest eigenvalues come in pairs agreeing to ~1e-14
    wilkinson = np.diag(np.abs(np.arange(n) - middle)) + np.eye(n, k=1) + np.eye(n, k=-1)
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
        "Wilkinson W+": np.broadcast_to(wilkinson, (count, n, n)).copy(),
        "all ones (rank one)": np.ones((count, n, n)),
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


def kernel_calls(monkeypatch) -> list[tuple[str, tuple]]:
    """From now on, each call of the kernels' wrappers (whatever stands behind them), as
    (wrapper name, stack shape), in order."""
    calls = []
    for name in ("symmetric_eigenvalues_by_kernel", "singular_values_by_kernel"):
        real = getattr(eigenvalue_kernel, name)
        monkeypatch.setattr(eigenvalue_kernel, name, lambda m, xp, name=name, real=real:
                            calls.append((name, m.shape)) or real(m, xp))
    return calls


def general_stacks(n: int, count: int = 12) -> dict[str, np.ndarray]:
    """The matrices whose singular values the engine's augmented route computes, and harder ones."""
    rng = np.random.default_rng(n + 1)
    k_n = rng.standard_normal((count, n, n))
    w = unit_variance_matrices(6, "kernel", n, "gaussian", 0, count) * weight_std(n, 2.0)
    q = np.linalg.qr(rng.standard_normal((count, n, n)))[0]
    graded = 10.0 ** -np.linspace(0, 12, n)  # kappa 1e12
    rank = max(1, n // 3)
    return {
        "K_n": k_n,
        "ResNet W1 + I": add_identity(w, 1.0),
        "W1 alone": w,
        "ConvNet layer (zero rows)": k_n * (rng.random((count, n, 1)) < 0.5),
        "ReLU pattern (zero columns)": k_n * (rng.random((count, 1, n)) < 0.5),
        "rank n / 3": k_n[:, :, :rank] @ rng.standard_normal((count, rank, n)),
        "Q diag(graded) Q'": (q * graded[None, None, :]) @ np.swapaxes(q[::-1], -1, -2),
        "upper triangular": np.triu(k_n),
        "bidiagonal already": np.triu(np.tril(k_n, 1)),
        "zero": np.zeros((count, n, n)),
        "tiny (1e-200 K_n)": 1e-200 * k_n,
        "huge (1e200 K_n)": 1e200 * k_n,
    }


@pytest.mark.parametrize("n", [33, 64, 100, 200])
def test_singular_values_lie_within_the_engines_bound_of_lapack(n):
    """Within (3n + n) eps s_1 of LAPACK's gesdd at the widths where the engine calls the kernel."""
    for kind, stack in general_stacks(n, count=40).items():
        ours = svd_on_cpu(stack)
        assert np.all(np.diff(ours, axis=1) <= 0), kind
        assert_within(ours, np.linalg.svd(stack, compute_uv=False), 4 * n, f"{kind}, n = {n}")


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_small_singular_values_are_correct_to_rounding(n):
    """As test_small_widths_are_correct_to_rounding: 10 n eps s_1."""
    for kind, stack in general_stacks(n, count=40).items():
        assert_within(svd_on_cpu(stack), np.linalg.svd(stack, compute_uv=False), 10 * n,
                      f"{kind}, n = {n}")


def test_the_singular_value_kernel_returns_the_augmented_matrixs_eigenvalues_in_pairs():
    """All 2n values are the eigenvalues of [[0, A], [A^T, 0]], +-s_i, each within 4n eps s_1 of
    LAPACK's eigenvalues of the formed matrix."""
    n = 30
    a = general_stacks(n, count=20)["K_n"]
    h = np.block([[np.zeros_like(a), a], [np.swapaxes(a, -1, -2), np.zeros_like(a)]])
    assert_within(kernel_on_cpu.all_values_on_cpu(a), np.linalg.eigvalsh(h)[:, ::-1], 4 * n,
                  "augmented")


def test_hand_cases():
    """[[2, 1], [1, 2]]: 3 and 1; the second-difference matrix tridiag(-1, 2, -1) of order 3:
    2 + sqrt(2), 2, 2 - sqrt(2); a diagonal matrix: its diagonal, sorted, exactly. Singular values:
    [[1, 1], [0, 1]] has the golden ratio phi and 1 / phi; a diagonal matrix |its diagonal|."""
    np.testing.assert_allclose(on_cpu(np.array([[[2.0, 1.0], [1.0, 2.0]]]))[0], [3.0, 1.0],
                               rtol=0, atol=4 * EPS * 3)
    second = np.array([[[2.0, -1.0, 0.0], [-1.0, 2.0, -1.0], [0.0, -1.0, 2.0]]])
    np.testing.assert_allclose(on_cpu(second)[0], [2 + np.sqrt(2), 2.0, 2 - np.sqrt(2)],
                               rtol=0, atol=6 * EPS * 4)
    diagonal = np.diag([0.5, -3.0, 7.0, 0.0, 1e-30])[None]
    np.testing.assert_array_equal(on_cpu(diagonal)[0], [7.0, 0.5, 1e-30, 0.0, -3.0])
    phi = (1 + np.sqrt(5)) / 2
    np.testing.assert_allclose(svd_on_cpu(np.array([[[1.0, 1.0], [0.0, 1.0]]]))[0],
                               [phi, 1 / phi], rtol=0, atol=8 * EPS * phi)
    np.testing.assert_allclose(svd_on_cpu(diagonal)[0], [7.0, 3.0, 0.5, 1e-30, 0.0], rtol=0,
                               atol=10 * EPS * 7)


KERNELS = {"symmetric": (on_cpu, symmetric_stacks), "singular": (svd_on_cpu, general_stacks)}


@pytest.mark.parametrize("kernel", sorted(KERNELS))
def test_each_matrix_is_independent_of_its_neighbours_and_of_the_batch(kernel):
    """The layout puts entry k of every matrix side by side (stride = the batch); each matrix's
    arithmetic must not depend on it: one at a time, 8 and 37 (odd stride) per call agree bit for
    bit."""
    run, stacks = KERNELS[kernel]
    stack = np.concatenate(list(stacks(40, count=6).values()))
    one = run(stack, chunk=1)
    np.testing.assert_array_equal(run(stack, chunk=8), one)
    np.testing.assert_array_equal(run(stack, chunk=37), one)


@pytest.mark.parametrize("kernel", sorted(KERNELS))
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_matrix_with_a_non_finite_entry_gets_nan_and_the_others_keep_their_values(kernel, bad):
    run, stacks = KERNELS[kernel]
    stack = next(iter(stacks(36, count=8).values()))
    clean = run(stack, chunk=8)
    stack[3, 5, 2] = stack[3, 2, 5] = bad
    values = run(stack, chunk=8)
    assert np.isnan(values[3]).all()
    np.testing.assert_array_equal(np.delete(values, 3, axis=0), np.delete(clean, 3, axis=0))


def test_the_engine_takes_the_kernels_on_cupys_routes_from_n_33(cupy_routes, monkeypatch):
    """With CuPy's routes (support.devices.take_cupy_routes) the engine's spectra come from the
    kernels' C build from n = 33 on: the Gram matrices' eigenvalues from the symmetric one, the
    samples the Gram route cannot certify from the singular-value one; both routes still meet the
    contract."""
    calls = kernel_calls(monkeypatch)
    w = unit_variance_matrices(7, "kernel", 40, "gaussian", 0, 60) * weight_std(40, 2.0)
    w[30:] = add_identity(w[30:], 1.0)  # W1 alone (kappa ~ n), then ResNet layers (kappa ~ 2)
    spectrum = engine.singular_values(w, np, well_conditioned=False)
    (first, gram), (second, rest) = calls[:2]
    assert (first, gram) == ("symmetric_eigenvalues_by_kernel", (60, 40, 40))
    assert second == "singular_values_by_kernel" and rest == (30, 40, 40)
    assert spectrum.augmented[:30].mean() > 0.9 and not spectrum.augmented[30:].any()
    reference = np.linalg.svd(w, compute_uv=False)
    np.testing.assert_allclose(spectrum.values[:, 0], reference[:, 0], rtol=1e-12, atol=0)
    np.testing.assert_allclose(spectrum.values[:, -1], reference[:, -1], rtol=1e-10, atol=0)
    calls.clear()
    engine.singular_values(w[:, :32, :32], np)  # n = 32: the library's batched Jacobi SVD
    assert calls == []


def test_a_matrix_on_which_a_kernel_fails_goes_on_to_the_next_route(cupy_routes, monkeypatch):
    """A kernel reports a failure (QR steps not converged) as NaN for that matrix alone: no
    certificate passes NaN, so the sample goes on to the augmented route, and to LAPACK where the
    singular-value kernel fails too; every sample still meets the contract."""
    w = add_identity(unit_variance_matrices(9, "kernel", 36, "gaussian", 0, 12)
                     * weight_std(36, 2.0), 1.0)
    real_symmetric = eigenvalue_kernel.symmetric_eigenvalues_by_kernel
    real_singular = eigenvalue_kernel.singular_values_by_kernel

    def symmetric(gram, xp):  # the Gram matrices of all 12 (ResNet layers: all hopeful)
        assert len(gram) == 12
        values = real_symmetric(gram, xp)
        values[[3, 7]] = np.nan
        return values

    def singular(a, xp):  # the samples left: 3 and 7
        np.testing.assert_array_equal(a, w[[3, 7]])
        values = real_singular(a, xp)
        values[1] = np.nan
        return values

    monkeypatch.setattr(eigenvalue_kernel, "symmetric_eigenvalues_by_kernel", symmetric)
    monkeypatch.setattr(eigenvalue_kernel, "singular_values_by_kernel", singular)
    spectrum = engine.singular_values(w, np)
    assert spectrum.augmented.tolist() == [i == 3 for i in range(12)]
    assert spectrum.fallback.tolist() == [i == 7 for i in range(12)]
    np.testing.assert_allclose(spectrum.values, np.linalg.svd(w, compute_uv=False), rtol=1e-10,
                               atol=0)


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
        with caplog.at_level(logging.WARNING, logger="svperturb.linalg.gpu.eigenvalue_kernel"):
            assert not eigenvalue_kernel._compiles()
            assert not eigenvalue_kernel._compiles()
    finally:
        eigenvalue_kernel._compiles.cache_clear()
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "No module named 'cupy'" in warnings[0]
    assert not eigenvalue_kernel.kernel_available(np)


@pytest.mark.skipif(CUPY is None, reason="needs CuPy and a usable GPU")
@pytest.mark.parametrize("n", [33, 100])
def test_on_the_gpu_the_kernels_meet_the_bounds_and_agree_with_their_c_build(n):
    """130 matrices of each kind: two full blocks of 64 threads and a partial one."""
    for kind, stack in symmetric_stacks(n, count=130).items():
        ours = eigenvalue_kernel.symmetric_eigenvalues_by_kernel(CUPY.asarray(stack), CUPY).get()
        reference = np.linalg.eigvalsh(stack)[:, ::-1]
        assert_within_twice_the_bound(ours, reference, n, f"{kind}, n = {n}, GPU")
        assert_within_twice_the_bound(ours, on_cpu(stack), n, f"{kind}, n = {n}, GPU vs C")
    for kind, stack in general_stacks(n, count=130).items():
        ours = eigenvalue_kernel.singular_values_by_kernel(CUPY.asarray(stack), CUPY).get()
        assert_within(ours, np.linalg.svd(stack, compute_uv=False), 4 * n, f"{kind}, n = {n}, GPU")
        assert_within(ours, svd_on_cpu(stack), 6 * n, f"{kind}, n = {n}, GPU vs C")


@pytest.mark.skipif(CUPY is None, reason="needs CuPy and a usable GPU")
def test_on_the_gpu_the_engine_with_the_kernels_meets_the_contract(monkeypatch):
    """On CuPy with the kernels taken on any batch: ResNet layers by the Gram route (symmetric
    kernel), W1 alone by the augmented one (singular-value kernel) and inverse iteration; s_1
    within 1e-12 and s_n within 1e-10 of LAPACK's, nothing left to LAPACK on either."""
    smallest, largest, _ = engine.EIGENVALUE_KERNEL["cupy"]
    monkeypatch.setitem(engine.EIGENVALUE_KERNEL, "cupy", (smallest, largest, 1))
    calls = kernel_calls(monkeypatch)
    w = unit_variance_matrices(8, "kernel", 100, "gaussian", 0, 200) * weight_std(100, 2.0)
    w[100:] = add_identity(w[100:], 1.0)
    spectrum = engine.singular_values(CUPY.asarray(w), CUPY, well_conditioned=False)
    assert {name for name, _ in calls} == {"symmetric_eigenvalues_by_kernel",
                                           "singular_values_by_kernel"}
    values, fallback = spectrum.values.get(), spectrum.fallback.get()
    reference = np.linalg.svd(w, compute_uv=False)
    np.testing.assert_allclose(values[:, 0], reference[:, 0], rtol=1e-12, atol=0)
    np.testing.assert_allclose(values[:, -1], reference[:, -1], rtol=1e-10, atol=0)
    assert not fallback.any()


@pytest.mark.skipif(kernel_on_cpu.cxx_compiler() is None, reason="needs a C++ compiler")
@pytest.mark.parametrize("count", [1, 64, 150])
def test_the_cuda_branch_launched_as_cupy_launches_it_equals_the_c_build(monkeypatch, count):
    """The wrappers with the kernels' CUDA branch (thread indices emulated) in place of CuPy's
    compiled kernels: the grid covers every matrix (150 = 2 full blocks of 64 and a partial one,
    whose idle threads must write nothing), the arguments are what the kernels take, and each
    matrix gets the C build's values bit for bit; the caller's stack is left as it was."""
    monkeypatch.setattr(eigenvalue_kernel, "_compiled", kernel_on_cpu.cuda_emulation)
    stack = symmetric_stacks(34, count=count)["Gram of ResNet W1 + I"]
    before = stack.copy()
    np.testing.assert_array_equal(eigenvalue_kernel.symmetric_eigenvalues_by_kernel(stack, np),
                                  on_cpu(stack, chunk=count))
    np.testing.assert_array_equal(eigenvalue_kernel.singular_values_by_kernel(stack, np),
                                  svd_on_cpu(stack, chunk=count))
    np.testing.assert_array_equal(stack, before)


needs_nvrtc = pytest.mark.skipif(
    kernel_on_cpu.nvrtc_path() is None or kernel_on_cpu.ptxas_path() is None,
    reason="needs NVIDIA's wheels nvidia-cuda-nvrtc-cu12 and nvidia-cuda-nvcc-cu12 "
           "(svperturb[test])")


@needs_nvrtc
@pytest.mark.parametrize("architecture", [80, 90])
def test_nvrtc_compiles_the_kernels_as_cupy_does_without_a_warning(architecture):
    """The source CuPy hands NVRTC, with CuPy's options, for A100 (80) and H100/H200 (90): every
    kernel exported under its C name (RawModule.get_function finds them so), no warning."""
    ptx, log = kernel_on_cpu.nvrtc_ptx(architecture)
    for name in eigenvalue_kernel.KERNELS:
        assert f".entry {name}(" in ptx
    assert "warning" not in log.lower(), log


@needs_nvrtc
@pytest.mark.parametrize("architecture", [80, 90])
def test_the_rows_of_a_pass_stay_in_registers_on_the_gpu(architecture):
    """The kernels' design (eigenvalue_kernel.cu, ROWS): the vector entries of the ROWS lines a
    pass updates are held in registers. In the GPU's machine code that means no local memory per
    thread: no stack frame (an array indexed at run time would take one) and no spills (too many
    live values would), either of which would add a second stream of device-memory traffic."""
    resources = kernel_on_cpu.gpu_resources(architecture)
    assert set(resources) == set(eigenvalue_kernel.KERNELS)
    for name, used in resources.items():
        assert (used.stack_frame, used.spill_stores, used.spill_loads) == (0, 0, 0), (name, used)


# The tile kernels: one block per matrix, in shared memory (eigenvalue_kernel.cu), run here in the
# CUDA branch with each block's threads as concurrent std::threads (kernel_on_cpu.cuda_emulation).
needs_cxx = pytest.mark.skipif(kernel_on_cpu.cxx_compiler() is None, reason="needs a C++ compiler")
TILED = {"symmetric": (eigenvalue_kernel.symmetric_eigenvalues_by_kernel, symmetric_stacks),
         "singular": (eigenvalue_kernel.singular_values_by_kernel, general_stacks)}


@pytest.fixture
def emulated_gpu(monkeypatch):
    """The kernels' CUDA branch, emulated, in place of CuPy's compiled kernels."""
    monkeypatch.setattr(eigenvalue_kernel, "_compiled", kernel_on_cpu.cuda_emulation)


@needs_cxx
@pytest.mark.parametrize("n", [33, 100, 168])
def test_the_tile_kernels_lie_within_the_engines_bounds_of_lapack(emulated_gpu, n):
    """The same bounds as the streaming kernels' (2 n eps ||G|| and 4 n eps s_1 from LAPACK), at
    the widths where they run: 33 (64 threads, 31 idle), 100 (128) and 168, the widest tile an
    H100 or H200 holds (256 threads, 227 kB of shared memory). Few matrices: each emulated
    block's threads meet at every barrier (~4,000 a matrix at n = 168) on this CPU's few cores;
    at n = 168 the kinds that stress scaling and deflation only."""
    count = 1 if n > 64 else 2
    hard = ("Gram of K_n", "graded diagonal", "zero", "huge (1e200 K^T K)", "K_n",
            "ReLU pattern (zero columns)", "Q diag(graded) Q'", "tiny (1e-200 K_n)")

    def chosen(stacks):
        return {kind: stack for kind, stack in stacks.items() if n <= 128 or kind in hard}

    for kind, stack in chosen(symmetric_stacks(n, count=count)).items():
        ours = eigenvalue_kernel.symmetric_eigenvalues_by_kernel(stack, np, tile=True)
        assert np.all(np.diff(ours, axis=1) <= 0), kind
        assert_within_twice_the_bound(ours, np.linalg.eigvalsh(stack)[:, ::-1], n,
                                      f"{kind}, n = {n}, tile")
    for kind, stack in chosen(general_stacks(n, count=count)).items():
        ours = eigenvalue_kernel.singular_values_by_kernel(stack, np, tile=True)
        assert np.all(np.diff(ours, axis=1) <= 0), kind
        assert_within(ours, np.linalg.svd(stack, compute_uv=False), 4 * n, f"{kind}, n = {n}, tile")


@needs_cxx
@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_the_tile_kernels_are_correct_to_rounding_at_small_widths(emulated_gpu, n):
    """As test_small_widths_are_correct_to_rounding: 10 n eps."""
    for kind, stack in symmetric_stacks(n, count=4).items():
        assert_within_twice_the_bound(
            eigenvalue_kernel.symmetric_eigenvalues_by_kernel(stack, np, tile=True),
            np.linalg.eigvalsh(stack)[:, ::-1], 5 * n, f"{kind}, n = {n}, tile")
    for kind, stack in general_stacks(n, count=4).items():
        assert_within(eigenvalue_kernel.singular_values_by_kernel(stack, np, tile=True),
                      np.linalg.svd(stack, compute_uv=False), 10 * n, f"{kind}, n = {n}, tile")


@needs_cxx
@pytest.mark.parametrize("kernel", sorted(TILED))
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_tile_with_a_non_finite_entry_gets_nan_and_the_others_keep_their_values(
        emulated_gpu, kernel, bad):
    """Each block reads its own matrix only: the others' values are those of a clean run, bit for
    bit."""
    run, stacks = TILED[kernel]
    stack = next(iter(stacks(36, count=5).values()))
    clean = run(stack, np, tile=True)
    stack[3, 5, 2] = stack[3, 2, 5] = bad
    values = run(stack, np, tile=True)
    assert np.isnan(values[3]).all()
    np.testing.assert_array_equal(np.delete(values, 3, axis=0), np.delete(clean, 3, axis=0))


needs_thread_sanitizer = pytest.mark.skipif(
    not kernel_on_cpu.thread_sanitizer_available(), reason="needs ThreadSanitizer (g++ -fsanitize)")


@needs_thread_sanitizer
@pytest.mark.parametrize("n", [5, 33, 64])
@pytest.mark.parametrize("name", [eigenvalue_kernel.TILE_TRIDIAGONALIZE,
                                  eigenvalue_kernel.TILE_BIDIAGONALIZE])
def test_the_tile_kernels_threads_share_no_address_between_barriers(name, n):
    """ThreadSanitizer watches every shared-memory and device-memory access of a block's threads,
    run concurrently: two threads touching one address, one of them writing, with no
    __syncthreads between them, is a data race and fails the program. n = 5 (32 threads, 27
    idle), 33 (64: a partial second warp), 64 (every thread busy at first). The values still meet
    the bounds."""
    symmetric = name == eigenvalue_kernel.TILE_TRIDIAGONALIZE
    stacks = symmetric_stacks(n, count=2) if symmetric else general_stacks(n, count=2)
    stack = np.concatenate([stacks["Gram of K_n" if symmetric else "K_n"],
                            stacks["zero"], stacks["huge (1e200 K^T K)" if symmetric
                                                       else "huge (1e200 K_n)"]])
    values = kernel_on_cpu.tile_kernels_under_thread_sanitizer(name, stack)
    if symmetric:
        assert_within_twice_the_bound(values, np.linalg.eigvalsh(stack)[:, ::-1], 5 * n, name)
    else:
        assert_within(values[:, :n], np.linalg.svd(stack, compute_uv=False), 10 * n, name)


@needs_thread_sanitizer
def test_thread_sanitizer_finds_a_missing_barrier(monkeypatch):
    """The check above can fail: without the barrier between writing the reflector v and reading
    it in A22 v, a thread may read an entry another thread has not yet written."""
    kernel_on_cpu._sanitized_program.cache_clear()
    text = eigenvalue_kernel.source()
    barrier = "v[i] = i == k + 1 ? 1.0 : T(i, k) * inverse;\n        __syncthreads();\n"
    assert barrier in text
    monkeypatch.setattr(eigenvalue_kernel, "source", lambda: text.replace(
        barrier, "v[i] = i == k + 1 ? 1.0 : T(i, k) * inverse;\n"))
    try:
        with pytest.raises(RuntimeError, match="data race"):
            kernel_on_cpu.tile_kernels_under_thread_sanitizer(
                eigenvalue_kernel.TILE_TRIDIAGONALIZE, symmetric_stacks(40, count=2)["Gram of K_n"])
    finally:
        kernel_on_cpu._sanitized_program.cache_clear()


def test_a_tile_asks_for_the_shared_memory_it_needs():
    """The matrix (rows of odd stride), two vectors and a sum slot per thread, 8 bytes each; 48 kB
    without asking holds n <= 76, an H100's or H200's 227 kB (232,448 bytes) n <= 168, an A100's
    163 kB (166,912) n <= 142."""
    assert eigenvalue_kernel.tile_bytes(100) == 8 * (100 * 101 + 200 + 128)
    assert eigenvalue_kernel.tile_bytes(33) == 8 * (33 * 33 + 66 + 64)
    widest = {}
    for limit in (49_152, 232_448, 166_912):  # a block's default, an H100's, an A100's
        widest[limit] = max(n for n in range(1, 400) if eigenvalue_kernel.tile_bytes(n) <= limit)
    assert widest == {49_152: 76, 232_448: 168, 166_912: 142}
    assert [eigenvalue_kernel.tile_threads(n) for n in (1, 32, 33, 64, 65, 168)] == \
        [32, 32, 64, 64, 128, 256]


def test_without_a_gpu_the_kernels_take_no_tile():
    """uses_tile needs a device's shared memory: NumPy has none (and never runs the check)."""
    assert eigenvalue_kernel.widest_tile(np) == 0
    assert not eigenvalue_kernel.uses_tile(40, np)


@pytest.mark.skipif(CUPY is None, reason="needs CuPy and a usable GPU")
@pytest.mark.parametrize("n", [33, 100])
def test_on_the_gpu_the_tile_kernels_meet_the_bounds_and_pass_their_check(n):
    assert eigenvalue_kernel.widest_tile(CUPY) >= 100
    assert eigenvalue_kernel._tile_agrees()
    for kind, stack in symmetric_stacks(n, count=130).items():
        ours = eigenvalue_kernel.symmetric_eigenvalues_by_kernel(CUPY.asarray(stack), CUPY,
                                                                 tile=True).get()
        assert_within_twice_the_bound(ours, np.linalg.eigvalsh(stack)[:, ::-1], n,
                                      f"{kind}, n = {n}, GPU tile")
    for kind, stack in general_stacks(n, count=130).items():
        ours = eigenvalue_kernel.singular_values_by_kernel(CUPY.asarray(stack), CUPY,
                                                           tile=True).get()
        assert_within(ours, np.linalg.svd(stack, compute_uv=False), 4 * n,
                      f"{kind}, n = {n}, GPU tile")


@needs_cxx
def test_the_symmetric_kernels_read_the_lower_triangle_only(emulated_gpu):
    """As LAPACK's eigvalsh (UPLO='L'): NaN above the diagonal changes nothing, in the C build,
    the streaming kernel's CUDA branch and the tile kernel."""
    stack = symmetric_stacks(36, count=4)["Gram of K_n"]
    poisoned = stack + np.triu(np.full((36, 36), np.nan), 1)
    for run in (on_cpu, lambda m: eigenvalue_kernel.symmetric_eigenvalues_by_kernel(m, np, False),
                lambda m: eigenvalue_kernel.symmetric_eigenvalues_by_kernel(m, np, True)):
        np.testing.assert_array_equal(run(poisoned), run(stack))
