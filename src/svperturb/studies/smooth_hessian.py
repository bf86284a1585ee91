"""The Hessian of smooth deep networks and gradient descent on them (Banerjee et al., arXiv
2209.15106; the abstract: the spectral norm of the predictor's Hessian is O(poly(L) / sqrt(m)) for
suitable sigma_0^2, and restricted strong convexity (RSC) holds while the squared norm of the
average gradient of the predictors is Omega(poly(L) / sqrt(m)), giving geometric convergence).

Per sample: a network alpha_l = phi(W_l alpha_(l-1) / sqrt(m)), f = v^T alpha_L / sqrt(m)
(linalg/smooth_network.py) of width m, depth L, activation phi, W_l iid N(0, sigma_0^2) and v iid
N(0, 1) (so that f is O(1) at every width); n training inputs x_i uniform on the sphere of radius
sqrt(d) and targets y_i iid N(0, 1). The input dimension is d = m: with the paper's 1/sqrt(m) in
the first layer, a fixed d would shrink the first pre-activations as sqrt(d / m), and with them
every layer's, as m grows; d = m keeps them O(sigma_0) at every width.

Recorded: both ends of the spectrum of the predictor's Hessian H = d^2 f(theta; x_1) / d theta^2
with respect to every weight (W_1, ..., W_L and v) at the first training input, by Lanczos on
Hessian-vector products (linalg/lanczos.py, within `lanczos_rtol` relative), at the state's
weights (initialization, or after the descent); the spectral norm of the square loss's
Gauss-Newton part (1/n) J^T J there (O(1), the part of the LOSS Hessian that does not vanish);
`descent_steps` steps of gradient descent on L = (1/2n) sum_i (f(x_i) - y_i)^2 with the step
1 / ||d^2 L / d theta^2|| at initialization (the loss's local smoothness, by Lanczos on the loss's
Hessian-vector products), and along it the loss, its ratio per step and the RSC quantity
||(1/n) sum_i grad f(x_i)||^2.

All axes but the activation are BATCHED: one job per activation computes every (width, depth,
sigma_0, state), the draws shared: sample k has the same standard normal W_l (scaled by sigma_0),
v, inputs and targets for every activation, sigma_0 and state, and every depth takes the first L
layers of the deepest; both states share one descent.
"""

from __future__ import annotations

import math

import numpy as np

from svperturb.linalg.smooth_network import (
    ACTIVATIONS,
    SmoothNetwork,
    average_gradient_norm2,
    gradient_descent,
    gram_eigenvalues,
    hessian_ends,
    loss_hessian_ends,
    predictor_jacobian,
    spectral_norm,
)
from svperturb.sampling.ensembles import sample_draws
from svperturb.studies.datasets import COUNT, SAMPLE, Dataset

NAME = "smooth_hessian"
AXES = ("activation", "width", "depth", "init_std", "state")
INNER = ()
BATCHED = ("width", "depth", "init_std", "state")
SETTINGS = ("data_points", "descent_steps", "lanczos_rtol", "lanczos_max_steps")
STATES = ("initialization", "trained")
SOURCE = "Banerjee et al. (arXiv 2209.15106), the abstract"
PER_ITERATE = ("sample", "index")  # t = index - 1 = 0..descent_steps
PER_STEP = ("sample", "step")
# Lanczos's start vectors: one stream per depth (P depends on it), drawn like every draw, so that a
# sample's norm is the same whichever block it is computed in.
START_STREAM, LOSS_START_STREAM = "lanczos_start/depth={}", "loss_lanczos_start/depth={}"
# The step 1 / ||loss Hessian|| needs the norm roughly: within 1e-2 it moves eta by 1 %, where
# gradient descent on a quadratic is stable up to 2 / ||.||.
STEP_RTOL = 1e-2

