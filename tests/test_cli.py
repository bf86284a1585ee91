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
    for size, expected in ((1, ""), (20, "--group-components simulate=20")):
        config["resources"] = {"group_size": size}
        path.write_text(yaml.safe_dump(config))
        assert main(["cluster-args", "--config", str(path)]) == 0
        assert capsys.readouterr().out.strip() == expected


def test_a_shard_drawn_on_three_threads_equals_the_one_drawn_on_one(tmp_path, caplog, monkeypatch):
    import h5py
    import numpy as np

    from svperturb import ensembles

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
