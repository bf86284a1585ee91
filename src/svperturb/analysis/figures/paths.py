"""Figures of claims 15 and 16: the paper's Figure 2 (singular-value paths over rho) and Figure 8
(the toy network), redrawn from the merged results."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from svperturb.analysis.claims import Results
from svperturb.analysis.claims.paths import (
    FIGURE_2A_KINK,
    PAPER_PATHS_POINT,
    PAPER_TOY_POINT,
    figure_2a_closed_form,
    figure_2a_paths,
)
from svperturb.studies.rho_paths import SEPARATION, interior_extrema, isolated
from svperturb.theory.bounds import rounding_tolerance
from svperturb.theory.network import kronecker_singular_values

REALISATIONS = 8  # the paper drew 8 runs of the toy network
D_PANEL_SKIPS = (0.0, 1 / 3, 2 / 3, 1.0)


def _pick(points, wanted: dict):
    for data in points:
        if all(np.isclose(data.point[k], v) if not isinstance(v, str) else data.point[k] == v
               for k, v in wanted.items()):
            return data
    return points[0]


def figure_2(results: Results):
    """Figure 2: (a) diag(-0.4, -0.2, -0.1) + rho I against its closed form; (b) one 15 x 15
    Gaussian Mo (sigma = 0.3) with its extrema and kinks; (c) how many isolated extrema the
    busiest singular value has, over every realisation."""
    points = results.points("rho_paths")
    if not points:
        return None
    data = _pick(points, PAPER_PATHS_POINT)
    rhos = np.asarray(data.point["skip"], dtype=float)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6), gridspec_kw={"width_ratios": [1, 1.3, 0.9]})

    ax = axes[0]
    computed, exact = figure_2a_paths(rhos), figure_2a_closed_form(rhos)
    for i in range(3):
        ax.plot(rhos, computed[:, i], lw=2.2, color=f"C{i}", label=f"$s_{i + 1}$ (LAPACK)")
        ax.plot(rhos, exact[:, i], "k--", lw=0.9, label="closed form |ρ−0.4|, |ρ−0.2|, |ρ−0.1|" if i == 0 else None)
    ax.plot([FIGURE_2A_KINK], [0.15], "rv", ms=9, label="$s_1$ minimum and kink, ρ = 0.25")
    ax.set(xlabel="ρ", ylabel="singular value", title="(a) $M_o$ = diag(−0.4, −0.2, −0.1)")
    ax.legend(fontsize=7, loc="lower right")

    ax = axes[1]
    paths = data["spectra/singular_values"][0]  # (R, n): the first realisation
    n = paths.shape[1]
    maxima, minima = interior_extrema(paths[None], rounding_tolerance(paths[:, 0].max(), n))
    extrema = (maxima | minima)[0]
    h = float(np.max(np.diff(rhos)))
    alone = isolated(paths[None], np.maximum(SEPARATION * paths[None, :, :1], 2 * h))[0]
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.95, n))
    for i in range(n):
        ax.plot(rhos, paths[:, i], color=colours[i], lw=1.2)
    rr, ii = np.nonzero(extrema & alone)
    ax.plot(rhos[rr], paths[rr, ii], "o", mfc="none", mec="r", ms=6, label="isolated interior extremum")
    rr, ii = np.nonzero(extrema & ~alone)
    ax.plot(rhos[rr], paths[rr, ii], "x", color="k", ms=6, label="extremum at a zero / near-crossing")
    ax.set(xlabel="ρ", ylabel="$s_i(M_o + ρ I)$",
           title=f"(b) one {data.point['distribution']} {n}×{n} $M_o$, σ = 0.3 (sample 0)")
    ax.legend(fontsize=7, loc="upper left")
    inset = ax.inset_axes([0.55, 0.62, 0.43, 0.33])
    inset.plot(rhos, paths[:, -1], color=colours[-1], lw=1.2)
    rr = np.nonzero(extrema[:, -1])[0]
    inset.plot(rhos[rr], paths[rr, -1], "x", color="k", ms=5)
    inset.set_title(f"$s_{{{n}}}$: zeros are kinks", fontsize=7)
    inset.tick_params(labelsize=6)

    ax = axes[2]
    counts = data["n_isolated_extrema"].max(axis=1)
    values = np.arange(counts.max() + 1)
    share = np.array([(counts == v).mean() for v in values])
    ax.bar(values, share, color="C0")
    ax.axvline(1.5, color="r", ls=":", lw=1, label=f"≥ 2: {np.mean(counts >= 2):.1%} of N = {len(counts):,}")
    ax.set(xlabel="isolated interior extrema of the busiest $s_i$", ylabel="fraction of realisations",
           title=f"(c) all realisations, {len(rhos)} ρ values")
    ax.legend(fontsize=7)
    fig.suptitle("Figure 2: singular values of $M_o + ρ I$ over ρ ∈ [0, 1] (claim 15)")
    fig.tight_layout()
    return fig


def _paths_panel(ax, rhos, values, label, log):
    finite = np.where(np.isfinite(values), values, np.nan)
    lo, median, hi = np.nanquantile(finite, [0.1, 0.5, 0.9], axis=0)
    ax.fill_between(rhos, lo, hi, color="0.8", label=f"10–90% of N = {len(values):,}")
    ax.plot(rhos, median, "k-", lw=2.2, label="median")
    for j in range(min(REALISATIONS, len(values))):
        ax.plot(rhos, finite[j], lw=1, color=f"C{j}", label="8 realisations" if j == 0 else None)
    ax.set(xlabel="ρ", ylabel=label)
    if log:
        ax.set_yscale("log")


def figure_8(results: Results):
    """Figure 8: s_1(Q), s_*(Q), kappa(Q) against rho, and s_1/s_i against i at four rho."""
    points = results.points("toy_network")
    if not points:
        return None
    data = _pick(points, PAPER_TOY_POINT)
    p = data.point
    rhos = np.asarray(p["skip"], dtype=float)
    fig, axes = plt.subplots(2, 2, figsize=(12, 9))
    _paths_panel(axes[0, 0], rhos, data["s1_Q"], "$s_1(Q)$", True)
    axes[0, 0].set_title("(a) largest singular value of Q")
    _paths_panel(axes[0, 1], rhos, data["s_star_Q"], "$s_*(Q)$", True)
    axes[0, 1].set_title("(b) smallest non-zero singular value of Q")
    _paths_panel(axes[1, 0], rhos, data["kappa_Q"], "$κ(Q) = s_1/s_*$", True)
    axes[1, 0].set_title("(c) condition number of Q (log scale: it spans decades)")
    for ax in (axes[0, 0], axes[0, 1], axes[1, 0]):
        ax.legend(fontsize=7)

    ax = axes[1, 1]
    s_md, z_abs = data["s_MD"], data["z_abs"]
    for c, target in enumerate(D_PANEL_SKIPS):
        j = int(np.argmin(np.abs(rhos - target)))
        s_q = kronecker_singular_values(s_md[:, j], z_abs)
        ratio = s_q[:, :1] / s_q
        i = np.arange(1, ratio.shape[1] + 1)
        mean, std = ratio.mean(axis=0), ratio.std(axis=0, ddof=1)
        ax.plot(i, mean, "o-", ms=3, color=f"C{c}", label=f"ρ = {rhos[j]:.3g}: mean")
        ax.fill_between(i, np.maximum(mean - std, 1), mean + std, color=f"C{c}", alpha=0.12)
        ax.plot(i, np.median(ratio, axis=0), ":", color=f"C{c}", lw=1.5)
    ax.plot([], [], "k:", label="medians")
    ax.fill_between([], [], [], color="0.6", alpha=0.3, label="mean ± standard deviation")
    ax.set(yscale="log", xlabel="i (singular values of Q, decreasing)", ylabel="$s_1(Q)/s_i(Q)$",
           title=f"(d) $s_1/s_i$ at four ρ, N = {len(s_md):,}")
    ax.legend(fontsize=7)
    fig.suptitle(f"Figure 8: toy network (158), n = {p['width']}, η = {p['activation_slope']:g}, "
                 f"skip ρ in layer 1, Q of layer 0 (claim 16)")
    fig.tight_layout()
    return fig


FIGURES = {
    "figure2_rho_paths": (figure_2, False),
    "figure8_toy_network": (figure_8, False),
}
