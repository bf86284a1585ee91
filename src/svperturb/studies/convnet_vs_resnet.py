"""ConvNet vs ResNet: A(rho) = (D1 W1 + rho I) D with activation patterns D1, D in D(m, n, eta) (78).

rho = 0 is the ConvNet matrix D1 W1 D, rho = 1 the ResNet matrix (D1 W1 + I) D (Theorem 42).
Per sample and rho: s_1, s_*, kappa and the numerical rank of A(rho). For |eta| = 1 also the
largest deviation from Proposition 23 (79), s_i(M) = s_i(M D) = s_i(D M), relative to s_1(M),
beyond the proven errors of the spectra's routes (0 for LAPACK's: then the plain deviation).
Claims 8, 9.

Spectra come from the engine with well_conditioned=False (ConvNet layers have kappa ~ n K): LAPACK
on the CPU, where the Gram route's attempt would not pay; on CuPy from n = 33 the Gram route, the
augmented route for what it cannot certify, LAPACK (which loops there) for the rest.
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
    pattern_ranks,
    unit_variance_matrices,
    weight_std,
)
from svperturb.studies.datasets import KEPT_SAMPLES_PER_SKIP, PER_SKIP, Dataset, extremes

NAME = "convnet_vs_resnet"
AXES = ("distribution", "width", "weight_scale", "activation_slope", "activity")
INNER = ("skip",)
# The stored datasets (studies/datasets.py); finite: a NaN or an infinity marks a numerical fault.
DATASETS = {
    **extremes("A", "A = (D1 W1 + rho I) D: the ConvNet at rho = 0, the ResNet at rho = 1 (at rho "
               "= 0 kappa / n follows Edelman's law (154))", PER_SKIP,
               equation="(154), Theorem 42"),
    "abs_identity_error": Dataset(
        "for |eta| = 1 only: largest deviation over i of s_i(M D) and s_i(D M) from s_i(M), M = D1 "
        "W1 + rho I, beyond the spectra's proven errors, over s_1(M)", PER_SKIP,
        equation="(79), Proposition 23"),
    "spectra/singular_values": Dataset("singular values of A(rho) = (D1 W1 + rho I) D, decreasing",
                                       KEPT_SAMPLES_PER_SKIP, finite=True),
}


def simulate(point, start, stop, xp):
    n, r, eta = point["width"], point["weight_scale"], point["activation_slope"]
    rhos = sorted(point["skip"])
    m = active_count(n, point["activity"])
    seed = point["seed"]
    w = unit_variance_matrices(seed, NAME, n, point["distribution"], start, stop, xp=xp,
                               scale=weight_std(n, r))
    left = xp.asarray(activation_pattern(pattern_ranks(seed, NAME, n, "left", start, stop), m, eta))
    right = xp.asarray(activation_pattern(pattern_ranks(seed, NAME, n, "right", start, stop), m, eta))
    mo = left[:, :, None] * w  # D1 W1
    size = len(mo)
    out = {name: xp.empty((size, len(rhos))) for name in ("s1", "s_star", "kappa")}
    out["rank"] = xp.empty((size, len(rhos)), dtype=np.int16)
    if abs(eta) == 1:
        out["abs_identity_error"] = xp.empty((size, len(rhos)))
    spectra = xp.empty((size, len(rhos), n))
    for j, rho in enumerate(rhos):
        m_rho = add_identity(mo, rho, xp)
        spectrum = _spectrum(m_rho * right[:, None, :], xp)  # (D1 W1 + rho I) D
        s = spectrum.values
        spectra[:, j] = s
        out["s1"][:, j] = s[:, 0]
        out["s_star"][:, j] = smallest_nonzero_singular_value(s, xp)
        out["kappa"][:, j] = condition_number(s, xp)
        out["rank"][:, j] = numerical_rank(s, xp)
        if abs(eta) == 1:
            of_m, of_dm = _spectrum(m_rho, xp), _spectrum(right[:, :, None] * m_rho, xp)
            s_m, error_m = of_m.values, of_m.value_error(xp)
            deviation = xp.maximum(
                xp.abs(s - s_m) - spectrum.value_error(xp) - error_m,
                xp.abs(of_dm.values - s_m) - of_dm.value_error(xp) - error_m)
            out["abs_identity_error"][:, j] = xp.maximum(deviation, 0).max(axis=-1) / s_m[:, 0]
    return out, {"singular_values": spectra}


def _spectrum(a, xp):
    return engine.singular_values(a, xp, well_conditioned=False)
