"""The code svperturb runs only on CuPy, run here on tests/support/cupy_stand_in (NumPy behind
CuPy's interface and its host/device wall, the spectra kernels' CUDA branch emulated behind
RawModule): choosing the backend, compiling and launching the kernels, the tile kernels'
first-call check and its fallback, a simulate job's shard, the kernel sweep. What only a GPU can
tell (speed, NVRTC's and the driver's own behaviour) is left to the GPU tests."""

from __future__ import annotations

import json
import logging

import h5py
import numpy as np
import pytest

from support import cupy_stand_in, kernel_on_cpu
from svperturb.cli import main
from svperturb.linalg import engine
from svperturb.linalg.backend import select_backend
from svperturb.linalg.gpu import eigenvalue_kernel
from svperturb.linalg.spectra import add_identity
from svperturb.sampling import device_draws, ensembles
from svperturb.sampling.ensembles import unit_variance_matrices, weight_std

pytestmark = pytest.mark.skipif(kernel_on_cpu.cxx_compiler() is None,
                                reason="needs a C++ compiler (the kernels' CUDA branch, emulated)")
CACHED = ("_compiled", "_compiles", "_tile_agrees", "_device_shared_limit")


def _clear_caches() -> None:
    for name in CACHED:
        getattr(eigenvalue_kernel, name).cache_clear()
    device_draws._compiled.cache_clear()
    ensembles.device_draws_checked.cache_clear()


@pytest.fixture
def stand_in(monkeypatch):
    """The stand-in as `cupy`, the kernels' caches empty before and after, its launches recorded,
    and the kernels taken on any batch (the engine's table asks for 4,096 matrices)."""
    cupy = cupy_stand_in.install(monkeypatch)
    smallest, largest, _ = engine.EIGENVALUE_KERNEL["cupy"]
    monkeypatch.setitem(engine.EIGENVALUE_KERNEL, "cupy", (smallest, largest, 1))
    _clear_caches()
    cupy_stand_in.LAUNCHES.clear()
    yield cupy
    _clear_caches()


