"""The escape study's figure (claim 24): drawn from a tiny merged file and from a single grid point,
labelled, with Wilson intervals that agree with SciPy's, and embedded in claim 24's row."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from scipy import stats

from support.studies import TINY_SETTINGS, fit_and_report, simulate_study
from svperturb.analysis.captions import CAPTIONS
from svperturb.analysis.claims import Results
from svperturb.analysis.figures import FIGURES
from svperturb.analysis.figures.escape import FIGURES as ESCAPE_FIGURES
from svperturb.analysis.figures.escape import wilson_interval

SAMPLES = 24


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    directory = tmp_path_factory.mktemp("escape_grid")
    points = [f"target={t}/width={d}/depth={L}/imbalance={k}" for t in ("gaussian", "ill_conditioned")
              for d in (1, 2) for L in (2, 3) for k in (0, 1)]
    simulate_study(directory, "escape", points, SAMPLES, *TINY_SETTINGS["escape"])
    return directory


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    directory = tmp_path_factory.mktemp("escape_single")
    simulate_study(directory, "escape", ["target=gaussian/width=3/depth=4/imbalance=0.5"], 6,
                   *TINY_SETTINGS["escape"])
    return directory


def draw(directory):
    function, _ = ESCAPE_FIGURES["escape_transition"]
    fig = function(Results(directory))
    fig.canvas.draw()
    return fig


def test_the_figure_is_registered_with_its_caption_for_claim_24():
    assert set(ESCAPE_FIGURES) == {"escape_transition"} and set(ESCAPE_FIGURES) <= set(FIGURES)
    assert CAPTIONS["escape_transition"].claims == (24,)


@pytest.mark.parametrize("fixture", ["grid", "single"])
def test_the_transition_figure_draws_its_three_panels(fixture, request):
    fig = draw(request.getfixturevalue(fixture))
    assert len(fig.axes) == 3
    assert [ax.get_xlabel() for ax in fig.axes] == [
        "step factor c (η = c · 2/λ_max)", "step factor c",
        "|1 − 2c|, predicted factor per step (ratio)"]
    assert fig.axes[0].get_ylabel() == "fraction that left the minimizer"
    assert fig.axes[2].get_ylabel() == "(l_end / l_0)^(1/(2 steps)), measured (ratio)"
    assert all(ax.get_legend() is not None for ax in fig.axes)
    assert "Claim 24" in fig._suptitle.get_text()
    plt.close(fig)


def test_without_the_study_no_figure_is_drawn(tmp_path):
    function, _ = ESCAPE_FIGURES["escape_transition"]
    assert function(Results(tmp_path)) is None


def test_the_wilson_interval_is_scipys():
    successes, trials = np.array([0, 3, 17, 20]), np.array([20, 20, 20, 20])
    low, high = wilson_interval(successes, trials, 0.95)
    for k, n, a, b in zip(successes, trials, low, high):
        interval = stats.binomtest(int(k), int(n)).proportion_ci(0.95, method="wilson")
        assert (a, b) == pytest.approx((interval.low, interval.high), abs=1e-12)


def test_the_report_embeds_the_figure_in_claim_24s_row(grid, tmp_path):
    _, rows, claims = fit_and_report(grid, tmp_path)
    assert (tmp_path / "figures" / "escape_transition.png").exists()
    assert "(escape_transition.png; click" in rows["24"]
    (claim,) = [c for c in claims if c["id"] == 24]
    assert claim["verdict"] == "reproduced", claim["measured"]
