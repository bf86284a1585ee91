"""Claims 31-33: the Hessian of smooth deep networks and restricted strong convexity along gradient
descent (Banerjee et al., arXiv 2209.15106, the abstract), on the smooth_hessian study
(docs/claims.md). The rules below were fixed before any data of the study was looked at.

Small and large sigma_0. The abstract's bound holds "for suitable sigma_0^2", read here as
sigma_0 <= 1/2 (SMALL_STD); large is sigma_0 > 1 (LARGE_STD), where the backward pass of a tanh
network grows with depth (sigma_0 phi'(0) > 1); 1/2 < sigma_0 <= 1 is reported, never judged.

Claim 31 (the rate in m). Per group (activation, depth, sigma_0 <= 1/2, state), the OLS slope b of
the mean of log ||H|| at each width against log m, with a percentile-bootstrap interval (the
samples resampled within each width; settings.bootstrap replicates, settings.confidence); pooled,
the mean of the groups' slopes (a common slope with group intercepts; the same replicates). The
allowed set is [-3/4, -1/4]: the tolerance 1/4 is half the distance from -1/2 to the neighbouring
exponents 0 (the Hessian does not vanish) and -1 (it vanishes as 1/m), so an interval inside it
says "closer to -1/2 than to either" (a derived tolerance, not a tuned one). Verdict
(combine_verdicts over the pooled interval and every group's): reproduced where every interval
lies inside, not reproduced where one lies outside, inconclusive otherwise. Second reading (the
abstract's O(.) is an upper bound, which a faster decay also meets): every interval's upper end
<= -1/4; reported with the Gauss-Newton part's median and slope (O(1): slope near 0), never judged.

Claim 32 (the growth in L). Per group (activation, sigma_0, state initialization) at the largest
width: y_L = sqrt(m) ||H|| per sample, at depths L (at least three). Two fits of the per-depth
means of log y, each with two parameters: power law, log y = a + p log L; exponential, log y = a +
c L. "Exponential growth" when the exponential fit has the smaller residual sum of squares and
c > 0; decided by bootstrap (samples resampled within each depth): exponential growth where its
fraction of replicates is >= settings.confidence, at most polynomial where it is <= 1 -
confidence, undecided between. Verdict: not reproduced if some group with sigma_0 <= 1/2 shows
exponential growth (against the bound); reproduced if every such group is at most polynomial and
every group with sigma_0 > 1 shows exponential growth; inconclusive otherwise (the bound allows
but does not require growth at large sigma_0), or where either kind of group is missing.

Claim 33 (RSC along gradient descent). Per sample (state initialization, sigma_0 <= 1/2, the
largest width; each run of descent_steps steps): q_t = ||(1/n) sum_i grad f(theta_t; x_i)||^2
"stays above c / sqrt(m)" with c = sqrt(m) q_0 / 2 fixed at initialization, i.e. min_t q_t >=
q_0 / 2 (RSC_FRACTION); the loss "falls geometrically": every ratio l_(t+1) / l_t <= 1 - (1 -
rho_0) / 2, rho_0 = (1 - eta lambda_min((1/n) J J^T))^2 the largest ratio of gradient descent on
the model linearised at initialization (for it every ratio is <= rho_0: the loss is a sum of modes
shrinking by (1 - eta lambda_i)^2 each), so at least half of the linear contraction per step
(CONTRACTION_FRACTION). Steps that start below LOSS_FLOOR = (2^10 eps)^2 times the initial loss
are not judged (the loss is then rounding; this exclusion was added after the first run showed
losses reaching the floor within the steps). A sample holds when both do. Verdict on the count pooled over the groups,
as the probabilities of docs/verdicts.md: reproduced where the one-sided Clopper-Pearson lower
bound of the fraction held is >= settings.high_probability, not reproduced where its upper bound
is below it, inconclusive otherwise. Reported beside it: per width, the median of sqrt(m) min_t q_t
(c reached) and the median largest loss ratio.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from svperturb.analysis.claims.common import Claim, Outcome, Results, fmt, fmt_ci, violations_text
from svperturb.analysis.fit import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    REPRODUCED,
    FitSettings,
    clopper_pearson,
    combine_verdicts,
    interval_verdict,
    percentile_interval,
)

SOURCE = "2209.15106"
STUDY = "smooth_hessian"
SMALL_STD, LARGE_STD = 0.5, 1.0  # sigma_0 <= SMALL_STD is small, > LARGE_STD large (docstring)
SLOPE, SLOPE_TOLERANCE = -0.5, 0.25  # claim 31: -1/2 within half the distance to 0 and -1
RSC_FRACTION = 0.5  # claim 33: c = RSC_FRACTION sqrt(m) q_0
CONTRACTION_FRACTION = 0.5  # claim 33: at least this fraction of the linear contraction per step
MIN_DEPTHS = 3  # claim 32: two two-parameter fits need three depths to differ
# Claim 33: steps that start below LOSS_FLOOR l_0 are not judged: the residuals f(x_i) - y_i are
# computed to about eps max(|f|, |y|) each, so below (2^10 eps)^2 of the start a loss is rounding
# within a factor 2^20 and its ratios are noise around 1.
LOSS_FLOOR = (2.0**10 * np.finfo(np.float64).eps) ** 2


def _name(values: dict) -> str:
    return "/".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


# --- claim 31 -------------------------------------------------------------------------------


def log_slope_replicates(xs: Sequence[float], samples: Sequence[np.ndarray], settings: FitSettings,
                         key: int = 0) -> tuple[float, np.ndarray]:
    """(OLS slope of the mean of log y against log x, its bootstrap replicates): `samples[j]` the
    values y at xs[j], resampled within each x."""
    logs = [np.log(np.asarray(s, dtype=float)) for s in samples]
    lx = np.log(np.asarray(xs, dtype=float))
    rng = settings.rng(31, key)
    replicates = np.empty(settings.bootstrap)
    for r in range(settings.bootstrap):
        means = [v[rng.integers(0, len(v), len(v))].mean() for v in logs]
        replicates[r] = np.polyfit(lx, means, 1)[0]
    return float(np.polyfit(lx, [v.mean() for v in logs], 1)[0]), replicates


@dataclass(frozen=True)
class SlopeGroup:
    name: str
    widths: tuple[int, ...]
    slope: float
    replicates: np.ndarray

    def interval(self, settings: FitSettings) -> tuple[float, float]:
        return percentile_interval(self.replicates, settings.confidence)


def judge_slopes(groups: Sequence[SlopeGroup], settings: FitSettings,
                 gauss_newton: dict | None = None) -> Outcome:
    """Claim 31's outcome on groups with their bootstrap replicates (module docstring)."""
    if not groups:
        return Outcome(f"no group of the {STUDY} study with sigma_0 <= {SMALL_STD:g} and two "
                       "widths or more", INCONCLUSIVE)
    allowed = (SLOPE - SLOPE_TOLERANCE, SLOPE + SLOPE_TOLERANCE)
    pooled_slope = float(np.mean([g.slope for g in groups]))
    pooled_ci = percentile_interval(np.mean([g.replicates for g in groups], axis=0),
                                    settings.confidence)
    verdicts = {g.name: interval_verdict(g.interval(settings), allowed) for g in groups}
    verdict = combine_verdicts([interval_verdict(pooled_ci, allowed), *verdicts.values()])
    bound_held = sum(g.interval(settings)[1] <= allowed[1] for g in groups)
    slopes = [g.slope for g in groups]
    text = (f"slope of log ||H|| against log m pooled over {len(groups)} groups (activation, depth, "
            f"sigma_0 <= {SMALL_STD:g}, state): {fmt(pooled_slope)} {fmt_ci(pooled_ci)} "
            f"({settings.confidence:.0%} bootstrap), allowed [{allowed[0]:g}, {allowed[1]:g}]; per "
            f"group from {fmt(min(slopes))} to {fmt(max(slopes))}, inside in "
            f"{sum(v == REPRODUCED for v in verdicts.values())}, outside in "
            f"{sum(v == NOT_REPRODUCED for v in verdicts.values())} of {len(groups)}; upper-bound "
            f"reading (interval's upper end <= {allowed[1]:g}): {bound_held} of {len(groups)}")
    outside = [name for name, v in verdicts.items() if v == NOT_REPRODUCED]
    if outside:
        text += "; outside: " + ", ".join(outside[:5]) + (" ..." if len(outside) > 5 else "")
    if gauss_newton:
        text += ("; the loss Hessian's Gauss-Newton part ||(1/n) J^T J|| (median) "
                 + ", ".join(f"{fmt(v, 3)} at m = {m}" for m, v in sorted(gauss_newton["median"].items()))
                 + f", slope {fmt(gauss_newton['slope'], 2)}")
    headline = (f"slope {fmt(pooled_slope, 3)} {fmt_ci(pooled_ci, 3)} pooled over {len(groups)} "
                f"groups (allowed [-0.75, -0.25]); {sum(v == REPRODUCED for v in verdicts.values())}"
                f"/{len(groups)} groups inside")
    return Outcome(text, verdict,
                   evidence={"pooled_slope": pooled_slope, "pooled_interval": list(pooled_ci),
                             "allowed": list(allowed),
                             "groups": {g.name: {"slope": g.slope, "widths": list(g.widths),
                                                 "interval": list(g.interval(settings)),
                                                 "verdict": verdicts[g.name]} for g in groups},
                             "upper_bound_reading_held": int(bound_held),
                             "gauss_newton": gauss_newton or {}},
                   fits={"slopes": {g.name: g.slope for g in groups}}, headline=headline)


