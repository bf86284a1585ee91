"""What every claim module shares: reading merged results, formatting numbers with their
intervals, the Claim / Outcome records and the registry of the papers claims test (SOURCES)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from svperturb.analysis.fit import FitSettings, clopper_pearson
from svperturb.results import io

# ---------------------------------------------------------------------------------------------
# Reading merged results


class Results:
    """The merged study files of a results directory, grid points selectable by their values."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self._points: dict[str, list[io.PointData]] = {}

    def has(self, study: str) -> bool:
        return (self.directory / f"{study}.h5").exists()

    def points(self, study: str, **where: Any) -> list[io.PointData]:
        """Grid points of `study` whose values match `where` (numbers compared with isclose)."""
        if study not in self._points:
            path = self.directory / f"{study}.h5"
            self._points[study] = list(io.iter_points(path)) if path.exists() else []
        return [p for p in self._points[study] if _matches(p.point, where)]

    def values(self, study: str, axis: str, **where: Any) -> list:
        return sorted({p.point[axis] for p in self.points(study, **where)})


def _matches(point: dict, where: dict) -> bool:
    for key, value in where.items():
        have = point.get(key)
        if isinstance(value, str) or isinstance(have, str):
            if have != value:
                return False
        elif have is None or not math.isclose(have, value, rel_tol=1e-12, abs_tol=1e-12):
            return False
    return True


def at_skip(data: io.PointData, name: str, rho: float) -> np.ndarray:
    """Column of a per-sample, per-rho dataset at skip coefficient rho."""
    skips = data.point["skip"]
    matches = [j for j, value in enumerate(skips) if math.isclose(value, rho)]
    if not matches:
        raise KeyError(f"skip {rho} not in the grid point's skip values {skips}")
    return data[name][:, matches[0]]


# ---------------------------------------------------------------------------------------------
# Formatting: every number with its interval and sample size


def fmt(x: float, digits: int = 4) -> str:
    if x is None or not np.isfinite(x):
        return "nan"
    return f"{x:.{digits}g}"


def fmt_ci(ci: tuple[float, float], digits: int = 4) -> str:
    return f"[{fmt(ci[0], digits)}, {fmt(ci[1], digits)}]"


def median_ci(x: np.ndarray, settings: FitSettings) -> tuple[float, tuple[float, float]]:
    """Median with a distribution-free order-statistic interval (binomial, exact)."""
    x = np.sort(np.asarray(x, dtype=float)[np.isfinite(x)])
    n = len(x)
    alpha = 1 - settings.confidence
    k = max(int(stats.binom.ppf(alpha / 2, n, 0.5)), 1)  # order statistics x_(k), x_(n + 1 - k)
    return float(np.median(x)), (float(x[k - 1]), float(x[n - k]))


def mean_ci(x: np.ndarray, settings: FitSettings) -> tuple[float, tuple[float, float]]:
    """Mean with a normal-theory interval (fine for the sample sizes used here)."""
    x = np.asarray(x, dtype=float)[np.isfinite(x)]
    z = stats.norm.isf((1 - settings.confidence) / 2)
    half = z * x.std(ddof=1) / np.sqrt(len(x))
    return float(x.mean()), (float(x.mean() - half), float(x.mean() + half))


def relative_window(value: float, tolerance: float) -> tuple[float, float]:
    return value * (1 - tolerance), value * (1 + tolerance)


def violations_text(violations: int, checks: int, settings: FitSettings, what: str = "checks") -> str:
    """'V violations in N checks, rate ≤ u (95%)': a count with its one-sided Clopper-Pearson bound."""
    upper = clopper_pearson(violations, checks, settings.confidence, "upper")[1]
    return (f"{violations:,} violation{'' if violations == 1 else 's'} in {checks:,} {what}, "
            f"rate ≤ {upper:.2g} ({settings.confidence:.0%})")


# ---------------------------------------------------------------------------------------------
# Claims and their outcomes


@dataclass
class Outcome:
    """A claim's verdict; `measured` gives every number behind it, `headline` in one line the
    numbers that decide it (with interval and N); a one-line `measured` is its own headline."""

    measured: str
    verdict: str
    evidence: dict = field(default_factory=dict)
    fits: dict = field(default_factory=dict)
    headline: str = ""

    def __post_init__(self):
        self.headline = self.headline or self.measured


@dataclass(frozen=True)
class Source:
    """A paper whose claims are tested: its arXiv id, short citation and title."""

    arxiv: str
    citation: str
    title: str

    @property
    def url(self) -> str:
        return f"https://arxiv.org/abs/{self.arxiv}"


# The papers, by arXiv id, in the order the report groups their claims.
SOURCES: dict[str, Source] = {s.arxiv: s for s in (
    Source("2203.03099", "Riedi, Balestriero, Baraniuk (2022)",
           "Singular Value Perturbation and Deep Network Optimization"),
    Source("2509.25783", "Kamber & Parhi (2025)",
           "Exact maximum Hessian eigenvalue in deep matrix factorization"),
    Source("2106.15933", "Jacot et al. (2021)",
           "Deep Linear Networks Dynamics: Low-Rank Biases Induced by Initialization Scale and "
           "L2 Regularization"),
    Source("2209.15106", "Banerjee et al. (2022)",
           "Restricted Strong Convexity of Deep Learning Models with Smooth Activations"),
)}


@dataclass(frozen=True)
class Claim:
    """A claim of the paper `source` (an arXiv id of SOURCES): `paper` says what it states,
    `measure` judges it on the merged files of `studies`."""

    id: int
    title: str
    paper: str
    studies: tuple[str, ...]
    measure: Callable[[Results, FitSettings], Outcome]
    source: str = field(kw_only=True)

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"claim {self.id}: source {self.source!r} is not registered in SOURCES "
                             f"({', '.join(SOURCES)})")
