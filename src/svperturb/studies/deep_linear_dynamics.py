"""Training dynamics of deep linear networks against the initialization scale (Jacot et al., arXiv
2106.15933, the abstract: the lazy regime at large initialization, "saddle-to-saddle" at small).

Per sample: a teacher M = U diag(m) V^T, U and V Haar (d x d, sampling/linear_networks.py:
teacher_frames), m the grid point's `teacher_spectrum` (TEACHER_SPECTRA, d = 5), and a network
W_L ... W_1 of width w with iid N(0, w^(-gamma)) initial entries, gamma the point's
`init_exponent`; full-batch gradient descent on 1/2 ||W_L ... W_1 - M||_F^2 (no L2;
linalg/linear_network.py: train) until the loss falls below `loss_tolerance` 1/2 ||M||_F^2 (every
singular value learned) or training_steps. Recorded on a logarithmic grid of steps: the loss, the
flow time, the map's singular values and its projections u_k^T A v_k on the teacher's singular
pairs, from which the claims read the order in which the singular values are learned, the plateaus
of the loss (theory/deep_linear.py: plateau_losses) and whether they rise together.

Depth and init_exponent are BATCHED: one job per (teacher_spectrum, width) trains every depth, all
of a depth's gammas in one batch (the same Z_i scaled by w^(-gamma/2): paired across gamma).
"""

from __future__ import annotations

import numpy as np

from svperturb.linalg.descent import end_to_end_map
from svperturb.linalg.linear_network import logarithmic_steps, train
from svperturb.sampling.linear_networks import initial_weights, teacher_frames, teacher_matrices
from svperturb.studies.datasets import COUNT, NO_UNITS, SAMPLE, Dataset

NAME = "deep_linear_dynamics"
AXES = ("teacher_spectrum", "width", "depth", "init_exponent")
INNER = ()
BATCHED = ("depth", "init_exponent")
SETTINGS = ("training_steps", "rate_factor", "steps_per_decade", "loss_tolerance")
SOURCE = "Jacot et al. (arXiv 2106.15933), the abstract"
# The teacher's singular values m_1 > ... > m_d (d = 5): evenly spaced, and geometric (ratio 0.6)
TEACHER_SPECTRA = {"linear": (5.0, 4.0, 3.0, 2.0, 1.0),
                   "geometric": tuple(5.0 * 0.6**k for k in range(5))}
TEACHER_DIMENSION = 5
PER_INDEX = ("sample", "index")
CURVE = ("sample", "time")
CURVE_PER_INDEX = ("sample", "time", "index")

DATASETS = {
    "teacher_singular_values": Dataset("the teacher's singular values m_k, decreasing", PER_INDEX,
                                       finite=True),
    "recorded_steps": Dataset("the steps of the logarithmic grid at which the run is recorded "
                              "(0 first, then about steps_per_decade per decade up to training_steps)",
                              CURVE, COUNT),
    "loss_curve": Dataset("1/2 ||A - M||_F^2 at each recorded step (after the run stopped: its "
                          "final value)", CURVE, equation=SOURCE, finite=True),
    "flow_time": Dataset("gradient-flow time sum_k eta_k up to each recorded step", CURVE,
                         finite=True),
    "singular_value_curve": Dataset("the map A = W_L ... W_1's singular values, decreasing, at "
                                    "each recorded step", CURVE_PER_INDEX, equation=SOURCE,
                                    finite=True),
    "projection_curve": Dataset("u_k^T A v_k, the map along the teacher's k-th singular pair, at "
                                "each recorded step (m_k once learned)", CURVE_PER_INDEX,
                                equation=SOURCE, finite=True),
    "steps": Dataset("gradient steps taken (training_steps where the loss never fell below the "
                     "tolerance)", SAMPLE, COUNT),
    "finished": Dataset("1 where the loss fell below loss_tolerance 1/2 ||M||_F^2 (every singular "
                        "value learned), 0 where training_steps came first", SAMPLE, NO_UNITS),
    "final_loss": Dataset("1/2 ||A - M||_F^2 at the end", SAMPLE, finite=True),
    "initial_map_norm": Dataset("||A||, the initial map's largest singular value", SAMPLE,
                                finite=True),
}


def bytes_per_sample(point) -> int:
    """The weights, gradients, products and next iterate (about 8 L w^2 floats per run, a run per
    gamma of the job's batch: up to 8 of them) and the records."""
    w, depth = point["width"], point["depth"]
    records = 60 * (2 + 2 * TEACHER_DIMENSION)  # up to ~10 per decade over 6 decades
    return 8 * (8 * (8 * depth * w * w) + records)


def simulate(point, start, stop, xp):
    [result] = simulate_points([point], start, stop, xp)
    return result


def simulate_points(points, start, stop, xp):
    """simulate for each point, the values unchanged: the teacher drawn once per job, one training
    batch per depth holding every gamma."""
    results: list = [None] * len(points)
    groups: dict[tuple, list[int]] = {}
    for k, point in enumerate(points):
        settings = tuple(str(point[key]) for key in SETTINGS)
        groups.setdefault((point["seed"], point["width"], point["teacher_spectrum"], point["depth"],
                           settings), []).append(k)
    frames: dict[int, tuple] = {}
    for (seed, width, spectrum, depth, _), indices in groups.items():
        first = points[indices[0]]
        if seed not in frames:
            frames[seed] = teacher_frames(seed, NAME, TEACHER_DIMENSION, start, stop)
        u, v = frames[seed]
        values = np.asarray(TEACHER_SPECTRA[spectrum])
        m = teacher_matrices(u, v, values)
        count = stop - start
        starts = [initial_weights(seed, NAME, width, TEACHER_DIMENSION, depth,
                                  points[k]["init_exponent"], start, stop) for k in indices]
        weights = [xp.asarray(np.concatenate(layer)) for layer in zip(*starts)]
        batch = len(indices)
        record = logarithmic_steps(int(first["training_steps"]), int(first["steps_per_decade"]))
        run = train(weights, xp.asarray(np.concatenate([m] * batch)),
                    xp.asarray(np.concatenate([u] * batch)), xp.asarray(np.concatenate([v] * batch)),
                    0.0, float(first["rate_factor"]), int(first["training_steps"]), record, 0.0,
                    float(first["loss_tolerance"]) * 0.5 * float(np.sum(values**2)), xp)
        initial = np.linalg.norm(np.concatenate([end_to_end_map(s) for s in starts]), ord=2,
                                 axis=(-2, -1))
        for j, k in enumerate(indices):
            rows = slice(j * count, (j + 1) * count)
            results[k] = (as_array_module(xp, {
                "teacher_singular_values": np.broadcast_to(values, (count, len(values))).copy(),
                "recorded_steps": np.broadcast_to(record, (count, len(record))).copy(),
                "loss_curve": run.loss_curve[rows],
                "flow_time": run.flow_time[rows],
                "singular_value_curve": run.singular_value_curve[rows],
                "projection_curve": run.projection_curve[rows],
                "steps": run.steps[rows],
                "finished": run.stopped[rows].astype(np.uint8),
                "final_loss": run.loss[rows],
                "initial_map_norm": initial[rows],
            }), {})
    return results


def as_array_module(xp, arrays: dict) -> dict:
    """The datasets as arrays of `xp`, as the runner expects (it brings them to the host): the
    training's records cross to the host at the recorded steps (linalg/linear_network.py)."""
    return {key: xp.asarray(value) for key, value in arrays.items()}
