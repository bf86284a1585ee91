"""NumPy's random draws made on the GPU (draw_kernel.cu), bit for bit, so that a GPU block's
weights no longer cross from the host.

Why: config/paper.yaml draws 1.44e11 Gaussian entries, about 110 s of a 16-core node's host at
NumPy's ~8e7 entries/s per core, against the 60 s target of the whole experiment on one GPU. The
draws are kept as they are (ensembles: a seed chunk of SEED_CHUNK samples per
numpy.random.SeedSequence child, Generator(PCG64)): the host computes each chunk's PCG64 state
(pcg64_streams), and one GPU thread per chunk runs PCG64 and NumPy's ziggurat from it. A shard
is then the same whichever the backend draws on.

The ziggurat's tables are NumPy's: wi and ki read back from numpy.random itself by making PCG64
give chosen outputs (ziggurat_tables), fi = exp(-x^2 / 2) at the strips' edges. Where a GPU's
exp or log1p could decide a draw otherwise than the C library's (draw_kernel.cu: the two sides of
a comparison within TOLERANCE), the chunk is drawn again on the host; a tail value (about 1 draw
in 3,900) is written again with the C library's log1p (math.log1p, the function NumPy calls).

A thread draws a whole chunk in turn, SEED_CHUNK n^2 values, so a block takes about as long as
one chunk: the device pays off while a block has many chunks. It is used up to
DEVICE_DRAWS_WIDEST, a design estimate until `svperturb bench` measures it on a GPU (its draws
table, and the value it suggests); wider draws stay on the host.
"""

from __future__ import annotations

import logging
import math
from functools import cache
from importlib import resources
from types import ModuleType

import numpy as np

from svperturb.linalg.gpu.eigenvalue_kernel import NVRTC_OPTIONS

log = logging.getLogger(__name__)

KERNEL = "pcg64_draws"
# Widest n whose draws the GPU makes (design estimate; see the module's docstring). By arithmetic,
# at ~50 ns a value per thread a block of B samples takes 64 n^2 50 ns whatever B, against
# B n^2 / (8e7 cores) s on the host: the GPU is ahead while B > 256 cores. A GPU block holds
# B = 70e9 / (128 n^2) samples in half of an H100's memory, so with 16 cores: while n < ~365.
DEVICE_DRAWS_WIDEST = 256
# Relative gap under which a comparison of the ziggurat is not trusted to match the C library's:
# CUDA's exp and log1p are within 1 ulp (2.2e-16), fi within a few ulps of NumPy's.
TOLERANCE = 2.0**-40
THREADS_PER_BLOCK = 64
STRIPS = 256
_MULTIPLIER = 0x2360ED051FC65DA44385DF649FCCF645  # PCG64's (NumPy's) 128-bit multiplier
_BITS_128 = (1 << 128) - 1
_BITS_64 = (1 << 64) - 1


def source() -> str:
    """The kernel's source text (CUDA C, and C)."""
    return resources.files(__package__).joinpath("draw_kernel.cu").read_text()


def pcg64_streams(sequences) -> np.ndarray:
    """(chunks, 4) uint64: the PCG64 state and increment (high, low, high, low) that
    numpy.random.PCG64 seeds from each numpy.random.SeedSequence of `sequences`."""
    streams = np.empty((len(sequences), 4), dtype=np.uint64)
    for row, sequence in zip(streams, sequences):
        state = np.random.PCG64(sequence).state["state"]
        row[:] = (state["state"] >> 64, state["state"] & _BITS_64,
                  state["inc"] >> 64, state["inc"] & _BITS_64)
    return streams


def _generator_giving(output: int) -> np.random.Generator:
    """A Generator whose PCG64's next 64-bit output is `output` (its state chosen backwards)."""
    increment = 1
    after = output  # high half 0, so no rotation: the output is high ^ low = low
    before = ((after - increment) * pow(_MULTIPLIER, -1, 1 << 128)) & _BITS_128
    bits = np.random.PCG64()
    bits.state = {"bit_generator": "PCG64", "state": {"state": before, "inc": increment},
                  "has_uint32": 0, "uinteger": 0}
    return np.random.Generator(bits)


def _normal_of(output: int) -> tuple[float, bool]:
    """NumPy's standard normal when PCG64 first gives `output`, and whether it took that output
    alone (its ziggurat accepted at once)."""
    generator = _generator_giving(output)
    after_one = (generator.bit_generator.state["state"]["state"] * _MULTIPLIER + 1) & _BITS_128
    value = generator.standard_normal()
    return float(value), generator.bit_generator.state["state"]["state"] == after_one


