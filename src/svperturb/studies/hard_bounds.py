"""Hard bounds (section 6.1): weights with |W_i[j,k]| <= c = entry_bound / n, c < 1/n.

Per sample: W_1..W_p with entries bounded by c, drawn by `weight_pattern` (uniform on [-c, c], or the
adversarial constant c, random signs +-c, rank one c s t^T); hidden patterns D_1..D_p and the trained
layer's D in D(m, n, eta) (78), m = active_count(n, activity); Mo = D_p W_p ... D_1 W_1 (45) and
M(1) = Mo + I. Recorded: max |Mo[i,j]| / c (Lemma 28), max_i s_1(W_i) / (c n) (85), s_1(Mo), s_1, s_n
and kappa of M(1), s_1, s_*, rank and kappa of A = M(1) D, and for every bound of Lemma 27 - Theorem
32 its relative slack (bound - value)/bound (for the lower bound of (86): (value - bound)/bound),
NaN where the bound's own hypothesis on (c, n, m, eta) fails, with a violation flag beyond float64
rounding. Claim 10.

`sample_matrices(point, start, stop)` returns the matrices of samples [start, stop) themselves:
claim 10 uses it to store the exact matrices of a violating sample. `simulate_points` computes the
points of a batched job (its c, eta and activity) together: the draws once, s_1 of the W_i once
per c, each point's values those of `simulate` alone.

Spectra come from the engine: LAPACK on the CPU (the same values as before); on CuPy from n = 33
the Gram route (s_1 of W_i and Mo with its s_1 certificate alone), the augmented route, LAPACK
for the rest, instead of the library SVD that loops there. Every violation flag allows, besides
float64 rounding, the proven error of the values it compares (0 for LAPACK's).
"""

from __future__ import annotations

import numpy as np

from svperturb.linalg import engine
from svperturb.linalg.spectra import (
    add_identity,
    condition_number,
    numerical_rank,
    smallest_nonzero_singular_value,
)
from svperturb.sampling.ensembles import (
    activation_pattern,
    active_count,
    bounded_unit_matrices,
    pattern_ranks,
)
from svperturb.studies.datasets import COUNT, KEPT_SAMPLES, SAMPLE, Dataset, extremes
from svperturb.theory.bounds import (
    condition_bound_hard,
    condition_bound_leaky_direct,
    condition_bound_leaky_gram,
    condition_bound_relu_count,
    condition_bound_relu_fraction,
    condition_bound_relu_width,
    product_entry_bound,
    rounding_tolerance,
    skip_hard_interval,
    spectral_norm_entry_bound,
)

NAME = "hard_bounds"
AXES = ("width", "entry_bound", "weight_pattern", "depth", "activation_slope", "activity")
INNER = ()
# One simulate job per (width, weight_pattern, depth, shard) computes the points of every c, eta
# and activity, a shard each: they share the draws (simulate_points), and a point's compute is
# often less than a process's start (config/paper.yaml: 3,360 points, 48 jobs).
BATCHED = ("entry_bound", "activation_slope", "activity")
# Every bound of claim 10: key -> (label, what it bounds). The per-sample datasets are
# slack_<key> (relative slack) and violations_<key> (count beyond rounding).
BOUNDS = {
    "85": ("Lemma 27 (85)", "s_1(W_i) <= c n"),
    "28": ("Lemma 28", "max |Mo[i,j]| <= c"),
    "86_lower": ("Lemma 29 (86)", "s_n(M(1)) >= 1 - c n"),
    "86_upper": ("Lemma 29 (86)", "s_1(M(1)) <= 1 + c n"),
    "87": ("Lemma 29 (87)", "kappa(M(1)) <= (1 + c n)/(1 - c n)"),
    "88": ("Theorem 30 (88)", "kappa(M(1) D) <= (1 + c n)/(1 - c n), eta = -1"),
    "89": ("Theorem 31 (89)", "kappa(M(1) D) <= (1 + c n)/sqrt(1 - 2 c n (1 + n)), eta = 0"),
    "90": ("Theorem 31 (90)", "kappa(M(1) D) <= (1 + c n)/(1 - c n - sqrt(m/n)), eta = 0"),
    "91": ("Theorem 31 (91)", "kappa(M(1) D) <= (1 + c n)/sqrt(1 - 2 c n (1 + 2 m)), eta = 0"),
    "100": ("Theorem 32 (100)",
            "kappa(M(1) D) <= (1 + c n)/sqrt((1 - c n)^2 - 4 (1 - eta) sqrt(m)), 0 <= eta < 1"),
    "101": ("Theorem 32 (101)",
            "kappa(M(1) D) <= (1 + c n)/(1 - c n - (1 - eta) m (3 c + 1)), 0 <= eta < 1"),
}
# Bounds on kappa(M(1) D) and the activation slopes eta of D for which the paper states them.
TRAINED_LAYER_BOUNDS = ("88", "89", "90", "91", "100", "101")

