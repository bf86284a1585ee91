"""Random weights and activation patterns, with paired, split-independent seeding (docs/studies.md, The grid and seeding).

A sample's random draws are a pure function of (root seed, study, width n, distribution, what is
drawn, sample index): never of r, eta, rho, the shard size, the block size or the process that
computes them. Draws come in fixed chunks of SEED_CHUNK consecutive samples, each chunk from its own
`numpy.random.SeedSequence` child, so any range [start, stop) of samples is reproducible on its own.
"""

from __future__ import annotations

import itertools
import logging
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from types import ModuleType

import numpy as np

from svperturb.sampling import device_draws

log = logging.getLogger(__name__)

DISTRIBUTIONS = ("gaussian", "uniform")
SEED_CHUNK = 64  # samples per seed chunk; a constant of the data format, not a tuning knob

THREADED_CHUNK_BYTES = 2**18  # smaller chunks are drawn faster on one thread than handed out
# Draws bound for a device cross the host in pieces of about this many bytes (whole seed chunks),
# so that a GPU block's size is bounded by device memory alone, not by the job's host memory.
DEVICE_TRANSFER_BYTES = 2**26
_draw_pool: ThreadPoolExecutor | None = None
_draw_count = 1


def draw_threads() -> int:
    """How many threads draw the seed chunks (set_draw_threads)."""
    return _draw_count


def set_draw_threads(count: int) -> None:
    """Draw seed chunks on `count` threads (NumPy's generators release the GIL while they fill).

    The draws are the same for every count: each chunk has its own generator. A GPU job's matrices
    are drawn on the host, so its cores decide how fast the device is fed.
    """
    global _draw_pool, _draw_count
    if count < 1:
        raise ValueError(f"draw threads: got {count}; need >= 1")
    if _draw_pool is not None:
        _draw_pool.shutdown()
    _draw_count = count
    _draw_pool = ThreadPoolExecutor(count, thread_name_prefix="svperturb-draw") if count > 1 else None


def _code(name: str) -> int:
    """Stable 32-bit code of a name (the same on every machine and Python version)."""
    return zlib.crc32(name.encode())


def _check_range(start: int, stop: int) -> None:
    if not 0 <= start < stop:
        raise ValueError(f"sample range: got [{start}, {stop}); need 0 <= start < stop")


def _chunk_sequence(seed: int, keys: tuple[int, ...], chunk: int) -> np.random.SeedSequence:
    """The SeedSequence of seed chunk `chunk` of the stream `keys`."""
    return np.random.SeedSequence(seed, spawn_key=(*keys, chunk))


def _chunk_values(sequence: np.random.SeedSequence,
                  draw_chunk: Callable[[np.random.Generator, int], np.ndarray]) -> np.ndarray:
    """The SEED_CHUNK samples of one seed chunk, from Generator(PCG64(sequence))."""
    return draw_chunk(np.random.Generator(np.random.PCG64(sequence)), SEED_CHUNK)


