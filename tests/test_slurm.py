"""The workflow on a real (single-node) SLURM cluster through workflow/profiles/slurm: simulate
jobs of 2 MPI ranks started by srun, the merged results equal to those of a local run; and runs
that fail as cluster runs fail (a job cancelled, a job past its time limit, Snakemake itself
killed), then resumed as docs/cluster.md says, giving the same data without recomputing a
finished shard.

Installs Debian's slurm-wlm and munge when absent (root); skips, saying why, only where this
machine cannot run SLURM at all. Without accounting storage the plugin polls squeue (its
documented fallback), so the cluster keeps finished jobs for MinJobAge = 600 s.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import psutil
import pytest
import yaml

from support.slurm_cluster import Cluster, ensure_slurm
from support.snakemake_run import Session
from svperturb.cluster import cluster_arguments, slurm_job_prefix
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
    assert extra == ["--group-components", "simulate=5", "--slurm-jobname-prefix", "svperturb-results-tiny"]
    # (--group-components takes several values: it goes before the other options, as in `make slurm`)
    result = run([*extra, "-n", "--executor", "slurm", "--jobs", "4", "--slurm-status-command", "squeue",
                  "--configfile", str(path), "--directory", str(tmp_path / "run"),
                  f"{config['results']}/resnet_layer.h5"], dict(os.environ))
    log = result.stdout + result.stderr
    assert log.count("Group job simulate") == 4  # 16 jobs in groups of 5, 5, 5, 1
    assert log.count("rule simulate:") == 16


# ---------------------------------------------------------------------------------------------
# Failed SLURM jobs, resumed

SVPERTURB = str(Path(sys.executable).parent / "svperturb")
PROFILE = ["--workflow-profile", str(ROOT / "workflow" / "profiles" / "slurm"),
           "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
           "--latency-wait", "5", "--jobs", "4"]


def failing_config(tmp_path: Path, **resources) -> tuple[Path, dict]:
    """4 simulate jobs of 2 ranks (resnet_layer, 2 grid points x 2 shards) and their merge."""
    config = yaml.safe_load(TINY.read_text())
    config["grid"].update(distribution=["gaussian"], width=[5, 8], weight_scale=[2])
    config["studies"] = {"resnet_layer": {**config["studies"]["resnet_layer"], "shard_size": 128}}
    config["resources"] = {"ranks": 2, "runtime_minutes": 10, **resources}
    path = tmp_path / f"failing-{len(list(tmp_path.glob('failing-*')))}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, config


def slurm_command(path: Path, config: dict, *extra: str) -> list[str]:
    """What `make slurm CONFIG=path` runs (with the test cluster's status settings), for the merge."""
    arguments = " ".join(cluster_arguments(validate_config(config))).split()
    # the target before --configfile, which takes several values
    return [*SNAKEMAKE, *arguments, f"{config['results']}/resnet_layer.h5", *PROFILE, *extra,
            "--configfile", str(path)]


def resume(path: Path, config: dict, workdir: Path, env: dict) -> str:
    """The resume command of docs/cluster.md (`make slurm-resume`): cancel what a lost run left,
    release the lock, run again. Returns the last run's log."""
    for command in ([SVPERTURB, "slurm-cancel", "--config", str(path)],
                    [*SNAKEMAKE, *PROFILE, "--configfile", str(path), "--unlock"],
                    slurm_command(path, config)):
        result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True,
                                timeout=900, check=False)
        assert result.returncode == 0, f"{command}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result.stdout + result.stderr


def test_make_slurm_resume_runs_the_steps_the_tests_resume_with():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile[makefile.index("\nslurm-resume:") + 1:].split("\n\n")[0].splitlines()[1:]
    assert [line.strip() for line in recipe] == [
        "$(BIN)/svperturb slurm-cancel --config $(CONFIG)",
        "$(BIN)/snakemake --workflow-profile workflow/profiles/slurm --configfile $(CONFIG) --unlock",
        "$(MAKE) slurm"]


