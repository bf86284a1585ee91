"""Depth: p random layers after the trained one, Mo = D_p W_p ... D_1 W_1 (45), p = `depth`.

Layer k has weights W_k = K_n^(k) / (r sqrt(8 n)) (111) from stream "weights" (k = 1) or
f"weights/layer={k}", and a hidden pattern D_k in D(m, n, eta) from pattern_ranks
which=f"layer={k}"; the trained layer's pattern D in D(m, n, eta) comes from which="right";
m = active_count(n, activity) (78). Layer k's draws do not depend on p, so depths are paired
(the p = 2 network is the p = 1 network with one more layer on top). Per sample and rho (axis 1,
the sorted skip values):

- `*_single`: A = (Mo + rho I) D, a single skip connection over all p layers ((40), (44));
  rho = 0 is the ConvNet Mo D;
- `*_layers`: A = (D_p W_p + rho I) ... (D_1 W_1 + rho I) D, a ResNet whose every layer has the
  skip; at rho = 0 it is again the ConvNet;

each with s1, s_star (smallest non-zero singular value), kappa = s1 / s_star and `rank_*`, the
numerical rank of A's direct SVD (above n eps s_1; `expected_rank(point)` is the exact rank,
almost surely).

Accuracy. The ConvNet's kappa grows exponentially with p (n = 16, r = 2, m/n = 1/2, eta = 0.1:
~5e12 at p = 8) and soon passes 1/(n eps): a direct SVD of the formed product then puts s_* under
the rank tolerance (43 % of the samples in that example) and underestimates kappa. So at rho = 0
s_* is computed as 1 / s_1(A^+) from the product of the factors' inverses, A^+ = D^-1 (D_1 W_1)^-1
... (D_p W_p)^-1 for eta != 0, and for eta = 0 from the (n - m) x (n - m) blocks W_k[S_k, S_(k-1)]
between the active index sets S_k of D_k (S_0 of D), A's only non-zero block. Largest singular
values of products are accurate normwise, so this kappa keeps its relative accuracy (checked
against the direct SVD where that is accurate, tests/test_relu.py). For rho > 0 the direct SVD is
used (well conditioned at rho = 1: kappa ~ 1-30). Not a numbered claim: claims/relu.depth_summary.
"""

from __future__ import annotations

import numpy as np

from svperturb.linalg.spectra import (
    add_identity,
    numerical_rank,
    singular_values,
    smallest_nonzero_singular_value,
)
from svperturb.sampling.ensembles import (
    activation_pattern,
    active_count,
    pattern_ranks,
    unit_variance_matrices,
    weight_std,
)
from svperturb.studies.datasets import KEPT_SAMPLES_PER_SKIP, PER_SKIP, Dataset, extremes

NAME = "depth"
AXES = ("distribution", "width", "weight_scale", "activation_slope", "activity", "depth")
INNER = ("skip",)
ARCHITECTURES = ("single", "layers")


def _architecture_datasets(arch: str, matrix: str, equation: str) -> dict[str, Dataset]:
    """The datasets of one architecture, `matrix` its A(rho)."""
    return {
        **extremes("A", matrix, PER_SKIP, f"_{arch}", equation),
        f"s_star_{arch}": Dataset(
            f"s_*(A): the smallest singular value above the rank tolerance n eps s_1, {matrix}; at "
            "rho = 0 (the ConvNet Mo D) 1 / s_1(A^+) from the factors' inverses; NaN where A = 0",
            PER_SKIP, equation=equation),
        f"spectra/singular_values_{arch}": Dataset(
            f"singular values of A (direct SVD), decreasing, {matrix}", KEPT_SAMPLES_PER_SKIP,
            equation=equation, finite=True),
    }


# The stored datasets (studies/datasets.py); finite: a NaN or an infinity marks a numerical fault.
DATASETS = {
    **_architecture_datasets("single", "A = (Mo + rho I) D, one skip over the p layers, Mo = "
                             "D_p W_p ... D_1 W_1", "(40), (44), (45)"),
    **_architecture_datasets("layers", "A = (D_p W_p + rho I) ... (D_1 W_1 + rho I) D, a skip at "
                             "every layer", "(36), (39)"),
}


def weight_stream(layer: int) -> str:
    """Stream of layer k's weights: "weights" for the first, "weights/layer=k" after it."""
    return "weights" if layer == 1 else f"weights/layer={layer}"


def _draws(point, start: int, stop: int):
    """(weights W_k, hidden pattern ranks of D_k, ranks of D): NumPy arrays, k = 1..p."""
    n, r, p = point["width"], point["weight_scale"], point["depth"]
    seed, sigma = point["seed"], weight_std(n, r)
    weights = [unit_variance_matrices(seed, NAME, n, point["distribution"], start, stop,
                                      stream=weight_stream(k)) * sigma for k in range(1, p + 1)]
    ranks = [pattern_ranks(seed, NAME, n, f"layer={k}", start, stop) for k in range(1, p + 1)]
    return weights, ranks, pattern_ranks(seed, NAME, n, "right", start, stop)


