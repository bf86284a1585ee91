"""Figure of claim 24: the escape transition of gradient descent at minima of deep matrix
factorization (Kamber & Parhi, arXiv 2509.25783), drawn from the escape study: the fraction of
runs that left the minimizer against the step factor c, each run near c = 1 against the predicted
undecided window, and the measured growth per step against |1 - 2c|."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from svperturb.analysis.claims import Results
from svperturb.analysis.claims.escape import STUDY, group_runs, pooled, transition
from svperturb.analysis.figures.common import width_colours
from svperturb.linalg.descent import ESCAPED, MOVED, STAYED, UNDECIDED

BINS = 40  # bins of c in panel (a)
CONFIDENCE = 0.95  # of the Wilson intervals
# How each outcome is drawn: label, colour, marker.
STYLES = {STAYED: ("stayed", "tab:blue", "o"), ESCAPED: ("escaped", "tab:red", "^"),
          MOVED: ("moved to another minimizer", "tab:orange", "s"),
          UNDECIDED: ("undecided", "0.35", "x")}


def wilson_interval(successes: np.ndarray, trials: np.ndarray, confidence: float = CONFIDENCE):
    """(low, high) of the Wilson score interval of a binomial proportion, per entry (NaN where
    there are no trials): centre (p + z^2 / 2n) / (1 + z^2 / n), half-width
    z sqrt(p (1 - p) / n + z^2 / 4n^2) / (1 + z^2 / n), z the normal quantile."""
    k, n = np.asarray(successes, dtype=float), np.asarray(trials, dtype=float)
    z = stats.norm.isf((1 - confidence) / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        scale = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / scale
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / scale
    return centre - half, centre + half


def _transition_panel(ax, by_depth: dict, colours: dict) -> None:
    """(a): per depth, the fraction of decided runs that left the minimizer, per bin of c; the
    depths side by side in each bin (a sample's c is the same at every depth, so their curves
    would otherwise hide each other)."""
    every = np.concatenate([r.c for r in by_depth.values()])
    low, high = float(every.min()), float(every.max())
    if not low < high:  # a single run, or every run at the same c
        low, high = low - 1e-3, high + 1e-3
    edges = np.linspace(low, high, BINS + 1)
    middles = (edges[:-1] + edges[1:]) / 2
    step = 0.5 * (edges[1] - edges[0]) / max(len(by_depth), 1)
    for slot, (depth, runs) in enumerate(by_depth.items()):
        shift = (slot - (len(by_depth) - 1) / 2) * step
        decided = runs.outcome != UNDECIDED
        left = (runs.outcome == ESCAPED) | (runs.outcome == MOVED)
        trials = np.histogram(runs.c[decided], edges)[0]
        successes = np.histogram(runs.c[left], edges)[0]
        shown = trials > 0
        low, high = wilson_interval(successes[shown], trials[shown])
        fraction = successes[shown] / trials[shown]
        yerr = np.maximum([fraction - low, high - fraction], 0)  # 0 where rounding makes it -0
        ax.errorbar(middles[shown] + shift, fraction, yerr=yerr, fmt="-o",
                    ms=3, lw=1, capsize=2, color=colours[depth], label=f"L = {depth}")
    ax.axvline(1, color="k", ls="--", lw=0.9, label="c = 1 (η = 2/λ_max)")
    ax.set(xlabel="step factor c (η = c · 2/λ_max)", ylabel="fraction that left the minimizer",
           title=f"(a) escaped or moved, per bin of c ({CONFIDENCE:.0%} Wilson intervals)",
           ylim=(-0.05, 1.05))
    ax.legend(fontsize=7, loc="center right", title="undecided runs left out", title_fontsize=7)


def _zoom_panel(ax, by_depth: dict, everything) -> None:
    """(b): every run near c = 1, one row per depth, with the predicted undecided windows."""
    result = transition(everything)
    half = max((max(abs(low - 1), abs(high - 1)) for low, high in everything.windows), default=0)
    ends = [abs(x - 1) for x in result.bracket if np.isfinite(x)]
    span = max(4 * half, 1.5 * max(ends, default=0), 1e-4)
    for low, high in everything.windows:
        ax.axvspan(low, high, color="0.85", zorder=0)
    ax.axvspan(np.nan, np.nan, color="0.85", label="predicted undecided window")
    rng = np.random.default_rng(0)
    labelled = set()
    for row, (depth, runs) in enumerate(by_depth.items()):
        near = np.abs(runs.c - 1) <= span
        for code, (label, colour, marker) in STYLES.items():
            chosen = near & (runs.outcome == code)
            if chosen.any():
                y = row + rng.uniform(-0.3, 0.3, chosen.sum())
                ax.plot(runs.c[chosen], y, marker, ls="none", ms=4, color=colour, alpha=0.8,
                        mfc="none" if code == UNDECIDED else colour,
                        label=None if code in labelled else label)
                labelled.add(code)
    ax.axvline(1, color="k", ls="--", lw=0.9)
    if not labelled:
        ax.text(0.5, 0.5, "no run this close to c = 1", ha="center", va="center",
                transform=ax.transAxes, color="grey")
    ax.set_yticks(range(len(by_depth)))
    ax.set_yticklabels([f"L = {depth}" for depth in by_depth])
    ax.set_xlim(1 - span, 1 + span)
    ax.set(xlabel="step factor c", ylabel="depth (all targets, widths, imbalances)",
           title=f"(b) runs near c = 1; pooled bracket [{result.largest_stayed:.6g}, "
                 f"{result.smallest_left:.6g}]")
    ax.legend(fontsize=7, loc="upper left")


def _growth_panel(ax, everything) -> None:
    """(c): measured growth per step against |1 - 2c|, per outcome, and the line y = x."""
    for code, (label, colour, marker) in STYLES.items():
        chosen = everything.outcome == code
        if chosen.any():
            ax.plot(everything.predicted[chosen], everything.growth[chosen], marker, ls="none",
                    ms=3, alpha=0.5, color=colour, mfc="none" if code == UNDECIDED else colour,
                    label=label)
    finite = everything.predicted[np.isfinite(everything.predicted)]
    if finite.size:
        line = np.array([finite.min(), finite.max()])
        ax.plot(line, line, "k-", lw=0.8, label="y = x (linear stability)")
    result = transition(everything)
    ax.text(0.03, 0.97, f"median |measured / |1 − 2c| − 1| (stayed, escaped): "
            f"{result.median_growth_difference:.2g}", transform=ax.transAxes, va="top", fontsize=7)
    ax.axhline(1, color="0.6", lw=0.6, ls=":")
    ax.set(xlabel="|1 − 2c|, predicted factor per step (ratio)",
           ylabel="(l_end / l_0)^(1/(2 steps)), measured (ratio)",
           title="(c) growth per step of the deviation")
    ax.legend(fontsize=7, loc="lower right")


def figure_transition(results: Results):
    """Claim 24: (a) the fraction of runs that left the minimizer against c, per depth, with
    Wilson intervals per bin; (b) each run near c = 1 with the predicted undecided window
    shaded; (c) the measured growth per step against |1 - 2c|."""
    points = results.points(STUDY)
    if not points:
        return None
    depths = sorted({d.point["depth"] for d in points})
    by_depth = {L: pooled([group_runs(d) for d in points if d.point["depth"] == L]) for L in depths}
    everything = pooled(list(by_depth.values()))
    colours = width_colours(depths)
    fig, axes = plt.subplots(1, 3, figsize=(19, 5.4))
    _transition_panel(axes[0], by_depth, colours)
    _zoom_panel(axes[1], by_depth, everything)
    _growth_panel(axes[2], everything)
    targets = sorted({d.point["target"] for d in points})
    widths = sorted({d.point["width"] for d in points})
    fig.suptitle(f"Claim 24: gradient descent from W* + δu with η = c · 2/λ_max stays for c < 1 "
                 f"and leaves for c > 1 ({len(everything.c):,} runs; targets {', '.join(targets)}; "
                 f"widths {', '.join(map(str, widths))})", fontsize=10)
    fig.tight_layout()
    return fig


FIGURES = {"escape_transition": (figure_transition, False)}
