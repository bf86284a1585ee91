"""Command line: `svperturb simulate | aggregate | fit | report | info`, one verb per workflow rule.

The analysis layer (scipy.stats, matplotlib: about 1.5 s to import) and the benchmarks are
imported by their own verbs alone, so that the many simulate and aggregate jobs of a run do not
pay for them.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import math
import os
import platform
import socket
import sys
import time
from pathlib import Path

import jsonschema
from threadpoolctl import threadpool_limits

from svperturb import __version__, cost
from svperturb.cluster import ClusterError, cancel_orphaned_jobs, cluster_arguments
from svperturb.config import (
    COMPARES_SKIP_ENDPOINTS,
    ConfigError,
    check_results_folder,
    config_schema,
    load_config,
    parse_study_settings,
    study_configs,
)
from svperturb.linalg import engine
from svperturb.linalg.backend import BACKENDS, BackendError, select_backend
from svperturb.linalg.gpu import eigenvalue_kernel
from svperturb.results import io
from svperturb.results.io import OutputError, ShardError, write_text_atomic
from svperturb.sampling import ensembles
from svperturb.studies import (
    AXIS_TYPES,
    StudyError,
    batched_axes,
    block_size_for,
    get_study,
    grid_points,
    jobs_per_shard,
    parallel,
    spectra_rows,
)

log = logging.getLogger("svperturb")

# Axes vectorised inside a job (a study's INNER), given as lists on the command line.
INNER_AXES = ("skip", "theta")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


def parse_point(text: str, study: str) -> dict:
    """'distribution=gaussian/width=100/weight_scale=2' -> {'distribution': 'gaussian', ...},
    checked against the study's axes and the config schema's allowed values."""
    axes = get_study(study).AXES
    point = {}
    for part in text.strip("/").split("/"):
        key, sep, value = part.partition("=")
        if not sep or key not in AXIS_TYPES:
            raise ConfigError(f"--point: bad component {part!r}; expected axis=value with axis in "
                             f"{', '.join(axes)}")
        try:
            point[key] = AXIS_TYPES[key](value)
        except ValueError:
            raise ConfigError(f"--point: {key}={value!r} is not a {AXIS_TYPES[key].__name__}") from None
    if set(point) != set(axes):
        raise ConfigError(f"--point: study {study} needs exactly the axes {', '.join(axes)}; "
                         f"got {', '.join(point) or 'none'}")
    grid_schema = config_schema()["$defs"]["grid"]
    for key, value in point.items():
        try:
            jsonschema.validate([value], grid_schema["properties"][key])
        except jsonschema.ValidationError as exc:
            raise ConfigError(f"--point: {key}={value!r} not allowed ({exc.message})") from None
    return point


def cmd_simulate(args: argparse.Namespace) -> int:
    inner = inner_values(args, args.study)
    settings = parse_study_settings(args.study, args.settings)  # the study's own, in every point
    points = [{**parse_point(text, args.study), **inner, **settings, "seed": args.seed}
              for text in args.point]
    if len(args.output) != len(points) or len(set(args.output)) != len(args.output):
        raise ConfigError(f"--output: got {len(args.output)} paths for {len(points)} --point "
                          "values; need a distinct path per point, in the same order")
    if not 0 <= args.start < args.stop:
        raise ConfigError(f"--start/--stop: got [{args.start}, {args.stop}); allowed: "
                          "0 <= start < stop")
    here = parallel.world()
    backend = select_backend(args.backend)
    ensembles.set_draw_threads(args.draw_threads)
    free = None
    if backend.is_gpu:
        free = backend.xp.cuda.runtime.memGetInfo()[0]
        if args.device_memory_mb:  # e.g. ranks sharing one GPU: each stays within its share
            cap = args.device_memory_mb * 2**20
            backend.xp.get_default_memory_pool().set_limit(size=cap)
            free = min(free, cap)
    provenance = {  # the job's, the same in each of its shards
        "backend": backend.name,
        "device": backend.device,
        "eigensolver": engine.describe_eigensolver(backend.xp),
        "draws": ensembles.describe_draws(backend.xp),
        "hostname": socket.gethostname(),
        "ranks": here.size,
        # under SLURM: the job and the step (a number when srun started the ranks, else absent)
        "slurm_job_id": os.environ.get("SLURM_JOB_ID", ""),
        "slurm_step_id": os.environ.get("SLURM_STEP_ID", ""),
        "command": " ".join(sys.argv),
        **{f"version_{k}": v for k, v in io.software_versions().items()},
    }
    _simulate_points(args, points, args.output, provenance, backend.xp, free, here)
    return 0


def _simulate_points(args: argparse.Namespace, points: list[dict], outputs: list[str],
                     provenance: dict, xp, free, here) -> None:
    """One shard of each grid point of the job (cmd_simulate), point k's written to outputs[k] by
    rank 0. The points are computed block by block together (studies.simulate_points_range), so
    that a batched study shares their draws; each shard is the one a job of its point alone
    writes, but for its attributes block_size (the smallest of the points') and wall_seconds (its
    share of the job's time)."""
    study = get_study(args.study)
    start, stop = args.start, args.stop
    block_size = args.block_size or min(block_size_for(args.study, point, args.memory_mb, free)
                                        for point in points)
    if not here.is_root:  # rank 0 gathers and writes; the others compute their blocks
        parallel.simulate_range_ranks(args.study, points, start, stop, block_size, xp,
                                      [lambda *block: None] * len(points), here,
                                      args.keep_spectra)
        return
    n_spectra = spectra_rows(start, stop, args.keep_spectra)
    with contextlib.ExitStack() as stack:
        writers = []
        for point, output in zip(points, outputs):
            attrs = {
                "study": args.study,
                "point": io.point_path(point, study.AXES),
                "point_json": json.dumps(point, sort_keys=True),
                **io.grid_attrs(args.study, point),
                "seed": args.seed,
                "sample_start": start,
                "sample_stop": stop,
                "block_size": block_size,
                "keep_spectra": args.keep_spectra,
                "data_hash": io.data_hash({"study": args.study, "point": point}),
                "format_version": io.FORMAT_VERSION,
                **provenance,
            }
            writers.append(stack.enter_context(
                io.ShardWriter(output, attrs, stop - start, n_spectra, 1 / len(points))))
        log.info("simulate %s %s samples [%d, %d) on %d rank(s) -> %s", args.study,
                 io.point_path(points[0], study.AXES) if len(points) == 1
                 else f"{len(points)} points together,", start, stop, here.size,
                 outputs[0] if len(points) == 1 else f"a shard each ({outputs[0]} ... {outputs[-1]})")
        parallel.simulate_range_ranks(args.study, points, start, stop, block_size, xp,
                                      [writer.write for writer in writers], here,
                                      args.keep_spectra)
    log.info("wrote %s", outputs[0] if len(outputs) == 1 else f"{len(outputs)} shards")


def _axis_summary(values: list) -> str:
    """A grid axis for `info`: the list itself, or for long ones (skip_points) count and range."""
    if len(values) <= 12:
        return str(values)
    return f"{len(values)} values in [{min(values):g}, {max(values):g}]"


def inner_values(args: argparse.Namespace, study_name: str) -> dict[str, list[float]]:
    """The inner axes of `study_name` from --skip / --theta, checked (simulate and aggregate)."""
    study = get_study(study_name)
    inner = {}
    for axis in INNER_AXES:
        values = getattr(args, axis)
        if axis not in study.INNER:
            if values:
                raise ConfigError(f"--{axis}: study {study_name} has no inner axis {axis}; "
                                  f"its inner axes: {', '.join(study.INNER) or 'none'}")
            continue
        if not values:
            raise ConfigError(f"--{axis}: study {study_name} needs the list of {axis} values")
        inner[axis] = sorted(set(values))
    if "skip" in inner and any(not 0 <= rho <= 1 for rho in inner["skip"]):
        raise ConfigError(f"--skip: got {args.skip}; allowed: values in [0, 1]")
    if study_name in COMPARES_SKIP_ENDPOINTS and not {0.0, 1.0} <= set(inner["skip"]):
        raise ConfigError(f"--skip: got {args.skip}; allowed: values in [0, 1] including 0 "
                          f"(ConvNet) and 1 (ResNet), which study {study_name} compares")
    if "theta" in inner and any(t <= 0 for t in inner["theta"]):
        raise ConfigError(f"--theta: got {args.theta}; allowed: values > 0")
    return inner


def cmd_aggregate(args: argparse.Namespace) -> int:
    expected = None
    if args.seed is not None:  # the settings every shard must have been computed with
        inner = inner_values(args, args.study)
        settings = parse_study_settings(args.study, args.settings)

        @functools.cache  # a point's shards share it: parse and check each point once
        def expected(path: str) -> dict:
            return {**parse_point(path, args.study), **inner, **settings, "seed": args.seed}

    merged = io.merge_shards(args.study, args.shards, args.samples, args.output, expected,
                             force=args.force)
    log.info("merged %d shards into %s: %d grid points x %d samples",
             len(args.shards), args.output, len(merged), args.samples)
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    from svperturb.analysis.claims import evaluate
    from svperturb.analysis.fit import FitSettings

    settings = FitSettings(
        confidence=args.confidence,
        bootstrap=args.bootstrap,
        limit_tolerance=args.limit_tolerance,
        law_tolerance=args.law_tolerance,
        negligible_probability=args.negligible_probability,
        high_probability=args.high_probability,
        seed=args.seed,
    )
    log.info("fitting the claims on %s (bootstrap %d)", args.results, args.bootstrap)
    fits, claims = evaluate(Path(args.results), settings)
    Path(args.fits).parent.mkdir(parents=True, exist_ok=True)
    _write_json(Path(args.fits), fits)
    _write_json(Path(args.claims), claims)
    for claim in claims:
        log.info("claim %2d %-45s %s", claim["id"], claim["title"][:45], claim["verdict"])
    return 0


def _jsonable(value):
    """Plain JSON values: NumPy scalars and arrays to Python, NaN and infinities to null."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _write_json(path: Path, data) -> None:
    """Write atomically: a reader never sees half a file."""
    write_text_atomic(path, json.dumps(_jsonable(data), indent=1, allow_nan=False) + "\n")


def cmd_report(args: argparse.Namespace) -> int:
    from svperturb.analysis.report import write_report

    try:
        index = write_report(Path(args.results), Path(args.fits), Path(args.claims),
                             Path(args.output_dir), args.figures_dir)
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        raise OutputError(f"cannot write the report in {args.output_dir}: {exc}") from exc
    print(index)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from svperturb import bench

    backend = select_backend(args.backend)
    ensembles.set_draw_threads(args.threads)  # the batches are drawn on the host
    if args.kernel_sweep:
        if not eigenvalue_kernel.kernel_available(backend.xp):
            raise ConfigError(f"--kernel-sweep: svperturb's spectra kernels run only on CuPy where "
                              f"NVRTC compiles them; backend here: {backend.name} "
                              f"({backend.device})")
        rows = bench.kernel_sweep(args.widths or bench.SWEEP_WIDTHS,
                                  args.counts or bench.SWEEP_COUNTS, backend.xp, args.repeats,
                                  args.seconds)
        print(bench.format_kernel_sweep(rows, backend.device))
        try:
            resources = eigenvalue_kernel.kernel_resources()
        except Exception as error:  # noqa: BLE001 - a diagnostic: the sweep stands without it
            log.warning("kernel resources unavailable (%s: %s)", type(error).__name__, error)
            resources = {}
        for name, used in resources.items():
            print(f"{name}: {used['registers']} registers, {used['local_bytes']} bytes of local "
                  "memory per thread")
        if args.output:
            Path(args.output).parent.mkdir(parents=True, exist_ok=True)
            _write_json(Path(args.output), {
                "device": backend.device, "backend": backend.name,
                "versions": io.software_versions(), "kernel_sweep": rows,
                "suggested_eigenvalue_kernel": bench.suggested_kernel_table(rows),
                "suggested_widest_tile": bench.suggested_widest_tile(rows),
                "kernel_resources": resources})
            log.info("wrote %s", args.output)
        return 0
    if args.sharpness:
        rows = bench.bench_sharpness(args.widths or bench.SHARPNESS_WIDTHS,
                                     args.depths or bench.SHARPNESS_DEPTHS, backend.xp, args.repeats)
        print(bench.format_sharpness(rows, backend.device))
        if args.output:
            Path(args.output).parent.mkdir(parents=True, exist_ok=True)
            _write_json(Path(args.output), {"device": backend.device, "backend": backend.name,
                                            "versions": io.software_versions(), "sharpness": rows})
            log.info("wrote %s", args.output)
        return 0
    args.widths = args.widths or list(bench.DEFAULT_WIDTHS)
    rows = bench.bench_routes(args.widths, backend.xp, args.threads, args.repeats, args.scale,
                              args.seconds)
    end_to_end = (bench.bench_end_to_end(args.end_to_end_width, backend.xp, args.threads,
                                         args.repeats, args.scale, args.seconds)
                  if args.end_to_end_width else [])
    extremes, stages = bench.bench_extremes(args.widths, backend.xp, args.repeats, args.scale,
                                            args.seconds)
    draws = bench.bench_draws(args.widths, backend.xp, args.threads, args.repeats, args.scale)
    table = bench.format_table(rows, end_to_end, backend.device, extremes, draws, stages)
    print(table)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        _write_json(Path(args.output), {"device": backend.device, "backend": backend.name,
                                        "threads": args.threads, "versions": io.software_versions(),
                                        "routes": rows, "end_to_end": end_to_end,
                                        "extremes": extremes, "stages": stages,
                                        "draws": draws, "suggested_device_draws_widest":
                                            bench.suggested_device_draws_widest(draws)})
        log.info("wrote %s", args.output)
    return 0


def cmd_cluster_args(args: argparse.Namespace) -> int:
    print(" ".join(cluster_arguments(load_config(args.config))))
    return 0


def cmd_slurm_cancel(args: argparse.Namespace) -> int:
    cancel_orphaned_jobs(load_config(args.config), Path.cwd(), timeout=args.timeout)
    return 0


def _results_folder(config: dict) -> Path:
    """The config's results folder, checked as the workflow checks it (run from the checkout)."""
    cwd = Path.cwd()
    check_results_folder(config["results"], cwd, cwd if (cwd / "Snakefile").is_file() else None)
    return Path(config["results"])


def cmd_info(args: argparse.Namespace) -> int:
    if args.print:
        if not args.config:
            raise ConfigError("--print: needs --config, whose results folder it prints")
        results = _results_folder(load_config(args.config))
        print(results / "report" / "index.html" if args.print == "report" else results)
        return 0
    backend = select_backend(args.backend)
    print(f"svperturb on {socket.gethostname()} ({platform.platform()})")
    print(f"backend: {backend.name}   device: {backend.device}")
    for key, value in io.software_versions().items():
        print(f"  {key:10s} {value}")

    print(f"spectra engine on {backend.name} (route auto):")
    for line in engine.describe_routes(backend.xp):
        print(f"  {line}")

    print(f"random weights: drawn {ensembles.describe_draws(backend.xp)}")
    if args.config:

        config = load_config(args.config)
        results = _results_folder(config)
        print(f"config {args.config}: valid; seed {config['seed']}, job_memory_mb {config['job_memory_mb']}")
        print(f"  results folder: {results} (report: {results / 'report' / 'index.html'})")
        total_jobs = 0
        for name, study in study_configs(config).items():
            points = list(grid_points(name, study.grid))
            jobs = jobs_per_shard(name, study.grid) * study.n_shards
            total_jobs += jobs
            axes = ", ".join(f"{a}={_axis_summary(study.grid[a])}"
                             for a in get_study(name).AXES + get_study(name).INNER)
            batched = (f" of {len(points) * study.n_shards // jobs} points each (batched: "
                       f"{', '.join(batched_axes(name))})" if batched_axes(name) else "")
            print(f"  {name}: {len(points)} grid points x {study.samples} samples "
                  f"({study.n_shards} shards of {study.shard_size}) = {jobs} simulate "
                  f"jobs{batched}; {axes}")
        print(f"  total: {total_jobs} simulate jobs")
        if args.cost:
            _print_cost(config, backend)
    elif args.cost:
        raise ConfigError("--cost: needs --config, whose jobs it probes")
    return 0


def _print_cost(config: dict, backend) -> None:
    """info --cost: every job of one shard probed on a few samples (svperturb.cost)."""
    print(f"cost, estimated by probing each job on {backend.name}:", flush=True)
    costs = []
    for name, study in study_configs(config).items():
        began = time.perf_counter()
        costs.append(cost.study_cost(study, config["seed"], config["keep_spectra"], backend.xp))
        log.info("cost: %s probed in %.1f s", name, time.perf_counter() - began)
    resources = config["resources"]
    for line in cost.format_costs(costs, cost.process_start_seconds(), backend.device,
                                  resources["runtime_minutes"], resources["ranks"]):
        print(line)


def build_parser() -> argparse.ArgumentParser:

    parser = argparse.ArgumentParser(prog="svperturb", description=__doc__)
    parser.add_argument("--version", action="version", version=f"svperturb {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("simulate", help="simulate one shard of grid points into HDF5 files")
    p.add_argument("--study", required=True)
    p.add_argument("--point", required=True, nargs="+",
                   help="grid point, e.g. distribution=gaussian/width=100; several: computed in "
                        "turn by this one process, each into the --output in its position")
    p.add_argument("--skip", type=float, nargs="+", help="skip coefficients rho (inner axis)")
    p.add_argument("--theta", type=float, nargs="+", help="theta of Theorem 39 (inner axis)")
    p.add_argument("--settings", nargs="+", default=[], metavar="KEY=VALUE",
                   help="the study's own settings (escape: step_factor=LOW,HIGH max_steps=N "
                        "start_distance=X escape_factor=X stay_factor=X); those left out take "
                        "the config schema's defaults")
    p.add_argument("--start", type=int, required=True, help="first sample index of the shard")
    p.add_argument("--stop", type=int, required=True, help="one past the last sample index")
    p.add_argument("--seed", type=int, required=True)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--block-size", type=int, help="matrices per block (default: from --memory-mb)")
    size.add_argument("--memory-mb", type=int, default=1000,
                      help="memory budget of the job; blocks are sized to stay within it")
    p.add_argument("--device-memory-mb", type=_positive_int,
                   help="cap of CuPy's memory pool on the GPU (blocks are sized to it, and an "
                        "allocation beyond it halves the block and retries)")
    p.add_argument("--keep-spectra", type=int, default=16)
    p.add_argument("--backend", choices=BACKENDS, default="auto")
    p.add_argument("--draw-threads", type=_positive_int, default=1,
                   help="threads drawing the random matrices on the host (the same draws for any "
                        "number); the workflow gives each rank its cores")
    p.add_argument("--output", required=True, nargs="+", help="one shard file per --point")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("aggregate", help="validate and merge a study's shards")
    p.add_argument("--study", required=True)
    p.add_argument("--samples", type=int, required=True, help="samples expected per grid point")
    p.add_argument("--output", required=True)
    p.add_argument("--seed", type=int,
                   help="root seed of the config: every shard must match it and the inner axes")
    p.add_argument("--skip", type=float, nargs="+", help="skip coefficients of the config (inner axis)")
    p.add_argument("--theta", type=float, nargs="+", help="theta values of the config (inner axis)")
    p.add_argument("--settings", nargs="+", default=[], metavar="KEY=VALUE",
                   help="the study's own settings of the config (as simulate takes them; with "
                        "--seed, every shard must match them)")
    p.add_argument("--force", action="store_true",
                   help="merge shards written by another svperturb version (the report flags it)")
    p.add_argument("shards", nargs="+")
    p.set_defaults(func=cmd_aggregate)

    p = sub.add_parser("fit", help="estimate the paper's constants and judge its claims")
    p.add_argument("--results", required=True, help="directory holding <study>.h5")
    p.add_argument("--fits", required=True, help="output fits.json")
    p.add_argument("--claims", required=True, help="output claims.json")
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("--bootstrap", type=int, default=400)
    p.add_argument("--limit-tolerance", type=float, default=0.01)
    p.add_argument("--law-tolerance", type=float, default=0.05)
    p.add_argument("--negligible-probability", type=float, default=1e-3)
    p.add_argument("--high-probability", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("report", help="figures, claims table and index.html")
    p.add_argument("--results", required=True)
    p.add_argument("--fits", required=True)
    p.add_argument("--claims", required=True)
    p.add_argument("--output-dir", required=True)
    p.add_argument("--figures-dir", help="where the figures' PNGs go (default: --output-dir)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("cluster-args", help="Snakemake arguments a config implies for cluster runs "
                                            "(--group-components from resources.group_size)")
    p.add_argument("--config", required=True)
    p.set_defaults(func=cmd_cluster_args)

    p = sub.add_parser("slurm-cancel", help="cancel the SLURM jobs that a lost run of this config "
                                            "left queued or running in this directory, and wait "
                                            "until they are gone (before resuming)")
    p.add_argument("--config", required=True)
    p.add_argument("--timeout", type=float, default=600, help="seconds to wait for them (600)")
    p.set_defaults(func=cmd_slurm_cancel)

    p = sub.add_parser("bench", help="speed and accuracy of the spectra routes vs the naive library SVD")
    p.add_argument("--backend", choices=BACKENDS, default="auto")
    p.add_argument("--widths", type=_positive_int, nargs="+", metavar="N",
                   help="n of the matrices (default: 5 32 33 100 1000; with --kernel-sweep "
                        "33 50 64 100 150 200 300 400)")
    p.add_argument("--threads", type=_positive_int, default=os.cpu_count() or 1,
                   help="engine worker threads on the CPU, one BLAS thread each (default: all cores)")
    p.add_argument("--repeats", type=_positive_int, default=3, help="timed runs per cell; the best counts")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every batch size (default 1)")
    p.add_argument("--seconds", type=float, default=2.0,
                   help="a method slower than this on a whole batch is timed on a prefix of it")
    p.add_argument("--end-to-end-width", type=int, default=100, metavar="N",
                   help="n of the end-to-end ResNet-layer row (0: none)")
    p.add_argument("--kernel-sweep", action="store_true",
                   help="instead: svperturb's spectra kernels against the library's eigensolver "
                        "for each width and batch size, and the EIGENVALUE_KERNEL and "
                        "WIDEST_TILE they suggest (CuPy only)")
    p.add_argument("--counts", type=_positive_int, nargs="+", metavar="M",
                   help="batch sizes of --kernel-sweep (default: 512 2048 8192 32768)")
    p.add_argument("--sharpness", action="store_true",
                   help="instead: the sharpness of deep matrix factorization by the dense route "
                        "and by Lanczos, per width d (default 4 8 16 32 48) and depth")
    p.add_argument("--depths", type=_positive_int, nargs="+", metavar="L",
                   help="depths of --sharpness (default: 2 4 8)")
    p.add_argument("--output", help="also write the table as JSON here")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("info", help="backend, versions and (with --config) a summary of a config")
    p.add_argument("--config", help="validate and summarise this config file")
    p.add_argument("--backend", choices=BACKENDS, default="auto")
    p.add_argument("--cost", action="store_true",
                   help="with --config: estimate each study's core-hours by running every job of "
                        "one shard on a few samples (one core; at least 0.1 s a job, one sample's time "
                        "where a sample takes longer)")
    p.add_argument("--print", choices=("results", "report"),
                   help="print only the config's results folder, or its report's path")
    p.set_defaults(func=cmd_info)
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"got {value}; must be >= 1")
    return value


def blas_threads(argv: list[str]) -> int | None:
    """BLAS threads for this process, or None to leave BLAS as it is: a benchmark, and a simulate
    started by an MPI launcher (its ranks share the job's cores), take one each (or
    SVPERTURB_BLAS_THREADS), so that the engine's workers and the ranks do not oversubscribe."""
    if "bench" in argv[:3] or ("simulate" in argv[:3] and parallel.launched_by_mpi()):
        return int(os.environ.get("SVPERTURB_BLAS_THREADS", "1"))
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    threads = blas_threads(argv)
    try:
        with (threadpool_limits(threads, user_api="blas") if threads is not None
              else contextlib.nullcontext()):
            return args.func(args)
    except OutputError as exc:
        log.error("%s", exc)
        _failed_writes.append(exc)
        return 2
    except (BackendError, ClusterError, ConfigError, ShardError, StudyError) as exc:
        log.error("%s", exc)
        return 2


_failed_writes: list[Exception] = []


def run() -> None:
    """Console entry point (`svperturb`, `python -m svperturb`).

    After HDF5 failed to write a file (full disk), the library retries closing it when Python
    shuts down and can crash there (SIGSEGV) after the error was reported; the process then ends
    at once, with the exit code of the reported error.
    """
    code = main()
    if _failed_writes:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)
