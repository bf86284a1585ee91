"""Claim 24: gradient descent escapes a minimizer of deep matrix factorization exactly when its step
exceeds 2 / lambda_max (Kamber & Parhi, arXiv 2509.25783), on the escape study (docs/claims.md).

Each run starts at W* + delta u (u the Hessian's top eigenvector) with the step eta = c 2 /
lambda_max; linear stability predicts that the deviation shrinks by |1 - 2c| per step for c < 1
and grows for c > 1: the transition at c* = 1. A run's outcome (studies/escape.py) is stayed,
escaped, moved (its loss rose, then fell below the start's: gradient descent left W* for another
minimizer) or undecided after max_steps. Escaped and moved runs both left W*: they are the
"escaping" side; undecided runs are left out of the bracket and counted.

Statistic, per group (target, width, depth, imbalance: a grid point) and pooled over all of them:
the bracket [largest c that stayed, smallest c that escaped or moved], c* its midpoint, and the
misordered runs: those that escaped or moved at a c below some stayed run's c (below the largest
c that stayed).

Verdict rule (fixed before the data):
- not reproduced if in some group a run is misordered, or 1 lies outside the bracket (both
  sides present), or an undecided run lies outside the predicted undecided window
  ((1 + stay_factor^(-1/T)) / 2, (1 + escape_factor^(1/T)) / 2), T = max_steps
  (theory/matrix_factorization.py: undecided_window, with its mirror image near c = 0), widened by
  WINDOW_MARGIN of its width on each side in log |1 - 2c| (which is 2 (c - 1) near c = 1); the
  measured text names the groups and runs;
- otherwise inconclusive if some group has no run on one side (none stayed, or none left W*);
- otherwise reproduced: in every group the runs are ordered, 1 lies in the bracket, and every
  undecided run lies in the predicted window.
WINDOW_MARGIN: the loss ratio l_T / l_0 departs from |1 - 2c|^(2T) by the nonlinear terms (the
deviation is at most start_distance escape_factor ||W*||, 1e-7 ||W*|| at the defaults) and by
rounding (relative 2 sqrt(floor / l_0), below 1e-5 on the default grid); a relative error e of
the ratio moves an end of the window by e / (2T) in log |1 - 2c|, while the window is
(ln escape_factor + ln stay_factor) / T wide there: a margin of 1 % of the width covers errors of
the ratio up to 0.02 (ln escape_factor + ln stay_factor), 0.23 at the defaults.

Evidence, not part of the verdict: per group and pooled, the median relative difference between
the measured growth per step and |1 - 2c| over the runs decided in the linear regime (stayed and
escaped).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from svperturb.analysis.claims.common import Claim, Outcome, Results, fmt
from svperturb.analysis.fit import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, FitSettings
from svperturb.linalg.descent import ESCAPED, MOVED, STAYED, UNDECIDED
from svperturb.theory.matrix_factorization import linearly_undecided, undecided_window

SOURCE = "2509.25783"
STUDY = "escape"
WINDOW_MARGIN = 0.01  # fraction of the undecided window's width, on each side (module docstring)
GROUP_AXES = ("target", "width", "depth", "imbalance")


@dataclass
class Runs:
    """The runs of a group (or of several pooled): step factors, outcomes, global sample ids,
    measured and predicted growth per step, and per run whether linear stability leaves it
    undecided (the predicted window, widened by WINDOW_MARGIN)."""

    c: np.ndarray
    outcome: np.ndarray
    sample: np.ndarray
    growth: np.ndarray
    predicted: np.ndarray
    in_window: np.ndarray
    windows: list = field(default_factory=list)  # the (low, high) windows near 1 of its groups


def group_runs(data) -> Runs:
    """A merged grid point's runs (faulty samples left out, as PointData does)."""
    point = data.point
    c = np.asarray(data["step_factor"], dtype=float)
    window = undecided_window(point["max_steps"], point["escape_factor"], point["stay_factor"])
    return Runs(c, np.asarray(data["outcome"]),
                np.array([data.sample_id(i) for i in range(len(c))], dtype=np.int64),
                np.asarray(data["growth_per_step"], dtype=float),
                np.asarray(data["predicted_growth_per_step"], dtype=float),
                linearly_undecided(c, point["max_steps"], point["escape_factor"],
                                   point["stay_factor"], WINDOW_MARGIN),
                [tuple(float(x) for x in window)])


