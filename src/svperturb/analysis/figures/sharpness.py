"""Figures of claims 17-23: sharpness (the Hessian's lambda_max) at minima of deep matrix
factorization (Kamber & Parhi, arXiv 2509.25783), drawn from the sharpness study: the closed forms
and bounds against the exact value, lambda_max over the imbalance kappa with the least value over
layer rescalings, and how loose the Cauchy-Schwarz sum is."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import ticker

from svperturb.analysis.claims import Results
from svperturb.analysis.claims.sharpness import (
    RESCALING_TOLERANCE,
    SPREAD_TOLERANCE,
    rounding,
    spread,
)
from svperturb.analysis.figures.common import width_colours
from svperturb.studies import sharpness as study

FLOOR = 1e-18  # relative differences that are exactly 0 are drawn here, on the log axes
EPS = np.finfo(float).eps


def _colours(values, cmap: str = "plasma") -> dict:
    """One colour per value, in order (the light end of the map left out)."""
    values = sorted(values)
    return {v: plt.get_cmap(cmap)(0.8 * i / max(len(values) - 1, 1)) for i, v in enumerate(values)}


def _concat(points, values) -> np.ndarray:
    arrays = [np.asarray(values(d), dtype=float).ravel() for d in points]
    return np.concatenate(arrays) if arrays else np.zeros(0)


def _relative(value: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """|value - exact| / exact, zeros lifted to FLOOR for the log axes."""
    return np.maximum(np.abs(value - exact) / exact, FLOOR)


def _no_data(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")


def _strip(ax, slot: int, offset: float, y: np.ndarray, colour, label, rng) -> None:
    y = y[np.isfinite(y)]
    if y.size:
        x = slot + offset + rng.uniform(-0.025, 0.025, y.size)
        ax.plot(x, y, ".", ms=2.5, alpha=0.45, color=colour, label=label)


def _tick(ax, slot: int, offset: float, level: float, label) -> None:
    """The verdict's rounding allowance (median over the samples) as a short dark bar."""
    ax.plot([slot + offset - 0.06, slot + offset + 0.06], [level, level], color="0.2", lw=1.8,
            label=label, zorder=3)


def _relative_panel(ax, groups: dict, slots: list, colour_key: str, colours: dict, value, label,
                    rng) -> None:
    """One strip per (slot, colour value): |value - exact| / exact per sample, with the verdict's
    rounding allowance beside it. `groups` maps a slot to its grid points, `label(c)` names the
    colour value c in the legend."""
    keys, labelled = sorted(colours), set()
    width = min(0.7 / max(len(keys), 1), 0.14)
    for slot, key in enumerate(slots):
        for j, c in enumerate(keys):
            chosen = [d for d in groups.get(key, []) if d.point[colour_key] == c]
            if not chosen:
                continue
            offset = (j - (len(keys) - 1) / 2) * width
            exact = _concat(chosen, lambda d: d["lambda_max"])
            _strip(ax, slot, offset, _relative(_concat(chosen, value), exact), colours[c],
                   None if c in labelled else label(c), rng)
            allowance = float(np.median(_concat(chosen, rounding) / exact))
            _tick(ax, slot, offset, allowance, None if labelled else "rounding allowance (median)")
            labelled.add(c)
    ax.axhline(EPS, color="k", ls=":", lw=0.8, label="machine ε")
    _zero_floor(ax)
    ax.set_xticks(range(len(slots)))


def _zero_floor(ax) -> None:
    """Log y axis whose bottom decade, FLOOR (shaded), holds the values that are exactly 0."""
    ax.axhspan(FLOOR / 3, FLOOR * 3, color="0.9", zorder=0, label="shaded: exactly 0")
    ax.set_yscale("log")
    ax.set_ylim(FLOOR / 3, None)
    default = ax.yaxis.get_major_formatter()
    ax.yaxis.set_major_formatter(
        ticker.FuncFormatter(lambda y, pos: "0" if abs(y / FLOOR - 1) < 1e-6 else default(y, pos)))


def _legend_below(ax, columns: int = 3) -> None:
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=columns, markerscale=3,
              frameon=False)


