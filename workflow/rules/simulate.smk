# One job per (study, grid point, shard): an HDF5 shard written atomically by `svperturb simulate`.


rule simulate:
    output:
        f"{RESULTS}/shards/{{study}}/{{point}}/shard-{{shard}}.h5",
    log:
        f"{RESULTS}/logs/simulate/{{study}}/{{point}}/shard-{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/simulate/{{study}}/{{point}}/shard-{{shard}}.tsv"
    params:
        args=simulate_arguments,
    threads: 1
    resources:
        mem_mb=CONFIG["job_memory_mb"],
    shell:
        "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads} "
        "svperturb simulate {params.args} --memory-mb {resources.mem_mb} --output {output} "
        "> {log} 2>&1"
