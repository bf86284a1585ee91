"""The random ResNet layer W1 = K_n / (r sqrt(8n)) (111) over a grid of skip coefficients rho.

Per sample: s_1, s_n, tau_bar, tau_low of W1; s_1, s_n, kappa of W1 + rho I for each rho; the
growth bounds (70), (74), (71) as violation counts beyond rounding and smallest relative slack;
at rho = 1 the Figure 6 efficiencies and the bounds (114), (116). Claims 1, 5, 6, 7.

Spectra come from the engine (engine.py): where its Gram route serves a sample, the checks'
rounding allowance grows by that route's proven error bound, so that no violation is ever an
artefact of the faster route.
"""

from __future__ import annotations

import numpy as np

from svperturb.linalg import engine
from svperturb.linalg.spectra import (
    add_identity,
    condition_number,
    symmetric_part_extremes,
)
from svperturb.sampling.ensembles import unit_variance_matrices, weight_std
from svperturb.studies.datasets import COUNT, KEPT_SAMPLES_PER_SKIP, PER_SKIP, SAMPLE, Dataset
from svperturb.theory.bounds import (
    bound_efficiencies,
    condition_bound_lemma36,
    condition_bound_small_norm,
    extreme_singular_value_growth,
    rounding_tolerance,
    singular_value_growth_interval,
    skip_weyl_interval,
)

NAME = "resnet_layer"
AXES = ("distribution", "width", "weight_scale")
INNER = ("skip",)
# The stored datasets (studies/datasets.py); finite: a NaN or an infinity marks a numerical fault.
# Checks beyond rounding: 16 n eps times the quantity's scale plus the engine's proven error.
DATASETS = {
    "s1_W": Dataset("s_1(W1): largest singular value of W1 = K_n / (r sqrt(8n)) (111); limit "
                    "1 / (sqrt(2) r)", SAMPLE, equation="(109)", finite=True),
    "s_min_W": Dataset("s_n(W1): smallest singular value of W1", SAMPLE, finite=True),
    "tau_bar": Dataset("tau_bar: largest eigenvalue of W1^T + W1", SAMPLE,
                       equation="Definition 15", finite=True),
    "tau_low": Dataset("tau_low: smallest eigenvalue of W1^T + W1", SAMPLE,
                       equation="Definition 15", finite=True),
    "s1": Dataset("s_1(W1 + rho I), W1 = K_n / (r sqrt(8n))", PER_SKIP, finite=True),
    "s_min": Dataset("s_n(W1 + rho I), W1 = K_n / (r sqrt(8n))", PER_SKIP, finite=True),
    "kappa": Dataset("kappa(W1 + rho I) = s_1 / s_*", PER_SKIP, equation="(53)", finite=True),
    "violations_70": Dataset(
        "singular values i whose s_i(rho)^2 leaves [s_i(0)^2 + rho tau_low + rho^2, s_i(0)^2 + "
        "rho tau_bar + rho^2] beyond rounding", PER_SKIP, COUNT, "(70), Theorem 16"),
    "slack_70": Dataset(
        "smallest margin over i of s_i(rho)^2 inside the interval of (70), over (s_1(W1) + "
        "rho)^2; negative: outside", PER_SKIP, equation="(70), Theorem 16", finite=True),
    "violations_74": Dataset(
        "which of s_n(rho)^2 >= s_n(0)^2 + rho tau_low + rho^2 and s_1(rho)^2 <= s_1(0)^2 + "
        "rho tau_bar + rho^2 fail beyond rounding (0, 1 or 2)", PER_SKIP, COUNT,
        "(74), Lemma 21"),
    "slack_74": Dataset("smaller margin of the two inequalities of (74), over (s_1(W1) + rho)^2; "
                        "negative: violated", PER_SKIP, equation="(74), Lemma 21", finite=True),
    "violations_71": Dataset("singular values i with s_i(W1 + rho I) outside [rho - s_1(W1), rho + "
                             "s_1(W1)] beyond rounding", PER_SKIP, COUNT, "(71), Lemma 17"),
    "slack_71": Dataset("smallest margin over i of s_i(W1 + rho I) inside the interval of (71), "
                        "over s_1(W1) + rho; negative: outside", PER_SKIP,
                        equation="(71), Lemma 17", finite=True),
    "efficiency_a": Dataset("Figure 6 (a): s_n(W1 + I)^2 / (s_n(W1)^2 + tau_low + 1), >= 1; NaN "
                            "where tau_low <= -1", SAMPLE, equation="(115), Figure 6"),
    "efficiency_b": Dataset("Figure 6 (b): (s_1(W1)^2 + tau_bar + 1) / s_1(W1 + I)^2, >= 1",
                            SAMPLE, equation="(115), Figure 6"),
    "efficiency_c": Dataset("Figure 6 (c): the first bound of (116) over kappa(W1 + I) = s_1 / "
                            "s_n, >= 1; NaN where tau_low <= -1", SAMPLE,
                            equation="(116), Figure 6"),
    "bound_114": Dataset("bound on kappa(W1 + I): sqrt(1 + tau_bar + s_1(W1)^2) / (1 - s_1(W1)); "
                         "NaN where s_1(W1) >= 1", SAMPLE, equation="(114), Theorem 22 (76)"),
    "bound_116": Dataset("bound on kappa(W1 + I): sqrt((s_1(W1)^2 + tau_bar + 1) / (tau_low + 1)); "
                         "NaN where tau_low <= -1", SAMPLE, equation="(116), Lemma 36"),
    "spectra/singular_values": Dataset("singular values of W1 + rho I, decreasing",
                                       KEPT_SAMPLES_PER_SKIP, finite=True),
}


