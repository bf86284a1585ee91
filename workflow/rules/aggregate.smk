# One merged HDF5 file per study: every grid point, every sample, in sample order.


rule aggregate:
    input:
        lambda wildcards: shard_paths(wildcards.study),
    output:
        f"{RESULTS}/{{study}}.h5",
    log:
        f"{RESULTS}/logs/aggregate/{{study}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/aggregate/{{study}}.tsv"
    params:
        samples=lambda wildcards: STUDIES[wildcards.study].samples,
    shell:
        "svperturb aggregate --study {wildcards.study} --samples {params.samples} "
        "--output {output} {input} > {log} 2>&1"
