"""Deep linear networks with L2 regularization (Jacot et al., arXiv 2106.15933, the abstract: L2 on
the parameters is an L_(2/L)-Schatten penalty on the map; deep networks gain local minima).

Per sample, two things:

- the identity min { sum_i ||W_i||_F^2 : W_L ... W_1 = A } = L sum_j s_j(A)^(2/L)
  (theory/deep_linear.py: schatten_penalty) on a random map A (d x d, iid N(0, 1/d)): the sum of
  squared norms of its balanced factorization (sampling/factorizations.py: balanced_factors), which
  attains the minimum, and of an imbalanced one, W_i -> G_i W_i G_(i-1)^(-1), G_i = expm(Z_i /
  sqrt(d)) (imbalanced_factors at kappa = IMBALANCE), which may not go below it;
- gradient descent on 1/2 ||W_L ... W_1 - M||_F^2 + lambda/2 sum_i ||W_i||_F^2 (width w, N(0,
  w^(-gamma)) initial entries; linalg/linear_network.py: train) until the gradient norm is at most
  `gradient_tolerance` or training_steps, against a teacher M = U diag(m) V^T whose singular values are
  m_k = r_k m_c(lambda, L), r_k = RATIOS, m_c the jump point (theory/deep_linear.py: jump_point;
  m_c = lambda at depth 2), so that at every depth some lie below the onset m_e of the non-zero
  branch (m_e / m_c = 2 L^(-L/(2L-2)): 0.88, 0.79, 0.68 at L = 3, 4, 6), some between m_e and m_c
  (where the non-zero branch is a local, not global, minimum) and some above m_c. Recorded: the
  final map along each teacher direction, a_k = u_k^T A v_k, the nearest stationary point of the
  scalar problem (its branch: zero, unstable or stable), the distance to it and the stopping
  rule's bound on that distance (theory/deep_linear.py: stationary_distance_bound), and the
  balance of the final factorization (sum_i ||W_i||_F^2 against the penalty of its map).

Depth, l2 and init_exponent are BATCHED: one job per width trains every point, a depth's lambdas
and gammas in one batch (the same Z_i scaled by w^(-gamma/2): paired across gamma and lambda).
"""

from __future__ import annotations

import numpy as np

from svperturb.linalg.backend import to_host
from svperturb.linalg.descent import end_to_end_map
from svperturb.linalg.linear_network import logarithmic_steps, train
from svperturb.sampling.factorizations import (
    balanced_factors,
    imbalance_directions,
    imbalanced_factors,
    target_matrices,
)
from svperturb.sampling.linear_networks import initial_weights, teacher_frames, teacher_matrices
from svperturb.studies.datasets import COUNT, NO_UNITS, SAMPLE, Dataset
from svperturb.studies.deep_linear_dynamics import as_array_module
from svperturb.theory.deep_linear import (
    BRANCHES,
    jump_point,
    schatten_penalty,
    stationary_distance_bound,
    stationary_points,
)

NAME = "deep_linear_l2"
AXES = ("width", "depth", "l2", "init_exponent")
INNER = ()
BATCHED = ("depth", "l2", "init_exponent")
SETTINGS = ("training_steps", "rate_factor", "gradient_tolerance")
SOURCE = "Jacot et al. (arXiv 2106.15933), the abstract"
# Teacher singular values in units of m_c: above m_c, between m_e and m_c (depth >= 3; 0.83 from
# depth 4), below m_e. 0.9 stays 2.6 % above m_e at depth 3, where the stable root's curvature
# g'(s*) is small and the run slow.
RATIOS = (2.0, 1.5, 1.1, 0.95, 0.9, 0.83, 0.5)
TEACHER_DIMENSION = len(RATIOS)
IMBALANCE = 1.0  # kappa of the imbalanced factorization of the random map
PER_INDEX = ("sample", "index")
IDENTITY = f"{SOURCE}: min sum_i ||W_i||_F^2 = L sum_j s_j^(2/L)"

