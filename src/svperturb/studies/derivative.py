"""Lemma 14: the derivative of s_i along M(rho) = W1 + rho I against finite differences (claim 13).

Mo = W1 = K_n / (r sqrt(8n)) (111). At each rho of the skip axis: the analytic derivatives
s_i' = u_i^T v_i (66) and lambda_i' = 2 u_i^T Mo u_i + 2 rho (65) (perturbation.
singular_value_derivatives), and the 7-point, 6th-order central differences of s_i and s_i^2 with
step h = perturbation.STEP = 2^-14 (nodes rho + k h, |k| <= 3, each its own LAPACK SVD). An s_i is
checked where its isolation distance d_i in {+-s_j} (to its neighbours, and to -s_n for i = n)
is >= perturbation.GAP_FACTOR h = 20 h: there s_i is analytic on a disc of radius d_i / 2 > 10 h
around rho and the error budget of perturbation.derivative_tolerances is a bound
(truncation <= 36 (2h/d_i)^6 (1 + ...), rounding <= 1.83 * 16 n eps s_1 / h, vectors <= 4 delta / d_i).

Per sample and rho (shape (samples, len(skip))): max_error_66 / max_error_65 (largest
|analytic - finite difference| over the checked i; NaN when none is checked), max_ratio_66 /
max_ratio_65 (the same over the tolerance), violations_66 / violations_65 (checked i beyond their
tolerance), checked, excluded (i with d_i < 20 h), min_isolation (min_i d_i). Per sample, rho and
i (shape (samples, len(skip), n), float32, NaN where excluded): error_66, error_65,
tolerance_66. Spectra: the weights W1 (for the example path of the figure), the singular values,
the analytic and finite-difference derivatives and the isolation distances, all (R, n) per sample.
"""

from __future__ import annotations

import numpy as np

from svperturb.sampling.ensembles import unit_variance_matrices, weight_std
from svperturb.studies.datasets import COUNT, KEPT_SAMPLES_PER_SKIP, PER_SKIP, SAMPLE, Dataset
from svperturb.theory.perturbation import (
    HALF_WIDTH,
    central_difference,
    checkable,
    derivative_tolerances,
    isolation_distances,
    singular_value_derivatives,
    stencil_singular_values,
)

NAME = "derivative"
AXES = ("distribution", "width", "weight_scale")
INNER = ("skip",)
# Checked: the s_i of W1 + rho I whose isolation distance d_i is at least 20 h (h = 2^-14).
PER_I = ("sample", "skip", "index")


def _check_datasets(tag: str, analytic: str, differenced: str) -> dict[str, Dataset]:
    """The datasets of the derivative formula of equation `tag`: `analytic` against the central
    difference of `differenced`."""
    equation = f"({tag}), Lemma 14"
    return {
        f"max_error_{tag}": Dataset(
            f"largest |analytic - finite difference| over the checked i: {analytic} against the "
            f"7-point central difference of {differenced}; NaN where no i is checked", PER_SKIP,
            equation=equation),
        f"max_ratio_{tag}": Dataset("largest |analytic - finite difference| / tolerance over the "
                                    "checked i (<= 1); NaN where no i is checked", PER_SKIP,
                                    equation=equation),
        f"violations_{tag}": Dataset("checked i whose error exceeds its tolerance", PER_SKIP,
                                     COUNT, equation),
        f"error_{tag}": Dataset("|analytic - finite difference| per i (float32); NaN where i is "
                                "not checked", PER_I, equation=equation),
    }


