"""The claims table: built from real (tiny) simulations, able to say `not reproduced`, every claim
naming the registered paper it tests."""

from __future__ import annotations

import pytest

from support.studies import simulate_study, tampered_copy
from svperturb.analysis.claims import (
    CLAIMS,
    SOURCES,
    Claim,
    Results,
    absolute_value_patterns,
    evaluate,
    exceptional_events,
    growth_bounds,
)
from svperturb.analysis.fit import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, FitSettings

SETTINGS = FitSettings(bootstrap=50, seed=1)
SAMPLES = 200


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("results")
    widths = (5, 8, 12, 16)
    simulate_study(directory, "resnet_layer",
                   [f"distribution=gaussian/width={n}/weight_scale=2" for n in widths], SAMPLES,
                   "--skip", "0", "0.5", "1")
    simulate_study(directory, "convnet_vs_resnet",
                   [f"distribution=gaussian/width={n}/weight_scale=2/activation_slope=-1/activity=0.5"
                    for n in widths], SAMPLES, "--skip", "0", "1")
    return directory


def test_growth_bounds_hold_on_every_simulated_sample(results_dir):
    outcome = growth_bounds(Results(results_dir), SETTINGS)
    assert outcome.verdict == REPRODUCED
    assert outcome.evidence["70"]["violations"] == 0
    assert outcome.evidence["70"]["checks"] == 3 * SAMPLES * (5 + 8 + 12 + 16)


def test_one_violation_of_a_growth_bound_makes_claim_1_not_reproduced(results_dir, tmp_path):
    def one_violation(counts):
        counts[17, 1] = 1

    outcome = growth_bounds(tampered_copy(results_dir, tmp_path, "resnet_layer", {"violations_74": one_violation}),
                            SETTINGS)
    assert outcome.verdict == NOT_REPRODUCED
    assert outcome.evidence["74"]["violations"] == 1


def test_frequent_exceptional_events_make_claim_7_not_reproduced(results_dir, tmp_path):
    assert exceptional_events(Results(results_dir), SETTINGS).verdict == INCONCLUSIVE  # 200 samples: too few

    def half_below_minus_one(tau_low):
        tau_low[::2] = -1.5

    outcome = exceptional_events(tampered_copy(results_dir, tmp_path, "resnet_layer", {"tau_low": half_below_minus_one}),
                                 SETTINGS)
    assert outcome.verdict == NOT_REPRODUCED


def test_absolute_value_identity_holds_and_a_broken_law_is_detected(results_dir, tmp_path):
    assert absolute_value_patterns(Results(results_dir), SETTINGS).verdict == REPRODUCED

    def doubled(kappa):
        kappa *= 2

    broken = tampered_copy(results_dir, tmp_path, "resnet_layer", {"kappa": doubled})
    assert absolute_value_patterns(broken, SETTINGS).verdict == NOT_REPRODUCED


def test_every_claim_gets_a_row_and_missing_studies_are_inconclusive(results_dir):
    fits, rows = evaluate(results_dir, SETTINGS)  # unit_variance was not simulated
    assert [row["id"] for row in rows] == [claim.id for claim in CLAIMS] == list(range(1, 34))
    by_id = {row["id"]: row for row in rows}
    simulated = {"resnet_layer", "convnet_vs_resnet"}
    for claim in CLAIMS:
        missing = [s for s in claim.studies if s not in simulated]
        if missing:
            assert by_id[claim.id]["verdict"] == INCONCLUSIVE
            assert by_id[claim.id]["measured"].startswith(f"not run: {missing[0]}")
    assert by_id[1]["verdict"] == REPRODUCED
    assert set(fits) == {str(i) for i in range(1, 34)}  # no depth study, no depth table
    assert [row["source"] for row in rows] == [claim.source for claim in CLAIMS]


def test_every_claim_tests_a_registered_paper():
    assert all(claim.source in SOURCES for claim in CLAIMS)
    assert [claim.source for claim in CLAIMS if claim.id <= 16] == ["2203.03099"] * 16
    assert len({claim.id for claim in CLAIMS}) == len(CLAIMS)
    for arxiv, source in SOURCES.items():
        assert source.arxiv == arxiv and source.citation and source.title
        assert source.url == f"https://arxiv.org/abs/{arxiv}"
    assert SOURCES["2203.03099"].citation == "Riedi, Balestriero, Baraniuk (2022)"
    with pytest.raises(ValueError, match="not registered"):
        Claim(17, "t", "p", (), growth_bounds, source="9999.00002")


# --- the sharpness claims (Kamber & Parhi, arXiv 2509.25783) ----------------------------------


@pytest.fixture(scope="module")
def sharpness_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("sharpness")
    points = [f"target={t}/width={d}/depth={L}/imbalance={k}" for t in ("gaussian", "ill_conditioned")
              for d in (1, 3) for L in (2, 3) for k in (0, 1)]
    simulate_study(directory, "sharpness", points, 40)
    return directory


def sharpness_claims(directory) -> dict:
    return {c.id: c.measure(Results(directory), SETTINGS) for c in CLAIMS if c.source == "2509.25783"}


def test_the_closed_forms_and_the_balanced_value_hold_on_the_simulated_minimizers(sharpness_dir):
    outcomes = sharpness_claims(sharpness_dir)
    for claim in (17, 18, 19, 21, 23):
        assert outcomes[claim].verdict == REPRODUCED, (claim, outcomes[claim].measured)
    assert outcomes[17].evidence["checks"] == 2 * 2 * 2 * 40  # depth 2: targets x widths x kappas
    assert outcomes[20].verdict in (NOT_REPRODUCED, REPRODUCED, INCONCLUSIVE)
    assert "R1" in outcomes[20].measured and "R2" in outcomes[20].measured


@pytest.mark.parametrize(("claim", "dataset", "factor"), [
    (17, "closed_form", 1 + 1e-9),            # a closed form off by 1e-9: beyond rounding
    (19, "lambda_max", 0.999),                 # a minimizer below the balanced value
    (23, "cauchy_schwarz_bound", 1.0 + 1e-6),  # the bound no longer exact at depth 2
])
def test_a_tampered_sample_makes_a_sharpness_claim_not_reproduced(sharpness_dir, tmp_path, claim,
                                                                   dataset, factor):
    def change(values):
        values[0] *= factor

    broken = tampered_copy(sharpness_dir, tmp_path, "sharpness", {dataset: change},
                           where="depth=2/imbalance=0/")
    assert sharpness_claims(broken.directory)[claim].verdict == NOT_REPRODUCED