def _by(points, *axes) -> dict[tuple, list]:
    groups: dict[tuple, list] = {}
    for data in points:
        groups.setdefault(tuple(data.point[a] for a in axes), []).append(data)
    return groups


def hessian_rate(results: Results, settings: FitSettings) -> Outcome:
    groups = []
    for key, members in _by(results.points(STUDY), "activation", "depth", "init_std", "state").items():
        if key[2] > SMALL_STD or len(members) < 2:
            continue
        members = sorted(members, key=lambda d: d.point["width"])
        widths = tuple(d.point["width"] for d in members)
        slope, replicates = log_slope_replicates(widths, [d["hessian_norm"] for d in members],
                                                 settings, len(groups))
        groups.append(SlopeGroup(_name(dict(zip(("activation", "depth", "init_std", "state"), key))),
                                 widths, slope, replicates))
    by_width = _by(results.points(STUDY, state="initialization"), "width")
    gauss_newton = None
    if len(by_width) >= 2:
        medians = {int(m[0]): float(np.median(np.concatenate([d["gauss_newton_norm"] for d in v])))
                   for m, v in by_width.items()}
        widths = sorted(medians)
        gauss_newton = {"median": medians,
                        "slope": float(np.polyfit(np.log(widths),
                                                  np.log([medians[m] for m in widths]), 1)[0])}
    return judge_slopes(groups, settings, gauss_newton)


