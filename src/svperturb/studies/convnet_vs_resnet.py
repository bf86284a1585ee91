"""ConvNet vs ResNet: A(rho) = (D1 W1 + rho I) D with activation patterns D1, D in D(m, n, eta) (78).

rho = 0 is the ConvNet matrix D1 W1 D, rho = 1 the ResNet matrix (D1 W1 + I) D (Theorem 42).
Per sample and rho: s_1, s_*, kappa and the numerical rank of A(rho). For |eta| = 1 also the
largest deviation from Proposition 23 (79), s_i(M) = s_i(M D) = s_i(D M), relative to s_1(M).
Claims 8, 9.
"""

from __future__ import annotations

import numpy as np

from svperturb.ensembles import (
    activation_pattern,
    active_count,
    pattern_ranks,
    unit_variance_matrices,
    weight_std,
)
from svperturb.spectra import (
    add_identity,
    condition_number,
    numerical_rank,
    singular_values,
    smallest_nonzero_singular_value,
)

NAME = "convnet_vs_resnet"
AXES = ("distribution", "width", "weight_scale", "activation_slope", "activity")
INNER = ("skip",)
# Finite for every computable sample (largest singular values, whole spectra): a NaN or an
# infinity here marks the sample as a numerical fault (studies.simulate_range).
FINITE = ("s1", "spectra/singular_values")


def simulate(point, start, stop, xp):
    n, r, eta = point["width"], point["weight_scale"], point["activation_slope"]
    rhos = sorted(point["skip"])
    m = active_count(n, point["activity"])
    seed = point["seed"]
    k = unit_variance_matrices(seed, NAME, n, point["distribution"], start, stop)
    left = xp.asarray(activation_pattern(pattern_ranks(seed, NAME, n, "left", start, stop), m, eta))
    right = xp.asarray(activation_pattern(pattern_ranks(seed, NAME, n, "right", start, stop), m, eta))
    mo = left[:, :, None] * xp.asarray(k * weight_std(n, r))  # D1 W1
    size = len(mo)
    out = {name: xp.empty((size, len(rhos))) for name in ("s1", "s_star", "kappa")}
    out["rank"] = xp.empty((size, len(rhos)), dtype=np.int16)
    if abs(eta) == 1:
        out["abs_identity_error"] = xp.empty((size, len(rhos)))
    spectra = xp.empty((size, len(rhos), n))
    for j, rho in enumerate(rhos):
        m_rho = add_identity(mo, rho, xp)
        s = singular_values(m_rho * right[:, None, :], xp)  # (D1 W1 + rho I) D
        spectra[:, j] = s
        out["s1"][:, j] = s[:, 0]
        out["s_star"][:, j] = smallest_nonzero_singular_value(s, xp)
        out["kappa"][:, j] = condition_number(s, xp)
        out["rank"][:, j] = numerical_rank(s, xp)
        if abs(eta) == 1:
            s_m = singular_values(m_rho, xp)
            s_dm = singular_values(right[:, :, None] * m_rho, xp)
            deviation = xp.maximum(xp.abs(s - s_m), xp.abs(s_dm - s_m)).max(axis=-1)
            out["abs_identity_error"][:, j] = deviation / s_m[:, 0]
    return out, {"singular_values": spectra}
