"""Claims 17-23: sharpness at minima of deep matrix factorization (Kamber & Parhi, arXiv
2509.25783), on the sharpness study (docs/claims.md).

Only the paper's abstract is at hand: each claim states what was derived from it and tested
(docs/claims.md). "Flat" is not defined there, so the flatness statements are judged under two
readings, fixed before the data: R1, flat = the least lambda_max among all minimizers of M; R2,
flat = the least lambda_max along the layer rescalings W_i -> c_i W_i, prod c_i = 1, of a
minimizer. A statement that holds under one reading and fails under the other is
`inconclusive`, saying which reading it survives.

Tolerances (fixed before the data):
- rounding: lambda_max is computed from products of the W_i, each carrying an error of a few
  L d eps times the product of the factors' norms, so an exact equality or inequality is checked
  to within rounding(data) = 8 L N eps sum_i prod_(j != i) ||W_j||_F^2 (N = d^2, the operator's
  size; ||.||_F bounds ||.|| and covers cancellation in the products), plus, where lambda_max
  came from Lanczos (N > DENSE_LARGEST), that route's error bound LANCZOS_RTOL lambda_max.
- the least value over rescalings is an optimizer's, to RESCALING_TOLERANCE relative (its
  tolerance is 1e-13 on the value scaled to 1; the margin covers the eigensolver); only samples
  where it converged are used.
- "equal" norms across layers: relative spread max/min - 1 <= SPREAD_TOLERANCE. At a smooth
  minimum the value is flat to second order, so a value known to 1e-8 places the c_i within
  ~1e-4; SPREAD_TOLERANCE is ten times that. "Unequal" means a spread above 10 SPREAD_TOLERANCE.
"""

from __future__ import annotations

import numpy as np