def pooled(groups: Sequence[Runs]) -> Runs:
    return Runs(*(np.concatenate([getattr(g, name) for g in groups])
                  for name in ("c", "outcome", "sample", "growth", "predicted", "in_window")),
                sorted({w for g in groups for w in g.windows}))


@dataclass(frozen=True)
class Transition:
    """What claim 24 measures on some runs (see the module docstring)."""

    runs: int
    stayed: int
    escaped: int
    moved: int
    undecided: int
    largest_stayed: float  # NaN where none stayed
    smallest_left: float  # NaN where none escaped or moved
    misordered: int
    misordered_samples: tuple[tuple[int, float], ...]  # (sample, c), the first few
    undecided_outside: int
    undecided_outside_samples: tuple[tuple[int, float], ...]
    median_growth_difference: float  # NaN where no run was decided in the linear regime

    @property
    def bracket(self) -> tuple[float, float]:
        return self.largest_stayed, self.smallest_left

    @property
    def c_star(self) -> float:
        return (self.largest_stayed + self.smallest_left) / 2

    @property
    def one_sided(self) -> bool:
        return not (np.isfinite(self.largest_stayed) and np.isfinite(self.smallest_left))

    @property
    def one_in_bracket(self) -> bool:
        return bool(self.largest_stayed <= 1 <= self.smallest_left)

    @property
    def verdict(self) -> str:
        if self.misordered or self.undecided_outside or (not self.one_sided
                                                          and not self.one_in_bracket):
            return NOT_REPRODUCED
        return INCONCLUSIVE if self.one_sided else REPRODUCED


SHOWN = 5  # runs named per failure


def transition(runs: Runs) -> Transition:
    stayed = runs.outcome == STAYED
    left = (runs.outcome == ESCAPED) | (runs.outcome == MOVED)
    undecided = runs.outcome == UNDECIDED
    largest = float(runs.c[stayed].max()) if stayed.any() else float("nan")
    smallest = float(runs.c[left].min()) if left.any() else float("nan")
    misordered = left & (runs.c < largest) if stayed.any() else np.zeros_like(left)
    outside = undecided & ~runs.in_window
    linear = stayed | (runs.outcome == ESCAPED)
    difference = np.abs(runs.growth[linear] / runs.predicted[linear] - 1)
    return Transition(
        runs=len(runs.c), stayed=int(stayed.sum()), escaped=int((runs.outcome == ESCAPED).sum()),
        moved=int((runs.outcome == MOVED).sum()), undecided=int(undecided.sum()),
        largest_stayed=largest, smallest_left=smallest, misordered=int(misordered.sum()),
        misordered_samples=_named(runs, misordered), undecided_outside=int(outside.sum()),
        undecided_outside_samples=_named(runs, outside),
        median_growth_difference=float(np.median(difference)) if difference.size else float("nan"))


def _named(runs: Runs, flags: np.ndarray) -> tuple[tuple[int, float], ...]:
    return tuple((int(s), float(c)) for s, c in zip(runs.sample[flags][:SHOWN], runs.c[flags][:SHOWN]))


def group_name(point: dict) -> str:
    return "/".join(f"{axis}={point[axis]:g}" if isinstance(point[axis], float)
                    else f"{axis}={point[axis]}" for axis in GROUP_AXES)


def _bracket_text(t: Transition) -> str:
    return f"[{fmt(t.largest_stayed, 6)}, {fmt(t.smallest_left, 6)}]"


def _failure(name: str, t: Transition) -> str:
    parts = []
    if t.misordered:
        parts.append(f"{t.misordered} misordered (sample, c): "
                     + ", ".join(f"({s}, {fmt(c, 6)})" for s, c in t.misordered_samples))
    if not t.one_sided and not t.one_in_bracket:
        parts.append(f"1 outside the bracket {_bracket_text(t)}")
    if t.undecided_outside:
        parts.append(f"{t.undecided_outside} undecided outside the predicted window (sample, c): "
                     + ", ".join(f"({s}, {fmt(c, 6)})" for s, c in t.undecided_outside_samples))
    return f"{name}: " + "; ".join(parts)


