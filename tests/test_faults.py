"""Numerical faults: a sample whose spectra cannot be computed is recorded with its seed, counted in
the report, and never reaches a statistic; every other sample is exactly what a clean run gives."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from support.studies import TINY_POINTS, simulate_study
from svperturb.analysis.claims import Results
from svperturb.analysis.report import data_quality
from svperturb.cli import main
from svperturb.results import io
from svperturb.results.io import point_path
from svperturb.studies import (
    FAULT_ERROR,
    FAULT_NON_FINITE,
    FAULT_OK,
    STUDIES,
    get_study,
    simulate_points_range,
    simulate_range,
)
from svperturb.studies import resnet_layer as resnet_module
from svperturb.studies.datasets import finite_datasets

SEED = 5  # support.studies.simulate_study's
SAMPLES = 100


def simulate_and_merge(directory, study: str, samples: int = SAMPLES, block_size: int = 16) -> Results:
    """One shard of TINY_POINTS[study] (seed 5), merged with the settings checked."""
    point = TINY_POINTS[study]
    inner = [arg for axis in get_study(study).INNER for arg in (f"--{axis}", *map(str, point[axis]))]
    simulate_study(directory, study, [point_path(point, get_study(study).AXES)], samples, *inner,
                   block_size=block_size)
    return Results(directory)


def the_point(results: Results, study: str) -> io.PointData:
    (data,) = results.points(study)
    return data


def nan_weights_at(monkeypatch, sample: int) -> None:
    """The ResNet layer's weights of one sample become NaN (as from a corrupted input)."""
    real = resnet_module.unit_variance_matrices

    def draws(seed, study, n, distribution, start, stop, *args, **kwargs):
        k = real(seed, study, n, distribution, start, stop, *args, **kwargs)
        if start <= sample < stop:
            k[sample - start, 0, 0] = np.nan
        return k

    monkeypatch.setattr(resnet_module, "unit_variance_matrices", draws)


def test_a_sample_lapack_cannot_handle_is_recorded_with_its_seed_and_left_out(tmp_path, monkeypatch,
                                                                              caplog):
    clean = the_point(simulate_and_merge(tmp_path / "clean", "resnet_layer"), "resnet_layer")
    nan_weights_at(monkeypatch, 17)
    with caplog.at_level(logging.WARNING):
        faulty = the_point(simulate_and_merge(tmp_path / "faulty", "resnet_layer"), "resnet_layer")

    fault = faulty["fault"]
    assert fault[17] in (FAULT_ERROR, FAULT_NON_FINITE)
    assert np.count_nonzero(fault) == 1
    assert faulty.fault_count == 1 and faulty.faults == [(17, int(fault[17]))]
    assert "sample 17 (seed 5" in caplog.text
    # every other sample is bit-identical to the clean run's, and no array holds the faulty one
    keep = np.arange(SAMPLES) != 17
    for name in ("s1", "s_min", "kappa", "tau_bar", "violations_70", "efficiency_a"):
        np.testing.assert_array_equal(faulty[name], clean[name][keep])
        assert np.isfinite(faulty[name]).all() or name.startswith("violations")
    assert faulty["s1"].mean() == clean["s1"][keep].mean()
    # spectra are kept for the first 16 samples (all before 17): untouched
    np.testing.assert_array_equal(faulty["spectra/singular_values"], clean["spectra/singular_values"])
    assert [faulty.sample_id(i) for i in (16, 17, 98)] == [16, 18, 99]


def test_the_report_counts_the_faults_and_names_sample_and_seed(tmp_path, monkeypatch):
    nan_weights_at(monkeypatch, 42)
    results = simulate_and_merge(tmp_path, "resnet_layer")
    (line,) = data_quality(results)
    assert line.startswith(f"resnet_layer: 1 of {SAMPLES} samples are numerical faults")
    assert f"sample 42 (seed {SEED}" in line


def test_a_clean_run_reports_zero_faults(tmp_path):
    results = simulate_and_merge(tmp_path, "unit_variance")
    expected = f"unit_variance: 0 of {SAMPLES} samples are numerical faults, left out of every statistic"
    assert data_quality(results) == [expected]
    assert (the_point(results, "unit_variance")["fault"] == FAULT_OK).all()


