"""Claims 13 and 14: the derivative of a singular value (Lemma 14) and the data factor (Lemma 8,
Corollary 9, Lemma 10, Corollary 11) (studies derivative, data_factor).

Verdict rules, fixed before looking at the data:

Claim 13 (Lemma 14, (66) and (65)). Every checked triple (sample, rho, i) -- those whose isolation
distance d_i (to s_{i-1}, s_{i+1}, and to -s_n for i = n) is >= 20 h, h = 2^-14 -- compares the
analytic derivative with the 7-point central difference against the tolerance of
perturbation.derivative_tolerances: a bound on truncation (Cauchy estimate on the disc of radius
d_i / 2 where s_i is analytic), rounding (16 n eps s_1 per SVD) and singular-vector error.
reproduced when no checked triple exceeds its tolerance, for (66) and for (65); not reproduced
when any does; inconclusive when nothing was checked. The error quantiles, the largest
error / tolerance and the share of excluded triples are reported.

Claim 14. Parts, each an exact statement checked on every sample beyond rounding (tolerances in
studies/data_factor.py):
(50) [with (56)]: ||M D W z||^2 = w^T Q^T Q w for the probe W (and the batch loss = w^T A w):
    not reproduced if any (sample, rho) with n > 1 differs beyond rounding; reproduced if none
    does; inconclusive without samples with n > 1. (50) is part of the claim: Lemma 8 says Q is the
    matrix of the loss's quadratic form, and section 3.5 reads kappa(Q) as the loss's eccentricity.
(51), (54), (57), (58): reproduced with zero violations, not reproduced with any.
(59): the dense A against its blocks; judged on points with batch_size > 1 (inconclusive without).
(63): judged on the samples where it applies (c = min_g s_n(M^(g) D^(g)) above rounding);
    inconclusive if it applies nowhere.
The verdict combines the parts (fit.combine_verdicts): one part not reproduced makes the claim not
reproduced. Reported beside it: the true quadratic form T = (M D) (x) z^T (its singular values
against ||z|| s_i(MD), kappa(T) against kappa(MD)) and, for batches, how often its condition
number exceeds the bound (63).
"""

from __future__ import annotations

import numpy as np

from svperturb.analysis.claims.common import (
    Claim,
    Outcome,
    Results,
    fmt,
    fmt_ci,
    median_ci,
    violations_text,
)
from svperturb.analysis.fit import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    REPRODUCED,
    FitSettings,
    clopper_pearson,
    combine_verdicts,
)
from svperturb.theory.perturbation import GAP_FACTOR, HALF_WIDTH, STEP


def _quantiles(x: np.ndarray) -> dict:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if not len(x):
        return {}
    q = np.quantile(x, [0.5, 0.9, 0.99, 1.0])
    return {"median": float(q[0]), "q90": float(q[1]), "q99": float(q[2]), "max": float(q[3])}