DATASETS = {
    "hessian_norm": Dataset("spectral norm max(|lambda_max|, |lambda_min|) of the predictor's "
                            "Hessian d^2 f(theta; x_1) / d theta^2 in every weight (W_1..W_L, v), "
                            "at the first training input and the state's weights", SAMPLE,
                            equation=SOURCE, finite=True),
    "hessian_norm_bound": Dataset("Lanczos's bound on |hessian_norm - the exact norm| (the larger "
                                  "end's Kato-Temple bound plus rounding; linalg/lanczos.py)",
                                  SAMPLE, finite=True),
    "lambda_max": Dataset("largest eigenvalue of the predictor's Hessian (Lanczos's top Ritz value)",
                          SAMPLE, equation=SOURCE, finite=True),
    "lambda_min": Dataset("smallest eigenvalue of the predictor's Hessian (Lanczos's bottom Ritz "
                          "value; negative: the Hessian is indefinite)", SAMPLE, equation=SOURCE,
                          finite=True),
    "lanczos_steps": Dataset("Lanczos steps taken (lanczos_max_steps where the tolerance was not "
                             "met: then hessian_norm_bound says how far it is)", SAMPLE, COUNT),
    "gauss_newton_norm": Dataset("spectral norm of the square loss's Gauss-Newton part (1/n) J^T J, "
                                 "J the n x P Jacobian of the predictions, at the state's weights: "
                                 "the O(1) part of the loss Hessian", SAMPLE, finite=True),
    "average_gradient_norm2": Dataset("||(1/n) sum_i grad f(theta; x_i)||^2 at the state's weights: "
                                      "the abstract's RSC quantity", SAMPLE, equation=SOURCE,
                                      finite=True),
    "step_size": Dataset("gradient descent's step eta = 1 / ||d^2 L / d theta^2|| at "
                         "initialization (the loss's local smoothness; Lanczos within 1e-2)",
                         SAMPLE, finite=True),
    "loss_hessian_norm": Dataset("spectral norm of the square loss's Hessian at initialization, "
                                 "(1/n) sum_i (grad f_i grad f_i^T + r_i H_i) (Lanczos within 1e-2)",
                                 SAMPLE, finite=True),
    "linear_rate": Dataset("max_i (1 - eta lambda_i((1/n) J J^T))^2 at initialization: the largest "
                           "loss ratio per step of gradient descent on the model linearised there",
                           SAMPLE, equation=SOURCE, finite=True),
    "loss_path": Dataset("the square loss (1/2n) sum_i (f(theta_t; x_i) - y_i)^2 after t = index - 1 "
                         "steps of gradient descent, t = 0..descent_steps", PER_ITERATE, finite=True),
    "loss_ratio_path": Dataset("the loss ratio L(theta_t) / L(theta_(t-1)) of step t = 1..descent_steps; "
                               "NaN where L(theta_(t-1)) is exactly 0 (the descent reached the "
                               "minimum to rounding: the ratio is undefined)", PER_STEP,
                               equation=SOURCE),
    "diverged_at": Dataset("the step at which gradient descent would have taken the loss above "
                           "1e6 times its start (or to overflow) and stopped there, -1 where it "
                           "never did (linalg/smooth_network.py: DIVERGED)", SAMPLE, COUNT),
    "rsc_path": Dataset("the RSC quantity ||(1/n) sum_i grad f(theta_t; x_i)||^2 after t = index - 1 "
                        "steps, t = 0..descent_steps", PER_ITERATE, equation=SOURCE, finite=True),
}


def bytes_per_sample(point) -> int:
    """Lanczos's basis at its cap (1.5 lanczos_max_steps vectors of P: the last doubling's copy),
    and some 8 + n more vectors of P (the weights, their draws, the descent's iterate and
    gradient, the Jacobian, the start vector), in float64."""
    size = parameter_count(point["width"], point["depth"])
    return int(8 * size * (1.5 * point["lanczos_max_steps"] + 8 + point["data_points"]))


def parameter_count(width: int, depth: int) -> int:
    """P = m d + (L - 1) m^2 + m with d = m."""
    return depth * width * width + width


def simulate(point, start, stop, xp):
    [result] = simulate_points([point], start, stop, xp)
    return result


def loss_ratios(losses, xp):
    """l_t / l_(t-1) per step, NaN where l_(t-1) = 0 (0 / 0: nothing left to contract)."""
    before = losses[:, :-1]
    return losses[:, 1:] / xp.where(before > 0, before, xp.nan)


def _normal(shape):
    return lambda generator, size: generator.standard_normal((size, *shape))