def figure_closed_forms(results: Results):
    """Claims 17, 18 (and the Cauchy-Schwarz sum of claim 23): per sample, the relative difference
    of the closed forms (depth 2; width 1, scalar), of the balanced value 2 L ||M||^(2-2/L) at
    kappa = 0 and of the Cauchy-Schwarz sum 2 sum_i ||A_i||^2 ||B_i||^2 from the exact lambda_max."""
    points = results.points(study.NAME)
    if not points:
        return None
    rng = np.random.default_rng(0)
    widths = sorted({d.point["width"] for d in points})
    depths = sorted({d.point["depth"] for d in points})
    kappas = sorted({d.point["imbalance"] for d in points})
    kappa_colours = _colours(kappas, "viridis")
    fig, axes = plt.subplots(1, 4, figsize=(20, 5.6))
    closed_form, kappa_label = (lambda d: d["closed_form"]), (lambda k: f"κ = {k:g}")
    panels = [  # (groups by slot, slots, tick labels, colour key, colours, value, label, if absent)
        ({n: [d for d in points if d.point["depth"] == 2 and d.point["width"] == n] for n in widths},
         widths, [f"{n}" + (" (scalar)" if n == 1 else "") for n in widths], "imbalance",
         kappa_colours, closed_form, kappa_label, "depth 2 not run"),
        ({L: [d for d in points if d.point["width"] == 1 and d.point["depth"] == L] for L in depths},
         depths, [str(L) for L in depths], "imbalance", kappa_colours, closed_form, kappa_label,
         "width 1 (scalar) not run"),
        ({L: [d for d in points if d.point["depth"] == L and d.point["imbalance"] == 0] for L in depths},
         depths, [str(L) for L in depths], "width", width_colours(widths),
         lambda d: d["balanced_value"], lambda n: f"d = {n}", "κ = 0 not run"),
        ({L: [d for d in points if d.point["depth"] == L] for L in depths},
         depths, [str(L) for L in depths], "imbalance", kappa_colours,
         lambda d: d["cauchy_schwarz_bound"], kappa_label, "not run"),
    ]
    for ax, (groups, slots, ticks, key, colours, value, label, absent) in zip(axes, panels):
        if any(groups.values()):
            _relative_panel(ax, groups, slots, key, colours, value, label, rng)
            ax.set_xticklabels(ticks)
            _legend_below(ax)
        else:
            _no_data(ax, absent)
    axes[0].set(xlabel="width d (d × d factors)", ylabel="|value − exact λ_max| / exact λ_max (ratio)",
                title="(a) depth 2: 2(‖W₁‖² + ‖W₂‖²) (claim 17)")
    axes[1].set(xlabel="depth L", ylabel="|value − exact| / exact (ratio)",
                title="(b) width 1 (scalar): 2 Σᵢ Πⱼ≠ᵢ wⱼ² (claim 18)")
    axes[2].set(xlabel="depth L", ylabel="|value − exact| / exact (ratio)",
                title="(c) κ = 0: balanced value 2L‖M‖^(2−2/L) (claim 19)")
    axes[3].set(xlabel="depth L (all widths)", ylabel="(bound − exact) / exact (ratio)",
                title="(d) Cauchy–Schwarz sum 2 Σᵢ ‖Aᵢ‖²‖Bᵢ‖² (claim 23)")
    targets = sorted({d.point["target"] for d in points})
    fig.suptitle("Claims 17, 18: the closed forms and the balanced value agree with the exact λ_max to "
                 "rounding (at or below the dark bars); the Cauchy–Schwarz sum does only at depth 2 "
                 f"({sum(len(d['lambda_max']) for d in points):,} samples; targets "
                 f"{', '.join(targets)})", fontsize=10)
    fig.tight_layout()
    return fig


def _quartiles(ax, xs, samples: list[np.ndarray], colour, label, style="-", marker="o", band=True,
               hollow=False) -> None:
    """Median (line and markers) and quartiles (band) of each sample array, against xs."""
    kept = [(x, s[np.isfinite(s)]) for x, s in zip(xs, samples)]
    kept = [(x, s) for x, s in kept if s.size]
    if not kept:
        return
    x = np.array([k for k, _ in kept])
    lo, median, hi = np.array([np.quantile(s, [0.25, 0.5, 0.75]) for _, s in kept]).T
    ax.plot(x, median, style, marker=marker, ms=4, color=colour, mfc="white" if hollow else colour,
            label=label)
    if band:
        ax.fill_between(x, lo, hi, color=colour, alpha=0.15, lw=0)


def _optimized_width(points) -> int:
    """The largest width whose least lambda_max over rescalings was computed (d^2 <=
    RESCALING_LARGEST_OPERATOR), else the largest width."""
    widths = sorted({d.point["width"] for d in points})
    done = [n for n in widths if n ** 2 <= study.RESCALING_LARGEST_OPERATOR
            and any(np.any(d["rescaling_converged"] == 1) for d in points if d.point["width"] == n)]
    return (done or widths)[-1]


def _least(d) -> np.ndarray:
    """least_over_rescalings where the optimizer converged, NaN elsewhere."""
    return np.where(d["rescaling_converged"] == 1, d["least_over_rescalings"], np.nan)


