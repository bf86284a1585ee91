"""The report: every figure of svperturb.analysis.figures, drawn from the merged results, claims.md
and a self-contained index.html (figures embedded, no script). The page opens with the verdicts:
how many claims were reproduced (per paper, when claims test several), which were not and why
(their headlines); then, paper by paper in the order of SOURCES, a row per claim with its one-line
headline, verdict and figures (click to enlarge; a figure of several claims is embedded in the first
one's row, and the others' rows open it), its full evidence one click away; then the depth study,
data quality and provenance."""

from __future__ import annotations

import base64
import html
import json
import logging
from pathlib import Path

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from svperturb import __version__
from svperturb.analysis.captions import CAPTIONS
from svperturb.analysis.claims import SOURCES, Results, Source
from svperturb.analysis.figures import FIGURES
from svperturb.analysis.fit import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, VERDICTS
from svperturb.results.io import write_text_atomic
from svperturb.studies.faults import FAULT_NAMES

log = logging.getLogger(__name__)

VERDICT_COLOURS = dict(zip(VERDICTS, ("#1b7837", "#b2182b", "#8c6d1f")))
FLAGGED = (NOT_REPRODUCED, INCONCLUSIVE)  # the verdicts the summary lists claim by claim


def clauses(text: str) -> list[str]:
    """A measured sentence split at its top-level '; ' (none inside brackets): one statement each."""
    items, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += (char in "([") - (char in ")]")
        if depth == 0 and text.startswith("; ", i):
            items.append(text[start:i])
            start = i + 2
    return items + [text[start:]]


def _counts(claims: list[dict]) -> dict[str, int]:
    return {v: sum(c["verdict"] == v for c in claims) for v in VERDICTS}


def by_source(claims: list[dict]) -> list[tuple[Source, list[dict]]]:
    """The claims grouped by the paper they test, in the order of SOURCES (papers without claims
    left out). A claim whose source is not registered is an error."""
    unknown = sorted({str(c.get("source")) for c in claims if c.get("source") not in SOURCES})
    if unknown:
        raise ValueError(f"claims.json: source {', '.join(unknown)} is not registered in SOURCES "
                         f"({', '.join(SOURCES)}); a claims.json without sources predates them: "
                         "run `svperturb fit` again")
    groups = [(source, [c for c in claims if c["source"] == key]) for key, source in SOURCES.items()]
    return [(source, mine) for source, mine in groups if mine]


def _claims_markdown(claims: list[dict]) -> str:
    counts, groups = _counts(claims), by_source(claims)
    lines = ["# svperturb claims table", "",
             f"{counts[REPRODUCED]} of {len(claims)} claims reproduced, "
             + ", ".join(f"{counts[v]} {v}" for v in FLAGGED) + ".", ""]
    if len(groups) > 1:
        for source, mine in groups:
            mine_counts = _counts(mine)
            lines.append(f"- {source.citation}: {mine_counts[REPRODUCED]} of {len(mine)} reproduced, "
                         + ", ".join(f"{mine_counts[v]} {v}" for v in FLAGGED) + ".")
        lines.append("")
    for verdict in FLAGGED:
        flagged = [c for c in claims if c["verdict"] == verdict]
        if flagged:
            lines += [f"{verdict.capitalize()}:", ""]
            lines += [f"- {c['id']} {c['title']}: {c['headline']}" for c in flagged] + [""]
    for source, mine in groups:
        lines += [f"## {source.citation}, *{source.title}*", "",
                  f"[arXiv:{source.arxiv}]({source.url})", "",
                  "| # | claim | headline (intervals, sample sizes) | verdict |", "|---|---|---|---|"]
        for c in mine:
            cells = [str(c["id"]), c["title"], c["headline"], f"**{c['verdict']}**"]
            lines.append("| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |")
        lines += ["", "### Evidence"]
        for c in mine:
            lines += ["", f"#### {c['id']}. {c['title']}: {c['verdict']}", "", f"Paper: {c['paper']}", ""]
            lines += [f"- {item}" for item in clauses(c["measured"])]
        lines.append("")
    return "\n".join(lines)


def _provenance(results: Results) -> list[str]:
    rows = []
    for path in sorted(results.directory.glob("*.h5")):
        with h5py.File(path, "r") as fh:
            versions = ", ".join(f"{k[8:]} {v}" for k, v in fh.attrs.items() if k.startswith("version_"))
            rows.append(f"{path.name}: {len(list(results.points(path.stem)))} grid points; {versions}")
    return rows


