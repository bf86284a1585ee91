"""Figures of claim 10 (hard bounds, section 6.1): the relative slack of every bound against c n by
weight pattern, and kappa(M(1) D) against c n with the bounds (87)-(91), (100)-(101) as curves."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from svperturb.analysis.claims import Results
from svperturb.sampling.ensembles import WEIGHT_PATTERNS, active_count
from svperturb.studies import hard_bounds as study
from svperturb.theory.bounds import (
    condition_bound_hard,
    condition_bound_leaky_direct,
    condition_bound_leaky_gram,
    condition_bound_relu_count,
    condition_bound_relu_fraction,
    condition_bound_relu_width,
)

PATTERN_STYLE = {"uniform": ("C0", "o"), "constant": ("C3", "s"), "random_signs": ("C2", "^"),
                 "rank_one": ("C1", "D")}


def _offset(pattern: str) -> float:
    """Small horizontal offset per pattern so that markers at the same c n do not hide each other."""
    return (WEIGHT_PATTERNS.index(pattern) - 1.5) * 0.018


def figure_slack(results: Results):
    """Per bound: min (filled) and median (hollow) relative slack of each grid point against c n."""
    points = results.points(study.NAME)
    if not points:
        return None
    keys = list(study.BOUNDS)
    cols = 4
    rows = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        seen = set()
        low, high = -0.02, 0.1
        for data in points:
            p = data.point
            if not np.isfinite(study.bound_values(p)[key]):
                continue
            slack = data[f"slack_{key}"]
            slack = slack[np.isfinite(slack)]
            if not slack.size:
                continue
            colour, marker = PATTERN_STYLE[p["weight_pattern"]]
            x = p["entry_bound"] + _offset(p["weight_pattern"])
            label = p["weight_pattern"] if p["weight_pattern"] not in seen else None
            seen.add(p["weight_pattern"])
            ax.plot(x, slack.min(), marker=marker, color=colour, ls="none", ms=5, label=label)
            low, high = min(low, 2 * slack.min()), max(high, 2 * float(np.median(slack)))
            ax.plot(x, np.median(slack), marker=marker, mfc="none", color=colour, ls="none", ms=5,
                    alpha=0.6)
        label, what = study.BOUNDS[key]
        ax.axhline(0, color="k", lw=1)
        ax.set_yscale("symlog", linthresh=1e-2)
        ax.set_ylim(low, high)
        ax.set_xlim(-0.03, 1.03)
        ax.set(title=f"{label}\n{what}", xlabel="c n")
        ax.title.set_fontsize(7.5)
        if not seen:
            ax.text(0.5, 0.5, "never applicable\non this grid", ha="center", va="center",
                    transform=ax.transAxes, color="grey")
        if key == keys[0]:
            ax.set_ylabel("relative slack (bound − value)/bound")
    handles = [plt.Line2D([], [], color=c, marker=m, ls="none", label=name)
               for name, (c, m) in PATTERN_STYLE.items()]
    handles += [plt.Line2D([], [], color="grey", marker="o", ls="none", label="min over samples"),
                plt.Line2D([], [], color="grey", marker="o", mfc="none", ls="none", label="median"),
                plt.Line2D([], [], color="k", lw=1, label="0: bound attained (below: violated)")]
    for ax in axes.flat[len(keys):]:
        ax.axis("off")
    axes.flat[-1].legend(handles=handles, loc="center", fontsize=8)
    fig.suptitle("Claim 10: relative slack of the hard bounds (section 6.1); lower bound of (86): "
                 "(s_n − (1 − c n))/(1 − c n)", fontsize=10)
    fig.tight_layout()
    return fig


def _curves(eta: float, n: int, m: int, cn: np.ndarray) -> dict[str, np.ndarray]:
    """The bounds on kappa(M(1) D) the paper states for this eta that depend on (n, m), as functions
    of c n ((88), for eta = -1, is (87) and drawn with it)."""
    c = cn / n
    curves = {}
    if eta == 0 and m < n:
        curves["(89)"] = condition_bound_relu_width(c, n)
        curves["(90)"] = condition_bound_relu_fraction(c, n, m)
        curves["(91)"] = condition_bound_relu_count(c, n, m)
    curves["(100)"] = condition_bound_leaky_gram(c, n, m, eta)
    curves["(101)"] = condition_bound_leaky_direct(c, n, m, eta)
    return {k: v for k, v in curves.items() if np.isfinite(v).any()}


CURVE_STYLE = {"(89)": "--", "(90)": "-.", "(91)": ":", "(100)": "--", "(101)": "-."}


def figure_condition(results: Results):
    """kappa(M(1) D) against c n per eta (max per grid point and a sample cloud), with the bounds."""
    points = results.points(study.NAME)
    if not points:
        return None
    etas = sorted({d.point["activation_slope"] for d in points})
    fig, axes = plt.subplots(1, len(etas), figsize=(4.8 * len(etas), 4.4), squeeze=False)
    grid = np.linspace(0.001, 0.999, 999)
    rng = np.random.default_rng(0)
    for ax, eta in zip(axes[0], etas):
        chosen = [d for d in points if d.point["activation_slope"] == eta]
        seen = set()
        for data in chosen:
            p = data.point
            kappa = data["kappa_A"]
            kappa = kappa[np.isfinite(kappa)]
            if not kappa.size:
                continue
            colour, marker = PATTERN_STYLE[p["weight_pattern"]]
            x = p["entry_bound"] + _offset(p["weight_pattern"])
            cloud = rng.choice(kappa, size=min(200, kappa.size), replace=False)
            ax.plot(np.full(cloud.size, x) + rng.uniform(-0.003, 0.003, cloud.size), cloud, ".",
                    color=colour, ms=1.5, alpha=0.25)
            label = p["weight_pattern"] if p["weight_pattern"] not in seen else None
            seen.add(p["weight_pattern"])
            ax.plot(x, kappa.max(), marker=marker, color=colour, ls="none", ms=5, mec="k", mew=0.4,
                    label=label)
        ax.plot(grid, condition_bound_hard(grid / 2, 2), color="grey", lw=1.2,
                label="(87) (1+cn)/(1−cn), bound of κ(M(1))" + (" = (88)" if eta == -1 else ""))
        combos = sorted({(d.point["width"], active_count(d.point["width"], d.point["activity"]))
                         for d in chosen})
        for j, (n, m) in enumerate(combos):
            for name, curve in _curves(eta, n, m, grid).items():
                ax.plot(grid, curve, color=f"C{4 + j}", ls=CURVE_STYLE[name], lw=1.2,
                        label=f"{name}, n = {n}, m = {m}")
        top = max([float(np.nanmax(d["kappa_A"])) for d in chosen] + [3.0])
        ax.set(yscale="log", ylim=(0.9, 5 * top), xlim=(0, 1), xlabel="c n",
               title=f"η = {eta:g}" + (" (absolute value)" if eta == -1 else " (ReLU)" if eta == 0 else ""))
        ax.legend(fontsize=6, loc="upper left")
    axes[0, 0].set_ylabel(r"$\kappa(M(1) D)$: max per grid point (markers), samples (dots)")
    fig.suptitle("Claim 10: condition number of the ResNet layer under hard weight bounds, with the "
                 "bounds (87)-(91), (100)-(101)", fontsize=10)
    fig.tight_layout()
    return fig


FIGURES = {
    "claim10_hard_bound_slack": (figure_slack, False),
    "claim10_condition_vs_bounds": (figure_condition, False),
}
