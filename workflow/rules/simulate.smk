# One job per (study, grid point, shard): an HDF5 shard written atomically by `svperturb simulate`,
# by `resources.ranks` MPI ranks when that is > 1 (rank 0 writes). Cores, memory, GPUs, wall time
# and the MPI launcher come from the config's `resources` block (see README).


rule simulate:
    output:
        f"{RESULTS}/shards/{{study}}/{{point}}/shard-{{shard}}.h5",
    log:
        f"{RESULTS}/logs/simulate/{{study}}/{{point}}/shard-{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/simulate/{{study}}/{{point}}/shard-{{shard}}.tsv"
    params:
        args=simulate_arguments,
        memory_mb=CONFIG["job_memory_mb"],
        blas=RESOURCES["threads_per_rank"],
    threads: RESOURCES["ranks"] * RESOURCES["threads_per_rank"]
    resources:
        mem_mb=CONFIG["job_memory_mb"] * RESOURCES["ranks"],
        runtime=RESOURCES["runtime_minutes"],
        tasks=RESOURCES["ranks"],
        cpus_per_task=RESOURCES["threads_per_rank"],
        mpi=RESOURCES["mpi_launcher"],
        gpu=RESOURCES["gpus"],
    group:
        "simulate"
    shell:
        "OMP_NUM_THREADS={params.blas} OPENBLAS_NUM_THREADS={params.blas} MKL_NUM_THREADS={params.blas} "
        f"SVPERTURB_BLAS_THREADS={{params.blas}} {LAUNCH}svperturb simulate {{params.args}} "
        "--memory-mb {params.memory_mb} --draw-threads {params.blas} --output {output} > {log} 2>&1"
