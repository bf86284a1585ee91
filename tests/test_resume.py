"""Kill the workflow anywhere with SIGKILL, resume it as docs/resume-and-faults.md says, get the
very same numbers.

A clean run of tests/data/resume.yaml is the reference. The interrupted run is killed at least 10
times, at random moments inside simulate, aggregate, fit and report jobs, in two ways: the whole
process group (a node failure, a time limit: Snakemake dies with its jobs) and one job's process
(the kernel's OOM killer, a crashed rank). After every kill, every output file present must be
complete; after the last resume the merged HDF5 datasets must hash as the reference's, and only
interrupted jobs may have been run twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import psutil
import pytest
import yaml

from support.snakemake_run import Session, jobs
from svperturb.results import io

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "tests" / "data" / "resume.yaml"
RESULTS = Path(yaml.safe_load(CONFIG.read_text())["results"])  # relative to the working directory
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
             "--workflow-profile", str(ROOT / "workflow" / "profiles" / "default"), "--cores", "2"]
STUDIES = ("unit_variance", "resnet_layer", "rho_paths")
RULES = ("simulate", "aggregate", "fit", "report")

pytestmark = [pytest.mark.workflow, pytest.mark.slow]


def command(workdir: Path, config: Path = CONFIG, *extra: str) -> list[str]:
    """What `make run` runs (same profile), in `workdir`."""
    return [*SNAKEMAKE, "--configfile", str(config), "--directory", str(workdir), *extra]


def resume_command(workdir: Path, config: Path = CONFIG) -> list[list[str]]:
    """What `make resume` runs: release the lock a killed Snakemake left, then run again."""
    return [command(workdir, config, "--unlock"), command(workdir, config)]


def run(cmd: list[str], check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def file_hashes(path: Path) -> dict[str, str]:
    """sha256 of every dataset (dtype, shape, bytes) of one HDF5 file (reading them all)."""
    out = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            values = obj[()]
            digest = hashlib.sha256(f"{values.dtype.str}{values.shape}".encode())
            digest.update(values.tobytes())
            out[f"{path.name}/{name}"] = digest.hexdigest()

    with h5py.File(path, "r") as fh:
        fh.visititems(visit)
    return out


def dataset_hashes(results: Path) -> dict[str, str]:
    """file_hashes of every merged study file."""
    return {key: value for study in STUDIES for key, value in file_hashes(results / f"{study}.h5").items()}


def assert_every_output_is_complete(results: Path) -> int:
    """Every output file present at its final path is whole; returns how many were checked."""
    checked = 0
    for shard in results.glob("shards/**/shard-*.h5"):
        attrs = io.read_attrs(shard)
        assert all(k in attrs for k in io.REQUIRED_SHARD_ATTRS), shard
        with h5py.File(shard, "r") as fh:
            assert len(fh["fault"]) == attrs["sample_stop"] - attrs["sample_start"], shard
        checked += 1
    for study in STUDIES:
        if (results / f"{study}.h5").exists():
            assert file_hashes(results / f"{study}.h5")  # every dataset readable
            checked += 1
    for name in ("fits.json", "claims.json"):
        if (results / name).exists():
            json.loads((results / name).read_text())
            checked += 1
    if (results / "report" / "index.html").exists():
        assert (results / "report" / "index.html").read_text().rstrip().endswith("</html>")
        checked += 1
    return checked


def svperturb_processes(root: psutil.Process, verb: str | None = None) -> list[psutil.Process]:
    """The `svperturb <verb>` Python processes among root's descendants (not their shells)."""
    try:
        children = root.children(recursive=True)
    except psutil.Error:
        return []
    return [p for p in children if (v := verb_of(p)) is not None and verb in (None, v)]


def verb_of(process: psutil.Process) -> str | None:
    """'simulate' for `.../svperturb simulate ...`; None for other or vanished processes."""
    try:
        args = process.cmdline()
    except psutil.Error:
        return None
    return next((args[i + 1] for i, arg in enumerate(args[:-1]) if Path(arg).name == "svperturb"),
                None)


