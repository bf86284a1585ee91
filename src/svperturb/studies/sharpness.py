"""Sharpness at minima of deep matrix factorization (Kamber & Parhi, arXiv 2509.25783).

Per sample: a target M (d x d), its balanced factorization W_L ... W_1 = M, made imbalanced by
W_i -> G_i W_i G_(i-1)^(-1), G_i = expm(kappa Z_i / sqrt(d)) (sampling/factorizations.py); at this
minimizer (zero loss) the exact largest Hessian eigenvalue lambda_max = 2 lambda_max(sum_i
(B_i^T B_i) (x) (A_i A_i^T)) (linalg/sharpness.py), the closed forms where they apply (depth 2,
scalar d = 1), the balanced value 2 L ||M||^(2 - 2/L), the Cauchy-Schwarz sum 2 sum_i ||A_i||^2
||B_i||^2, per layer ||A_i|| ||B_i|| and ||W_i||_F, and the least lambda_max over the layer
rescalings W_i -> c_i W_i, prod c_i = 1, with its c_i.

Depth and kappa are BATCHED: one job per (target, width) computes every (depth, kappa), the
target and the Z_i drawn once; all of them see the same M and Z_i of a sample (paired).
"""

from __future__ import annotations

import numpy as np

from svperturb.linalg.backend import to_host
from svperturb.linalg.descent import end_to_end_map
from svperturb.linalg.sharpness import (
    factor_products,
    least_sharpness_over_rescalings,
    operator_factors,
    operator_matrix,
    sharpness,
)
from svperturb.linalg.spectra import singular_values
from svperturb.sampling.factorizations import (
    balanced_factors,
    imbalance_directions,
    imbalanced_factors,
    target_matrices,
)
from svperturb.studies import spectra_rows
from svperturb.studies.datasets import KEPT_SAMPLES, NO_UNITS, SAMPLE, Dataset
from svperturb.theory.matrix_factorization import (
    balanced_sharpness,
    cauchy_schwarz_sharpness_bound,
    depth_two_sharpness,
    scalar_sharpness,
)

NAME = "sharpness"
AXES = ("target", "width", "depth", "imbalance")
INNER = ()
BATCHED = ("depth", "imbalance")
PARTIAL_ROWS = True  # the stored spectra: the first keep_spectra samples only (studies/__init__.py)
PER_LAYER = ("sample", "layer")
SOURCE = "Kamber & Parhi (arXiv 2509.25783)"
# The least lambda_max over rescalings is a convex problem solved per sample (0.02 to 0.13 s at
# d_L d_0 = 256, docs/benchmarks.md); beyond this size of the operator it is left out (NaN).
RESCALING_LARGEST_OPERATOR = 64
# Stored spectra: the largest STORED_EIGENVALUES eigenvalues of 2K, from the dense operator where
# d_L d_0 <= SPECTRUM_LARGEST_OPERATOR (one eigvalsh of 1024 x 1024 takes ~0.3 s), NaN beyond.
STORED_EIGENVALUES, SPECTRUM_LARGEST_OPERATOR = 64, 1024

DATASETS = {
    "lambda_max": Dataset("largest eigenvalue of the loss Hessian at the minimizer, 2 lambda_max("
                          "sum_i (B_i^T B_i) (x) (A_i A_i^T)), exact (dense, or Lanczos within its "
                          "error bound)", SAMPLE, equation=SOURCE, finite=True),
    "closed_form": Dataset("the closed form where one applies, NaN elsewhere: 2 (||W_1||^2 + "
                           "||W_2||^2) at depth 2, 2 sum_i prod_(j != i) w_j^2 at width 1",
                           SAMPLE, equation=SOURCE),
    "balanced_value": Dataset("2 L ||M||^(2 - 2/L): lambda_max of the balanced factorizations",
                              SAMPLE, equation=SOURCE, finite=True),
    "cauchy_schwarz_bound": Dataset("2 sum_i ||A_i||^2 ||B_i||^2, an upper bound of lambda_max",
                                    SAMPLE, equation=SOURCE, finite=True),
    "least_over_rescalings": Dataset("least lambda_max over the layer rescalings W_i -> c_i W_i, "
                                     "prod c_i = 1 (a convex problem in log c; the optimizer's "
                                     "value, or lambda_max_equal_products where that is lower); "
                                     "NaN where d_L d_0 > "
                                     f"{RESCALING_LARGEST_OPERATOR}", SAMPLE, equation=SOURCE),
    "lambda_max_equal_products": Dataset("lambda_max after the rescaling c_i proportional to "
                                         "||A_i|| ||B_i|| (prod c_i = 1), which makes the products "
                                         "||A_i|| ||B_i|| equal across layers", SAMPLE,
                                         equation=SOURCE, finite=True),
    "spectra/hessian_eigenvalues": Dataset("largest min(d^2, 64) eigenvalues of the Hessian's "
                                           "nonzero part 2 sum_i (B_i^T B_i) (x) (A_i A_i^T), "
                                           "decreasing; NaN where d^2 > 1024", KEPT_SAMPLES,
                                           equation=SOURCE),
    "rescaling_converged": Dataset("1 where the optimizer of least_over_rescalings met its "
                                   "tolerance (its value is then the least to ~1e-13), 0 where it "
                                   "stopped short or was left out", SAMPLE, NO_UNITS),
    "norm_target": Dataset("||M||, the target's largest singular value", SAMPLE, finite=True),
    "product_residual": Dataset("||M - W_L ... W_1||_F / ||M||_F: the minimizer's rounding", SAMPLE,
                                finite=True),
    "factor_norm_product": Dataset("||A_i|| ||B_i|| of layer i, A_i = W_L ... W_(i+1), B_i = "
                                   "W_(i-1) ... W_1", PER_LAYER, equation=SOURCE, finite=True),
    "frobenius_norm": Dataset("||W_i||_F of layer i", PER_LAYER, finite=True),
    "rescaling": Dataset("c_i of the least lambda_max over rescalings (prod c_i = 1); NaN where "
                         "that is left out", PER_LAYER),
}


