"""Figures of the random ResNet layer (claims 2-9): the paper's Figures 4, 5a, 5b, 6, 7, Edelman's
law and ConvNet vs ResNet, redrawn from the merged results."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from svperturb.analysis.claims import Results, at_skip
from svperturb.analysis.figures.common import hist_by_width
from svperturb.theory.asymptotics import (
    condition_bound_limit_121,
    condition_bound_limit_122,
    edelman_pdf,
    spectral_norm_limit,
)
from svperturb.theory.tracy_widom import tracy_widom_pdf


def figure_4(results: Results):
    """Figure 4: Z_n and Z~_n (scaled by 1/sqrt(2)) against the TW1 density (Theorem 33)."""
    dists = results.values("unit_variance", "distribution")
    if not dists:
        return None
    fig, axes = plt.subplots(len(dists), 2, figsize=(11, 3.8 * len(dists)), squeeze=False)
    grid = np.linspace(-6, 4, 400)
    bins = np.linspace(-6, 4, 61)
    for row, dist in enumerate(dists):
        points = results.points("unit_variance", distribution=dist)
        for col, (name, label) in enumerate((("Z", r"$Z_n/\sqrt{2}$"), ("Z_tilde", r"$\tilde Z_n/\sqrt{2}$"))):
            ax = axes[row, col]
            hist_by_width(ax, points, lambda d, name=name: d[name] / np.sqrt(2), bins)
            ax.plot(grid, tracy_widom_pdf(grid, 1), "k--", lw=2, label=r"TW$_1$ density")
            ax.set(xlabel=label, ylabel="density", title=f"{dist} $K_n$: {label} (107/108)")
            ax.legend(fontsize=7)
    fig.suptitle(r"Figure 4: extreme eigenvalues of $K_n^T + K_n$ collapse onto Tracy–Widom (Theorem 33)")
    return fig


def figure_5a(results: Results):
    """Figure 5a: Y_n (110) against the TW1 density (Theorem 35)."""
    dists = results.values("unit_variance", "distribution")
    if not dists:
        return None
    fig, axes = plt.subplots(1, len(dists), figsize=(5.5 * len(dists), 4), squeeze=False)
    grid = np.linspace(-6, 4, 400)
    for col, dist in enumerate(dists):
        ax = axes[0, col]
        hist_by_width(ax, results.points("unit_variance", distribution=dist), lambda d: d["Y"],
                       np.linspace(-6, 4, 61))
        ax.plot(grid, tracy_widom_pdf(grid, 1), "k--", lw=2, label=r"TW$_1$ density")
        ax.set(xlabel=r"$Y_n = (s_1(K_n)^2 - \mu_n)/q_n$", ylabel="density", title=f"{dist} $K_n$")
        ax.legend(fontsize=7)
    fig.suptitle(r"Figure 5a: the largest singular value of $K_n$ (Theorem 35)")
    return fig


def figure_5b(results: Results, fits: dict):
    """Figure 5b: tau_bar / (sqrt(2) s_1) by n, and its median's fitted approach to 1."""
    dists = results.values("unit_variance", "distribution")
    if not dists:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    hist_by_width(axes[0], results.points("unit_variance", distribution=dists[0]),
                   lambda d: d["ratio"], np.linspace(0.4, 1.6, 61))
    axes[0].axvline(1, color="k", ls="--", lw=1)
    for x in (0.6, 1.4):
        axes[0].axvline(x, color="grey", ls=":", lw=1)
    axes[0].set(xlabel=r"$\bar\tau / (\sqrt{2}\, s_1)$", ylabel="density",
                title=f"{dists[0]} $K_n$ (dotted: the paper's [0.6, 1.4])")
    axes[0].legend(fontsize=7)
    ax = axes[1]
    for i, (dist, marker) in enumerate(zip(dists, "os^")):
        fit = fits.get("4", {}).get(f"{dist}/ratio_median")
        if not fit:
            continue
        ns = np.asarray(fit["widths"], float)
        ax.errorbar(ns, fit["values"], yerr=1.96 * np.asarray(fit["standard_errors"]), fmt=marker,
                    color=f"C{i}", label=f"{dist}: median (95% CI)")
        if fit["limit"] is not None and fit["exponent"] is not None:
            grid = np.geomspace(ns.min(), 10 * ns.max(), 200)
            ax.plot(grid, fit["limit"] + fit["amplitude"] * grid ** (-fit["exponent"]), lw=1,
                    color=f"C{i}", label=f"{dist}: fit {fit['limit']:.3f} + a n^-{fit['exponent']:.2f}")
    ax.axhline(1, color="k", ls="--", lw=1, label="conjectured limit 1")
    ax.set(xscale="log", xlabel="n", ylabel="median ratio", title="approach to 1 (claim 4)")
    ax.legend(fontsize=7)
    fig.suptitle(r"Figure 5b: $\bar\tau/(\sqrt{2} s_1) \to 1$")
    return fig


