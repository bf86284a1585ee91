"""HDF5 layout: shards written atomically, validated and merged into one file per study.

Shard `results/shards/<study>/<point>/shard-<k>.h5`:
  attrs      provenance (study, point, typed grid values, sample range, seed, data hash, backend,
             device, eigensolver, versions, wall time)
  /<name>    per-sample arrays, first axis = samples of the shard, in sample order
  /spectra/<name>  full spectra of the samples whose global index is below `keep_spectra`
Merged `results/<study>.h5`: one group per grid point, named by its path
(`distribution=gaussian/width=100/...`), holding the concatenated datasets and the point's attrs.
It describes itself (docs/data-format.md): typed grid values as group attributes, each dataset's
description, units and equation from its study's DATASETS, its axes as HDF5 dimension scales
(`sample`, `skip`, ...: named dimensions with coordinates for netCDF readers such as xarray).

A shard exists complete or not at all: it is written to a temporary file beside the target,
flushed, fsync'ed, and renamed over it; a failed write (full disk, quota, I/O error) removes the
temporary file and raises OutputError naming the path. Temporary files left by a killed job are
removed when the job reruns.

Every shard carries the per-sample dataset `fault` (studies.FAULT_*, an HDF5 enum): merging
refuses a NaN or an infinity in a study's finite datasets outside the samples flagged there, and
PointData leaves the flagged samples out of every array it returns. A study's other categorical
datasets (DATASETS entries with codes, e.g. escape's `outcome`) are HDF5 enums too, and merging
refuses a code they do not list.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import platform
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import scipy

from svperturb import __version__
from svperturb.studies import AXIS_TYPES, get_study, spectra_rows
from svperturb.studies.datasets import (
    DIMENSIONS,
    FAULT,
    Dataset,
    categorical_datasets,
    finite_datasets,
    table,
)

log = logging.getLogger(__name__)

# The files' layout: 2 the per-sample `fault`; 3 self-describing (typed grid attributes, dimension
# scales, dataset descriptions, `fault` an HDF5 enum, compression, relative shard paths).
FORMAT_VERSION = 3
MERGED_SHARD_FORMATS = (2, 3)  # shards aggregate merges: format 2 holds the same numbers
READ_MERGED_FORMATS = (2, 3)  # merged files PointData reads
# What data_hash covers besides the point: bump it when the meaning of stored numbers changes
# (2: the per-sample `fault`), and leave only the new format in MERGED_SHARD_FORMATS.
NUMBERS_VERSION = 2


def enum_dtype(codes: Mapping[int, str]) -> np.dtype:
    """The HDF5 enum of unsigned bytes of a categorical dataset's codes {code: name}."""
    return h5py.enum_dtype({name: code for code, name in codes.items()}, basetype="u1")


# Filters of the merged files' datasets of at least COMPRESS_FROM_BYTES (a smaller one's chunk index
# outweighs what it saves): measured in docs/data-format.md, Compression.
COMPRESSION: dict[str, Any] = {"compression": "gzip", "compression_opts": 4, "shuffle": True}
COMPRESS_FROM_BYTES = 8192


class ShardError(RuntimeError):
    """A shard that cannot be merged; the message names it and how to regenerate it."""


class OutputError(OSError):
    """An output that could not be written (full disk, quota, permissions); names the path.
    Nothing partial is left at the path."""


def regenerate_command(shard: str | Path) -> str:
    """What a researcher runs to recompute one shard: remove it, run the workflow again."""
    return f"rm '{shard}' && make run (with your CONFIG=...), or snakemake --forcerun '{shard}'"


def software_versions() -> dict[str, str]:
    return {
        "svperturb": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
    }


def point_path(point: Mapping[str, Any], axes: tuple[str, ...]) -> str:
    """Hive-style name of a grid point: 'distribution=gaussian/width=100/weight_scale=2'."""
    return "/".join(f"{axis}={format_value(point[axis])}" for axis in axes)


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return format(value, ".12g")
    return str(value)


