"""The claims (docs/claims.md): what each says, how it is measured, and its verdict. Each claim
names its `source`, the arXiv id of the paper it tests, registered in SOURCES (common.py).

`evaluate(results_dir, settings)` reads the merged study files `<results>/<study>.h5` and returns
`(fits, claims)`: `fits` holds every fitted curve and test per claim (fits.json), `claims` one row
per claim, `{"id", "source", "title", "paper", "headline", "measured", "verdict", "evidence"}`
(claims.json). Every number in `measured` carries its confidence interval (or DKW band) and sample
size; `headline` is one line with the numbers that decide the verdict. A claim whose study was not
run is `inconclusive`, with the reason.

Verdict rules (see fit.py): exact inequalities are `reproduced` when no sample violates them
beyond floating-point rounding and `not reproduced` at the first violation; limits are
equivalence tests of a confidence interval against the paper's value +- `limit_tolerance`
(relative); laws are Kolmogorov distances with DKW bands and their decay in n; probabilities are
one-sided Clopper-Pearson bounds against `negligible_probability` / `high_probability`.
"""

from __future__ import annotations

from pathlib import Path

from svperturb.analysis.claims import (
    deep_linear,
    derivative_data,
    escape,
    hard_bounds,
    paths,
    random_layer,
    relu,
    sharpness,
    smooth_hessian,
)
from svperturb.analysis.claims.common import SOURCES, Claim, Outcome, Results, Source, at_skip
from svperturb.analysis.claims.random_layer import (
    absolute_value_patterns,
    exceptional_events,
    growth_bounds,
)
from svperturb.analysis.fit import INCONCLUSIVE, FitSettings

# Every claim of docs/claims.md, by number; each module lists its own.
CLAIMS: tuple[Claim, ...] = tuple(sorted(
    random_layer.CLAIMS + hard_bounds.CLAIMS + relu.CLAIMS + derivative_data.CLAIMS + paths.CLAIMS
    + sharpness.CLAIMS + escape.CLAIMS + smooth_hessian.CLAIMS + deep_linear.CLAIMS,
    key=lambda c: c.id))

__all__ = [
    "CLAIMS",
    "SOURCES",
    "Claim",
    "Outcome",
    "Results",
    "Source",
    "absolute_value_patterns",
    "at_skip",
    "evaluate",
    "exceptional_events",
    "growth_bounds",
]


def evaluate(results_dir: str | Path, settings: FitSettings) -> tuple[dict, list[dict]]:
    """Measure every claim on the merged results; returns (fits, claims rows)."""
    results = Results(results_dir)
    fits, rows = {}, []
    for claim in CLAIMS:
        missing = [s for s in claim.studies if not results.has(s)]
        if missing:
            outcome = Outcome(f"not run: {', '.join(missing)} missing from {results.directory}",
                              INCONCLUSIVE)
        else:
            outcome = claim.measure(results, settings)
        fits[str(claim.id)] = {"title": claim.title, **outcome.fits}
        rows.append({"id": claim.id, "source": claim.source, "title": claim.title, "paper": claim.paper,
                     "headline": outcome.headline, "measured": outcome.measured, "verdict": outcome.verdict,
                     "evidence": outcome.evidence})
    # depth makes no numbered claim (docs/studies.md, The grid and seeding): a descriptive table for the report
    if results.has(relu.DEPTH):
        measured, _, depth_fits = relu.depth_summary(results, settings)
        fits["depth"] = {"title": "Depth: ConvNet vs single skip vs per-layer skip",
                         "measured": measured, **depth_fits}
    return fits, rows
