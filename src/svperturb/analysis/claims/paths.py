"""Claims 15 and 16: singular-value paths over rho (Figure 2) and the toy network (Figure 8)
(studies rho_paths, toy_network).

Verdict rules, fixed before looking at the data:

Claim 15 (Figure 2) has two parts, combined with combine_verdicts.
(a) Mo = diag(-0.4, -0.2, -0.1) is deterministic: its paths s_i(Mo + rho I) are computed here with
    spectra.singular_values on the rho grid of the rho_paths study and compared with the closed
    form |rho - 0.4|, |rho - 0.2|, |rho - 0.1| sorted, so s_1 = max(|rho - 0.4|, |rho - 0.1|).
    reproduced when (i) every computed value matches the closed form within rounding (16 n eps
    s_1, bounds.rounding_tolerance), (ii) s_1's smallest grid value sits at the grid point
    nearest rho = 0.25 (within half the largest grid step), and (iii) s_1's slopes on the grid
    intervals left of 0.25 are -1 and right of it +1 (within rounding / step): s_1 decreases then
    increases, with a kink (no derivative) at 0.25. not reproduced otherwise.
(b) An existence claim: "the singular values may be non-convex and may have several extrema even
    without coinciding with others" for a 15 x 15 Gaussian Mo with sigma = 0.3. Judged at the
    paper's point (gaussian, width 15) on the fraction of realisations in which some s_i has >= 2
    interior local extrema on the grid that are isolated (s_i stays more than max(0.01 s_1,
    2 h) away from 0 and from s_{i-1}, s_{i+1}: not a kink at a zero, not a crossing):
    reproduced when its one-sided 95% Clopper-Pearson lower bound is > 0 (at least one such
    realisation); not reproduced when its one-sided upper bound is below
    settings.negligible_probability (such paths are negligible); inconclusive otherwise. The
    same fraction without the isolation requirement, the number of kinks (zeros of s_n), how
    close the paths come to a crossing (min relative gap < 1e-2, < 1e-3) and P[s_1 monotone] are
    reported as context.

Claim 16 (Figure 8): "the condition number decreases steadily with rho". Judged at the paper's
point (width 6, activation_slope 0.1) on P[kappa(Q)(rho) is non-increasing along the whole rho
grid], a step counting as non-increasing when kappa(rho_{k+1}) <= kappa(rho_k) (1 + 1e-12):
reproduced when its one-sided 95% Clopper-Pearson lower bound >= settings.high_probability;
not reproduced when its one-sided upper bound < settings.high_probability; inconclusive
otherwise. P[kappa(1) < kappa(0)], P[s_1(Q) non-decreasing], P[every s_i(Q) non-decreasing],
the share of grid steps on which kappa decreases, how often the pattern D2 changes along the
path, and the same fractions for kappa((D2 W2 D1 W1 + rho I) D0) (the reading of Figure 8's axis
labels) are reported as context.
"""

from __future__ import annotations

import numpy as np

from svperturb.analysis.claims.common import Claim, Outcome, Results, fmt, fmt_ci, median_ci
from svperturb.analysis.fit import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    REPRODUCED,
    FitSettings,
    clopper_pearson,
    combine_verdicts,
)
from svperturb.linalg.spectra import singular_values
from svperturb.theory.bounds import rounding_tolerance

FIGURE_2A = (-0.4, -0.2, -0.1)  # Mo = diag(-0.4, -0.2, -0.1)
FIGURE_2A_KINK = 0.25  # where |rho - 0.4| = |rho - 0.1|
PAPER_PATHS_POINT = {"distribution": "gaussian", "width": 15}
PAPER_TOY_POINT = {"width": 6, "activation_slope": 0.1}
MONOTONE_RELATIVE = 1e-12  # a step of kappa may rise by this much (relative) and still count as flat
NEAR_CROSSING = (1e-2, 1e-3)  # min over rho, i of (s_i - s_{i+1}) / s_1 below these: near a crossing


# ---------------------------------------------------------------------------------------------
# Figure 2(a): the deterministic example


