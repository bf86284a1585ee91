"""io.py: atomic shards, validated merges, and the central guarantee of DESIGN.md: same config, same
backend => bit-identical merged results, whatever the number of shards or the block size."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from support.studies import TINY_POINTS
from svperturb.results import io
from svperturb.studies import get_study, simulate_range

SAMPLES = 150  # spans three seed chunks of 64, so shard edges fall inside and on chunk boundaries
KEEP_SPECTRA = 16


def write_shard(path, study_name, point, start, stop, block_size=64, keep_spectra=KEEP_SPECTRA,
                **extra_attrs):
    """One shard written the way `svperturb simulate` writes it (library calls, no subprocess)."""
    study = get_study(study_name)
    attrs = {
        "study": study_name,
        "point": io.point_path(point, study.AXES),
        "point_json": json.dumps(point, sort_keys=True),
        **io.grid_attrs(study_name, point),
        "seed": point["seed"],
        "sample_start": start,
        "sample_stop": stop,
        "block_size": block_size,
        "keep_spectra": keep_spectra,
        "data_hash": io.data_hash({"study": study_name, "point": point}),
        "format_version": io.FORMAT_VERSION,
        **{f"version_{k}": v for k, v in io.software_versions().items()},
        **extra_attrs,
    }
    n_spectra = max(0, min(keep_spectra, stop) - start)
    with io.ShardWriter(path, attrs, stop - start, n_spectra) as writer:
        simulate_range(study_name, point, start, stop, block_size, np, writer.write)
    return Path(path)


def write_split(directory, study_name, point, edges, block_size=64):
    directory.mkdir(parents=True, exist_ok=True)
    return [write_shard(directory / f"shard-{k}.h5", study_name, point, a, b, block_size)
            for k, (a, b) in enumerate(zip(edges[:-1], edges[1:]))]


def datasets(path):
    """{'<point path>/<dataset>': array} for every dataset of a merged file."""
    out = {}
    with h5py.File(path, "r") as fh:
        fh.visititems(lambda name, obj: out.__setitem__(name, obj[()])
                      if isinstance(obj, h5py.Dataset) else None)
    return out


def assert_bit_identical(a: dict, b: dict):
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        assert a[name].shape == b[name].shape, name
        assert a[name].tobytes() == b[name].tobytes(), f"{name} differs"


def merged(tmp_path, label, study_name, shards, samples=SAMPLES):
    output = tmp_path / f"{label}.h5"
    io.merge_shards(study_name, shards, samples, output)
    return output


# --- seeding invariance through real shards --------------------------------------------------------


@pytest.mark.parametrize("edges", [
    [0, 37, 64, 129, SAMPLES],  # uneven, cutting inside and at seed chunks
    [0, 38, 76, 114, SAMPLES],  # four shards of shard_size 38
])
def test_merged_results_are_bit_identical_whatever_the_number_of_shards(tmp_path, tiny_study, edges):
    name, point = tiny_study
    one = merged(tmp_path, "one", name, write_split(tmp_path / "one", name, point, [0, SAMPLES]))
    four = merged(tmp_path, "four", name, write_split(tmp_path / "four", name, point, edges))
    a, b = datasets(one), datasets(four)
    assert len(a) >= 5
    assert_bit_identical(a, b)


def test_results_are_bit_identical_whatever_the_block_size(tmp_path, tiny_study):
    name, point = tiny_study
    results = []
    for block_size in (1, 7, 64, 100, SAMPLES):
        shard = write_shard(tmp_path / f"block-{block_size}" / "shard-0.h5", name, point, 0, SAMPLES,
                            block_size=block_size)
        results.append(datasets(merged(tmp_path, f"block-{block_size}", name, [shard])))
    for other in results[1:]:
        assert_bit_identical(results[0], other)


def test_merged_shards_equal_the_directly_computed_study(tmp_path, tiny_study):
    name, point = tiny_study
    output = merged(tmp_path, "merged", name,
                    write_split(tmp_path / "shards", name, point, [0, 50, 101, SAMPLES]))
    per_sample, spectra = get_study(name).simulate(point, 0, SAMPLES, np)
    (data,) = io.iter_points(output)
    assert data.path == io.point_path(point, get_study(name).AXES)
    assert data.point == point
    assert data.attrs["samples"] == SAMPLES
    for key, values in per_sample.items():
        np.testing.assert_array_equal(data[key], values)
    for key, values in spectra.items():
        np.testing.assert_array_equal(data[f"spectra/{key}"], values[:KEEP_SPECTRA])


def test_shards_beyond_keep_spectra_store_no_spectra(tmp_path):
    point = {**TINY_POINTS["unit_variance"], "seed": 1}
    shards = write_split(tmp_path, "unit_variance", point, [0, 10, 20, 30])
    lengths = []
    for shard in shards:
        with h5py.File(shard, "r") as fh:
            lengths.append(fh["spectra/singular_values"].shape[0])
            assert fh["s1"].shape == (10,)
    assert lengths == [10, KEEP_SPECTRA - 10, 0]


def test_the_cli_gives_bit_identical_results_for_one_or_three_shards(tmp_path):
    """The same check through `svperturb simulate` and `svperturb aggregate` (cli.main in-process)."""
    from svperturb.cli import main

    common = ["--study", "resnet_layer", "--point", "distribution=gaussian/width=4/weight_scale=2",
              "--skip", "0", "0.5", "1", "--seed", "7"]
    outputs = {}
    for label, edges, size in (("one", [0, 90], ["--block-size", "90"]),
                               ("three", [0, 20, 64, 90], ["--block-size", "9"])):
        shards = []
        for k, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
            shard = tmp_path / label / f"shard-{k}.h5"
            assert main(["simulate", *common, "--start", str(a), "--stop", str(b), *size,
                         "--output", str(shard)]) == 0
            shards.append(str(shard))
        outputs[label] = tmp_path / f"{label}.h5"
        assert main(["aggregate", "--study", "resnet_layer", "--samples", "90",
                     "--output", str(outputs[label]), *shards]) == 0
    assert_bit_identical(datasets(outputs["one"]), datasets(outputs["three"]))


def test_several_grid_points_merge_into_one_group_each(tmp_path):
    base = {**TINY_POINTS["unit_variance"], "seed": 3}
    shards = []
    for distribution in ("gaussian", "uniform"):
        point = {**base, "distribution": distribution}
        shards += write_split(tmp_path / distribution, "unit_variance", point, [0, 30, 60])
    output = merged(tmp_path, "out", "unit_variance", shards, samples=60)
    points = list(io.iter_points(output))
    assert [p.path for p in points] == ["distribution=gaussian/width=4", "distribution=uniform/width=4"]
    assert not np.array_equal(points[0]["s1"], points[1]["s1"])


# --- ShardWriter: a shard exists complete or not at all --------------------------------------------


def _leftovers(directory):
    return sorted(p.name for p in Path(directory).iterdir() if ".tmp" in p.name)


def test_shard_appears_only_when_the_writer_closes(tmp_path):
    target = tmp_path / "shard-0.h5"
    with io.ShardWriter(target, {"study": "x"}, n_samples=4, n_spectra=2) as writer:
        writer.write(0, {"s1": np.arange(2.0)}, {"singular_values": np.ones((2, 3))})
        assert not target.exists()
        assert writer.out.tmp.exists() and writer.out.tmp.parent == target.parent
        writer.write(2, {"s1": np.arange(2.0, 4.0)}, {"singular_values": np.ones((2, 3))})
        assert not target.exists()
    assert target.exists()
    assert _leftovers(tmp_path) == []
    with h5py.File(target, "r") as fh:
        np.testing.assert_array_equal(fh["s1"][()], [0.0, 1.0, 2.0, 3.0])
        assert fh["spectra/singular_values"].shape == (2, 3)
        assert fh.attrs["study"] == "x"
        assert fh.attrs["wall_seconds"] >= 0
        assert "created" in fh.attrs


def test_a_shard_written_beside_others_records_its_share_of_the_jobs_time(tmp_path):
    """A job of k points writes k shards together; each one's wall_seconds is 1/k of the time it
    was open, so that the merged compute_seconds add up to the job's time, not k times it."""
    began = time.perf_counter()
    with io.ShardWriter(tmp_path / "s.h5", {"study": "x"}, 2, 0, time_share=0.25) as writer:
        writer.write(0, {"s1": np.arange(2.0)}, {})
        time.sleep(0.2)
    span = time.perf_counter() - began
    with h5py.File(tmp_path / "s.h5", "r") as fh:
        assert 0.25 * 0.2 <= fh.attrs["wall_seconds"] <= 0.25 * span


