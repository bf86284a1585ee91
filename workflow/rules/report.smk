# Figures, the claims table and a self-contained index.html.


rule report:
    input:
        expand(f"{RESULTS}/{{study}}.h5", study=STUDIES),
        fits=f"{RESULTS}/fits.json",
        claims=f"{RESULTS}/claims.json",
    output:
        index=f"{RESULTS}/report/index.html",
        claims=f"{RESULTS}/report/claims.md",
    log:
        f"{RESULTS}/logs/report.log",
    benchmark:
        f"{RESULTS}/benchmarks/report.tsv"
    params:
        results=lambda wildcards, input: Path(input[0]).parent,
        report=lambda wildcards, output: Path(output.index).parent,
    shell:
        "svperturb report --results {params.results} --fits {input.fits} --claims {input.claims} "
        "--output-dir {params.report} > {log} 2>&1"