def figure_2a_paths(rhos) -> np.ndarray:
    """s_i(diag(-0.4, -0.2, -0.1) + rho I) for every rho, by LAPACK: shape (len(rhos), 3)."""
    rhos = np.asarray(rhos, dtype=float)
    stack = np.diag(FIGURE_2A)[None] + rhos[:, None, None] * np.eye(3)
    return singular_values(stack)


def figure_2a_closed_form(rhos) -> np.ndarray:
    """|rho - 0.4|, |rho - 0.2|, |rho - 0.1| sorted decreasingly: shape (len(rhos), 3)."""
    rhos = np.asarray(rhos, dtype=float)
    return -np.sort(-np.abs(rhos[:, None] + np.array(FIGURE_2A)), axis=1)


def figure_2a_check(rhos) -> dict:
    """The three checks of part (a) on the grid `rhos` (see the module docstring)."""
    rhos = np.asarray(sorted(rhos), dtype=float)
    computed, exact = figure_2a_paths(rhos), figure_2a_closed_form(rhos)
    tol = float(rounding_tolerance(exact.max(), 3))
    error = float(np.abs(computed - exact).max())
    s1 = computed[:, 0]
    h = float(np.diff(rhos).max())
    argmin = float(rhos[np.argmin(s1)])
    slopes = np.diff(s1) / np.diff(rhos)
    left = rhos[1:] <= FIGURE_2A_KINK + 1e-12
    right = rhos[:-1] >= FIGURE_2A_KINK - 1e-12
    slope_tol = 4 * tol / float(np.diff(rhos).min())
    slope_error = float(max(np.abs(slopes[left] + 1).max(initial=0), np.abs(slopes[right] - 1).max(initial=0)))
    checks = {
        "matches_closed_form": error <= tol,
        "minimum_at_kink": abs(argmin - FIGURE_2A_KINK) <= h / 2 + 1e-12,
        "slopes_minus_one_then_plus_one": bool(left.any() and right.any() and slope_error <= slope_tol),
    }
    return {"grid_points": len(rhos), "grid_step": h, "max_error": error, "tolerance": tol,
            "s1_argmin_rho": argmin, "slope_error": slope_error, "slope_tolerance": slope_tol,
            "s1_at_0": float(s1[0]), "s1_min": float(s1.min()), "s1_at_1": float(s1[-1]),
            **checks, "passed": all(checks.values())}


# ---------------------------------------------------------------------------------------------
# Claim 15


def _fraction(k: int, total: int, settings: FitSettings) -> dict:
    low, high = clopper_pearson(k, total, settings.confidence)
    return {"count": int(k), "N": int(total), "fraction": k / total if total else float("nan"),
            "ci": (low, high)}


def _fraction_text(label: str, f: dict) -> str:
    return f"{label} {f['fraction']:.4f} {fmt_ci(f['ci'])} ({f['count']} of {f['N']:,})"


def _path_statistics(data, settings: FitSettings) -> dict:
    total = len(data["two_extrema"])
    s1_drop = data["s1_slope_drop"]
    min_gap = data["min_gap"]
    zeros = data["zeros_of_s_min"]
    stats = {
        "N": total,
        "grid_points": len(data.point["skip"]),
        "two_isolated_extrema": _fraction(int(data["two_isolated_extrema"].sum()), total, settings),
        "two_extrema": _fraction(int(data["two_extrema"].sum()), total, settings),
        "nonconvex": _fraction(int((data["nonconvex_count"] > 0).sum()), total, settings),
        "s1_nondecreasing": _fraction(int(data["s1_nondecreasing"].sum()), total, settings),
        "with_kink": _fraction(int((zeros > 0).sum()), total, settings),
        "mean_kinks": float(zeros.mean()),
        "kinks_seen_on_grid": _fraction(int((data["kinks_on_grid"] == zeros).sum()), total, settings),
        "largest_s1_slope_drop": float(s1_drop.max()),
        "smallest_min_gap": float(min_gap.min()),
        "median_max_extrema": float(np.median(data["max_extrema"])),
    }
    for threshold in NEAR_CROSSING:
        stats[f"min_gap_below_{threshold:g}"] = _fraction(int((min_gap < threshold).sum()), total, settings)
    return stats