def squeue(env: dict, *options: str) -> list[list[str]]:
    result = subprocess.run(["squeue", "--noheader", *options], env=env, capture_output=True,
                            text=True, timeout=60, check=True)
    return [line.split("|") for line in result.stdout.splitlines() if line.strip()]


def run_id(session: Session, deadline: float) -> str:
    while not (m := re.search(r"SLURM run ID: (\S+)", session.log)):
        assert time.monotonic() < deadline and session.process.poll() is None, session.log[-3000:]
        time.sleep(0.2)
    return m.group(1)


def simulate_jobs(env: dict, run: str, states: str = "all") -> dict[str, str]:
    """{SLURM job id: state} of one run's simulate jobs (their comment names the rule)."""
    return {job: state for job, state, comment in squeue(env, "--name", run, "--states", states,
                                                         "--format", "%i|%T|%k")
            if comment.startswith("rule_simulate")}


def first_running_simulate_job(session: Session, env: dict, timeout: float = 300) -> tuple[str, str]:
    """(run id, job id) once one of the run's simulate jobs runs, with its svperturb processes up."""
    deadline = time.monotonic() + timeout
    run = run_id(session, deadline)
    while True:
        running = sorted(simulate_jobs(env, run, "RUNNING"))
        if running and job_processes(running[0]):
            return run, running[0]
        assert time.monotonic() < deadline and session.process.poll() is None, session.log[-3000:]
        time.sleep(0.1)


def job_processes(job: str) -> list[psutil.Process]:
    """The `svperturb simulate` processes (MPI ranks) of one SLURM job on this node."""
    found = []
    for process in psutil.process_iter():
        try:
            if "simulate" in process.cmdline()[1:3] and process.environ().get("SLURM_JOB_ID") == job:
                found.append(process)
        except (psutil.Error, IndexError):
            continue
    return found


def shard_files(results: Path) -> dict[Path, tuple[int, int]]:
    """Every shard at its final path: (inode, mtime in ns), which a recomputation would change."""
    return {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in results.glob("shards/**/shard-*.h5")}


def assert_failure_reported(log: str, job: str, reason: str) -> None:
    """Snakemake names the failed rule and shows the job's SLURM log, which says why SLURM ended it."""
    error = log.find("Error in rule simulate:")
    assert error >= 0 and f"{job}" in log and reason in log[error:], log[-4000:]


def started_simulate_jobs(log: str) -> int:
    return len(re.findall(r"^\s*rule simulate:$", log, re.MULTILINE))


