"""The report: every figure of svperturb.analysis.figures, drawn from the merged results, and the claims
table, as PNGs, claims.md and a self-contained index.html."""

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
from svperturb.analysis.claims import Results
from svperturb.analysis.figures import FIGURES
from svperturb.results.io import write_text_atomic
from svperturb.studies.faults import FAULT_NAMES

log = logging.getLogger(__name__)

VERDICT_COLOURS = {"reproduced": "#1b7837", "not reproduced": "#b2182b", "inconclusive": "#8c6d1f"}


def _claims_markdown(claims: list[dict]) -> str:
    lines = ["| # | claim | paper | measured | verdict |", "|---|---|---|---|---|"]
    for c in claims:
        cells = [str(c["id"]), c["title"], c["paper"], c["measured"], f"**{c['verdict']}**"]
        lines.append("| " + " | ".join(x.replace("|", "\\|").replace("\n", " ") for x in cells) + " |")
    counts = {v: sum(c["verdict"] == v for c in claims) for v in VERDICT_COLOURS}
    summary = ", ".join(f"{k} {v}" for k, v in counts.items())
    return f"# svperturb claims table\n\n{summary}\n\n" + "\n".join(lines) + "\n"


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


def write_report(results_dir: Path, fits_path: Path, claims_path: Path, output_dir: Path) -> Path:
    """Draw every figure, write claims.md and index.html (figures embedded); returns index.html."""
    results = Results(results_dir)
    fits = json.loads(Path(fits_path).read_text())
    claims = json.loads(Path(claims_path).read_text())
    output_dir.mkdir(parents=True, exist_ok=True)
    figures = []
    for name, (caption, draw, needs_fits) in FIGURES.items():
        log.info("drawing %s", name)
        fig = draw(results, fits) if needs_fits else draw(results)
        if fig is None:
            log.info("skipped %s: its study was not run", name)
            continue
        fig.tight_layout()
        path = output_dir / f"{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        figures.append((caption, path))
    depth = fits.get("depth")
    quality = data_quality(results)
    write_text_atomic(
        output_dir / "claims.md",
        _claims_markdown(claims) + (f"\n## Depth\n\n{depth['measured']}\n" if depth else "")
        + "\n## Data quality\n\n" + "".join(f"- {line}\n" for line in quality))
    index = output_dir / "index.html"
    rows = "\n".join(
        f"<tr><td>{c['id']}</td><td>{html.escape(c['title'])}</td><td>{html.escape(c['paper'])}</td>"
        f"<td>{html.escape(c['measured'])}</td><td style='color:{VERDICT_COLOURS[c['verdict']]};"
        f"font-weight:bold'>{c['verdict']}</td></tr>"
        for c in claims)
    images = "\n".join(
        f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,"
        f"{base64.b64encode(path.read_bytes()).decode()}'><figcaption>{html.escape(caption)} "
        f"({path.name})</figcaption></figure>"
        for caption, path in figures)
    depth = fits.get("depth")
    depth_html = (f"<h2>Depth</h2><p>{html.escape(depth['measured'])}</p>" if depth else "")
    provenance = "".join(f"<li>{html.escape(row)}</li>" for row in _provenance(results))
    alert = " style='color:#b2182b;font-weight:bold'"
    quality_html = "".join(f"<li{alert if row.startswith('WARNING') else ''}>{html.escape(row)}</li>"
                           for row in quality)
    warnings = [row for row in quality if row.startswith("WARNING")]
    banner = (f"<p{alert}>{len(warnings)} grid point(s) merged from shards of another svperturb "
              "version: see Data quality.</p>" if warnings else "")
    write_text_atomic(index, f"""<!doctype html>
<html><head><meta charset="utf-8"><title>svperturb report</title>
<style>body{{font-family:sans-serif;max-width:1400px;margin:auto}}
table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:4px;vertical-align:top}}
img{{max-width:100%}}figure{{margin:2em 0}}</style></head><body>
<h1>svperturb {__version__}: Singular Value Perturbation and Deep Network Optimization, reproduced</h1>
<p>Riedi, Balestriero, Baraniuk (arXiv 2203.03099). Results from <code>{html.escape(str(results_dir))}</code>.</p>
{banner}
<h2>Claims</h2>
<table><tr><th>#</th><th>claim</th><th>paper</th><th>measured (95% intervals, sample sizes)</th><th>verdict</th></tr>
{rows}</table>
{depth_html}
<h2>Figures</h2>
{images}
<h2>Data quality</h2><ul>{quality_html}</ul>
<h2>Provenance</h2><ul>{provenance}</ul>
</body></html>
""")
    log.info("report: %s (%d figures)", index, len(figures))
    return index
