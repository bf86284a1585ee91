"""Figures of claims 25-30: deep linear networks (Jacot et al., arXiv 2106.15933), drawn from the
deep_linear_dynamics study (the staircase against the lazy curve; the crossover in gamma) and the
deep_linear_l2 study (learned singular values against the predicted branches)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from svperturb.analysis.claims import Results
from svperturb.analysis.claims.common import median_ci
from svperturb.analysis.claims.deep_linear import (
    DYNAMICS,
    HALF,
    L2_STUDY,
    converged_runs,
    progress,
    rank_bias,
)
from svperturb.analysis.figures.common import width_colours
from svperturb.analysis.fit import FitSettings
from svperturb.theory.deep_linear import (
    STABLE,
    branch_onset,
    jump_point,
    nonzero_roots,
    plateau_losses,
    soft_threshold,
)

SHOWN_RUNS = 3  # runs drawn per panel of the staircase figure


def _staircase_panels(axes, points, teacher: str, depth: int, width: int) -> None:
    """Per gamma (smallest, largest): the map's singular values over the steps of a few runs, and
    the loss with the plateau levels."""
    chosen = [p for p in points if p.point["teacher_spectrum"] == teacher
              and p.point["depth"] == depth and p.point["width"] == width]
    gammas = sorted(p.point["init_exponent"] for p in chosen)
    for column, gamma in enumerate((gammas[-1], gammas[0])):
        data = next(p for p in chosen if p.point["init_exponent"] == gamma)
        steps = np.asarray(data["recorded_steps"], dtype=float)[0]
        values = np.asarray(data["singular_value_curve"], dtype=float)
        loss = np.asarray(data["loss_curve"], dtype=float)
        teacher_values = np.asarray(data["teacher_singular_values"], dtype=float)[0]
        x = np.maximum(steps, 0.5)  # step 0 on the log axis
        top, bottom = axes[0, column], axes[1, column]
        colours = plt.get_cmap("plasma")(np.linspace(0, 0.85, len(teacher_values)))
        for run in range(min(SHOWN_RUNS, len(values))):
            for k, colour in enumerate(colours):
                top.plot(x, values[run, :, k], color=colour, lw=1, alpha=0.9 - 0.25 * run,
                         label=f"s_{k + 1}" if run == 0 else None)
            bottom.plot(x, loss[run], color="k", lw=1, alpha=0.9 - 0.25 * run,
                        label="1/2 ||A - M||²" if run == 0 else None)
        for k, m in enumerate(teacher_values):
            top.axhline(m, color=colours[k], ls=":", lw=0.8)
        for level in plateau_losses(teacher_values)[1:-1]:
            bottom.axhline(level, color="tab:red", ls=":", lw=0.8)
        bottom.plot([], [], color="tab:red", ls=":", lw=0.8, label="plateaus 1/2 Σ_(i>k) m_i²")
        regime = "small" if gamma > 1 else "large"
        top.set(xscale="log", xlabel="gradient step", title=f"({'ab'[column]}) {regime} initialization, γ = {gamma:g}: "
                f"singular values of A (dotted: m_k)", ylabel="s_k(A)")
        bottom.set(xscale="log", yscale="log", xlabel="gradient step (0 at the left edge)",
                   ylabel="loss", title=f"({'cd'[column]}) loss, γ = {gamma:g}")
        top.legend(fontsize=7, loc="upper left")
        bottom.legend(fontsize=7, loc="lower left")


def figure_staircase(results: Results):
    """Claims 28, 29: at the largest width and depth <= 4 (the deepest such), the singular values
    of the map over training and the loss with its plateau levels, smallest and largest
    initialization."""
    points = results.points(DYNAMICS)
    if not points:
        return None
    teacher = min({p.point["teacher_spectrum"] for p in points})
    depths = sorted({p.point["depth"] for p in points})
    depth = max([d for d in depths if d <= 4] or depths)
    width = max(p.point["width"] for p in points)
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5))
    _staircase_panels(axes, points, teacher, depth, width)
    fig.suptitle(f"Claims 28, 29: saddle-to-saddle (left) against lazy training (right), teacher "
                 f"{teacher}, L = {depth}, w = {width}, {SHOWN_RUNS} runs", fontsize=10)
    fig.tight_layout()
    return fig


def figure_branches(results: Results):
    """Claims 26, 27: per depth, each converged run's final a_k = u_k^T A v_k against the teacher's
    m_k, both in units of m_c, over the predicted stationary points (stable branch solid, unstable
    dashed, 0), m_e and m_c marked."""
    points = results.points(L2_STUDY)
    if not points:
        return None
    depths = sorted({p.point["depth"] for p in points})
    gammas = sorted({p.point["init_exponent"] for p in points})
    colours = width_colours(gammas)
    fig, axes = plt.subplots(1, len(depths), figsize=(4.6 * len(depths), 4.4), squeeze=False)
    for ax, depth in zip(axes[0], depths):
        # the branches in units of m_c do not depend on lambda (scale invariance): drawn at lambda 1
        _, m_c = jump_point(1.0, depth)
        _, m_e = branch_onset(1.0, depth)
        grid = np.linspace(0, 2.2, 600) * m_c
        if depth == 2:
            ax.plot(grid / m_c, soft_threshold(grid, 1.0) / m_c, "k-", lw=1, label="max(m - λ, 0)")
        else:
            unstable, stable = nonzero_roots(grid, 1.0, depth)
            ax.plot(grid / m_c, stable / m_c, "k-", lw=1, label="stable root")
            ax.plot(grid / m_c, unstable / m_c, "k--", lw=1, label="unstable root")
            ax.axvline(m_e / m_c, color="0.5", ls=":", lw=0.9, label="m_e")
        ax.axhline(0, color="k", lw=0.6)
        ax.axvline(1, color="tab:red", ls=":", lw=0.9, label="m_c (the jump)")
        for data in (p for p in points if p.point["depth"] == depth):
            runs = converged_runs(data)
            if not runs.any():
                continue
            _, scale = jump_point(data.point["l2"], depth)
            m = np.asarray(data["teacher_singular_values"], dtype=float)[runs] / scale
            a = np.asarray(data["final_projections"], dtype=float)[runs] / scale
            on_stable = np.asarray(data["branch"])[runs] == STABLE
            gamma = data.point["init_exponent"]
            jitter = np.random.default_rng(0).uniform(-0.01, 0.01, m.shape)
            ax.plot((m + jitter)[on_stable], a[on_stable], "o", ms=3, mfc="none",
                    color=colours[gamma])
            ax.plot((m + jitter)[~on_stable], a[~on_stable], "x", ms=3, color=colours[gamma])
        for gamma in gammas:
            ax.plot([], [], "o", mfc="none", color=colours[gamma], label=f"γ = {gamma:g} (x: at 0)")
        ax.set(xlabel="teacher singular value m / m_c", ylabel="learned u_k^T A v_k / m_c",
               title=f"L = {depth}")
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("Claims 26, 27: learned singular values on the predicted branches (converged runs)",
                 fontsize=10)
    fig.tight_layout()
    return fig


def figure_crossover(results: Results):
    """Claims 29, 30: per teacher and depth, the median rank-bias index S (with its order-statistic
    interval) against gamma, one curve per width."""
    points = results.points(DYNAMICS)
    if not points:
        return None
    teachers = sorted({p.point["teacher_spectrum"] for p in points})
    depths = sorted({p.point["depth"] for p in points})
    widths = sorted({p.point["width"] for p in points})
    colours = width_colours(widths)
    settings = FitSettings()
    fig, axes = plt.subplots(len(teachers), len(depths), figsize=(4.2 * len(depths),
                                                                  3.8 * len(teachers)),
                             squeeze=False, sharey=True)
    for row, teacher in enumerate(teachers):
        for ax, depth in zip(axes[row], depths):
            for w in widths:
                chosen = sorted((p for p in points if p.point["teacher_spectrum"] == teacher
                                 and p.point["depth"] == depth and p.point["width"] == w),
                                key=lambda p: p.point["init_exponent"])
                gammas, medians, lows, highs = [], [], [], []
                for data in chosen:
                    finished = np.asarray(data["finished"]).astype(bool)
                    teacher_values = np.asarray(data["teacher_singular_values"], dtype=float)[finished]
                    bias = rank_bias(progress(np.asarray(data["projection_curve"],
                                                         dtype=float)[finished], teacher_values))
                    bias = bias[np.isfinite(bias)]
                    if bias.size < 2:
                        continue
                    median, (low, high) = median_ci(bias, settings)
                    gammas.append(data.point["init_exponent"])
                    medians.append(median)
                    lows.append(median - low)
                    highs.append(high - median)
                if gammas:
                    ax.errorbar(gammas, medians, yerr=[lows, highs], fmt="-o", ms=3, capsize=2,
                                color=colours[w], label=f"w = {w}")
            ax.axhline(HALF, color="k", ls="--", lw=0.8)
            ax.axvline(1, color="tab:red", ls=":", lw=0.9)
            ax.set(xlabel="γ (initial variance w^-γ)", title=f"{teacher}, L = {depth}")
            if ax is axes[row][0]:
                ax.set_ylabel("median S = q_1 - q_d at half progress")
            ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("Claims 29, 30: rank bias S against γ (0: no preference, 1: largest first); the "
                 "crossover at the dashed 1/2 should sit near γ = 1 (red)", fontsize=10)
    fig.tight_layout()
    return fig


FIGURES = {"deep_linear_staircase": (figure_staircase, False),
           "deep_linear_branches": (figure_branches, False),
           "deep_linear_crossover": (figure_crossover, False)}