# --- claim 32 -------------------------------------------------------------------------------


def exponential_wins(depths: np.ndarray, log_means: np.ndarray) -> bool:
    """Whether log y = a + c L fits the per-depth means better (smaller RSS) than log y = a + p
    log L, with c > 0."""
    exponential = np.polyfit(depths, log_means, 1, full=True)
    power = np.polyfit(np.log(depths), log_means, 1, full=True)
    rss_exponential = float(exponential[1][0]) if len(exponential[1]) else 0.0
    rss_power = float(power[1][0]) if len(power[1]) else 0.0
    return bool(rss_exponential < rss_power and exponential[0][0] > 0)


@dataclass(frozen=True)
class DepthGroup:
    name: str
    init_std: float
    depths: tuple[int, ...]
    exponential_fraction: float  # of the bootstrap replicates
    exponential_at_means: bool
    rate: float  # c of the exponential fit at the means
    power: float  # p of the power fit at the means

    def kind(self, settings: FitSettings) -> str:
        if self.exponential_fraction >= settings.confidence:
            return "exponential"
        if self.exponential_fraction <= 1 - settings.confidence:
            return "polynomial"
        return "undecided"


def depth_group(name: str, init_std: float, depths: Sequence[int], samples: Sequence[np.ndarray],
                settings: FitSettings, key: int = 0) -> DepthGroup:
    """Claim 32's statistics of one group: `samples[j]` the values sqrt(m) ||H|| at depths[j]."""
    logs = [np.log(np.asarray(s, dtype=float)) for s in samples]
    x = np.asarray(depths, dtype=float)
    rng = settings.rng(32, key)
    wins = 0
    for _ in range(settings.bootstrap):
        wins += exponential_wins(x, np.array([v[rng.integers(0, len(v), len(v))].mean()
                                              for v in logs]))
    means = np.array([v.mean() for v in logs])
    return DepthGroup(name, init_std, tuple(int(d) for d in depths), wins / settings.bootstrap,
                      exponential_wins(x, means), float(np.polyfit(x, means, 1)[0]),
                      float(np.polyfit(np.log(x), means, 1)[0]))


