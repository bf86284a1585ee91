"""The spectra engine: batched singular values of n x n matrices by the fastest route that meets
the accuracy contract, decided per sample.

Contract (SPEC section 4; relative to float64 LAPACK): s_1 within 1e-12, every non-zero s_i
(s_* included) within 1e-10; singular values that are exactly zero because whole rows or columns
of the matrix are zero (ReLU patterns, D in D(m, n, 0)) are returned as exact zeros, so that s_*
is the smallest non-zero one.

Routes:
- "lapack": `xp.linalg.svd(compute_uv=False)` on the stack (gesdd on the CPU; batched Jacobi on
  CuPy for n <= 32, one matrix at a time above). Accurate to rounding: the reference.
- "gram": eigenvalues of the Gram matrix G = A^T A, or A A^T when A has more zero rows than zero
  columns, so that every exactly-zero line of the chosen side is a structural zero eigenvalue.
  s_i = sqrt(lambda_i). The route is fast (a matrix product and a symmetric eigensolver, both
  batched on GPUs) but squares the condition number, so each sample carries a proof of its
  error and falls back to "lapack" when the proof does not meet the contract:
  |lambda_i - s_i^2| <= delta (Weyl), with
      delta = gamma_n ||A||_1 ||A||_inf + n eps lambda_max,
  the first term bounding the rounding of fl(A^T A) (|fl(A^T A) - A^T A| <= gamma_n |A|^T |A|
  componentwise, gamma_n = n eps / (1 - n eps), ||(|A|^T |A|)||_2 <= ||A||_1 ||A||_inf), the
  second the backward error of the symmetric eigensolver (p(n) eps ||G||_2, with the modestly
  growing p(n) of LAPACK's error analysis taken as n). Then
      |s^_i - s_i| / s_i <= delta / (lambda^_i - delta)
  and the sample is certified when that is <= 1e-12 for i = 1 and <= 1e-10 for the smallest
  non-structural eigenvalue (which also separates it from the structural zeros).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from types import ModuleType

import numpy as np

log = logging.getLogger(__name__)

ROUTES = ("auto", "lapack", "gram")
TOLERANCE_S1 = 1e-12     # relative error allowed on s_1
TOLERANCE_S_MIN = 1e-10  # relative error allowed on every other non-zero s_i
EPS = float(np.finfo(np.float64).eps)

# Smallest n at which the Gram route is the faster one (svperturb bench measures both): on the
# CPU the eigensolver of the symmetric Gram matrix beats gesdd from small n on; on CuPy the
# batched Jacobi SVD is exact and fast up to n = 32 and the libraries loop above it.
GRAM_FROM_WIDTH = {"numpy": 16, "cupy": 33}


@dataclass
class Spectrum:
    """Singular values (samples, n), decreasing, structural zeros exact; `fallback` (samples,)
    marks the samples that the fast route could not certify and LAPACK computed;
    `square_error` (samples,) bounds |s^_i^2 - s_i^2| for the Gram-route samples (delta of the
    module docstring) and is 0 for LAPACK's, whose rounding the callers' tolerances cover."""

    values: object
    fallback: object
    route: str
    square_error: object

    def value_error(self, xp: ModuleType = np):
        """A bound on |s^_i - s_i| (samples, n) beyond LAPACK rounding: delta / (s^_i + s_i) with
        s_i >= sqrt(max(s^_i^2 - delta, 0)); 0 at structural zeros and LAPACK samples."""
        delta = self.square_error[:, None]
        low = xp.sqrt(xp.maximum(self.values**2 - delta, 0))
        with np.errstate(divide="ignore", invalid="ignore"):
            bound = xp.where(self.values + low > 0, delta / (self.values + low), 0.0)
        return xp.where(delta > 0, bound, 0.0)


def xp_name(xp: ModuleType) -> str:
    return "cupy" if xp.__name__.startswith("cupy") else "numpy"


def choose_route(n: int, xp: ModuleType = np) -> str:
    """The route `auto` takes for n x n matrices on this array module."""
    return "gram" if n >= GRAM_FROM_WIDTH[xp_name(xp)] else "lapack"


def lapack_singular_values(a, xp: ModuleType = np):
    """All singular values, decreasing: the library SVD (float64 LAPACK / cuSOLVER)."""
    return xp.linalg.svd(a, compute_uv=False)


def abs_norm_product(a, xp: ModuleType = np):
    """||A||_1 ||A||_inf per matrix: a bound on ||(|A|^T |A|)||_2 and on lambda_1(A^T A)."""
    absolute = xp.abs(a)
    return absolute.sum(axis=-2).max(axis=-1) * absolute.sum(axis=-1).max(axis=-1)


def gram_error_bound(norm_product, lambda_max, n: int, xp: ModuleType = np):
    """delta of the module docstring: a bound on |lambda^_i - s_i(A)^2| for every i, per matrix,
    from abs_norm_product(A) and the computed largest eigenvalue."""
    gamma = n * EPS / (1 - n * EPS)
    return gamma * norm_product + n * EPS * xp.abs(lambda_max)


def gram_can_certify_s1(a, norm_product, xp: ModuleType = np):
    """Whether the s_1 certificate can pass at all, before any eigensolver: delta with
    lambda_1 <= ||A||_1 ||A||_inf, against lambda_1 >= (largest column norm)^2."""
    lam_1_low = (a * a).sum(axis=-2).max(axis=-1)
    delta_high = gram_error_bound(norm_product, norm_product, a.shape[-1], xp)
    return delta_high <= TOLERANCE_S1 * (lam_1_low - delta_high)


def gram_singular_values(a, norm_product, xp: ModuleType = np):
    """(values, certified, delta): singular values from the Gram matrix with structural zeros
    exact, whether each sample meets the contract, and its error bound delta on the squares
    (module docstring; `norm_product` = abs_norm_product(a)). Values of uncertified samples are
    the Gram estimates; `singular_values` replaces them."""
    n = a.shape[-1]
    zero_columns = xp.all(a == 0, axis=-2).sum(axis=-1)
    zero_rows = xp.all(a == 0, axis=-1).sum(axis=-1)
    transpose = xp.swapaxes(a, -1, -2)
    # the side with more zero lines makes every one of them a structural zero eigenvalue
    use_rows = zero_rows > zero_columns
    if bool(use_rows.any()):
        gram = xp.empty_like(a)
        rows, columns = xp.nonzero(use_rows)[0], xp.nonzero(~use_rows)[0]
        gram[rows] = a[rows] @ transpose[rows]
        gram[columns] = transpose[columns] @ a[columns]
    else:
        gram = transpose @ a
    structural = xp.maximum(zero_rows, zero_columns)
    eigenvalues = xp.linalg.eigvalsh(gram)[:, ::-1]  # decreasing
    lam_1 = eigenvalues[:, 0]
    delta = gram_error_bound(norm_product, lam_1, n, xp)
    index = xp.arange(n)[None, :]
    last = n - 1 - structural  # position of the smallest non-structural eigenvalue
    lam_min = xp.take_along_axis(eigenvalues, xp.clip(last, 0, n - 1)[:, None], axis=1)[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        certified = ((lam_1 > delta) & (lam_min > delta) & (last >= 0)
                     & (delta <= TOLERANCE_S1 * (lam_1 - delta))
                     & (delta <= TOLERANCE_S_MIN * (lam_min - delta)))
    values = xp.sqrt(xp.maximum(eigenvalues, 0))
    values = xp.where(index > last[:, None], 0.0, values)
    return values, certified, delta


@cache
def _pool(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(workers, thread_name_prefix="svperturb-engine")


def singular_values(a, xp: ModuleType = np, route: str = "auto", workers: int = 1) -> Spectrum:
    """All singular values of each matrix of the stack `a` (samples, n, n), float64, by `route`
    (one of ROUTES); samples the Gram route cannot certify are recomputed by LAPACK.

    On NumPy, `workers` > 1 splits the stack over that many threads (LAPACK releases the GIL);
    give each thread one BLAS thread (`svperturb --threads`), or they oversubscribe the cores.
    Every sample's result is independent of the split."""
    if workers > 1 and xp_name(xp) == "numpy" and len(a) >= 2 * workers:
        parts = list(_pool(workers).map(lambda part: singular_values(part, xp, route),
                                        np.array_split(np.asarray(a), workers)))
        return Spectrum(np.concatenate([p.values for p in parts]),
                        np.concatenate([p.fallback for p in parts]), parts[0].route,
                        np.concatenate([p.square_error for p in parts]))
    if route not in ROUTES:
        raise ValueError(f"route: got {route!r}; allowed: {', '.join(ROUTES)}")
    a = xp.asarray(a, dtype=xp.float64)
    if a.ndim != 3 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"expected a stack of square matrices (samples, n, n), got shape {a.shape}")
    chosen = choose_route(a.shape[-1], xp) if route == "auto" else route
    if chosen == "lapack" or len(a) == 0:
        return Spectrum(lapack_singular_values(a, xp), xp.zeros(len(a), dtype=bool), "lapack",
                        xp.zeros(len(a)))
    # samples whose s_1 the Gram route cannot certify whatever its eigenvalues (a priori, O(n^2))
    norm_product = abs_norm_product(a, xp)
    hopeless = ~gram_can_certify_s1(a, norm_product, xp)
    values = xp.empty(a.shape[:-1], dtype=xp.float64)
    square_error = xp.zeros(len(a))
    fallback = hopeless.copy()
    if not bool(hopeless.any()):  # the usual case: no copy of the stack
        values[...], certified, delta = gram_singular_values(a, norm_product, xp)
        fallback = ~certified
        square_error = xp.where(certified, delta, 0.0)
    elif not bool(hopeless.all()):
        hopeful = xp.nonzero(~hopeless)[0]
        gram_values, certified, delta = gram_singular_values(a[hopeful], norm_product[hopeful], xp)
        values[hopeful] = gram_values
        fallback[hopeful] = ~certified
        square_error[hopeful] = xp.where(certified, delta, 0.0)
    if bool(fallback.any()):
        where = xp.nonzero(fallback)[0]
        values[where] = lapack_singular_values(a[where], xp)
    return Spectrum(values, fallback, "gram", square_error)