def simulate_points(points, start, stop, xp):
    """simulate for each point, the values unchanged: per (activation, width) the draws once (the
    deepest depth's layers), per (depth, sigma_0) one descent shared by both states."""
    results: list = [None] * len(points)
    groups: dict[tuple, list[int]] = {}
    for k, point in enumerate(points):
        settings = tuple(str(point[key]) for key in SETTINGS)
        groups.setdefault((point["seed"], point["activation"], point["width"], settings),
                          []).append(k)
    for indices in groups.values():
        first = points[indices[0]]
        seed, m, n = first["seed"], first["width"], int(first["data_points"])
        deepest = max(points[k]["depth"] for k in indices)
        layers = [sample_draws(seed, NAME, m, f"weights/layer={layer}", start, stop, _normal((m, m)))
                  for layer in range(1, deepest + 1)]
        readout = sample_draws(seed, NAME, m, "readout", start, stop, _normal((m,)))
        inputs = sample_draws(seed, NAME, m, "inputs", start, stop, _normal((n, m)))
        inputs *= math.sqrt(m) / np.linalg.norm(inputs, axis=-1, keepdims=True)
        targets = sample_draws(seed, NAME, m, "targets", start, stop, _normal((n,)))
        runs: dict[tuple, dict] = {}
        for k in indices:
            point = points[k]
            key = (point["depth"], point["init_std"])
            if key not in runs:
                runs[key] = _descend(point, layers, readout, inputs, targets, start, stop, xp)
            results[k] = (_measure(point, runs[key], inputs, start, stop, xp), {})
    return results


def _descend(point, layers, readout, inputs, targets, start: int, stop: int, xp) -> dict:
    """The network at initialization, gradient descent from it with the step 1 / ||loss Hessian||
    there, and what the states share."""
    std = point["init_std"]
    network = SmoothNetwork([xp.asarray(std * w) for w in layers[:point["depth"]]],
                            xp.asarray(readout), point["activation"])
    x, y = xp.asarray(inputs), xp.asarray(targets)
    starts = sample_draws(point["seed"], NAME, point["width"],
                          LOSS_START_STREAM.format(point["depth"]), start, stop,
                          _normal((network.size,)))
    smoothness = spectral_norm(loss_hessian_ends(network, x, y, xp, STEP_RTOL,
                                                 int(point["lanczos_max_steps"]), start=starts))[0]
    step = 1 / smoothness
    gram = gram_eigenvalues(predictor_jacobian(network, x, xp), xp)
    run = gradient_descent(network, x, y, xp.asarray(step), int(point["descent_steps"]), xp)
    return {"initialization": network, "trained": run.network, "run": run, "step": step,
            "loss_hessian_norm": smoothness,
            "linear_rate": ((1 - step[:, None] * gram) ** 2).max(axis=-1)}


def _measure(point, shared: dict, inputs, start: int, stop: int, xp) -> dict:
    if point["state"] not in STATES:
        raise ValueError(f"state: got {point['state']!r}; allowed: {', '.join(STATES)}")
    if point["activation"] not in ACTIVATIONS:
        raise ValueError(f"activation: got {point['activation']!r}; allowed: "
                         f"{', '.join(ACTIVATIONS)}")
    network, run = shared[point["state"]], shared["run"]
    x = xp.asarray(inputs)
    starts = sample_draws(point["seed"], NAME, point["width"], START_STREAM.format(point["depth"]),
                          start, stop, _normal((network.size,)))
    ends = hessian_ends(network, x[:, 0], xp, rtol=float(point["lanczos_rtol"]),
                        max_iter=int(point["lanczos_max_steps"]), start=starts)
    norm, bound = spectral_norm(ends)
    jacobian = predictor_jacobian(network, x, xp)
    host = {  # the host's share: Lanczos's results and the n x n Gram matrices' eigenvalues
        "hessian_norm": norm,
        "hessian_norm_bound": bound,
        "lambda_max": ends.top,
        "lambda_min": ends.bottom,
        "lanczos_steps": ends.steps,
        "gauss_newton_norm": gram_eigenvalues(jacobian, xp)[:, -1],
        "step_size": shared["step"],
        "loss_hessian_norm": shared["loss_hessian_norm"],
        "linear_rate": shared["linear_rate"],
        "diverged_at": run.diverged_at,
    }
    return {**{key: xp.asarray(value) for key, value in host.items()},
            "average_gradient_norm2": average_gradient_norm2(jacobian),
            "loss_path": run.losses,
            "loss_ratio_path": loss_ratios(run.losses, xp),
            "rsc_path": run.average_gradient_norm2}