def leftover_jobs(workdir: Path) -> list[psutil.Process]:
    """svperturb processes still running in `workdir` (a killed run must leave none)."""
    found = []
    for process in psutil.process_iter():
        try:
            if verb_of(process) is not None and Path(process.cwd()) == workdir.resolve():
                found.append(process)
        except psutil.Error:
            continue
    return found


def kill_during(session: Session, rule: str, how: str, rng: random.Random) -> str | None:
    """Wait for a `rule` job, let it run a random time (0-0.4 s for a group kill, 0-0.15 s for a
    job kill, which must land inside that job: a job's Python starts in more than 0.3 s), then
    SIGKILL: `how` = 'group' kills Snakemake and every job (a node failure), 'job' only that
    job's process. Returns the rule(s) whose jobs were running when the kill landed, None if the
    run ended first."""
    while session.process.poll() is None:
        targets = svperturb_processes(session.root, rule)
        if not targets:
            time.sleep(0.01)
            continue
        time.sleep(rng.uniform(0.0, 0.4 if how == "group" else 0.15))
        hit = sorted({verb for p in svperturb_processes(session.root)
                      if _alive(p) and (verb := verb_of(p)) is not None})
        if how == "job":
            if not _alive(targets[0]):
                continue  # finished in the meantime: wait for the next job of this rule
            targets[0].kill()
            return rule
        everything = [session.root, *session.root.children(recursive=True)]
        os.killpg(session.process.pid, signal.SIGKILL)
        for process in everything:  # a node failure: nothing of the run survives
            try:
                process.kill()
            except psutil.Error:
                pass
        return ",".join(hit) or "(between jobs)"
    return None


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """An uninterrupted run: its jobs and its merged datasets' hashes."""
    workdir = tmp_path_factory.mktemp("clean")
    result = run(command(workdir))
    started, finished = jobs(result.stdout + result.stderr)
    assert finished == set(started.values())
    return {"workdir": workdir, "jobs": finished, "hashes": dataset_hashes(workdir / RESULTS),
            "claims": json.loads((workdir / RESULTS / "claims.json").read_text())}


