"""svperturb.sampling.device_draws: a GPU makes NumPy's own draws, bit for bit (draw_kernel.cu), run here in
its plain C build and in its CUDA branch (kernel_on_cpu), and compiled by NVRTC and ptxas."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
from scipy.special import erfc

from support import cupy_stand_in, kernel_on_cpu
from support.devices import CUPY
from svperturb.sampling import device_draws, ensembles
from svperturb.sampling.ensembles import SEED_CHUNK, unit_variance_matrices

needs_compilers = pytest.mark.skipif(
    kernel_on_cpu.compiler() is None or kernel_on_cpu.cxx_compiler() is None,
    reason="needs a C and a C++ compiler (the draw kernel's builds)")
SQRT3 = np.sqrt(3.0)
LAUNCHERS = {"C build": kernel_on_cpu.draws_on_cpu, "CUDA branch": kernel_on_cpu.draws_emulated}


@pytest.fixture(params=[pytest.param(name, marks=needs_compilers) for name in LAUNCHERS])
def kernel(request, monkeypatch):
    """The draw kernel, built for the CPU, in place of CuPy's compiled one."""
    monkeypatch.setattr(device_draws, "_compiled", lambda: LAUNCHERS[request.param])
    return LAUNCHERS[request.param]


def sequences(count: int, first: int = 0) -> list[np.random.SeedSequence]:
    return [np.random.SeedSequence(2026, spawn_key=(11, chunk))
            for chunk in range(first, first + count)]


def numpys(seqs, entries: int, uniform, scale: float) -> np.ndarray:
    """What NumPy draws for the chunks, one after another, times scale."""
    parts = []
    for sequence in seqs:
        generator = np.random.Generator(np.random.PCG64(sequence))
        size = SEED_CHUNK * entries
        parts.append(generator.standard_normal(size) if uniform is None
                     else generator.uniform(*uniform, size))
    values = np.concatenate(parts)
    return values * scale if scale != 1.0 else values


def device(seqs, first_chunk, start, stop, entries, uniform=None, scale=1.0):
    """chunk_draws on the kernel, the chunks it cannot certify drawn by NumPy (numpys)."""
    return device_draws.chunk_draws(
        seqs, first_chunk, SEED_CHUNK, start, stop, entries, uniform=uniform, scale=scale, xp=np,
        host_chunk=lambda sequence: numpys([sequence], entries, uniform, scale))


def test_pcg64_streams_are_the_states_numpy_seeds():
    seqs = sequences(3)
    streams = device_draws.pcg64_streams(seqs)
    for row, sequence in zip(streams, seqs):
        state = np.random.PCG64(sequence).state["state"]
        assert (int(row[0]) << 64) | int(row[1]) == state["state"]
        assert (int(row[2]) << 64) | int(row[3]) == state["inc"]


def f(x):
    """The ziggurat's f: the standard normal density without its factor."""
    return np.exp(-0.5 * x * x)


def test_ziggurat_tables_have_the_ziggurats_geometry():
    """Against the closed form of Marsaglia and Tsang's construction, not NumPy: 256 strips of
    equal area v under f(x) = exp(-x^2 / 2): the base, r f(r) plus the tail beyond r (sqrt(pi/2)
    erfc(r / sqrt 2)), wi[0] = v / f(r) / 2^52; strip s from x_(s-1) to x_s (x_0 = 0) with
    x_s (f(x_(s-1)) - f(x_s)) = v; ki[s] = 2^52 x_(s-1) / x_s, the part returned at once."""
    tables, ki, r, inverse_r = device_draws.ziggurat_tables()
    wi, fi = tables[:256], tables[256:]
    x = wi * 2.0**52
    v = r * f(r) + math.sqrt(math.pi / 2.0) * erfc(r / math.sqrt(2.0))
    assert r == pytest.approx(3.6541528853610088, rel=1e-15)
    assert inverse_r == 1.0 / r
    assert x[0] == pytest.approx(v / f(r), rel=1e-13)
    assert np.all(np.diff(x[1:]) > 0) and x[255] == r
    edges = np.concatenate([[0.0], x[1:]])
    areas = edges[1:] * (f(edges[:-1]) - f(edges[1:]))
    np.testing.assert_allclose(areas, v, rtol=1e-11)
    np.testing.assert_allclose(fi[1:], f(x[1:]), rtol=1e-15)
    assert fi[0] == 1.0 and ki[1] == 0
    np.testing.assert_allclose(ki[2:] / 2.0**52, edges[1:-1] / edges[2:], rtol=1e-14)
    assert ki[0] / 2.0**52 == pytest.approx(r / x[0], rel=1e-14)


@pytest.mark.parametrize(("n", "uniform", "scale"), [
    (1, None, 1.0), (5, (-SQRT3, SQRT3), 1.0), (33, None, 0.25), (100, None, 1.0 / 300.0),
    (100, (-SQRT3, SQRT3), 0.01)])
