"""Claim 24, the escape transition at c = 1 (Kamber & Parhi, arXiv 2509.25783): its verdict rule on
synthetic runs for each verdict, and on a tiny real study."""

from __future__ import annotations

import numpy as np
import pytest

from support.studies import TINY_SETTINGS, simulate_study
from svperturb.analysis.claims import CLAIMS, Results, evaluate
from svperturb.analysis.claims.escape import WINDOW_MARGIN, Runs, escape_transition, judge
from svperturb.analysis.fit import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, FitSettings
from svperturb.linalg.descent import ESCAPED, MOVED, STAYED, UNDECIDED
from svperturb.theory.matrix_factorization import (
    linear_growth_factor,
    linearly_undecided,
    undecided_window,
)

SETTINGS = FitSettings(bootstrap=50, seed=1)
T, E, S = 4000, 100.0, 1000.0
LOW, HIGH = undecided_window(T, E, S)


def runs(c, outcome, growth_error=1e-8) -> Runs:
    """Synthetic runs of one group at step factors c with the given outcomes."""
    c = np.asarray(c, dtype=float)
    predicted = linear_growth_factor(c)
    return Runs(c, np.asarray(outcome, dtype=np.uint8), np.arange(len(c)),
                predicted * (1 + growth_error), predicted,
                linearly_undecided(c, T, E, S, WINDOW_MARGIN), [(float(LOW), float(HIGH))])


def ordered(low=0.8, high=1.2, count=40) -> Runs:
    """Stayed below 1, escaped above, undecided inside the window: what linear stability says."""
    c = np.r_[np.linspace(low, 0.999, count // 2), np.linspace(1.001, high, count // 2),
              (LOW + 1) / 2, (1 + HIGH) / 2]
    outcome = np.where(c < LOW, STAYED, np.where(c > HIGH, ESCAPED, UNDECIDED))
    return runs(c, outcome)


def test_ordered_groups_with_one_in_every_bracket_are_reproduced():
    outcome = judge({"a": ordered(), "b": ordered(0.9, 1.1)})
    assert outcome.verdict == REPRODUCED
    pooled = outcome.evidence["pooled"]
    assert pooled["bracket"] == [0.999, 1.001] and pooled["c_star"] == pytest.approx(1.0)
    assert pooled["runs"] == 84 and pooled["undecided"] == 4 and pooled["misordered"] == 0
    assert pooled["median_growth_difference"] == pytest.approx(1e-8, rel=1e-6)
    assert "c* in [0.999, 1.001] pooled, N = 84 runs, 4 undecided" in outcome.headline
    assert len(outcome.headline) <= 200 and "\n" not in outcome.headline


def test_a_moved_run_counts_on_the_escaping_side():
    group = ordered()
    group.outcome[group.c > 1.1] = MOVED
    outcome = judge({"a": group})
    assert outcome.verdict == REPRODUCED and outcome.evidence["pooled"]["moved"] > 0
    assert outcome.evidence["pooled"]["bracket"] == [0.999, 1.001]


def test_one_misordered_pair_makes_the_claim_not_reproduced_naming_group_and_run():
    group = ordered()
    group.outcome[3] = ESCAPED  # c = 0.8 + 3 (0.199 / 19) escaped below runs that stayed
    outcome = judge({"fine": ordered(), "target=gaussian/width=2/depth=3/imbalance=1": group})
    assert outcome.verdict == NOT_REPRODUCED
    assert outcome.evidence["failed_groups"] == ["target=gaussian/width=2/depth=3/imbalance=1"]
    assert outcome.evidence["groups"]["target=gaussian/width=2/depth=3/imbalance=1"]["misordered"] == 1
    assert "target=gaussian/width=2/depth=3/imbalance=1: 1 misordered (sample, c): (3, 0.831421)" \
        in outcome.measured


def test_one_outside_an_ordered_bracket_makes_the_claim_not_reproduced():
    c = np.r_[np.linspace(0.8, 0.98, 10), np.linspace(0.99, 1.2, 10)]
    group = runs(c, np.where(c < 0.985, STAYED, ESCAPED))  # ordered, but the step at 0.985
    outcome = judge({"shifted": group})
    assert outcome.verdict == NOT_REPRODUCED
    assert outcome.evidence["groups"]["shifted"]["misordered"] == 0
    assert "shifted: 1 outside the bracket [0.98, 0.99]" in outcome.measured


def test_an_undecided_run_outside_the_predicted_window_makes_the_claim_not_reproduced():
    group = ordered()
    group.outcome[-5] = UNDECIDED  # c = 1.2 - 2 (0.199 / 19): decided by linear stability
    assert not group.in_window[-5]
    outcome = judge({"a": group})
    assert outcome.verdict == NOT_REPRODUCED
    assert outcome.evidence["pooled"]["undecided_outside_window"] == 1
    # just outside the window, but within its margin: allowed
    near = runs([0.9, HIGH + 0.5 * WINDOW_MARGIN * (HIGH - LOW), 1.1], [STAYED, UNDECIDED, ESCAPED])
    assert judge({"a": near}).verdict == REPRODUCED


@pytest.mark.parametrize("side", [STAYED, ESCAPED])
def test_a_group_with_no_run_on_one_side_is_inconclusive(side):
    c = np.linspace(0.8, 0.99, 10) if side == STAYED else np.linspace(1.01, 1.2, 10)
    outcome = judge({"a": ordered(), "one-sided": runs(c, np.full(10, side))})
    assert outcome.verdict == INCONCLUSIVE
    assert outcome.evidence["one_sided_groups"] == ["one-sided"]
    assert judge({}).verdict == INCONCLUSIVE


def test_a_failure_beats_a_one_sided_group():
    bad = ordered()
    bad.outcome[0] = ESCAPED
    one_sided = runs(np.linspace(0.8, 0.99, 5), np.full(5, STAYED))
    assert judge({"bad": bad, "one-sided": one_sided}).verdict == NOT_REPRODUCED


def test_claim_24_is_registered_and_inconclusive_without_its_study(tmp_path):
    (claim,) = [c for c in CLAIMS if c.id == 24]
    assert claim.source == "2509.25783" and claim.studies == ("escape",)
    _, rows = evaluate(tmp_path, SETTINGS)
    (row,) = [r for r in rows if r["id"] == 24]
    assert row["verdict"] == INCONCLUSIVE and row["measured"].startswith("not run: escape")


def test_a_tiny_escape_study_reproduces_the_transition(tmp_path):
    points = [f"target={t}/width={d}/depth={L}/imbalance={k}" for t in ("gaussian", "ill_conditioned")
              for d in (1, 3) for L in (2, 3) for k in (0, 1)]
    simulate_study(tmp_path, "escape", points, 48, *TINY_SETTINGS["escape"])
    outcome = escape_transition(Results(tmp_path), SETTINGS)
    assert outcome.verdict == REPRODUCED, outcome.measured
    pooled = outcome.evidence["pooled"]
    assert pooled["runs"] == 16 * 48 and pooled["misordered"] == 0
    assert pooled["bracket"][0] < 1 < pooled["bracket"][1]
    assert pooled["median_growth_difference"] < 1e-5
