"""backend.py: NumPy whenever CuPy cannot run (one log line saying why), a clear error when CuPy is
demanded and absent, and one GPU per rank (rank % number of GPUs)."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest

from support import cupy_stand_in
from support.devices import CUPY
from svperturb.cli import main
from svperturb.linalg import backend as backend_module
from svperturb.linalg.backend import BackendError, local_rank, select_backend


@pytest.fixture
def no_cupy(monkeypatch):
    """Make `import cupy` fail, as on a machine without it."""
    monkeypatch.setitem(sys.modules, "cupy", None)


def test_auto_without_cupy_falls_back_to_numpy_with_one_log_line(no_cupy, caplog):
    with caplog.at_level(logging.INFO, logger="svperturb.linalg.backend"):
        chosen = select_backend("auto")
    assert chosen.name == "numpy" and chosen.xp is np and not chosen.is_gpu
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1
    assert lines[0].startswith("backend auto -> numpy: CuPy is not importable")


def test_cupy_demanded_without_cupy_is_an_error_naming_the_key(no_cupy):
    with pytest.raises(BackendError, match=r"backend: cupy requested but CuPy is not importable"):
        select_backend("cupy")


def test_cli_refuses_cupy_without_cupy_with_status_2(no_cupy, caplog):
    assert main(["info", "--backend", "cupy"]) == 2
    assert "cupy requested" in caplog.text


def test_unknown_backend_names_the_allowed_ones():
    with pytest.raises(BackendError, match=r"backend: got 'tpu'; allowed: auto, numpy, cupy"):
        select_backend("tpu")


@pytest.mark.parametrize(("variable", "value", "rank"), [
    ("OMPI_COMM_WORLD_LOCAL_RANK", "3", 3), ("PMI_RANK", "2", 2), ("SLURM_PROCID", "5", 5),
])
def test_local_rank_comes_from_the_launcher(monkeypatch, variable, value, rank):
    for name in backend_module.RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert local_rank() == 0
    monkeypatch.setenv(variable, value)
    assert local_rank() == rank


@pytest.fixture
def stand_in_cupyx(monkeypatch):
    """The CuPy stand-in's cupyx (seterr, geterr) as `cupyx`."""
    module = cupy_stand_in.cupyx()
    monkeypatch.setitem(sys.modules, "cupyx", module)
    return module


@pytest.mark.parametrize(("rank", "count", "device"), [(0, 4, 0), (5, 4, 1), (3, 2, 1), (7, 1, 0)])
def test_each_rank_takes_gpu_rank_mod_count(monkeypatch, stand_in_cupyx, rank, count, device):
    cupy = cupy_stand_in.build(device_count=count)
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    chosen = select_backend("auto", rank=rank)
    assert chosen.name == "cupy" and chosen.is_gpu
    assert cupy.cuda.used == [device]
    assert chosen.device.startswith(f"gpu {device} of {count}: stand-in GPU (NumPy), 80 GiB")


def test_cupy_makes_cusolver_failures_raise_as_lapack_does(monkeypatch, stand_in_cupyx):
    """CuPy's default ignores devInfo (a non-converged eigensolver returns what it left): the
    backend asks for LinAlgError, which the engine and the studies' framework handle as NumPy's."""
    monkeypatch.setitem(sys.modules, "cupy", cupy_stand_in.build(device_count=1))
    assert stand_in_cupyx.geterr() == {"linalg": "ignore"}  # CuPy's default
    assert select_backend("cupy").name == "cupy"
    assert stand_in_cupyx.geterr() == {"linalg": "raise"}


@pytest.mark.skipif(CUPY is None, reason="needs CuPy and a usable GPU")
def test_on_the_gpu_a_singular_matrix_raises_as_on_numpy():
    import cupyx

    assert cupyx.geterr()["linalg"] == "raise"
    with pytest.raises(np.linalg.LinAlgError):
        CUPY.linalg.inv(CUPY.zeros((2, 3, 3)))