def data_hash(identity: Mapping[str, Any]) -> str:
    """Hash of everything that determines a shard's numbers (not how the work was split, nor the
    files' layout: format 2 and 3 shards of a point hash alike)."""
    text = json.dumps({**identity, "format_version": NUMBERS_VERSION}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def grid_attrs(study: str, point: Mapping[str, Any]) -> dict[str, Any]:
    """A grid point's values as typed attributes: {'width': 100, 'weight_scale': 2.0, ...}."""
    return {axis: AXIS_TYPES[axis](point[axis]) for axis in get_study(study).AXES}


def _atomic_target(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{socket.gethostname()}-{os.getpid()}")


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete the temporary files of `path` left by killed writers (the workflow runs one job per
    output at a time, so any other writer of `path` is dead)."""
    removed = []
    for stale in path.parent.glob(f".{path.name}.tmp-*"):
        stale.unlink(missing_ok=True)
        removed.append(stale)
    return removed


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write a text file under a temporary name and rename it over `path` (OutputError on failure,
    nothing partial left)."""
    path = Path(path)
    tmp = _atomic_target(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        tmp.write_text(text)
        _publish(tmp, path)
    except OSError as exc:
        raise _write_failed(path, exc) from exc
    finally:
        tmp.unlink(missing_ok=True)


def _write_failed(path: Path, exc: BaseException) -> OutputError:
    return OutputError(f"cannot write {path}: {type(exc).__name__}: {exc} (full disk, quota or "
                       "permissions?); nothing was written there, and any earlier file is intact")


class AtomicHDF5:
    """An HDF5 file written under a temporary name beside `path` and renamed over it when complete.

    h5py reports a failed write of a temporary dataset object only when that object is freed, and
    then ignores it; writers therefore keep every dataset handle (`dataset`) and write through it,
    so that a full disk raises at once. Closing turns any OSError, and the RuntimeError h5py raises
    when closing a file after one, into OutputError naming `path`; the temporary file is always
    removed, and an earlier file at `path` is untouched unless the new one is complete.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.tmp = _atomic_target(self.path)
        self.datasets: dict[str, h5py.Dataset] = {}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            for stale in remove_stale_temporaries(self.path):
                log.info("removed %s, left by an interrupted writer", stale)
            self.file = h5py.File(self.tmp, "w")
        except OSError as exc:
            self.tmp.unlink(missing_ok=True)
            raise _write_failed(self.path, exc) from exc

    def dataset(self, name: str, shape: tuple, dtype, **options) -> h5py.Dataset:
        """The dataset `name`, created on first use (intermediate groups included; `options` of
        h5py's create_dataset, e.g. filters)."""
        if name not in self.datasets:
            self.datasets[name] = self.file.create_dataset(name, shape, dtype=dtype, **options)
        return self.datasets[name]

    def close(self, publish: bool) -> None:
        error = None
        if publish:
            try:
                self.file.flush()
                os.fsync(self.file.id.get_vfd_handle())
            except (OSError, RuntimeError) as exc:
                error = exc
        self.datasets.clear()
        try:
            self.file.close()
        except (OSError, RuntimeError) as exc:
            error = error or exc
        try:
            if publish and error is None:
                _publish(self.tmp, self.path)
        except OSError as exc:
            error = exc
        finally:
            self.tmp.unlink(missing_ok=True)
        if publish and error is not None:
            raise _write_failed(self.path, error) from error

    def __enter__(self) -> AtomicHDF5:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(publish=exc_type is None)


class ShardWriter:
    """Write one shard block by block (memory bounded by the block), then publish it atomically.

    Use as a context manager; on an exception the temporary file is removed and the target
    (if it existed) is left untouched. Its attribute wall_seconds is the time from opening to
    publishing times `time_share`: a job that writes k shards together gives each 1/k.
    """

    def __init__(self, path: str | Path, attrs: Mapping[str, Any], n_samples: int, n_spectra: int,
                 time_share: float = 1.0):
        self.path = Path(path)
        self.time_share = time_share
        self.n_samples = n_samples
        self.n_spectra = n_spectra
        self.started = time.perf_counter()
        self.fault_count = 0
        self.codes = _categorical(attrs.get("study"))
        self.out = AtomicHDF5(self.path)
        try:
            for key, value in attrs.items():
                self.out.file.attrs[key] = value
        except BaseException as exc:  # __exit__ never runs for a failed __init__: clean up here
            self.out.close(publish=False)
            if isinstance(exc, OSError):
                raise _write_failed(self.path, exc) from exc
            raise

    def write(self, offset: int, per_sample: Mapping[str, np.ndarray], spectra: Mapping[str, np.ndarray]):
        """Store a block whose first sample is `offset` samples into the shard."""
        try:
            self._write(offset, per_sample, spectra)
        except OSError as exc:
            raise _write_failed(self.path, exc) from exc

    def _write(self, offset: int, per_sample: Mapping[str, np.ndarray],
               spectra: Mapping[str, np.ndarray]) -> None:
        if "fault" in per_sample:
            self.fault_count += int(np.count_nonzero(per_sample["fault"]))
        for name, values in per_sample.items():
            dtype = enum_dtype(self.codes[name]) if name in self.codes else values.dtype
            dataset = self.out.dataset(name, (self.n_samples, *values.shape[1:]), dtype)
            dataset[offset : offset + len(values)] = values
        keep = max(0, min(self.n_spectra - offset, self.n_samples))
        for name, values in spectra.items():
            dataset = self.out.dataset(f"spectra/{name}", (self.n_spectra, *values.shape[1:]),
                                       values.dtype)
            if keep > 0:
                dataset[offset : offset + min(keep, len(values))] = values[:keep]

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.out.file.attrs["wall_seconds"] = ((time.perf_counter() - self.started)
                                                       * self.time_share)
                self.out.file.attrs["fault_count"] = self.fault_count
                self.out.file.attrs["created"] = datetime.now(UTC).isoformat(timespec="seconds")
            except OSError as error:
                self.out.close(publish=False)
                raise _write_failed(self.path, error) from error
        self.out.close(publish=exc_type is None)


def _categorical(study: str | None) -> dict[str, Mapping[int, str]]:
    """{dataset: codes} of the categorical datasets of `study` (categorical_datasets), stored as
    HDF5 enums; `fault` alone where the study is not known."""
    try:
        described = table(get_study(study)) if study is not None else {"fault": FAULT}
    except ValueError:  # not a study: its shard is refused when merged
        described = {"fault": FAULT}
    return categorical_datasets(described)


def _publish(tmp: Path, path: Path) -> None:
    """Rename a complete temporary file over `path` and make the rename durable."""
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_attrs(path: str | Path) -> dict[str, Any]:
    with h5py.File(path, "r") as fh:
        return {k: _plain(v) for k, v in fh.attrs.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode()
    return value


REQUIRED_SHARD_ATTRS = ("study", "point", "sample_start", "sample_stop", "keep_spectra", "data_hash",
                        "format_version")


def merge_shards(study: str, shards: list[str | Path], samples: int, output: str | Path,
                 expected_point: Callable[[str], dict] | None = None,
                 force: bool = False) -> dict[str, int]:
    """Validate and merge shards into `output` (atomic). Returns samples merged per point.

    Refused, with a ShardError naming the shard and how to regenerate it: an unreadable or
    truncated file, another study, data format or svperturb version (the version: unless `force`,
    which records the mismatch in the merged point for the report to flag), settings other than
    `expected_point(point path)` (grid point with its inner axes and seed), samples that do not
    cover [0, `samples`) exactly once, datasets of the wrong length or not in the study's DATASETS,
    and a NaN or an infinity in a finite dataset of the study outside the samples its `fault`
    dataset flags. Shards of every format in MERGED_SHARD_FORMATS merge into the current format;
    the merged file records shard paths relative to its own folder (the results folder).
    """
    module = get_study(study)
    by_point: dict[str, list[tuple[int, int, Path, dict]]] = {}
    for shard in map(Path, shards):
        attrs = _shard_attrs(shard, study, samples, expected_point, force)
        by_point.setdefault(attrs["point"], []).append(
            (attrs["sample_start"], attrs["sample_stop"], shard, attrs))

    output = Path(output)
    merged = {}
    with AtomicHDF5(output) as out:
        try:
            out.file.attrs["study"] = study
            out.file.attrs["description"] = " ".join(module.__doc__.split("\n\n")[0].split())
            out.file.attrs["axes"] = list(module.AXES)  # a group's path: axis=value/...
            out.file.attrs["format_version"] = FORMAT_VERSION
            out.file.attrs["created"] = datetime.now(UTC).isoformat(timespec="seconds")
            for key, value in software_versions().items():
                out.file.attrs[f"version_{key}"] = value
            for point in sorted(by_point):
                parts = sorted(by_point[point], key=lambda p: p[0])
                _check_coverage(point, parts, samples)
                merged[point] = _merge_point(out, point, parts, samples, module)
        except OSError as exc:
            raise _write_failed(output, exc) from exc
    return merged


def _shard_attrs(shard: Path, study: str, samples: int, expected_point, force: bool) -> dict:
    """A shard's attributes, once they pass every check that needs no dataset."""
    again = f"regenerate it: {regenerate_command(shard)}"
    try:
        attrs = read_attrs(shard)
    except (OSError, KeyError) as exc:
        raise ShardError(f"{shard}: unreadable HDF5 shard, truncated or not HDF5 ({exc}); "
                         f"{again}") from None
    missing = [k for k in REQUIRED_SHARD_ATTRS if k not in attrs]
    if missing:
        raise ShardError(f"{shard}: missing attributes {missing}; {again}")
    if attrs["study"] != study:
        raise ShardError(f"{shard}: belongs to study {attrs['study']!r}, not {study!r}; {again}")
    if attrs["format_version"] not in MERGED_SHARD_FORMATS:
        raise ShardError(f"{shard}: data format {attrs['format_version']}, this code merges "
                         f"formats {', '.join(map(str, MERGED_SHARD_FORMATS))}; {again}")
    made_by = attrs.get("version_svperturb")
    if made_by != __version__:
        if not force:
            raise ShardError(f"{shard}: written by svperturb {made_by}, this is {__version__}; "
                             f"{again}; or merge it anyway with `svperturb aggregate --force` "
                             "(config: accept_version_mismatch: true), which the report flags")
        log.warning("%s: written by svperturb %s, merged by %s (--force): the report flags it",
                    shard, made_by, __version__)
    if not 0 <= attrs["sample_start"] < attrs["sample_stop"] <= samples:
        raise ShardError(f"{shard}: samples [{attrs['sample_start']}, {attrs['sample_stop']}) are "
                         f"outside [0, {samples}) of the config; {again}")
    if expected_point is not None:
        want = expected_point(attrs["point"])
        if attrs["data_hash"] != data_hash({"study": study, "point": want}):
            have = json.loads(attrs.get("point_json", "{}"))
            differ = ", ".join(f"{k}: shard {have.get(k)!r}, config {want.get(k)!r}"
                               for k in sorted(set(have) | set(want)) if have.get(k) != want.get(k))
            raise ShardError(f"{shard}: computed with other settings than the config ("
                             f"{differ or 'a different data hash'}); {again}")
    return attrs


def _check_coverage(point, parts, samples):
    hashes = {p[3]["data_hash"] for p in parts}
    if len(hashes) > 1:
        listing = ", ".join(f"{p[2]} ({p[3]['data_hash']})" for p in parts)
        raise ShardError(f"point {point}: shards come from different settings: {listing}; "
                         f"regenerate the outdated ones: {regenerate_command('<shard>')}")
    expected = 0
    for start, stop, shard, _ in parts:
        if start != expected:
            raise ShardError(f"point {point}: samples [{expected}, {start}) missing or overlapping "
                             f"before {shard}; regenerate it: {regenerate_command(shard)}")
        expected = stop
    if expected != samples:
        raise ShardError(f"point {point}: shards cover samples [0, {expected}), expected "
                         f"[0, {samples}); last shard {parts[-1][2]}")


MERGED_AWAY = ("sample_start", "sample_stop", "shard", "wall_seconds", "created", "hostname",
               "command", "fault_count", "format_version")


def _merge_point(out: AtomicHDF5, point: str, parts, samples: int, study) -> int:
    """Copy a point's shards, in sample order, into the group `point`: each shard is opened once,
    checked (_check_shard_data) and written; the first one fixes the layout. Then every axis is
    attached to its dimension scale (_attach_dimensions)."""
    group = out.file.create_group(point)
    first_attrs = parts[0][3]
    point_values = json.loads(first_attrs["point_json"])
    for key, value in first_attrs.items():
        if key not in MERGED_AWAY:
            group.attrs[key] = value
    group.attrs.update(grid_attrs(study.NAME, point_values))
    group.attrs["samples"] = samples
    group.attrs["shards"] = [os.path.relpath(p[2], out.path.parent) for p in parts]
    group.attrs["compute_seconds"] = float(sum(p[3].get("wall_seconds", 0.0) for p in parts))
    versions = sorted({str(p[3].get("version_svperturb")) for p in parts} - {__version__})
    group.attrs["version_mismatch"] = ", ".join(versions)  # empty unless merged with force
    keep = first_attrs["keep_spectra"]
    described = table(study)
    finite, categorical = finite_datasets(described), categorical_datasets(described)
    layout: dict[str, tuple] = {}
    faults = []
    for start, stop, shard, _ in parts:
        with _open_shard(shard) as fh:
            if not layout:
                fh.visititems(lambda name, obj: layout.__setitem__(name, (obj.shape, obj.dtype))
                              if isinstance(obj, h5py.Dataset) else None)
                if "fault" not in layout:
                    raise ShardError(f"{shard}: no dataset 'fault'; regenerate it: "
                                     f"{regenerate_command(shard)}")
                for name, (shape, dtype) in layout.items():
                    rows = spectra_rows(0, samples, keep) if name.startswith("spectra/") else samples
                    _described_dataset(out, point, name, (rows, *shape[1:]), dtype,
                                       _entry(described, name, len(shape), study.NAME, shard))
            data = {name: _read_dataset(fh, shard, name, parts[0][2]) for name in layout}
        _check_shard_data(shard, data, stop - start, spectra_rows(start, stop, keep), finite,
                          categorical)
        faults.extend((start + int(i), int(data["fault"][i])) for i in np.flatnonzero(data["fault"]))
        for name, values in data.items():  # spectra rows are the first samples, as is the shard's
            out.datasets[f"{point}/{name}"][start : start + len(values)] = values
    group.attrs["fault_count"] = len(faults)
    group.attrs["faults_json"] = json.dumps(faults[:1000])  # (sample, code); the count is exact
    _attach_dimensions(out, point, {name: described[name] for name in layout},
                       {axis: point_values[axis] for axis in study.INNER})
    return samples


def _entry(described: Mapping[str, Dataset], name: str, ndim: int, study: str,
           shard: Path) -> Dataset:
    """The table entry of a shard's dataset; ShardError where the study has none that fits."""
    entry = described.get(name)
    if entry is None or len(entry.dims) != ndim:
        found = "not one of" if entry is None else f"of {ndim} axes, not {len(entry.dims)} as in"
        raise ShardError(f"{shard}: dataset {name!r} is {found} the datasets of study {study} "
                         f"(studies/{study}.py, DATASETS); regenerate it: "
                         f"{regenerate_command(shard)}")
    return entry


def _described_dataset(out: AtomicHDF5, point: str, name: str, shape: tuple, dtype,
                       entry: Dataset) -> None:
    """A merged dataset, compressed from COMPRESS_FROM_BYTES, with its table entry as attributes;
    a categorical one (`fault`, an entry with codes) is the HDF5 enum whatever its shards' type."""
    size = math.prod(shape) * np.dtype(dtype).itemsize
    dataset = out.dataset(f"{point}/{name}", shape,
                          dtype if entry.codes is None else enum_dtype(entry.codes),
                          **(COMPRESSION if size >= COMPRESS_FROM_BYTES else {}))
    dataset.attrs.update(description=entry.description, units=entry.units,
                         equation=entry.equation)


def _attach_dimensions(out: AtomicHDF5, point: str, described: Mapping[str, Dataset],
                       inner: Mapping[str, list]) -> None:
    """Attach each axis of the point's datasets to the dimension scale of its name in the
    dataset's own group (the point's or its spectra/), created on first use: sample indices for
    `sample` and `spectrum_sample`, the sorted inner values for `skip` and `theta`, positions
    1, 2, ... for the others."""
    scales: dict[str, h5py.Dataset] = {}
    for name, entry in described.items():
        dataset = out.datasets[f"{point}/{name}"]
        for axis, dim in enumerate(entry.dims):
            path = f"{dataset.parent.name}/{dim}"
            size = dataset.shape[axis]
            if path not in scales:
                if dim in inner:
                    coordinate = np.asarray(sorted(inner[dim]), dtype=float)
                else:
                    coordinate = np.arange(size) + (dim not in ("sample", "spectrum_sample"))
                scales[path] = _described_scale(out, path, dim, coordinate)
            if scales[path].shape[0] != size:
                raise ValueError(f"{point}/{name}: axis {axis} ({dim}) has {size} values, the "
                                 f"dimension {path} {scales[path].shape[0]}")
            dataset.dims[axis].attach_scale(scales[path])


def _described_scale(out: AtomicHDF5, path: str, dim: str, coordinate: np.ndarray) -> h5py.Dataset:
    """The dimension scale `dim` at `path`, holding `coordinate`, described by DIMENSIONS."""
    scale = out.dataset(path, coordinate.shape, coordinate.dtype)
    scale[...] = coordinate
    scale.make_scale(dim)
    entry = DIMENSIONS[dim]
    scale.attrs.update(description=entry.description, units=entry.units, equation=entry.equation)
    return scale


def _open_shard(shard: Path) -> h5py.File:
    try:
        return h5py.File(shard, "r")
    except OSError as exc:
        raise ShardError(f"{shard}: unreadable HDF5 shard, truncated? ({exc}); regenerate it: "
                         f"{regenerate_command(shard)}") from None


def _read_dataset(fh: h5py.File, shard: Path, name: str, reference: Path) -> np.ndarray:
    if name not in fh:
        raise ShardError(f"{shard}: dataset {name!r} missing (present in {reference}); "
                         f"regenerate it: {regenerate_command(shard)}")
    try:
        return fh[name][()]
    except (OSError, ValueError) as exc:
        raise ShardError(f"{shard}: dataset {name!r} unreadable, truncated? ({exc}); "
                         f"regenerate it: {regenerate_command(shard)}") from None


def _check_shard_data(shard: Path, data: dict[str, np.ndarray], rows: int, spectra_rows: int,
                      finite: tuple[str, ...], categorical: Mapping[str, Mapping[int, str]]) -> None:
    """Lengths (`rows` per sample, `spectra_rows` of spectra), the codes of the `categorical`
    datasets ({name: codes}, `fault` among them), and no NaN or infinity in the finite datasets of
    unflagged samples."""
    again = f"regenerate it: {regenerate_command(shard)}"
    for name, values in data.items():
        expected = spectra_rows if name.startswith("spectra/") else rows
        if len(values) != expected:
            raise ShardError(f"{shard}: dataset {name!r} has {len(values)} rows, expected "
                             f"{expected}; {again}")
    fault = data["fault"]
    for name, codes in categorical.items():
        values = data.get(name)
        unknown = sorted(set(np.unique(values).tolist()) - set(codes)) if values is not None else []
        if unknown:
            raise ShardError(f"{shard}: dataset {name!r} holds codes {unknown}; allowed: "
                             f"{sorted(codes)}; {again}")
    for name in finite:
        values = data.get(name)
        if values is None or not len(values):
            continue
        flat = values.reshape(len(values), -1)
        bad = ~np.isfinite(flat).all(axis=1) & (fault[: len(values)] == 0)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise ShardError(f"{shard}: dataset {name!r} holds NaN or infinity at row {first} "
                             f"({int(bad.sum())} rows in all) of samples not flagged as numerical "
                             f"faults: corrupted; {again}")


@dataclass
class PointData:
    """A merged grid point: its attributes and datasets (loaded on access).

    Arrays come without the samples flagged as numerical faults (dataset `fault`), so that no
    statistic sees them; `data["fault"]` itself is whole, and `sample_id(i)` is the global sample
    index of row i.
    """

    path: str
    attrs: dict[str, Any]
    file: Path

    def __getitem__(self, name: str) -> np.ndarray:
        with h5py.File(self.file, "r") as fh:
            values = fh[self.path][name][()]
        if name == "fault" or not self.fault_count:
            return values
        return values[self._valid[: len(values)]]

    def __contains__(self, name: str) -> bool:
        with h5py.File(self.file, "r") as fh:
            return name in fh[self.path]

    @property
    def point(self) -> dict[str, Any]:
        return json.loads(self.attrs["point_json"])

    @property
    def fault_count(self) -> int:
        return int(self.attrs.get("fault_count", 0))

    @property
    def faults(self) -> list[tuple[int, int]]:
        """(global sample index, fault code) of the first 1000 faulty samples."""
        return [tuple(f) for f in json.loads(self.attrs.get("faults_json", "[]"))]

    @property
    def _valid(self) -> np.ndarray:
        if "_valid_cache" not in self.__dict__:
            self.__dict__["_valid_cache"] = self["fault"] == 0
        return self.__dict__["_valid_cache"]

    def sample_id(self, row: int) -> int:
        """Global sample index of row `row` of the arrays this returns."""
        return int(np.flatnonzero(self._valid)[row]) if self.fault_count else int(row)


class FormatError(RuntimeError):
    """A merged file of a data format this code does not read; the message says what to run."""


def iter_points(path: str | Path) -> Iterator[PointData]:
    """Every grid point of a merged study file, in sorted path order (formats READ_MERGED_FORMATS;
    FormatError for another, naming the command that merges its shards again)."""
    path = Path(path)
    with h5py.File(path, "r") as fh:
        version = _plain(fh.attrs.get("format_version"))
        if version not in READ_MERGED_FORMATS:
            raise FormatError(
                f"{path}: data format {version}, this code reads formats "
                f"{', '.join(map(str, READ_MERGED_FORMATS))}; merge its shards again: rm '{path}' "
                f"&& make run (with your CONFIG=...), or snakemake --forcerun '{path}'")
        found = []

        def visit(name, obj):
            if isinstance(obj, h5py.Group) and "point_json" in obj.attrs:
                found.append((name, {k: _plain(v) for k, v in obj.attrs.items()}))

        fh.visititems(visit)
    for name, attrs in sorted(found):
        yield PointData(name, attrs, path)