@pytest.mark.parametrize("study", STUDIES)
def test_a_non_finite_value_in_a_finite_dataset_marks_only_that_sample(tmp_path, monkeypatch, study):
    """Whatever the study, NaN in its first finite dataset at sample 3 (e.g. cuSOLVER returning
    NaN without an error) flags sample 3 and no other, and the merge accepts it as a fault."""
    module = get_study(study)
    real = module.simulate
    name = finite_datasets(module.DATASETS)[0]

    def with_nan(point, start, stop, xp, **options):
        per_sample, spectra = real(point, start, stop, xp, **options)
        if start <= 3 < stop:
            table = spectra if name.startswith("spectra/") else per_sample
            table[name.removeprefix("spectra/")][3 - start] = np.nan
        return per_sample, spectra

    monkeypatch.setattr(module, "simulate", with_nan)
    data = the_point(simulate_and_merge(tmp_path, study, samples=20, block_size=8), study)
    assert np.flatnonzero(data["fault"]).tolist() == [3]
    assert data["fault"][3] == FAULT_NON_FINITE
    rows = 20 if not name.startswith("spectra/") else min(20, 16)  # spectra: first keep_spectra
    assert len(data[name]) == rows - 1 and np.isfinite(data[name]).all()


def test_a_block_of_one_failing_sample_takes_its_layout_from_the_next_block(monkeypatch):
    """With blocks of one sample, a failing sample has no neighbour to copy shapes from: its rows
    are written once a later block has been computed."""
    point = {**TINY_POINTS["unit_variance"], "seed": SEED}
    module = get_study("unit_variance")
    real = module.simulate

    def failing_first(point, start, stop, xp, **options):
        if start == 0:
            raise np.linalg.LinAlgError("SVD did not converge")
        return real(point, start, stop, xp, **options)

    monkeypatch.setattr(module, "simulate", failing_first)
    blocks = {}
    simulate_range("unit_variance", point, 0, 3, 1, np, lambda o, per, spec: blocks.update({o: per}))
    assert sorted(blocks) == [0, 1, 2]
    assert blocks[0]["fault"].tolist() == [FAULT_ERROR]
    assert np.isnan(blocks[0]["s1"]).all() and blocks[1]["fault"].tolist() == [FAULT_OK]


def test_a_numerical_error_in_one_point_of_a_batched_job_faults_only_its_sample(monkeypatch,
                                                                                 caplog):
    """hard_bounds computes a job's points together (simulate_points); LAPACK failing on sample 5
    of one point retries that point alone, then sample by sample: sample 5 of that point is
    FAULT_ERROR, every other value of every point is what a clean run gives."""
    module = get_study("hard_bounds")
    base = {"width": 5, "weight_pattern": "uniform", "depth": 2, "activity": 0.2, "seed": SEED}
    points = [{**base, "entry_bound": c, "activation_slope": eta} for c in (0.3, 0.9)
              for eta in (0.0, 0.5)]
    bad = points[1]

    def collect(run_points):
        blocks = [{} for _ in run_points]
        sinks = [lambda o, per, spec, got=got: got.update({o: per}) for got in blocks]
        simulate_points_range("hard_bounds", run_points, 0, 16, 8, np, sinks)
        return [{key: np.concatenate([got[o][key] for o in sorted(got)]) for key in got[0]}
                for got in blocks]

    clean = collect(points)
    real_point, real_draws, block = module._simulate_point, module._draws, {}

    def draws(point, start, stop):
        block.update(start=start, stop=stop)
        return real_draws(point, start, stop)

    def failing(point, mats, s1_of_weights, xp):
        if point == bad and block["start"] <= 5 < block["stop"]:
            raise np.linalg.LinAlgError("SVD did not converge")
        return real_point(point, mats, s1_of_weights, xp)

    monkeypatch.setattr(module, "_draws", draws)
    monkeypatch.setattr(module, "_simulate_point", failing)
    with caplog.at_level(logging.WARNING):
        got = collect(points)
    assert "computing them point by point" in caplog.text
    for point, want, have in zip(points, clean, got):
        faulty = [5] if point == bad else []
        assert np.flatnonzero(have["fault"]).tolist() == faulty
        keep = np.ones(16, dtype=bool)
        keep[faulty] = False
        for key in want:
            if key != "fault":
                np.testing.assert_array_equal(have[key][keep], want[key][keep], err_msg=key)
    assert np.isnan(got[1]["s1_Mo"][5])


def test_a_range_where_no_sample_can_be_computed_fails_the_job_and_writes_nothing(tmp_path,
                                                                                   monkeypatch):
    module = get_study("unit_variance")
    monkeypatch.setattr(module, "simulate", lambda *args, **options: (_ for _ in ()).throw(
        np.linalg.LinAlgError("SVD did not converge")))
    shard = tmp_path / "shard-0000.h5"
    with pytest.raises(RuntimeError, match=r"no sample of \[0, 8\) could be computed"):
        main(["simulate", "--study", "unit_variance", "--point", "distribution=gaussian/width=4",
              "--start", "0", "--stop", "8", "--seed", "1", "--backend", "numpy",
              "--output", str(shard)])
    assert list(tmp_path.iterdir()) == []
