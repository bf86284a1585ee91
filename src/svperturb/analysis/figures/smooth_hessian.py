"""Figures of claims 31-33: the Hessian of smooth deep networks (Banerjee et al., arXiv
2209.15106), drawn from the smooth_hessian study: ||H|| against the width per depth (log-log, with
the fitted slope), sqrt(m) ||H|| against the depth, and the RSC quantity with the loss along
gradient descent."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from svperturb.analysis.claims import Results
from svperturb.analysis.claims.smooth_hessian import SMALL_STD, STUDY
from svperturb.analysis.figures.common import width_colours


def _panels(count: int, height: float = 4.2):
    fig, axes = plt.subplots(1, count, figsize=(5.2 * count, height), squeeze=False)
    return fig, axes[0]


def _median_quartiles(values: np.ndarray):
    return np.median(values), np.quantile(values, 0.25), np.quantile(values, 0.75)


def figure_width(results: Results):
    """Claim 31: per activation (panels), median ||H|| against m per depth at the smallest sigma_0
    (quartiles as error bars), the OLS line of log ||H|| against log m, and the slope -1/2."""
    points = results.points(STUDY, state="initialization")
    if not points:
        return None
    std = min(d.point["init_std"] for d in points)
    activations = sorted({d.point["activation"] for d in points})
    fig, axes = _panels(len(activations))
    for ax, act in zip(axes, activations):
        mine = [d for d in points if d.point["activation"] == act and d.point["init_std"] == std]
        depths = sorted({d.point["depth"] for d in mine})
        colours = width_colours(depths)
        for depth in depths:
            rows = sorted((d for d in mine if d.point["depth"] == depth), key=lambda d: d.point["width"])
            widths = np.array([d.point["width"] for d in rows], dtype=float)
            stats = np.array([_median_quartiles(d["hessian_norm"]) for d in rows])
            slope = np.polyfit(np.log(widths), [np.log(d["hessian_norm"]).mean() for d in rows], 1) \
                if len(rows) > 1 else (np.nan, np.nan)
            ax.errorbar(widths, stats[:, 0], yerr=[stats[:, 0] - stats[:, 1], stats[:, 2] - stats[:, 0]],
                        fmt="o", ms=4, capsize=2, color=colours[depth],
                        label=f"L = {depth}: slope {slope[0]:.2f}")
            if len(rows) > 1:
                ax.plot(widths, np.exp(np.polyval(slope, np.log(widths))), "-", lw=1,
                        color=colours[depth])
        if mine:
            reference = max(np.median(d["hessian_norm"]) for d in mine)
            first = min(d.point["width"] for d in mine)
            line = np.array([first, max(d.point["width"] for d in mine)], dtype=float)
            ax.plot(line, reference * (line / first) ** -0.5, "k--", lw=0.9, label="slope -1/2")
        ax.set(xscale="log", yscale="log", xlabel="width m", ylabel="||H|| = max |λ| (median, quartiles)",
               title=f"{act}, σ0 = {std:g}")
        ax.legend(fontsize=7)
    fig.suptitle(f"Claim 31: the predictor's Hessian norm against the width at initialization "
                 f"(σ0 = {std:g}; the claim judges σ0 ≤ {SMALL_STD:g})", fontsize=10)
    fig.tight_layout()
    return fig


def figure_depth(results: Results):
    """Claim 32: per activation, median sqrt(m) ||H|| against L at the largest width, one curve
    per sigma_0, log scale (an exponential is a straight line)."""
    points = results.points(STUDY, state="initialization")
    if not points:
        return None
    width = max(d.point["width"] for d in points)
    points = [d for d in points if d.point["width"] == width]
    activations = sorted({d.point["activation"] for d in points})
    stds = sorted({d.point["init_std"] for d in points})
    colours = width_colours(stds)
    fig, axes = _panels(len(activations))
    for ax, act in zip(axes, activations):
        for std in stds:
            rows = sorted((d for d in points if d.point["activation"] == act
                           and d.point["init_std"] == std), key=lambda d: d.point["depth"])
            if not rows:
                continue
            stats = np.array([_median_quartiles(np.sqrt(width) * d["hessian_norm"]) for d in rows])
            ax.errorbar([d.point["depth"] for d in rows], stats[:, 0],
                        yerr=[stats[:, 0] - stats[:, 1], stats[:, 2] - stats[:, 0]], fmt="-o", ms=4,
                        capsize=2, color=colours[std], label=f"σ0 = {std:g}")
        ax.set(yscale="log", xlabel="depth L", ylabel="sqrt(m) ||H|| (median, quartiles)",
               title=f"{act}, m = {width}")
        ax.legend(fontsize=7)
    fig.suptitle("Claim 32: sqrt(m) ||H|| against depth (log scale: exponential growth is a rising "
                 "straight line)", fontsize=10)
    fig.tight_layout()
    return fig


def figure_descent(results: Results):
    """Claim 33: per activation at the smallest sigma_0 and the largest width, the median RSC
    quantity relative to its start and the median loss relative to its start along gradient
    descent, per depth; the RSC floor 1/2 dashed."""
    points = results.points(STUDY, state="initialization")
    if not points:
        return None
    std = min(d.point["init_std"] for d in points)
    width = max(d.point["width"] for d in points)
    points = [d for d in points if d.point["init_std"] == std and d.point["width"] == width]
    activations = sorted({d.point["activation"] for d in points})
    depths = sorted({d.point["depth"] for d in points})
    colours = width_colours(depths)
    fig, axes = plt.subplots(2, len(activations), figsize=(5.2 * len(activations), 7.4),
                             squeeze=False, sharex=True)
    for column, act in enumerate(activations):
        top, bottom = axes[0, column], axes[1, column]
        for data in sorted((d for d in points if d.point["activation"] == act),
                           key=lambda d: d.point["depth"]):
            rsc, loss = data["rsc_path"], data["loss_path"]
            steps = np.arange(rsc.shape[1])
            colour = colours[data.point["depth"]]
            top.plot(steps, np.median(rsc / rsc[:, :1], axis=0), color=colour,
                     label=f"L = {data.point['depth']}")
            bottom.plot(steps, np.median(loss / loss[:, :1], axis=0), color=colour)
        top.axhline(0.5, color="k", ls="--", lw=0.9, label="floor q_0 / 2")
        top.set(yscale="log", ylabel="q_t / q_0 (median)", title=f"{act}, σ0 = {std:g}, m = {width}")
        bottom.set(yscale="log", xlabel="gradient step t", ylabel="loss L_t / L_0 (median)")
        top.legend(fontsize=7)
    fig.suptitle("Claim 33: the RSC quantity q_t = ||(1/n) Σ_i ∇f(x_i)||² and the square loss along "
                 "gradient descent (step 1/||∇²L|| at initialization)", fontsize=10)
    fig.tight_layout()
    return fig


FIGURES = {"smooth_hessian_width": (figure_width, False),
           "smooth_hessian_depth": (figure_depth, False),
           "smooth_hessian_descent": (figure_descent, False)}