def _interval_check(value, lower, upper, scale, tol, axis=None):
    """Violations (count beyond tol) and smallest slack relative to `scale` of lower <= value <= upper."""
    slack = np.minimum(value - lower, upper - value)
    if axis is not None:
        tol = tol if tol.ndim == slack.ndim else tol[..., None]
        count = (slack < -tol).sum(axis=axis)
        slack = slack.min(axis=axis)
    else:
        count = (slack < -tol).astype(np.int64)
    return count.astype(np.int16), slack / scale


def _one_sided(value_low, lower, value_high, upper, scale, tol):
    slack = np.minimum(value_low - lower, upper - value_high)
    return ((value_low - lower < -tol).astype(np.int16) + (upper - value_high < -tol)), slack / scale


def simulate(point, start, stop, xp):
    n, r = point["width"], point["weight_scale"]
    rhos = sorted(point["skip"])
    w = unit_variance_matrices(point["seed"], NAME, n, point["distribution"], start, stop, xp=xp,
                               scale=weight_std(n, r))
    spectrum_0 = engine.singular_values(w, xp, well_conditioned=False)  # W1 alone: kappa ~ n
    s0, square_error_0, value_error_0 = spectrum_0.values, spectrum_0.square_error, spectrum_0.value_error(xp)
    tau_low, tau_bar = symmetric_part_extremes(w, xp)
    s1_0, sn_0 = s0[:, 0], s0[:, -1]
    size = len(w)
    out = {name: xp.empty((size, len(rhos))) for name in ("s1", "s_min", "kappa")}
    for family in ("70", "74", "71"):
        out[f"violations_{family}"] = xp.empty((size, len(rhos)), dtype=np.int16)
        out[f"slack_{family}"] = xp.empty((size, len(rhos)))
    spectra = xp.empty((size, len(rhos), n))
    s_at_one = None
    for j, rho in enumerate(rhos):
        spectrum = spectrum_0 if rho == 0 else engine.singular_values(add_identity(w, rho, xp), xp)
        s = spectrum.values
        # beyond LAPACK rounding: the engine's proven error on s^2 (this rho and rho = 0) and on s
        square_extra = spectrum.square_error + square_error_0
        value_extra = spectrum.value_error(xp) + value_error_0[:, :1]
        if rho == 1:
            s_at_one = s
        spectra[:, j] = s
        out["s1"][:, j], out["s_min"][:, j] = s[:, 0], s[:, -1]
        out["kappa"][:, j] = condition_number(s, xp)
        square_scale = (s1_0 + rho) ** 2
        square_tol = rounding_tolerance(square_scale, n) + square_extra
        lower, upper = singular_value_growth_interval(s0, tau_low, tau_bar, rho)
        out["violations_70"][:, j], out["slack_70"][:, j] = _interval_check(
            s**2, lower, upper, square_scale, square_tol, axis=-1)
        lower_sn, upper_s1 = extreme_singular_value_growth(s1_0, sn_0, tau_low, tau_bar, rho)
        out["violations_74"][:, j], out["slack_74"][:, j] = _one_sided(
            s[:, -1] ** 2, lower_sn, s[:, 0] ** 2, upper_s1, square_scale, square_tol)
        lower, upper = skip_weyl_interval(s1_0, rho)
        out["violations_71"][:, j], out["slack_71"][:, j] = _interval_check(
            s, lower[:, None], upper[:, None], s1_0 + rho,
            rounding_tolerance(s1_0 + rho, n)[:, None] + value_extra, axis=-1)
    a, b, c = bound_efficiencies(s1_0, sn_0, tau_low, tau_bar, s_at_one[:, 0], s_at_one[:, -1])
    per_sample = {
        "s1_W": s1_0,
        "s_min_W": sn_0,
        "tau_bar": tau_bar,
        "tau_low": tau_low,
        **out,
        "efficiency_a": a,
        "efficiency_b": b,
        "efficiency_c": c,
        "bound_114": condition_bound_small_norm(s1_0, tau_bar)[0],
        "bound_116": condition_bound_lemma36(s1_0, tau_low, tau_bar)[0],
    }
    return per_sample, {"singular_values": spectra}
