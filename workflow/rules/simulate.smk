# One job per (study, grid point, shard): an HDF5 shard written atomically by `svperturb simulate`,
# by `resources.ranks` MPI ranks when that is > 1 (rank 0 writes). Cores, memory, GPUs, wall time
# and the MPI launcher come from the config's `resources` block (docs/configuration.md). A study with BATCHED
# axes (hard_bounds) has instead one job per shard and combination of its other axes, which
# writes the shards of every batched combination (rule simulate_<study>, below).

# What every simulate rule shares: its resources, its settings and its command.
SIMULATE_RESOURCES = dict(
    mem_mb=CONFIG["job_memory_mb"] * RESOURCES["ranks"],
    runtime=RESOURCES["runtime_minutes"],
    tasks=RESOURCES["ranks"],
    cpus_per_task=RESOURCES["threads_per_rank"],
    mpi=RESOURCES["mpi_launcher"],
    gpu=RESOURCES["gpus"],
)
SIMULATE_SETTINGS = dict(memory_mb=CONFIG["job_memory_mb"], blas=RESOURCES["threads_per_rank"])
SIMULATE_SHELL = (
    "OMP_NUM_THREADS={params.blas} OPENBLAS_NUM_THREADS={params.blas} MKL_NUM_THREADS={params.blas} "
    f"SVPERTURB_BLAS_THREADS={{params.blas}} {LAUNCH}svperturb simulate {{params.args}} "
    "--memory-mb {params.memory_mb} --draw-threads {params.blas} --output {output} > {log} 2>&1"
)


rule simulate:
    wildcard_constraints:
        study="|".join(name for name in STUDIES if name not in BATCHED_STUDIES) or "(?!)",
    output:
        f"{RESULTS}/shards/{{study}}/{{point}}/shard-{{shard}}.h5",
    log:
        f"{RESULTS}/logs/simulate/{{study}}/{{point}}/shard-{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/simulate/{{study}}/{{point}}/shard-{{shard}}.tsv"
    params:
        args=simulate_arguments,
        **SIMULATE_SETTINGS,
    threads: RESOURCES["ranks"] * RESOURCES["threads_per_rank"]
    resources:
        **SIMULATE_RESOURCES,
    group:
        "simulate"
    shell:
        SIMULATE_SHELL


for _study in BATCHED_STUDIES:

    rule:
        name:
            f"simulate_{_study}"
        wildcard_constraints:
            **{axis: "[^/]+" for axis in job_axes(_study)},
        output:
            batched_shards(_study),
        log:
            f"{RESULTS}/logs/simulate/{_study}/{batched_job_path(_study)}.log",
        benchmark:
            f"{RESULTS}/benchmarks/simulate/{_study}/{batched_job_path(_study)}.tsv"
        params:
            args=batched_simulate_arguments(_study),
            **SIMULATE_SETTINGS,
        threads: RESOURCES["ranks"] * RESOURCES["threads_per_rank"]
        resources:
            **SIMULATE_RESOURCES,
        group:
            "simulate"
        shell:
            SIMULATE_SHELL