# The stored datasets (studies/datasets.py); finite: a NaN or an infinity marks a numerical fault.
# Mo = D_p W_p ... D_1 W_1 (45), M(1) = Mo + I, A = M(1) D; checks beyond float64 rounding and
# the spectra's proven errors.
DATASETS = {
    "max_entry_ratio": Dataset("max |Mo[i,j]| / c, <= 1 by Lemma 28", SAMPLE, equation="Lemma 28"),
    "spectral_ratio": Dataset("max over the layers of s_1(W_i) / (c n), <= 1 by (85)", SAMPLE,
                              equation="(85), Lemma 27"),
    "s1_Mo": Dataset("s_1(Mo), Mo = D_p W_p ... D_1 W_1", SAMPLE, equation="(45)", finite=True),
    "s1_M": Dataset("s_1(M(1)), M(1) = Mo + I", SAMPLE, equation="(86)", finite=True),
    "sn_M": Dataset("s_n(M(1)), M(1) = Mo + I", SAMPLE, equation="(86)", finite=True),
    "kappa_M": Dataset("kappa(M(1)) = s_1 / s_*, M(1) = Mo + I", SAMPLE, equation="(87)"),
    **extremes("A", "A = M(1) D, D the trained layer's pattern", SAMPLE, "_A",
               "(88)-(91), (100), (101)"),
    **{f"slack_{key}": Dataset(
        f"relative slack of {statement}: "
        + ("(value - bound) / bound" if key == "86_lower" else "(bound - value) / bound")
        + (", smallest over the layers" if key == "85" else "")
        + "; negative: violated; NaN where the bound's hypothesis fails at this point", SAMPLE,
        equation=label) for key, (label, statement) in BOUNDS.items()},
    **{f"violations_{key}": Dataset(
        ("layers i whose s_1(W_i) exceeds c n" if key == "85" else f"1 where {statement} fails")
        + " beyond rounding", SAMPLE, COUNT, label) for key, (label, statement) in BOUNDS.items()},
    "spectra/singular_values_M": Dataset("singular values of M(1) = Mo + I, decreasing", KEPT_SAMPLES,
                                         finite=True),
    "spectra/singular_values_A": Dataset("singular values of A = M(1) D, decreasing", KEPT_SAMPLES,
                                         finite=True),
}


def entry_bound(point) -> float:
    """c = entry_bound / n: every weight satisfies |W[i,j]| <= c."""
    return point["entry_bound"] / point["width"]


def bound_values(point) -> dict[str, float]:
    """Each bound of BOUNDS at a grid point (numbers: they depend on (c, n, m, eta) only);
    NaN where the bound's hypothesis, including the eta it is stated for, does not hold."""
    n, eta = point["width"], point["activation_slope"]
    c = entry_bound(point)
    m = active_count(n, point["activity"])
    lower, upper = skip_hard_interval(c, n)
    hard = float(condition_bound_hard(c, n))
    relu = eta == 0 and m < n  # m = n: M(1) D = 0 has no non-zero singular value, kappa undefined
    nan = float("nan")
    values = {
        "85": float(spectral_norm_entry_bound(c, n)),
        "28": float(product_entry_bound(c, n)),
        "86_lower": float(lower),
        "86_upper": float(upper),
        "87": hard,
        "88": hard if eta == -1 else nan,
        "89": float(condition_bound_relu_width(c, n)) if relu else nan,
        "90": float(condition_bound_relu_fraction(c, n, m)) if relu else nan,
        "91": float(condition_bound_relu_count(c, n, m)) if relu else nan,
        "100": float(condition_bound_leaky_gram(c, n, m, eta)),
        "101": float(condition_bound_leaky_direct(c, n, m, eta)),
    }
    return values


