"""The Snakemake workflow: lint, dry runs, refusal of bad configs, and a real end-to-end run."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import pytest
import yaml

from support.run_digest import differences, run_digest
from svperturb.analysis.captions import CAPTIONS
from svperturb.analysis.figures import FIGURES
from svperturb.analysis.fit import VERDICTS
from svperturb.config import study_configs, validate_config
from svperturb.studies import grid_points, job_axes

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]
TINY = ROOT / "tests" / "data" / "tiny.yaml"

pytestmark = pytest.mark.workflow


def snakemake(*args: str, cwd: Path = ROOT, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run."""
    table = output[output.index("Job stats:"):]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)}


def expected_simulate_jobs(config_path: Path) -> int:
    """A job per grid point and shard, but one per combination of the job axes and shard for a
    study with BATCHED axes (hard_bounds: its c, eta and activity in one job)."""
    studies = study_configs(validate_config(yaml.safe_load(config_path.read_text())))
    total = 0
    for name, s in studies.items():
        grid = {axis: s.grid[axis] for axis in job_axes(name)}
        total += len(list(itertools.product(*grid.values()))) * s.n_shards
    return total


def test_lint_finds_nothing_but_the_deployment_recommendation():
    # Rules run the `svperturb` of the environment that runs Snakemake (.venv or environment.yml),
    # so a per-rule conda env is deliberately absent; every other lint must be fixed.
    result = snakemake("--lint", "--configfile", str(TINY), check=False)
    lints = set(re.findall(r"^\s+\* (.+?):?$", result.stdout + result.stderr, re.MULTILINE))
    assert lints <= {"Specify a conda environment or container for each rule."}, lints


@pytest.mark.parametrize("config", ["config/config.yaml", "config/paper.yaml"])
def test_dry_run_lists_every_job(tmp_path, config):
    result = snakemake("-n", "--configfile", str(ROOT / config), "--directory", str(tmp_path))
    counts = job_counts(result.stdout)
    # simulate, and simulate_<study> for each study with BATCHED axes
    simulated = sum(count for rule, count in counts.items() if rule.startswith("simulate"))
    assert simulated == expected_simulate_jobs(ROOT / config)
    assert counts["aggregate"] == len(yaml.safe_load((ROOT / config).read_text())["studies"]) and counts["fit"] == 1 and counts["report"] == 1


def test_the_escape_settings_reach_its_simulate_and_aggregate_commands(tmp_path):
    """The study's own settings are on its jobs' command lines (so that a change reruns them, and
    every shard is checked against them when merged)."""
    config = yaml.safe_load(TINY.read_text())
    config["studies"] = {"escape": {**config["studies"]["escape"], "max_steps": 123}}
    path = tmp_path / "escape.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake("-n", "-p", "--configfile", str(path), "--directory", str(tmp_path))
    settings = ("--settings step_factor=0.8,1.2 max_steps=123 start_distance=1e-09 "
                "escape_factor=100.0 stay_factor=1000.0")
    lines = (result.stdout + result.stderr).splitlines()
    simulate = [line for line in lines if "svperturb simulate --study escape" in line]
    aggregate = [line for line in lines if "svperturb aggregate --study escape" in line]
    assert len(simulate) == 2 * 2 and len(aggregate) == 1  # a job per (target, width)
    assert all(settings in line for line in simulate + aggregate)


def test_bad_config_stops_the_workflow_before_any_job(tmp_path):
    bad = yaml.safe_load(TINY.read_text())
    bad["grid"]["weight_scale"] = [2, -1]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    result = snakemake("-n", "--configfile", str(path), "--directory", str(tmp_path), check=False)
    assert result.returncode != 0
    message = result.stdout + result.stderr
    assert "weight_scale" in message and "-1" in message
    assert not (tmp_path / "results").exists()