def bytes_per_sample(point) -> int:
    """The factors and their products (about 4 L d x d matrices) and the dense operator
    (d^2 x d^2, twice for eigvalsh) where the dense route runs, in float64."""
    d, depth = point["width"], point["depth"]
    return (4 * depth * d * d + 2 * d**4) * 8


def simulate(point, start, stop, xp, spectra_stop=None):
    [result] = simulate_points([point], start, stop, xp, spectra_stop)
    return result


def simulate_points(points, start, stop, xp, spectra_stop=None):
    """simulate for each point, the values unchanged: the target drawn once per (seed, width,
    target), the imbalance directions once for the deepest of the job's depths."""
    results: list = [None] * len(points)
    groups: dict[tuple, list[int]] = {}
    for k, point in enumerate(points):
        groups.setdefault((point["seed"], point["width"], point["target"]), []).append(k)
    for indices in groups.values():
        first = points[indices[0]]
        d = first["width"]
        m = target_matrices(first["seed"], NAME, d, first["target"], start, stop)
        deepest = max(points[k]["depth"] for k in indices)
        directions = imbalance_directions(first["seed"], NAME, d, deepest, start, stop)
        balanced = {}
        for k in indices:
            depth = points[k]["depth"]
            if depth not in balanced:
                balanced[depth] = balanced_factors(m, depth)
            factors = imbalanced_factors(balanced[depth], directions[:depth - 1],
                                         points[k]["imbalance"])
            results[k] = _simulate_point(points[k], m, factors, xp,
                                         spectra_rows(start, stop, spectra_stop))
    return results


def _hessian_spectra(weights, kept: int, xp):
    """The stored spectra of the first `kept` samples (see STORED_EIGENVALUES)."""
    d = weights[0].shape[-1]
    count = min(d * d, STORED_EIGENVALUES)
    if kept == 0 or d * d > SPECTRUM_LARGEST_OPERATOR:
        return xp.full((kept, count), xp.nan)
    g, h = operator_factors([w[:kept] for w in weights], xp)
    return 2 * xp.linalg.eigvalsh(operator_matrix(g, h))[:, ::-1][:, :count]


def _simulate_point(point, m: np.ndarray, factors: list[np.ndarray], xp, kept: int):
    d, depth = point["width"], point["depth"]
    weights = [xp.asarray(w) for w in factors]
    value = sharpness(weights, xp)
    lefts, rights = factor_products(weights, xp)
    left_norms = xp.stack([singular_values(a, xp)[:, 0] for a in lefts], axis=-1)
    right_norms = xp.stack([singular_values(b, xp)[:, 0] for b in rights], axis=-1)
    if depth == 2:
        closed = depth_two_sharpness(*(to_host(w) for w in weights))
    elif d == 1:
        closed = scalar_sharpness(np.stack([to_host(w)[:, 0, 0] for w in weights], axis=-1))
    else:
        closed = np.full(len(m), np.nan)
    products = left_norms * right_norms
    # c_i = p_i / (prod p)^(1/L): the rescaled products p_i / c_i are all (prod p)^(1/L)
    equalizing = products / xp.exp(xp.log(products).mean(axis=-1, keepdims=True))
    equal_products = sharpness([c[:, None, None] * w
                                for c, w in zip(xp.moveaxis(equalizing, -1, 0), weights)], xp)
    norm_m = np.linalg.norm(m, ord=2, axis=(-2, -1))
    product = end_to_end_map(factors)
    if d * d <= RESCALING_LARGEST_OPERATOR:
        least, scales, converged = least_sharpness_over_rescalings(weights, xp)
        # the equal-products rescaling is feasible too: where it is lower, the optimizer stopped
        # early (seen at large imbalance and depth), and it is the better value
        lower = equal_products < least
        least = xp.where(lower, equal_products, least)
        scales = xp.where(lower[:, None], equalizing, scales)
    else:
        least, scales = np.full(len(m), np.nan), np.full((len(m), depth), np.nan)
        converged = np.zeros(len(m), dtype=np.uint8)
    per_sample = {
        "lambda_max": value,
        "closed_form": xp.asarray(closed),
        "balanced_value": xp.asarray(balanced_sharpness(norm_m, depth)),
        "cauchy_schwarz_bound": xp.asarray(cauchy_schwarz_sharpness_bound(to_host(left_norms),
                                                                          to_host(right_norms))),
        "least_over_rescalings": xp.asarray(least),
        "lambda_max_equal_products": equal_products,
        "norm_target": xp.asarray(norm_m),
        "product_residual": xp.asarray(np.linalg.norm(m - product, axis=(-2, -1))
                                       / np.linalg.norm(m, axis=(-2, -1))),
        "factor_norm_product": products,
        "frobenius_norm": xp.stack([xp.linalg.norm(w, axis=(-2, -1)) for w in weights], axis=-1),
        "rescaling": xp.asarray(scales),
        "rescaling_converged": xp.asarray(converged),
    }
    return per_sample, {"hessian_eigenvalues": _hessian_spectra(weights, kept, xp)}
