"""Claims 11 and 12: ReLU with random weights (Theorem 39, Corollary 40) and ReLU shrinks singular
values (Lemma 24, Proposition 25) (study relu_layer); and the depth summary (study depth, not a
numbered claim).

Claim 11 verdict rule, fixed before looking at the data. A cell is (n, r, m/n, theta, bound) with
bound in {(128), (129) with r' = 2, (151)} at a Gaussian, eta = 0 grid point where the theorem's
numerical hypotheses hold (4 < theta <= 2 sqrt(n), r > 2 + 2 nu + theta, resp. r > 2 + 2 n + theta
for (151); the study marks other cells -1). Its N samples give the number H of samples where the
bound holds and the number e of exceptional events E (E_s1 = {s_1(W1) >= 1} for (128), (151);
E_tau(2) = {tau_low(W1) <= -2/r} for (129), as the theorem states them). The theorem says
P[hold] >= g - P[E], g = 1 - 2 exp(-theta^2/2). With one-sided Clopper-Pearson bounds at the
configured confidence:
- `not reproduced` if some cell has upper(H) < g - upper(e): the bound fails more often than the
  theorem allows even for the largest P[E] the data admit;
- `reproduced` if every cell has lower(H) >= g - lower(e): it holds at least as often as the
  theorem guarantees even for the smallest plausible P[E]; with no failures and no exceptional
  event this needs alpha^(1/N) >= g, i.e. N >= ln(alpha) / ln(g) samples per cell
  (alpha = 1 - confidence: 6,700 at theta = 4.1, 12,530 at 4.25, 37,400 at 4.5, 400,000 at 5,
  5.6 million at 5.5 for 95 %);
- `inconclusive` otherwise, and when no cell is applicable.
The proof of (128) and (151) actually uses s_1(W1) <= 1/r ((145), (146), (150)), not s_1(W1) < 1:
the count of {s_1(W1) >= 1/r} is reported beside E_s1, and a failing sample inside that event is
named. How loose the bounds are: the median of kappa / bound per bound with its order-statistic
interval.

Claim 12 verdict rule, fixed before looking at the data: checks are every sample, every rho,
both sides (M D and D M); Lemma 24 (80) for every i at eta = 0 and for i = 1 at eta != 0 (the
paper's remark), a violation being s~_i > s_i + 16 n eps s_1(M); (82) at eta = 0, a violation
being sum |s_i - s~_i|^2 > bound + 16 n eps ||M||_F^2; (81) at eta = 0, a violation being a
disagreement between its four members above 16 n eps ||M||_F^2. Any violation -> `not
reproduced`; none -> `reproduced`; no eta = 0 grid point -> `inconclusive`. Reported beside it,
not judged: (80) for every i at eta != 0 (it follows from s_i(M D) <= s_i(M) ||D||, |eta| <= 1),
the Hoffman-Wielandt form of (82) at eta != 0, and the median kappa((D1 W1 + I) D) per eta and m/n.
"""

from __future__ import annotations

import math

import numpy as np

