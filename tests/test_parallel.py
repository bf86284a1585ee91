"""MPI ranks inside a simulate job: the shard written under mpiexec -n R is bit-identical for
R = 1, 2, 3 and to a run without MPI; rank 0 alone writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from svperturb.studies.parallel import World, launched_by_mpi, world

BIN = Path(sys.executable).parent
MPIEXEC = BIN / "mpiexec"
SIMULATE = [str(BIN / "svperturb"), "simulate", "--study", "resnet_layer",
            "--point", "distribution=gaussian/width=20/weight_scale=2", "--skip", "0", "0.5", "1",
            "--start", "0", "--stop", "300", "--seed", "3", "--block-size", "64", "--backend", "numpy"]

pytestmark = pytest.mark.skipif(not MPIEXEC.exists(),
                                reason=f"no mpiexec at {MPIEXEC} (install svperturb[mpich])")


def datasets(path: Path) -> dict[str, np.ndarray]:
    out = {}
    with h5py.File(path, "r") as fh:
        fh.visititems(lambda key, obj: out.update({key: obj[()]}) if isinstance(obj, h5py.Dataset) else None)
    return out


def run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def test_a_shard_is_bit_identical_for_1_2_and_3_ranks_and_without_mpi(tmp_path):
    run([*SIMULATE, "--output", "serial.h5"], tmp_path)
    reference = datasets(tmp_path / "serial.h5")
    assert len(reference) > 10
    for ranks in (1, 2, 3):
        run([str(MPIEXEC), "-n", str(ranks), *SIMULATE, "--output", f"ranks-{ranks}.h5"], tmp_path)
        with h5py.File(tmp_path / f"ranks-{ranks}.h5", "r") as fh:
            assert fh.attrs["ranks"] == ranks
        shard = datasets(tmp_path / f"ranks-{ranks}.h5")
        assert shard.keys() == reference.keys()
        for key, values in reference.items():
            np.testing.assert_array_equal(shard[key], values, err_msg=f"{key}, {ranks} ranks")
    # rank 0 alone wrote: no stray files from the other ranks
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ranks-1.h5", "ranks-2.h5", "ranks-3.h5", "serial.h5"]


def test_a_batched_jobs_shards_are_bit_identical_on_2_ranks(tmp_path):
    """hard_bounds computes a job's points together, a block of all of them per rank: each point's
    shard on 2 ranks is the one-process shard."""
    hard = "width=6/entry_bound={c}/weight_pattern=uniform/depth=2/activation_slope=0.5/activity=0.5"
    points = [hard.format(c=c) for c in (0.3, 0.9)]
    command = [str(BIN / "svperturb"), "simulate", "--study", "hard_bounds", "--point", *points,
               "--start", "0", "--stop", "100", "--seed", "3", "--block-size", "16",
               "--backend", "numpy", "--output"]
    run([*command, "serial-0.h5", "serial-1.h5"], tmp_path)
    run([str(MPIEXEC), "-n", "2", *command, "ranks-0.h5", "ranks-1.h5"], tmp_path)
    for k in range(len(points)):
        reference, shard = datasets(tmp_path / f"serial-{k}.h5"), datasets(tmp_path / f"ranks-{k}.h5")
        assert shard.keys() == reference.keys() and "s1_Mo" in shard
        for key, values in reference.items():
            np.testing.assert_array_equal(shard[key], values, err_msg=f"point {k}: {key}")
    assert not np.array_equal(datasets(tmp_path / "serial-0.h5")["s1_Mo"],
                              datasets(tmp_path / "serial-1.h5")["s1_Mo"])


def test_outside_a_launcher_it_is_one_process(monkeypatch):
    from svperturb.studies import parallel

    for variable in parallel.LAUNCHER_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    assert not launched_by_mpi()
    assert world() == World()
    assert launched_by_mpi({"PMI_RANK": "0"})