def figure_2(results: Results, settings: FitSettings) -> Outcome:
    points = results.points("rho_paths")
    if not points:
        return Outcome("needs the rho_paths study", INCONCLUSIVE)
    part_a = figure_2a_check(points[0].point["skip"])
    verdict_a = REPRODUCED if part_a["passed"] else NOT_REPRODUCED
    text_a = (f"(a) diag(-0.4, -0.2, -0.1) + rho I on {part_a['grid_points']} grid points: largest "
              f"deviation from the closed form {part_a['max_error']:.2g} (rounding {part_a['tolerance']:.2g}); "
              f"s_1 falls from {fmt(part_a['s1_at_0'])} to {fmt(part_a['s1_min'])} at rho = "
              f"{fmt(part_a['s1_argmin_rho'])} and rises to {fmt(part_a['s1_at_1'])}, slopes -1 | +1 "
              f"(off by {part_a['slope_error']:.2g}): non-monotone, kink at 0.25")
    evidence = {"a": part_a}
    if part_a["passed"]:
        headline = [f"(a) matches the closed form, kink at rho = {fmt(part_a['s1_argmin_rho'])}"]
    else:
        headline = [(f"(a) fails: largest deviation {part_a['max_error']:.2g} (rounding "
                     f"{part_a['tolerance']:.2g}), s_1's minimum at rho = {fmt(part_a['s1_argmin_rho'])}, "
                     f"slopes off by {part_a['slope_error']:.2g}")]
    parts, verdict_b = [], None
    for data in sorted(points, key=lambda p: (p.point["distribution"], p.point["width"])):
        p = data.point
        stats = _path_statistics(data, settings)
        key = f"{p['distribution']}/width={p['width']}"
        evidence[key] = stats
        judged = p["distribution"] == PAPER_PATHS_POINT["distribution"] and p["width"] == PAPER_PATHS_POINT["width"]
        if judged:
            f = stats["two_isolated_extrema"]
            lower = clopper_pearson(f["count"], f["N"], settings.confidence, "lower")[0]
            upper = clopper_pearson(f["count"], f["N"], settings.confidence, "upper")[1]
            verdict_b = (REPRODUCED if lower > 0 else
                         NOT_REPRODUCED if upper < settings.negligible_probability else INCONCLUSIVE)
            evidence[key].update({"judged": True, "lower": lower, "upper": upper})
            headline.append(f"(b) ≥ 2 isolated extrema of some s_i in {f['fraction']:.4f} {fmt_ci(f['ci'])} "
                            f"of N = {f['N']:,} paths")
        parts.append(
            f"{p['distribution']} n = {p['width']}{'' if judged else ' (not judged)'}, sigma = 0.3, "
            f"{stats['grid_points']} rho values, N = {stats['N']:,}: "
            + _fraction_text("P[some s_i has >= 2 isolated interior extrema]", stats["two_isolated_extrema"])
            + "; " + _fraction_text(">= 2 extrema of any kind", stats["two_extrema"])
            + "; " + _fraction_text("some s_i non-convex", stats["nonconvex"])
            + "; " + _fraction_text("s_1 non-decreasing", stats["s1_nondecreasing"])
            + f"; kinks (zeros of s_n on [0, 1]) {stats['mean_kinks']:.3g} per path, "
            + _fraction_text("at least one", stats["with_kink"])
            + "; " + _fraction_text("min gap (s_i - s_{i+1})/s_1 < 1e-2", stats["min_gap_below_0.01"])
            + ", " + _fraction_text("< 1e-3", stats["min_gap_below_0.001"])
            + f", smallest {stats['smallest_min_gap']:.2g} (no exact crossing); s_1 convex: largest "
            f"slope drop {stats['largest_s1_slope_drop']:.2g}")
    if verdict_b is None:
        verdict_b = INCONCLUSIVE
        parts.append("(b) not judged: needs rho_paths at distribution gaussian, width 15")
    evidence["verdicts"] = {"a": verdict_a, "b": verdict_b}
    measured = text_a + "; (b) " + "; ".join(parts)
    return Outcome(measured, combine_verdicts([verdict_a, verdict_b]), evidence, {}, "; ".join(headline))


