# Empirical constants with confidence intervals, and a verdict for every claim.


rule fit:
    input:
        expand(f"{RESULTS}/{{study}}.h5", study=STUDIES),
    output:
        fits=f"{RESULTS}/fits.json",
        claims=f"{RESULTS}/claims.json",
    log:
        f"{RESULTS}/logs/fit.log",
    benchmark:
        f"{RESULTS}/benchmarks/fit.tsv"
    params:
        results=lambda wildcards, input: Path(input[0]).parent,
        seed=CONFIG["seed"],
        verdicts=" ".join(
            f"--{key.replace('_', '-')} {value}" for key, value in CONFIG["verdicts"].items()
        ),
    shell:
        "svperturb fit --results {params.results} --fits {output.fits} --claims {output.claims} "
        "--seed {params.seed} {params.verdicts} > {log} 2>&1"
