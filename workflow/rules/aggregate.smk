# One merged HDF5 file per study: every grid point, every sample, in sample order. Every shard is
# checked against the config's seed and inner axes; accept_version_mismatch: true adds --force.


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
        settings=aggregate_settings,
    shell:
        "svperturb aggregate --study {wildcards.study} --samples {params.samples} "
        "{params.settings} --output {output} {input} > {log} 2>&1"