DATASETS = {
    "teacher_singular_values": Dataset("m_k = r_k m_c(lambda, L), r_k = " + ", ".join(map(str, RATIOS)),
                                       PER_INDEX, finite=True),
    "final_projections": Dataset("a_k = u_k^T A v_k: the final map along the teacher's k-th "
                                 "singular pair", PER_INDEX, equation=SOURCE, finite=True),
    "final_singular_values": Dataset("the final map's singular values, decreasing", PER_INDEX,
                                     finite=True),
    "alignment_residual": Dataset("||U^T A V - diag(a)||_F: the final map's part off the teacher's "
                                  "singular pairs", SAMPLE, finite=True),
    "branch": Dataset("the stationary point of 1/2 (s - m_k)^2 + (lambda L / 2) s^(2/L) nearest to "
                      "a_k (HDF5 enum): " + ", ".join(f"{c} {n}" for c, n in BRANCHES.items()),
                      PER_INDEX, NO_UNITS, equation=SOURCE, codes=BRANCHES),
    "root": Dataset("that stationary point: 0 or a root of s - m + lambda s^(2/L - 1) = 0",
                    PER_INDEX, equation=SOURCE, finite=True),
    "root_distance": Dataset("|a_k - root|", PER_INDEX, finite=True),
    "distance_bound": Dataset("the stopping rule's first-order bound on |a_k - root| from the "
                              "final gradient norm (theory/deep_linear.py: "
                              "stationary_distance_bound); inf where it does not apply", PER_INDEX),
    "gradient_norm": Dataset("(sum_i ||grad_(W_i) F||_F^2)^(1/2) at the end", SAMPLE, finite=True),
    "steps": Dataset("gradient steps taken", SAMPLE, COUNT),
    "stopped": Dataset("1 where the gradient norm fell to gradient_tolerance, 0 where training_steps "
                       "came first", SAMPLE, NO_UNITS),
    "final_objective": Dataset("1/2 ||A - M||_F^2 + lambda/2 sum_i ||W_i||_F^2 at the end", SAMPLE,
                               finite=True),
    "norm_sum": Dataset("sum_i ||W_i||_F^2 of the final weights", SAMPLE, equation=IDENTITY,
                        finite=True),
    "final_factor_norms": Dataset("prod_i ||W_i||_F of the final weights: the scale of the final "
                                  "map's rounding", SAMPLE, finite=True),
    "final_penalty": Dataset("L sum_j s_j(A)^(2/L) of the final map: norm_sum's least value",
                             SAMPLE, equation=IDENTITY, finite=True),
    "random_map_singular_values": Dataset("singular values of the random map A (d x d, iid N(0, "
                                          "1/d)), decreasing", PER_INDEX, finite=True),
    "random_map_penalty": Dataset("L sum_j s_j(A)^(2/L) of the random map", SAMPLE,
                                  equation=IDENTITY, finite=True),
    "balanced_norm_sum": Dataset("sum_i ||W_i||_F^2 of the random map's balanced factorization",
                                 SAMPLE, equation=IDENTITY, finite=True),
    "imbalanced_norm_sum": Dataset("sum_i ||W_i||_F^2 of an imbalanced factorization, W_i -> G_i "
                                   "W_i G_(i-1)^(-1), G_i = expm(Z_i / sqrt(d))", SAMPLE,
                                   equation=IDENTITY, finite=True),
    "imbalanced_penalty": Dataset("L sum_j s_j^(2/L) of the imbalanced factors' product as "
                                  "computed", SAMPLE, equation=IDENTITY, finite=True),
    "imbalanced_singular_values": Dataset("singular values of the imbalanced factors' product as "
                                          "computed, decreasing", PER_INDEX, finite=True),
    "imbalanced_factor_norms": Dataset("prod_i ||W_i||_F of the imbalanced factorization: the "
                                       "scale of the product's rounding", SAMPLE, finite=True),
}


def bytes_per_sample(point) -> int:
    """The weights, gradients, products and next iterate (about 8 L w^2 floats per run; the job's
    lambdas and gammas share a batch, up to 8 of them)."""
    w, depth = point["width"], point["depth"]
    return 8 * 8 * (8 * depth * w * w + 16 * TEACHER_DIMENSION**2)


def simulate(point, start, stop, xp):
    [result] = simulate_points([point], start, stop, xp)
    return result


