"""Unit-variance K_n: the Tracy-Widom statistics of Theorems 33 and 35 and the ratio of Figure 5b.

Per sample: tau_bar, tau_low (extremes of K_n^T + K_n), s_1, s_n, kappa(K_n), Z_n (107),
Z~_n (108), Y_n (110) and tau_bar / (sqrt(2) s_1). Claims 2, 3, 4.
"""

from __future__ import annotations

from svperturb.asymptotics import (
    largest_singular_statistic,
    symmetric_edge_statistic,
    symmetric_to_spectral_ratio,
)
from svperturb.ensembles import unit_variance_matrices
from svperturb.spectra import condition_number, singular_values, symmetric_part_eigenvalues

NAME = "unit_variance"
AXES = ("distribution", "width")
INNER = ()
# Finite for every computable sample (largest singular values, whole spectra): a NaN or an
# infinity here marks the sample as a numerical fault (studies.simulate_range).
FINITE = (
    "s1", "s_min", "tau_bar", "tau_low", "kappa", "ratio", "Y", "Z", "Z_tilde",
    "spectra/singular_values", "spectra/symmetric_eigenvalues",
)


def simulate(point, start, stop, xp):
    n = point["width"]
    k = xp.asarray(unit_variance_matrices(point["seed"], NAME, n, point["distribution"], start, stop))
    s = singular_values(k, xp)
    eig = symmetric_part_eigenvalues(k, xp)
    tau_low, tau_bar = eig[:, 0], eig[:, -1]
    per_sample = {
        "tau_bar": tau_bar,
        "tau_low": tau_low,
        "s1": s[:, 0],
        "s_min": s[:, -1],
        "kappa": condition_number(s, xp),
        "Z": symmetric_edge_statistic(tau_bar, n),
        "Z_tilde": symmetric_edge_statistic(-tau_low, n),
        "Y": largest_singular_statistic(s[:, 0], n),
        "ratio": symmetric_to_spectral_ratio(tau_bar, s[:, 0]),
    }
    return per_sample, {"singular_values": s, "symmetric_eigenvalues": eig}