def bytes_per_sample(point) -> int:
    """p unit weight matrices (shared by a job's points), p weight matrices and their copy, plus
    Mo, M(1), A and the LAPACK copies, in float64."""
    n = point["width"]
    return (3 * point["depth"] + 10) * n * n * 8


def _draw_key(point) -> tuple:
    """What a point's draws depend on: not c, eta or activity (the BATCHED axes)."""
    return point["seed"], point["width"], point["weight_pattern"], point["depth"]


def _draws(point, start: int, stop: int) -> dict[str, np.ndarray]:
    """The draws of samples [start, stop) shared by every point of the same _draw_key: unit
    weights U (samples, p, n, n) with entries in [-1, 1] (W_i = c U[:, i-1]) and the pattern
    ranks of the hidden layers (samples, p, n) and of the trained layer (samples, n).

    Layer i's weights and hidden pattern come from their own streams, so W_1 and D_1 are the same
    at every depth, and the draws are paired across c, eta and activity.
    """
    n, p = point["width"], point["depth"]
    seed, pattern = point["seed"], point["weight_pattern"]
    layers = range(1, p + 1)
    return {
        "unit": np.stack([bounded_unit_matrices(seed, NAME, n, pattern, start, stop,
                                                stream=f"weights/layer={i}") for i in layers],
                         axis=1),
        "hidden_ranks": np.stack([pattern_ranks(seed, NAME, n, f"hidden/layer={i}", start, stop)
                                  for i in layers], axis=1),
        "trained_ranks": pattern_ranks(seed, NAME, n, "trained", start, stop),
    }


def _matrices(point, draws: dict[str, np.ndarray], weights: np.ndarray) -> dict[str, np.ndarray]:
    """sample_matrices from the shared draws and the weights c U of the point's c."""
    n, p, eta = point["width"], point["depth"], point["activation_slope"]
    m = active_count(n, point["activity"])
    hidden = activation_pattern(draws["hidden_ranks"], m, eta)
    trained = activation_pattern(draws["trained_ranks"], m, eta)
    mo = hidden[:, 0, :, None] * weights[:, 0]
    for i in range(1, p):
        mo = hidden[:, i, :, None] * (weights[:, i] @ mo)
    return {"W": weights, "D_hidden": hidden, "D": trained, "Mo": mo}


def sample_matrices(point, start: int, stop: int) -> dict[str, np.ndarray]:
    """The matrices of samples [start, stop) at a grid point (NumPy, float64):
    W (samples, p, n, n) with W[:, i-1] = W_i, D_hidden (samples, p, n) the diagonals of D_1..D_p,
    D (samples, n) the diagonal of the trained layer's pattern, Mo (samples, n, n) = D_p W_p ... D_1 W_1.
    """
    draws = _draws(point, start, stop)
    return _matrices(point, draws, entry_bound(point) * draws["unit"])


def _upper(value, bound, tol):
    """Relative slack (bound - value)/bound and a violation flag (value > bound + tol)."""
    gap = bound - value
    with np.errstate(invalid="ignore"):
        return gap / bound, (gap < -tol).astype(np.int8)


def kappa_tolerance(kappa, n: int):
    """Rounding allowance of kappa = s_1/s_*: s_1 and s_* each carry an absolute error of order
    n eps s_1, so kappa's relative error is at most ~ n eps (1 + kappa); we allow 16 n eps kappa (1 + kappa)."""
    return rounding_tolerance(kappa * (1 + kappa), n)


def simulate(point, start, stop, xp):
    [result] = simulate_points([point], start, stop, xp)
    return result