def test_cupy_without_a_device_falls_back(monkeypatch, stand_in_cupyx, caplog):
    monkeypatch.setitem(sys.modules, "cupy", cupy_stand_in.build(device_count=0))
    with caplog.at_level(logging.INFO, logger="svperturb.linalg.backend"):
        assert select_backend("auto").name == "numpy"
    assert "CuPy sees no CUDA device" in caplog.text
    with pytest.raises(BackendError, match="no CUDA device"):
        select_backend("cupy")


@pytest.mark.skipif(CUPY is None, reason="needs CuPy and a usable GPU")
def test_a_small_gpu_memory_cap_halves_the_block_and_gives_the_same_shard(tmp_path, caplog):
    """CuPy's pool capped at 64 MiB cannot hold a block of 4096 100 x 100 matrices: the block is
    halved until it fits, and the shard agrees with one computed without the cap within the
    accuracy contract (s_1 and eigenvalues 1e-12 each, s_* 1e-10 each, so twice that apart)."""
    import h5py

    from svperturb.cli import main

    base = ["simulate", "--study", "unit_variance", "--point", "distribution=gaussian/width=100",
            "--start", "0", "--stop", "4096", "--seed", "3", "--backend", "cupy"]
    assert main([*base, "--block-size", "4096", "--output", str(tmp_path / "free.h5")]) == 0
    assert main([*base, "--block-size", "4096", "--device-memory-mb", "64",
                 "--output", str(tmp_path / "capped.h5")]) == 0
    assert "out of memory on a block of 4096 samples" in caplog.text
    with h5py.File(tmp_path / "free.h5") as free, h5py.File(tmp_path / "capped.h5") as capped:
        for name, rtol in (("s1", 2e-12), ("tau_bar", 2e-12), ("tau_low", 2e-12), ("s_min", 2e-10)):
            np.testing.assert_allclose(capped[name][()], free[name][()], rtol=rtol, err_msg=name)


def test_a_gpu_block_may_hold_more_samples_than_a_cpu_block_within_both_memories():
    """One GPU thread per matrix in the spectra kernels: a block on a GPU holds up to
    GPU_BLOCK_CAP samples, on a CPU at most BLOCK_CAP; MATRICES_PER_SAMPLE n x n float64 per
    sample, on a GPU within half the free device memory. The host, within half of the job's
    memory (a scheduler kills a job that exceeds it), keeps the results of a study that sends its
    draws to the device in pieces, and the whole draws of one that does not."""
    from svperturb.studies import (
        BLOCK_CAP,
        GPU_BLOCK_CAP,
        MATRICES_PER_SAMPLE,
        block_size_for,
        get_study,
    )

    point = {"distribution": "gaussian", "width": 100}
    per_sample = MATRICES_PER_SAMPLE * 100 * 100 * 8
    half_host = (2000 - 200) * 2**20 // 2
    assert block_size_for("unit_variance", point, 10**7) == BLOCK_CAP
    on_cpu = block_size_for("unit_variance", point, 2000)
    assert on_cpu * per_sample <= half_host < (on_cpu + 64) * per_sample
    roomy = block_size_for("unit_variance", {**point, "width": 50}, 2000,
                           device_free_bytes=140 * 2**30)
    assert roomy == GPU_BLOCK_CAP  # the results alone on the host: 2,000 MB is plenty
    by_device = block_size_for("unit_variance", point, 2000, device_free_bytes=2 * 2**30)
    assert by_device * per_sample <= 2**30 < (by_device + 64) * per_sample
    wide = {"distribution": "gaussian", "width": 1000, "weight_scale": 2, "skip": [0, 0.5, 1]}
    assert block_size_for("resnet_layer", wide, 2000, device_free_bytes=140 * 2**30) == \
        140 * 2**30 // 2 // (MATRICES_PER_SAMPLE * 1000 * 1000 * 8) // 64 * 64
    # a study that keeps its draws on the host: within half of the job's memory there too
    hard = {"width": 50, "depth": 4, "weight_pattern": "uniform", "entry_bound": [0.5],
            "activation_slope": [0.5], "activity": [0.5]}
    on_host = get_study("hard_bounds").bytes_per_sample(hard)
    tight = block_size_for("hard_bounds", hard, 2000, device_free_bytes=140 * 2**30)
    assert tight * on_host <= half_host < (tight + 64) * on_host