def figure_6(results: Results):
    """Figure 6: the efficiency ratios (a), (b), (c) of Lemma 36 at r = 2."""
    dists = results.values("resnet_layer", "distribution", weight_scale=2.0)
    if not dists:
        return None
    points = results.points("resnet_layer", distribution=dists[0], weight_scale=2.0)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    labels = {
        "a": r"(a) $s_n(W_1+I)^2 / (s_n(W_1)^2 + \underline{\tau} + 1)$",
        "b": r"(b) $(s_1(W_1)^2 + \bar\tau + 1) / s_1(W_1+I)^2$",
        "c": r"(c) bound (116) / $\kappa(W_1+I)$",
    }
    for ax, key in zip(axes, "abc"):
        values = np.concatenate([d[f"efficiency_{key}"] for d in points])
        hi = np.nanquantile(values, 0.999)
        hist_by_width(ax, points, lambda d, key=key: d[f"efficiency_{key}"], np.linspace(1, hi, 61))
        ax.axvline(1, color="k", ls="--", lw=1, label="1 (the bound is exact)")
        if key == "c":
            ax.axvline(1.1, color="r", ls=":", lw=1, label="the paper's ~1.1")
        ax.set(xlabel=labels[key], ylabel="density")
        ax.legend(fontsize=7)
    fig.suptitle(f"Figure 6: efficiency of the bounds (115)-(116), {dists[0]} weights, r = 2")
    return fig


def figure_7(results: Results, fits: dict):
    """Figure 7: kappa(W1 + I) and the bounds (114), (116) against their limits (121), (122)."""
    dists = results.values("resnet_layer", "distribution")
    if not dists:
        return None
    dist = dists[0]
    scales = [r for r in results.values("resnet_layer", "weight_scale", distribution=dist) if r > 1]
    if not scales:
        return None
    fig, axes = plt.subplots(2, len(scales), figsize=(6 * len(scales), 8), squeeze=False)
    for col, r in enumerate(scales):
        points = results.points("resnet_layer", distribution=dist, weight_scale=r)
        ax = axes[0, col]
        bins = np.linspace(1, 1.1 * condition_bound_limit_122(r), 81)
        hist_by_width(ax, points, lambda d: at_skip(d, "kappa", 1.0), bins)
        largest = max(points, key=lambda p: p.point["width"])
        for name, colour in (("bound_116", "r"), ("bound_114", "m")):
            ax.hist(largest[name], bins=bins, density=True, histtype="stepfilled", alpha=0.2,
                    color=colour, label=f"{name} at n = {largest.point['width']}")
        ax.axvline(condition_bound_limit_121(r), color="r", ls="--", label=f"(121) = {condition_bound_limit_121(r):.4f}")
        ax.axvline(condition_bound_limit_122(r), color="m", ls=":", label=f"(122) = {condition_bound_limit_122(r):.4f}")
        ax.set(xlabel=r"$\kappa(W_1 + I)$", ylabel="density", title=f"{dist}, r = {r:g}")
        ax.legend(fontsize=7)
        ax = axes[1, col]
        for name, limit, colour in (("bound_116", condition_bound_limit_121(r), "r"),
                                    ("bound_114", condition_bound_limit_122(r), "m"),
                                    ("s1_W", spectral_norm_limit(r), "b")):
            fit = fits.get("6", {}).get(f"{dist}/r={r:g}/{name}")
            if not fit:
                continue
            ns = np.asarray(fit["widths"], float)
            ax.errorbar(ns, fit["values"], yerr=1.96 * np.asarray(fit["standard_errors"]), fmt="o",
                        color=colour, ms=4, label=f"median {name}")
            grid = np.geomspace(ns.min(), 100 * ns.max(), 200)
            ax.plot(grid, fit["limit"] + fit["amplitude"] * grid ** (-fit["exponent"]), color=colour, lw=1)
            ax.axhline(limit, color=colour, ls="--", lw=1, label=f"paper's limit {limit:.4f}")
        ax.set(xscale="log", xlabel="n", ylabel="median", title=f"medians and fits c + a n^-2/3, r = {r:g}")
        ax.legend(fontsize=7)
    fig.suptitle(r"Figure 7: $\kappa(W_1+I)$ and its asymptotic bounds (Theorem 38)")
    return fig


