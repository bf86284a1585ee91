"""Claim 10: the hard bounds of section 6.1, Lemma 27 (85), Lemma 28, Lemma 29 (86)-(87),
Theorem 30 (88), Theorem 31 (89)-(91), Theorem 32 (100)-(101) (study hard_bounds).

Verdict rule, fixed before looking at the data:
- The checks of a bound are the samples at the grid points where the bound's own hypothesis on
  (c, n, m, eta) holds (hard_bounds.bound_values: NaN elsewhere); for (85) every weight matrix W_i
  of a sample is a check. A violation is a value beyond its bound by more than the float64
  rounding allowance recorded by the study (16 n eps times the size of the compared quantity;
  16 n eps kappa (1 + kappa) for condition numbers).
- Any violation of any bound -> `not reproduced`. The first violating sample (grid points in
  sorted order, then sample index) is regenerated from the study's seeded draws
  (hard_bounds.sample_matrices) and its matrices W_i, D_i, D, Mo, M(1), M(1) D are saved to
  <results>/counterexamples/claim10.h5; the measured sentence names the bound, the grid point and
  the sample index.
- Otherwise every bound that had at least one check is `reproduced`; a bound never applicable
  on the grid (no check), or one with samples where its quantity is undefined (kappa of a
  matrix without a non-zero singular value, which the theorems exclude), is `inconclusive`, and
  so is the claim (combine_verdicts).
Per bound the sentence gives: violations V of N checks, the one-sided Clopper-Pearson upper bound
of the violation rate, and the smallest relative slack (bound - value)/bound found (for the lower
bound of (86): (s_n - (1 - c n))/(1 - c n)) with its weight pattern and c n.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import h5py
import numpy as np

from svperturb.analysis.claims.common import Claim, Outcome, Results, fmt, violations_text
from svperturb.analysis.fit import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    REPRODUCED,
    FitSettings,
    clopper_pearson,
    combine_verdicts,
)
from svperturb.sampling.ensembles import active_count
from svperturb.studies import hard_bounds as study

COUNTEREXAMPLE = Path("counterexamples") / "claim10.h5"

# The recorded quantity each bound constrains: (dataset, factor to undo the study's normalisation).
VALUES = {
    "85": ("spectral_ratio", lambda p: study.entry_bound(p) * p["width"]),  # max_i s_1(W_i)
    "28": ("max_entry_ratio", study.entry_bound),  # max |Mo[i,j]|
    "86_lower": ("sn_M", lambda p: 1.0),
    "86_upper": ("s1_M", lambda p: 1.0),
    "87": ("kappa_M", lambda p: 1.0),
    **{key: ("kappa_A", lambda p: 1.0) for key in study.TRAINED_LAYER_BOUNDS},
}
KAPPA_BOUNDS = ("87", *study.TRAINED_LAYER_BOUNDS)
HYPOTHESES = {
    "88": "eta = -1",
    "89": "eta = 0, 2 c n < 1/(1 + n)",
    "90": "eta = 0, m <= n (1 - c n)^2",
    "91": "eta = 0, 2 c n < 1/(1 + 2 m)",
    "100": "0 <= eta < 1, n >= 5, (1 - c n)^2 > 4 (1 - eta) sqrt(m)",
    "101": "0 <= eta < 1, 1 - c n > (1 - eta) m (3 c + 1)",
}


def _slack(value: float) -> str:
    """A relative slack; one within a few ulps of 0 is an attained bound (its sign is rounding)."""
    if value == 0:
        return "0 (attained)"
    if abs(value) < 1e-12:
        return f"0 (attained, {value:.1e} in float64)"
    return fmt(value, 3)


def _where(data, index: int) -> str:
    p = data.point
    return (f"n = {p['width']}, c n = {p['entry_bound']:g}, {p['weight_pattern']}, p = {p['depth']}, "
            f"eta = {p['activation_slope']:g}, m = {active_count(p['width'], p['activity'])}, "
            f"sample {data.sample_id(index)}")


def tally(points) -> dict[str, dict]:
    """Per bound: checks, violations, undefined samples, smallest relative slack and where, and the
    first violating (point, sample); plus a per-grid-point table for the figures."""
    out = {key: {"checks": 0, "violations": 0, "undefined": 0, "smallest": math.inf,
                 "smallest_at": None, "smallest_deep": math.inf, "first_violation": None,
                 "margin_used": -math.inf, "margin_used_at": None, "points": 0, "by_point": []}
           for key in study.BOUNDS}
    for data in points:
        p = data.point
        bounds = study.bound_values(p)
        for key, entry in out.items():
            if not np.isfinite(bounds[key]):
                continue
            slack = data[f"slack_{key}"]
            violations = data[f"violations_{key}"]
            finite = np.isfinite(slack)
            per_check = p["depth"] if key == "85" else 1
            entry["points"] += 1
            entry["checks"] += int(finite.sum()) * per_check
            entry["undefined"] += int((~finite).sum())
            entry["violations"] += int(violations.sum())
            if finite.any():
                i = int(np.nanargmin(slack))
                if slack[i] < entry["smallest"]:
                    entry["smallest"], entry["smallest_at"] = float(slack[i]), _where(data, i)
                if p["depth"] >= 2:  # Lemma 28 is about products: p = 1 is |D_1 W_1| <= c
                    entry["smallest_deep"] = min(entry["smallest_deep"], float(slack[i]))
                if key in KAPPA_BOUNDS and bounds[key] > 1:  # share of the margin bound - 1 used
                    kappa = data[VALUES[key][0]]
                    used = np.where(finite, (kappa - 1) / (bounds[key] - 1), -np.inf)
                    j = int(np.argmax(used))
                    if used[j] > entry["margin_used"]:
                        entry["margin_used"], entry["margin_used_at"] = float(used[j]), _where(data, j)
                entry["by_point"].append({
                    "width": p["width"], "entry_bound": p["entry_bound"],
                    "weight_pattern": p["weight_pattern"], "depth": p["depth"],
                    "activation_slope": p["activation_slope"], "activity": p["activity"],
                    "bound": bounds[key], "checks": int(finite.sum()) * per_check,
                    "min_relative_slack": float(slack[i]),
                    "median_relative_slack": float(np.median(slack[finite]))})
            bad = np.flatnonzero(violations > 0)
            if bad.size and entry["first_violation"] is None:
                entry["first_violation"] = (data, int(bad[0]))
    return out


def save_counterexample(results: Results, data, index: int, keys: list[str]) -> dict:
    """Regenerate the sample at row `index` of grid point `data` and store its matrices (atomically) at
    <results>/counterexamples/claim10.h5. Returns what was stored, with the recomputed values."""
    point = data.point
    sample = data.sample_id(index)  # the global sample index (faulty samples are left out of data)
    mats = study.sample_matrices(point, sample, sample + 1)
    mo = mats["Mo"][0]
    m1 = mo + np.eye(point["width"])
    a = m1 * mats["D"][0][None, :]
    path = results.directory / COUNTEREXAMPLE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    bounds = study.bound_values(point)
    recorded = {key: float(data[VALUES[key][0]][index] * VALUES[key][1](point)) for key in keys}
    # Recompute the violated quantities from the regenerated matrices (a check that they are the ones).
    s_m = np.linalg.svd(m1, compute_uv=False)
    s_a = np.linalg.svd(a, compute_uv=False)
    s_a_nonzero = s_a[s_a > len(s_a) * np.finfo(float).eps * s_a[0]]
    recomputed_all = {
        "85": float(np.linalg.svd(mats["W"][0], compute_uv=False)[:, 0].max()),
        "28": float(np.abs(mo).max()),
        "86_lower": float(s_m[-1]),
        "86_upper": float(s_m[0]),
        "87": float(s_m[0] / s_m[-1]),
        **{k: float(s_a[0] / s_a_nonzero[-1]) if s_a_nonzero.size else float("nan")
           for k in study.TRAINED_LAYER_BOUNDS},
    }
    recomputed = {key: recomputed_all[key] for key in keys}
    try:
        with h5py.File(tmp, "w") as fh:
            fh.attrs["claim"] = 10
            fh.attrs["study"] = study.NAME
            fh.attrs["point_json"] = json.dumps(point, sort_keys=True)
            fh.attrs["sample_index"] = sample
            fh.attrs["c"] = study.entry_bound(point)
            fh.attrs["m"] = active_count(point["width"], point["activity"])
            fh.attrs["violated"] = json.dumps({key: {
                "bound": study.BOUNDS[key][0] + ": " + study.BOUNDS[key][1],
                "bound_value": bounds[key], "recorded_value": recorded[key],
                "recomputed_value": recomputed[key]} for key in keys})
            for name, values in (("W", mats["W"][0]), ("D_hidden", mats["D_hidden"][0]),
                                 ("D", mats["D"][0]), ("Mo", mo), ("M1", m1), ("M1_D", a)):
                fh.create_dataset(name, data=values)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return {"path": str(path), "point": point, "sample_index": sample, "bounds": keys,
            "bound_values": {k: bounds[k] for k in keys}, "recorded": recorded, "recomputed": recomputed}


def hard_bounds_claim(results: Results, settings: FitSettings) -> Outcome:
    points = results.points(study.NAME)
    if not points:
        return Outcome("needs the hard_bounds study", INCONCLUSIVE)
    counts = tally(points)
    parts, verdicts, evidence = [], [], {}
    first = None  # (point order, sample index, data) of the first violation over all bounds
    order = {id(d): i for i, d in enumerate(points)}
    for key, entry in counts.items():
        label, what = study.BOUNDS[key]
        upper = clopper_pearson(entry["violations"], entry["checks"], settings.confidence, "upper")[1]
        evidence[key] = {"bound": f"{label}: {what}", "checks": entry["checks"],
                         "grid_points": entry["points"], "violations": entry["violations"],
                         "undefined": entry["undefined"], "violation_rate_upper": upper,
                         "smallest_relative_slack": entry["smallest"] if entry["checks"] else None,
                         "smallest_at": entry["smallest_at"],
                         "smallest_relative_slack_depth_ge_2": (
                             entry["smallest_deep"] if np.isfinite(entry["smallest_deep"]) else None),
                         "largest_margin_used": (entry["margin_used"]
                                                 if np.isfinite(entry["margin_used"]) else None),
                         "largest_margin_used_at": entry["margin_used_at"]}
        if entry["violations"]:
            verdicts.append(NOT_REPRODUCED)
            data, index = entry["first_violation"]
            if first is None or (order[id(data)], index) < (order[id(first[0])], first[1]):
                first = (data, index)
            parts.append(f"{label} {what}: {entry['violations']} VIOLATIONS of {entry['checks']:,} "
                         f"checks, first at {_where(data, index)}, smallest relative slack "
                         f"{fmt(entry['smallest'], 3)}")
        elif entry["checks"] == 0:
            verdicts.append(INCONCLUSIVE)
            parts.append(f"{label}: never applicable on this grid (needs {HYPOTHESES.get(key, 'c n < 1')})")
        else:
            undefined = (f", kappa undefined in {entry['undefined']:,} applicable samples"
                         if entry["undefined"] else "")
            deep = (f", at p >= 2 {fmt(entry['smallest_deep'], 3)}"
                    if key == "28" and np.isfinite(entry["smallest_deep"]) else "")
            if key in KAPPA_BOUNDS and np.isfinite(entry["margin_used"]):
                deep += (f"; largest (kappa - 1)/(bound - 1) {fmt(entry['margin_used'], 3)} "
                         f"({entry['margin_used_at']})")
            verdicts.append(INCONCLUSIVE if entry["undefined"] else REPRODUCED)
            parts.append(f"{label} {what}: {entry['violations']} of {entry['checks']:,} checks "
                         f"(rate <= {upper:.2g}){undefined}, smallest relative slack "
                         f"{_slack(entry['smallest'])} ({entry['smallest_at']}){deep}")
    counterexample_path = results.directory / COUNTEREXAMPLE
    if first is not None:
        data, index = first
        keys = [k for k in study.BOUNDS if np.isfinite(study.bound_values(data.point)[k])
                and data[f"violations_{k}"][index] > 0]
        saved = save_counterexample(results, data, index, keys)
        evidence["counterexample"] = saved
        lead = (f"first violation: {', '.join(study.BOUNDS[k][0] + ' ' + study.BOUNDS[k][1] for k in keys)} "
                f"at {_where(data, index)} (value {', '.join(fmt(saved['recorded'][k], 8) for k in keys)} vs "
                f"bound {', '.join(fmt(saved['bound_values'][k], 8) for k in keys)}; matrices in "
                f"{COUNTEREXAMPLE}); ")
    else:
        counterexample_path.unlink(missing_ok=True)  # a stale one from an earlier run would mislead
        lead = ""
    samples = sum(len(d["kappa_M"]) for d in points)
    grid = {axis: sorted({d.point[axis] for d in points}) for axis in study.AXES}
    measured = (f"{lead}{samples:,} samples at {len(points)} grid points (n in {grid['width']}, c n in "
                f"{grid['entry_bound']}, patterns {grid['weight_pattern']}, p in {grid['depth']}, eta in "
                f"{grid['activation_slope']}, m/n in {grid['activity']}); violations beyond float64 "
                f"rounding, one-sided {settings.confidence:.0%} Clopper-Pearson rate bound: " + "; ".join(parts))
    fits = {"by_point": {key: counts[key]["by_point"] for key in study.BOUNDS}}
    headline = (f"{samples:,} samples at {len(points)} grid points: " + violations_text(
        sum(e["violations"] for e in counts.values()), sum(e["checks"] for e in counts.values()), settings)
        + (f"; first: {', '.join(study.BOUNDS[k][0] for k in keys)}" if first is not None else ""))
    never = [study.BOUNDS[k][0] for k, e in counts.items() if e["checks"] == 0]
    if never:
        headline += f"; never applicable: {', '.join(never)}"
    return Outcome(measured, combine_verdicts(verdicts), {"samples": samples, "grid": grid, **evidence}, fits,
                   headline)


CLAIMS: tuple[Claim, ...] = (
    Claim(10, "Hard bounds (85)-(91), (100)-(101)",
          "Lemma 27-29, Theorems 30-32: for |W_i[j,k]| <= c < 1/n, s_1(W_i) <= c n, |Mo[i,j]| <= c, "
          "1 - c n <= s_n(M(1)) <= s_1(M(1)) <= 1 + c n, kappa(M(1)) <= (1 + c n)/(1 - c n), and the "
          "bounds (88)-(91), (100)-(101) on kappa(M(1) D) for absolute value, ReLU and leaky ReLU "
          "patterns D, each under its own condition; every sample, random and adversarial.",
          (study.NAME,), hard_bounds_claim, source="2203.03099"),
)