def test_a_failure_midway_leaves_neither_shard_nor_temporary_file(tmp_path):
    target = tmp_path / "shard-0.h5"
    with pytest.raises(RuntimeError, match="boom"):
        with io.ShardWriter(target, {"study": "x"}, n_samples=4, n_spectra=0) as writer:
            writer.write(0, {"s1": np.arange(2.0)}, {})
            raise RuntimeError("boom")
    assert not target.exists()
    assert _leftovers(tmp_path) == []


def test_an_attribute_hdf5_cannot_store_leaves_no_temporary_file(tmp_path):
    with pytest.raises(TypeError):
        io.ShardWriter(tmp_path / "shard-0.h5", {"study": "x", "bad": None}, n_samples=2, n_spectra=0)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_rewrite_leaves_the_previous_shard_untouched(tmp_path):
    target = tmp_path / "shard-0.h5"
    with io.ShardWriter(target, {"study": "old"}, n_samples=2, n_spectra=0) as writer:
        writer.write(0, {"s1": np.array([1.0, 2.0])}, {})
    before = target.read_bytes()
    with pytest.raises(RuntimeError):
        with io.ShardWriter(target, {"study": "new"}, n_samples=2, n_spectra=0) as writer:
            writer.write(0, {"s1": np.array([5.0, 6.0])}, {})
            raise RuntimeError("killed")
    assert target.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_a_failing_simulation_leaves_no_shard(tmp_path, monkeypatch):
    """A study that raises after its first block (an error that is neither out of memory, which
    is retried with smaller blocks, nor numerical, which is recorded per sample) publishes nothing."""
    study = get_study("unit_variance")
    real = study.simulate
    calls = []

    def failing(point, start, stop, xp, **options):
        calls.append(start)
        if len(calls) > 1:
            raise RuntimeError("second block")
        return real(point, start, stop, xp, **options)

    monkeypatch.setattr(study, "simulate", failing)
    point = {**TINY_POINTS["unit_variance"], "seed": 1}
    with pytest.raises(RuntimeError, match="second block"):
        write_shard(tmp_path / "shard-0.h5", "unit_variance", point, 0, 100, block_size=10)
    assert calls == [0, 10]
    assert list(tmp_path.iterdir()) == []