from svperturb.analysis.claims.common import (
    Claim,
    Outcome,
    Results,
    at_skip,
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
from svperturb.sampling.ensembles import active_count
from svperturb.studies import depth, relu_layer
from svperturb.studies.relu_layer import R_PRIME, THEOREM_39

STUDY = relu_layer.NAME
LABELS = {"128": "(128)", "129": "(129), r' = 2", "151": "(151)"}


def samples_needed(theta: float, confidence: float) -> int:
    """Samples for which zero failures put the one-sided lower Clopper-Pearson bound of P[hold],
    alpha^(1/N), at or above 1 - 2 exp(-theta^2/2)."""
    allowed = 2 * math.exp(-theta**2 / 2)
    return math.ceil(math.log(1 - confidence) / math.log1p(-allowed))


def exceptional_counts(data) -> dict[str, np.ndarray]:
    """Per-sample exceptional events of Theorem 39 at a grid point (booleans)."""
    r = data.point["weight_scale"]
    s1_w, tau_low_w = data["s1_W"], data["tau_low_W"]
    return {
        "E_s1": s1_w >= 1,  # the event as Theorem 39 states it
        "E_s1_proof": s1_w >= 1 / r,  # the event the proof of (128), (151) needs ((145), (150))
        "E_tau": tau_low_w <= -R_PRIME / r,  # (135) with r' = 2
    }


def theorem39_cells(results: Results, settings: FitSettings) -> list[dict]:
    """Every applicable cell of claim 11 with its counts, bounds and cell verdict."""
    cells = []
    alpha_side = settings.confidence
    for data in results.points(STUDY, distribution="gaussian", activation_slope=0.0):
        p = data.point
        if 1.0 not in [float(s) for s in p["skip"]]:
            continue
        events = exceptional_counts(data)
        thetas = sorted(p["theta"])
        m = active_count(p["width"], p["activity"])
        kappa_one = at_skip(data, "kappa", 1.0)
        for key in THEOREM_39:
            holds_all, ratio_all = data[f"holds_{key}"], data[f"ratio_{key}"]
            for t, theta in enumerate(thetas):
                holds = holds_all[:, t]
                applicable = holds >= 0
                if not applicable.any():
                    continue
                n_samples = int(applicable.sum())
                held = int((holds == 1).sum())
                event = events["E_tau" if key == "129" else "E_s1"][applicable]
                e = int(event.sum())
                g = 1 - 2 * math.exp(-theta**2 / 2)
                hold_lower = clopper_pearson(held, n_samples, alpha_side, "lower")[0]
                hold_upper = clopper_pearson(held, n_samples, alpha_side, "upper")[1]
                e_lower = clopper_pearson(e, n_samples, alpha_side, "lower")[0]
                e_upper = clopper_pearson(e, n_samples, alpha_side, "upper")[1]
                if hold_upper < g - e_upper:
                    verdict = NOT_REPRODUCED
                elif hold_lower >= g - e_lower:
                    verdict = REPRODUCED
                else:
                    verdict = INCONCLUSIVE
                failing = np.flatnonzero(holds == 0)
                ratio = ratio_all[applicable, t]
                kappa = kappa_one[applicable]
                med, med_ci = median_ci(ratio, settings)
                cells.append({
                    "width": p["width"], "weight_scale": p["weight_scale"], "activity": p["activity"],
                    "m": m, "nu": float(relu_layer.theorem39_bounds(p)["nu"]), "theta": theta,
                    "bound": key, "samples": n_samples, "held": held, "failed": n_samples - held,
                    "hold_lower": hold_lower, "hold_upper": hold_upper,
                    "exceptional": e, "exceptional_upper": e_upper,
                    "exceptional_s1_proof": int(events["E_s1_proof"][applicable].sum()),
                    "guarantee_without_E": g, "guarantee_high": g - e_lower, "guarantee_low": g - e_upper,
                    "samples_needed": samples_needed(theta, settings.confidence),
                    "failures_in_proof_event": int(events["E_s1_proof"][failing].sum()),
                    "first_failure": int(failing[0]) if failing.size else None,
                    "ratio_median": med, "ratio_median_ci": med_ci,
                    "ratio_quantiles": [float(q) for q in np.nanquantile(ratio, [0.0, 0.5, 0.99, 1.0])],
                    "kappa_quantiles": [float(q) for q in np.nanquantile(kappa, [0.0, 0.5, 0.99, 1.0])],
                    "bound_median": float(np.nanmedian(kappa / ratio)),
                    "verdict": verdict,
                })
    return cells


def relu_random_weights(results: Results, settings: FitSettings) -> Outcome:
    cells = theorem39_cells(results, settings)
    if not cells:
        return Outcome("no applicable cell: Theorem 39 needs Gaussian weights, eta = 0, skip 1 and "
                       "4 < theta <= 2 sqrt(n), r > 2 + 2 nu + theta on the relu_layer grid", INCONCLUSIVE)
    verdict = combine_verdicts([c["verdict"] for c in cells])
    grid = {k: sorted({c[k] for c in cells}) for k in ("width", "weight_scale", "activity", "theta")}
    parts = []
    for key in THEOREM_39:
        mine = [c for c in cells if c["bound"] == key]
        if not mine:
            parts.append(f"{LABELS[key]} never applicable")
            continue
        failed = sum(c["failed"] for c in mine)
        total = sum(c["samples"] for c in mine)
        worst = min(mine, key=lambda c: c["hold_lower"] - c["guarantee_high"])
        ratios = [c["ratio_median"] for c in mine]
        loosest = min(mine, key=lambda c: c["ratio_median"])
        tightest = max(mine, key=lambda c: c["ratio_median"])
        event = "E_tau(2)" if key == "129" else "E_s1"
        events = sum(c["exceptional"] for c in mine)
        parts.append(
            f"{LABELS[key]} failed in {failed} of {total:,} samples over {len(mine)} cells "
            f"({event} occurred {events} times); cell closest to its guarantee n = {worst['width']}, r = "
            f"{worst['weight_scale']:g}, m/n = {worst['activity']:g}, theta = {worst['theta']:g}: "
            f"P[hold] >= {worst['hold_lower']:.6f} (N = {worst['samples']:,}) vs guarantee "
            f"{worst['guarantee_high']:.6f}; median kappa/bound {fmt(min(ratios), 3)} "
            f"{fmt_ci(loosest['ratio_median_ci'], 3)} to {fmt(max(ratios), 3)} "
            f"{fmt_ci(tightest['ratio_median_ci'], 3)}")
    proof_events = {}
    for c in cells:
        if c["bound"] == "128":
            proof_events[(c["width"], c["weight_scale"], c["activity"])] = (c["exceptional_s1_proof"], c["samples"])
    proof_total = sum(v[0] for v in proof_events.values())
    proof_samples = sum(v[1] for v in proof_events.values())
    proof_upper = clopper_pearson(proof_total, proof_samples, settings.confidence, "upper")[1]
    failures_in_proof = sum(c["failures_in_proof_event"] for c in cells)
    needed = {f"{t:g}": samples_needed(t, settings.confidence) for t in grid["theta"]}
    counts = {v: sum(c["verdict"] == v for c in cells) for v in (REPRODUCED, INCONCLUSIVE, NOT_REPRODUCED)}
    measured = (
        f"Theorem 39 / Corollary 40 at rho = 1, Gaussian W1, eta = 0, n in {grid['width']}, r in "
        f"{grid['weight_scale']}, m/n in {grid['activity']}, theta in {grid['theta']}; one-sided "
        f"{settings.confidence:.0%} Clopper-Pearson: " + "; ".join(parts)
        + f"; the proof's event s_1(W1) >= 1/r occurred {proof_total} times in {proof_samples:,} "
        f"matrices (rate <= {proof_upper:.2g}), {failures_in_proof} failures inside it; cells reproduced / "
        f"inconclusive / not reproduced: {counts[REPRODUCED]} / {counts[INCONCLUSIVE]} / "
        f"{counts[NOT_REPRODUCED]} (0 failures reach the guarantee 1 - 2 exp(-theta^2/2) from N = "
        + ", ".join(f"{n:,} at theta = {t}" for t, n in needed.items()) + ")")
    evidence = {"grid": grid, "cells": len(cells), "cell_verdicts": counts,
                "samples_needed": needed, "proof_event_s1_ge_1_over_r": proof_total,
                "proof_event_matrices": proof_samples, "proof_event_rate_upper": proof_upper,
                "failures_in_proof_event": failures_in_proof,
                "by_cell": [{k: v for k, v in c.items() if not k.endswith("_quantiles")} for c in cells]}
    tightest = min(cells, key=lambda c: c["hold_lower"] - c["guarantee_high"])
    headline = (f"{', '.join(LABELS[k].split(',')[0] for k in THEOREM_39)} failed in "
                f"{sum(c['failed'] for c in cells)} of {sum(c['samples'] for c in cells):,} samples, "
                f"{counts[REPRODUCED]} of {len(cells)} cells reproduced; tightest P[hold] ≥ "
                f"{tightest['hold_lower']:.6f} vs {tightest['guarantee_high']:.6f} (N = {tightest['samples']:,})")
    return Outcome(measured, verdict, evidence, {"cells": cells}, headline)


def _eta_label(eta: float) -> str:
    return "ReLU" if eta == 0 else f"eta = {eta:g}"


def relu_shrinks(results: Results, settings: FitSettings) -> Outcome:
    points = results.points(STUDY)
    if not any(p.point["activation_slope"] == 0 for p in points):
        return Outcome("needs relu_layer at activation_slope 0", INCONCLUSIVE)
    tally = {"80": [0, 0], "80_first": [0, 0], "81": [0, 0], "82": [0, 0],
             "80_all_leaky": [0, 0], "82_leaky": [0, 0]}  # [violations, checks]
    worst = {"81": 0.0, "80": math.inf, "80_first_leaky": math.inf, "80_all_leaky": math.inf,
             "82": math.inf, "82_leaky": math.inf}
    eps16 = 16 * np.finfo(float).eps
    for data in points:
        p = data.point
        n, eta = p["width"], p["activation_slope"]
        v80, v80_first, v82 = data["violations_80"], data["violations_80_first"], data["violations_82"]
        cells = v80.size  # samples x rho
        if eta == 0:
            tally["80"][0] += int(v80.sum())
            tally["80"][1] += cells * 2 * n
            error = data["identity_81_error"]
            tally["81"][0] += int((error > eps16 * n).sum())
            tally["81"][1] += cells
            worst["81"] = max(worst["81"], float(np.nanmax(error)))
            tally["82"][0] += int(v82.sum())
            tally["82"][1] += cells * 2
            worst["80"] = min(worst["80"], float(np.nanmin(data["shrinkage_80"])))
            worst["82"] = min(worst["82"], float(np.nanmin(data["slack_82"])))
        else:
            tally["80_first"][0] += int(v80_first.sum())
            tally["80_first"][1] += cells * 2
            tally["80_all_leaky"][0] += int(v80.sum())
            tally["80_all_leaky"][1] += cells * 2 * n
            tally["82_leaky"][0] += int(v82.sum())
            tally["82_leaky"][1] += cells * 2
            worst["80_first_leaky"] = min(worst["80_first_leaky"], float(np.nanmin(data["shrinkage_80_first"])))
            worst["80_all_leaky"] = min(worst["80_all_leaky"], float(np.nanmin(data["shrinkage_80"])))
            slack = data["slack_82"]
            if np.isfinite(slack).any():
                worst["82_leaky"] = min(worst["82_leaky"], float(np.nanmin(slack)))
    judged = ("80", "80_first", "81", "82")
    verdicts = [NOT_REPRODUCED if tally[k][0] else REPRODUCED for k in judged if tally[k][1]]
    verdict = combine_verdicts(verdicts)

    def rate(key):
        v, c = tally[key]
        return f"{v} of {c:,} (rate <= {clopper_pearson(v, c, settings.confidence, 'upper')[1]:.2g})"

    parts = [(f"(80) at eta = 0, every i, M D and D M: {rate('80')} violations beyond 16 n eps s_1(M), "
              f"smallest (s_i - s~_i)/s_1 {fmt(worst['80'], 3)}"),
             (f"(81) at eta = 0: {rate('81')} samples beyond 16 n eps, largest disagreement "
              f"{fmt(worst['81'], 3)} ||M||_F^2"),
             f"(82) at eta = 0: {rate('82')} violations, smallest relative slack {fmt(worst['82'], 3)}"]
    if tally["80_first"][1]:
        parts.append(f"(80) at eta != 0, i = 1: {rate('80_first')} violations (smallest relative "
                     f"difference {fmt(worst['80_first_leaky'], 3)}); not judged: every i at eta != 0 "
                     f"{rate('80_all_leaky')} (smallest {fmt(worst['80_all_leaky'], 3)}), "
                     f"Hoffman-Wielandt form of (82) {rate('82_leaky')}")
    description, table = _kappa_by_eta(results, settings)
    samples = sum(len(d["s1_W"]) for d in points)
    grid = {axis: sorted({d.point[axis] for d in points}) for axis in relu_layer.AXES + ("skip",)
            if axis != "skip"}
    grid["skip"] = sorted({s for d in points for s in d.point["skip"]})
    measured = (f"{samples:,} samples at {len(points)} grid points (n in {grid['width']}, r in "
                f"{grid['weight_scale']}, eta in {grid['activation_slope']}, m/n in {grid['activity']}, "
                f"rho in {grid['skip']}): " + "; ".join(parts) + f". {description}")
    evidence = {"samples": samples, "grid": grid,
                **{k: {"violations": v[0], "checks": v[1]} for k, v in tally.items()},
                "extremes": {k: (v if np.isfinite(v) else None) for k, v in worst.items()},
                "kappa_by_eta_activity": table}
    headline = f"{samples:,} samples: " + violations_text(
        sum(tally[k][0] for k in judged), sum(tally[k][1] for k in judged), settings, "checks of (80)-(82)")
    return Outcome(measured, verdict, evidence, {"kappa_by_eta_activity": table}, headline)


def _kappa_by_eta(results: Results, settings: FitSettings) -> tuple[str, list[dict]]:
    """Median kappa((D1 W1 + I) D) per (distribution, n, r, eta, m/n) with its interval; the
    sentence describes the largest Gaussian n at the smallest r."""
    table = []
    for data in results.points(STUDY):
        p = data.point
        kappa = at_skip(data, "kappa", 1.0)
        med, ci = median_ci(kappa, settings)
        conv_med, conv_ci = median_ci(at_skip(data, "kappa", 0.0), settings)
        table.append({"distribution": p["distribution"], "width": p["width"], "weight_scale": p["weight_scale"],
                      "activation_slope": p["activation_slope"], "activity": p["activity"],
                      "median": med, "ci": ci, "convnet_median": conv_med, "convnet_ci": conv_ci,
                      "samples": int(np.isfinite(kappa).sum())})
    if not table:
        return "", table
    dist = "gaussian" if any(t["distribution"] == "gaussian" for t in table) else table[0]["distribution"]
    n = max(t["width"] for t in table if t["distribution"] == dist)
    r = min(t["weight_scale"] for t in table if t["distribution"] == dist and t["width"] == n)
    rows = sorted((t for t in table if (t["distribution"], t["width"], t["weight_scale"]) == (dist, n, r)),
                  key=lambda t: (t["activation_slope"], t["activity"]))
    by_eta = {}
    for t in rows:
        by_eta.setdefault(t["activation_slope"], []).append(
            f"m/n = {t['activity']:g}: {fmt(t['median'])} {fmt_ci(t['ci'])}")
    text = (f"Descriptive, median kappa((D1 W1 + I) D) at {dist}, n = {n}, r = {r:g} "
            f"(N = {rows[0]['samples']:,} each): "
            + "; ".join(f"{_eta_label(eta)}: " + ", ".join(v) for eta, v in by_eta.items()))
    leaky = [t for t in rows if 0 < abs(t["activation_slope"]) < 1]
    if leaky:
        products = [t["median"] * abs(t["activation_slope"]) for t in leaky]
        text += (f" (for 0 < eta < 1, eta x median kappa lies in [{fmt(min(products), 3)}, "
                 f"{fmt(max(products), 3)}]: kappa ~ 1/eta, the eta entries of D set s_*)")
    return text, table


# ---------------------------------------------------------------------------------------------
# Depth (not a numbered claim)

DEPTH = "depth"
ARCH_LABELS = {"conv": "ConvNet Mo D", "single": "single skip (Mo + I) D",
               "layers": "per-layer skip prod (D_k W_k + I) D"}


def depth_table(results: Results, settings: FitSettings) -> list[dict]:
    """Per depth grid point: median kappa with intervals for the three architectures and the
    Clopper-Pearson intervals of P[kappa_conv >= kappa_single], P[kappa_conv >= kappa_layers],
    P[kappa_layers >= kappa_single]."""
    rows = []
    for data in results.points(DEPTH):
        p = data.point
        if not {0.0, 1.0} <= {float(s) for s in p["skip"]}:
            continue
        kappa = {"conv": at_skip(data, "kappa_single", 0.0), "single": at_skip(data, "kappa_single", 1.0),
                 "layers": at_skip(data, "kappa_layers", 1.0)}
        row = {axis: p[axis] for axis in ("distribution", "width", "weight_scale", "activation_slope",
                                          "activity", "depth")}
        row["samples"] = len(kappa["conv"])
        expected = depth.expected_rank(p)
        ranks = {"conv": at_skip(data, "rank_single", 0.0), "single": at_skip(data, "rank_single", 1.0),
                 "layers": at_skip(data, "rank_layers", 1.0)}
        for arch, values in kappa.items():
            row[f"{arch}_rank_deficient"] = int(np.sum(ranks[arch] < expected))
            med, ci = median_ci(values, settings)
            row[f"{arch}_median"], row[f"{arch}_ci"] = med, ci
            row[f"{arch}_undefined"] = int((~np.isfinite(values)).sum())
        for a, b in (("conv", "single"), ("conv", "layers"), ("layers", "single")):
            wins = int(np.sum(kappa[a] >= kappa[b]))
            row[f"P_{a}_ge_{b}"] = wins / row["samples"]
            row[f"P_{a}_ge_{b}_ci"] = clopper_pearson(wins, row["samples"], settings.confidence)
        rows.append(row)
    return sorted(rows, key=lambda r: (r["distribution"], r["width"], r["weight_scale"],
                                       r["activation_slope"], r["activity"], r["depth"]))


def depth_summary(results: Results, settings: FitSettings) -> tuple[str, dict, dict]:
    """(measured sentence, evidence, fits) for the depth study: median kappa per p for the
    ConvNet, the single skip over all p layers and the per-layer skip, with the probabilities
    that the ConvNet is worse conditioned. Descriptive; the paper makes no numerical claim."""
    rows = depth_table(results, settings)
    if not rows:
        return ("depth study not run (or its skip values lack 0 and 1)", {}, {})
    groups = {}
    for row in rows:
        key = (row["distribution"], row["width"], row["weight_scale"], row["activity"], row["activation_slope"])
        groups.setdefault(key, []).append(row)
    parts = []
    for (dist, n, r, activity, eta), mine in groups.items():
        per_p = []
        for row in mine:
            per_p.append(
                f"p = {row['depth']}: {fmt(row['conv_median'], 3)} {fmt_ci(row['conv_ci'], 3)} / "
                f"{fmt(row['single_median'], 3)} {fmt_ci(row['single_ci'], 3)} / "
                f"{fmt(row['layers_median'], 3)} {fmt_ci(row['layers_ci'], 3)}, P[conv >= single] "
                f"{row['P_conv_ge_single']:.4f} {fmt_ci(row['P_conv_ge_single_ci'], 4)}, P[conv >= "
                f"per-layer] {row['P_conv_ge_layers']:.4f} {fmt_ci(row['P_conv_ge_layers_ci'], 4)}")
        # the ConvNet's s_* comes from the inverse product (studies/depth.py); the skip
        # architectures' from the direct SVD, which must then see the exact rank
        deficient = sum(row[f"{arch}_rank_deficient"] for row in mine for arch in ("single", "layers"))
        beyond = sum(row["conv_rank_deficient"] for row in mine)
        caveat = (f"; {deficient} skip-architecture kappa values beyond float64 reach (numerical rank "
                  "below the exact rank: underestimated)" if deficient else "")
        caveat += (f"; ConvNet s_* below a direct SVD's reach in {beyond:,} samples, taken from the "
                   "inverse product" if beyond else "")
        parts.append(f"{dist}, n = {n}, r = {r:g}, m/n = {activity:g}, {_eta_label(eta)} "
                     f"(N = {mine[0]['samples']:,} per p{caveat}): " + "; ".join(per_p))
    measured = ("Depth: median kappa of ConvNet (D_p W_p ... D_1 W_1) D / single skip over the p layers "
                "(Mo + I) D / a skip at every layer prod_k (D_k W_k + I) D, with 95% order-statistic "
                "intervals, and Clopper-Pearson intervals of the fraction of samples in which the "
                "ConvNet is at least as badly conditioned: " + " | ".join(parts))
    evidence = {"rows": rows}
    return measured, evidence, {"depth": rows}


CLAIMS: tuple[Claim, ...] = (
    Claim(11, "ReLU with random weights (128), (129), (151)",
          "Theorem 39, Corollary 40: for D1 in D(m~, n, 0), D in D(m, n, 0), Gaussian W1 = K_n / "
          "(r sqrt(8 n)), 4 < theta <= 2 sqrt(n) and r > 2 + 2 nu + theta, kappa((D1 W1 + I) D) <= "
          "2 (1 + 1/r)/(1 - (2 + 2 nu + theta)/r) (128) and <= 2 (1 + s_1(W1))/(1 - (r' + r' nu + "
          "theta)/r) (129), and for r > 2 + 2 n + theta, c <= s_i <= C, kappa <= C/c (151), each with "
          "probability >= 1 - 2 exp(-theta^2/2) - P[E].",
          (STUDY,), relu_random_weights, source="2203.03099"),
    Claim(12, "ReLU shrinks singular values (80)-(82)",
          "Lemma 24, Proposition 25: for D in D(m, n, 0), s_i(M D) <= s_i(M) and s_i(D M) <= s_i(M) "
          "for every i (for leaky ReLU, eta != 0, for i = 1), the trace identity (81) and the "
          "perturbation bound (82).",
          (STUDY,), relu_shrinks, source="2203.03099"),
)
