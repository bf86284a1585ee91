"""Unit-variance K_n: the Tracy-Widom statistics of Theorems 33 and 35 and the ratio of Figure 5b.

Per sample: tau_bar, tau_low (extremes of K_n^T + K_n), s_1, s_n, kappa(K_n), Z_n (107),
Z~_n (108), Y_n (110) and tau_bar / (sqrt(2) s_1). Claims 2, 3, 4.

Whole spectra are computed (LAPACK) for the samples whose spectra are stored; s_1, s_n and s_* of
the others come from engine.extremes, which takes the Gram route with certified inverse iteration
where that is faster (CuPy from n = 33), each sample within the engine's contract.
"""

from __future__ import annotations

from svperturb.linalg import engine
from svperturb.linalg.spectra import (
    condition_number_of_extremes,
    singular_values,
    smallest_nonzero_singular_value,
    symmetric_part_eigenvalues,
)
from svperturb.sampling.ensembles import unit_variance_matrices
from svperturb.studies import spectra_rows
from svperturb.theory.asymptotics import (
    largest_singular_statistic,
    symmetric_edge_statistic,
    symmetric_to_spectral_ratio,
)

NAME = "unit_variance"
AXES = ("distribution", "width")
INNER = ()
PARTIAL_ROWS = True  # spectra only for the samples below spectra_stop (studies/__init__.py)
# Finite for every computable sample (largest singular values, whole spectra): a NaN or an
# infinity here marks the sample as a numerical fault (studies.simulate_range).
FINITE = (
    "s1", "s_min", "tau_bar", "tau_low", "kappa", "ratio", "Y", "Z", "Z_tilde",
    "spectra/singular_values", "spectra/symmetric_eigenvalues",
)


def simulate(point, start, stop, xp, spectra_stop=None):
    n = point["width"]
    k = unit_variance_matrices(point["seed"], NAME, n, point["distribution"], start, stop, xp=xp)
    kept = spectra_rows(start, stop, spectra_stop)
    s = singular_values(k[:kept], xp) if kept else xp.empty((0, n))  # no empty batch for cuSOLVER
    eig = symmetric_part_eigenvalues(k, xp)
    s1, s_min, s_star = s[:, 0], s[:, -1], smallest_nonzero_singular_value(s, xp)
    if kept < len(k):
        rest = engine.extremes(k[kept:], xp)
        s1, s_min, s_star = (xp.concatenate([whole, part]) for whole, part in
                             ((s1, rest.s1), (s_min, rest.s_min), (s_star, rest.s_star)))
    tau_low, tau_bar = eig[:, 0], eig[:, -1]
    per_sample = {
        "tau_bar": tau_bar,
        "tau_low": tau_low,
        "s1": s1,
        "s_min": s_min,
        "kappa": condition_number_of_extremes(s1, s_star),
        "Z": symmetric_edge_statistic(tau_bar, n),
        "Z_tilde": symmetric_edge_statistic(-tau_low, n),
        "Y": largest_singular_statistic(s1, n),
        "ratio": symmetric_to_spectral_ratio(tau_bar, s1),
    }
    return per_sample, {"singular_values": s, "symmetric_eigenvalues": eig[:kept]}
