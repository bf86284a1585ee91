"""The workflow on a real (single-node) SLURM cluster through workflow/profiles/slurm: simulate
jobs of 2 MPI ranks started by srun, the merged results equal to those of a local run.

Installs Debian's slurm-wlm and munge when absent (root); skips, saying why, only where this
machine cannot run SLURM at all. Without accounting storage the plugin polls squeue (its
documented fallback), so the cluster keeps finished jobs for MinJobAge = 600 s.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from support.slurm_cluster import Cluster, ensure_slurm
from svperturb.config import study_configs, validate_config
from svperturb.studies import grid_points

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "tiny.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]
STUDIES = ("resnet_layer", "convnet_vs_resnet", "toy_network")  # a few minutes of SLURM jobs

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = ensure_slurm()
    if reason:
        pytest.skip(f"this machine cannot run SLURM: {reason}")
    with Cluster(tmp_path_factory.mktemp("slurm-cluster")) as running:
        yield running


def merged_datasets(path: Path) -> dict[str, np.ndarray]:
    out = {}
    with h5py.File(path, "r") as fh:
        fh.visititems(lambda key, obj: out.update({key: obj[()]}) if isinstance(obj, h5py.Dataset) else None)
    return out


def run(args: list[str], env: dict, timeout: int = 1500) -> subprocess.CompletedProcess:
    result = subprocess.run([*SNAKEMAKE, *args], capture_output=True, text=True, env=env, timeout=timeout)
    assert result.returncode == 0, f"snakemake {' '.join(args)}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def test_slurm_run_with_mpi_ranks_equals_a_local_run(cluster, tmp_path):
    config = yaml.safe_load(TINY.read_text())
    config["studies"] = {name: config["studies"][name] for name in STUDIES}
    config["resources"] = {"ranks": 2, "runtime_minutes": 10}
    config_path = tmp_path / "tiny-slurm.yaml"
    config_path.write_text(yaml.safe_dump(config))
    results = Path(config["results"])
    targets = [f"{results}/{name}.h5" for name in STUDIES]

    began = time.monotonic()
    run(["--workflow-profile", str(ROOT / "workflow" / "profiles" / "slurm"),
                 "--configfile", str(config_path), "--directory", str(tmp_path / "slurm"),
                 "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
                 "--latency-wait", "5", "--jobs", "4", *targets], cluster.env)
    seconds = time.monotonic() - began
    print(f"SLURM run: {seconds:.0f} s")

    # every simulate job ran as a SLURM job whose 2 ranks, started by srun (a job step),
    # shared the samples
    shards = list((tmp_path / "slurm" / results / "shards").rglob("*.h5"))
    studies = study_configs(validate_config(config))
    assert len(shards) == sum(len(list(grid_points(name, s.grid))) * s.n_shards
                              for name, s in studies.items())
    jobs = set()
    for shard in shards:
        with h5py.File(shard, "r") as fh:
            assert fh.attrs["ranks"] == 2, shard
            assert fh.attrs["slurm_step_id"].isdigit(), shard
            jobs.add(fh.attrs["slurm_job_id"])
    assert len(jobs) == len(shards)  # one SLURM job per simulate job (group_size 1)

    local_config = {**config, "resources": {"ranks": 1}}
    local_path = tmp_path / "tiny-local.yaml"
    local_path.write_text(yaml.safe_dump(local_config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM")}
    run(["--cores", "2", "--configfile", str(local_path), "--directory", str(tmp_path / "local"),
         *targets], env)
    for name in STUDIES:
        a = merged_datasets(tmp_path / "slurm" / results / f"{name}.h5")
        b = merged_datasets(tmp_path / "local" / results / f"{name}.h5")
        assert a.keys() == b.keys() and len(a) > 5
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name}: {key}")


def test_group_size_bundles_simulate_jobs_into_cluster_jobs(tmp_path):
    reason = ensure_slurm()
    if reason:
        pytest.skip(f"this machine cannot run SLURM: {reason}")
    config = yaml.safe_load(TINY.read_text())
    config["studies"] = {"resnet_layer": config["studies"]["resnet_layer"]}  # 16 simulate jobs
    config["resources"] = {"group_size": 5}
    path = tmp_path / "grouped.yaml"
    path.write_text(yaml.safe_dump(config))
    extra = subprocess.run([str(Path(sys.executable).parent / "svperturb"), "cluster-args", "--config",
                            str(path)], capture_output=True, text=True, check=True).stdout.split()
    assert extra == ["--group-components", "simulate=5"]
    # (--group-components takes several values: it goes before the other options, as in `make slurm`)
    result = run([*extra, "-n", "--executor", "slurm", "--jobs", "4", "--slurm-status-command", "squeue",
                  "--configfile", str(path), "--directory", str(tmp_path / "run"),
                  f"{config['results']}/resnet_layer.h5"], dict(os.environ))
    log = result.stdout + result.stderr
    assert log.count("Group job simulate") == 4  # 16 jobs in groups of 5, 5, 5, 1
    assert log.count("rule simulate:") == 16
