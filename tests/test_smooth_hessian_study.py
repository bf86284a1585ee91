"""The smooth_hessian study (studies/smooth_hessian.py): its datasets, their independence from the
block, and the study through the CLI on a tiny grid with the claims 31-33 reported."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from support.studies import TINY_POINTS, TINY_SETTINGS, fit_and_report, simulate_study
from svperturb.analysis.captions import CAPTIONS
from svperturb.analysis.claims import Results
from svperturb.analysis.figures.smooth_hessian import FIGURES as SMOOTH_FIGURES
from svperturb.linalg.smooth_network import SmoothNetwork, hessian_ends, predictor_hessian_dense
from svperturb.sampling.ensembles import sample_draws
from svperturb.studies import smooth_hessian

POINT = {**TINY_POINTS["smooth_hessian"], "seed": 3}


def test_every_dataset_is_described_and_recorded():
    per_sample, spectra = smooth_hessian.simulate(POINT, 0, 3, np)
    assert set(per_sample) == set(smooth_hessian.DATASETS) and spectra == {}
    steps = POINT["descent_steps"]
    assert per_sample["loss_path"].shape == (3, steps + 1)
    assert per_sample["loss_ratio_path"].shape == (3, steps)
    np.testing.assert_allclose(per_sample["loss_ratio_path"],
                               per_sample["loss_path"][:, 1:] / per_sample["loss_path"][:, :-1])
    assert np.all(per_sample["lambda_min"] < 0) and np.all(per_sample["lambda_max"] > 0)
    np.testing.assert_array_equal(per_sample["hessian_norm"],
                                  np.maximum(per_sample["lambda_max"], -per_sample["lambda_min"]))
    assert smooth_hessian.parameter_count(4, 2) == 2 * 16 + 4


def test_a_descent_that_reaches_zero_loss_is_a_sample_not_a_fault():
    """Gradient descent can drive the loss to exactly 0.0 in float64 (here a one-layer tanh
    network of width 64 fitting 4 points, within 37 steps); its ratio 0 / 0 is recorded as NaN, and
    every dataset that must be finite stays finite."""
    point = {**POINT, "activation": "tanh", "width": 64, "depth": 1, "init_std": 1.5,
             "data_points": 4, "descent_steps": 40, "seed": 20220307}
    per_sample, _ = smooth_hessian.simulate(point, 0, 1, np)
    losses, ratios = per_sample["loss_path"][0], per_sample["loss_ratio_path"][0]
    zero = np.flatnonzero(losses == 0)
    assert zero.size and np.all(losses[zero[0]:] == 0)
    assert np.all(np.isnan(ratios[zero[0]:])) and np.all(np.isfinite(ratios[:zero[0]]))
    np.testing.assert_array_equal(ratios[:zero[0]], losses[1:zero[0] + 1] / losses[:zero[0]])
    for name, entry in smooth_hessian.DATASETS.items():
        assert not entry.finite or np.all(np.isfinite(per_sample[name])), name


def test_the_norm_is_that_of_the_dense_hessian_at_the_state():
    """Rebuild sample 0's network at initialization from the study's draws and compare."""
    point = {**POINT, "state": "initialization"}
    per_sample, _ = smooth_hessian.simulate(point, 0, 2, np)
    m, n = point["width"], point["data_points"]
    layers = [sample_draws(3, "smooth_hessian", m, f"weights/layer={k}", 0, 2,
                           smooth_hessian._normal((m, m))) for k in (1, 2)]
    readout = sample_draws(3, "smooth_hessian", m, "readout", 0, 2, smooth_hessian._normal((m,)))
    inputs = sample_draws(3, "smooth_hessian", m, "inputs", 0, 2, smooth_hessian._normal((n, m)))
    inputs *= np.sqrt(m) / np.linalg.norm(inputs, axis=-1, keepdims=True)
    net = SmoothNetwork([0.5 * w for w in layers], readout, "softplus")
    dense = np.abs(np.linalg.eigvalsh(predictor_hessian_dense(net, inputs[:, 0]))).max(axis=-1)
    np.testing.assert_allclose(per_sample["hessian_norm"], dense, rtol=1e-8)
    assert hessian_ends(net, inputs[:, 0]).top.shape == (2,)


def test_values_do_not_depend_on_the_block():
    whole, _ = smooth_hessian.simulate(POINT, 0, 4, np)
    parts = [smooth_hessian.simulate(POINT, a, b, np)[0] for a, b in ((0, 1), (1, 4))]
    for name in ("hessian_norm", "loss_path", "rsc_path", "gauss_newton_norm"):
        np.testing.assert_allclose(np.concatenate([p[name] for p in parts]), whole[name],
                                   rtol=1e-12)


def test_bytes_per_sample_bounds_the_lanczos_basis():
    point = {**POINT, "width": 64, "depth": 4, "lanczos_max_steps": 100}
    size = smooth_hessian.parameter_count(64, 4)
    assert smooth_hessian.bytes_per_sample(point) >= 8 * 100 * size


def test_the_study_runs_through_the_cli_and_its_claims_are_reported(tmp_path):
    settings = TINY_SETTINGS["smooth_hessian"]
    points = [f"activation={a}/width={m}/depth={d}/init_std={s}/state=initialization"
              for a in ("tanh",) for m in (4, 8) for d in (1, 2, 3) for s in (0.5, 1.5)]
    simulate_study(tmp_path, "smooth_hessian", points, 4, *settings)
    index, rows, claims = fit_and_report(tmp_path, tmp_path / "report-files")
    by_id = {c["id"]: c for c in claims}
    for number in (31, 32, 33):
        assert by_id[number]["source"] == "2209.15106"
        assert by_id[number]["verdict"] in ("reproduced", "not reproduced", "inconclusive")
        assert str(number) in rows
    assert "slope of log ||H||" in by_id[31]["measured"]
    assert "sqrt(m) ||H|| against depth" in by_id[32]["measured"]
    assert "2209.15106" in index
    for name, (draw, _) in SMOOTH_FIGURES.items():  # drawn, labelled, embedded in their claim's row
        assert name in rows[str(CAPTIONS[name].claims[0])]
        fig = draw(Results(tmp_path))
        assert fig.axes and all(ax.get_ylabel() and ax.has_data() for ax in fig.axes)
        assert all(ax.get_xlabel() for ax in fig.axes[-len(fig.axes) // (2 if "descent" in name else 1):])
        plt.close(fig)
        assert draw(Results(tmp_path / "nothing")) is None  # no study, no figure