def read_only(folder: Path) -> list[str]:
    """A command prefix under which `folder` cannot be written: its mode for a user; a read-only
    bind mount in a private mount namespace for root, whom file modes do not stop."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return []
    prefix = ["unshare", "--mount", "sh", "-c",
              f"mount --bind '{folder}' '{folder}' && mount -o remount,bind,ro '{folder}' && exec \"$@\"", "sh"]
    probe = subprocess.run([*prefix, "touch", str(folder / "probe")], capture_output=True, text=True)
    if "Read-only file system" not in probe.stderr:
        pytest.skip(f"cannot make a read-only folder as root here: {probe.stderr.strip()}")
    return prefix


@pytest.mark.parametrize("case", ["a file", "not writable", "inside src/"])
def test_a_results_folder_that_cannot_hold_results_is_refused_before_any_job(tmp_path, case):
    config = yaml.safe_load(TINY.read_text())
    prefix, work = [], tmp_path / "work"
    work.mkdir()
    if case == "a file":
        (work / "taken").write_text("a researcher's notes\n")
        config["results"], expected = "taken", "which is a file"
    elif case == "not writable":
        (work / "locked").mkdir()
        prefix = read_only(work / "locked")
        config["results"], expected = "locked/results", "cannot be written"
    else:
        config["results"], expected = str(ROOT / "src" / "results"), "which holds the program"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run([*prefix, *SNAKEMAKE, "--cores", "1", "--configfile", str(path),
                             "--directory", str(work)], capture_output=True, text=True, timeout=300)
    message = result.stdout + result.stderr
    assert result.returncode != 0 and f'results: got "{config["results"]}"' in message, message
    assert expected in message and "allowed:" in message
    assert "rule simulate" not in message and not (ROOT / "src" / "results").exists()
    if case == "a file":
        assert (work / "taken").read_text() == "a researcher's notes\n"
    if case == "not writable":
        assert not (work / "locked" / "results").exists()


@pytest.mark.slow
def test_tiny_config_runs_end_to_end_and_judges_every_claim(tmp_path):
    snakemake("--cores", "2", "--configfile", str(TINY), "--directory", str(tmp_path))
    results = tmp_path / yaml.safe_load(TINY.read_text())["results"]

    claims = json.loads((results / "claims.json").read_text())
    assert [c["id"] for c in claims] == list(range(1, 34))
    for claim in claims:
        assert set(claim) == {"id", "source", "title", "paper", "headline", "measured", "verdict", "evidence"}
        assert claim["source"] == ("2203.03099" if claim["id"] <= 16 else "2509.25783" if claim["id"] <= 24
                                   else "2106.15933" if claim["id"] <= 30 else "2209.15106")
        assert claim["verdict"] in VERDICTS
        assert claim["measured"] and not claim["measured"].startswith("not run")
    fits = json.loads((results / "fits.json").read_text())
    assert set(fits) == {str(i) for i in range(1, 34)} | {"depth"}
    # Every merged number and verdict is the one the code gave before its files described themselves
    # (tests/data/tiny-digest.json; within float64 rounding where another BLAS sums differently).
    reference = json.loads((ROOT / "tests" / "data" / "tiny-digest.json").read_text())
    assert differences(reference, run_digest(results)) == []

    # Every grid point merged with every sample, in sample order.
    config = validate_config(yaml.safe_load(TINY.read_text()))
    for name, study in study_configs(config).items():
        with h5py.File(results / f"{name}.h5", "r") as fh:
            points = []
            fh.visititems(lambda key, obj: points.append(obj) if "point_json" in obj.attrs else None)
            assert len(points) == len(list(grid_points(name, study.grid)))
            for group in points:
                assert all(group[d].shape[0] == study.samples for d in group
                           if isinstance(group[d], h5py.Dataset) and not group[d].is_scale)

    report = results / "report"
    index = (report / "index.html").read_text()
    figures = sorted((report / "figures").glob("*.png"))
    assert index.count("data:image/png;base64,") == len(figures) == len(FIGURES)
    assert "<h2>Depth</h2>" in index
    claims_md = (report / "claims.md").read_text()
    assert all(f"| {i} |" in claims_md for i in range(1, 34))

    # Snakemake's own report: the claims table, the figures and index.html, with their captions.
    snakemake("--report", str(tmp_path / "report.zip"), "--configfile", str(TINY), "--directory", str(tmp_path))
    with zipfile.ZipFile(tmp_path / "report.zip") as archive:
        names = archive.namelist()
        (table,) = [name for name in names if name.endswith("/claims.md")]
        assert archive.read(table).decode() == claims_md
        assert sorted(Path(n).name for n in names if n.endswith(".png")) == [p.name for p in figures]
        assert [n for n in names if n.endswith("/index.html")]
        page = archive.read("report/report.html").decode()
        assert "The claims table" in page and CAPTIONS["figure8_toy_network"].look_for[:40] in page

    # Finished work is never redone.
    again = snakemake("-n", "--configfile", str(TINY), "--directory", str(tmp_path))
    assert "Nothing to be done" in again.stdout + again.stderr


def test_the_slurm_profile_gives_batched_simulate_jobs_the_simulate_rules_resources():
    """The rule of a study with BATCHED axes (simulate_<study>) must start its MPI ranks as the
    simulate rule's do (srun under SLURM), and land on the same partition."""
    from svperturb.studies import STUDIES, batched_axes

    profile = yaml.safe_load((ROOT / "workflow" / "profiles" / "slurm" / "config.yaml").read_text())
    resources = profile["set-resources"]
    batched = [name for name in STUDIES if batched_axes(name)]
    assert batched  # hard_bounds, sharpness, escape
    for name in batched:
        assert resources[f"simulate_{name}"] == resources["simulate"]
