"""The report opens with its verdicts (the counts, then every claim not reproduced with the reason),
then gives, paper by paper, a row per claim with a one-line headline and its evidence one click
away; every figure has a caption that says what to look for, and the page fetches nothing."""

from __future__ import annotations

import html
import json
import re

import pytest

from support.studies import simulate_study, tampered_copy
from svperturb.analysis.captions import CAPTIONS
from svperturb.analysis.claims import CLAIMS, SOURCES, Source
from svperturb.analysis.figures import FIGURES
from svperturb.analysis.fit import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, VERDICTS
from svperturb.analysis.report import by_source, clauses
from svperturb.cli import main

HEADLINE_LENGTH = 200  # characters: one line of text, at most two lines of the report's table
RIEDI = SOURCES["2203.03099"]
SECOND = Source("9999.00001", "Doe, Roe (2099)", "A Synthetic Second Paper")  # registered by two_sources


def write_report(results, claims_path, output_dir):
    """index.html and claims.md of `svperturb report` on `results` with the given claims.json."""
    assert main(["report", "--results", str(results), "--fits", str(results / "fits.json"), "--claims",
                 str(claims_path), "--output-dir", str(output_dir), "--figures-dir",
                 str(results / "figures")]) == 0
    return (output_dir / "index.html").read_text(), (output_dir / "claims.md").read_text()