def layers(n: int, count: int) -> np.ndarray:
    """W1 alone (kappa ~ n: the augmented route), then ResNet layers W1 + I (the Gram route)."""
    w = unit_variance_matrices(11, "stand-in", n, "gaussian", 0, count) * weight_std(n, 2.0)
    w[count // 2:] = add_identity(w[count // 2:], 1.0)
    return w


def test_the_backend_is_cupy_and_says_which_kernels_run(stand_in):
    backend = select_backend("cupy")
    assert backend.is_gpu and backend.xp is stand_in and "stand-in GPU" in backend.device
    assert engine.describe_eigensolver(stand_in).endswith(
        "the tile kernels up to n = 168 (once they agree with the streaming ones here), the "
        "streaming ones above")
    assert ensembles.describe_draws(stand_in) == (
        "on the GPU up to n = 256 (NumPy's PCG64 and ziggurat, bit for bit), on the host above")


def test_the_engine_compiles_checks_and_launches_the_tile_kernels(stand_in):
    """The first call checks the tile kernels against the streaming ones (n = 40, and n = 100,
    which asks for more than 48 kB of shared memory: the stand-in refuses a launch that did not
    raise the kernel's limit first), then the engine's routes take them; the contract holds."""
    w = layers(40, 24)
    spectrum = engine.singular_values(stand_in.asarray(w), stand_in, well_conditioned=False)
    assert eigenvalue_kernel._tile_agrees() and eigenvalue_kernel.uses_tile(40, stand_in)
    launched = set(cupy_stand_in.LAUNCHES)
    assert launched == set(eigenvalue_kernel.KERNELS)  # the check runs the streaming ones too
    reference = np.linalg.svd(w, compute_uv=False)
    values = spectrum.values.get()
    np.testing.assert_allclose(values[:, 0], reference[:, 0], rtol=1e-12, atol=0)
    np.testing.assert_allclose(values[:, -1], reference[:, -1], rtol=1e-10, atol=0)
    assert not spectrum.fallback.get().any()
    assert set(eigenvalue_kernel.kernel_resources()) == set(eigenvalue_kernel.KERNELS)


def test_a_tile_kernel_failing_on_the_gpu_leaves_the_streaming_ones_said_once(
        stand_in, monkeypatch, caplog):
    real = cupy_stand_in.RawKernel.__call__

    def failing(self, grid, block, args, shared_mem=0):
        if self.name.startswith("tile_"):
            raise RuntimeError("CUDA_ERROR_LAUNCH_FAILED: unspecified launch failure")
        return real(self, grid, block, args, shared_mem=shared_mem)

    monkeypatch.setattr(cupy_stand_in.RawKernel, "__call__", failing)
    g = stand_in.asarray(np.swapaxes(layers(40, 6), -1, -2) @ layers(40, 6))
    with caplog.at_level(logging.WARNING, logger="svperturb.linalg.gpu.eigenvalue_kernel"):
        ours = eigenvalue_kernel.symmetric_eigenvalues_by_kernel(g, stand_in).get()
        eigenvalue_kernel.symmetric_eigenvalues_by_kernel(g, stand_in)
    assert not eigenvalue_kernel.uses_tile(40, stand_in)
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "CUDA_ERROR_LAUNCH_FAILED" in said[0] and "streaming" in said[0]
    reference = np.linalg.eigvalsh(g.get())[:, ::-1]
    assert np.abs(ours - reference).max() <= 2 * 40 * np.finfo(float).eps * reference.max()


def test_a_simulate_job_on_the_gpu_makes_its_draws_there_and_records_its_solver(stand_in,
                                                                              tmp_path):
    """`svperturb simulate --backend cupy` (resnet_layer at n = 36): its weights made on the
    device (device_draws); the shard says cupy and the kernels, and agrees with the NumPy shard
    within the accuracy contract."""
    base = ["simulate", "--study", "resnet_layer", "--point",
            "distribution=gaussian/width=36/weight_scale=2", "--skip", "0", "0.5", "1",
            "--start", "0", "--stop", "16", "--seed", "5"]
    assert main([*base, "--backend", "cupy", "--output", str(tmp_path / "gpu.h5")]) == 0
    assert main([*base, "--backend", "numpy", "--output", str(tmp_path / "cpu.h5")]) == 0
    with h5py.File(tmp_path / "gpu.h5") as gpu, h5py.File(tmp_path / "cpu.h5") as cpu:
        assert gpu.attrs["backend"] == "cupy" and "tile kernels" in gpu.attrs["eigensolver"]
        assert gpu.attrs["draws"].startswith("on the GPU") and cpu.attrs["draws"] == \
            "on the host (NumPy)"
        for name, rtol in (("s1", 2e-12), ("s_min", 2e-10), ("tau_bar", 2e-12)):
            np.testing.assert_allclose(gpu[name][()], cpu[name][()], rtol=rtol, err_msg=name)
    assert "tile_tridiagonalize" in cupy_stand_in.LAUNCHES
    assert device_draws.KERNEL in cupy_stand_in.LAUNCHES


def test_the_kernel_sweep_on_the_gpu_times_the_streaming_kernels_beside_the_tiles(
        stand_in, tmp_path, capsys):
    """`svperturb bench --kernel-sweep --backend cupy`: every method, the table, both suggestions
    and each kernel's registers and local memory as the driver reports them
    (RawKernel.attributes), on the screen and in the JSON."""
    from svperturb.bench import SWEEP_METHODS

    output = tmp_path / "sweep.json"
    assert main(["bench", "--kernel-sweep", "--backend", "cupy", "--widths", "33", "--counts",
                 "4", "--repeats", "1", "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "| 33 | 4 |" in printed and "suggested engine.EIGENVALUE_KERNEL['cupy']" in printed
    assert "suggested eigenvalue_kernel.WIDEST_TILE = " in printed
    assert f"{eigenvalue_kernel.SYMMETRIC}: 40 registers, 0 bytes of local memory" in printed
    saved = json.loads(output.read_text())
    assert [r["method"] for r in saved["kernel_sweep"]] == list(SWEEP_METHODS)
    assert saved["suggested_widest_tile"] in (0, 33)
    assert saved["kernel_resources"] == {name: {"registers": 40, "local_bytes": 0}
                                         for name in eigenvalue_kernel.KERNELS}


def test_the_bench_times_draws_made_on_the_gpu_at_every_width(stand_in):
    """bench_draws on the GPU: beside the host's draws and their copy, the draws made on the
    device, also above DEVICE_DRAWS_WIDEST (that is what the suggestion is measured for)."""
    from svperturb import bench

    rows = bench.bench_draws([8, 300], stand_in, threads=1, repeats=1, scale=1e-6)
    made = [r for r in rows if r["step"] == bench.DEVICE_DRAWS]
    assert [r["n"] for r in made] == [8, 300] and all(r["matrices_per_s"] > 0 for r in made)
    # the check's two, then both n
    assert cupy_stand_in.LAUNCHES.count(device_draws.KERNEL) >= 2 + 2
    assert 300 > device_draws.DEVICE_DRAWS_WIDEST
    printed = bench.format_table([], [], "stand-in", draws=rows)
    assert "suggested device_draws.DEVICE_DRAWS_WIDEST = " in printed