@pytest.fixture(scope="module")
def local_run(tmp_path_factory) -> dict[str, np.ndarray]:
    """Merged datasets of an uninterrupted local one-rank run of failing_config."""
    tmp = tmp_path_factory.mktemp("local-reference")
    path, config = failing_config(tmp, ranks=1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM")}
    run(["--cores", "2", "--configfile", str(path), "--directory", str(tmp / "work"),
         f"{config['results']}/resnet_layer.h5"], env)
    return merged_datasets(tmp / "work" / config["results"] / "resnet_layer.h5")


def assert_finished_as_a_local_run(workdir: Path, config: dict, local_run: dict, before: dict) -> None:
    """The merged data are the local run's; shards finished before the failure are the same files;
    no temporary file, no lock is left."""
    results = workdir / config["results"]
    merged = merged_datasets(results / "resnet_layer.h5")
    assert merged.keys() == local_run.keys() and len(merged) > 5
    for key in merged:
        np.testing.assert_array_equal(merged[key], local_run[key], err_msg=key)
    after = shard_files(results)
    assert len(after) == 4 and all(after[p] == stamp for p, stamp in before.items())
    assert not list(workdir.rglob(".*.tmp-*"))
    assert not list((workdir / ".snakemake" / "locks").glob("*"))


def test_a_cancelled_job_fails_the_run_and_running_make_slurm_again_finishes_it(
        cluster, tmp_path, local_run):
    path, config = failing_config(tmp_path)
    workdir = tmp_path / "work"
    workdir.mkdir()
    session = Session(slurm_command(path, config, "--retries", "0"), cluster.env, workdir)
    _, job = first_running_simulate_job(session, cluster.env)
    subprocess.run(["scancel", job], env=cluster.env, check=True, timeout=60)
    assert session.wait() != 0
    assert_failure_reported(session.log, job, "CANCELLED")
    before = shard_files(workdir / config["results"])
    assert len(before) == 3  # keep-going: the other jobs finished

    log = resume(path, config, workdir, cluster.env)
    assert started_simulate_jobs(log) == 1  # the cancelled shard alone
    assert_finished_as_a_local_run(workdir, config, local_run, before)


def test_a_job_past_its_time_limit_fails_and_resuming_with_more_time_finishes_it(
        cluster, tmp_path, local_run):
    """A job runs past `resources.runtime_minutes` (here: its ranks are stopped with SIGSTOP right
    after they start, so that it does) and SLURM ends it with TIMEOUT. 1 minute is SLURM's least
    limit, which it enforces within its 30 s check: this test waits 1 to 2 minutes."""
    path, config = failing_config(tmp_path, runtime_minutes=1)
    workdir = tmp_path / "work"
    workdir.mkdir()
    session = Session(slurm_command(path, config, "--retries", "0"), cluster.env, workdir)
    _, job = first_running_simulate_job(session, cluster.env)
    for process in job_processes(job):
        process.send_signal(signal.SIGSTOP)
    assert session.wait(timeout=400) != 0
    assert_failure_reported(session.log, job, "DUE TO TIME LIMIT")
    before = shard_files(workdir / config["results"])
    assert len(before) == 3

    more_time, config = failing_config(tmp_path, runtime_minutes=10)  # what the README says to raise
    log = resume(more_time, config, workdir, cluster.env)
    assert started_simulate_jobs(log) == 1
    assert_finished_as_a_local_run(workdir, config, local_run, before)


def test_a_lost_snakemake_leaves_jobs_that_the_resume_cancels_before_running_again(
        cluster, tmp_path, local_run):
    path, config = failing_config(tmp_path)
    workdir = tmp_path / "work"
    workdir.mkdir()
    session = Session(slurm_command(path, config), cluster.env, workdir)
    run, _ = first_running_simulate_job(session, cluster.env)
    assert run.startswith(slurm_job_prefix(validate_config(config)) + "_")  # what slurm-cancel seeks
    deadline = time.monotonic() + 120  # 2-rank jobs on 2 cores: one runs, the others wait
    while "PENDING" not in simulate_jobs(cluster.env, run).values():
        assert time.monotonic() < deadline, simulate_jobs(cluster.env, run)
        time.sleep(0.1)
    session.process.send_signal(signal.SIGKILL)  # the lost login session: no clean-up at all
    session.wait()
    left = simulate_jobs(cluster.env, run, "PENDING,RUNNING")
    assert left and (workdir / ".snakemake" / "locks").exists()

    cancel = subprocess.run([SVPERTURB, "slurm-cancel", "--config", str(path)], cwd=workdir,
                            env=cluster.env, capture_output=True, text=True, timeout=700, check=False)
    assert cancel.returncode == 0, cancel.stderr
    assert f"cancelling {len(left)} SLURM job(s) of an earlier run" in cancel.stderr, cancel.stderr
    states = simulate_jobs(cluster.env, run)
    assert not set(left) & set(simulate_jobs(cluster.env, run, "PENDING,RUNNING,COMPLETING"))
    assert all(states[job] in ("CANCELLED", "COMPLETED") for job in left), states
    assert "CANCELLED" in {states[job] for job in left}
    before = shard_files(workdir / config["results"])

    log = resume(path, config, workdir, cluster.env)  # slurm-cancel finds nothing more
    assert started_simulate_jobs(log) == 4 - len(before)
    assert_finished_as_a_local_run(workdir, config, local_run, before)
    # no job of the lost run wrote a shard: each comes from a job that finished, old or new
    cancelled = {job for job in left if states[job] == "CANCELLED"}
    for shard in shard_files(workdir / config["results"]):
        with h5py.File(shard, "r") as fh:
            assert fh.attrs["slurm_job_id"] not in cancelled, shard