def _draw_range(
    seed: int,
    keys: tuple[int, ...],
    start: int,
    stop: int,
    draw_chunk: Callable[[np.random.Generator, int], np.ndarray],
) -> np.ndarray:
    """Samples [start, stop) of the stream `keys`, drawn chunk by chunk."""
    _check_range(start, stop)
    def draw(chunk: int) -> np.ndarray:
        values = _chunk_values(_chunk_sequence(seed, keys, chunk), draw_chunk)
        first = chunk * SEED_CHUNK
        return values[max(start, first) - first : min(stop, first + SEED_CHUNK) - first]

    chunks = range(start // SEED_CHUNK, (stop - 1) // SEED_CHUNK + 1)
    parts = [draw(chunks[0])]
    pool = _draw_pool if parts[0].nbytes >= THREADED_CHUNK_BYTES else None  # else threads cost more
    parts += list(pool.map(draw, chunks[1:])) if pool is not None else [draw(c) for c in chunks[1:]]
    return np.concatenate(parts)


def sample_draws(
    seed: int,
    study: str,
    n: int,
    stream: str,
    start: int,
    stop: int,
    draw_chunk: Callable[[np.random.Generator, int], np.ndarray],
) -> np.ndarray:
    """Samples [start, stop) of a study's named random stream at width n (e.g. "input",
    "bias/layer=1"): `draw_chunk(generator, size)` draws `size` samples; the result is a pure
    function of (seed, study, n, stream, sample index), like every draw in this module."""
    return _draw_range(seed, (_code(study), n, _code(stream)), start, stop, draw_chunk)


def unit_variance_matrices(
    seed: int, study: str, n: int, distribution: str, start: int, stop: int,
    stream: str = "weights", xp: ModuleType = np, scale: float = 1.0,
):
    """K_n of Theorem 33: iid entries, zero mean, unit variance; shape (stop - start, n, n).

    Gaussian N(0, 1) or Uniform on [-sqrt(3), sqrt(3)]. `stream` names independent families of
    weights in one study (e.g. "weights/layer=2"); "weights" is the first layer's. Multiplied by
    `scale` (e.g. weight_std(n, r)) and returned as an array of module `xp`, the same values bit
    for bit: on a device made there (device_draws, n <= DEVICE_DRAWS_WIDEST), or drawn on the
    host DEVICE_TRANSFER_BYTES at a time.
    """
    keys, draw, _ = _unit_variance_stream(study, n, distribution, stream)
    if xp is np:
        return _scaled(_draw_range(seed, keys, start, stop, draw), scale)
    _check_range(start, stop)
    if device_draws_used(n, xp):
        return unit_variance_on_device(seed, study, n, distribution, start, stop, stream, xp,
                                       scale)
    out = xp.empty((stop - start, n, n))
    step = max(1, DEVICE_TRANSFER_BYTES // (SEED_CHUNK * n * n * 8)) * SEED_CHUNK
    edges = [start, *range((start // step + 1) * step, stop, step), stop]  # within seed chunks
    for first, last in itertools.pairwise(edges):
        out[first - start:last - start] = xp.asarray(
            _scaled(_draw_range(seed, keys, first, last, draw), scale))
    return out


def _unit_variance_stream(study: str, n: int, distribution: str, stream: str):
    """(keys, draw, uniform) of unit_variance_matrices' stream: its seed keys, NumPy's draw of
    `size` samples, and the uniform's (low, high) (None: Gaussian)."""
    if distribution == "gaussian":
        def draw(g: np.random.Generator, size: int) -> np.ndarray:
            return g.standard_normal((size, n, n))
        uniform = None
    elif distribution == "uniform":
        half_width = np.sqrt(3.0)
        uniform = (-half_width, half_width)

        def draw(g: np.random.Generator, size: int) -> np.ndarray:
            return g.uniform(-half_width, half_width, (size, n, n))
    else:
        raise ValueError(f"distribution: got {distribution!r}; allowed: {', '.join(DISTRIBUTIONS)}")
    return (_code(study), n, _code(distribution), _code(stream)), draw, uniform


def unit_variance_on_device(seed: int, study: str, n: int, distribution: str, start: int,
                            stop: int, stream: str, xp: ModuleType, scale: float = 1.0):
    """unit_variance_matrices made on the device of `xp` by device_draws' kernel (without its
    first-call check, which uses this), chunks it cannot certify drawn here by NumPy."""
    _check_range(start, stop)
    keys, draw, uniform = _unit_variance_stream(study, n, distribution, stream)
    chunks = range(start // SEED_CHUNK, (stop - 1) // SEED_CHUNK + 1)
    return device_draws.chunk_draws(
        [_chunk_sequence(seed, keys, c) for c in chunks], chunks[0], SEED_CHUNK, start, stop, n * n,
        uniform=uniform, scale=scale, xp=xp,
        host_chunk=lambda sequence: _scaled(_chunk_values(sequence, draw), scale).reshape(-1),
    ).reshape(-1, n, n)


def describe_draws(xp: ModuleType) -> str:
    """Where the studies' weights are drawn for array module `xp` (svperturb info, and each
    shard's provenance)."""
    if not xp.__name__.startswith("cupy"):
        return "on the host (NumPy)"
    if device_draws_checked(xp):
        return (f"on the GPU up to n = {device_draws.DEVICE_DRAWS_WIDEST} (NumPy's PCG64 and "
                "ziggurat, bit for bit), on the host above")
    return "on the host (the GPU's draw kernel is not used here: see its warning)"


def device_draws_used(n: int, xp: ModuleType) -> bool:
    """Whether n x n draws for array module `xp` are made on its device: CuPy, n up to
    DEVICE_DRAWS_WIDEST, and the kernel compiled and found to agree with NumPy
    (device_draws_checked)."""
    return (xp.__name__.startswith("cupy") and n <= device_draws.DEVICE_DRAWS_WIDEST
            and device_draws_checked(xp))


@cache
def device_draws_checked(xp: ModuleType) -> bool:
    """Compiles the draw kernel and makes K_6 of samples [5, 185) on the device (three seed
    chunks, the first and last in part; Gaussian, and uniform), which must equal NumPy's bit for
    bit; otherwise one warning, and draws stay on the host."""
    try:
        for distribution in DISTRIBUTIONS:
            made = (20260530, "device draws check", 6, distribution, 5, 3 * SEED_CHUNK - 7)
            got = unit_variance_on_device(*made, "weights", xp, scale=0.75)
            got = got.get() if hasattr(got, "get") else np.asarray(got)
            if not np.array_equal(got, unit_variance_matrices(*made, scale=0.75)):
                raise ValueError("its values differ from NumPy's")
    except Exception as error:  # noqa: BLE001 - NVRTC absent, or a kernel not NumPy's
        log.warning("svperturb's device draws are not used (%s: %s); the weights are drawn on "
                    "the host", type(error).__name__, error)
        return False
    log.info("weights up to n = %d are made on the GPU: NumPy's PCG64 and ziggurat, bit for bit",
             device_draws.DEVICE_DRAWS_WIDEST)
    return True


def _scaled(values: np.ndarray, scale: float) -> np.ndarray:
    if scale != 1.0:
        values *= scale
    return values


def weight_std(n: int, r: float) -> float:
    """sigma_n = 1 / (r sqrt(8 n)), the paper's weight scale (111)."""
    return 1.0 / (r * np.sqrt(8.0 * n))


def pattern_ranks(seed: int, study: str, n: int, which: str, start: int, stop: int) -> np.ndarray:
    """A uniformly random permutation of 0..n-1 per sample; shape (stop - start, n).

    The first m entries are the positions set to eta in a pattern of D(m, n, eta) (78), so patterns
    for different m and eta are nested and paired. `which` names the pattern ("left" D1, "right" D).
    """
    keys = (_code(study), n, _code("pattern"), _code(which))
    return _draw_range(seed, keys, start, stop, lambda g, size: g.random((size, n)).argsort(axis=1))


def activation_pattern(ranks: np.ndarray, m: int, eta: float) -> np.ndarray:
    """Diagonals of D in D(m, n, eta) (78): eta at the positions ranks[..., :m], 1 elsewhere."""
    n = ranks.shape[-1]
    if not 0 <= m <= n:
        raise ValueError(f"m: got {m}; allowed: 0..{n}")
    diag = np.ones(ranks.shape, dtype=float)
    np.put_along_axis(diag, ranks[..., :m], eta, axis=-1)
    return diag


def active_count(n: int, activity: float) -> int:
    """m = round(activity * n): how many entries of a pattern equal eta."""
    return int(round(activity * n))


# --- hard bounds ---

WEIGHT_PATTERNS = ("uniform", "constant", "random_signs", "rank_one")


def bounded_unit_matrices(
    seed: int, study: str, n: int, pattern: str, start: int, stop: int, stream: str = "weights"
) -> np.ndarray:
    """Weights with every entry in [-1, 1], for the hard bounds (Lemma 27 - Theorem 32); shape
    (stop - start, n, n). Multiplied by c they satisfy |W[i,j]| <= c exactly (rounding is monotone).

    `pattern`: "uniform" iid uniform on [-1, 1]; "constant" every entry 1 (no randomness; s_1 = n,
    equality in (85)); "random_signs" iid +-1; "rank_one" s t^T with s, t iid uniformly random sign
    vectors. Like every draw here a pure function of (seed, study, n, pattern, stream, sample index);
    `stream` names the layer (e.g. "weights/layer=2").
    """
    if pattern == "uniform":
        def draw(g: np.random.Generator, size: int) -> np.ndarray:
            return g.uniform(-1.0, 1.0, (size, n, n))
    elif pattern == "constant":
        def draw(g: np.random.Generator, size: int) -> np.ndarray:
            return np.ones((size, n, n))
    elif pattern == "random_signs":
        def draw(g: np.random.Generator, size: int) -> np.ndarray:
            return 2.0 * g.integers(0, 2, (size, n, n)) - 1.0
    elif pattern == "rank_one":
        def draw(g: np.random.Generator, size: int) -> np.ndarray:
            signs = 2.0 * g.integers(0, 2, (size, 2, n)) - 1.0
            return signs[:, 0, :, None] * signs[:, 1, None, :]
    else:
        raise ValueError(f"weight pattern: got {pattern!r}; allowed: {', '.join(WEIGHT_PATTERNS)}")
    keys = (_code(study), n, _code(f"bounded/{pattern}"), _code(stream))
    return _draw_range(seed, keys, start, stop, draw)
