"""aggregate refuses what it cannot trust, naming the shard and the command that regenerates it:
truncated files, other settings or versions, wrong sample counts, NaN or infinity where the study
guarantees finite values. Write errors name the path and leave nothing partial."""

from __future__ import annotations

import errno
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from svperturb import __version__
from svperturb.analysis.claims import Results
from svperturb.analysis.report import data_quality
from svperturb.cli import main
from svperturb.results import io

STUDY = "resnet_layer"
POINT = "distribution=gaussian/width=6/weight_scale=2"
SKIP = ["--skip", "0", "0.5", "1"]
SEED = 9
SAMPLES = 64


def simulate(path: Path, seed: int = SEED, skip: list[str] = SKIP, start: int = 0,
             stop: int = SAMPLES) -> Path:
    assert main(["simulate", "--study", STUDY, "--point", POINT, "--start", str(start), "--stop",
                 str(stop), "--seed", str(seed), "--backend", "numpy", "--output", str(path),
                 *skip]) == 0
    return path


def aggregate(output: Path, *shards: Path, samples: int = SAMPLES, extra: tuple = ()) -> int:
    """`svperturb aggregate` as the workflow calls it (the config's seed and skip list)."""
    return main(["aggregate", "--study", STUDY, "--samples", str(samples), "--seed", str(SEED),
                 *SKIP, *extra, "--output", str(output), *map(str, shards)])


@pytest.fixture(scope="module")
def good_shard(tmp_path_factory) -> Path:
    return simulate(tmp_path_factory.mktemp("good") / "shard-0000.h5")


@pytest.fixture
def shard(tmp_path, good_shard) -> Path:
    """A private copy of a good shard, to be damaged by the test."""
    return Path(shutil.copy(good_shard, tmp_path / "shard-0000.h5"))


def assert_refused(tmp_path, caplog, shard, *fragments, samples=SAMPLES, extra=()):
    """aggregate exits 2 before writing anything; the message names the shard, how to regenerate
    it, and each fragment."""
    output = tmp_path / "merged" / f"{STUDY}.h5"
    assert aggregate(output, shard, samples=samples, extra=extra) == 2
    message = caplog.records[-1].getMessage()
    assert str(shard) in message and f"rm '{shard}'" in message, message
    for fragment in fragments:
        assert fragment in message, message
    assert not output.exists()
    assert not output.parent.exists() or list(output.parent.iterdir()) == []
    return message


def test_a_good_shard_is_merged(tmp_path, shard):
    assert aggregate(tmp_path / "merged.h5", shard) == 0
    (data,) = Results(tmp_path).points("merged")
    assert len(data["s1"]) == SAMPLES and data.attrs["version_mismatch"] == ""


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.99])
def test_a_truncated_shard_is_refused(tmp_path, caplog, shard, keep):
    size = shard.stat().st_size
    with open(shard, "r+b") as fh:
        fh.truncate(int(size * keep))
    assert_refused(tmp_path, caplog, shard, "truncated")


def test_a_shard_of_another_seed_is_refused_naming_both_seeds(tmp_path, caplog):
    shard = simulate(tmp_path / "shard-0000.h5", seed=SEED + 1)
    assert_refused(tmp_path, caplog, shard, "other settings than the config",
                   f"seed: shard {SEED + 1}, config {SEED}")


def test_a_shard_of_another_skip_grid_is_refused(tmp_path, caplog):
    shard = simulate(tmp_path / "shard-0000.h5", skip=["--skip", "0", "1"])
    assert_refused(tmp_path, caplog, shard, "skip: shard [0.0, 1.0], config [0.0, 0.5, 1.0]")


def test_a_shard_of_another_version_is_refused_unless_forced_and_then_flagged(tmp_path, caplog,
                                                                              shard):
    with h5py.File(shard, "r+") as fh:
        fh.attrs["version_svperturb"] = "0.0.1"
    assert_refused(tmp_path, caplog, shard, "written by svperturb 0.0.1", "--force")
    assert aggregate(tmp_path / f"{STUDY}.h5", shard, extra=("--force",)) == 0
    (data,) = Results(tmp_path).points(STUDY)
    assert data.attrs["version_mismatch"] == "0.0.1"
    warnings = [line for line in data_quality(Results(tmp_path)) if line.startswith("WARNING")]
    assert len(warnings) == 1 and "0.0.1" in warnings[0] and __version__ in warnings[0]


def test_force_does_not_accept_another_data_format(tmp_path, caplog, shard):
    with h5py.File(shard, "r+") as fh:
        fh.attrs["format_version"] = min(io.MERGED_SHARD_FORMATS) - 1  # before the `fault`
    assert_refused(tmp_path, caplog, shard, f"data format {min(io.MERGED_SHARD_FORMATS) - 1}",
                   extra=("--force",))