def test_sigkill_anywhere_then_resume_gives_identical_results_rerunning_only_interrupted_jobs(
        tmp_path, reference):
    rng = random.Random(20221130)
    plan = [("simulate", "group"), ("simulate", "job"), ("simulate", "group"), ("simulate", "job"),
            ("aggregate", "group"), ("aggregate", "job"), ("aggregate", "group"),
            ("fit", "job"), ("fit", "group"), ("report", "group"), ("report", "job")]
    kills, starts, finished_once, runs = [], 0, {}, 0
    while plan:
        runs += 1
        assert runs <= 30, f"gave up with kills left to make: {plan}; made {kills}"
        if runs > 1:
            run(resume_command(tmp_path)[0])  # --unlock
        session = Session(command(tmp_path))
        rule, how = plan[0]
        hit = kill_during(session, rule, how, rng)
        session.wait()
        started, finished = jobs(session.log)
        starts += len(started)
        for key in finished:
            assert key not in finished_once, f"{key} finished in run {finished_once[key]} and again"
            finished_once[key] = runs
        assert hit is not None, f"the run finished before a {rule} job could be killed:\n{session.log}"
        kills.append((rule, how, hit))
        if rule in hit.split(","):
            plan.pop(0)
        deadline = time.monotonic() + 10  # SIGKILLed processes vanish within moments
        while leftover_jobs(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not leftover_jobs(tmp_path), "a job survived the kill of its run"
        assert_every_output_is_complete(tmp_path / RESULTS)

    for cmd in resume_command(tmp_path):  # the last resume runs to the end
        result = run(cmd)
    started, finished = jobs(result.stdout + result.stderr)
    starts += len(started)
    for key in finished:
        assert key not in finished_once, f"{key} finished in run {finished_once[key]} and again"
        finished_once[key] = runs + 1

    hit_rules = {rule for _, _, hit in kills for rule in hit.split(",")}
    assert len(kills) >= 10 and set(RULES) <= hit_rules, kills
    # (a) every job finished exactly once; the only extra starts are the interrupted jobs
    assert set(finished_once) == reference["jobs"]
    interrupted = starts - len(reference["jobs"])
    assert 0 < interrupted <= 2 * len(kills)  # at most the 2 running jobs per kill
    # (b) identical numbers
    assert dataset_hashes(tmp_path / RESULTS) == reference["hashes"]
    assert json.loads((tmp_path / RESULTS / "claims.json").read_text()) == reference["claims"]
    # (c) nothing partial left behind
    assert not list((tmp_path / RESULTS).rglob(".*.tmp-*"))
    print(f"\nkill-and-resume: {len(kills)} kills in {runs + 1} runs; {starts} job starts vs "
          f"{len(reference['jobs'])} in a clean run ({interrupted} interrupted jobs rerun); "
          f"{len(reference['hashes'])} dataset hashes identical; kills: {kills}")


def test_killing_one_mpi_rank_fails_the_job_and_resuming_gives_identical_results(
        tmp_path, reference):
    config = yaml.safe_load(CONFIG.read_text())
    config["resources"] = {"ranks": 2, "threads_per_rank": 1}
    path = tmp_path / "ranks.yaml"
    path.write_text(yaml.safe_dump(config))
    session = Session(command(tmp_path, path))
    killed = None
    while session.process.poll() is None and killed is None:
        for process in svperturb_processes(session.root, "simulate"):
            try:
                if process.environ().get("PMI_RANK") == "1":
                    time.sleep(0.2)
                    process.kill()
                    killed = process.pid
                    break
            except psutil.Error:
                continue
        time.sleep(0.02)
    assert session.wait() != 0 and killed is not None, session.log
    assert "Error in rule simulate" in session.log
    assert_every_output_is_complete(tmp_path / RESULTS)
    _, done_before = jobs(session.log)
    for cmd in resume_command(tmp_path, path):
        result = run(cmd)
    started, done_after = jobs(result.stdout + result.stderr)
    assert not done_before & set(started.values())  # nothing finished is run again
    assert done_before | done_after == reference["jobs"]
    assert dataset_hashes(tmp_path / RESULTS) == reference["hashes"]  # 2 ranks == 1 rank
    shards = list((tmp_path / RESULTS / "shards").rglob("shard-*.h5"))
    assert shards and all(io.read_attrs(s)["ranks"] == 2 for s in shards)


def copy_of(reference: dict, tmp_path: Path) -> Path:
    workdir = tmp_path / "work"
    shutil.copytree(reference["workdir"], workdir, symlinks=True)
    return workdir


def changed_config(tmp_path: Path, change) -> Path:
    config = yaml.safe_load(CONFIG.read_text())
    change(config)
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_adding_a_width_and_samples_computes_only_the_new_shards(tmp_path, reference):
    workdir = copy_of(reference, tmp_path)

    def change(config):
        config["grid"]["width"].append(12)  # new grid points of unit_variance and resnet_layer
        config["studies"]["unit_variance"]["samples"] = 640  # one more shard per width

    result = run(command(workdir, changed_config(tmp_path, change)))
    started, finished = jobs(result.stdout + result.stderr)
    assert set(started.values()) == finished  # nothing started that did not need to run
    simulated = sorted(key.split("/shards/")[1] for key in finished if key.startswith("simulate"))
    assert simulated == sorted(
        [f"unit_variance/distribution=gaussian/width={n}/shard-0004.h5" for n in (5, 8)]
        + [f"unit_variance/distribution=gaussian/width=12/shard-000{k}.h5" for k in range(5)]
        + [f"resnet_layer/distribution=gaussian/width=12/weight_scale=2/shard-000{k}.h5"
           for k in range(2)])
    aggregated = sorted(key for key in finished if key.startswith("aggregate"))
    assert aggregated == [f"aggregate {RESULTS}/resnet_layer.h5", f"aggregate {RESULTS}/unit_variance.h5"]


def test_changing_the_shard_size_is_refused_naming_the_key_and_both_sizes(tmp_path, reference):
    workdir = copy_of(reference, tmp_path)
    before = {p: p.stat().st_mtime_ns for p in (workdir / RESULTS).rglob("*.h5")}
    config = changed_config(
        tmp_path, lambda c: c["studies"]["unit_variance"].update(shard_size=256))
    result = run(command(workdir, config), check=False)
    message = result.stdout + result.stderr
    assert result.returncode != 0
    assert "studies.unit_variance.shard_size" in message and "[0, 128)" in message
    assert "[0, 256)" in message and "set shard_size back to 128" in message
    assert f"delete {RESULTS}/shards/unit_variance" in message
    assert "give this config its own results folder (the key `results`" in message
    assert {p: p.stat().st_mtime_ns for p in (workdir / RESULTS).rglob("*.h5")} == before
    # the way out it names: delete the study's shards, and only that study is recomputed
    shutil.rmtree(workdir / RESULTS / "shards" / "unit_variance")
    dry = run(command(workdir, config, "-n"))
    started, _ = jobs(dry.stdout + dry.stderr)
    simulated = [key for key in started.values() if key.startswith("simulate")]
    assert len(simulated) == 2 * 2 and all("unit_variance" in key for key in simulated)


def test_changing_the_seed_says_that_every_shard_will_be_recomputed(tmp_path, reference):
    workdir = copy_of(reference, tmp_path)
    config = changed_config(tmp_path, lambda c: c.update(seed=12))
    result = run(command(workdir, config, "-n"))
    message = result.stdout + result.stderr
    for study, count in (("unit_variance", 8), ("resnet_layer", 4), ("rho_paths", 1)):
        assert (f"study {study}: the config changes seed (11 -> 12) for the {count} shards"
                in message), message
    started, _ = jobs(message)
    assert sum(key.startswith("simulate") for key in started.values()) == 13


def file_bytes(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by relative path."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def other_folder_config(tmp_path: Path, results: str) -> Path:
    """resume.yaml with its own results folder and another split of unit_variance's samples."""
    def change(config):
        config["results"] = results
        config["studies"]["unit_variance"]["shard_size"] = 64  # 128 in resume.yaml
    return changed_config(tmp_path, change)


def test_a_config_with_its_own_results_folder_leaves_anothers_run_byte_identical(tmp_path, reference):
    workdir = copy_of(reference, tmp_path)
    first = file_bytes(workdir / RESULTS)
    other = other_folder_config(tmp_path, "results/other")
    result = run(command(workdir, other))
    started, finished = jobs(result.stdout + result.stderr)
    assert set(started.values()) == finished
    assert all("results/other/" in key for key in finished), finished
    # another split, the same samples: the merged numbers are the first run's
    assert dataset_hashes(workdir / "results" / "other") == reference["hashes"]
    assert file_bytes(workdir / RESULTS) == first
    for config in (CONFIG, other):  # Snakemake's state keeps both runs finished
        dry = run(command(workdir, config, "-n"))
        assert "Nothing to be done" in dry.stdout + dry.stderr, config


def test_two_configs_run_at_the_same_moment_in_one_checkout(tmp_path, reference):
    """Snakemake locks the files a run writes, not the directory: runs whose results folders
    differ do not wait for each other."""
    other = other_folder_config(tmp_path, "results/other")
    sessions = [Session(command(tmp_path, CONFIG)), Session(command(tmp_path, other))]
    overlapped = False  # seen: simulate jobs of both runs at once
    while any(session.process.poll() is None for session in sessions):
        overlapped = overlapped or all(svperturb_processes(s.root, "simulate") for s in sessions)
        time.sleep(0.05)
    codes = [session.wait() for session in sessions]
    assert codes == [0, 0], "\n".join(session.log[-3000:] for session in sessions)
    assert overlapped
    assert dataset_hashes(tmp_path / RESULTS) == reference["hashes"]
    assert dataset_hashes(tmp_path / "results" / "other") == reference["hashes"]