def _rescaled_spreads(d) -> tuple[np.ndarray, np.ndarray]:
    """Spreads (max/min - 1 over layers) of ||A_i|| ||B_i|| / c_i and ||c_i W_i||_F at the least
    lambda_max over rescalings, NaN where it was not reached."""
    c, ok = d["rescaling"], d["rescaling_converged"] == 1
    products, frobenius = spread(d["factor_norm_product"] / c), spread(d["frobenius_norm"] * c)
    return np.where(ok, products, np.nan), np.where(ok, frobenius, np.nan)


def _spreads_panel(ax, two) -> None:
    """Depth 2 (`two`: its grid points), at the least over rescalings: median spreads of the
    products ||A_i|| ||B_i|| (claim 21) and of the Frobenius norms (claim 22) against kappa."""
    widths = sorted({d.point["width"] for d in two if np.any(d["rescaling_converged"] == 1)})
    kappas = sorted({d.point["imbalance"] for d in two})
    ax.set(xlabel="imbalance κ", ylabel="spread max/min − 1 over the layers (ratio)",
           title="(d) depth 2, every width: at the least over rescalings")
    if not widths:
        _no_data(ax, "depth 2 with the least over\nrescalings not run")
        return
    colours = width_colours(widths)
    for w in widths:
        chosen = [d for d in two if d.point["width"] == w]
        spreads = [[_rescaled_spreads(d) for d in chosen if d.point["imbalance"] == k] for k in kappas]
        products = [np.maximum(_concat(s, lambda x: x[0]), FLOOR) for s in spreads]
        _quartiles(ax, kappas, products, colours[w], f"d = {w}" + (" (scalar)" if w == 1 else ""),
                   band=False)
        if w > 1:  # for scalars the Frobenius norm is the spectral norm
            frobenius = [np.maximum(_concat(s, lambda x: x[1]), FLOOR) for s in spreads]
            _quartiles(ax, kappas, frobenius, colours[w], None, style="--", marker="s", hollow=True,
                       band=False)
    ax.plot([], [], "k-o", ms=4, label="‖Aᵢ‖‖Bᵢ‖ (claim 21)")
    ax.plot([], [], "k--s", ms=4, mfc="white", label="‖Wᵢ‖_F (claim 22)")
    ax.axhline(SPREAD_TOLERANCE, color="r", ls=":", lw=1, label=f"'equal': spread ≤ {SPREAD_TOLERANCE:g}")
    _zero_floor(ax)
    ax.legend(fontsize=7, loc="center right", title="medians", title_fontsize=7)