# --- merge_shards refuses what does not add up, naming the shard -----------------------------------


@pytest.fixture
def point():
    return {**TINY_POINTS["unit_variance"], "seed": 11}


def _assert_merge_refused(tmp_path, shards, samples, *fragments):
    output = tmp_path / "merged.h5"
    with pytest.raises(io.ShardError) as info:
        io.merge_shards("unit_variance", shards, samples, output)
    for fragment in fragments:
        assert str(fragment) in str(info.value)
    assert not output.exists()
    assert _leftovers(tmp_path) == []
    return str(info.value)


def test_merge_refuses_a_gap_naming_the_shard_after_it(tmp_path, point):
    shards = write_split(tmp_path / "s", "unit_variance", point, [0, 10])
    shards.append(write_shard(tmp_path / "s" / "shard-late.h5", "unit_variance", point, 20, 30))
    _assert_merge_refused(tmp_path, shards, 30, "[10, 20)", shards[1])


def test_merge_refuses_overlapping_shards(tmp_path, point):
    a = write_shard(tmp_path / "a.h5", "unit_variance", point, 0, 20)
    b = write_shard(tmp_path / "b.h5", "unit_variance", point, 10, 30)
    _assert_merge_refused(tmp_path, [a, b], 30, b)


def test_merge_refuses_a_duplicated_shard(tmp_path, point):
    a = write_shard(tmp_path / "a.h5", "unit_variance", point, 0, 10)
    _assert_merge_refused(tmp_path, [a, a], 10, a)


def test_merge_refuses_missing_samples_at_the_end(tmp_path, point):
    shards = write_split(tmp_path / "s", "unit_variance", point, [0, 10, 20])
    _assert_merge_refused(tmp_path, shards, 30, "[0, 20)", "[0, 30)", shards[-1])


def test_merge_refuses_shards_from_different_settings(tmp_path, point):
    a = write_shard(tmp_path / "a.h5", "unit_variance", point, 0, 10)
    b = write_shard(tmp_path / "b.h5", "unit_variance", {**point, "seed": 12}, 10, 20)
    _assert_merge_refused(tmp_path, [a, b], 20, a, b, "different settings")


def test_merge_refuses_a_shard_of_another_study(tmp_path, point):
    a = write_shard(tmp_path / "a.h5", "unit_variance", point, 0, 10)
    other_point = {**TINY_POINTS["resnet_layer"], "seed": 11}
    b = write_shard(tmp_path / "b.h5", "resnet_layer", other_point, 10, 20)
    _assert_merge_refused(tmp_path, [a, b], 20, b, "resnet_layer")


def test_merge_refuses_an_old_data_format(tmp_path, point):
    a = write_shard(tmp_path / "a.h5", "unit_variance", point, 0, 10)
    with h5py.File(a, "r+") as fh:
        fh.attrs["format_version"] = io.FORMAT_VERSION + 1
    _assert_merge_refused(tmp_path, [a], 10, a, "format")


def test_merge_refuses_a_shard_without_provenance(tmp_path, point):
    a = write_shard(tmp_path / "a.h5", "unit_variance", point, 0, 10)
    with h5py.File(a, "r+") as fh:
        del fh.attrs["data_hash"]
    _assert_merge_refused(tmp_path, [a], 10, a, "data_hash")


