"""Figures of claims 11 and 12 (study relu_layer) and of the depth study: Theorem 39's guarantee
against the observed failure rates, how loose its bounds are, Lemma 24's shrinkage, kappa((D1 W1 +
I) D) by eta and activity, and kappa against depth for ConvNet, single skip and per-layer skip."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import NullFormatter

from svperturb.analysis.claims import Results
from svperturb.analysis.claims.relu import (
    ARCH_LABELS,
    LABELS,
    STUDY,
    _kappa_by_eta,
    depth_table,
    theorem39_cells,
)
from svperturb.analysis.fit import FitSettings
from svperturb.studies.relu_layer import THEOREM_39
from svperturb.theory.bounds import relu_bound_probability

SETTINGS = FitSettings()
MARKERS = {"128": "v", "129": "<", "151": ">"}


def _span(values) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:,}" if lo == hi else f"{lo:,}-{hi:,}"


def figure_claim11(results: Results):
    """(a) Upper confidence bounds of P[bound fails] per cell against the allowed 2 exp(-theta^2/2);
    (b) kappa / bound over the applicable samples."""
    cells = theorem39_cells(results, SETTINGS)
    if not cells:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6))
    ax = axes[0]
    thetas = sorted({c["theta"] for c in cells})
    grid = np.linspace(4.0, max(thetas) + 0.4, 200)
    ax.plot(grid, 1 - relu_bound_probability(grid), "k-", lw=1.5,
            label=r"allowed: $2\exp(-\theta^2/2)$ (+ P[E], here $\approx 0$)")
    ax.axvline(4, color="grey", ls=":", lw=1)
    configs = sorted({(c["width"], c["weight_scale"], c["activity"]) for c in cells})
    colours = {cfg: plt.get_cmap("tab10")(i % 10) for i, cfg in enumerate(configs)}
    spread = 0.06 / max(len(configs), 1)
    for c in cells:
        i = configs.index((c["width"], c["weight_scale"], c["activity"]))
        x = c["theta"] + (i - len(configs) / 2) * spread + {"128": -0.006, "129": 0, "151": 0.006}[c["bound"]]
        upper_fail = 1 - c["hold_lower"]
        ax.plot(x, upper_fail, MARKERS[c["bound"]], color=colours[(c["width"], c["weight_scale"], c["activity"])],
                ms=6, mfc="none" if c["failed"] == 0 else None)
        if c["failed"]:
            ax.plot(x, c["failed"] / c["samples"], "x", color="r", ms=7)
    half = (len(configs) / 2 + 1) * spread
    for theta in thetas:  # the allowed value at the cells' own theta, across their jitter
        allowed = 1 - relu_bound_probability(theta)
        ax.plot([theta - half, theta + half], [allowed, allowed], "k-", lw=3, alpha=0.5)
    ax.plot([], [], "k-", lw=3, alpha=0.5, label="allowed at the cells' θ (markers are spread around it)")
    for cfg in configs:
        ax.plot([], [], "s", color=colours[cfg], label=f"n = {cfg[0]}, r = {cfg[1]:g}, m/n = {cfg[2]:g}")
    for key in THEOREM_39:
        ax.plot([], [], MARKERS[key], color="k", mfc="none", label=f"{LABELS[key]}: upper CP bound of P[fail]")
    ax.set(yscale="log", xlabel=r"$\theta$", ylabel="probability that the bound fails",
           title=f"Theorem 39 / Cor. 40, Gaussian, ReLU, ρ = 1 (N = {_span([c['samples'] for c in cells])} per "
                 f"cell)\nreproduced where each marker lies below the grey bar of its θ")
    ax.legend(fontsize=6.5, ncol=2, loc="lower left")
    ax = axes[1]
    lo, hi = np.inf, 0.0
    for c in cells:
        i = configs.index((c["width"], c["weight_scale"], c["activity"]))
        q_min, q_med, _, q_max = c["kappa_quantiles"]
        bound = c["bound_median"]
        ax.plot([bound, bound], [q_min, q_max], "-", color=colours[configs[i]], lw=1)
        ax.plot(bound, q_med, MARKERS[c["bound"]], color=colours[configs[i]], ms=5, mfc="none")
        lo, hi = min(lo, q_min), max(hi, bound)
    grid = np.geomspace(0.9, 1.1 * hi, 50)
    ax.plot(grid, grid, "k--", lw=1, label="κ = bound")
    for key in THEOREM_39:
        ratios = [c["ratio_median"] for c in cells if c["bound"] == key]
        if ratios:
            ax.plot([], [], MARKERS[key], color="k", mfc="none",
                    label=f"{LABELS[key]}: median κ/bound {min(ratios):.3f}-{max(ratios):.3f}")
    ax.set(xscale="log", yscale="log", xlabel="bound (per cell and θ; (129): its median)",
           ylabel=r"$\kappa((D_1W_1+I)D)$: median, bar = min..max",
           title="how loose the bounds are (one marker per cell, θ and bound)")
    ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("Claim 11: ReLU with random weights, Theorem 39 (128), (129) and Corollary 40 (151)")
    fig.tight_layout()
    return fig


def figure_claim12(results: Results):
    """(a) min over i and sides of (s_i(M) - s~_i)/s_1(M), per eta; (b) median kappa((D1 W1 + I) D)
    against the activity m/n, per eta."""
    points = results.points(STUDY)
    if not points:
        return None
    etas = sorted({p.point["activation_slope"] for p in points})
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6))
    ax = axes[0]
    n_max = max(p.point["width"] for p in points)
    unit = 16 * n_max * np.finfo(float).eps  # the rounding allowance relative to s_1(M)
    bins = np.concatenate([-np.geomspace(1e3, 1e-2, 21), [0], np.geomspace(1e-2, 1e16, 73)])
    for i, eta in enumerate(etas):
        x = np.concatenate([p["shrinkage_80"].ravel() for p in points if p.point["activation_slope"] == eta])
        x = x[np.isfinite(x)]
        ax.hist(np.clip(x / unit, bins[0], bins[-1]), bins=bins, histtype="step", lw=1.4, color=f"C{i}",
                label=f"η = {eta:g}: min {x.min() / unit:.2g} (N = {x.size:,} matrices x ρ)")
    ax.axvline(-1, color="r", ls="--", lw=1, label="−1: the rounding allowance")
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xscale("symlog", linthresh=1e-2)
    ticks = [-1e2, -1, 0, 1, 1e4, 1e8, 1e12, 1e16]
    ax.set_xticks(ticks, ["−100", "−1", "0", "1", "1e4", "1e8", "1e12", "1e16"])
    ax.set_xlim(bins[0], bins[-1])
    ax.set(xlabel=r"$\min_{i,\ \mathrm{side}}\,(s_i(M) - s_i(MD\ \mathrm{or}\ DM))$ / (16 n ε $s_1(M)$)",
           ylabel="count per bin", yscale="log",
           title="Lemma 24 (80), every i: a violation lies left of −1\n(the paper claims every i for η = 0, "
                 "i = 1 for η ≠ 0)")
    ax.legend(fontsize=7, loc="upper left")
    ax = axes[1]
    _, table = _kappa_by_eta(results, SETTINGS)
    dist = "gaussian" if any(t["distribution"] == "gaussian" for t in table) else table[0]["distribution"]
    n = max(t["width"] for t in table if t["distribution"] == dist)
    scales = sorted({t["weight_scale"] for t in table if t["distribution"] == dist and t["width"] == n})
    for i, eta in enumerate(etas):
        for j, r in enumerate(scales):
            rows = sorted((t for t in table if (t["distribution"], t["width"], t["weight_scale"],
                                                 t["activation_slope"]) == (dist, n, r, eta)),
                          key=lambda t: t["activity"])
            if not rows:
                continue
            act = np.array([t["activity"] for t in rows])
            med = np.array([t["median"] for t in rows])
            err = np.array([[t["median"] - t["ci"][0], t["ci"][1] - t["median"]] for t in rows]).T
            ax.errorbar(act + 0.004 * j, med, yerr=err, fmt="o-" if j == 0 else "s--", color=f"C{i}", ms=4,
                        label=f"η = {eta:g}, r = {r:g}")
        if 0 < eta < 1:
            ax.axhline(1 / eta, color=f"C{i}", ls=":", lw=0.8)
    ax.set(yscale="log", xlabel="activity m/n (fraction of entries of D, D1 equal to η)",
           ylabel=r"median $\kappa((D_1W_1+I)D)$ (95% CI)",
           title=f"{dist}, n = {n}, ρ = 1 (dotted: 1/η)")
    ax.legend(fontsize=7, ncol=4, loc="center", bbox_to_anchor=(0.5, 0.33))
    fig.suptitle("Claim 12: ReLU shrinks singular values (Lemma 24); leaky ReLU conditioning")
    fig.tight_layout()
    return fig


def figure_depth(results: Results):
    """Median kappa against p for the ConvNet, the single skip over p layers and the per-layer skip."""
    rows = depth_table(results, SETTINGS)
    if not rows:
        return None
    groups = {}
    for row in rows:
        groups.setdefault((row["distribution"], row["width"], row["weight_scale"], row["activity"],
                           row["activation_slope"]), []).append(row)
    fig, axes = plt.subplots(1, len(groups), figsize=(5.6 * len(groups), 4.4), squeeze=False)
    for ax, ((dist, n, r, activity, eta), mine) in zip(axes[0], sorted(groups.items())):
        p = np.array([row["depth"] for row in mine])
        for i, arch in enumerate(("conv", "single", "layers")):
            med = np.array([row[f"{arch}_median"] for row in mine])
            err = np.array([[row[f"{arch}_median"] - row[f"{arch}_ci"][0],
                             row[f"{arch}_ci"][1] - row[f"{arch}_median"]] for row in mine]).T
            ax.errorbar(p, med, yerr=err, fmt="o-", color=f"C{[3, 0, 2][i]}", ms=4, label=ARCH_LABELS[arch])
        ax.set(xscale="log", yscale="log", xlabel="depth p (layers after the trained one)",
               ylabel="median κ (95% CI)",
               title=f"{dist}, n = {n}, r = {r:g}, m/n = {activity:g}, η = {eta:g} (N = {mine[0]['samples']:,})")
        ax.set_xticks(p, [str(v) for v in p])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7)
    fig.suptitle("Depth: ConvNet vs a single skip over p layers (40), (44) vs a skip at every layer")
    fig.tight_layout()
    return fig


FIGURES = {
    "claim11_relu_random_weights": (figure_claim11, False),
    "claim12_relu_shrinkage": (figure_claim12, False),
    "depth_condition_numbers": (figure_depth, False),
}