def figure_imbalance(results: Results):
    """Claims 19-22: lambda_max / 2 L ||M||^(2-2/L) against the imbalance kappa per depth, beside the
    least lambda_max over layer rescalings and lambda_max after rescaling to equal ||A_i|| ||B_i||;
    how far equal products are from the least; at depth 2, the spread of the products and of the
    Frobenius norms at the least."""
    points = results.points(study.NAME)
    if not points:
        return None
    targets = sorted({d.point["target"] for d in points})
    fig, axes = plt.subplots(len(targets), 4, figsize=(22, 5.2 * len(targets)), squeeze=False)
    for row, target in zip(axes, targets):
        mine = [d for d in points if d.point["target"] == target]
        n = _optimized_width(mine)
        at_n = [d for d in mine if d.point["width"] == n]
        depths = sorted({d.point["depth"] for d in at_n})
        kappas = sorted({d.point["imbalance"] for d in at_n})
        colours = _colours(depths)

        def series(depth, values, chosen=at_n, kappas=kappas):
            return [_concat([d for d in chosen if d.point["depth"] == depth and d.point["imbalance"] == k],
                            values) for k in kappas]

        ax = row[0]
        for L in depths:
            _quartiles(ax, kappas, series(L, lambda d: d["lambda_max"] / d["balanced_value"]), colours[L],
                       f"L = {L}")
        ax.axhline(1, color="k", lw=0.9, ls="--", label="balanced value 2L‖M‖^(2−2/L)")
        ax.set(yscale="log", xlabel="imbalance κ",
               ylabel=f"{target} target, d = {n}\nλ_max / 2L‖M‖^(2−2/L) (ratio)",
               title="(a) λ_max of the sampled minimizer")
        ax.legend(fontsize=7, loc="upper left", title="median, quartiles", title_fontsize=7)

        ax = row[1]
        computed = any(np.isfinite(_least(d)).any() for d in at_n)
        for L in depths:
            _quartiles(ax, kappas, series(L, lambda d: _least(d) / d["balanced_value"]), colours[L],
                       f"L = {L}" if computed else None)
            _quartiles(ax, kappas, series(L, lambda d: d["lambda_max_equal_products"] / d["balanced_value"]),
                       colours[L], None, style="--", marker="s", band=False, hollow=True)
        ax.plot([], [], "k-o", ms=4, label="least over rescalings (quartiles shaded)")
        ax.plot([], [], "k--s", ms=4, mfc="white", label="equal ‖Aᵢ‖‖Bᵢ‖ (median)")
        ax.axhline(1, color="k", lw=0.9, ls=":", label="balanced value")
        if not computed:
            _no_data(ax, f"least over rescalings not computed\n(d² > {study.RESCALING_LARGEST_OPERATOR})")
        ax.set(yscale="log", xlabel="imbalance κ", ylabel="λ_max / 2L‖M‖^(2−2/L) (ratio)",
               title="(b) after rescaling the layers, Wᵢ → cᵢWᵢ, Π cᵢ = 1")
        ax.legend(fontsize=7, loc="upper left")

        ax = row[2]
        for L in depths:
            values = series(L, lambda d: d["lambda_max_equal_products"] / _least(d) - 1)
            _quartiles(ax, kappas, values, colours[L], f"L = {L}" if computed else None)
            largest = [(k, v[np.isfinite(v)].max()) for k, v in zip(kappas, values) if np.isfinite(v).any()]
            if largest:
                ax.plot(*zip(*largest), "x", color=colours[L], ms=6)
        ax.plot([], [], "kx", label="largest over samples")
        ax.axhspan(-RESCALING_TOLERANCE, RESCALING_TOLERANCE, color="0.85", zorder=0,
                   label=f"optimizer's tolerance ±{RESCALING_TOLERANCE:g}")
        ax.axhline(0, color="k", lw=0.8)
        if not computed:
            _no_data(ax, "least over rescalings not computed")
        ax.set_yscale("symlog", linthresh=1e-10, linscale=0.5)
        ax.set_ylim(-1e-6, 2)
        ax.set_yticks([-1e-6, -1e-8, 0, 1e-8, 1e-6, 1e-4, 1e-2, 1])
        ax.set(xlabel="imbalance κ", ylabel="λ_max(equal ‖Aᵢ‖‖Bᵢ‖) / least − 1 (ratio)",
               title="(c) equal products against the least over rescalings (0: the least)")
        ax.legend(fontsize=7, loc="center right")

        _spreads_panel(row[3], [d for d in mine if d.point["depth"] == 2])
    fig.suptitle("Claims 19-22: λ_max grows with the imbalance κ from the balanced value (dashed); "
                 "rescaling the layers lowers it, and equal ‖Aᵢ‖‖Bᵢ‖ reach the least over rescalings "
                 "where (c) stays at 0", fontsize=10)
    fig.tight_layout()
    return fig


def figure_cauchy_schwarz(results: Results):
    """Claim 23: the Cauchy-Schwarz sum 2 sum_i ||A_i||^2 ||B_i||^2 over the exact lambda_max against
    kappa per depth, one panel per (target, width)."""
    points = results.points(study.NAME)
    if not points:
        return None
    targets = sorted({d.point["target"] for d in points})
    widths = sorted({d.point["width"] for d in points})
    depths = sorted({d.point["depth"] for d in points})
    colours = _colours(depths)
    fig, axes = plt.subplots(len(targets), len(widths), figsize=(3.6 * len(widths) + 1.2, 3.6 * len(targets)),
                             squeeze=False, sharey=True)
    for row, target in zip(axes, targets):
        for ax, n in zip(row, widths):
            mine = [d for d in points if d.point["target"] == target and d.point["width"] == n]
            kappas = sorted({d.point["imbalance"] for d in mine})
            for L in depths:
                ratio = [_concat([d for d in mine if d.point["depth"] == L and d.point["imbalance"] == k],
                                 lambda d: d["cauchy_schwarz_bound"] / d["lambda_max"]) for k in kappas]
                _quartiles(ax, kappas, ratio, colours[L], f"L = {L}")
            ax.axhline(1, color="k", lw=0.8, ls="--")
            if not mine:
                _no_data(ax, "not run")
            ax.set(title=f"{target}, d = {n}" + (" (scalar)" if n == 1 else ""), xlabel="imbalance κ")
        row[0].set_ylabel("2 Σᵢ ‖Aᵢ‖²‖Bᵢ‖² / λ_max (ratio)")
    axes[0, -1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1), title="median,\nquartiles",
                       title_fontsize=8)
    fig.suptitle("Claim 23: the Cauchy–Schwarz sum over the exact λ_max: 1 (dashed) at depth 2, at "
                 "width 1 and at κ = 0; above 1 for L ≥ 3 once κ > 0, growing with depth and width",
                 fontsize=10)
    fig.tight_layout()
    return fig


FIGURES = {
    "sharpness_closed_forms": (figure_closed_forms, False),
    "sharpness_imbalance": (figure_imbalance, False),
    "sharpness_cauchy_schwarz": (figure_cauchy_schwarz, False),
}
