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
from svperturb.studies.datasets import KEPT_SAMPLES, SAMPLE, Dataset
from svperturb.theory.asymptotics import (
    largest_singular_statistic,
    symmetric_edge_statistic,
    symmetric_to_spectral_ratio,
)

NAME = "unit_variance"
AXES = ("distribution", "width")
INNER = ()
PARTIAL_ROWS = True  # spectra only for the samples below spectra_stop (studies/__init__.py)
# The stored datasets (studies/datasets.py); finite: a NaN or an infinity marks a numerical fault.
DATASETS = {
    "tau_bar": Dataset("tau_bar: largest eigenvalue of K_n^T + K_n", SAMPLE,
                       equation="Definition 15", finite=True),
    "tau_low": Dataset("tau_low: smallest eigenvalue of K_n^T + K_n", SAMPLE,
                       equation="Definition 15", finite=True),
    "s1": Dataset("s_1(K_n): largest singular value of the unit-variance n x n matrix K_n", SAMPLE,
                  finite=True),
    "s_min": Dataset("s_n(K_n): smallest singular value of K_n", SAMPLE, finite=True),
    "kappa": Dataset("kappa(K_n) = s_1 / s_*, s_* the smallest singular value above the rank "
                     "tolerance", SAMPLE, equation="(53)", finite=True),
    "Z": Dataset("Z_n = (tau_bar - sqrt(8n)) n^(1/6); Z_n / sqrt(2) -> TW_1", SAMPLE,
                 equation="(107), Theorem 33", finite=True),
    "Z_tilde": Dataset("Z~_n = (-tau_low - sqrt(8n)) n^(1/6); Z~_n / sqrt(2) -> TW_1", SAMPLE,
                       equation="(108), Theorem 33", finite=True),
    "Y": Dataset("Y_n = (s_1(K_n)^2 - mu_n) / q_n, -> TW_1 for Gaussian K_n", SAMPLE,
                 equation="(110), Theorem 35", finite=True),
    "ratio": Dataset("tau_bar / (sqrt(2) s_1(K_n)), conjectured to tend to 1", SAMPLE,
                     equation="Figure 5b", finite=True),
    "spectra/singular_values": Dataset("singular values s_1 >= ... >= s_n of K_n, decreasing",
                                       KEPT_SAMPLES, finite=True),
    "spectra/symmetric_eigenvalues": Dataset("eigenvalues of K_n^T + K_n, increasing (the first is "
                                             "tau_low, the last tau_bar)", KEPT_SAMPLES,
                                             equation="Definition 15", finite=True),
}


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
