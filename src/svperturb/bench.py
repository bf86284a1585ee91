"""`svperturb bench`: matrices per second and accuracy of each spectra route, against the naive
library calls measured in the same run, and the end-to-end rate of the ResNet-layer statistics.

Matrices are ResNet layers W1 + I, W1 = K_n / (r sqrt(8 n)) (111), r = 2, Gaussian, and for the
s_1-and-s_n route unit-variance K_n (whose kappa ~ n defeats the Gram route). Accuracy is
the largest relative error of s_1 and of s_* (the smallest non-zero singular value) against
float64 LAPACK gesvd (SciPy, one matrix at a time) on a random subsample of each batch.
Rates are the best of `repeats` timed runs after one warm-up; compare ratios within one run.
Batches are sized by work (~n^3 per matrix; a GPU gets 1000 times more); a method too slow to
finish its batch in about `seconds` (the GPU's naive SVD above n = 32 loops over the matrices) is
timed on the first matrices of the batch that it can, at least PROBE.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import ModuleType

import numpy as np
import scipy.linalg

from svperturb.linalg import engine
from svperturb.linalg import sharpness as sharpness_routes
from svperturb.linalg.backend import to_host
from svperturb.linalg.gpu import eigenvalue_kernel
from svperturb.linalg.spectra import (
    add_identity,
    smallest_nonzero_singular_value,
    symmetric_part_extremes,
)
from svperturb.sampling import ensembles
from svperturb.sampling.ensembles import unit_variance_matrices, weight_std

log = logging.getLogger(__name__)

DEFAULT_WIDTHS = (5, 32, 33, 100, 1000)
DEVICE_DRAWS = "made on the device"  # bench_draws' step of device_draws
WORK_PER_BATCH = 3e8  # ~n^3 flops per matrix: batches of similar cost at every n
GPU_WORK = 1000       # a GPU's batches hold this many times more work (at most GPU_CAP matrices)
CPU_CAP, GPU_CAP = 20000, 100000
DEVICE_COPIES = 16    # n x n arrays per matrix that the heaviest route holds at once (extremes: A,
                      # the Gram matrix and the solver's copy, the inverse, the row slices and
                      # temporaries); 100,000 matrices of n = 100 would need 128 GB
CHECKED = 40          # matrices per cell compared with the reference
PROBE = 8             # matrices timed first, to size the prefix of a slow method (CuPy's looping
                      # SVD at n = 1000, 12/s in docs/engine.md's reference rates, would take 5 s a run for 64)
                      # (timed_prefix)


def _on_gpu(xp: ModuleType) -> bool:
    return engine.xp_name(xp) == "cupy"


def batch_size(n: int, scale: float = 1.0, xp: ModuleType = np) -> int:
    """Matrices per batch: about WORK_PER_BATCH flops (GPU_WORK times more on a GPU, whose batch
    also fits DEVICE_COPIES n x n arrays per matrix in half its free memory)."""
    work, cap = (WORK_PER_BATCH * GPU_WORK, GPU_CAP) if _on_gpu(xp) else (WORK_PER_BATCH, CPU_CAP)
    if _on_gpu(xp):
        xp.get_default_memory_pool().free_all_blocks()  # the pool's cached blocks count as free
        cap = min(cap, xp.cuda.runtime.memGetInfo()[0] // 2 // (DEVICE_COPIES * n * n * 8))
    return int(max(4, min(cap, scale * work / n**3)))


def timed_prefix(run: Callable[[object], object], stack, xp: ModuleType, repeats: int,
                 seconds: float) -> tuple[int, float, object]:
    """(m, best seconds, result) of `run` on the first m matrices of `stack`: all of them, unless
    probes say they would take longer than `seconds`. Probes start at PROBE matrices and grow 4
    times while a 4 times larger one fits `seconds` at a linear cost; m is then extrapolated
    linearly from the last. A GPU kernel with a thread per matrix costs about as much for 8
    matrices as for thousands, so a probe of 8 alone would cut its batch to a few matrices."""
    count = len(stack)
    probe = min(count, PROBE)
    while probe < count:
        elapsed, _ = timed(lambda m=probe: run(stack[:m]), xp, 1)
        if elapsed * count / probe <= seconds:
            break
        if 4 * elapsed > seconds or 4 * probe >= count:
            count = max(probe, min(count, int(probe * seconds / elapsed)))
            break
        probe *= 4
    part = stack[:count]
    best, result = timed(lambda: run(part), xp, repeats)
    return count, best, result


def checked_rows(order: np.ndarray, count: int) -> np.ndarray:
    """Up to CHECKED random rows among the first `count` (`order`: a permutation of the batch)."""
    return np.sort(order[order < count][:CHECKED])


def resnet_matrices(n: int, count: int, seed: int = 1) -> np.ndarray:
    w = unit_variance_matrices(seed, "bench", n, "gaussian", 0, count) * weight_std(n, 2.0)
    return add_identity(w, 1.0)


def _synchronize(xp: ModuleType) -> None:
    if _on_gpu(xp):
        xp.cuda.runtime.deviceSynchronize()


def timed(run: Callable[[], object], xp: ModuleType, repeats: int) -> tuple[float, object]:
    """(best seconds of `repeats` runs after a warm-up, last result)."""
    result = run()
    _synchronize(xp)
    best = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        result = run()
        _synchronize(xp)
        best = min(best, time.perf_counter() - began)
    return best, result


class Reference:
    """s_1 and s_* of a batch's matrices by float64 LAPACK gesvd (SciPy, one matrix at a time),
    computed once per matrix however many methods are checked on it."""

    def __init__(self, host: np.ndarray) -> None:
        self.host = host
        self.known: dict[int, tuple[float, float]] = {}

    def extremes(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        for row in rows:
            if int(row) not in self.known:
                s = scipy.linalg.svd(self.host[row], compute_uv=False, lapack_driver="gesvd")
                self.known[int(row)] = (s[0], float(smallest_nonzero_singular_value(s[None])[0]))
        pairs = np.array([self.known[int(row)] for row in rows])
        return pairs[:, 0], pairs[:, 1]

    def relative_errors(self, values: np.ndarray, rows: np.ndarray) -> tuple[float, float]:
        """Largest relative errors of s_1 and s_* of `values` (all singular values) at `rows`."""
        s1_ref, s_min_ref = self.extremes(rows)
        values = np.asarray(values, dtype=np.float64)[rows]
        s_min = smallest_nonzero_singular_value(values)
        return (float(np.max(np.abs(values[:, 0] - s1_ref) / s1_ref)),
                float(np.max(np.abs(s_min - s_min_ref) / s_min_ref)))


def methods(xp: ModuleType, workers: int, count: int = 0,
            n: int = 0) -> dict[str, tuple[str, Callable]]:
    """name -> (dtype, function of a device stack returning (values, fallback fraction)); for a
    batch of `count` n x n matrices on which the engine would call svperturb's kernels, those and
    the library calls they replace (kernel_methods)."""
    lib = f"{engine.xp_name(xp)}.linalg.svd"
    out = {
        f"{lib} (naive)": ("float64", lambda a: (xp.linalg.svd(a, compute_uv=False), 0.0)),
        f"{lib} (naive)/f32": ("float32", lambda a: (
            xp.linalg.svd(a.astype(xp.float32), compute_uv=False), 0.0)),
    }
    for route in ("lapack", "gram", "augmented", "auto"):
        for w in sorted({1, 1 if _on_gpu(xp) or route == "augmented" else workers}):
            def run(a, route=route, w=w):
                spectrum = engine.singular_values(a, xp, route=route, workers=w)
                return spectrum.values, float(spectrum.fallback.mean())
            suffix = f" x{w} threads" if w > 1 else ""
            out[f"engine {route}{suffix}"] = ("float64", run)
    if engine.uses_eigenvalue_kernel(count, n, xp):
        out.update(kernel_methods(xp))
    return out


def kernel_methods(xp: ModuleType) -> dict[str, tuple[str, Callable]]:
    """svperturb's spectra kernels beside the library calls they replace, raw (no certificate, no
    fallback): what engine.EIGENVALUE_KERNEL is set from."""

    def from_gram(eigenvalues):
        return lambda a: (xp.sqrt(xp.maximum(eigenvalues(xp.swapaxes(a, -1, -2) @ a), 0)), 0.0)

    def augmented(a):
        values = xp.linalg.eigvalsh(engine.augmented_matrix(a, xp))[:, ::-1]
        return xp.maximum(values[:, : a.shape[-1]], 0), 0.0

    return {
        "raw gram, library eigvalsh": ("float64", from_gram(
            lambda g: xp.linalg.eigvalsh(g)[:, ::-1])),
        "raw gram, svperturb kernel": ("float64", from_gram(
            lambda g: eigenvalue_kernel.symmetric_eigenvalues_by_kernel(g, xp))),
        "raw augmented, library eigvalsh": ("float64", augmented),
        "raw augmented, svperturb kernel": ("float64", lambda a: (xp.maximum(
            eigenvalue_kernel.singular_values_by_kernel(a, xp), 0), 0.0)),
    }


def bench_routes(widths, xp: ModuleType, workers: int, repeats: int, scale: float,
                 seconds: float = 2.0) -> list[dict]:
    rows = []
    rng = np.random.default_rng(0)
    for n in widths:
        count = batch_size(n, scale, xp)
        host = resnet_matrices(n, count)
        device = xp.asarray(host)
        order = rng.permutation(count)
        reference = Reference(host)
        for name, (dtype, run) in methods(xp, workers, count, n).items():
            timed_count, best, (values, fallback) = timed_prefix(run, device, xp, repeats, seconds)
            err_s1, err_min = reference.relative_errors(to_host(values),
                                                        checked_rows(order, timed_count))
            row = {"method": name, "n": n, "dtype": dtype, "matrices": timed_count,
                   "matrices_per_s": timed_count / best, "max_rel_err_s1": err_s1,
                   "max_rel_err_s_min": err_min, "fallback": fallback}
            log.info("%s n = %d: %.0f matrices/s, errors %.1e / %.1e", name, n,
                     row["matrices_per_s"], err_s1, err_min)
            rows.append(row)
    return rows


# --- where svperturb's kernels beat the library's eigensolver: what EIGENVALUE_KERNEL is set from -

SWEEP_WIDTHS = (33, 50, 64, 100, 150, 200, 300, 400)
SWEEP_COUNTS = (512, 2048, 8192, 32768)
# "kernel": what the engine calls (the tile kernels where eigenvalue_kernel.uses_tile, else the
# streaming ones); "streaming kernel": the streaming ones where the tile ones would run
SWEEP_METHODS = ("gram, library", "gram, kernel", "gram, streaming kernel", "augmented, library",
                 "augmented, kernel", "augmented, streaming kernel")


def kernel_sweep(widths, counts, xp: ModuleType, repeats: int, seconds: float) -> list[dict]:
    """Matrices/s of svperturb's kernels and of the library calls they replace (eigenvalues of the
    Gram matrices; the augmented route's n largest eigenvalues of [[0, A], [A^T, 0]]) on ResNet
    layers, for each n and batch size: one thread per matrix needs many matrices to fill a GPU.
    A batch holds at most what fits DEVICE_COPIES n x n arrays per matrix in half the free device
    memory; a method whose batch would take longer than `seconds` is timed on a prefix of it
    (timed_prefix) and on no larger batch."""
    rows = []
    for n in widths:
        fits = batch_size(n, scale=float("inf"), xp=xp) if _on_gpu(xp) else max(counts)
        device = xp.asarray(resnet_matrices(n, min(max(counts), fits)))
        gram = xp.swapaxes(device, -1, -2) @ device
        calls = dict(zip(SWEEP_METHODS, (
            lambda part, g=gram: xp.linalg.eigvalsh(g[: len(part)]),
            lambda part, g=gram: eigenvalue_kernel.symmetric_eigenvalues_by_kernel(
                g[: len(part)], xp),
            lambda part, g=gram: eigenvalue_kernel.symmetric_eigenvalues_by_kernel(
                g[: len(part)], xp, tile=False),
            lambda part: xp.linalg.eigvalsh(engine.augmented_matrix(part, xp)),
            lambda part: eigenvalue_kernel.singular_values_by_kernel(part, xp),
            lambda part: eigenvalue_kernel.singular_values_by_kernel(part, xp, tile=False))))
        if not eigenvalue_kernel.uses_tile(n, xp):  # "kernel" is the streaming one already
            calls = {m: c for m, c in calls.items() if not m.endswith("streaming kernel")}
        for method, call in calls.items():
            for count in (c for c in counts if c <= len(device)):
                timed_count, best, _ = timed_prefix(call, device[:count], xp, repeats, seconds)
                rows.append({"n": n, "matrices": timed_count, "method": method,
                             "matrices_per_s": timed_count / best})
                if timed_count < count:
                    break
        log.info("kernel sweep n = %d: %s", n, ", ".join(
            f"{r['method']} {r['matrices']}: {r['matrices_per_s']:.0f}/s" for r in rows
            if r["n"] == n))
    return rows


def _largest_batch_rate(rows: list[dict], n: int, method: str,
                        count: float = float("inf")) -> float | None:
    """Matrices/s of `method` at width n on the largest batch timed of at most `count` matrices
    (kernel_sweep's rows), None where none was."""
    timed = sorted((r["matrices"], r["matrices_per_s"]) for r in rows
                   if r["n"] == n and r["method"] == method and r["matrices"] <= count)
    return timed[-1][1] if timed else None


def suggested_kernel_table(rows: list[dict]) -> tuple[int, int, int] | None:
    """(smallest n, largest n, fewest matrices) for engine.EIGENVALUE_KERNEL from kernel_sweep's
    rows, or None: the first run of consecutive widths at which both kernels beat the library
    calls they replace on the largest batch timed, and the fewest matrices from which they beat
    them on every batch timed at all those widths. A library call timed on a prefix of a batch
    only counts at its largest prefix's rate."""

    def rate(n: int, method: str, count: int) -> float | None:
        return _largest_batch_rate(rows, n, method, count)

    def kernel_counts(n: int) -> list[int]:
        return sorted({r["matrices"] for r in rows
                       if r["n"] == n and r["method"].endswith("kernel")})

    def wins(n: int, count: int) -> bool:
        for kind in ("gram", "augmented"):
            kernel = [r["matrices_per_s"] for r in rows
                      if (r["n"], r["method"], r["matrices"]) == (n, f"{kind}, kernel", count)]
            library = rate(n, f"{kind}, library", count)
            if not kernel or (library is not None and kernel[0] <= library):
                return False
        return True

    widths = [n for n in sorted({r["n"] for r in rows}) if kernel_counts(n)]
    winning = [wins(n, kernel_counts(n)[-1]) for n in widths]
    if not any(winning):
        return None
    first = winning.index(True)
    run = widths[first: first + (winning[first:] + [False]).index(False)]
    counts = sorted({c for n in run for c in kernel_counts(n)})
    fewest = next(c for c in counts if all(wins(n, later) for n in run
                                          for later in kernel_counts(n) if later >= c))
    return run[0], run[-1], fewest


def format_kernel_sweep(rows: list[dict], device: str) -> str:
    lines = [(f"svperturb's spectra kernels against the library's eigensolver on {device}, "
              "matrices/s (ResNet layers; the library timed on a prefix where marked *):"),
             "| n | matrices | " + " | ".join(SWEEP_METHODS) + " |",
             "|---|---|" + "---|" * len(SWEEP_METHODS)]
    cells = {(r["n"], r["method"]): [] for r in rows}
    for r in rows:
        cells[(r["n"], r["method"])].append(r)
    for n in sorted({r["n"] for r in rows}):
        counts = sorted({r["matrices"] for r in rows if r["n"] == n and r["method"].endswith(
            "kernel")})
        for count in counts:
            row = []
            for method in SWEEP_METHODS:
                found = [r for r in cells.get((n, method), []) if r["matrices"] == count]
                if found:
                    row.append(f"{found[0]['matrices_per_s']:,.0f}")
                else:  # timed on a prefix only: its largest
                    prefix = [r for r in cells.get((n, method), []) if r["matrices"] < count]
                    row.append(f"{prefix[-1]['matrices_per_s']:,.0f}*" if prefix else "-")
            lines.append(f"| {n} | {count} | " + " | ".join(row) + " |")
    table = suggested_kernel_table(rows)
    lines.append("suggested engine.EIGENVALUE_KERNEL['cupy'] = " + (
        "None (the kernels never win)" if table is None else
        f"({table[0]}, {table[1]}, {table[2]}) (smallest n, largest n, fewest matrices)"))
    widest = suggested_widest_tile(rows)
    if widest != "no tile timed":
        lines.append(f"suggested eigenvalue_kernel.WIDEST_TILE = {widest}")
    return "\n".join(lines)


def suggested_widest_tile(rows: list[dict]):
    """eigenvalue_kernel.WIDEST_TILE from kernel_sweep's rows: the widest n up to which, at every
    width timed with the streaming kernels alongside, the tile ones (the engine's "kernel") beat
    them on the largest batch for both the Gram and the augmented route; 0 where they lose at the
    narrowest; "no tile timed" where no width had both."""
    both = sorted(n for n in {r["n"] for r in rows}
                  if _largest_batch_rate(rows, n, "gram, streaming kernel"))
    if not both:
        return "no tile timed"

    def tile_wins(n: int, kind: str) -> bool:
        tile = _largest_batch_rate(rows, n, f"{kind}, kernel")
        streaming = _largest_batch_rate(rows, n, f"{kind}, streaming kernel")
        return tile is not None and streaming is not None and tile > streaming

    widest = 0
    for n in both:
        if not (tile_wins(n, "gram") and tile_wins(n, "augmented")):
            break
        widest = n
    return widest


def bench_extremes(widths, xp: ModuleType, repeats: int, scale: float,
                   seconds: float = 2.0) -> tuple[list[dict], list[dict]]:
    """(rows, stages). rows: s_1 and s_n of unit-variance K_n (kappa ~ n: the Gram route alone
    proves few s_n), the naive SVD against engine.extremes on the Gram route with inverse
    iteration, with how each sample was proved, and which of the two engine.extremes takes (the
    unit_variance study). stages: where that route's time goes (extremes_stages), on the same
    batch."""
    rows, stages = [], []
    rng = np.random.default_rng(1)
    for n in widths:
        count = batch_size(n, scale, xp)
        host = unit_variance_matrices(2, "bench", n, "gaussian", 0, count)
        device = xp.asarray(host)
        order = rng.permutation(count)
        reference = Reference(host)
        for name, run in ((f"{engine.xp_name(xp)}.linalg.svd (naive)",
                           lambda d: xp.linalg.svd(d, compute_uv=False)),
                          ("engine extremes", lambda d: engine.extremes(d, xp, route="gram"))):
            timed_count, best, result = timed_prefix(run, device, xp, repeats, seconds)
            checked = checked_rows(order, timed_count)
            s1_ref, s_min_ref = reference.extremes(checked)
            if name.startswith("engine"):
                s1, s_min, route = (to_host(x) for x in (result.s1, result.s_min, result.route))
                ours = (s1[checked], s_min[checked])
            else:
                values, route = to_host(result)[checked], None
                ours = (values[:, 0], values[:, -1])
            rows.append({"method": name, "n": n, "matrices": timed_count,
                         "matrices_per_s": timed_count / best,
                         "max_rel_err_s1": float(np.max(np.abs(ours[0] / s1_ref - 1))),
                         "max_rel_err_s_min": float(np.max(np.abs(ours[1] / s_min_ref - 1))),
                         "by_gram": float(np.mean(route == 0)) if route is not None else 0.0,
                         "by_inverse_iteration": float(np.mean(route == 1))
                         if route is not None else 0.0,
                         "auto_takes": engine.choose_extremes_route(n, xp)})
        naive_rate, route_rate = rows[-2]["matrices_per_s"], rows[-1]["matrices_per_s"]
        log.info("K_n extremes n = %d: naive %.0f/s, engine %.0f/s", n, naive_rate, route_rate)
        if n >= 2:
            stages += extremes_stages(device, xp, repeats, seconds, route_rate, naive_rate)
    return rows, stages


def _prefix_of_split(split, count: int):
    parts, bits, row_tail, row_norm = split
    return [p[:count] for p in parts], bits, row_tail[:count], row_norm[:count]


def _extremes_calls(a, xp: ModuleType) -> dict[str, Callable]:
    """The calls engine.extremes (route gram) makes, each as a function of a prefix of `a`."""
    n = a.shape[-1]
    gram = xp.swapaxes(a, -1, -2) @ a
    inverse = xp.linalg.inv(a)
    v = xp.ones(a.shape[:-1]) / np.sqrt(n)
    split = engine.split_rows(a, xp)

    def step(part):  # one inverse-iteration step, u = X^T v, v = X u (engine._inverse_iteration)
        x = inverse[: len(part)]
        u = (xp.swapaxes(x, -1, -2) @ v[: len(part), :, None])[..., 0]
        return (x @ u[..., None])[..., 0]

    calls = {
        "sums of abs(A) (norms, zero lines)": lambda part: engine.line_sums(part, xp),
        "Gram product A^T A": lambda part: xp.swapaxes(part, -1, -2) @ part,
        "eigvalsh of A^T A": lambda part: xp.linalg.eigvalsh(gram[: len(part)]),
        "batched inverse": lambda part: xp.linalg.inv(part),
        "one inverse-iteration step": step,
        "row slices of A (once)": lambda part: engine.split_rows(part, xp),
        "split product (each certificate)": lambda part: engine.exact_matvec(
            _prefix_of_split(split, len(part)), v[: len(part)], xp),
    }
    if engine.uses_eigenvalue_kernel(len(a), n, xp):  # what the engine calls instead of eigvalsh
        calls["eigenvalues of A^T A by svperturb's kernel"] = (
            lambda part: eigenvalue_kernel.symmetric_eigenvalues_by_kernel(gram[: len(part)], xp))
    return calls


def extremes_stages(a, xp: ModuleType, repeats: int, seconds: float, route_rate: float,
                    naive_rate: float) -> list[dict]:
    """Where the time of engine.extremes (route gram, `route_rate` matrices/s on `a`) goes: each
    library call it makes, timed alone on `a`, as matrices/s and as the share of the route's time
    that one call on every matrix takes (the route's rate over the call's); the library SVD
    (`naive_rate`) for scale. The iteration step and the split product recur (up to 96 and 6
    times) for the samples still unproved."""
    n = a.shape[-1]
    rates = {"engine.extremes (route gram), whole": route_rate}
    for name, run in _extremes_calls(a, xp).items():
        timed_count, best, _ = timed_prefix(run, a, xp, repeats, seconds)
        rates[name] = timed_count / best
    rates["library SVD (naive)"] = naive_rate
    log.info("extremes stages n = %d: %s", n, ", ".join(
        f"{name} {route_rate / rate:.2f}" for name, rate in rates.items()))
    return [{"stage": name, "n": n, "matrices_per_s": rate, "share_of_route": route_rate / rate}
            for name, rate in rates.items()]


def bench_draws(widths, xp: ModuleType, threads: int, repeats: int, scale: float) -> list[dict]:
    """Gaussian K_n drawn on the host (every job's input) on 1 and `threads` threads, and, on a
    GPU, copied to the device, and made on the device (device_draws, at every width here)."""
    rows = []
    before = ensembles.draw_threads()
    for n in widths:
        count = max(ensembles.SEED_CHUNK, batch_size(n, scale, xp))
        for t in sorted({1, threads}):
            ensembles.set_draw_threads(t)
            try:
                seconds, host = timed(lambda c=count, n=n: unit_variance_matrices(
                    3, "bench", n, "gaussian", 0, c), np, repeats)
            finally:
                ensembles.set_draw_threads(before)
            rows.append({"step": "draw", "n": n, "threads": t, "matrices_per_s": count / seconds})
        if _on_gpu(xp):
            seconds, _ = timed(lambda h=host: xp.asarray(h), xp, repeats)
            rows.append({"step": "copy to device", "n": n, "threads": 1,
                         "matrices_per_s": count / seconds})
            if ensembles.device_draws_checked(xp):  # at every n, DEVICE_DRAWS_WIDEST or not
                seconds, _ = timed(lambda c=count, n=n: ensembles.unit_variance_on_device(
                    3, "bench", n, "gaussian", 0, c, "weights", xp), xp, repeats)
                chunks = -(-count // ensembles.SEED_CHUNK)  # a thread each
                rows.append({"step": DEVICE_DRAWS, "n": n, "threads": chunks,
                             "matrices_per_s": count / seconds})
        log.info("draws n = %d: %s", n, ", ".join(f"{r['matrices_per_s']:.0f}/s"
                                                  for r in rows if r["n"] == n))
    return rows


def suggested_device_draws_widest(draws: list[dict]) -> int | None:
    """device_draws.DEVICE_DRAWS_WIDEST from bench_draws' rows: the widest n up to which, at every
    width measured, the device makes the draws faster than the host draws them and copies them
    over (on the most threads measured); None where the device was not measured."""
    def rate(n: int, step: str) -> float | None:
        found = [r["matrices_per_s"] for r in draws if r["n"] == n and r["step"] == step
                 and (step != "draw" or r["threads"] == most)]
        return found[0] if found else None

    most = max((r["threads"] for r in draws if r["step"] == "draw"), default=1)
    widest = None
    for n in sorted({r["n"] for r in draws}):
        device, host, copy = rate(n, DEVICE_DRAWS), rate(n, "draw"), rate(n, "copy to device")
        if device is None or host is None or copy is None:
            return None
        if device < 1.0 / (1.0 / host + 1.0 / copy):
            break
        widest = n
    return widest


def resnet_layer_statistics(w, xp: ModuleType, rhos, route: str, workers: int) -> dict:
    """The ResNet-layer study's spectra: tau_bar, tau_low of W1; s_1, s_*, kappa of W1 + rho I
    (rho = 0, W1 alone, told to the engine as maybe ill-conditioned, as the study does)."""
    tau_low, tau_bar = symmetric_part_extremes(w, xp)
    n = w.shape[-1]
    if route == "naive":
        stack = xp.concatenate([add_identity(w, rho, xp) for rho in rhos])
        values = xp.linalg.svd(stack, compute_uv=False)
    else:
        skips = [rho for rho in rhos if rho != 0]
        stack = xp.concatenate([add_identity(w, rho, xp) for rho in skips]).reshape(-1, n, n)
        values = engine.singular_values(stack, xp, route=route, workers=workers).values
        if len(skips) < len(rhos):
            alone = engine.singular_values(w, xp, route=route, workers=workers, well_conditioned=False)
            values = xp.concatenate([alone.values, values])  # rhos are sorted: 0 first
    values = values.reshape(len(rhos), len(w), n)
    s1 = values[..., 0]
    s_min = smallest_nonzero_singular_value(values, xp)
    return {"tau_low": tau_low, "tau_bar": tau_bar, "s1": s1, "s_min": s_min, "kappa": s1 / s_min}


def bench_end_to_end(n: int, xp: ModuleType, workers: int, repeats: int, scale: float,
                     seconds: float = 2.0) -> list[dict]:
    rhos = np.linspace(0, 1, 11)
    count = max(2, batch_size(n, scale, xp) // len(rhos))
    w = xp.asarray(unit_variance_matrices(1, "bench", n, "gaussian", 0, count) * weight_std(n, 2.0))
    rows = []
    threads = [("naive", 1), ("auto", 1)]
    if workers > 1 and not _on_gpu(xp):  # CuPy has no worker threads
        threads.append(("auto", workers))
    for route, w_threads in threads:
        timed_count, best, _ = timed_prefix(
            lambda part, route=route, t=w_threads: resnet_layer_statistics(part, xp, rhos, route, t),
            w, xp, repeats, seconds)
        rows.append({"route": route, "workers": w_threads, "n": n, "samples": timed_count,
                     "rhos": len(rhos), "samples_per_s": timed_count / best})
    return rows


def format_table(rows: list[dict], end_to_end: list[dict], device: str,
                 extremes: list[dict] = (), draws: list[dict] = (),
                 stages: list[dict] = ()) -> str:
    lines = [f"svperturb bench on {device}",
             "| method | n | dtype | matrices/s | x naive | max rel err s_1 | max rel err s_* | fallback |",
             "|---|---|---|---|---|---|---|---|"]
    naive = {(r["n"]): r["matrices_per_s"] for r in rows if r["method"].endswith("(naive)")}
    for r in rows:
        lines.append(f"| {r['method']} | {r['n']} | {r['dtype']} | {r['matrices_per_s']:,.0f} | "
                     f"{r['matrices_per_s'] / naive[r['n']]:.2f} | {r['max_rel_err_s1']:.1e} | "
                     f"{r['max_rel_err_s_min']:.1e} | {r['fallback']:.3f} |")
    if extremes:
        lines += ["", "s_1 and s_n only, unit-variance K_n (float64):",
                  ("| method | n | matrices/s | x naive | max rel err s_1 | max rel err s_n | "
                   "proved by Gram | by inverse iteration |"), "|---|---|---|---|---|---|---|---|"]
        base = {r["n"]: r["matrices_per_s"] for r in extremes if r["method"].endswith("(naive)")}
        for r in extremes:
            lines.append(f"| {r['method']} | {r['n']} | {r['matrices_per_s']:,.0f} | "
                         f"{r['matrices_per_s'] / base[r['n']]:.2f} | {r['max_rel_err_s1']:.1e} | "
                         f"{r['max_rel_err_s_min']:.1e} | {r['by_gram']:.3f} | "
                         f"{r['by_inverse_iteration']:.3f} |")
        lines.append("engine.extremes(route='auto') (the unit_variance study) takes: " + ", ".join(
            f"n = {r['n']} {r['auto_takes']}" for r in extremes if r["method"] == "engine extremes"))
    if stages:
        lines += ["", ("Stages of engine.extremes (route gram) on the same K_n, each alone on every "
                       "matrix; share = its time over the whole route's:"),
                  "| stage | n | matrices/s | share of route |", "|---|---|---|---|"]
        lines += [f"| {r['stage']} | {r['n']} | {r['matrices_per_s']:,.0f} | "
                  f"{r['share_of_route']:.2f} |" for r in stages]
    if draws:
        lines += ["", ("Gaussian K_n drawn on the host (each job's input) and copied to the GPU, or "
                       "made on the GPU (threads: its seed chunks):"),
                  "| step | n | threads | matrices/s |", "|---|---|---|---|"]
        lines += [f"| {r['step']} | {r['n']} | {r['threads']} | {r['matrices_per_s']:,.0f} |"
                  for r in draws]
        if any(r["step"] == DEVICE_DRAWS for r in draws):
            lines.append("suggested device_draws.DEVICE_DRAWS_WIDEST = "
                         f"{suggested_device_draws_widest(draws)} (None: the host at every n)")
    if end_to_end:
        lines += ["", ("ResNet layer, end to end (tau_bar, tau_low; s_1, s_*, kappa of W1 + rho I, "
                       "11 values of rho):"),
                  "| route | threads | n | samples/s | x naive |", "|---|---|---|---|---|"]
        base = end_to_end[0]["samples_per_s"]
        for r in end_to_end:
            lines.append(f"| {r['route']} | {r['workers']} | {r['n']} | {r['samples_per_s']:,.1f} | "
                         f"{r['samples_per_s'] / base:.2f} |")
    return "\n".join(lines)


# --- sharpness of deep matrix factorization ---

SHARPNESS_WIDTHS = (4, 8, 16, 32, 48)
SHARPNESS_DEPTHS = (2, 4, 8)
SHARPNESS_BATCH = 32


def random_minimizers(d: int, depth: int, count: int, seed: int = 2) -> list[np.ndarray]:
    """`count` minimizers of depth `depth`: W_i d x d with iid N(0, 1/d) entries, minimizing
    ||M - W_L ... W_1||_F^2 for M their product."""
    generator = np.random.default_rng([seed, d, depth])
    return [generator.standard_normal((count, d, d)) / np.sqrt(d) for _ in range(depth)]


def bench_sharpness(widths, depths, xp: ModuleType, repeats: int,
                    batch: int = SHARPNESS_BATCH) -> list[dict]:
    """Milliseconds per minimizer of the sharpness by the dense route and by Lanczos
    (linalg/sharpness.py) for each width d (every d_i = d) and depth L, on `batch` random minimizers;
    Lanczos's steps, its largest relative difference from the dense route and its largest relative
    error bound."""
    rows = []
    for d in widths:
        for depth in depths:
            weights = [xp.asarray(w) for w in random_minimizers(d, depth, batch)]
            dense_s, dense = timed(lambda w=weights: sharpness_routes.sharpness_dense(w, xp), xp,
                                   repeats)
            lanczos_s, result = timed(lambda w=weights: sharpness_routes.sharpness_lanczos(w, xp),
                                      xp, repeats)
            dense, values = to_host(dense), to_host(result.values)
            rows.append({"d": d, "depth": depth, "batch": batch,
                         "dense_ms": 1e3 * dense_s / batch, "lanczos_ms": 1e3 * lanczos_s / batch,
                         "lanczos_steps": float(to_host(result.iterations).mean()),
                         "max_rel_diff": float(np.max(np.abs(values - dense) / dense)),
                         "max_rel_bound": float(np.max(to_host(result.error_bounds) / dense))})
            log.info("sharpness d = %d, L = %d: dense %.3g ms, lanczos %.3g ms", d, depth,
                     rows[-1]["dense_ms"], rows[-1]["lanczos_ms"])
    return rows


def format_sharpness(rows: list[dict], device: str) -> str:
    lines = [(f"Sharpness of random minimizers (W_i d x d, N(0, 1/d)) on {device}, ms per "
              "minimizer; Lanczos against the dense route:"),
             ("| d | N = d^2 | L | dense ms | Lanczos ms | dense / Lanczos | Lanczos steps | "
              "max rel diff | max rel bound |"), "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['d']} | {r['d'] ** 2} | {r['depth']} | {r['dense_ms']:.3g} | "
              f"{r['lanczos_ms']:.3g} | {r['dense_ms'] / r['lanczos_ms']:.2f} | "
              f"{r['lanczos_steps']:.1f} | {r['max_rel_diff']:.1e} | {r['max_rel_bound']:.1e} |"
              for r in rows]
    lines.append(f"sharpness(route='auto') takes the dense route up to N = "
                 f"{sharpness_routes.DENSE_LARGEST}")
    return "\n".join(lines)