def derivative(results: Results, settings: FitSettings) -> Outcome:
    points = sorted(results.points("derivative"), key=lambda p: (p.point["distribution"], p.point["width"]))
    if not points:
        return Outcome("needs the derivative study", INCONCLUSIVE)
    totals = {"checked": 0, "excluded": 0, "violations_66": 0, "violations_65": 0}
    worst = {"66": 0.0, "65": 0.0}
    errors_66, errors_65, by_point, fits = [], [], {}, {}
    samples = 0
    for data in points:
        pt = data.point
        key = f"{pt['distribution']}/n={pt['width']}/r={pt['weight_scale']}"
        for name in totals:
            totals[name] += int(data[name].sum())
        e66, e65 = data["error_66"].astype(float), data["error_65"].astype(float)
        e66, e65 = e66[np.isfinite(e66)], e65[np.isfinite(e65)]
        errors_66.append(e66)
        errors_65.append(e65)
        for tag, largest in list(worst.items()):
            ratio = data[f"max_ratio_{tag}"]
            if np.isfinite(ratio).any():
                worst[tag] = max(largest, float(np.nanmax(ratio)))
        samples += len(data["s1_W"])
        by_point[key] = {"samples": len(data["s1_W"]), "checked": int(data["checked"].sum()),
                         "excluded": int(data["excluded"].sum()),
                         "violations_66": int(data["violations_66"].sum()),
                         "violations_65": int(data["violations_65"].sum()),
                         "error_66": _quantiles(e66), "error_65": _quantiles(e65),
                         "min_isolation": float(np.min(data["min_isolation"]))}
        fits[key] = {"width": pt["width"], "error_66": by_point[key]["error_66"]}
    all_66, all_65 = np.concatenate(errors_66), np.concatenate(errors_65)
    checked, excluded = totals["checked"], totals["excluded"]
    evidence = {**totals, "samples": samples, "step": STEP, "stencil_points": 2 * HALF_WIDTH + 1,
                "gap_threshold": GAP_FACTOR * STEP, "largest_ratio_66": worst["66"],
                "largest_ratio_65": worst["65"], "error_66": _quantiles(all_66),
                "error_65": _quantiles(all_65), "points": by_point}
    if checked == 0:
        return Outcome("no (sample, rho, i) isolated enough to check", INCONCLUSIVE, evidence, fits)
    violations = totals["violations_66"] + totals["violations_65"]
    verdict = REPRODUCED if violations == 0 else NOT_REPRODUCED
    median, ci = median_ci(all_66, settings)
    q66, q65 = evidence["error_66"], evidence["error_65"]
    widths = sorted({p.point["width"] for p in points})
    skips = sorted({s for p in points for s in p.point["skip"]})
    dists = sorted({p.point["distribution"] for p in points})
    measured = (
        f"{samples:,} matrices W1 ({', '.join(dists)}; n = {', '.join(map(str, widths))}), "
        f"rho in {skips}: s_i' = u_i^T v_i (66) against a {2 * HALF_WIDTH + 1}-point central "
        f"difference (h = 2^-14) on {checked:,} (sample, rho, i) with isolation d_i >= 20h = "
        f"{fmt(GAP_FACTOR * STEP, 3)} ({excluded:,} = {excluded / (checked + excluded):.2%} excluded): "
        f"{totals['violations_66']} beyond the derived tolerance (largest error/tolerance "
        f"{fmt(worst['66'], 2)}); |error| median {fmt(median, 2)} {fmt_ci(ci, 2)}, 99% "
        f"{fmt(q66['q99'], 2)}, max {fmt(q66['max'], 2)}; lambda_i' = 2 u_i^T Mo u_i + 2 rho (65) "
        f"against the difference of s_i^2: {totals['violations_65']} beyond tolerance (largest "
        f"ratio {fmt(worst['65'], 2)}), |error| median {fmt(q65['median'], 2)}, max {fmt(q65['max'], 2)}")
    headline = (f"{violations} of {checked:,} (sample, rho, i) beyond tolerance for (66), (65), largest "
                f"error/tolerance {fmt(max(worst.values()), 2)}; median |error| {fmt(median, 2)} {fmt_ci(ci, 2)}")
    return Outcome(measured, verdict, evidence, fits, headline)


def _sum(points, name, where=None) -> int:
    total = 0
    for data in points:
        values = data[name]
        total += int(values.sum() if where is None else values[where(data)].sum())
    return total


def _count(points, name) -> int:
    return sum(int(np.asarray(data[name]).size) for data in points)


def _max(points, name) -> float:
    values = [np.nanmax(data[name]) for data in points if np.isfinite(data[name]).any()]
    return float(max(values)) if values else float("nan")


def _exact_part(violations: int, checks: int) -> str:
    if checks == 0:
        return INCONCLUSIVE
    return REPRODUCED if violations == 0 else NOT_REPRODUCED