# The stored datasets (studies/datasets.py); finite: a NaN or an infinity marks a numerical fault.
DATASETS = {
    "s1_W": Dataset("s_1(W1), W1 = Mo = K_n / (r sqrt(8n)) (111)", SAMPLE, finite=True),
    **_check_datasets("66", "s_i'(rho) = u_i^T v_i", "s_i"),
    **_check_datasets("65", "lambda_i'(rho) = 2 u_i^T Mo u_i + 2 rho", "lambda_i = s_i^2"),
    "tolerance_66": Dataset("error budget of (66) per i (truncation, rounding, vectors; float32); "
                            "NaN where i is not checked", PER_I, equation="(66), Lemma 14"),
    "checked": Dataset("singular values i checked (isolation distance d_i >= 20 h)", PER_SKIP,
                       COUNT),
    "excluded": Dataset("singular values i not checked (d_i < 20 h)", PER_SKIP, COUNT),
    "min_isolation": Dataset("min_i d_i, d_i the distance of s_i to the rest of {+-s_j}", PER_SKIP),
    "spectra/weights": Dataset("the weights W1 = Mo", ("spectrum_sample", "row", "column"),
                               equation="(111)"),
    "spectra/singular_values": Dataset("singular values s_i of W1 + rho I, decreasing",
                                       KEPT_SAMPLES_PER_SKIP, finite=True),
    "spectra/derivative": Dataset("analytic derivative s_i'(rho) = u_i^T v_i", KEPT_SAMPLES_PER_SKIP,
                                  equation="(66), Lemma 14"),
    "spectra/finite_difference": Dataset("7-point central difference of s_i at rho, step h = 2^-14",
                                         KEPT_SAMPLES_PER_SKIP),
    "spectra/isolation": Dataset("isolation distance d_i of s_i to the rest of {+-s_j}: "
                                 "min(s_(i-1) - s_i, s_i - s_(i+1)), -s_n for s_(n+1)",
                                 KEPT_SAMPLES_PER_SKIP),
}


def bytes_per_sample(point) -> int:
    """Per rho: the 2m + 1 stencil matrices and their SVD workspace, U and Vh, and ~12 (n,) arrays."""
    n, r = point["width"], len(point["skip"])
    return r * ((2 * HALF_WIDTH + 1) * 2 + 6) * n * n * 8 + r * 24 * n * 8


def simulate(point, start, stop, xp):
    # Host arrays throughout: the stencil needs seven SVDs per rho of small matrices, and the
    # error budget is evaluated with NumPy.
    n, r = point["width"], point["weight_scale"]
    rhos = sorted(point["skip"])
    mo = unit_variance_matrices(point["seed"], NAME, n, point["distribution"], start, stop) * weight_std(n, r)
    s1_mo = np.linalg.norm(mo, ord=2, axis=(-2, -1))
    size, count = len(mo), len(rhos)
    scalar = {name: np.full((size, count), np.nan) for name in
              ("max_error_66", "max_error_65", "max_ratio_66", "max_ratio_65", "min_isolation")}
    counts = {name: np.zeros((size, count), dtype=np.int16) for name in
              ("violations_66", "violations_65", "checked", "excluded")}
    per_i = {name: np.full((size, count, n), np.nan, dtype=np.float32) for name in
             ("error_66", "error_65", "tolerance_66")}
    spectra = {name: np.empty((size, count, n)) for name in
               ("singular_values", "derivative", "finite_difference", "isolation")}
    for j, rho in enumerate(rhos):
        s, ds, dlambda = singular_value_derivatives(mo, rho)
        nodes = stencil_singular_values(mo, rho)
        fd = central_difference(nodes)
        fd_square = central_difference(nodes**2)
        isolation = isolation_distances(s)
        ok = checkable(isolation)
        tol_66, tol_65 = derivative_tolerances(s, isolation, s1_mo, rho)
        err_66, err_65 = np.abs(ds - fd), np.abs(dlambda - fd_square)
        with np.errstate(invalid="ignore"):
            for tag, err, tol in (("66", err_66, tol_66), ("65", err_65, tol_65)):
                masked = np.where(ok, err, np.nan)
                any_checked = ok.any(axis=-1)
                scalar[f"max_error_{tag}"][:, j] = np.where(
                    any_checked, np.max(np.where(ok, err, -np.inf), axis=-1), np.nan)
                scalar[f"max_ratio_{tag}"][:, j] = np.where(
                    any_checked, np.max(np.where(ok, err / tol, -np.inf), axis=-1), np.nan)
                counts[f"violations_{tag}"][:, j] = (ok & (err > tol)).sum(axis=-1)
                per_i[f"error_{tag}"][:, j] = masked
        per_i["tolerance_66"][:, j] = np.where(ok, tol_66, np.nan)
        counts["checked"][:, j] = ok.sum(axis=-1)
        counts["excluded"][:, j] = n - ok.sum(axis=-1)
        scalar["min_isolation"][:, j] = isolation.min(axis=-1)
        spectra["singular_values"][:, j], spectra["derivative"][:, j] = s, ds
        spectra["finite_difference"][:, j], spectra["isolation"][:, j] = fd, isolation
    per_sample = {"s1_W": s1_mo, **scalar, **counts, **per_i}
    return ({k: xp.asarray(v) for k, v in per_sample.items()},
            {"weights": xp.asarray(mo), **{k: xp.asarray(v) for k, v in spectra.items()}})