def test_a_shard_beyond_the_configured_sample_count_is_refused(tmp_path, caplog, shard):
    assert_refused(tmp_path, caplog, shard, f"outside [0, {SAMPLES // 2})", samples=SAMPLES // 2)


def test_a_shard_with_too_few_rows_is_refused(tmp_path, caplog, shard):
    with h5py.File(shard, "r+") as fh:
        fh.attrs["sample_stop"] = SAMPLES - 1
    # the shard claims [0, 63): the merge finds the datasets 64 rows long
    message = assert_refused(tmp_path, caplog, shard, samples=SAMPLES - 1)
    assert "rows, expected 63" in message


def test_a_shard_with_spectra_of_the_wrong_length_is_refused(tmp_path, caplog, shard):
    with h5py.File(shard, "r+") as fh:
        kept = fh["spectra/singular_values"][()]
        del fh["spectra/singular_values"]
        fh["spectra/singular_values"] = kept[:-1]
    message = assert_refused(tmp_path, caplog, shard)
    assert f"'spectra/singular_values' has {len(kept) - 1} rows, expected {len(kept)}" in message


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dataset", ["s1", "tau_bar", "spectra/singular_values"])
def test_nan_or_infinity_in_a_finite_dataset_is_refused_naming_dataset_and_row(
        tmp_path, caplog, shard, dataset, bad):
    with h5py.File(shard, "r+") as fh:
        values = fh[dataset][()]
        values[5] = bad
        fh[dataset][...] = values
    assert_refused(tmp_path, caplog, shard, f"dataset '{dataset}' holds NaN or infinity at row 5")


def test_nan_in_a_sample_flagged_as_a_fault_is_accepted_and_left_out(tmp_path, shard):
    with h5py.File(shard, "r+") as fh:
        s1 = fh["s1"][()]
        s1[5] = np.nan
        fh["s1"][...] = s1
        fault = fh["fault"][()]
        fault[5] = 2
        fh["fault"][...] = fault
    assert aggregate(tmp_path / f"{STUDY}.h5", shard) == 0
    (data,) = Results(tmp_path).points(STUDY)
    assert data.fault_count == 1 and len(data["s1"]) == SAMPLES - 1 and np.isfinite(data["s1"]).all()


def test_an_unknown_fault_code_is_refused(tmp_path, caplog, shard):
    with h5py.File(shard, "r+") as fh:
        fault = fh["fault"][()]
        fault[0] = 7
        fh["fault"][...] = fault
    assert_refused(tmp_path, caplog, shard, "codes [7]")


# --- write errors: nothing partial, the path in the message ---------------------------------------


def _file_size_limit(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes beyond the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def _run_limited(args: list[str], limit: int) -> subprocess.CompletedProcess:
    """The CLI in a process that cannot write files beyond `limit` bytes (a full disk, as the
    process sees it)."""
    return subprocess.run([sys.executable, "-m", "svperturb", *args], capture_output=True, text=True,
                          preexec_fn=_file_size_limit(limit), timeout=300, check=False)


def test_simulate_on_a_full_disk_fails_naming_the_shard_and_leaves_nothing(tmp_path):
    shard = tmp_path / "shards" / "shard-0000.h5"
    result = _run_limited(["simulate", "--study", STUDY, "--point", POINT, "--start", "0", "--stop",
                           "2000", "--seed", str(SEED), "--backend", "numpy", "--block-size", "64",
                           "--output", str(shard), *SKIP], limit=64 * 1024)
    assert result.returncode == 2, result.stderr
    assert f"cannot write {shard}" in result.stderr and "File too large" in result.stderr, result.stderr
    assert list(shard.parent.iterdir()) == []


def test_aggregate_on_a_full_disk_keeps_the_previous_merged_file(tmp_path, good_shard):
    output = tmp_path / f"{STUDY}.h5"
    assert aggregate(output, good_shard) == 0
    before = output.read_bytes()
    result = _run_limited(["aggregate", "--study", STUDY, "--samples", str(SAMPLES),
                           "--output", str(output), str(good_shard)], limit=16 * 1024)
    assert result.returncode == 2, result.stderr
    assert f"cannot write {output}" in result.stderr, result.stderr
    assert output.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [output.name]


def test_a_write_error_midway_names_the_shard(tmp_path, monkeypatch, caplog):
    real = io.ShardWriter._write
    calls = []

    def disk_full(self, *args):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, *args)

    monkeypatch.setattr(io.ShardWriter, "_write", disk_full)
    shard = tmp_path / "shard-0000.h5"
    assert main(["simulate", "--study", STUDY, "--point", POINT, "--start", "0", "--stop", "40",
                 "--seed", "1", "--backend", "numpy", "--block-size", "16", "--output", str(shard),
                 *SKIP]) == 2
    assert f"cannot write {shard}" in caplog.text and "No space left on device" in caplog.text
    assert list(tmp_path.iterdir()) == []


def test_temporary_files_of_a_killed_writer_are_removed_when_the_job_reruns(tmp_path):
    shard = tmp_path / "shard-0000.h5"
    stale = [tmp_path / f".{shard.name}.tmp-node{k}-{1000 + k}" for k in range(2)]
    for path in stale:
        path.write_bytes(b"half a shard")
    other = tmp_path / ".shard-0001.h5.tmp-node0-1000"  # another shard's: not ours to remove
    other.write_bytes(b"")
    simulate(shard, stop=8)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([shard.name, other.name])