def data_factor(results: Results, settings: FitSettings) -> Outcome:
    points = sorted(results.points("data_factor"),
                    key=lambda p: tuple(str(p.point[k]) for k in sorted(p.point)))
    if not points:
        return Outcome("needs the data_factor study", INCONCLUSIVE)
    # (50) concerns datum 1 alone, which every batch size shares (nested draws): count each once,
    # at the smallest batch size of its grid point
    smallest = {}
    for p in points:
        key = tuple(sorted((k, str(v)) for k, v in p.point.items() if k != "batch_size"))
        if key not in smallest or p.point["batch_size"] < smallest[key].point["batch_size"]:
            smallest[key] = p
    wide = [p for p in smallest.values() if p.point["width"] > 1]
    batches = [p for p in points if p.point["batch_size"] > 1]
    parts, evidence, verdicts = [], {}, {}

    # (50) and (56): is Q the matrix of the loss's quadratic form?
    pairs = _count(wide, "violations_50")
    failed_50 = _sum(wide, "violations_50")
    batch_pairs = _count([p for p in points if p.point["width"] > 1], "violations_56")
    failed_56 = _sum([p for p in points if p.point["width"] > 1], "violations_56")
    err_50 = np.concatenate([d["err_50"].ravel() for d in wide]) if wide else np.array([])
    median_50, ci_50 = median_ci(err_50, settings) if len(err_50) else (float("nan"), (np.nan, np.nan))
    frac_ci = clopper_pearson(failed_50, pairs, settings.confidence) if pairs else (np.nan, np.nan)
    by_width = {}
    for n in sorted({d.point["width"] for d in wide}):
        x = np.concatenate([d["err_50"].ravel() for d in wide if d.point["width"] == n])
        by_width[n] = float(np.median(x))
    verdicts["50"] = _exact_part(failed_50 + failed_56, pairs + batch_pairs)
    evidence["50"] = {"pairs": pairs, "failed": failed_50, "failed_56": failed_56,
                      "fraction": failed_50 / pairs if pairs else None, "fraction_ci": frac_ci,
                      "batch_pairs": batch_pairs,
                      "median_relative_discrepancy": median_50, "median_ci": ci_50,
                      "median_by_width": by_width, "max_56": _max(wide, "err_56"),
                      "verdict": verdicts["50"]}

    # The true quadratic form T = (M D) (x) z^T
    true = {"max_form_error": _max(points, "err_true_form"),
            "max_spectrum_error": _max(points, "err_true_spectrum"),
            "max_kappa_vs_kappa_MD": max(float(np.nanmax(np.abs(d["kappa_true"] / d["kappa_MD"] - 1)))
                                         for d in points)}
    data_factors = np.concatenate([d["kappa_diag_z"].ravel() for d in points])
    true["median_kappa_diag_z"] = float(np.median(data_factors))
    above, applicable = 0, 0
    ratios = []
    for d in batches:
        bound = d["bound_63"]
        ok = np.isfinite(bound)
        applicable += int(ok.sum())
        above += int((d["kappa_true_batch"][ok] > bound[ok]).sum())
        ratios.append((d["kappa_true_batch"][ok] / bound[ok]).ravel())
    ratios = np.concatenate(ratios) if ratios else np.array([])
    true["batch_applicable"], true["batch_true_kappa_above_63"] = applicable, above
    true["batch_above_ci"] = clopper_pearson(above, applicable, settings.confidence) if applicable else None
    true["batch_ratio_quantiles"] = _quantiles(ratios)
    evidence["true_form"] = true

    # Q as defined: (51), (54), (59), (57), (58), (63)
    checks = {
        "51": (points, "violations_51", "err_51", "s_ij(Q) = s_i(MD)|z_j| (51)"),
        "54": (points, "violations_54", "err_54", "kappa(Q) = kappa(MD) kappa(diag z) (54)"),
        "59": (batches, "violations_59", "err_59", "eig(A) = eig of the blocks A_j (59)"),
        "57": (points, "violations_57", "ratio_57", "(57)"),
        "58": (points, "violations_58", "ratio_58", "(58)"),
    }
    for tag, (group, name, stat, label) in checks.items():
        if tag == "51":
            n_checks = sum(d[name].size * d.point["width"] ** 2 * d.point["batch_size"] for d in group)
        elif tag == "54":
            n_checks = sum(d[name].size * d.point["batch_size"] for d in group)
        elif tag in ("57", "58"):
            n_checks = sum(d[name].size * d.point["width"] ** 2 for d in group)
        else:
            n_checks = _count(group, name)
        violations = _sum(group, name)
        verdicts[tag] = _exact_part(violations, n_checks)
        # at G = 1 the bounds (57), (58) are attained (s_1j = |z_j| s_1): report how close batches come
        tight = (batches or group) if tag in ("57", "58") else group
        extreme = (_max(tight, stat) if tag != "58"
                   else float(min((np.nanmin(d[stat]) for d in tight if np.isfinite(d[stat]).any()),
                                  default=np.nan)))
        evidence[tag] = {"violations": violations, "checks": n_checks, "extreme": extreme,
                         "verdict": verdicts[tag]}
    applicable_63 = sum(int(np.isfinite(d["bound_63"]).sum()) for d in points)
    violations_63 = _sum(points, "violations_63")
    verdicts["63"] = _exact_part(violations_63, applicable_63)
    total_pairs = _count(points, "bound_63")
    # at G = 1 (63) is attained (kappa(Q) = kappa(MD) kappa(diag z) = C/c max|z|/min|z|): batches only
    tight = [np.nanmax(d["kappa_Q_batch"] / d["bound_63"]) for d in (batches or points)
             if np.isfinite(d["bound_63"]).any()]
    evidence["63"] = {"violations": violations_63, "applicable": applicable_63, "pairs": total_pairs,
                      "largest_kappa_over_bound": float(max(tight)) if tight else None,
                      "verdict": verdicts["63"]}

    samples = sum(len(d["kappa_MD"]) for d in points)
    widths = sorted({d.point["width"] for d in points})
    sizes = sorted({d.point["batch_size"] for d in points})
    e = evidence
    if failed_50:
        parts.append(
            f"(50) fails: ||MDWz||^2 != w^T Q^T Q w (w = W row by row, random W) beyond rounding on "
            f"{failed_50:,} of {pairs:,} (sample, rho) pairs with n > 1 ({failed_50 / pairs:.1%}, "
            f"95% CI {fmt_ci(frac_ci, 3)}), median relative discrepancy {fmt(median_50, 3)} "
            f"{fmt_ci(ci_50, 3)} (" + ", ".join(f"n = {n}: {fmt(v, 3)}" for n, v in by_width.items())
            + f"); batch loss vs w^T A w (56): {failed_56:,} of {batch_pairs:,} differ")
    else:
        parts.append(f"(50) holds: ||MDWz||^2 = w^T Q^T Q w within rounding on all {pairs:,} (sample, "
                     f"rho) pairs with n > 1 (largest relative discrepancy {fmt(_max(wide, 'err_50'), 2)})")
    parts.append(
        f"the true form is w^T ((MD)^T MD (x) z z^T) w (max relative error {fmt(true['max_form_error'], 2)}): "
        f"rank n, singular values ||z|| s_i(MD) (max relative error {fmt(true['max_spectrum_error'], 2)}), "
        f"kappa = kappa(MD) (max relative deviation {fmt(true['max_kappa_vs_kappa_MD'], 2)}), so no "
        f"data factor kappa(diag z) (median {fmt(true['median_kappa_diag_z'], 3)}) for one datum")
    if applicable:
        parts.append(
            f"for batches (G = {', '.join(str(g) for g in sizes if g > 1)}) the true form's kappa exceeds "
            f"the bound (63) on {above:,} of {applicable:,} applicable (sample, rho) "
            f"({above / applicable:.1%}, 95% CI {fmt_ci(true['batch_above_ci'], 3)}; ratio median "
            f"{fmt(true['batch_ratio_quantiles'].get('median'), 3)}, max "
            f"{fmt(true['batch_ratio_quantiles'].get('max'), 3)})")
    parts.append(
        f"for Q as defined ({samples:,} samples, n = {', '.join(map(str, widths))}, G = "
        f"{', '.join(map(str, sizes))}): (51) {e['51']['violations']} violations in {e['51']['checks']:,} "
        f"singular values (max error/s_1 {fmt(e['51']['extreme'], 2)}), (54) {e['54']['violations']} in "
        f"{e['54']['checks']:,} (max relative {fmt(e['54']['extreme'], 2)}), (59) {e['59']['violations']} "
        f"in {e['59']['checks']:,} batches (max error/lambda_max {fmt(e['59']['extreme'], 2)}), (57) "
        f"{e['57']['violations']} and (58) {e['58']['violations']} in {e['57']['checks']:,} (batches: max "
        f"lambda/(57) {fmt(e['57']['extreme'], 6)}, min lambda/(58) {fmt(e['58']['extreme'], 6)}), (63) "
        f"{violations_63} in {applicable_63:,} applicable of {total_pairs:,} (c = 0 elsewhere; batches: "
        f"max kappa/bound {fmt(e['63']['largest_kappa_over_bound'], 4)})")
    verdict = combine_verdicts(list(verdicts.values()))
    evidence["verdicts"] = verdicts
    failing = [tag for tag, v in verdicts.items() if v == NOT_REPRODUCED and tag != "50"]
    if failed_50:
        headline = (f"(50) ||MDWz||^2 = w^T Q^T Q w fails on {failed_50:,} of {pairs:,} (sample, rho) with "
                    f"n > 1 ({settings.confidence:.0%} CI {fmt_ci(frac_ci, 3)}), median discrepancy "
                    f"{fmt(median_50, 3)} {fmt_ci(ci_50, 3)}")
    elif failing:
        headline = "violated: " + ", ".join(
            f"({tag}) {e[tag]['violations']:,} of {e[tag].get('checks', applicable_63):,}" for tag in failing)
    else:
        headline = (f"(50) holds on {pairs:,} (sample, rho) with n > 1; (51)-(63): " + violations_text(
            sum(e[tag]["violations"] for tag in ("51", "54", "59", "57", "58", "63")),
            sum(e[tag]["checks"] for tag in ("51", "54", "59", "57", "58")) + applicable_63, settings))
    return Outcome("; ".join(parts), verdict, evidence, headline=headline)


CLAIMS = (
    Claim(13, "Derivative of a singular value", "Lemma 14 (65), (66); Corollary 7 (31)",
          ("derivative",), derivative, source="2203.03099"),
    Claim(14, "The data factor", "Lemma 8 (49)-(51), Corollary 9 (54), Lemma 10 (56)-(61), "
          "Corollary 11 (62)-(63)", ("data_factor",), data_factor, source="2203.03099"),
)
