"""The merged files describe themselves (docs/data-format.md): opened with xarray, a grid point is
named dimensions with coordinates, typed grid attributes and a description on every variable;
every dataset of every study is described; format 2 shards and merged files, made by the previous
version (tests/data/format2), still merge and read, with the same numbers."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr

from support.studies import TINY_POINTS, simulate_study
from svperturb.cli import main
from svperturb.results import io
from svperturb.results.resume import compare_with_existing_shards
from svperturb.studies import StudyConfig, get_study
from svperturb.studies.faults import FAULT_NAMES

FORMAT2 = Path(__file__).parent / "data" / "format2"
# The format 2 fixture: one relu_layer point in two shards, samples [0, 12) and [12, 24), made by
# the previous version's `svperturb simulate` with these settings (tests/data/format2/README.md).
OLD_POINT = "distribution=gaussian/width=6/weight_scale=50/activation_slope=0.1/activity=0.5"
OLD_INNER = ["--skip", "0", "1", "--theta", "4.1"]
OLD_SEED, OLD_SAMPLES, OLD_KEEP = 7, 24, 4


def inner_arguments(study: str, point: dict) -> list[str]:
    """--skip ... --theta ... of a tiny point, for simulate and aggregate."""
    return [text for axis in get_study(study).INNER
            for text in (f"--{axis}", *map(str, point[axis]))]


def open_group(path: Path, group: str) -> xr.Dataset:
    return xr.open_dataset(path, engine="h5netcdf", group=group)


def test_a_merged_group_opens_in_xarray_with_named_dimensions_coordinates_and_typed_attributes(
        tmp_path):
    point = TINY_POINTS["relu_layer"]
    path = io.point_path(point, get_study("relu_layer").AXES)
    simulate_study(tmp_path, "relu_layer", [path], 40, *inner_arguments("relu_layer", point))
    with open_group(tmp_path / "relu_layer.h5", path) as ds:
        assert ds.sizes["sample"] == 40 and ds.sizes["skip"] == 2 and ds.sizes["theta"] == 1
        np.testing.assert_array_equal(ds["sample"], np.arange(40))
        np.testing.assert_array_equal(ds["skip"], point["skip"])
        np.testing.assert_array_equal(ds["theta"], point["theta"])
        assert ds["kappa"].dims == ("sample", "skip")
        assert ds["holds_128"].dims == ("sample", "theta")
        assert ds["fault"].dims == ("sample",)
        assert isinstance(ds.attrs["width"], np.integer) and ds.attrs["width"] == 6
        assert isinstance(ds.attrs["weight_scale"], np.floating) and ds.attrs["weight_scale"] == 50
        assert ds.attrs["distribution"] == "gaussian"
        for name, variable in ds.variables.items():
            assert variable.attrs["description"], name
            assert isinstance(variable.attrs["equation"], str), name
            assert "units" in variable.attrs, name
        kappa_resnet = ds["kappa"].sel(skip=1.0)  # what the coordinates are for
        assert kappa_resnet.dims == ("sample",)
    with open_group(tmp_path / "relu_layer.h5", f"{path}/spectra") as spectra:
        assert spectra["singular_values"].dims == ("spectrum_sample", "skip", "index")
        np.testing.assert_array_equal(spectra["spectrum_sample"], np.arange(16))
        np.testing.assert_array_equal(spectra["index"], np.arange(1, 7))


def test_every_dataset_of_every_study_is_described_and_on_named_dimensions(tmp_path, tiny_study):
    """A tiny simulate and aggregate of each study: in xarray's view no dimension is anonymous
    (phony_dim) and every variable has a description from the study's DATASETS."""
    name, point = tiny_study
    path = io.point_path(point, get_study(name).AXES)
    simulate_study(tmp_path, name, [path], 20, *inner_arguments(name, point))
    merged = tmp_path / f"{name}.h5"
    with h5py.File(merged, "r") as fh:  # escape stores no spectra
        groups = [group for group in (path, f"{path}/spectra") if group in fh]
    for group in groups:
        with open_group(merged, group) as ds:
            assert not [d for d in ds.dims if str(d).startswith("phony_dim")], (group, ds.dims)
            assert ds.sizes.get("sample", 20) == 20
            for variable_name, variable in ds.variables.items():
                assert variable.attrs.get("description"), f"{name}: {group}/{variable_name}"
    with h5py.File(merged, "r") as fh:
        stored = []
        fh[path].visititems(lambda key, obj: stored.append(key)
                            if isinstance(obj, h5py.Dataset) and not obj.is_scale else None)
    assert set(stored) <= set(get_study(name).DATASETS) | {"fault"}
    assert len(stored) >= 2


def test_fault_is_an_hdf5_enum_and_large_datasets_are_compressed(tmp_path):
    point = TINY_POINTS["unit_variance"]
    path = io.point_path(point, get_study("unit_variance").AXES)
    samples = io.COMPRESS_FROM_BYTES // 8 + 1  # s1: one float64 per sample, just above
    simulate_study(tmp_path, "unit_variance", [path], samples)
    with h5py.File(tmp_path / "unit_variance.h5", "r") as fh:
        group = fh[path]
        assert h5py.check_enum_dtype(group["fault"].dtype) == {
            name: code for code, name in FAULT_NAMES.items()}
        assert group["s1"].compression == io.COMPRESSION["compression"]
        assert group["s1"].shuffle == io.COMPRESSION["shuffle"]
        assert group["spectra/singular_values"].compression is None  # 16 x 4 values: not worth it