from svperturb.analysis.claims.common import (
    Claim,
    Outcome,
    Results,
    fmt,
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
from svperturb.linalg.sharpness import DENSE_LARGEST, LANCZOS_RTOL

SOURCE = "2509.25783"
STUDY = "sharpness"
EPS = np.finfo(float).eps
RESCALING_TOLERANCE = 1e-8
SPREAD_TOLERANCE = 1e-3
FLAT_TOLERANCE = 1e-6  # R1: lambda_max within this (relative) of the balanced value counts as least


def rounding(data) -> np.ndarray:
    """Per sample, the absolute rounding allowance of lambda_max (module docstring)."""
    norms = data["frobenius_norm"] ** 2  # (samples, L)
    depth, size = norms.shape[1], data.point["width"] ** 2
    others = np.prod(norms, axis=1, keepdims=True) / norms  # prod_(j != i) ||W_j||_F^2
    route = LANCZOS_RTOL * data["lambda_max"] if size > DENSE_LARGEST else 0.0
    return 8 * depth * size * EPS * others.sum(axis=1) + route


def spread(values: np.ndarray) -> np.ndarray:
    """max / min - 1 across layers (last axis), per sample."""
    return values.max(axis=-1) / values.min(axis=-1) - 1


def _points(results: Results, **where):
    return results.points(STUDY, **where)


def _count(points, violated) -> tuple[int, int]:
    """(violations, checks) of `violated(data) -> bool array` over the points' samples."""
    flags = [np.asarray(violated(data)) for data in points]
    return int(sum(f.sum() for f in flags)), int(sum(f.size for f in flags))


def _verdict(violations: int, checks: int) -> str:
    return INCONCLUSIVE if checks == 0 else (REPRODUCED if violations == 0 else NOT_REPRODUCED)


def _reading_text(r1: str, r2: str) -> str:
    if r1 == r2:
        return f"{r1} under both readings"
    return (f"R1 (least over all minimizers): {r1}; R2 (least over rescalings): {r2}; the abstract "
            "does not define flat, so the verdict is inconclusive")


# ---------------------------------------------------------------------------------------------
# 17, 18: the closed forms


def depth_two(results: Results, settings: FitSettings) -> Outcome:
    points = _points(results, depth=2)
    violations, checks = _count(points, lambda d: np.abs(d["lambda_max"] - d["closed_form"]) > rounding(d))
    worst = max((float(np.max(np.abs(d["lambda_max"] / d["closed_form"] - 1))) for d in points),
                default=float("nan"))
    kappas = sorted({p.point["imbalance"] for p in points})
    text = (f"lambda_max = 2 (||W_1||^2 + ||W_2||^2) on {checks:,} depth-2 minimizers (kappa in "
            f"{kappas}, widths {sorted({p.point['width'] for p in points})}): "
            f"{violations_text(violations, checks, settings, 'samples')} beyond rounding; largest "
            f"relative difference {fmt(worst, 2)}")
    return Outcome(text, _verdict(violations, checks),
                   evidence={"violations": violations, "checks": checks,
                             "largest_relative_difference": worst},
                   headline=(f"{checks:,} depth-2 minimizers: {violations_text(violations, checks, settings)}"
                             f" beyond rounding; largest relative difference {fmt(worst, 2)}"))


def scalar(results: Results, settings: FitSettings) -> Outcome:
    points = _points(results, width=1)
    closed = _count(points, lambda d: np.abs(d["lambda_max"] - d["closed_form"]) > rounding(d))
    below = _count(points, lambda d: d["lambda_max"] < d["balanced_value"] - rounding(d))
    balanced = [p for p in points if p.point["imbalance"] == 0]
    attained = _count(balanced, lambda d: np.abs(d["lambda_max"] - d["balanced_value"]) > rounding(d))
    verdict = combine_verdicts([_verdict(*closed), _verdict(*below), _verdict(*attained)])
    text = (f"scalar factorization, depths {sorted({p.point['depth'] for p in points})}: "
            f"lambda_max = 2 sum_i prod_(j != i) w_j^2: {violations_text(*closed, settings, 'samples')}; "
            f"lambda_max >= 2 L |m|^(2 - 2/L): {violations_text(*below, settings, 'samples')}; "
            f"equality at the balanced minimizer (|w_i| = |m|^(1/L)): "
            f"{violations_text(*attained, settings, 'samples')}; all beyond rounding")
    return Outcome(text, verdict, evidence={"closed_form": closed, "below_least": below,
                                            "balanced_attains": attained},
                   headline=(f"{closed[1]:,} scalar minimizers: closed form "
                             f"{violations_text(*closed, settings)}; least value "
                             f"{violations_text(*below, settings)}"))


# ---------------------------------------------------------------------------------------------
# 19: the balanced value is the least


def balanced_least(results: Results, settings: FitSettings) -> Outcome:
    points = _points(results)
    below = _count(points, lambda d: d["lambda_max"] < d["balanced_value"] - rounding(d))
    balanced = [p for p in points if p.point["imbalance"] == 0]
    attained = _count(balanced, lambda d: np.abs(d["lambda_max"] - d["balanced_value"]) > rounding(d))
    rescaled = _count(points, lambda d: (d["least_over_rescalings"] < d["balanced_value"]
                                         * (1 - RESCALING_TOLERANCE) - rounding(d))
                      & (d["rescaling_converged"] == 1))
    ratio = np.concatenate([d["lambda_max"] / d["balanced_value"] for d in points
                            if d.point["imbalance"] == max(p.point["imbalance"] for p in points)])
    median, ci = median_ci(ratio, settings) if len(ratio) else (float("nan"), (np.nan, np.nan))
    verdict = combine_verdicts([_verdict(*below), _verdict(*attained), _verdict(*rescaled)])
    text = (f"lambda_max >= 2 L ||M||^(2 - 2/L) on every minimizer: {violations_text(*below, settings, 'samples')}; "
            f"balanced minimizers (kappa = 0) attain it: {violations_text(*attained, settings, 'samples')}; "
            f"no rescaling goes below it: {violations_text(*rescaled, settings, 'optimized samples')}; "
            f"at the largest kappa the median lambda_max / balanced value is {fmt(median)} "
            f"{fmt(ci[0])}-{fmt(ci[1])} (N = {len(ratio):,})")
    return Outcome(text, verdict,
                   evidence={"below": below, "attained": attained, "rescaled_below": rescaled,
                             "median_ratio_at_largest_kappa": median},
                   headline=(f"{below[1]:,} minimizers: lambda_max >= balanced value, "
                             f"{violations_text(*below, settings)}; kappa = 0 attains it"))


# ---------------------------------------------------------------------------------------------
# 20-22: flatness and the products ||A_i|| ||B_i||


def _rescaled(data, name: str) -> np.ndarray:
    """A per-layer norm after the optimal rescaling: ||A_i|| ||B_i|| / c_i, or ||c_i W_i||_F."""
    c = data["rescaling"]
    return data[name] / c if name == "factor_norm_product" else data[name] * c


def _optimized(data) -> np.ndarray:
    return data["rescaling_converged"] == 1


def _r1_flat(data) -> np.ndarray:
    return data["lambda_max"] <= data["balanced_value"] * (1 + FLAT_TOLERANCE) + rounding(data)


def equal_products_suffice(results: Results, settings: FitSettings) -> Outcome:
    points = _points(results)
    r1 = _count(points, lambda d: d["lambda_max_equal_products"]
                > d["balanced_value"] * (1 + FLAT_TOLERANCE) + rounding(d))
    by_depth, r2_total = {}, [0, 0]
    for depth in results.values(STUDY, "depth"):
        counted = _count(_points(results, depth=depth), lambda d: _optimized(d) & (
            d["lambda_max_equal_products"] > d["least_over_rescalings"] * (1 + RESCALING_TOLERANCE)
            + rounding(d)))
        checks = _count(_points(results, depth=depth), _optimized)[0]
        by_depth[depth] = (counted[0], checks)
        r2_total = [r2_total[0] + counted[0], r2_total[1] + checks]
    v1, v2 = _verdict(*r1), _verdict(*r2_total)
    per_depth = ", ".join(f"L = {L}: {v:,} of {n:,}" for L, (v, n) in by_depth.items())
    text = (f"Equal ||A_i|| ||B_i|| across layers (the minimizer rescaled to make them equal) gives "
            f"R1, the least lambda_max of all minimizers (2 L ||M||^(2-2/L)): "
            f"{violations_text(*r1, settings, 'samples')}; R2, the least over rescalings: "
            f"{violations_text(*r2_total, settings, 'optimized samples')} ({per_depth} samples "
            f"above the least); {_reading_text(v1, v2)}")
    return Outcome(text, v1 if v1 == v2 else INCONCLUSIVE,
                   evidence={"R1": r1, "R2": r2_total, "R2_by_depth": by_depth},
                   headline=(f"equal products give the least lambda_max: R1 {v1} "
                             f"({r1[0]:,} of {r1[1]:,} above it), R2 {v2} ({r2_total[0]:,} of "
                             f"{r2_total[1]:,} above the least over rescalings)"))


def equal_products_necessary(results: Results, settings: FitSettings) -> Outcome:
    points = [p for p in _points(results) if p.point["depth"] == 2 or p.point["width"] == 1]
    r2 = _count(points, lambda d: _optimized(d) & (spread(_rescaled(d, "factor_norm_product"))
                                                   > SPREAD_TOLERANCE))
    r2_checks = _count(points, _optimized)[0]
    r1 = _count(points, lambda d: _r1_flat(d) & (spread(d["factor_norm_product"]) > SPREAD_TOLERANCE))
    r1_checks = _count(points, _r1_flat)[0]
    v1, v2 = _verdict(r1[0], r1_checks), _verdict(r2[0], r2_checks)
    text = (f"At depth 2 and for scalar factorization, flat minimizers have equal ||A_i|| ||B_i||: "
            f"R1, among the {r1_checks:,} minimizers at the least lambda_max of all, "
            f"{r1[0]:,} with unequal products; R2, among the {r2_checks:,} optima over rescalings, "
            f"{r2[0]:,} with unequal products (spread > {SPREAD_TOLERANCE:g}); {_reading_text(v1, v2)}")
    return Outcome(text, v1 if v1 == v2 else INCONCLUSIVE,
                   evidence={"R1": [r1[0], r1_checks], "R2": [r2[0], r2_checks]},
                   headline=(f"depth 2 and scalar: unequal products at flat minimizers, R1 "
                             f"{r1[0]:,} of {r1_checks:,}, R2 {r2[0]:,} of {r2_checks:,}"))


def frobenius_unbalanced(results: Results, settings: FitSettings) -> Outcome:
    # depth-2 matrix factorization: for scalars the Frobenius norm is the spectral norm
    points = [p for p in _points(results, depth=2) if p.point["width"] >= 2]
    unequal = 10 * SPREAD_TOLERANCE
    r2 = _count(points, lambda d: _optimized(d) & (spread(_rescaled(d, "frobenius_norm")) > unequal))
    r2_checks = _count(points, _optimized)[0]
    r1 = _count(points, lambda d: _r1_flat(d) & (spread(d["frobenius_norm"]) > unequal))
    r1_checks = _count(points, _r1_flat)[0]
    # an existence statement: shown by one example; not finding one refutes nothing
    v1 = REPRODUCED if r1[0] else INCONCLUSIVE
    v2 = REPRODUCED if r2[0] else INCONCLUSIVE
    why = ("" if v1 == REPRODUCED else "; R1: the sampled minimizers at the least lambda_max of all "
           "(the balanced ones) have equal Frobenius norms by construction, so they neither show nor "
           "refute the existence of an unbalanced one")
    text = (f"Flat depth-2 minimizers that are not Frobenius balanced (||W_i||_F spread > {unequal:g}): R1, "
            f"{r1[0]:,} of {r1_checks:,} minimizers at the least lambda_max of all; R2, {r2[0]:,} of "
            f"{r2_checks:,} optima over rescalings; {_reading_text(v1, v2)}{why}")
    return Outcome(text, v1 if v1 == v2 else INCONCLUSIVE,
                   evidence={"R1": [r1[0], r1_checks], "R2": [r2[0], r2_checks]},
                   headline=(f"Frobenius-unbalanced flat minimizers found: R1 {r1[0]:,} of "
                             f"{r1_checks:,}, R2 {r2[0]:,} of {r2_checks:,}"))


# ---------------------------------------------------------------------------------------------
# 23: how loose the Cauchy-Schwarz sum is


def cauchy_schwarz(results: Results, settings: FitSettings) -> Outcome:
    exact = _count(_points(results, depth=2),
                   lambda d: np.abs(d["cauchy_schwarz_bound"] - d["lambda_max"]) > rounding(d))
    above = _count(_points(results), lambda d: d["lambda_max"] > d["cauchy_schwarz_bound"] + rounding(d))
    loose, medians = {}, {}
    for depth in [L for L in results.values(STUDY, "depth") if L >= 3]:
        points = _points(results, depth=depth)
        strict = _count(points, lambda d: d["cauchy_schwarz_bound"]
                        > d["lambda_max"] * (1 + FLAT_TOLERANCE) + rounding(d))
        loose[depth] = (strict[0], strict[1],
                        clopper_pearson(strict[0], strict[1], settings.confidence, "lower")[0])
        for kappa in results.values(STUDY, "imbalance", depth=depth):
            ratio = np.concatenate([d["cauchy_schwarz_bound"] / d["lambda_max"]
                                    for d in _points(results, depth=depth, imbalance=kappa)])
            medians[f"L={depth}, kappa={kappa:g}"] = median_ci(ratio, settings)
    strict_somewhere = all(k > 0 for k, _, _ in loose.values()) and bool(loose)
    verdict = combine_verdicts([_verdict(*exact), _verdict(*above),
                                REPRODUCED if strict_somewhere else NOT_REPRODUCED])
    largest = max(medians.items(), key=lambda kv: kv[1][0], default=("", (np.nan, (np.nan, np.nan))))
    text = (f"2 sum_i ||A_i||^2 ||B_i||^2 bounds lambda_max: {violations_text(*above, settings, 'samples')}; "
            f"it is exact at depth 2: {violations_text(*exact, settings, 'samples')}; strictly above "
            "at depth >= 3 in " + ", ".join(f"L = {L}: {k:,} of {n:,} (fraction >= {fmt(low, 2)})"
                                         for L, (k, n, low) in loose.items())
            + "; median ratio bound / exact by depth and kappa: "
            + ", ".join(f"{key} {fmt(m)} [{fmt(ci[0])}, {fmt(ci[1])}]" for key, (m, ci) in medians.items()))
    return Outcome(text, verdict,
                   evidence={"exact_at_depth_2": exact, "above": above,
                             "strict_by_depth": {str(k): v for k, v in loose.items()},
                             "median_ratio": {k: m for k, (m, _) in medians.items()}},
                   headline=(f"exact at depth 2 ({violations_text(*exact, settings)}), looser with "
                             f"depth and imbalance: median ratio up to {fmt(largest[1][0])} at "
                             f"{largest[0]}"))


ABSTRACT = "Kamber & Parhi, abstract"
SUFFICIENT = ("\"Having a constant product of the spectral norms of the left and right intermediate "
              "factors across layers is a sufficient condition for flatness.\"")
NECESSARY = ("\"in both depth-2 matrix and deep overparameterized scalar factorization, we show that "
             "this condition is both necessary and sufficient for flatness, which implies that flat "
             "minima are spectral-norm balanced even though they are not necessarily Frobenius-norm "
             "balanced.\"")
CLAIMS: tuple[Claim, ...] = (
    Claim(17, "Depth 2: lambda_max = 2 (||W_1||^2 + ||W_2||^2)",
          f"{ABSTRACT}: \"the first exact expression for the maximum eigenvalue of the Hessian of the "
          "squared-error loss at any minimizer\" (the expression itself is not at hand); derived "
          "here for depth 2: lambda_max = 2 (||W_1||^2 + ||W_2||^2) at every minimizer.",
          (STUDY,), depth_two, source=SOURCE),
    Claim(18, "Scalar factorization: closed form and least value 2 L |m|^(2 - 2/L)",
          f"{ABSTRACT} (exact expression), derived here for scalar factorization w_L ... w_1 = m: "
          "lambda_max = 2 sum_i prod_(j != i) w_j^2, least 2 L |m|^(2 - 2/L), reached where every "
          "|w_i| = |m|^(1/L).",
          (STUDY,), scalar, source=SOURCE),
    Claim(19, "The balanced value 2 L ||M||^(2 - 2/L) is the least over minimizers",
          f"{ABSTRACT} (exact expression), derived here: balanced factorizations have lambda_max = "
          "2 L ||M||^(2 - 2/L), the least among all minimizers of M.",
          (STUDY,), balanced_least, source=SOURCE),
    Claim(20, "A constant product ||A_i|| ||B_i|| across layers suffices for flatness",
          f"{ABSTRACT}: {SUFFICIENT} Flat is not defined there: read as R1, the least lambda_max "
          "over all minimizers of M, and as R2, the least over layer rescalings.",
          (STUDY,), equal_products_suffice, source=SOURCE),
    Claim(21, "Depth 2 and scalars: the constant product is also necessary",
          f"{ABSTRACT}: {NECESSARY} Here: the necessity, under readings R1 and R2.",
          (STUDY,), equal_products_necessary, source=SOURCE),
    Claim(22, "Depth 2: flat minima need not be Frobenius balanced",
          f"{ABSTRACT}: {NECESSARY} Here: the last part, for depth-2 matrix factorization (for "
          "scalars the two norms coincide), under readings R1 and R2.",
          (STUDY,), frobenius_unbalanced, source=SOURCE),
    Claim(23, "The Cauchy-Schwarz sum is exact at depth 2, loose beyond",
          "Not a statement of the abstract: lambda_max <= 2 sum_i ||A_i||^2 ||B_i||^2, derived "
          "here, with equality at depth 2; how loose it is by depth and imbalance, which tells how "
          "much the exact expression adds.",
          (STUDY,), cauchy_schwarz, source=SOURCE),
)