def judge_depth(groups: Sequence[DepthGroup], settings: FitSettings) -> Outcome:
    """Claim 32's outcome (module docstring)."""
    small = [g for g in groups if g.init_std <= SMALL_STD]
    large = [g for g in groups if g.init_std > LARGE_STD]
    kinds = {g.name: g.kind(settings) for g in groups}
    if any(kinds[g.name] == "exponential" for g in small):
        verdict = NOT_REPRODUCED
    elif small and large and all(kinds[g.name] == "polynomial" for g in small) and \
            all(kinds[g.name] == "exponential" for g in large):
        verdict = REPRODUCED
    else:
        verdict = INCONCLUSIVE

    def summary(part: Sequence[DepthGroup]) -> str:
        counts = {k: sum(kinds[g.name] == k for g in part) for k in ("polynomial", "exponential",
                                                                     "undecided")}
        return ", ".join(f"{v} {k}" for k, v in counts.items())

    text = (f"sqrt(m) ||H|| against depth at the largest width, {len(groups)} groups (activation, "
            f"sigma_0): sigma_0 <= {SMALL_STD:g}: {summary(small) or 'none'}; sigma_0 > "
            f"{LARGE_STD:g}: {summary(large) or 'none'} (exponential: the log-linear fit better "
            f"with a positive rate in >= {settings.confidence:.0%} of bootstrap replicates); "
            + "; ".join(f"{g.name}: {kinds[g.name]} ({fmt(g.exponential_fraction, 2)}; rate "
                        f"{fmt(g.rate, 3)}, power {fmt(g.power, 3)})" for g in groups))
    middle = [g for g in groups if SMALL_STD < g.init_std <= LARGE_STD]
    if middle:
        text += f"; 1/2 < sigma_0 <= 1 (not judged): {summary(middle)}"
    headline = (f"sigma_0 <= {SMALL_STD:g}: {summary(small) or 'none'}; sigma_0 > {LARGE_STD:g}: "
                f"{summary(large) or 'none'} ({len(groups)} groups)")
    return Outcome(text, verdict,
                   evidence={"groups": {g.name: {"init_std": g.init_std, "depths": list(g.depths),
                                                 "exponential_fraction": g.exponential_fraction,
                                                 "kind": kinds[g.name], "rate": g.rate,
                                                 "power": g.power} for g in groups}},
                   fits={"rates": {g.name: g.rate for g in groups},
                         "powers": {g.name: g.power for g in groups}}, headline=headline)


def hessian_depth_growth(results: Results, settings: FitSettings) -> Outcome:
    points = results.points(STUDY, state="initialization")
    if not points:
        return Outcome(f"no point of the {STUDY} study at initialization", INCONCLUSIVE)
    width = max(d.point["width"] for d in points)
    groups = []
    for key, members in _by([d for d in points if d.point["width"] == width],
                            "activation", "init_std").items():
        members = sorted(members, key=lambda d: d.point["depth"])
        if len(members) < MIN_DEPTHS:
            continue
        groups.append(depth_group(_name({"activation": key[0], "init_std": key[1]}) + f"/width={width}",
                                  key[1], [d.point["depth"] for d in members],
                                  [np.sqrt(width) * d["hessian_norm"] for d in members], settings,
                                  len(groups)))
    if not groups:
        return Outcome(f"no group with {MIN_DEPTHS} depths or more at width {width}", INCONCLUSIVE)
    return judge_depth(groups, settings)


# --- claim 33 -------------------------------------------------------------------------------


def largest_judged_ratio(loss_path: np.ndarray) -> np.ndarray:
    """Per sample, the largest loss ratio l_(t+1) / l_t over the steps starting above LOSS_FLOOR
    l_0 (-inf where none does, which counts as held)."""
    ratios = loss_path[:, 1:] / loss_path[:, :-1]
    judged = loss_path[:, :-1] > LOSS_FLOOR * loss_path[:, :1]
    return np.where(judged, ratios, -np.inf).max(axis=1)