def _evidence(t: Transition) -> dict:
    return {"runs": t.runs, "stayed": t.stayed, "escaped": t.escaped, "moved": t.moved,
            "undecided": t.undecided, "bracket": list(t.bracket), "c_star": t.c_star,
            "misordered": t.misordered, "misordered_samples": [list(x) for x in t.misordered_samples],
            "undecided_outside_window": t.undecided_outside,
            "undecided_outside_samples": [list(x) for x in t.undecided_outside_samples],
            "median_growth_difference": t.median_growth_difference, "verdict": t.verdict}


def judge(groups: dict[str, Runs]) -> Outcome:
    """Claim 24's outcome on named groups of runs (the verdict rule of the module docstring)."""
    if not groups:
        return Outcome(f"no run of the {STUDY} study", INCONCLUSIVE)
    per_group = {name: transition(runs) for name, runs in groups.items()}
    everything = pooled(list(groups.values()))
    total = transition(everything)
    failed = {name: t for name, t in per_group.items() if t.verdict == NOT_REPRODUCED}
    one_sided = [name for name, t in per_group.items() if t.one_sided]
    verdict = NOT_REPRODUCED if failed else (INCONCLUSIVE if one_sided else REPRODUCED)
    windows = ", ".join(f"({fmt(low, 6)}, {fmt(high, 6)})" for low, high in everything.windows)
    growth = [t.median_growth_difference for t in per_group.values()
              if np.isfinite(t.median_growth_difference)]
    text = (f"pooled over {len(groups)} groups (target, width, depth, imbalance): {total.runs:,} "
            f"runs, {total.stayed:,} stayed, {total.escaped:,} escaped, {total.moved:,} moved to "
            f"another minimizer, {total.undecided:,} undecided ({total.undecided_outside} outside "
            f"the predicted window {windows}); bracket {_bracket_text(total)}, c* = "
            f"{fmt(total.c_star, 6)}, {total.misordered} misordered; ordered with 1 in the bracket "
            f"in {sum(not t.misordered and not t.one_sided and t.one_in_bracket for t in per_group.values())} "
            f"of {len(groups)} groups; median |growth per step / |1 - 2c| - 1| "
            f"{fmt(total.median_growth_difference, 2)} pooled, per group from "
            f"{fmt(min(growth, default=np.nan), 2)} to {fmt(max(growth, default=np.nan), 2)}")
    if failed:
        text += "; not reproduced in " + "; ".join(_failure(name, t) for name, t in list(failed.items())[:SHOWN])
        if len(failed) > SHOWN:
            text += f"; and {len(failed) - SHOWN} more groups"
    elif one_sided:
        text += (f"; {len(one_sided)} group(s) with no run on one side: "
                 + ", ".join(one_sided[:SHOWN]))
    headline = (f"c* in {_bracket_text(total)} pooled, N = {total.runs:,} runs, "
                f"{total.undecided:,} undecided ({total.undecided_outside} outside the window), "
                f"{total.misordered} misordered; growth vs |1-2c|: median rel. diff. "
                f"{fmt(total.median_growth_difference, 2)}")
    return Outcome(text, verdict,
                   evidence={"pooled": _evidence(total),
                             "groups": {name: _evidence(t) for name, t in per_group.items()},
                             "failed_groups": sorted(failed), "one_sided_groups": one_sided},
                   headline=headline)


def escape_transition(results: Results, settings: FitSettings) -> Outcome:
    return judge({group_name(data.point): group_runs(data) for data in results.points(STUDY)})


CLAIMS: tuple[Claim, ...] = (
    Claim(24, "Gradient descent escapes a minimizer exactly for steps above 2 / lambda_max",
          "Kamber & Parhi, abstract (paraphrased): gradient descent started 1e-9 from a minimizer "
          "along the Hessian's top eigenvector escapes for steps above 2 / lambda_max. Derived "
          "here by linear stability: with eta = c 2 / lambda_max the deviation is multiplied by "
          "|1 - 2c| per step, so the transition sits at c* = 1.",
          (STUDY,), escape_transition, source=SOURCE),
)