def simulate_points(points, start, stop, xp):
    """simulate for each point, the values unchanged: the teacher frames and the random map drawn
    once, one training batch per depth holding every (lambda, gamma)."""
    results: list = [None] * len(points)
    groups: dict[tuple, list[int]] = {}
    for k, point in enumerate(points):
        settings = tuple(str(point[key]) for key in SETTINGS)
        groups.setdefault((point["seed"], point["width"], point["depth"], settings), []).append(k)
    count, d = stop - start, TEACHER_DIMENSION
    for (seed, width, depth, _), indices in groups.items():
        first = points[indices[0]]
        u, v = teacher_frames(seed, NAME, d, start, stop)
        identity = _identity_check(seed, depth, start, stop)
        l2 = np.array([points[k]["l2"] for k in indices])
        values = np.asarray(RATIOS)[None, :] * jump_point(l2, depth)[1][:, None]  # (points, d)
        m = np.concatenate([teacher_matrices(u, v, row) for row in values])
        starts = [initial_weights(seed, NAME, width, d, depth, points[k]["init_exponent"], start,
                                  stop) for k in indices]
        weights = [xp.asarray(np.concatenate(layer)) for layer in zip(*starts)]
        batch = len(indices)
        max_steps = int(first["training_steps"])
        us, vs = np.concatenate([u] * batch), np.concatenate([v] * batch)
        run = train(weights, xp.asarray(m), xp.asarray(us), xp.asarray(vs), np.repeat(l2, count),
                    float(first["rate_factor"]), max_steps, logarithmic_steps(max_steps, 1),
                    float(first["gradient_tolerance"]), 0.0, xp)
        final = [to_host(w) for w in run.weights]
        a = end_to_end_map(final)
        final_values = np.linalg.svd(a, compute_uv=False)
        frame = np.swapaxes(us, -1, -2) @ a @ vs
        projections = np.diagonal(frame, axis1=-2, axis2=-1).copy()
        off = frame - projections[..., None] * np.eye(d)
        for j, k in enumerate(indices):
            rows = slice(j * count, (j + 1) * count)
            teacher = np.broadcast_to(values[j], (count, d))
            results[k] = (as_array_module(xp, {
                "teacher_singular_values": teacher.copy(),
                **_branches(projections[rows], teacher, l2[j], depth, run.gradient_norm[rows]),
                "final_singular_values": final_values[rows],
                "alignment_residual": np.linalg.norm(off[rows], axis=(-2, -1)),
                "gradient_norm": run.gradient_norm[rows],
                "steps": run.steps[rows],
                "stopped": run.stopped[rows].astype(np.uint8),
                "final_objective": run.objective[rows],
                "norm_sum": sum((w[rows] ** 2).sum(axis=(-2, -1)) for w in final),
                "final_factor_norms": np.prod([np.linalg.norm(w[rows], axis=(-2, -1))
                                               for w in final], axis=0),
                "final_penalty": schatten_penalty(final_values[rows], depth),
                **identity,
            }), {})
    return results


def _branches(projections, teacher, l2: float, depth: int, gradient_norm) -> dict:
    """final_projections, branch, root, root_distance and distance_bound of one point's runs."""
    points = stationary_points(teacher, l2, depth)  # (count, d, 3)
    distance = np.abs(projections[..., None] - points)
    branch = np.argmin(np.where(np.isfinite(distance), distance, np.inf), axis=-1)
    root = np.take_along_axis(points, branch[..., None], axis=-1)[..., 0]
    bound = stationary_distance_bound(projections, teacher, l2, depth, gradient_norm[:, None], branch)
    return {"final_projections": projections, "branch": branch.astype(np.uint8), "root": root,
            "root_distance": np.abs(projections - root), "distance_bound": bound}


def _identity_check(seed: int, depth: int, start: int, stop: int) -> dict:
    """The random map's datasets (the module docstring's first item)."""
    d = TEACHER_DIMENSION
    a = target_matrices(seed, NAME, d, "gaussian", start, stop)
    balanced = balanced_factors(a, depth)
    imbalanced = imbalanced_factors(balanced, imbalance_directions(seed, NAME, d, depth, start, stop),
                                    IMBALANCE)
    values = np.linalg.svd(a, compute_uv=False)
    product_values = np.linalg.svd(end_to_end_map(imbalanced), compute_uv=False)
    return {
        "random_map_singular_values": values,
        "random_map_penalty": schatten_penalty(values, depth),
        "balanced_norm_sum": sum((w**2).sum(axis=(-2, -1)) for w in balanced),
        "imbalanced_norm_sum": sum((w**2).sum(axis=(-2, -1)) for w in imbalanced),
        "imbalanced_penalty": schatten_penalty(product_values, depth),
        "imbalanced_singular_values": product_values,
        "imbalanced_factor_norms": np.prod([np.linalg.norm(w, axis=(-2, -1)) for w in imbalanced],
                                           axis=0),
    }