@pytest.fixture
def old_results(tmp_path) -> Path:
    """A results folder holding the format 2 shards."""
    shutil.copytree(FORMAT2 / "shards", tmp_path / "results" / "shards")
    return tmp_path / "results"


def old_shards(results: Path) -> list[Path]:
    return sorted((results / "shards" / "relu_layer").rglob("shard-*.h5"))


def simulate_new(results: Path, start: int, stop: int) -> Path:
    """The shard of samples [start, stop) of the fixture's point, written by this version."""
    shard = results / "new" / f"shard-{start}.h5"
    assert main(["simulate", "--study", "relu_layer", "--point", OLD_POINT, *OLD_INNER,
                 "--start", str(start), "--stop", str(stop), "--seed", str(OLD_SEED),
                 "--keep-spectra", str(OLD_KEEP), "--backend", "numpy",
                 "--output", str(shard)]) == 0
    return shard


def aggregate(output: Path, shards: list[Path]) -> Path:
    assert main(["aggregate", "--study", "relu_layer", "--samples", str(OLD_SAMPLES),
                 "--seed", str(OLD_SEED), *OLD_INNER, "--output", str(output),
                 *map(str, shards)]) == 0
    return output


def values(path: Path) -> dict[str, np.ndarray]:
    """Every dataset but the dimension scales, by name, with its values as plain arrays."""
    out = {}
    with h5py.File(path, "r") as fh:
        fh.visititems(lambda name, obj: out.__setitem__(name, np.asarray(obj[()]))
                      if isinstance(obj, h5py.Dataset) and not obj.is_scale else None)
    return out


def test_format_2_shards_merge_into_the_current_format_with_the_same_numbers(old_results):
    with h5py.File(old_shards(old_results)[0], "r") as fh:
        assert fh.attrs["format_version"] == 2
    new = [simulate_new(old_results, 0, 12), simulate_new(old_results, 12, 24)]
    with h5py.File(new[0], "r") as fh:
        assert fh.attrs["format_version"] == io.FORMAT_VERSION
    from_old = aggregate(old_results / "from_old.h5", old_shards(old_results))
    from_new = aggregate(old_results / "from_new.h5", new)
    mixed = aggregate(old_results / "mixed.h5", [old_shards(old_results)[0], new[1]])
    reference = values(from_new)
    assert len(reference) == 20  # 19 per-sample datasets and the spectra
    for other in (from_old, mixed):
        got = values(other)
        assert sorted(got) == sorted(reference)
        for name, array in reference.items():
            assert got[name].dtype == array.dtype and got[name].tobytes() == array.tobytes(), name
    with h5py.File(from_old, "r") as fh:
        assert fh.attrs["format_version"] == io.FORMAT_VERSION
        group = fh[OLD_POINT]
        assert h5py.check_enum_dtype(group["fault"].dtype) is not None
        assert list(group.attrs["shards"]) == [
            str(p.relative_to(old_results)) for p in old_shards(old_results)]
        assert group.attrs["width"] == 6 and group.attrs["activation_slope"] == 0.1


def test_format_2_merged_files_still_read_with_the_same_numbers(old_results):
    """A run whose merged files predate format 3 needs no new aggregate: PointData reads both."""
    current = aggregate(old_results / "relu_layer.h5", old_shards(old_results))
    (old,) = io.iter_points(FORMAT2 / "relu_layer.h5")
    (new,) = io.iter_points(current)
    assert old.point == new.point and old.path == new.path == OLD_POINT
    for name in get_study("relu_layer").DATASETS:
        np.testing.assert_array_equal(old[name], new[name])
    np.testing.assert_array_equal(old["fault"], new["fault"])


def test_a_merged_file_of_an_unknown_format_says_to_merge_again(tmp_path):
    merged = Path(shutil.copy(FORMAT2 / "relu_layer.h5", tmp_path / "relu_layer.h5"))
    with h5py.File(merged, "r+") as fh:
        fh.attrs["format_version"] = io.FORMAT_VERSION + 1
    with pytest.raises(io.FormatError, match=f"rm '{merged}' && make run"):
        list(io.iter_points(merged))


def test_resume_reads_format_2_shards(old_results):
    grid = {"distribution": ["gaussian"], "width": [6], "weight_scale": [50.0],
            "activation_slope": [0.1], "activity": [0.5], "skip": [0.0, 1.0], "theta": [4.1]}
    same = {"relu_layer": StudyConfig("relu_layer", OLD_SAMPLES, 12, grid)}
    assert compare_with_existing_shards(old_results, same, OLD_SEED) == ([], [])
    problems, notes = compare_with_existing_shards(old_results, same, OLD_SEED + 1)
    assert problems == [] and "seed (7 -> 8)" in notes[0]
    resplit = {"relu_layer": StudyConfig("relu_layer", OLD_SAMPLES, 10, grid)}
    problems, _ = compare_with_existing_shards(old_results, resplit, OLD_SEED)
    assert "shard_size back to 12" in problems[0]


def test_a_shard_dataset_the_study_does_not_describe_is_refused(old_results, tmp_path):
    shard = old_shards(old_results)[0]
    with h5py.File(shard, "r+") as fh:
        fh["bogus"] = np.zeros(12)
    with pytest.raises(io.ShardError, match="'bogus' is not one of the datasets of study relu_layer"):
        io.merge_shards("relu_layer", old_shards(old_results), OLD_SAMPLES, tmp_path / "merged.h5")