def data_quality(results: Results) -> list[str]:
    """One line per study: numerical faults (count, first samples with the seed) and grid points
    merged from shards of another svperturb version (aggregate --force)."""
    lines = []
    for path in sorted(results.directory.glob("*.h5")):
        points = results.points(path.stem)
        total = sum(int(p.attrs.get("samples", 0)) for p in points)
        faulty = [(p, sample, code) for p in points for sample, code in p.faults]
        count = sum(p.fault_count for p in points)
        line = (f"{path.stem}: {count} of {total} samples are numerical faults, left out of every "
                "statistic")
        if faulty:
            shown = "; ".join(f"sample {sample} (seed {p.attrs.get('seed')}, {p.path}): "
                              f"{FAULT_NAMES.get(code, code)}" for p, sample, code in faulty[:5])
            line += f": {shown}" + (" ..." if count > 5 else "")
        lines.append(line)
        for p in points:
            if p.attrs.get("version_mismatch"):
                lines.append(f"WARNING {path.stem} {p.path}: merged from shards written by "
                             f"svperturb {p.attrs['version_mismatch']} (aggregate --force), this "
                             f"report is svperturb {__version__}")
    return lines


# ---------------------------------------------------------------------------------------------
# index.html

esc = html.escape

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#222;
 max-width:1360px;margin:0 auto;padding:0 20px 40px}
