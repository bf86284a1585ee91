"""The command line refuses bad input before any compute starts, naming the option and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from svperturb.cli import main

POINT = "distribution=gaussian/width=4/weight_scale=2"


def run(caplog, *args):
    """Exit status and the logged error lines of `svperturb ARGS`."""
    caplog.clear()
    code = main(list(args))
    return code, "\n".join(r.getMessage() for r in caplog.records if r.levelname == "ERROR")


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        ([], ["--skip", "needs the list of skip values"]),
        (["--skip", "0", "0.5"], ["--skip", "including 0 (ConvNet) and 1"]),
        (["--skip", "0", "1", "--theta", "5"], ["--theta", "no inner axis theta", "skip"]),
    ],
)
def test_simulate_refuses_bad_inner_axes_and_writes_nothing(tmp_path, caplog, extra, fragments):
    output = tmp_path / "shard.h5"
    code, err = run(caplog, "simulate", "--study", "resnet_layer", "--point", POINT, *extra,
                    "--start", "0", "--stop", "4", "--seed", "1", "--output", str(output))
    assert code == 2
    for fragment in fragments:
        assert fragment in err
    assert not output.exists() and not list(tmp_path.iterdir())


def test_simulate_refuses_a_point_missing_an_axis(tmp_path, caplog):
    code, err = run(caplog, "simulate", "--study", "resnet_layer", "--point", "width=4",
                    "--skip", "0", "1", "--start", "0", "--stop", "4", "--seed", "1",
                    "--output", str(tmp_path / "s.h5"))
    assert code == 2
    assert "distribution, width, weight_scale" in err


def test_simulate_refuses_an_unknown_study(tmp_path, caplog):
    code, err = run(caplog, "simulate", "--study", "resnet", "--point", POINT, "--start", "0",
                    "--stop", "4", "--seed", "1", "--output", str(tmp_path / "s.h5"))
    assert code == 2
    assert "resnet_layer" in err and "toy_network" in err


def test_cluster_args_turn_group_size_into_group_components(tmp_path, capsys):
    import yaml

    config = yaml.safe_load((Path(__file__).parent / "data" / "tiny.yaml").read_text())
    path = tmp_path / "c.yaml"
    prefix = "--slurm-jobname-prefix svperturb-results-tiny"  # from results: results/tiny
    for size, expected in ((1, prefix), (20, f"--group-components simulate=20 {prefix}")):
        config["resources"] = {"group_size": size}
        path.write_text(yaml.safe_dump(config))
        assert main(["cluster-args", "--config", str(path)]) == 0
        assert capsys.readouterr().out.strip() == expected


def test_a_shard_drawn_on_three_threads_equals_the_one_drawn_on_one(tmp_path, caplog, monkeypatch):
    import h5py
    import numpy as np

    from svperturb.sampling import ensembles

    monkeypatch.setattr(ensembles, "THREADED_CHUNK_BYTES", 0)  # threads even for 6 x 6 matrices

    common = ["simulate", "--study", "unit_variance", "--point", "distribution=uniform/width=6",
              "--start", "10", "--stop", "400", "--seed", "4", "--block-size", "128",
              "--backend", "numpy"]
    try:
        for threads in (1, 3):
            assert run(caplog, *common, "--draw-threads", str(threads),
                       "--output", str(tmp_path / f"{threads}.h5")) == (0, "")
    finally:
        ensembles.set_draw_threads(1)
    with h5py.File(tmp_path / "1.h5", "r") as one, h5py.File(tmp_path / "3.h5", "r") as three:
        keys = []
        one.visititems(lambda key, obj: keys.append(key) if isinstance(obj, h5py.Dataset) else None)
        assert {"s_min", "spectra/singular_values"} <= set(keys)
        for key in keys:
            np.testing.assert_array_equal(three[key][()], one[key][()], err_msg=key)
        # provenance: the array module, the device and the symmetric eigensolver
        assert (one.attrs["backend"], one.attrs["eigensolver"]) == ("numpy", "the library's")


HARD = "width=5/entry_bound={c}/weight_pattern=uniform/depth=2/activation_slope={eta}/activity=0.2"


def test_one_job_simulates_several_points_as_separate_jobs_would(tmp_path, caplog):
    """A hard_bounds job over its batched axes (c, eta): each shard equals, dataset for dataset
    and in its data hash, the shard of a job with that point alone."""
    import h5py
    import numpy as np

    points = [HARD.format(c=c, eta=eta) for c in (0.3, 0.9) for eta in (0, 0.5)]
    common = ["simulate", "--study", "hard_bounds", "--start", "3", "--stop", "40", "--seed", "7",
              "--backend", "numpy"]
    batched = [str(tmp_path / f"batched-{i}.h5") for i in range(len(points))]
    assert run(caplog, *common, "--point", *points, "--output", *batched) == (0, "")
    for i, point in enumerate(points):
        alone = tmp_path / f"alone-{i}.h5"
        assert run(caplog, *common, "--point", point, "--output", str(alone)) == (0, "")
        with h5py.File(batched[i], "r") as got, h5py.File(alone, "r") as want:
            assert got.attrs["point"] == point
            assert got.attrs["data_hash"] == want.attrs["data_hash"]
            datasets = set()
            want.visititems(lambda key, obj, found=datasets: found.add(key)
                            if isinstance(obj, h5py.Dataset) else None)
            assert "s1_Mo" in datasets
            for key in sorted(datasets):
                np.testing.assert_array_equal(got[key][()], want[key][()], err_msg=key)


@pytest.mark.parametrize(("outputs", "second", "fragments"), [
    (1, HARD.format(c=0.3, eta=0.5), ["--output", "got 1 paths for 2 --point values"]),
    (2, "width=5/entry_bound=0.3", ["--point", "width, entry_bound, weight_pattern"]),
    (2, HARD.format(c=1.5, eta=0.5), ["entry_bound", "1.5"]),
])
def test_a_job_of_several_points_refuses_bad_input_before_computing_any(tmp_path, caplog,
                                                                        outputs, second,
                                                                        fragments):
    paths = [str(tmp_path / f"s{i}.h5") for i in range(outputs)]
    code, err = run(caplog, "simulate", "--study", "hard_bounds", "--point",
                    HARD.format(c=0.3, eta=0), second, "--start", "0", "--stop", "4", "--seed",
                    "1", "--output", *paths)
    assert code == 2
    for fragment in fragments:
        assert fragment in err
    assert not list(tmp_path.iterdir())


def test_info_prints_the_configs_results_folder_and_report(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(Path(__file__).parent.joinpath("data", "tiny.yaml").read_text())
    assert main(["info", "--config", str(config), "--print", "results"]) == 0
    assert capsys.readouterr().out == "results/tiny\n"
    assert main(["info", "--config", str(config), "--print", "report"]) == 0
    assert capsys.readouterr().out == "results/tiny/report/index.html\n"
    assert main(["info", "--config", str(config)]) == 0
    assert "results folder: results/tiny (report: results/tiny/report/index.html)" in capsys.readouterr().out
    assert not (tmp_path / "results").exists()  # info creates nothing


def test_info_refuses_a_results_folder_that_is_a_file(tmp_path, caplog, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").write_text("")
    config = tmp_path / "config.yaml"
    config.write_text(Path(__file__).parent.joinpath("data", "tiny.yaml").read_text()
                      .replace("results: results/tiny", "results: results"))
    code, err = run(caplog, "info", "--config", str(config), "--print", "results")
    assert code == 2 and 'results: got "results", which is a file' in err


@pytest.mark.parametrize(("results", "prefix"), [
    ("results", "svperturb-results"),
    ("results/paper", "svperturb-results-paper"),
    ("/scratch/me/run.2026", "svperturb-scratch-me-run-2026"),
    ("r/" + "x" * 80, "svperturb-r-" + "x" * 38),
])
def test_slurm_job_names_carry_the_results_folder_within_the_plugins_rule(results, prefix):
    import re

    from svperturb.cluster import slurm_job_prefix

    name = slurm_job_prefix({"results": results})
    assert name == prefix and re.fullmatch(r"[A-Za-z0-9_-]{1,50}", name)