def test_device_draws_are_numpys_bit_for_bit(kernel, n, uniform, scale):
    """Samples from the middle of one seed chunk to the middle of another (the first and last
    chunks partly dropped), Gaussian with its tail values (about 170 at n = 100) and uniform."""
    first_chunk, count = 3, 4
    start, stop = first_chunk * SEED_CHUNK + 9, (first_chunk + count) * SEED_CHUNK - 5
    seqs = sequences(count, first_chunk)
    got = device(seqs, first_chunk, start, stop, n * n, uniform, scale)
    made = numpys(seqs, n * n, uniform, scale)
    np.testing.assert_array_equal(got, made[9 * n * n:(9 + stop - start) * n * n])


def test_tail_values_are_written_with_the_c_librarys_log1p(kernel, monkeypatch):
    """The kernel records where each tail value went, with its U1; those places are where NumPy's
    draws came from beyond r, and the values device_draws writes there are NumPy's."""
    n, seqs = 100, sequences(2)
    records = {}
    launch = device_draws._launch

    def recorded(*args, **kwargs):
        records["result"] = launch(*args, **kwargs)
        return records["result"]

    monkeypatch.setattr(device_draws, "_launch", recorded)
    got = device(seqs, 0, 0, 2 * SEED_CHUNK, n * n)
    places, _, uncertain = records["result"]
    made = numpys(seqs, n * n, None, 1.0)
    _, _, r, _ = device_draws.ziggurat_tables()
    expected = 2 * SEED_CHUNK * n * n * 2.56e-4  # 1/256 of draws, times 1 - ki[0] / 2^52
    assert abs(len(places) - expected) < 5 * math.sqrt(expected)
    assert np.all(np.abs(made[places >> 1]) > r) and not uncertain.any()
    assert np.sum(np.abs(made) > r) == len(places)  # every value beyond r came from the tail
    np.testing.assert_array_equal(np.signbit(made[places >> 1]), (places & 1).astype(bool))
    np.testing.assert_array_equal(got, made)


@needs_compilers
def test_a_gpu_whose_exp_and_log1p_round_otherwise_still_gives_numpys_draws(monkeypatch):
    """The kernel built with exp and log1p that are off by a relative 5e-4 (a GPU's are off by at
    most 1 ulp, 2.2e-16, which no test of this size would catch deciding a draw otherwise):
    comparisons closer than TOLERANCE mark their chunk, which is drawn again on the host, so that
    with TOLERANCE at 1e-3 the values are NumPy's; with TOLERANCE 0, they are not (the check can
    fail)."""
    n, seqs = 40, sequences(6)
    made = numpys(seqs, n * n, None, 1.0)
    monkeypatch.setattr(device_draws, "_compiled",
                        lambda: kernel_on_cpu.draws_on_cpu_with_exp_and_log_off(5e-4))
    monkeypatch.setattr(device_draws, "TOLERANCE", 1e-3)
    np.testing.assert_array_equal(device(seqs, 0, 0, 6 * SEED_CHUNK, n * n), made)
    monkeypatch.setattr(device_draws, "TOLERANCE", 0.0)
    assert not np.array_equal(device(seqs, 0, 0, 6 * SEED_CHUNK, n * n), made)


@needs_compilers
@pytest.mark.parametrize("distribution", ["gaussian", "uniform"])
def test_chunks_the_studies_cannot_certify_are_drawn_again_by_their_own_numpy_draws(
        monkeypatch, distribution):
    """ensembles.unit_variance_on_device hands chunk_draws its own draw of a chunk: with exp and
    log1p off (the test above) and TOLERANCE at 1e-3, whatever chunks are redrawn, the weights
    are unit_variance_matrices' on the host, scaled, bit for bit."""
    from svperturb.sampling.ensembles import unit_variance_on_device

    monkeypatch.setattr(device_draws, "_compiled",
                        lambda: kernel_on_cpu.draws_on_cpu_with_exp_and_log_off(5e-4))
    monkeypatch.setattr(device_draws, "TOLERANCE", 1e-3)
    made = (3, "resnet_layer", 30, distribution, 40, 300)
    np.testing.assert_array_equal(unit_variance_on_device(*made, "weights", np, scale=0.2),
                                  unit_variance_matrices(*made, scale=0.2))


def test_chunks_with_more_tail_values_than_room_are_drawn_on_the_host(kernel, monkeypatch,
                                                                    caplog):
    n, seqs = 64, sequences(3)
    monkeypatch.setattr(device_draws, "tail_capacity", lambda values: 2)
    with caplog.at_level(logging.INFO, logger="svperturb.sampling.device_draws"):
        got = device(seqs, 5, 5 * SEED_CHUNK + 1, 8 * SEED_CHUNK, n * n)
    np.testing.assert_array_equal(got, numpys(seqs, n * n, None, 1.0)[n * n:])
    assert "seed chunks drawn again on the host" in caplog.text


