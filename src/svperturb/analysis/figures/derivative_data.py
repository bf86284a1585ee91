"""Figures of claims 13 and 14: Lemma 14's derivative against finite differences, and the data
factor (Lemma 8 - Corollary 11) on explicit matrices, with the test of the identity (50)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from svperturb.analysis.claims import Results
from svperturb.analysis.figures.common import width_colours
from svperturb.linalg.spectra import singular_values
from svperturb.theory.perturbation import GAP_FACTOR, singular_value_derivatives

PATH_POINTS = 201
TANGENT_SKIPS = (0.0, 0.25, 0.5, 0.75, 1.0)
TANGENT_HALF_LENGTH = 0.06


def derivative_figure(results: Results):
    """(a) |analytic - finite difference| for (66) and (65) by width, with the tolerances of the
    error budget; (b) one sample's paths s_i(rho) with tangents of slope u_i^T v_i (66)."""
    points = sorted(results.points("derivative"), key=lambda p: p.point["width"])
    if not points:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    ax = axes[0]
    widths = sorted({p.point["width"] for p in points})
    colours = width_colours(widths)

    def pooled(name, n):  # every distribution at width n
        x = np.concatenate([p[name].astype(float).ravel() for p in points if p.point["width"] == n])
        return x[np.isfinite(x)]

    errors = {n: pooled("error_66", n) for n in widths}
    positive = np.concatenate([e[e > 0] for e in errors.values()])
    low = np.log10(max(positive.min(), 1e-18)) if len(positive) else -16
    tolerances = np.concatenate([pooled("tolerance_66", n) for n in widths])
    high = np.log10(max(tolerances.max(), positive.max())) if len(tolerances) else -6
    bins = np.logspace(np.floor(low), np.ceil(high) + 0.2, 70)
    for n in widths:
        e, e65 = errors[n], pooled("error_65", n)
        ax.hist(np.maximum(e, bins[0]), bins=bins, histtype="step", lw=1.5, color=colours[n],
                label=f"(66) n = {n} ({len(e):,} checked)")
        ax.hist(np.maximum(e65, bins[0]), bins=bins, histtype="step", lw=1, ls=":", color=colours[n],
                label=f"(65) n = {n}")
    ax.hist(tolerances, bins=bins, histtype="stepfilled", color="0.85", zorder=0,
            label="tolerance of (66) (error budget)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set(xlabel="|analytic derivative − 7-point central difference|", ylabel="count of (sample, ρ, i)",
           title=f"(a) Lemma 14 vs finite differences, h = 2^-14, d_i ≥ {GAP_FACTOR:g} h")
    ax.legend(fontsize=7, loc="upper left")

    ax = axes[1]
    data = points[len(points) // 2]
    weights = data["spectra/weights"][0]
    n = weights.shape[-1]
    rhos = np.linspace(0, 1, PATH_POINTS)
    paths = singular_values(weights[None] + rhos[:, None, None] * np.eye(n))
    cmap = plt.get_cmap("viridis")(np.linspace(0, 0.9, n))
    for i in range(n):
        ax.plot(rhos, paths[:, i], color=cmap[i], lw=1.2)
    for k, rho in enumerate(TANGENT_SKIPS):
        s, ds, _ = singular_value_derivatives(weights[None], rho)
        t = np.array([-TANGENT_HALF_LENGTH, TANGENT_HALF_LENGTH])
        for i in range(n):
            ax.plot(rho + t, s[0, i] + ds[0, i] * t, color="C3", lw=1.1,
                    label="tangent, slope $u_i^T v_i$ (66)" if (k == 0 and i == 0) else None)
        ax.plot(np.full(n, rho), s[0], "o", ms=2.5, color="C3")
    ax.set(xlabel="ρ", ylabel="$s_i(W_1 + ρI)$",
           title=f"(b) one sample, n = {n}, {data.point['distribution']}, r = {data.point['weight_scale']:g}")
    ax.legend(fontsize=8, loc="upper left")
    fig.suptitle("Claim 13: the derivative of a singular value along $M(ρ) = M_o + ρI$ (Lemma 14)")
    fig.tight_layout()
    return fig


def data_factor_figure(results: Results):
    """(a) singular values of Q = diag(z) (x) MD (LAPACK) against s_i(MD)|z_j| (51); (b) how close
    the eigenvalues s_ij^2 of the batch matrix come to the bounds (57), (58); (c) the identity (50):
    ||MDWz||^2 against w^T Q^T Q w for a random W; (d) kappa of the true batch form against (63)."""
    points = results.points("data_factor")
    if not points:
        return None
    fig, axes = plt.subplots(2, 2, figsize=(12, 10))
    widths = sorted({p.point["width"] for p in points})
    colours = {n: f"C{k}" for k, n in enumerate(widths)}  # few widths: distinct hues read better
    markers = {n: "os^vD<>p"[k % 8] for k, n in enumerate(widths)}
    labelled = set()

    ax = axes[0, 0]
    for data in points:
        n = data.point["width"]
        pred = data["spectra/predicted_Q"].ravel()
        got = data["spectra/singular_values_Q"].ravel()
        keep = pred > 1e-12 * pred.max()
        ax.loglog(pred[keep], got[keep], ".", ms=2, color=colours[n], alpha=0.5,
                  label=f"n = {n}" if n not in labelled else None)
        labelled.add(n)
    lims = ax.get_xlim()
    ax.plot(lims, lims, "k--", lw=1, label="identity")
    ax.set(xlabel="predicted $s_i(MD)\\,|z_j|$ (51)", ylabel="$s_{i,j}(Q)$, LAPACK on the dense $n^2 \\times n^2$ Q",
           title="(a) Lemma 8 (51): singular values of Q (non-zero ones)")
    ax.legend(fontsize=8)

    ax = axes[0, 1]
    ratio_57 = np.concatenate([d["ratio_57"].ravel() for d in points if d.point["batch_size"] > 1] or [[]])
    ratio_58 = np.concatenate([d["ratio_58"].ravel() for d in points if d.point["batch_size"] > 1] or [[]])
    ratio_58 = ratio_58[np.isfinite(ratio_58)]
    if len(ratio_57):
        ax.hist(ratio_57, bins=np.linspace(0, 1.02, 52), histtype="step", lw=1.5, color="C0",
                label=f"max$_{{ij}}$ $s_{{ij}}^2$ / (57) (N = {len(ratio_57):,})")
    if len(ratio_58):
        ax.hist(1 / ratio_58, bins=np.linspace(0, 1.02, 52), histtype="step", lw=1.5, color="C1",
                label=f"(58) / min$_{{ij}}$ $s_{{ij}}^2$ (N = {len(ratio_58):,}; c > 0)")
    ax.axvline(1, color="k", ls="--", lw=1, label="bound attained")
    ax.set(xlabel="ratio (≤ 1 when the bound holds)", ylabel="count of (sample, ρ)",
           title="(b) Lemma 10, batches G > 1: slack of (57) and (58)")
    ax.legend(fontsize=8)

    ax = axes[1, 0]
    labelled = set()
    for data in points:
        if data.point["batch_size"] != min(p.point["batch_size"] for p in points):
            continue
        n = data.point["width"]
        ax.loglog(data["loss_true"].ravel(), data["loss_paper"].ravel(), ".", ms=3, alpha=0.5,
                  color=colours[n], label=f"n = {n}" if n not in labelled else None)
        labelled.add(n)
    lo = min(ax.get_xlim()[0], ax.get_ylim()[0])
    hi = max(ax.get_xlim()[1], ax.get_ylim()[1])
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="(50): equality")
    ax.set(xlabel="$\\|MDWz\\|_2^2$ (the loss's quadratic term (47))",
           ylabel="$w^T Q^T Q w$ (w = W row by row)",
           title="(c) the identity (50) for a random W: it fails for n > 1")
    ax.legend(fontsize=8)

    ax = axes[1, 1]
    labelled = set()
    for data in points:
        if data.point["batch_size"] <= 1:
            continue
        bound = data["bound_63"].ravel()
        ok = np.isfinite(bound)
        if not ok.any():
            continue
        n = data.point["width"]
        ax.loglog(bound[ok], data["kappa_Q_batch"].ravel()[ok], markers[n], ms=3, mfc="none", alpha=0.6,
                  color="C0", label=f"κ($Q_{{batch}}$) as defined (59), n = {n}")
        ax.loglog(bound[ok], data["kappa_true_batch"].ravel()[ok], markers[n], ms=3, alpha=0.5,
                  color="C3", label=f"κ of the true batch form, n = {n}")
    if ax.lines:
        lo = min(ax.get_xlim()[0], ax.get_ylim()[0])
        hi = max(ax.get_xlim()[1], ax.get_ylim()[1])
        ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="bound (63)")
        ax.legend(fontsize=7)
    ax.set(xlabel="bound (63): $(C/c)\\, \\max_j \\bar z[j] / \\min_j^* \\bar z[j]$", ylabel="condition number",
           title="(d) Corollary 11 (63), batches with c > 0")
    fig.suptitle("Claim 14: the data factor (Lemma 8 – Corollary 11) on explicit matrices")
    fig.tight_layout()
    return fig


FIGURES = {
    "claim13_derivative": (derivative_figure, False),
    "claim14_data_factor": (data_factor_figure, False),
}