h1{font-size:21px;margin:16px 0 2px}h2{font-size:17px;margin:28px 0 8px}h3{font-size:14px;margin:12px 0 4px}
.sub{color:#555;margin:0 0 12px}code{font-size:12px}
#summary{background:#f5f6f8;border:1px solid #d9dce3;border-radius:6px;padding:4px 20px 10px}
#summary h2{margin-top:10px}.counts{font-size:19px;margin:4px 0 8px}.counts b{font-size:26px}
#summary b.reproduced{color:#1b7837}#summary b.not-reproduced{color:#b2182b}
#summary b.inconclusive{color:#8c6d1f}
#summary ul{margin:2px 0;padding-left:20px}#summary li{margin:5px 0}
a{color:#1f5fa8;text-decoration:none}a:hover{text-decoration:underline}
.alert{color:#b2182b;font-weight:bold}
h3.source{font-size:15px;margin:14px 0 6px}table+h3.source{margin-top:30px}
h3.source i,h3.source a{font-weight:normal}
table{border-collapse:collapse;width:100%}
th{text-align:left;font-size:12px;font-weight:600;color:#555;border-bottom:2px solid #ccc;padding:4px 8px}
td{border-bottom:1px solid #e4e4e4;padding:9px 8px;vertical-align:top}
td.id{font-weight:bold;width:22px}td.title{width:210px;font-weight:600}td.figures{width:200px}
td.verdict{width:100px}tr.not-reproduced td{background:#fdf3f3}tr.inconclusive td{background:#fbf7ec}
.badge{display:inline-block;padding:1px 9px;border-radius:10px;color:#fff;font-size:12px;white-space:nowrap}
.headline{margin:0 0 3px}
summary{cursor:pointer;color:#1f5fa8;font-size:12px}
details .evidence{font-size:13px;margin:4px 0 8px}details ul{margin:3px 0;padding-left:18px}
pre{font-size:11px;max-height:420px;overflow:auto;background:#f7f7f7;padding:6px}
.zoom{display:none}figure{margin:0 0 8px}figure.thumb{width:200px}figure.wide{width:900px}
label.also{display:block;width:200px;font-size:11px;color:#1f5fa8;cursor:zoom-in;margin:0 0 8px}
figure img{width:100%;display:block;border:1px solid #ddd;cursor:zoom-in}
figure.thumb img{width:auto;max-width:100%;max-height:92px}
figcaption{font-size:13px;color:#333;margin-top:3px}
figure.thumb figcaption{font-size:11px;color:#666;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
figure.thumb figcaption b{font-weight:normal}.none{color:#aaa}
figure.thumb .look,figure.thumb .file{display:none}
.zoom:checked+figure{position:fixed;inset:0;z-index:9;width:auto;margin:0;padding:20px 40px;
 background:#fff;overflow:auto}
.zoom:checked+figure img{width:auto;max-width:100%;max-height:82vh;margin:auto;border:0;cursor:zoom-out}
.zoom:checked+figure figcaption{font-size:15px;color:#222;max-width:1150px;margin:12px auto;white-space:normal}
.zoom:checked+figure figcaption b{font-weight:bold}
.zoom:checked+figure .look,.zoom:checked+figure .file{display:inline}
"""


def _figure(name: str, path: Path, kind: str = "thumb") -> str:
    """The embedded PNG with its caption; a click on the image shows it full screen with the
    caption's 'what to look for' (a hidden checkbox, no script), a second click closes it."""
    caption = CAPTIONS[name]
    image = base64.b64encode(path.read_bytes()).decode()
    return (f"<input type='checkbox' class='zoom' id='zoom-{name}'><figure class='{kind}'>"
            f"<label for='zoom-{name}' title='click to enlarge'><img alt='{esc(caption.title)}' "
            f"src='data:image/png;base64,{image}'></label><figcaption><b>{esc(caption.title)}.</b> "
            f"<span class='look'>{esc(caption.look_for)}</span> <span class='file'>({path.name}; click "
            "the image to close)</span></figcaption></figure>")


NO_FIGURE = "<span class='none'>no figure</span>"


def _badge(verdict: str) -> str:
    return f"<span class='badge' style='background:{VERDICT_COLOURS[verdict]}'>{verdict}</span>"


def _figure_link(name: str, home: int) -> str:
    """In the row of a figure's other claims: its title, opening the figure embedded in claim
    `home`'s row full screen (the same checkbox)."""
    return (f"<label class='also' for='zoom-{name}' title='click to enlarge'>"
            f"{esc(CAPTIONS[name].title)} (shown with claim {home}; click to open)</label>")


def _homes(claims: list[dict], figures: dict[str, Path]) -> dict[str, int]:
    """The row that embeds each figure: the first, in the report's order, of the claims it
    illustrates (a figure of several claims is embedded once; the others' rows link to it)."""
    order = [c["id"] for _, mine in by_source(claims) for c in mine]
    return {name: next(i for i in order if i in CAPTIONS[name].claims)
            for name in figures if any(i in CAPTIONS[name].claims for i in order)}


def _claim_row(claim: dict, figures: dict[str, Path], homes: dict[str, int]) -> str:
    mine = [name for name in figures if claim["id"] in CAPTIONS[name].claims]
    look_for = "".join(f"<li><b>{esc(CAPTIONS[n].title)}</b>: {esc(CAPTIONS[n].look_for)}</li>" for n in mine)
    measured = "".join(f"<li>{esc(item)}</li>" for item in clauses(claim["measured"]))
    evidence = (f"<details><summary>evidence</summary><div class='evidence'>"
                f"<p><b>Paper.</b> {esc(claim['paper'])}</p><p><b>Measured.</b></p><ul>{measured}</ul>"
                + (f"<p><b>In the figure{'s' if len(mine) > 1 else ''} (click to enlarge).</b></p>"
                   f"<ul>{look_for}</ul>" if mine else "")
                + "<details><summary>as recorded in claims.json</summary><pre>"
                f"{esc(json.dumps(claim['evidence'], indent=1))}</pre></details></div></details>")
    thumbs = "".join(_figure(n, figures[n]) if homes[n] == claim["id"] else _figure_link(n, homes[n])
                     for n in mine)
    return (f"<tr id='claim-{claim['id']}' class='{claim['verdict'].replace(' ', '-')}'>"
            f"<td class='id'>{claim['id']}</td><td class='title'>{esc(claim['title'])}</td>"
            f"<td><p class='headline'>{esc(claim['headline'])}</p>{evidence}</td>"
            f"<td class='verdict'>{_badge(claim['verdict'])}</td>"
            f"<td class='figures'>{thumbs or NO_FIGURE}</td></tr>")


def _tally(claims: list[dict], what: str) -> str:
    """'<b>14</b> of 16 claims reproduced · <b>2</b> not reproduced · <b>0</b> inconclusive'."""
    counts = _counts(claims)
    return (f"<b class='reproduced'>{counts[REPRODUCED]}</b> of {len(claims)} {what}"
            + "".join(f" · <b class='{v.replace(' ', '-')}'>{counts[v]}</b> {v}" for v in FLAGGED))


def _source_id(source: Source) -> str:
    return f"source-{source.arxiv}"


def _summary(claims: list[dict]) -> str:
    groups = by_source(claims)
    per_source = ("<ul class='sources'>" + "".join(
        f"<li><a href='#{_source_id(source)}'>{esc(source.citation)}</a>: "
        f"{_tally(mine, 'reproduced')}</li>" for source, mine in groups) + "</ul>"
        if len(groups) > 1 else "")
    text = (f"<section id='summary'><h2>Verdicts</h2><p class='counts'>"
            f"{_tally(claims, 'claims reproduced')}</p>{per_source}"
            + "<p>Reproduced: " + (", ".join(f"<a href='#claim-{c['id']}'>{c['id']}</a>" for c in claims
                                          if c["verdict"] == REPRODUCED) or "none") + ".</p>")
    for verdict in FLAGGED:
        flagged = [c for c in claims if c["verdict"] == verdict]
        if flagged:
            text += f"<h3>{verdict.capitalize()}</h3><ul>" + "".join(
                f"<li><a href='#claim-{c['id']}'><b>Claim {c['id']}, {esc(c['title'])}</b></a>: "
                f"{esc(c['headline'])}</li>" for c in flagged) + "</ul>"
    return text + "</section>"


def _depth(depth: dict | None, figures: dict[str, Path]) -> str:
    """The depth study (no numbered claim): its figure, and its numbers one click away."""
    drawn = [name for name in figures if not CAPTIONS[name].claims]
    if not (depth or drawn):
        return ""
    numbers = [item for group in depth["measured"].split(" | ") for item in clauses(group)] if depth else []
    return ("<h2>Depth</h2><p>Descriptive: the paper makes no numbered claim about depth.</p>"
            + "".join(_figure(name, figures[name], "wide") for name in drawn)
            + ("<details><summary>numbers</summary><ul class='evidence'>"
               + "".join(f"<li>{esc(item)}</li>" for item in numbers) + "</ul></details>" if numbers else ""))


CLAIMS_HEAD = ("<table><thead><tr><th>#</th><th>claim</th><th>headline · evidence</th><th>verdict</th>"
               "<th>figure (click to enlarge)</th></tr></thead>")


def _claims_tables(claims: list[dict], figures: dict[str, Path]) -> str:
    """Per paper: a heading with its citation and link, then its claims' rows with their figures."""
    homes = _homes(claims, figures)
    return "\n".join(
        f"<h3 class='source' id='{_source_id(source)}'>{esc(source.citation)}, "
        f"<i>{esc(source.title)}</i>, <a href='{esc(source.url)}'>arXiv:{esc(source.arxiv)}</a></h3>\n"
        f"{CLAIMS_HEAD}\n<tbody>\n" + "\n".join(_claim_row(c, figures, homes) for c in mine) + "\n</tbody></table>"
        for source, mine in by_source(claims))


def _index_html(results_dir: Path, claims: list[dict], fits: dict, figures: dict[str, Path],
                quality: list[str], provenance: list[str]) -> str:
    warnings = [row for row in quality if row.startswith("WARNING")]
    banner = (f"<p class='alert'>{len(warnings)} grid point(s) merged from shards of another svperturb "
              "version: see Data quality.</p>" if warnings else "")
    sources = [source for source, _ in by_source(claims)]
    others = len(sources) - 1
    title = sources[0].title + (f" and {others} related paper{'s' * (others > 1)}" if others else "")
    cited = "; ".join(f"{s.citation}, arXiv {s.arxiv}" for s in sources)
    quality_html = "".join(f"<li{' class=alert' if row.startswith('WARNING') else ''}>{esc(row)}</li>"
                           for row in quality)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>svperturb report</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head><body>
<h1>svperturb {__version__}: {esc(title)}, reproduced</h1>
<p class="sub">{esc(cited)}. Results from <code>{esc(str(results_dir))}</code>.
Each claim's headline gives the numbers that decide its verdict, with their intervals and sample sizes N.</p>
{banner}
{_summary(claims)}
<h2>Claims</h2>
{_claims_tables(claims, figures)}
{_depth(fits.get("depth"), figures)}
<h2>Data quality</h2><ul>{quality_html}</ul>
<h2>Provenance</h2><ul>{"".join(f"<li>{esc(row)}</li>" for row in provenance)}</ul>
</body></html>
"""


def write_report(results_dir: Path, fits_path: Path, claims_path: Path, output_dir: Path,
                 figures_dir: str | Path | None = None) -> Path:
    """Draw every figure (as PNGs in figures_dir, by default output_dir), write claims.md and
    index.html (figures embedded) in output_dir; returns index.html."""
    results = Results(results_dir)
    fits = json.loads(Path(fits_path).read_text())
    claims = json.loads(Path(claims_path).read_text())
    figures_dir = Path(figures_dir or output_dir)
    for directory in (output_dir, figures_dir):
        directory.mkdir(parents=True, exist_ok=True)
    figures = {}
    for name, (draw, needs_fits) in FIGURES.items():
        log.info("drawing %s", name)
        fig = draw(results, fits) if needs_fits else draw(results)
        if fig is None:
            log.info("skipped %s: its study was not run", name)
            continue
        fig.tight_layout()
        figures[name] = figures_dir / f"{name}.png"
        fig.savefig(figures[name], dpi=110)
        plt.close(fig)
    depth = fits.get("depth")
    quality = data_quality(results)
    write_text_atomic(
        output_dir / "claims.md",
        _claims_markdown(claims) + (f"\n## Depth\n\n{depth['measured']}\n" if depth else "")
        + "\n## Data quality\n\n" + "".join(f"- {line}\n" for line in quality))
    index = output_dir / "index.html"
    write_text_atomic(index, _index_html(results_dir, claims, fits, figures, quality, _provenance(results)))
    log.info("report: %s (%d figures)", index, len(figures))
    return index