def headings(page: str) -> list[tuple[str, str]]:
    """(arXiv id, everything up to the next paper's heading) per paper heading of index.html."""
    return re.findall(r"<h3 class='source' id='source-([\d.]+)'>(.*?)(?=<h3 class='source'|<h2>)", page, re.DOTALL)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Tiny resnet_layer and convnet_vs_resnet studies, fitted, one violation of (74) planted so
    that claim 1 is not reproduced; the other studies were not run, so their claims are
    inconclusive."""
    simulated, results = tmp_path_factory.mktemp("simulated"), tmp_path_factory.mktemp("results")
    widths = (5, 8, 12)
    simulate_study(simulated, "resnet_layer", [f"distribution=gaussian/width={n}/weight_scale=2" for n in widths],
                   100, "--skip", "0", "0.5", "1")
    simulate_study(simulated, "convnet_vs_resnet",
                   [f"distribution=gaussian/width={n}/weight_scale=2/activation_slope=-1/activity=0.5"
                    for n in widths], 100, "--skip", "0", "1")

    def one_violation(counts):
        counts[17, 1] = 1

    tampered_copy(simulated, results, "resnet_layer", {"violations_74": one_violation})
    files = {name: str(results / f"{name}.json") for name in ("fits", "claims")}
    assert main(["fit", "--results", str(results), "--fits", files["fits"], "--claims", files["claims"],
                 "--bootstrap", "20"]) == 0
    return results


def first_paper_claims(results) -> list[dict]:
    """The claims of the first paper alone (the others' studies were not run here)."""
    return [c for c in json.loads((results / "claims.json").read_text()) if c["source"] == RIEDI.arxiv]


@pytest.fixture(scope="module")
def report(results):
    """(claims, index.html, figures folder) of the report on `results`: one paper."""
    claims = first_paper_claims(results)
    (results / "one_paper.json").write_text(json.dumps(claims))
    index, _ = write_report(results, results / "one_paper.json", results / "report")
    return claims, index, results / "figures"


@pytest.fixture(scope="module")
def two_sources(results, tmp_path_factory):
    """(claims, index.html, claims.md) of a report whose claims.json holds the 16 claims and two
    claims of a second paper (17 reproduced, 18 not), registered for this report only."""
    claims = first_paper_claims(results)
    second = [{**claims[0], "id": 17, "source": SECOND.arxiv, "title": "A claim of the second paper",
               "verdict": REPRODUCED},
              {**claims[0], "id": 18, "source": SECOND.arxiv, "title": "Another claim of it",
               "verdict": NOT_REPRODUCED}]
    folder = tmp_path_factory.mktemp("two_sources")
    (folder / "claims.json").write_text(json.dumps(claims + second))
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(SOURCES, SECOND.arxiv, SECOND)
        index, claims_md = write_report(results, folder / "claims.json", folder / "report")
    return claims + second, index, claims_md


def test_the_first_section_counts_the_verdicts_and_says_why_claims_are_not_reproduced(report):
    claims, index, _ = report
    first = index[index.index("<section"):index.index("</section>")]
    assert index.index("</section>") < index.index("<table")
    counts = {v: sum(c["verdict"] == v for c in claims) for v in VERDICTS}
    assert counts[NOT_REPRODUCED] >= 1 and counts[INCONCLUSIVE] > 0
    assert f"{counts[REPRODUCED]}</b> of 16 claims reproduced" in first
    assert all(f"{counts[v]}</b> {v}" in first for v in (NOT_REPRODUCED, INCONCLUSIVE))
    for claim in claims:
        listed = f"<b>Claim {claim['id']}, {html.escape(claim['title'])}</b></a>: {html.escape(claim['headline'])}"
        assert (listed in first) == (claim["verdict"] != REPRODUCED), claim["id"]
    (claim_1,) = [c for c in claims if c["id"] == 1]
    assert claim_1["verdict"] == NOT_REPRODUCED and "1 violation in" in claim_1["headline"]


def test_every_claim_has_a_row_with_a_one_line_headline_and_its_evidence_a_click_away(report):
    claims, index, _ = report
    rows = dict(re.findall(r"<tr id='claim-(\d+)'(.*?)</tr>", index, re.DOTALL))
    assert sorted(map(int, rows)) == [c["id"] for c in claims] == list(range(1, 17))
    for claim in claims:
        row, headline = rows[str(claim["id"])], claim["headline"]
        assert headline and "\n" not in headline and len(headline) <= HEADLINE_LENGTH, headline
        assert f"<p class='headline'>{html.escape(headline)}</p><details>" in row
        assert f">{claim['verdict']}</span>" in row
        assert all(f"<li>{html.escape(item)}</li>" in row for item in clauses(claim["measured"]))


def test_every_figure_has_a_caption_in_its_claims_row_and_the_page_fetches_nothing(report):
    _, index, figures_dir = report
    assert set(CAPTIONS) == set(FIGURES)
    assert all(set(c.claims) <= {claim.id for claim in CLAIMS} for c in CAPTIONS.values())
    figures = re.findall(r"<figure.*?</figure>", index, re.DOTALL)
    drawn = sorted(p.stem for p in figures_dir.glob("*.png"))
    assert drawn and len(figures) == len(drawn) == index.count("data:image/png;base64,")
    rows = dict(re.findall(r"<tr id='claim-(\d+)'(.*?)</tr>", index, re.DOTALL))
    for name in drawn:
        (figure,) = [f for f in figures if f"({name}.png;" in f]
        caption = re.search(r"<figcaption>(.*?)</figcaption>", figure, re.DOTALL).group(1)
        assert html.escape(CAPTIONS[name].title) in caption and html.escape(CAPTIONS[name].look_for) in caption
        assert figure in rows[str(CAPTIONS[name].claims[0])]  # embedded with its first claim
    # the one link out is the paper's arXiv page, a link to follow, not a resource to fetch
    assert f"<a href='{RIEDI.url}'>arXiv:{RIEDI.arxiv}</a>" in index
    page = index.replace(f"<a href='{RIEDI.url}'>", "<a>")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert "<script" not in index and "url(" not in index and "@import" not in index


def test_one_paper_gets_one_heading_and_no_count_per_paper(report, results):
    claims, index, _ = report
    assert all(c["source"] == RIEDI.arxiv for c in claims)
    assert [arxiv for arxiv, _ in headings(index)] == [RIEDI.arxiv]
    assert (f"{html.escape(RIEDI.citation)}, <i>{html.escape(RIEDI.title)}</i>, "
            f"<a href='{RIEDI.url}'>arXiv:{RIEDI.arxiv}</a></h3>") in index
    assert "class='sources'" not in index
    claims_md = (results / "report" / "claims.md").read_text()
    assert f"## {RIEDI.citation}, *{RIEDI.title}*\n\n[arXiv:{RIEDI.arxiv}]({RIEDI.url})\n" in claims_md
    assert f"- {RIEDI.citation}:" not in claims_md


def test_claims_of_two_papers_are_grouped_by_paper_with_their_figures(two_sources):
    claims, index, _ = two_sources
    groups = headings(index)
    assert [arxiv for arxiv, _ in groups] == [RIEDI.arxiv, SECOND.arxiv]  # the order of SOURCES
    drawn = [name for name in re.findall(r"\((\w+)\.png; click", index) if CAPTIONS[name].claims]
    shown = []
    for (arxiv, group), source in zip(groups, (RIEDI, SECOND)):
        assert group.startswith(f"{html.escape(source.citation)}, <i>{html.escape(source.title)}</i>, "
                                f"<a href='{source.url}'>arXiv:{source.arxiv}</a></h3>")
        rows = [int(i) for i in re.findall(r"<tr id='claim-(\d+)'", group)]
        assert rows == [c["id"] for c in claims if c["source"] == arxiv]
        figures = re.findall(r"\((\w+)\.png; click", group)
        assert all(CAPTIONS[name].claims[0] in rows for name in figures)
        shown += figures
    assert drawn and shown == drawn  # each claim's figures in its paper's group, none elsewhere
    assert [int(i) for i in re.findall(r"<tr id='claim-(\d+)'", groups[1][1])] == [17, 18]


def test_the_verdicts_count_every_claim_and_each_paper_in_a_line(two_sources):
    claims, index, claims_md = two_sources
    first = index[index.index("<section"):index.index("</section>")]
    counts = {v: sum(c["verdict"] == v for c in claims) for v in VERDICTS}
    assert f"<b class='reproduced'>{counts[REPRODUCED]}</b> of 18 claims reproduced" in first
    lines = re.findall(r"<li><a href='#source-([\d.]+)'>(.*?)</li>", first)
    assert [arxiv for arxiv, _ in lines] == [RIEDI.arxiv, SECOND.arxiv]
    assert lines[1][1] == (f"{SECOND.citation}</a>: <b class='reproduced'>1</b> of 2 reproduced · "
                           "<b class='not-reproduced'>1</b> not reproduced · <b class='inconclusive'>0</b> "
                           "inconclusive")
    assert "<b>Claim 18, Another claim of it</b>" in first
    mine = [c for c in claims if c["source"] == RIEDI.arxiv]
    assert (f"- {RIEDI.citation}: {sum(c['verdict'] == REPRODUCED for c in mine)} of 16 reproduced"
            in claims_md)
    assert f"- {SECOND.citation}: 1 of 2 reproduced, 1 not reproduced, 0 inconclusive." in claims_md
    assert f"{counts[REPRODUCED]} of 18 claims reproduced" in claims_md
    # claims.md: a section per paper, in the order of SOURCES, with its table and evidence
    riedi, second = (claims_md.index(f"## {s.citation}, *{s.title}*\n\n[arXiv:{s.arxiv}]({s.url})\n")
                     for s in (RIEDI, SECOND))
    assert riedi < second
    assert all(riedi < claims_md.index(f"| {c['id']} |") < second for c in mine)
    assert all(second < claims_md.index(marker) for marker in ("| 17 |", "| 18 |", "#### 17.", "#### 18."))
    assert second > claims_md.index("#### 16.") > claims_md.index("| 16 |")


def test_a_claim_of_an_unregistered_paper_is_refused():
    with pytest.raises(ValueError, match="not registered"):
        by_source([{"id": 17, "source": "9999.00002", "verdict": REPRODUCED}])
    with pytest.raises(ValueError, match="svperturb fit"):  # a claims.json written before sources
        by_source([{"id": 1, "verdict": REPRODUCED}])


def test_clauses_split_a_sentence_at_its_semicolons_outside_brackets():
    assert clauses("a (b; c) [d; e]; f; g") == ["a (b; c) [d; e]", "f", "g"]