@cache
def ziggurat_tables() -> tuple[np.ndarray, np.ndarray, float, float]:
    """(wi and fi as 512 doubles, ki as 256 uint64, r, 1 / r): the tables of NumPy's ziggurat
    for standard_normal, read back from numpy.random (random_standard_normal: an output u gives
    the strip s = u & 255, a sign bit, a = u >> 9; a wi[s] is returned at once where a < ki[s]).

    wi[s] is the value a = 1 gives; ki[s] the least a that is not returned at once (a binary
    search, 52 draws a strip); r = 2^52 wi[255], the base strip's edge; fi[s] = exp(-x_s^2 / 2)
    at x_s = 2^52 wi[s], fi[0] = 1."""
    wi = np.empty(STRIPS)
    ki = np.empty(STRIPS, dtype=np.uint64)
    for strip in range(STRIPS):
        wi[strip], _ = _normal_of((1 << 9) | strip)
        low, high = 0, 1 << 52
        while low < high:
            middle = (low + high) // 2
            if _normal_of((middle << 9) | strip)[1]:
                low = middle + 1
            else:
                high = middle
        ki[strip] = low
    edges = wi * 2.0**52
    fi = np.array([1.0, *(math.exp(-0.5 * x * x) for x in edges[1:])])
    r = float(edges[-1])
    return np.concatenate([wi, fi]), ki, r, 1.0 / r


@cache
def _compiled():
    import cupy

    return cupy.RawModule(code=source(), options=NVRTC_OPTIONS).get_function(KERNEL)


def _launch(streams: np.ndarray, plan: np.ndarray, out, gaussian: bool, low: float,
            width: float, scale: float, xp: ModuleType):
    """Runs the kernel (one thread per chunk) into `out`; returns the tail values' places and U1
    (host arrays) and each chunk's uncertain mark."""
    tables, ki, r, inverse_r = ziggurat_tables()
    chunks = len(streams)
    capacity = tail_capacity(int(plan[:, 1].sum())) if gaussian else 1
    tail_at, tail_u = xp.empty(capacity, dtype=xp.int64), xp.empty(capacity)
    tails, uncertain = xp.zeros(1, dtype=xp.uint64), xp.zeros(chunks, dtype=xp.int32)
    _compiled()(((chunks + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK,), (THREADS_PER_BLOCK,),
                (xp.asarray(streams), xp.asarray(plan), xp.asarray(tables), xp.asarray(ki), out,
                 tail_at, tail_u, tails, np.int64(capacity), uncertain, np.int32(gaussian),
                 np.float64(low), np.float64(width), np.float64(scale), np.float64(r),
                 np.float64(inverse_r), np.float64(TOLERANCE), np.int64(chunks)))
    count = min(int(tails[0]), capacity)
    return _host(tail_at[:count]), _host(tail_u[:count]), _host(uncertain).astype(bool)


def tail_capacity(values: int) -> int:
    """Room for the tail values of `values` Gaussian draws: 1 in 3,900 is one (1/256 of draws
    fall in the base strip, 6.6 % of those beyond r), with 10 standard deviations to spare."""
    expected = values * 2.6e-4
    return int(expected + 10.0 * math.sqrt(expected)) + 64


def _host(array) -> np.ndarray:
    return array.get() if hasattr(array, "get") else np.asarray(array)


def tail_values(places: np.ndarray, u1: np.ndarray, scale: float) -> np.ndarray:
    """The ziggurat's tail values as NumPy computes them, +-(r + xx), xx = -log1p(-U1) / r with
    the C library's log1p, times `scale`; `places` carries the sign in its lowest bit."""
    _, _, r, inverse_r = ziggurat_tables()
    values = np.array([r + (-inverse_r) * math.log1p(-u) for u in u1.tolist()])
    values[(places & 1).astype(bool)] *= -1.0
    return values * scale


def chunk_draws(sequences, first_chunk: int, chunk_samples: int, start: int, stop: int,
                entries: int, *, uniform: tuple[float, float] | None, scale: float, xp: ModuleType, host_chunk):
    """Samples [start, stop) of `entries` values each, made on the device of `xp` as NumPy
    makes them chunk by chunk (svperturb.sampling.ensembles): chunk first_chunk + i from
    Generator(PCG64(sequences[i])), chunk_samples samples; standard_normal, or uniform(low, high)
    where `uniform` = (low, high); times `scale`. A flat array of (stop - start) entries values;
    the chunks the kernel could not certify are drawn on the host by `host_chunk(sequence)`
    (the chunk's values, scaled, flat)."""
    plan = np.empty((len(sequences), 3), dtype=np.int64)
    for row, chunk in zip(plan, range(first_chunk, first_chunk + len(sequences))):
        first = max(start, chunk * chunk_samples)
        last = min(stop, (chunk + 1) * chunk_samples)
        row[:] = ((first - chunk * chunk_samples) * entries, (last - first) * entries,
                  (first - start) * entries)
    low, high = uniform if uniform is not None else (0.0, 0.0)
    out = xp.empty((stop - start) * entries)
    places, u1, uncertain = _launch(pcg64_streams(sequences), plan, out, uniform is None, low,
                                    high - low, scale, xp)
    if len(places):
        out[xp.asarray(places >> 1)] = xp.asarray(tail_values(places, u1, scale))
    for index in np.flatnonzero(uncertain):
        dropped, kept, first = plan[index]
        values = host_chunk(sequences[index])
        out[first:first + kept] = xp.asarray(values[dropped:dropped + kept])
    if uncertain.any():
        log.info("device draws: %d of %d seed chunks drawn again on the host (a comparison too "
                 "close to call on the GPU)", int(uncertain.sum()), len(sequences))
    return out