def layer_matrices(point, start: int, stop: int, xp=np, draws=None):
    """(hidden, right): hidden[k-1] = D_k W_k, shape (samples, n, n), for k = 1..p, and the
    diagonal of the trained layer's D, shape (samples, n); from `draws` (_draws) where given."""
    m, eta = active_count(point["width"], point["activity"]), point["activation_slope"]
    weights, ranks, right = draws or _draws(point, start, stop)
    hidden = [xp.asarray(activation_pattern(rk, m, eta)[:, :, None] * w) for w, rk in zip(weights, ranks)]
    return hidden, xp.asarray(activation_pattern(right, m, eta))


def expected_rank(point) -> int:
    """Rank of every matrix recorded here in exact arithmetic (almost surely): n - m for ReLU
    (the m zero entries of D_p and of D), n otherwise."""
    n = point["width"]
    return n - active_count(n, point["activity"]) if point["activation_slope"] == 0 else n


def bytes_per_sample(point) -> int:
    """p weight matrices, their inverses, Mo, the per-layer product, A and LAPACK copies, float64."""
    n = point["width"]
    return (3 * point["depth"] + 6 + 6 * len(point["skip"])) * n * n * 8


def convnet_smallest_singular_value(point, start: int, stop: int, xp=np, draws=None):
    """s_*(Mo D) = 1 / s_1((Mo D)^+) from the product of the inverses of the square factors of the
    non-zero block of Mo D (see the module docstring); NaN where m = n at eta = 0 (Mo D = 0).
    From `draws` (_draws) where given."""
    n, eta = point["width"], point["activation_slope"]
    m = active_count(n, point["activity"])
    weights, ranks, right = draws or _draws(point, start, stop)
    if eta == 0:
        if m == n:
            return xp.full(stop - start, xp.nan)
        prev = right[:, m:]  # S_0: the columns that D keeps
        factors = []
        for w, rk in zip(weights, ranks):
            rows = rk[:, m:]  # S_k: the rows that D_k keeps
            block = np.take_along_axis(np.take_along_axis(w, rows[:, :, None], axis=1), prev[:, None, :], axis=2)
            factors.append(xp.asarray(block))  # W_k[S_k, S_(k-1)]
            prev = rows
        column_scale = None
    else:
        factors = [xp.asarray(activation_pattern(rk, m, eta)[:, :, None] * w) for w, rk in zip(weights, ranks)]
        column_scale = xp.asarray(activation_pattern(right, m, eta))
    inverse = xp.linalg.inv(factors[0])
    for factor in factors[1:]:
        inverse = inverse @ xp.linalg.inv(factor)  # F_1^-1 ... F_k^-1
    if column_scale is not None:
        inverse = inverse / column_scale[:, :, None]  # D^-1 F_1^-1 ... F_p^-1
    return 1 / singular_values(inverse, xp)[:, 0]


def _statistics(a, xp):
    s = singular_values(a, xp)
    s_star = smallest_nonzero_singular_value(s, xp)
    return s, s[:, 0], s_star, numerical_rank(s, xp)


def simulate(point, start, stop, xp):
    n = point["width"]
    rhos = sorted(point["skip"])
    draws = _draws(point, start, stop)  # once: the ConvNet's s_* (rho = 0) needs them again
    hidden, right = layer_matrices(point, start, stop, xp, draws)
    mo = hidden[0]
    for layer in hidden[1:]:
        mo = layer @ mo  # D_p W_p ... D_1 W_1
    size = len(mo)
    out = {f"{stat}_{arch}": xp.empty((size, len(rhos)))
           for stat in ("s1", "s_star", "kappa") for arch in ARCHITECTURES}
    for arch in ARCHITECTURES:
        out[f"rank_{arch}"] = xp.empty((size, len(rhos)), dtype=np.int16)
    spectra = {arch: xp.empty((size, len(rhos), n)) for arch in ARCHITECTURES}
    for j, rho in enumerate(rhos):
        single = add_identity(mo, rho, xp)
        if rho == 0:
            layers = mo
        else:
            layers = add_identity(hidden[0], rho, xp)
            for layer in hidden[1:]:
                layers = add_identity(layer, rho, xp) @ layers
        for arch, matrix in (("single", single), ("layers", layers)):
            if arch == "layers" and rho == 0:  # the same ConvNet matrix: copy, do not recompute
                for stat in ("s1", "s_star", "kappa", "rank"):
                    out[f"{stat}_layers"][:, j] = out[f"{stat}_single"][:, j]
                spectra["layers"][:, j] = spectra["single"][:, j]
                continue
            s, s1, s_star, rank = _statistics(matrix * right[:, None, :], xp)
            if rho == 0:
                s_star = convnet_smallest_singular_value(point, start, stop, xp, draws)
            spectra[arch][:, j] = s
            out[f"s1_{arch}"][:, j], out[f"s_star_{arch}"][:, j] = s1, s_star
            out[f"kappa_{arch}"][:, j], out[f"rank_{arch}"][:, j] = s1 / s_star, rank
    return out, {f"singular_values_{arch}": spectra[arch] for arch in ARCHITECTURES}
