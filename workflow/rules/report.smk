# Figures, the claims table and a self-contained index.html. All three are tagged for Snakemake's
# own report (`snakemake --report report.zip`: provenance, run times), each figure with its caption
# from svperturb.analysis.captions (plain data, cheap to import).
from svperturb.analysis.captions import CAPTIONS

# The report's subcategory of each figure: the claim(s) it illustrates.
FIGURE_GROUPS = {name: (f"Claim{'s' * (len(c.claims) > 1)} {', '.join(map(str, c.claims))}"
                        if c.claims else "Depth (no numbered claim)")
                 for name, c in CAPTIONS.items()}


rule report:
    input:
        expand(f"{RESULTS}/{{study}}.h5", study=STUDIES),
        fits=f"{RESULTS}/fits.json",
        claims=f"{RESULTS}/claims.json",
    output:
        index=report(f"{RESULTS}/report/index.html", caption="../report/index.rst", category="Report"),
        claims=report(f"{RESULTS}/report/claims.md", caption="../report/claims.rst", category="Claims"),
        figures=report(
            directory(f"{RESULTS}/report/figures"),
            patterns=["{figure}.png"],
            caption="../report/figure.rst",
            category="Figures",
            subcategory=lambda wildcards: FIGURE_GROUPS[wildcards.figure],
            labels=lambda wildcards: {"figure": CAPTIONS[wildcards.figure].title},
        ),
    log:
        f"{RESULTS}/logs/report.log",
    benchmark:
        f"{RESULTS}/benchmarks/report.tsv"
    params:
        results=lambda wildcards, input: Path(input[0]).parent,
        report=lambda wildcards, output: Path(output.index).parent,
        # read by ../report/figure.rst for each figure
        captions={name: f"{c.title}. {c.look_for}" for name, c in CAPTIONS.items()},
    shell:
        "svperturb report --results {params.results} --fits {input.fits} --claims {input.claims} "
        "--output-dir {params.report} --figures-dir {output.figures} > {log} 2>&1"