# ---------------------------------------------------------------------------------------------
# Claim 16


def non_increasing(paths: np.ndarray) -> np.ndarray:
    """Per row: every step kappa[k+1] <= kappa[k] (1 + MONOTONE_RELATIVE)."""
    return (np.diff(paths, axis=1) <= MONOTONE_RELATIVE * np.abs(paths[:, :-1])).all(axis=1)


def non_decreasing(paths: np.ndarray) -> np.ndarray:
    """Per row (and trailing axes): every step s[k+1] >= s[k] (1 - MONOTONE_RELATIVE)."""
    return (np.diff(paths, axis=1) >= -MONOTONE_RELATIVE * np.abs(paths[:, :-1])).all(axis=1)


def _toy_statistics(data, settings: FitSettings) -> dict:
    kappa = data["kappa_Q"]
    skips = data.point["skip"]
    total = len(kappa)
    mono = non_increasing(kappa)
    stats = {
        "N": total,
        "grid_points": len(skips),
        "kappa_non_increasing": _fraction(int(mono.sum()), total, settings),
        "kappa_MD_non_increasing": _fraction(int(non_increasing(data["kappa_MD"]).sum()), total, settings),
        "s1_non_decreasing": _fraction(int(non_decreasing(data["s1_Q"]).sum()), total, settings),
        "all_s_non_decreasing": _fraction(int(non_decreasing(data["s_MD"]).all(axis=-1).sum()), total, settings),
        "share_of_decreasing_steps": float((np.diff(kappa, axis=1) < 0).mean()),
        "D2_changes": _fraction(int((data["pattern_changes_layer=2"] > 0).sum()), total, settings),
        "earlier_pattern_changes": int(sum(int(data[f"pattern_changes_layer={k}"].sum()) for k in (-1, 0, 1))),
        "dense_non_increasing": _fraction(int(non_increasing(data["kappa_MD_dense"]).sum()), total, settings),
    }
    if data.point["activation_slope"] != 0:  # with eta = 0, MD is singular for every rho
        poles = data["kappa_poles"] > 0
        stats["with_pole"] = _fraction(int(poles.sum()), total, settings)
        stats["non_increasing_without_pole"] = _fraction(int(mono[~poles].sum()), int((~poles).sum()), settings)
        stats["dense_with_pole"] = _fraction(int((data["kappa_poles_dense"] > 0).sum()), total, settings)
    if skips[0] == 0 and skips[-1] == 1:
        k0, k1 = kappa[:, 0], kappa[:, -1]
        stats["kappa1_below_kappa0"] = _fraction(int((k1 < k0).sum()), total, settings)
        dense = data["kappa_MD_dense"]
        stats["dense_kappa1_below_kappa0"] = _fraction(int((dense[:, -1] < dense[:, 0]).sum()), total, settings)
        for name, values in (("kappa0", k0), ("kappa1", k1), ("log10_ratio", np.log10(k1 / k0))):
            median, ci = median_ci(values, settings)
            stats[f"median_{name}"] = {"median": median, "ci": ci}
    return stats


