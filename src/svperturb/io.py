"""HDF5 layout: shards written atomically, validated and merged into one file per study.

Shard `results/shards/<study>/<point>/shard-<k>.h5`:
  attrs      provenance (study, point, sample range, seed, data hash, backend, device, versions, wall time)
  /<name>    per-sample arrays, first axis = samples of the shard, in sample order
  /spectra/<name>  full spectra of the samples whose global index is below `keep_spectra`
Merged `results/<study>.h5`: one group per grid point, named by its path
(`distribution=gaussian/width=100/...`), holding the concatenated datasets and the point's attrs.

A shard exists complete or not at all: it is written to a temporary file beside the target,
flushed, fsync'ed, and renamed over it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from svperturb import __version__

FORMAT_VERSION = 1  # bump when the meaning of stored data changes


class ShardError(RuntimeError):
    """A shard that cannot be merged; the message names it and how to regenerate it."""


def software_versions() -> dict[str, str]:
    import scipy

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
    """Hash of everything that determines a shard's numbers (not how the work was split)."""
    text = json.dumps({**identity, "format_version": FORMAT_VERSION}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _atomic_target(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{socket.gethostname()}-{os.getpid()}")


class ShardWriter:
    """Write one shard block by block (memory bounded by the block), then publish it atomically.

    Use as a context manager; on an exception the temporary file is removed and the target
    (if it existed) is left untouched.
    """

    def __init__(self, path: str | Path, attrs: Mapping[str, Any], n_samples: int, n_spectra: int):
        self.path = Path(path)
        self.n_samples = n_samples
        self.n_spectra = n_spectra
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = _atomic_target(self.path)
        self.file = h5py.File(self.tmp, "w")
        self.started = time.perf_counter()
        try:
            for key, value in attrs.items():
                self.file.attrs[key] = value
        except BaseException:  # __exit__ never runs for a failed __init__: clean up here
            self.file.close()
            self.tmp.unlink(missing_ok=True)
            raise

    def write(self, offset: int, per_sample: Mapping[str, np.ndarray], spectra: Mapping[str, np.ndarray]):
        """Store a block whose first sample is `offset` samples into the shard."""
        for name, values in per_sample.items():
            if name not in self.file:
                self.file.create_dataset(name, (self.n_samples, *values.shape[1:]), dtype=values.dtype)
            self.file[name][offset : offset + len(values)] = values
        keep = max(0, min(self.n_spectra - offset, self.n_samples))
        for name, values in spectra.items():
            key = f"spectra/{name}"
            if key not in self.file:
                self.file.create_dataset(key, (self.n_spectra, *values.shape[1:]), dtype=values.dtype)
            if keep > 0:
                self.file[key][offset : offset + min(keep, len(values))] = values[:keep]

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.file.attrs["wall_seconds"] = time.perf_counter() - self.started
                self.file.attrs["created"] = datetime.now(UTC).isoformat(timespec="seconds")
                self.file.flush()
                fd = self.file.id.get_vfd_handle()
                os.fsync(fd)
            self.file.close()
            if exc_type is None:
                os.replace(self.tmp, self.path)
                dir_fd = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
        finally:
            if self.tmp.exists():
                self.tmp.unlink()


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


REQUIRED_SHARD_ATTRS = ("study", "point", "sample_start", "sample_stop", "data_hash", "format_version")


def merge_shards(study: str, shards: list[str | Path], samples: int, output: str | Path,
                 regenerate_hint: str = "snakemake --forcerun") -> dict[str, int]:
    """Validate and merge shards into `output` (atomic). Returns samples merged per point.

    Each point's shards must cover samples [0, `samples`) exactly once and share one data hash.
    """
    by_point: dict[str, list[tuple[int, int, Path, dict]]] = {}
    for shard in map(Path, shards):
        try:
            attrs = read_attrs(shard)
        except (OSError, KeyError) as exc:
            raise ShardError(f"{shard}: unreadable HDF5 shard ({exc}); regenerate it with "
                             f"`{regenerate_hint} {shard}`") from None
        missing = [k for k in REQUIRED_SHARD_ATTRS if k not in attrs]
        if missing:
            raise ShardError(f"{shard}: missing attributes {missing}; regenerate it with "
                             f"`{regenerate_hint} {shard}`")
        if attrs["study"] != study:
            raise ShardError(f"{shard}: belongs to study {attrs['study']!r}, not {study!r}")
        if attrs["format_version"] != FORMAT_VERSION:
            raise ShardError(f"{shard}: data format {attrs['format_version']}, this code reads "
                             f"{FORMAT_VERSION}; regenerate it with `{regenerate_hint} {shard}`")
        by_point.setdefault(attrs["point"], []).append(
            (attrs["sample_start"], attrs["sample_stop"], shard, attrs))

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = _atomic_target(output)
    merged = {}
    try:
        with h5py.File(tmp, "w") as out:
            out.attrs["study"] = study
            out.attrs["format_version"] = FORMAT_VERSION
            out.attrs["created"] = datetime.now(UTC).isoformat(timespec="seconds")
            for key, value in software_versions().items():
                out.attrs[f"version_{key}"] = value
            for point in sorted(by_point):
                parts = sorted(by_point[point], key=lambda p: p[0])
                _check_coverage(point, parts, samples, regenerate_hint)
                merged[point] = _merge_point(out.create_group(point), parts, samples)
            out.flush()
            os.fsync(out.id.get_vfd_handle())
        os.replace(tmp, output)
    finally:
        if tmp.exists():
            tmp.unlink()
    return merged


def _check_coverage(point, parts, samples, hint):
    hashes = {p[3]["data_hash"] for p in parts}
    if len(hashes) > 1:
        listing = ", ".join(f"{p[2]} ({p[3]['data_hash']})" for p in parts)
        raise ShardError(f"point {point}: shards come from different settings: {listing}; "
                         f"regenerate the outdated ones with `{hint} <shard>`")
    expected = 0
    for start, stop, shard, _ in parts:
        if start != expected:
            raise ShardError(f"point {point}: samples [{expected}, {start}) missing or overlapping "
                             f"before {shard}; regenerate with `{hint} {shard}`")
        expected = stop
    if expected != samples:
        raise ShardError(f"point {point}: shards cover samples [0, {expected}), expected "
                         f"[0, {samples}); last shard {parts[-1][2]}")


def _merge_point(group: h5py.Group, parts, samples: int) -> int:
    first_attrs = parts[0][3]
    for key, value in first_attrs.items():
        if key not in ("sample_start", "sample_stop", "shard", "wall_seconds", "created", "hostname",
                       "command"):
            group.attrs[key] = value
    group.attrs["samples"] = samples
    group.attrs["shards"] = [str(p[2]) for p in parts]
    group.attrs["compute_seconds"] = float(sum(p[3].get("wall_seconds", 0.0) for p in parts))
    layout = {}

    def record(name, obj):
        if isinstance(obj, h5py.Dataset):
            layout[name] = (obj.shape, obj.dtype)

    with h5py.File(parts[0][2], "r") as fh:
        fh.visititems(record)
    for name, (shape, dtype) in layout.items():
        total = samples if not name.startswith("spectra/") else sum(
            _dataset_length(p[2], name) for p in parts)
        group.create_dataset(name, (total, *shape[1:]), dtype=dtype)
    offsets = dict.fromkeys(layout, 0)
    for _, _, shard, _ in parts:
        with h5py.File(shard, "r") as fh:
            for name in layout:
                if name not in fh:
                    raise ShardError(f"{shard}: dataset {name!r} missing (present in {parts[0][2]})")
                values = fh[name][()]
                if name.startswith("spectra/") is False and len(values) != (
                        fh.attrs["sample_stop"] - fh.attrs["sample_start"]):
                    raise ShardError(f"{shard}: dataset {name!r} has {len(values)} rows, expected "
                                     f"{fh.attrs['sample_stop'] - fh.attrs['sample_start']}")
                group[name][offsets[name] : offsets[name] + len(values)] = values
                offsets[name] += len(values)
    return samples


def _dataset_length(path: Path, name: str) -> int:
    with h5py.File(path, "r") as fh:
        return fh[name].shape[0] if name in fh else 0


@dataclass
class PointData:
    """A merged grid point: its attributes and datasets (loaded on access)."""

    path: str
    attrs: dict[str, Any]
    file: Path

    def __getitem__(self, name: str) -> np.ndarray:
        with h5py.File(self.file, "r") as fh:
            return fh[self.path][name][()]

    def __contains__(self, name: str) -> bool:
        with h5py.File(self.file, "r") as fh:
            return name in fh[self.path]

    @property
    def point(self) -> dict[str, Any]:
        return json.loads(self.attrs["point_json"])


def iter_points(path: str | Path) -> Iterator[PointData]:
    """Every grid point of a merged study file, in sorted path order."""
    path = Path(path)
    with h5py.File(path, "r") as fh:
        found = []

        def visit(name, obj):
            if isinstance(obj, h5py.Group) and "point_json" in obj.attrs:
                found.append((name, {k: _plain(v) for k, v in obj.attrs.items()}))

        fh.visititems(visit)
    for name, attrs in sorted(found):
        yield PointData(name, attrs, path)