def held(rsc_path: np.ndarray, loss_path: np.ndarray, linear_rate: np.ndarray) -> np.ndarray:
    """Per sample (rows): min_t q_t >= RSC_FRACTION q_0, and every loss ratio l_(t+1) / l_t <= 1 -
    CONTRACTION_FRACTION (1 - rho_0) among the steps that start above the rounding floor
    LOSS_FLOOR l_0."""
    rsc = rsc_path.min(axis=1) >= RSC_FRACTION * rsc_path[:, 0]
    geometric = largest_judged_ratio(loss_path) <= 1 - CONTRACTION_FRACTION * (1 - linear_rate)
    return rsc & geometric


def judge_descent(outcomes: np.ndarray, settings: FitSettings, context: str = "") -> Outcome:
    """Claim 33's outcome on the per-sample booleans (module docstring)."""
    runs = len(outcomes)
    if not runs:
        return Outcome(f"no run of the {STUDY} study with sigma_0 <= {SMALL_STD:g}", INCONCLUSIVE)
    good = int(np.sum(outcomes))
    low = clopper_pearson(good, runs, settings.confidence, "lower")[0]
    high = clopper_pearson(good, runs, settings.confidence, "upper")[1]
    verdict = REPRODUCED if low >= settings.high_probability else (
        NOT_REPRODUCED if high < settings.high_probability else INCONCLUSIVE)
    text = (f"RSC quantity >= half its initial value and every loss ratio <= 1 - (1 - rho_0)/2 in "
            f"{good:,} of {runs:,} runs (sigma_0 <= {SMALL_STD:g}, largest width); "
            + violations_text(runs - good, runs, settings, "runs") + context)
    headline = (f"held in {good:,}/{runs:,} runs, fraction >= {fmt(low, 3)} "
                f"({settings.confidence:.0%}); required {settings.high_probability:g}")
    return Outcome(text, verdict, evidence={"runs": runs, "held": good, "lower_bound": low,
                                            "upper_bound": high}, headline=headline)


def rsc_along_descent(results: Results, settings: FitSettings) -> Outcome:
    points = [d for d in results.points(STUDY, state="initialization")
              if d.point["init_std"] <= SMALL_STD]
    if not points:
        return judge_descent(np.zeros(0, dtype=bool), settings)
    width = max(d.point["width"] for d in points)
    outcomes = np.concatenate([held(d["rsc_path"], d["loss_path"], d["linear_rate"])
                               for d in points if d.point["width"] == width])
    context = "; per width (all groups with sigma_0 <= 1/2): median sqrt(m) min_t q_t " + ", ".join(
        f"{fmt(float(np.median(np.concatenate([np.sqrt(m[0]) * d['rsc_path'].min(axis=1) for d in v]))), 3)}"
        f" at m = {m[0]}" for m, v in sorted(_by(points, "width").items()))
    context += "; median largest loss ratio above the rounding floor " + ", ".join(
        f"{fmt(float(np.median(np.concatenate([largest_judged_ratio(d['loss_path']) for d in v]))), 3)}"
        f" at m = {m[0]}" for m, v in sorted(_by(points, "width").items()))
    return judge_descent(outcomes, settings, context)


CLAIMS: tuple[Claim, ...] = (
    Claim(31, "The predictor's Hessian norm falls as 1/sqrt(m) with the width",
          "Banerjee et al., abstract: for suitable sigma_0^2 the spectral norm of the Hessian of a "
          "deep network with smooth activations is O(poly(L) / sqrt(m)). Tested: the slope of "
          "log ||H|| against log m is -1/2, at sigma_0 <= 1/2.",
          (STUDY,), hessian_rate, source=SOURCE),
    Claim(32, "sqrt(m) ||H|| grows at most polynomially in depth at small sigma_0",
          "Banerjee et al., abstract: the bound is poly(L) / sqrt(m) for suitable sigma_0^2; at "
          "larger sigma_0 the growth in L is expected to be exponential.",
          (STUDY,), hessian_depth_growth, source=SOURCE),
    Claim(33, "Along gradient descent the average gradient stays large and the loss falls geometrically",
          "Banerjee et al., abstract: RSC holds as long as the squared norm of the average gradient "
          "of the predictors is Omega(poly(L) / sqrt(m)), and gives geometric convergence of "
          "gradient descent on the square loss.",
          (STUDY,), rsc_along_descent, source=SOURCE),
)