def test_merge_refuses_a_file_that_is_not_hdf5(tmp_path):
    bad = tmp_path / "shard-0.h5"
    bad.write_text("not an HDF5 file")
    _assert_merge_refused(tmp_path, [bad], 10, bad, "unreadable")


def test_merge_refuses_a_missing_file(tmp_path):
    _assert_merge_refused(tmp_path, [tmp_path / "absent.h5"], 10, tmp_path / "absent.h5")


def test_merge_refuses_a_shard_lacking_a_dataset(tmp_path, point):
    a = write_shard(tmp_path / "a.h5", "unit_variance", point, 0, 10)
    b = write_shard(tmp_path / "b.h5", "unit_variance", point, 10, 20)
    with h5py.File(b, "r+") as fh:
        del fh["kappa"]
    _assert_merge_refused(tmp_path, [a, b], 20, b, "kappa")


def test_merge_refuses_a_dataset_of_the_wrong_length(tmp_path, point):
    a = write_shard(tmp_path / "a.h5", "unit_variance", point, 0, 10)
    b = write_shard(tmp_path / "b.h5", "unit_variance", point, 10, 20)
    with h5py.File(b, "r+") as fh:
        del fh["kappa"]
        fh["kappa"] = np.zeros(7)
    _assert_merge_refused(tmp_path, [a, b], 20, b, "kappa")


def test_a_failed_merge_keeps_the_previous_merged_file(tmp_path, point):
    good = write_split(tmp_path / "s", "unit_variance", point, [0, 10])
    output = tmp_path / "merged.h5"
    io.merge_shards("unit_variance", good, 10, output)
    before = output.read_bytes()
    with pytest.raises(io.ShardError):
        io.merge_shards("unit_variance", good, 20, output)
    assert output.read_bytes() == before
    assert _leftovers(tmp_path) == []


# --- naming and provenance -------------------------------------------------------------------------


def test_point_path_is_hive_style_in_axis_order():
    point = {"width": 100, "distribution": "gaussian", "weight_scale": 2.0, "activation_slope": 0.1}
    assert io.point_path(point, ("distribution", "width", "weight_scale", "activation_slope")) == \
        "distribution=gaussian/width=100/weight_scale=2/activation_slope=0.1"


def test_data_hash_depends_on_the_numbers_not_on_key_order():
    a = io.data_hash({"study": "s", "point": {"width": 4, "seed": 1}})
    assert a == io.data_hash({"point": {"seed": 1, "width": 4}, "study": "s"})
    assert a != io.data_hash({"study": "s", "point": {"width": 4, "seed": 2}})


def test_merged_file_records_provenance(tmp_path, point):
    output = merged(tmp_path, "m", "unit_variance",
                    write_split(tmp_path / "s", "unit_variance", point, [0, 10, 20]), samples=20)
    with h5py.File(output, "r") as fh:
        assert fh.attrs["study"] == "unit_variance"
        assert fh.attrs["format_version"] == io.FORMAT_VERSION
        assert fh.attrs["version_svperturb"]
    (data,) = io.iter_points(output)
    assert data.attrs["seed"] == 11
    assert len(data.attrs["shards"]) == 2
    assert all(os.path.basename(s).startswith("shard-") for s in data.attrs["shards"])


def test_an_out_of_memory_block_is_halved_and_retried_with_identical_results(monkeypatch, caplog):
    name, point = "resnet_layer", {**TINY_POINTS["resnet_layer"], "seed": 5}
    study = get_study(name)
    real = study.simulate
    attempts = []

    def cramped(point, start, stop, xp, **options):
        attempts.append(stop - start)
        if stop - start > 24:  # a device that holds 24 samples at a time
            raise MemoryError("simulated out-of-memory")
        return real(point, start, stop, xp, **options)

    blocks = {}
    monkeypatch.setattr(study, "simulate", cramped)
    simulate_range(name, point, 0, 100, 100, np, lambda offset, per, spec: blocks.update({offset: per}))
    assert attempts[:3] == [100, 50, 25] and max(attempts[3:]) <= 24
    assert "retrying with blocks of 12" in caplog.text
    expected, _ = real(point, 0, 100, np)
    offsets = sorted(blocks)
    for key, values in expected.items():
        np.testing.assert_array_equal(np.concatenate([blocks[o][key] for o in offsets]), values)


def test_other_errors_are_not_retried(monkeypatch):
    study = get_study("resnet_layer")
    monkeypatch.setattr(study, "simulate", lambda *args, **options: (_ for _ in ()).throw(ValueError("bad")))
    with pytest.raises(ValueError, match="bad"):
        simulate_range("resnet_layer", {**TINY_POINTS["resnet_layer"], "seed": 5}, 0, 10, 10, np,
                       lambda *args: None)
