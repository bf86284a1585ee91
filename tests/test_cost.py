"""`svperturb info --cost`: every simulate job of a config probed on a few samples and scaled to
its samples; the arithmetic checked on a clock that the stand-in study advances."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from svperturb import cost
from svperturb.cli import main
from svperturb.config import StudyConfig, load_config, study_configs
from svperturb.studies import batched_axes, grid_points, job_axes, job_points, jobs_per_shard

TINY = Path(__file__).parent / "data" / "tiny.yaml"


@pytest.mark.parametrize("name", ["hard_bounds", "sharpness", "resnet_layer"])
def test_job_points_are_the_grid_split_by_the_job_axes(name):
    study = study_configs(load_config(TINY))[name]
    jobs = job_points(name, study.grid)
    assert len(jobs) == jobs_per_shard(name, study.grid)
    flattened = [p for job in jobs for p in job]
    assert sorted(map(repr, flattened)) == sorted(map(repr, grid_points(name, study.grid)))
    for job in jobs:
        assert len({tuple(p[a] for a in job_axes(name)) for p in job}) == 1  # one job, one key
        assert len(job) == int(np.prod([len(study.grid[a]) for a in batched_axes(name)]))


class Clock:
    """perf_counter for cost.py: advanced by the stand-in simulate, SECONDS per sample and point."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_probes_double_until_a_tenth_of_a_second_and_scale_to_every_shard(monkeypatch):
    clock, calls = Clock(), []
    per_sample = 0.03  # seconds per sample of one point on the stand-in clock

    def simulate(name, points, start, stop, block, xp, sinks, spectra_stop):
        calls.append((stop - start, len(points)))
        clock.now += per_sample * (stop - start) * len(points)

    monkeypatch.setattr(cost.time, "perf_counter", clock)
    monkeypatch.setattr(cost, "simulate_points_range", simulate)
    grid = {"distribution": ["gaussian"], "width": [4, 8, 16]}
    study = StudyConfig("unit_variance", samples=1000, shard_size=300, grid=grid)
    result = cost.study_cost(study, seed=1, keep_spectra=0, xp=np)
    # the warm-up probe (1 sample), then per job 1, 2, 4 samples: 0.12 s >= PROBE_SECONDS
    assert calls == [(1, 1)] + [(1, 1), (2, 1), (4, 1)] * 3
    assert result.jobs == 3 * 4  # 3 widths x 4 shards (1000 = 3 x 300 + 100)
    assert result.core_seconds == pytest.approx(3 * per_sample * 1000)
    assert result.longest_job_seconds == pytest.approx(per_sample * 300)
    assert result.probed_samples == 3 * 4


def test_a_probe_stops_at_the_shard_when_the_shard_is_cheap(monkeypatch):
    clock, calls = Clock(), []

    def simulate(name, points, start, stop, block, xp, sinks, spectra_stop):
        calls.append(stop - start)
        clock.now += 1e-4 * (stop - start) * len(points)

    monkeypatch.setattr(cost.time, "perf_counter", clock)
    monkeypatch.setattr(cost, "simulate_points_range", simulate)
    points = [{"distribution": "gaussian", "width": 4, "seed": 1}]
    rate, count = cost.seconds_per_sample("unit_variance", points, 0, 48, np)
    assert calls == [1, 2, 4, 8, 16, 32, 48] and count == 48
    assert rate == pytest.approx(1e-4)


def test_a_long_probe_reports_its_progress_at_most_every_progress_seconds(monkeypatch, caplog):
    clock = Clock()

    def simulate(name, points, start, stop, block, xp, sinks, spectra_stop):
        clock.now += 20.0 * (stop - start)  # 20 s a sample: every job's probe stops at 1 sample

    monkeypatch.setattr(cost.time, "perf_counter", clock)
    monkeypatch.setattr(cost, "simulate_points_range", simulate)
    study = StudyConfig("unit_variance", samples=10, shard_size=10,
                        grid={"distribution": ["gaussian"], "width": [2, 3, 4, 5, 6]})
    with caplog.at_level("INFO", logger="svperturb.cost"):
        cost.study_cost(study, seed=1, keep_spectra=0, xp=np)
    # after the warm-up, 20 s per job: a line after jobs 2 and 4 (40 s >= 30 s), none after the last
    assert [r.getMessage() for r in caplog.records] == [
        "cost: unit_variance, 2/5 jobs probed", "cost: unit_variance, 4/5 jobs probed"]


def test_the_table_adds_the_studies_and_the_process_starts():
    costs = [cost.StudyCost("a", 10, 3600.0, 60.0, 5), cost.StudyCost("b", 30, 7200.0, 30.0, 7)]
    lines = cost.format_costs(costs, 0.5, "cpu")
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert rows["a"][1:6] == ["10", "60.0", "min", "60.0", "s"]  # core time, longest job
    assert rows["b"][1:6] == ["30", "2.0", "h", "30.0", "s"]
    total = rows["total"]
    assert total[1] == "40" and "(3.01" in lines[-1]  # (3600 + 7200 + 40 x 0.5) / 3600 core-hours
    assert "0.50 s x 40 jobs" in lines[-1]


def test_info_cost_probes_every_study_of_a_config(capsys):
    config = load_config(TINY)
    assert main(["info", "--config", str(TINY), "--cost", "--backend", "numpy"]) == 0
    out = capsys.readouterr().out
    table = out[out.index("cost, estimated"):].splitlines()
    rows = {line.split()[0]: line.split() for line in table[3:]}
    studies = study_configs(config)
    assert set(rows) == set(studies) | {"total"}
    for name, study in studies.items():
        assert int(rows[name][1]) == jobs_per_shard(name, study.grid) * study.n_shards
    assert int(rows["total"][1]) == sum(int(rows[name][1]) for name in studies)


def test_info_cost_needs_a_config(caplog):
    caplog.clear()
    assert main(["info", "--cost"]) == 2
    assert any("--cost: needs --config" in r.getMessage() for r in caplog.records)


def test_job_points_of_a_study_without_batched_axes_are_single_points():
    grid = {"distribution": ["gaussian", "uniform"], "width": [4, 8]}
    jobs = job_points("unit_variance", grid)
    assert [[(p["distribution"], p["width"]) for p in job] for job in jobs] == \
        [[pair] for pair in itertools.product(["gaussian", "uniform"], [4, 8])]


def test_a_study_whose_longest_job_outlasts_the_wall_time_limit_is_named_with_the_keys_to_change():
    costs = [cost.StudyCost("quick", 4, 100.0, 50.0, 4), cost.StudyCost("slow", 2, 9000.0, 4500.0, 2)]
    warnings = [line for line in cost.format_costs(costs, 0.3, "cpu", runtime_minutes=60)
                if "warning" in line]
    assert len(warnings) == 1 and "slow's longest job (75.0 min)" in warnings[0]
    assert "studies.slow.shard_size" in warnings[0] and "resources.runtime_minutes (60)" in warnings[0]
    # on 2 ranks the job takes half as long: within the limit
    assert not [line for line in cost.format_costs(costs, 0.3, "cpu", 60, ranks=2) if "warning" in line]
