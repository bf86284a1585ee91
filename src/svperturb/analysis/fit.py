"""Estimators with confidence intervals, and the rules that turn them into verdicts.

- Clopper-Pearson intervals for event counts (scipy's exact binomial interval).
- Kolmogorov distance to a limit law with the Dvoretzky-Kiefer-Wolfowitz band
  (Massart's constant): P[sup |F_N - F| > h] <= 2 exp(-2 N h^2).
- Convergence fits y_n = c + a n^(-b) of a per-n statistic (median by default), with
  percentile-bootstrap intervals; the extrapolated limit is c.
- Decay of a distance D_n ~ A n^(-b): the exponent b with a bootstrap interval.
Verdicts are equivalence tests: an interval entirely inside the allowed set is `reproduced`,
entirely outside is `not reproduced`, anything else `inconclusive`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE)


@dataclass(frozen=True)
class FitSettings:
    confidence: float = 0.95
    bootstrap: int = 400
    limit_tolerance: float = 0.01
    law_tolerance: float = 0.05
    negligible_probability: float = 1e-3
    high_probability: float = 0.95
    seed: int = 0

    def rng(self, *keys: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=keys))


def clopper_pearson(k: int, n: int, confidence: float = 0.95, side: str = "two-sided") -> tuple[float, float]:
    """Exact binomial interval for k successes in n trials.

    side='two-sided' gives the central interval; 'upper' gives [0, upper bound]; 'lower' gives
    [lower bound, 1], each one-sided at level `confidence`.
    """
    if n <= 0:
        return (0.0, 1.0)
    result = stats.binomtest(int(k), int(n))
    if side == "two-sided":
        ci = result.proportion_ci(confidence_level=confidence, method="exact")
        return (float(ci.low), float(ci.high))
    ci = result.proportion_ci(confidence_level=2 * confidence - 1, method="exact")
    if side == "upper":
        return (0.0, float(ci.high))
    if side == "lower":
        return (float(ci.low), 1.0)
    raise ValueError(f"side: got {side!r}; allowed: two-sided, upper, lower")


def dkw_halfwidth(n: int, confidence: float = 0.95) -> float:
    """h with P[sup_t |F_n(t) - F(t)| > h] <= 1 - confidence (DKW inequality, Massart 1990)."""
    return float(np.sqrt(np.log(2 / (1 - confidence)) / (2 * n)))


def kolmogorov_distance(samples: np.ndarray, cdf: Callable[[np.ndarray], np.ndarray]) -> float:
    """sup_t |F_N(t) - F(t)| between the empirical CDF of `samples` and `cdf`."""
    x = np.sort(np.asarray(samples, dtype=float))
    x = x[np.isfinite(x)]
    f = cdf(x)
    n = len(x)
    i = np.arange(1, n + 1)
    return float(max(np.max(i / n - f), np.max(f - (i - 1) / n)))


def percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = 1 - confidence
    lo, hi = np.nanquantile(values, [alpha / 2, 1 - alpha / 2])
    return (float(lo), float(hi))


def _power_law(n, c, a, b):
    return c + a * n ** (-b)


def _fit_power_law(
    ns: np.ndarray, y: np.ndarray, sigma: np.ndarray | None, exponent: float | None = None
) -> np.ndarray:
    """Weighted least-squares (c, a, b) of y = c + a n^-b; b in (0, 4], or b = `exponent` if given."""
    b0 = 0.5 if exponent is None else exponent
    weights = np.ones_like(ns) if sigma is None else 1 / sigma
    design = np.stack([np.ones_like(ns), ns ** (-b0)], axis=1)
    c0, a0 = np.linalg.lstsq(design * weights[:, None], y * weights, rcond=None)[0]
    if exponent is not None:
        return np.array([c0, a0, exponent])
    try:
        params, _ = optimize.curve_fit(
            _power_law, ns, y, p0=(c0, a0, b0), sigma=sigma, absolute_sigma=False,
            bounds=([-np.inf, -np.inf, 1e-3], [np.inf, np.inf, 4.0]), maxfev=20000,
        )
    except (RuntimeError, optimize.OptimizeWarning):
        params = np.array([np.nan, np.nan, np.nan])
    return params


@dataclass(frozen=True)
class LimitFit:
    """y_n = limit + amplitude * n^(-exponent), fitted to a statistic of samples at each n."""

    widths: list[int]
    values: list[float]
    standard_errors: list[float]
    limit: float
    limit_ci: tuple[float, float]
    amplitude: float
    exponent: float
    exponent_ci: tuple[float, float]
    samples: list[int]

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def fit_limit(
    widths: Sequence[int],
    samples: Sequence[np.ndarray],
    settings: FitSettings,
    statistic: Callable[[np.ndarray], float] = np.median,
    rng_key: int = 0,
    exponent: float | None = None,
) -> LimitFit:
    """Fit statistic(samples at n) = c + a n^(-b) and bootstrap (c, b) by resampling each n's samples.

    With `exponent` given, b is fixed (a rate known from theory) and only (c, a) are fitted, a
    linear weighted least-squares problem; otherwise b is fitted too (needs >= 4 widths to be
    meaningful). Weights are the bootstrap standard errors of the statistic at each n.
    """
    ns = np.asarray(widths, dtype=float)
    samples = [np.asarray(s, dtype=float)[np.isfinite(s)] for s in samples]
    values = np.array([statistic(s) for s in samples])
    rng = settings.rng(rng_key)
    replicates = np.array([
        [statistic(s[rng.integers(0, len(s), len(s))]) for s in samples]
        for _ in range(settings.bootstrap)
    ])
    se = replicates.std(axis=0, ddof=1)
    sigma = np.where(se > 0, se, np.nan)
    sigma = None if np.isnan(sigma).any() else sigma
    c, a, b = _fit_power_law(ns, values, sigma, exponent)
    boot = np.array([_fit_power_law(ns, rep, sigma, exponent) for rep in replicates])
    return LimitFit(
        widths=[int(n) for n in widths],
        values=values.tolist(),
        standard_errors=se.tolist(),
        limit=float(c),
        limit_ci=percentile_interval(boot[:, 0], settings.confidence),
        amplitude=float(a),
        exponent=float(b),
        exponent_ci=percentile_interval(boot[:, 2], settings.confidence),
        samples=[len(s) for s in samples],
    )


@dataclass(frozen=True)
class LawConvergence:
    """Kolmogorov distance D_n of samples at each n to a limit law, and its decay D_n ~ A n^-b."""

    widths: list[int]
    distances: list[float]
    dkw_halfwidths: list[float]
    exponent: float
    exponent_ci: tuple[float, float]
    samples: list[int]
    verdict: str
    reason: str

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def law_convergence(
    widths: Sequence[int],
    samples: Sequence[np.ndarray],
    cdf: Callable[[np.ndarray], np.ndarray],
    settings: FitSettings,
    rng_key: int = 0,
) -> LawConvergence:
    """Does the law of the samples approach `cdf` as n grows?

    reproduced: at the largest n the distance is within law_tolerance even at the DKW upper
    bound, or the fitted decay exponent b has its whole interval above 0;
    not reproduced: b's interval lies below 0 (moving away), or at the largest n the DKW lower
    bound exceeds law_tolerance while b's interval does not lie above 0;
    inconclusive otherwise.
    """
    samples = [np.asarray(s, dtype=float)[np.isfinite(s)] for s in samples]
    order = np.argsort(widths)
    widths = [int(widths[i]) for i in order]
    samples = [samples[i] for i in order]
    distances = np.array([kolmogorov_distance(s, cdf) for s in samples])
    halfwidths = [dkw_halfwidth(len(s), settings.confidence) for s in samples]
    exponent, exponent_ci = float("nan"), (float("nan"), float("nan"))
    if len(widths) >= 3:
        log_n = np.log(widths)
        slope = lambda d: -np.polyfit(log_n, np.log(np.maximum(d, 1e-12)), 1)[0]
        exponent = float(slope(distances))
        rng = settings.rng(rng_key)
        boot = [
            slope(np.array([kolmogorov_distance(s[rng.integers(0, len(s), len(s))], cdf) for s in samples]))
            for _ in range(settings.bootstrap)
        ]
        exponent_ci = percentile_interval(np.array(boot), settings.confidence)
    eps = settings.law_tolerance
    close = distances[-1] + halfwidths[-1] <= eps
    far = distances[-1] - halfwidths[-1] > eps
    decreasing = exponent_ci[0] > 0
    increasing = exponent_ci[1] < 0
    last = f"D = {distances[-1]:.4f} ± {halfwidths[-1]:.4f} at n = {widths[-1]}"
    if increasing:
        verdict, reason = NOT_REPRODUCED, f"distance grows with n (b CI {_fmt_ci(exponent_ci)}); {last}"
    elif close:
        verdict, reason = REPRODUCED, f"{last} is within {eps}"
    elif decreasing:
        verdict, reason = REPRODUCED, f"distance decays as n^-b, b in {_fmt_ci(exponent_ci)}; {last}"
    elif far:
        verdict, reason = NOT_REPRODUCED, f"{last} exceeds {eps} and no decay (b CI {_fmt_ci(exponent_ci)})"
    else:
        verdict, reason = INCONCLUSIVE, f"{last}; b CI {_fmt_ci(exponent_ci)}"
    return LawConvergence(widths, distances.tolist(), halfwidths, exponent, exponent_ci,
                          [len(s) for s in samples], verdict, reason)


def _fmt_ci(ci: tuple[float, float]) -> str:
    return f"[{ci[0]:.3g}, {ci[1]:.3g}]"


def interval_verdict(ci: tuple[float, float], allowed: tuple[float, float]) -> str:
    """Equivalence test: CI inside `allowed` -> reproduced, disjoint -> not reproduced."""
    lo, hi = ci
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return INCONCLUSIVE
    if allowed[0] <= lo and hi <= allowed[1]:
        return REPRODUCED
    if hi < allowed[0] or lo > allowed[1]:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def combine_verdicts(verdicts: Sequence[str]) -> str:
    """All parts reproduced -> reproduced; any part not reproduced -> not reproduced."""
    if not verdicts:
        return INCONCLUSIVE
    if NOT_REPRODUCED in verdicts:
        return NOT_REPRODUCED
    if all(v == REPRODUCED for v in verdicts):
        return REPRODUCED
    return INCONCLUSIVE