def figure_edelman(results: Results):
    """kappa(D1 W1 D)/n at eta = -1 against Edelman's density (154)."""
    points = results.points("convnet_vs_resnet", distribution="gaussian", activation_slope=-1.0)
    if not points or 0.0 not in points[0].point["skip"]:
        return None
    activity = points[0].point["activity"]
    points = [p for p in points if p.point["activity"] == activity]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    bins = np.geomspace(0.2, 500, 80)
    hist_by_width(ax, points, lambda d: at_skip(d, "kappa", 0.0) / d.point["width"], bins)
    t = np.geomspace(0.2, 500, 400)
    ax.plot(t, edelman_pdf(t), "k--", lw=2, label="Edelman density (154)")
    ax.set(xscale="log", xlabel=r"$\kappa(D_1 W_1 D)/n$", ylabel="density",
           title=rf"ConvNet, $\eta = -1$, activity {activity:g}: Edelman's law (Lemma 41)")
    ax.legend(fontsize=7)
    return fig


def figure_convnet_vs_resnet(results: Results):
    """kappa of ConvNet (rho = 0) and ResNet (rho = 1) per eta at the largest width."""
    etas = results.values("convnet_vs_resnet", "activation_slope")
    if not etas:
        return None
    fig, axes = plt.subplots(1, len(etas), figsize=(4.2 * len(etas), 4), squeeze=False)
    for ax, eta in zip(axes[0], etas):
        points = results.points("convnet_vs_resnet", activation_slope=eta)
        data = max(points, key=lambda p: p.point["width"])
        conv = np.log10(at_skip(data, "kappa", 0.0))
        res = np.log10(at_skip(data, "kappa", 1.0))
        both = np.concatenate([conv, res])
        both = both[np.isfinite(both)]
        bins = np.linspace(both.min(), both.max(), 90)
        ax.hist(conv, bins=bins, density=True, histtype="stepfilled", alpha=0.5, color="C3",
                label=rf"ConvNet $\kappa(D_1W_1D)$, median {10 ** np.median(conv):.3g}")
        ax.hist(res, bins=bins, density=True, histtype="stepfilled", alpha=0.5, color="C0",
                label=rf"ResNet $\kappa((D_1W_1+I)D)$, median {10 ** np.median(res):.3g}")
        ax.set(xlabel=r"$\log_{10} \kappa$",
               title=f"η = {eta:g}, n = {data.point['width']}, r = {data.point['weight_scale']:g}, "
                     f"activity {data.point['activity']:g}")
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("density")
    fig.suptitle("ConvNet vs ResNet condition numbers (Theorem 42)")
    return fig


FIGURES = {
    "figure4_tracy_widom_symmetric": (figure_4, False),
    "figure5a_largest_singular_value": (figure_5a, False),
    "figure5b_ratio": (figure_5b, True),
    "figure6_bound_efficiency": (figure_6, False),
    "figure7_condition_bounds": (figure_7, True),
    "edelman_law": (figure_edelman, False),
    "convnet_vs_resnet": (figure_convnet_vs_resnet, False),
}