def toy_network(results: Results, settings: FitSettings) -> Outcome:
    points = results.points("toy_network")
    if not points:
        return Outcome("needs the toy_network study", INCONCLUSIVE)
    parts, evidence, verdict, headline = [], {}, None, ""
    for data in sorted(points, key=lambda p: (p.point["width"], p.point["activation_slope"])):
        p = data.point
        stats = _toy_statistics(data, settings)
        key = f"width={p['width']}/activation_slope={p['activation_slope']:g}"
        evidence[key] = stats
        judged = (p["width"] == PAPER_TOY_POINT["width"]
                  and np.isclose(p["activation_slope"], PAPER_TOY_POINT["activation_slope"]))
        f = stats["kappa_non_increasing"]
        if judged:
            lower = clopper_pearson(f["count"], f["N"], settings.confidence, "lower")[0]
            upper = clopper_pearson(f["count"], f["N"], settings.confidence, "upper")[1]
            verdict = (REPRODUCED if lower >= settings.high_probability else
                       NOT_REPRODUCED if upper < settings.high_probability else INCONCLUSIVE)
            evidence[key].update({"judged": True, "lower": lower, "upper": upper})
            headline = (f"kappa(Q) non-increasing in rho in {f['fraction']:.4f} {fmt_ci(f['ci'])} of N = "
                        f"{f['N']:,} networks (the claim needs ≥ {settings.high_probability:g})")
            if "with_pole" in stats:
                headline += f"; {stats['with_pole']['fraction']:.4f} have kappa infinite at some rho"
        text = (f"n = {p['width']}, eta = {p['activation_slope']:g}{'' if judged else ' (not judged)'}, "
                f"{stats['grid_points']} rho values, N = {stats['N']:,}: "
                + _fraction_text("P[kappa(Q) non-increasing in rho]", f))
        if "kappa1_below_kappa0" in stats:
            ratio = stats["median_log10_ratio"]
            text += ("; " + _fraction_text("P[kappa(1) < kappa(0)]", stats["kappa1_below_kappa0"])
                     + f", median kappa(Q) {fmt(stats['median_kappa0']['median'], 3)} -> "
                     f"{fmt(stats['median_kappa1']['median'], 3)}, median log10 kappa(1)/kappa(0) "
                     f"{fmt(ratio['median'], 3)} {fmt_ci(ratio['ci'], 3)}")
        text += ("; " + _fraction_text("P[s_1(Q) non-decreasing]", stats["s1_non_decreasing"])
                 + "; " + _fraction_text("P[every s_i(Q) non-decreasing]", stats["all_s_non_decreasing"]))
        if "with_pole" in stats:
            text += ("; " + _fraction_text("P[kappa infinite at some rho in [0, 1], i.e. D1 W1 has a real "
                                           "eigenvalue in [-1, 0]]", stats["with_pole"])
                     + ", " + _fraction_text("non-increasing among the others",
                                             stats["non_increasing_without_pole"]))
        text += (f"; kappa decreases on {stats['share_of_decreasing_steps']:.1%} of grid steps; "
                 + _fraction_text("D2 changes along the path", stats["D2_changes"])
                 + f" (D_-1, D0, D1 changed {stats['earlier_pattern_changes']} times); with the skip across "
                 f"f1 and f2 (Figure 8's labels, (D2 W2 D1 W1 + rho I) D0): "
                 + _fraction_text("P[non-increasing]", stats["dense_non_increasing"]))
        if "dense_kappa1_below_kappa0" in stats:
            text += ", " + _fraction_text("P[kappa(1) < kappa(0)]", stats["dense_kappa1_below_kappa0"])
        if "dense_with_pole" in stats:
            text += ", " + _fraction_text("P[pole in [0, 1]]", stats["dense_with_pole"])
        parts.append(text)
    if verdict is None:
        verdict = INCONCLUSIVE
        parts.append("not judged: needs toy_network at width 6, activation_slope 0.1")
    return Outcome("; ".join(parts), verdict, evidence, {}, headline)


CLAIMS: tuple[Claim, ...] = (
    Claim(15, "Singular-value paths over rho (Figure 2)",
          "Figure 2, Example 1: (a) for Mo = diag(-0.4, -0.2, -0.1) even the largest singular value "
          "of Mo + rho I is not increasing and not everywhere differentiable on [0, 1]; (b) for a "
          "15 x 15 Gaussian Mo with sigma = 0.3 the singular values may be non-convex and may have "
          "several extrema even without coinciding with others.",
          ("rho_paths",), figure_2, source="2203.03099"),
    Claim(16, "Toy network: kappa decreases with rho (Figure 8)",
          "Numerical validation, Figure 8: in the four-layer leaky-ReLU toy network (158) with a "
          "skip rho in layer 1, the singular values of Q for layer 0 increase steadily with rho and "
          "the condition number decreases steadily with rho (8 realisations).",
          ("toy_network",), toy_network, source="2203.03099"),
)
