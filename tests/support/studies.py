"""The studies in the tests: a tiny grid point of each (docs/studies.md, The grid and seeding), a
study simulated and merged through the CLI as the workflow does, and a tampered copy of merged
results."""

from __future__ import annotations

# One job-level grid point per study, small enough that hundreds of samples take milliseconds.
# The convnet point uses eta = -1 so that the absolute-value branch (Proposition 23) is exercised.
TINY_POINTS = {
    "unit_variance": {"distribution": "gaussian", "width": 4},
    "resnet_layer": {"distribution": "uniform", "width": 4, "weight_scale": 2.0,
                     "skip": [0.0, 0.5, 1.0]},
    "convnet_vs_resnet": {"distribution": "gaussian", "width": 5, "weight_scale": 2.0,
                          "activation_slope": -1.0, "activity": 0.4, "skip": [0.0, 1.0]},
    "hard_bounds": {"width": 4, "entry_bound": 0.3, "weight_pattern": "random_signs", "depth": 2,
                    "activation_slope": 0.0, "activity": 0.5},
    "relu_layer": {"distribution": "gaussian", "width": 6, "weight_scale": 50.0,
                   "activation_slope": 0.1, "activity": 0.5, "skip": [0.0, 1.0], "theta": [4.1]},
    "depth": {"distribution": "gaussian", "width": 5, "weight_scale": 2.0, "activation_slope": 0.0,
              "activity": 0.6, "depth": 2, "skip": [0.0, 1.0]},
    "derivative": {"distribution": "uniform", "width": 4, "weight_scale": 2.0, "skip": [0.0, 0.5]},
    "data_factor": {"distribution": "gaussian", "width": 3, "weight_scale": 2.0, "activation_slope": 0.1,
                    "activity": 0.5, "batch_size": 2, "skip": [0.0, 1.0]},
    "rho_paths": {"distribution": "gaussian", "width": 4, "skip": [0.0, 0.25, 0.5, 0.75, 1.0]},
    "toy_network": {"width": 3, "activation_slope": 0.1, "skip": [0.0, 0.5, 1.0]},
    "sharpness": {"target": "ill_conditioned", "width": 3, "depth": 3, "imbalance": 0.5},
    # with its settings (the study's own keys), 300 steps: runs near c = 1 stay undecided
    "escape": {"target": "gaussian", "width": 3, "depth": 3, "imbalance": 0.5,
               "step_factor": [0.8, 1.2], "max_steps": 300, "start_distance": 1e-9,
               "escape_factor": 100.0, "stay_factor": 1000.0},
    "smooth_hessian": {"activation": "softplus", "width": 4, "depth": 2, "init_std": 0.5,
                       "state": "trained", "data_points": 3, "descent_steps": 5,
                       "lanczos_rtol": 1e-8, "lanczos_max_steps": 60},
    # few steps: some runs stop, others reach training_steps (the runs leave the batch in turn)
    "deep_linear_dynamics": {"teacher_spectrum": "geometric", "width": 5, "depth": 3,
                             "init_exponent": 1.0, "training_steps": 150, "rate_factor": 0.5,
                             "steps_per_decade": 10, "loss_tolerance": 1e-3},
    "deep_linear_l2": {"width": 7, "depth": 3, "l2": 0.1, "init_exponent": 1.0,
                       "training_steps": 150, "rate_factor": 0.5, "gradient_tolerance": 0.02},
}
# The command-line settings of TINY_POINTS' studies that have their own (simulate, aggregate).
TINY_SETTINGS = {"escape": ["--settings", "step_factor=0.8,1.2", "max_steps=300",
                            "start_distance=1e-09", "escape_factor=100.0", "stay_factor=1000.0"],
                 "smooth_hessian": ["--settings", "data_points=3", "descent_steps=5",
                                    "lanczos_rtol=1e-08", "lanczos_max_steps=60"],
                 "deep_linear_dynamics": ["--settings", "training_steps=150", "rate_factor=0.5",
                                          "steps_per_decade=10", "loss_tolerance=0.001"],
                 "deep_linear_l2": ["--settings", "training_steps=150", "rate_factor=0.5",
                                    "gradient_tolerance=0.02"]}


def simulate_study(directory, study: str, points: list[str], samples: int, *inner: str,
                   block_size: int | None = None) -> None:
    """Each Hive-style grid point of `study` simulated through the CLI (seed 5, NumPy, one shard
    of `samples`, blocks of `block_size` if given), merged into directory/<study>.h5 as the
    workflow merges, every shard checked against the seed and the inner axes `inner` (e.g.
    "--skip", "0", "1"), which go to every simulate too."""
    from svperturb.cli import main

    size = ["--block-size", str(block_size)] if block_size else []
    shards = []
    for i, point in enumerate(points):
        shard = directory / "shards" / f"{study}-{i}.h5"
        assert main(["simulate", "--study", study, "--point", point, "--start", "0", "--stop",
                     str(samples), "--seed", "5", "--backend", "numpy", "--output", str(shard),
                     *size, *inner]) == 0
        shards.append(str(shard))
    assert main(["aggregate", "--study", study, "--samples", str(samples), "--seed", "5", *inner,
                 "--output", str(directory / f"{study}.h5"), *shards]) == 0


def tampered_copy(results_dir, tmp_path, study: str, changes: dict, where: str = "",
                  every: bool = False):
    """A copy of the merged results in tmp_path where `changes` {dataset: f(array)} edit the first
    grid point whose path contains `where` (every such point with every=True); f returns the new
    array, or None after editing its argument in place."""
    import shutil

    import h5py

    from svperturb.analysis.claims import Results

    for path in results_dir.glob("*.h5"):
        shutil.copy(path, tmp_path / path.name)
    with h5py.File(tmp_path / f"{study}.h5", "r+") as fh:
        groups = []
        fh.visititems(lambda name, obj: groups.append(name)
                      if "point_json" in obj.attrs and where in name + "/" else None)
        assert groups, f"no grid point of {study} matches {where!r}"
        for group in groups if every else groups[:1]:
            for dataset, change in changes.items():
                values = fh[group][dataset][()]
                new = change(values)
                fh[group][dataset][...] = values if new is None else new
    return Results(tmp_path)


def fit_and_report(results, tmp_path) -> tuple[str, dict[str, str], list[dict]]:
    """Fit and report merged `results` through the CLI (bootstrap 20) into tmp_path: the report's
    index.html, its claims' table rows by id, and claims.json."""
    import json
    import re

    from svperturb.cli import main

    files = {name: str(tmp_path / f"{name}.json") for name in ("fits", "claims")}
    assert main(["fit", "--results", str(results), "--fits", files["fits"], "--claims", files["claims"],
                 "--bootstrap", "20"]) == 0
    assert main(["report", "--results", str(results), "--fits", files["fits"], "--claims", files["claims"],
                 "--output-dir", str(tmp_path / "report"), "--figures-dir", str(tmp_path / "figures")]) == 0
    index = (tmp_path / "report" / "index.html").read_text()
    rows = dict(re.findall(r"<tr id='claim-(\d+)'(.*?)</tr>", index, re.DOTALL))
    return index, rows, json.loads((tmp_path / "claims.json").read_text())
