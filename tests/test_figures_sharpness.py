"""The sharpness study's figures (Kamber & Parhi, arXiv 2509.25783): each draws from a tiny merged
file, and from a single grid point, with its axes labelled, and the report shows each in the rows
of every claim it illustrates."""

from __future__ import annotations

import html
import itertools
import re

import matplotlib.pyplot as plt
import pytest

from support.studies import TINY_POINTS, fit_and_report, simulate_study
from svperturb.analysis.captions import CAPTIONS
from svperturb.analysis.claims import Results
from svperturb.analysis.figures import FIGURES
from svperturb.analysis.figures.sharpness import FIGURES as SHARPNESS_FIGURES
from svperturb.results.io import point_path
from svperturb.studies import sharpness as study

GRID = {"target": ("gaussian", "ill_conditioned"), "width": (1, 3), "depth": (2, 3), "imbalance": (0.0, 0.5)}
SAMPLES = 6


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """Every point of GRID (width 1 is the scalar case; width 3 has the least over rescalings)."""
    directory = tmp_path_factory.mktemp("sharpness_grid")
    points = [dict(zip(GRID, values)) for values in itertools.product(*GRID.values())]
    simulate_study(directory, study.NAME, [point_path(p, study.AXES) for p in points], SAMPLES)
    return directory


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """The one tiny grid point: no depth 2, no width 1, no kappa = 0."""
    directory = tmp_path_factory.mktemp("sharpness_single")
    simulate_study(directory, study.NAME, [point_path(TINY_POINTS[study.NAME], study.AXES)], SAMPLES)
    return directory


def labels(fig) -> tuple[list[str], list[str]]:
    axes = [ax for ax in fig.axes if ax.get_visible()]
    return [ax.get_xlabel() for ax in axes], [ax.get_ylabel() for ax in axes]


def draw(name: str, directory):
    function, needs_fits = SHARPNESS_FIGURES[name]
    fig = function(Results(directory), {}) if needs_fits else function(Results(directory))
    fig.canvas.draw()  # layout and tick labels computed, as when saved
    return fig


def test_the_figures_are_registered_with_captions_for_their_claims():
    assert set(SHARPNESS_FIGURES) == {"sharpness_closed_forms", "sharpness_imbalance",
                                      "sharpness_cauchy_schwarz"}
    assert set(SHARPNESS_FIGURES) <= set(FIGURES)
    assert CAPTIONS["sharpness_closed_forms"].claims == (17, 18)
    assert CAPTIONS["sharpness_imbalance"].claims == (19, 20, 21, 22)
    assert CAPTIONS["sharpness_cauchy_schwarz"].claims == (23,)


@pytest.mark.parametrize("fixture", ["grid", "single"])
def test_closed_forms_figure(fixture, request):
    fig = draw("sharpness_closed_forms", request.getfixturevalue(fixture))
    xlabels, ylabels = labels(fig)
    assert len(fig.axes) == 4
    assert xlabels == ["width d (d × d factors)", "depth L", "depth L", "depth L (all widths)"]
    assert ylabels[0] == "|value − exact λ_max| / exact λ_max (ratio)"
    assert ylabels[3] == "(bound − exact) / exact (ratio)"
    drawn = fig.axes if fixture == "grid" else fig.axes[3:]  # one point: (a)-(c) say what is missing
    assert all(ax.get_yscale() == "log" for ax in drawn)
    assert "Claims 17, 18" in fig._suptitle.get_text()
    plt.close(fig)


@pytest.mark.parametrize("fixture", ["grid", "single"])
def test_imbalance_figure(fixture, request):
    directory = request.getfixturevalue(fixture)
    fig = draw("sharpness_imbalance", directory)
    targets = Results(directory).values(study.NAME, "target")
    xlabels, ylabels = labels(fig)
    assert len(fig.axes) == 4 * len(targets)
    assert set(xlabels) == {"imbalance κ"}
    for row, target in enumerate(targets):
        first, second, third, fourth = ylabels[4 * row:4 * row + 4]
        assert first == f"{target} target, d = 3\nλ_max / 2L‖M‖^(2−2/L) (ratio)"
        assert second == "λ_max / 2L‖M‖^(2−2/L) (ratio)"
        assert third == "λ_max(equal ‖Aᵢ‖‖Bᵢ‖) / least − 1 (ratio)"
        assert fourth == "spread max/min − 1 over the layers (ratio)"
    with_data = fig.axes if fixture == "grid" else fig.axes[:3]  # one point: no depth 2 for (d)
    assert all(ax.get_legend() is not None for ax in with_data)
    plt.close(fig)


@pytest.mark.parametrize("fixture", ["grid", "single"])
def test_cauchy_schwarz_figure(fixture, request):
    directory = request.getfixturevalue(fixture)
    results = Results(directory)
    targets, widths = results.values(study.NAME, "target"), results.values(study.NAME, "width")
    fig = draw("sharpness_cauchy_schwarz", directory)
    xlabels, ylabels = labels(fig)
    assert len(fig.axes) == len(targets) * len(widths)
    assert set(xlabels) == {"imbalance κ"}
    assert ylabels[0] == "2 Σᵢ ‖Aᵢ‖²‖Bᵢ‖² / λ_max (ratio)"
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == f"{targets[0]}, d = {widths[0]}" + (" (scalar)" if widths[0] == 1 else "")
    plt.close(fig)


def test_without_the_study_no_figure_is_drawn(tmp_path):
    assert all(function(Results(tmp_path)) is None for function, _ in SHARPNESS_FIGURES.values())


def test_the_report_embeds_each_figure_with_its_first_claim_and_links_it_from_the_others(grid, tmp_path):
    index, rows, claims = fit_and_report(grid, tmp_path)
    ids = {c["id"] for c in claims}
    for name in SHARPNESS_FIGURES:
        assert (tmp_path / "figures" / f"{name}.png").exists()
        home, *others = CAPTIONS[name].claims
        assert {home, *others} <= ids
        embedded = [i for i, row in rows.items() if f"({name}.png; click" in row]
        assert embedded == [str(home)]  # the image once, in its first claim's row
        assert f"<label for='zoom-{name}' title='click to enlarge'><img" in rows[str(home)]
        for claim in others:  # the other claims' rows open the same figure, and say what to look for
            assert (f"<label class='also' for='zoom-{name}' title='click to enlarge'>"
                    f"{html.escape(CAPTIONS[name].title)} (shown with claim {home}; click to open)"
                    "</label>") in rows[str(claim)]
            assert html.escape(CAPTIONS[name].look_for) in rows[str(claim)]
    zoom_ids = re.findall(r"<input type='checkbox' class='zoom' id='([^']+)'>", index)
    assert len(zoom_ids) == len(set(zoom_ids)) == index.count("data:image/png;base64,")