@pytest.fixture
def stand_in(monkeypatch):
    """tests/support/cupy_stand_in as `cupy` (its RawModule launches the draw kernel's CUDA
    branch), the device draws' caches empty before and after."""
    cached = (device_draws._compiled, ensembles.device_draws_checked)  # a test may replace them
    for function in cached:
        function.cache_clear()
    cupy_stand_in.LAUNCHES.clear()
    yield cupy_stand_in.install(monkeypatch)
    for function in cached:
        function.cache_clear()


@needs_compilers
@pytest.mark.parametrize("distribution", ["gaussian", "uniform"])
def test_studies_weights_on_a_device_are_made_there_and_are_numpys(stand_in, distribution):
    n, start, stop = 24, 70, 333
    got = unit_variance_matrices(5, "resnet_layer", n, distribution, start, stop, xp=stand_in,
                                 scale=0.125)
    assert isinstance(got, stand_in.ndarray) and got.shape == (stop - start, n, n)
    assert device_draws.KERNEL in cupy_stand_in.LAUNCHES
    np.testing.assert_array_equal(
        got.get(), unit_variance_matrices(5, "resnet_layer", n, distribution, start, stop,
                                          scale=0.125))


@needs_compilers
def test_wider_weights_are_drawn_on_the_host(stand_in, monkeypatch):
    monkeypatch.setattr(device_draws, "DEVICE_DRAWS_WIDEST", 8)
    got = unit_variance_matrices(5, "resnet_layer", 9, "gaussian", 0, 10, xp=stand_in)
    assert device_draws.KERNEL not in cupy_stand_in.LAUNCHES
    np.testing.assert_array_equal(got.get(),
                                  unit_variance_matrices(5, "resnet_layer", 9, "gaussian", 0, 10))


@needs_compilers
def test_a_kernel_that_is_not_numpys_is_not_used(stand_in, monkeypatch, caplog):
    """The first-call check: a kernel whose values are not NumPy's (here its uniform draws are
    off by one part in 2^52) is set aside with one warning, and the weights are drawn on the
    host."""
    def off(grid, block, args, shared_mem=0):  # args: the device arrays' NumPy arrays
        kernel_on_cpu.draws_emulated(grid, block, args, shared_mem)
        args[4][:] = np.nextafter(args[4], np.inf)

    monkeypatch.setattr(device_draws, "_compiled",
                        lambda: cupy_stand_in.RawKernel(device_draws.KERNEL, off))
    with caplog.at_level(logging.WARNING, logger="svperturb.sampling.device_draws"):
        got = unit_variance_matrices(5, "resnet_layer", 6, "uniform", 0, 65, xp=stand_in)
        unit_variance_matrices(5, "resnet_layer", 6, "uniform", 0, 65, xp=stand_in)
    assert caplog.text.count("device draws are not used") == 1
    assert ensembles.describe_draws(stand_in).startswith("on the host (the GPU's draw kernel")
    np.testing.assert_array_equal(got.get(),
                                  unit_variance_matrices(5, "resnet_layer", 6, "uniform", 0, 65))


@pytest.mark.skipif(kernel_on_cpu.nvrtc_path() is None or kernel_on_cpu.ptxas_path() is None,
                    reason="needs NVIDIA's wheels nvidia-cuda-nvrtc-cu12 and "
                           "nvidia-cuda-nvcc-cu12 (svperturb[test])")
@pytest.mark.parametrize("architecture", [80, 90])
def test_nvrtc_compiles_the_draw_kernel_as_cupy_does(architecture):
    """No warning, the kernel exported under its C name, and no local memory per thread (the
    generator's state and the tables' pointers in registers)."""
    from svperturb.linalg.gpu.eigenvalue_kernel import NVRTC_OPTIONS

    ptx, log = kernel_on_cpu.nvrtc_ptx(architecture, NVRTC_OPTIONS, device_draws.source())
    assert f".entry {device_draws.KERNEL}(" in ptx
    assert "warning" not in log.lower(), log
    used = kernel_on_cpu.gpu_resources(architecture, device_draws.source())[device_draws.KERNEL]
    assert (used.stack_frame, used.spill_stores, used.spill_loads) == (0, 0, 0), used


@pytest.mark.skipif(CUPY is None, reason="needs CuPy and a usable GPU")
@pytest.mark.parametrize("distribution", ["gaussian", "uniform"])
def test_on_the_gpu_the_weights_are_made_there_and_are_numpys(distribution):
    """On the GPU itself: the kernel compiles, passes its first-call check, and a block of 300
    samples at n = 100 (5 seed chunks, about 780 tail values) equals NumPy's bit for bit."""
    n, start, stop = 100, 17, 317
    assert ensembles.device_draws_used(n, CUPY)
    got = unit_variance_matrices(9, "convnet_vs_resnet", n, distribution, start, stop, xp=CUPY,
                                 scale=0.05)
    np.testing.assert_array_equal(
        got.get(),
        unit_variance_matrices(9, "convnet_vs_resnet", n, distribution, start, stop, scale=0.05))