def simulate_points(points, start, stop, xp):
    """simulate for each point, the values unchanged: the draws once per _draw_key (a batched
    job's points share them), the weights c U and their s_1 (85) once per c."""
    results: list = [None] * len(points)
    groups: dict[tuple, dict[float, list[int]]] = {}
    for k, point in enumerate(points):
        groups.setdefault(_draw_key(point), {}).setdefault(point["entry_bound"], []).append(k)
    for by_c in groups.values():
        first = points[next(iter(by_c.values()))[0]]
        n, p = first["width"], first["depth"]
        draws = _draws(first, start, stop)
        for indices in by_c.values():
            weights = entry_bound(points[indices[0]]) * draws["unit"]
            s1_w, error_w = engine.largest_singular_values(xp.asarray(weights).reshape(-1, n, n), xp)
            of_weights = s1_w.reshape(-1, p), error_w.reshape(-1, p)  # (samples, p)
            for k in indices:
                results[k] = _simulate_point(points[k], _matrices(points[k], draws, weights),
                                             of_weights, xp)
    return results


def _simulate_point(point, mats, s1_of_weights, xp):
    """One point's per-sample values and spectra from its matrices and the s_1 of its W_i."""
    n, p = point["width"], point["depth"]
    c = entry_bound(point)
    cn = c * n
    bounds = bound_values(point)
    mo, d = xp.asarray(mats["Mo"]), xp.asarray(mats["D"])
    s1_w, error_w = s1_of_weights
    s1_mo, _ = engine.largest_singular_values(mo, xp)
    m1 = add_identity(mo, 1.0, xp)
    of_m = engine.singular_values(m1, xp, well_conditioned=False)
    of_a = engine.singular_values(m1 * d[:, None, :], xp, well_conditioned=False)  # A = M(1) D
    s_m, s_a, error_m = of_m.values, of_a.values, of_m.value_error(xp)
    kappa_m = condition_number(s_m, xp)
    kappa_a = condition_number(s_a, xp)
    max_entry = xp.abs(mo).max(axis=(-2, -1))
    out = {
        "max_entry_ratio": max_entry / c,
        "spectral_ratio": s1_w.max(axis=1) / cn,
        "s1_Mo": s1_mo,
        "s1_M": s_m[:, 0],
        "sn_M": s_m[:, -1],
        "kappa_M": kappa_m,
        "s1_A": s_a[:, 0],
        "s_star_A": smallest_nonzero_singular_value(s_a, xp),
        "kappa_A": kappa_a,
        "rank_A": numerical_rank(s_a, xp).astype(np.int16),
    }
    # (85) once per layer: the count of layers of the sample whose s_1 exceeds c n beyond rounding.
    gap = bounds["85"] - s1_w
    out["slack_85"] = gap.min(axis=1) / bounds["85"]
    out["violations_85"] = (gap < -(rounding_tolerance(cn, n) + error_w)).sum(axis=1).astype(np.int8)
    # Lemma 28: p products of n-term sums of terms bounded by c.
    out["slack_28"], out["violations_28"] = _upper(max_entry, bounds["28"], rounding_tolerance(c, n * p))
    singular_tol = rounding_tolerance(1 + cn, n)
    with np.errstate(invalid="ignore"):
        lower_gap = s_m[:, -1] - bounds["86_lower"]
        out["slack_86_lower"] = lower_gap / bounds["86_lower"]
        out["violations_86_lower"] = (lower_gap < -(singular_tol + error_m[:, -1])).astype(np.int8)
    out["slack_86_upper"], out["violations_86_upper"] = _upper(
        s_m[:, 0], bounds["86_upper"], singular_tol + error_m[:, 0])
    out["slack_87"], out["violations_87"] = _upper(
        kappa_m, bounds["87"], kappa_tolerance(kappa_m, n) + of_m.condition_number_error(xp))
    tol_a = kappa_tolerance(kappa_a, n) + of_a.condition_number_error(xp)
    for key in TRAINED_LAYER_BOUNDS:
        out[f"slack_{key}"], out[f"violations_{key}"] = _upper(kappa_a, bounds[key], tol_a)
    return out, {"singular_values_M": s_m, "singular_values_A": s_a}
