"""The spectra engine: batched singular values of n x n matrices by the fastest route that meets
the accuracy contract, decided per sample.

Contract (docs/engine.md; relative to float64 LAPACK): s_1 within 1e-12, every non-zero s_i
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
- "augmented": the n largest eigenvalues of the symmetric H = [[0, A], [A^T, 0]], whose
  eigenvalues are +-s_i (reference rates, docs/engine.md: full accuracy at 8 times the work of the Gram matrix,
  and on CuPy 8-19 times faster than its SVD at n = 50-200). H is formed without rounding, so
  |s^_i - s_i| <= delta = 2n eps s^_1 (the eigensolver's backward error, p(2n) taken as 2n as
  above): absolute on every s_i, so relative eps kappa, not kappa^2. Certified as the Gram route,
  with delta on s_i instead of s_i^2; else "lapack". Where svperturb's kernel runs
  (EIGENVALUE_KERNEL), H is not formed: the kernel reduces it by diag(U, V), U and V the
  Golub-Kahan bidiagonalization's reflectors, to a 2n x 2n tridiagonal (eigenvalue_kernel.cu), and
  delta = 3n eps s^_1 (the reduction's backward error on A, p(n) = n, plus the QR steps', 2n).
Samples the Gram route cannot certify go to "augmented" before "lapack" where that is faster
(AUGMENTED_WIDTHS). Where the augmented route proves every s_i but s_n (kappa beyond its reach,
s_n isolated), inverse iteration refines s_n as in extreme_singular_values. A fast route whose
eigensolver reports a failure certifies none of its samples.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import NamedTuple

import numpy as np

from svperturb.linalg.gpu import eigenvalue_kernel
from svperturb.linalg.spectra import numerical_rank, smallest_nonzero_singular_value

log = logging.getLogger(__name__)

ROUTES = ("auto", "lapack", "gram", "augmented")
TOLERANCE_S1 = 1e-12     # relative error allowed on s_1
TOLERANCE_S_MIN = 1e-10  # relative error allowed on every other non-zero s_i
EPS = float(np.finfo(np.float64).eps)

# Smallest n at which the Gram route is the faster one (svperturb bench measures both): on the
# CPU the eigensolver of the symmetric Gram matrix beats gesdd from small n on; on CuPy the
# batched Jacobi SVD is exact and fast up to n = 32 and the libraries loop above it.
GRAM_FROM_WIDTH = {"numpy": 16, "cupy": 33}
# The same for stacks in which many matrices may be too ill-conditioned for the Gram route
# (ConvNet and ReLU layers: singular_values(..., well_conditioned=False)); None: never. On the CPU
# an uncertified sample costs the Gram attempt and LAPACK, about 1.8 gesdd, so the attempt pays
# only where fewer than about a fifth fail; on CuPy it costs a few percent of the looping SVD that
# it and the augmented route save (docs/engine.md, Reference rates).
GRAM_FROM_WIDTH_MIXED = {"numpy": None, "cupy": 33}
# Widths (lowest, highest) at which samples the Gram route cannot certify try the augmented route
# before LAPACK (None: never). On the CPU syevd of a 2n x 2n matrix costs about 4 gesdd of n x n;
# on CuPy (docs/engine.md, Reference rates) the augmented eigvalsh beats the looping SVD 19x at n = 50, 10x at
# n = 100, 8x at n = 200, and loses at n = 1000 (8 against 12 matrices/s).
AUGMENTED_WIDTHS = {"numpy": None, "cupy": (33, 200)}


@dataclass
class Spectrum:
    """Singular values (samples, n), decreasing, structural zeros exact; `fallback` (samples,)
    marks the samples that the fast routes could not certify and LAPACK computed, `augmented`
    (samples,) those the augmented route certified; `square_error` (samples,) bounds
    |s^_i^2 - s_i^2| for the samples of a fast route and is 0 for LAPACK's, whose rounding the
    callers' tolerances cover; `absolute_error` (samples,) bounds |s^_i - s_i| for the augmented
    route's samples (delta of the module docstring) and is 0 for the others."""

    values: object
    fallback: object
    route: str
    square_error: object
    absolute_error: object
    augmented: object

    def value_error(self, xp: ModuleType = np):
        """A bound on |s^_i - s_i| (samples, n) beyond LAPACK rounding: the augmented route's
        delta, or from the Gram route's delta / (s^_i + s_i) with s_i >= sqrt(max(s^_i^2 - delta,
        0)); 0 at structural zeros and LAPACK samples."""
        delta = self.square_error[:, None]
        low = xp.sqrt(xp.maximum(self.values**2 - delta, 0))
        with np.errstate(divide="ignore", invalid="ignore"):
            bound = xp.where(self.values + low > 0, delta / (self.values + low), 0.0)
        bound = xp.where(self.absolute_error[:, None] > 0, self.absolute_error[:, None], bound)
        return xp.where((delta > 0) & (self.values > 0), bound, 0.0)

    def condition_number_error(self, xp: ModuleType = np):
        """A bound on |kappa^ - kappa| (samples,) beyond LAPACK rounding, kappa = s_1 / s_*:
        with |s^_1 - s_1| <= e_1 and |s^_* - s_*| <= e_*, kappa lies in
        [(s^_1 - e_1)/(s^_* + e_*), (s^_1 + e_1)/(s^_* - e_*)], so
        |kappa^ - kappa| <= kappa^ (e_1/s^_1 + e_*/s^_*) / (1 - e_*/s^_*); 0 where e_1 = e_* = 0."""
        error = self.value_error(xp)
        star = xp.clip(numerical_rank(self.values, xp) - 1, 0, self.values.shape[-1] - 1)
        s_star = xp.take_along_axis(self.values, star[:, None], axis=1)[:, 0]
        e_star = xp.take_along_axis(error, star[:, None], axis=1)[:, 0]
        s1, e1 = self.values[:, 0], error[:, 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            r1, r_star = xp.where(e1 > 0, e1 / s1, 0.0), xp.where(e_star > 0, e_star / s_star, 0.0)
            return xp.where(r1 + r_star > 0, (s1 / s_star) * (r1 + r_star) / (1 - r_star), 0.0)


def xp_name(xp: ModuleType) -> str:
    return "cupy" if xp.__name__.startswith("cupy") else "numpy"


def _gram_or_lapack(table: dict, n: int, xp: ModuleType) -> str:
    """"gram" where `table` (a smallest width per array module, None: never) says so, else "lapack"."""
    width = table[xp_name(xp)]
    return "gram" if width is not None and n >= width else "lapack"


def choose_route(n: int, xp: ModuleType = np, well_conditioned: bool = True) -> str:
    """The route `auto` takes for n x n matrices on this array module, for a stack whose matrices
    are mostly well-conditioned or, with well_conditioned=False, maybe not."""
    return _gram_or_lapack(GRAM_FROM_WIDTH if well_conditioned else GRAM_FROM_WIDTH_MIXED, n, xp)


def _stack_of_square_matrices(a, route: str, routes: tuple[str, ...], xp: ModuleType):
    """`a` as float64 on xp, after the checks every entry point makes: the route is one of
    `routes`, the array a stack of square matrices (samples, n, n)."""
    if route not in routes:
        raise ValueError(f"route: got {route!r}; allowed: {', '.join(routes)}")
    a = xp.asarray(a, dtype=xp.float64)
    if a.ndim != 3 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"expected a stack of square matrices (samples, n, n), got shape {a.shape}")
    return a


def describe_routes(xp: ModuleType = np) -> list[str]:
    """What `auto` takes on this array module, one line per need (`svperturb info`)."""
    name = xp_name(xp)

    def from_width(width, fast: str) -> str:
        return "lapack at every n" if width is None else f"lapack below n = {width}, {fast} from it"

    widths = AUGMENTED_WIDTHS[name]
    return [
        f"all singular values: {from_width(GRAM_FROM_WIDTH[name], 'gram')}",
        ("all singular values, stacks that may be ill-conditioned (ConvNet layers): "
         f"{from_width(GRAM_FROM_WIDTH_MIXED[name], 'gram')}"),
        "uncertified samples: " + ("lapack" if widths is None else
                                   f"augmented for {widths[0]} <= n <= {widths[1]}, then lapack"),
        f"s_1, s_n, s_*: {from_width(EXTREMES_GRAM_FROM_WIDTH[name], 'gram + inverse iteration')}",
        f"s_1 alone: {from_width(LARGEST_GRAM_FROM_WIDTH[name], 'gram')}",
        f"a priori s_1 filter: {'cautious' if CAUTIOUS_S1_FILTER[name] else 'estimate'}",
        f"symmetric eigenvalues: {describe_eigensolver(xp)}",
    ]


def describe_eigensolver(xp: ModuleType = np) -> str:
    """Which eigensolver symmetric_eigenvalues and the augmented route call on this array module
    (EIGENVALUE_KERNEL)."""
    table = EIGENVALUE_KERNEL[xp_name(xp)]
    if table is None:
        return "the library's"
    kernel = (f"svperturb's kernels for {table[0]} <= n <= {table[1]} on {table[2]} matrices or "
              "more, the library's otherwise")
    if not eigenvalue_kernel.kernel_available(xp):
        return f"the library's (would be {kernel}, but they do not compile here)"
    widest = eigenvalue_kernel.widest_tile(xp)
    return (f"{kernel}; the tile kernels up to n = {widest} (once they agree with the streaming "
            "ones here), the streaming ones above")


def lapack_singular_values(a, xp: ModuleType = np):
    """All singular values, decreasing: the library SVD (float64 LAPACK / cuSOLVER)."""
    return xp.linalg.svd(a, compute_uv=False)


class LineSums(NamedTuple):
    """Sums of |a_ij| along each row and along each column, (samples, n) each: one pass over |A|
    gives both ||A||_1 ||A||_inf and the zero lines."""

    rows: object
    columns: object

    def norm_product(self):
        """||A||_1 ||A||_inf per matrix: a bound on ||(|A|^T |A|)||_2 and on lambda_1(A^T A)."""
        return self.columns.max(axis=-1) * self.rows.max(axis=-1)

    def zero_lines(self):
        """(zero rows, zero columns) per matrix: a sum of absolute values is 0 only for a line of
        zeros."""
        return (self.rows == 0).sum(axis=-1), (self.columns == 0).sum(axis=-1)

    def take(self, index) -> LineSums:
        return LineSums(self.rows[index], self.columns[index])


def line_sums(a, xp: ModuleType = np) -> LineSums:
    absolute = xp.abs(a)
    return LineSums(absolute.sum(axis=-1), absolute.sum(axis=-2))


def abs_norm_product(a, xp: ModuleType = np):
    """||A||_1 ||A||_inf per matrix (LineSums.norm_product)."""
    return line_sums(a, xp).norm_product()


def gram_error_bound(norm_product, lambda_max, n: int, xp: ModuleType = np):
    """delta of the module docstring: a bound on |lambda^_i - s_i(A)^2| for every i, per matrix,
    from abs_norm_product(A) and the computed largest eigenvalue."""
    gamma = n * EPS / (1 - n * EPS)
    return gamma * norm_product + n * EPS * xp.abs(lambda_max)


# Whether the a priori s_1 filter is cautious (below) on this array module: on the CPU a failed Gram
# attempt costs about 0.8 gesdd on top of LAPACK, so it is tried only where s_1 certainly passes; on
# CuPy an attempt costs a few percent of the looping SVD or the augmented route behind it.
CAUTIOUS_S1_FILTER = {"numpy": True, "cupy": False}


def s1_certificate_likely(a, norm_product, xp: ModuleType = np, cautious: bool | None = None):
    """Whether s_1's certificate is worth trying, before any eigensolver (a filter, not a proof: a
    wrong answer costs time, never accuracy). Both forms fail n = 1000's product rounding
    (gamma_n ||A||_1 ||A||_inf ~ 2e-11 lambda_1 for K_n, W1 + I alike).

    cautious (CAUTIOUS_S1_FILTER by default): only where it certainly passes, delta bounded with
    lambda_1 <= ||A||_1 ||A||_inf against lambda_1 >= the largest squared column norm; this also
    turns away K_100 and W1 + 0.25 I at n = 100, whose s_1 (and, for the latter, s_n) pass.
    Otherwise: delta estimated with lambda_1 ~ ||A^T y||^2, y the unit vector along A's largest
    column (a Rayleigh quotient of A A^T after one power step: at most lambda_1, about
    0.6 lambda_1 for K_n), against the contract."""
    if cautious is None:
        cautious = CAUTIOUS_S1_FILTER[xp_name(xp)]
    squares = xp.einsum("sij,sij->sj", a, a)  # squared column norms, without a temporary
    n = a.shape[-1]
    if cautious:
        delta_high = gram_error_bound(norm_product, norm_product, n, xp)
        return delta_high <= TOLERANCE_S1 * (squares.max(axis=-1) - delta_high)
    column = xp.argmax(squares, axis=-1)
    y = xp.take_along_axis(a, column[:, None, None], axis=2)[..., 0]
    z = (xp.swapaxes(a, -1, -2) @ y[..., None])[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = (z * z).sum(axis=-1) / (y * y).sum(axis=-1)
        delta = gram_error_bound(norm_product, lam, n, xp)
        return delta <= TOLERANCE_S1 * (lam - delta)


def _proved(value, delta, tolerance: float):
    """Whether a value known within `delta` is proved to the relative `tolerance`: value > delta
    and delta <= tolerance (value - delta), so that |v^ - v| / v <= tolerance (NaN: never)."""
    with np.errstate(invalid="ignore"):
        return (value > delta) & (delta <= tolerance * (value - delta))


def _square_root_error(lam, delta, xp: ModuleType):
    """A bound on |sqrt(lam^) - s| where |lam^ - s^2| <= delta: delta / (sqrt(lam^) + s) with
    s >= sqrt(max(lam^ - delta, 0))."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return delta / (xp.sqrt(xp.maximum(lam, 0)) + xp.sqrt(xp.maximum(lam - delta, 0)))


def _certify(values, first, delta, structural, xp: ModuleType):
    """(values with structural zeros exact, certified): `values` (samples, n) decreasing estimates
    of s_i (or of s_i^2, with `first` their largest) within `delta` (samples,) each; certified
    where delta meets the contract relative to the first and to the smallest non-structural one,
    which also separates that one from the structural zeros."""
    n = values.shape[-1]
    last = n - 1 - structural  # position of the smallest non-structural value
    smallest = xp.take_along_axis(values, xp.clip(last, 0, n - 1)[:, None], axis=1)[:, 0]
    certified = (last >= 0) & _proved(first, delta, TOLERANCE_S1) & _proved(smallest, delta,
                                                                            TOLERANCE_S_MIN)
    return xp.where(xp.arange(n)[None, :] > last[:, None], 0.0, values), certified


def isolating_failures(compute, stack, what: str, xp: ModuleType = np, vectors: bool = True):
    """compute(stack) for a library call that works matrix by matrix and returns a vector
    (eigenvalues) or, with vectors=False, a matrix (inverse) per matrix; NaN for each matrix on
    which it reports a failure (LAPACK's non-convergence or singularity; on CuPy cuSOLVER's
    devInfo, which backend.select_backend makes raise instead of returning whatever the solver
    left). A batched call reports one failure for the whole stack, so a failing stack is halved
    until the failures are isolated: only the failing matrices lose their results, and each
    sample's result does not depend on its neighbours. NaN fails every certificate, so those
    samples go on to the next route instead of being lost as numerical faults."""
    try:
        return compute(stack)
    except np.linalg.LinAlgError as error:
        if len(stack) == 1:
            log.warning("%s failed on a %d x %d matrix (%s); its sample goes on to the next route",
                        what, *stack.shape[-2:], error)
            return xp.full(stack.shape[:-1] if vectors else stack.shape, xp.nan)
        half = len(stack) // 2
        return xp.concatenate([isolating_failures(compute, part, what, xp, vectors)
                               for part in (stack[:half], stack[half:])])


# Where symmetric_eigenvalues and the augmented route call svperturb's own batched kernels
# (eigenvalue_kernel: one GPU thread per matrix) instead of the library's eigensolver: (smallest n,
# largest n, fewest matrices) of the matrices the kernel reduces (A for the augmented route),
# None: never. Design estimates, not yet measured on a GPU (`svperturb bench --kernel-sweep` times
# the kernels beside the library calls they replace and suggests this entry): above n = 32
# cuSOLVER's batched eigensolver is the engine's bottleneck (docs/engine.md, Reference rates), while the kernels'
# cost grows as n^3 per thread and they need thousands of matrices to fill the GPU.
EIGENVALUE_KERNEL = {"numpy": None, "cupy": (33, 400, 4096)}


def uses_eigenvalue_kernel(count: int, n: int, xp: ModuleType = np) -> bool:
    """Whether symmetric_eigenvalues and the augmented route take svperturb's kernels for `count`
    matrices n x n (EIGENVALUE_KERNEL, and the kernels compile here)."""
    table = EIGENVALUE_KERNEL[xp_name(xp)]
    return (table is not None and table[0] <= n <= table[1] and count >= table[2]
            and eigenvalue_kernel.kernel_available(xp))


def symmetric_eigenvalues(matrices, xp: ModuleType = np):
    """Eigenvalues (samples, n) of each symmetric matrix of the stack, decreasing; NaN for a
    matrix on which the eigensolver fails (isolating_failures; the kernel marks its own)."""
    if uses_eigenvalue_kernel(len(matrices), matrices.shape[-1], xp):
        return eigenvalue_kernel.symmetric_eigenvalues_by_kernel(matrices, xp)
    return isolating_failures(lambda m: xp.linalg.eigvalsh(m)[:, ::-1], matrices,
                              "symmetric eigensolver", xp)


def gram_singular_values(a, sums: LineSums, xp: ModuleType = np):
    """(values, certified, delta): singular values from the Gram matrix with structural zeros
    exact, whether each sample meets the contract, and its error bound delta on the squares
    (module docstring; `sums` = line_sums(a)). Values of uncertified samples are the Gram
    estimates; `singular_values` replaces them."""
    n = a.shape[-1]
    zero_rows, zero_columns = sums.zero_lines()
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
    eigenvalues = symmetric_eigenvalues(gram, xp)
    lam_1 = eigenvalues[:, 0]
    delta = gram_error_bound(sums.norm_product(), lam_1, n, xp)
    eigenvalues, certified = _certify(eigenvalues, lam_1, delta, structural, xp)
    return xp.sqrt(xp.maximum(eigenvalues, 0)), certified, delta


def augmented_matrix(a, xp: ModuleType = np):
    """H = [[0, A], [A^T, 0]] (samples, 2n, 2n) for each matrix of the stack: its eigenvalues are
    +-s_i(A)."""
    count, n = a.shape[0], a.shape[-1]
    h = xp.zeros((count, 2 * n, 2 * n))
    h[:, :n, n:] = a
    h[:, n:, :n] = xp.swapaxes(a, -1, -2)
    return h


def augmented_singular_values(a, xp: ModuleType = np, structural=None):
    """(values, certified, delta): the n largest eigenvalues of [[0, A], [A^T, 0]] (module
    docstring), structural zeros exact, whether each sample meets the contract, and its bound
    delta on every |s^_i - s_i|. Values of uncertified samples are estimates. `structural`, the
    zero lines of each matrix (the larger count of rows and columns), if the caller has it."""
    count, n = a.shape[0], a.shape[-1]
    if uses_eigenvalue_kernel(count, n, xp):
        # H reduced by diag(U, V) to the Golub-Kahan tridiagonal inside the kernel, never formed:
        # the reduction's backward error on A, then the QR steps' on the 2n x 2n tridiagonal
        values = eigenvalue_kernel.singular_values_by_kernel(a, xp)
        backward = 3 * n
    else:
        values = symmetric_eigenvalues(augmented_matrix(a, xp), xp)[:, :n]  # the n largest
        backward = 2 * n
    s1 = xp.abs(values[:, 0])
    delta = backward * EPS * s1
    if structural is None:
        structural = xp.maximum(*line_sums(a, xp).zero_lines())
    values, certified = _certify(xp.maximum(values, 0), s1, delta, structural, xp)
    return values, certified, delta


def tries_augmented(n: int, xp: ModuleType = np) -> bool:
    """Whether samples the Gram route cannot certify try the augmented route before LAPACK."""
    widths = AUGMENTED_WIDTHS[xp_name(xp)]
    return widths is not None and widths[0] <= n <= widths[1]


@cache
def _pool(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(workers, thread_name_prefix="svperturb-engine")


def singular_values(a, xp: ModuleType = np, route: str = "auto", workers: int = 1,
                    well_conditioned: bool = True) -> Spectrum:
    """All singular values of each matrix of the stack `a` (samples, n, n), float64, by `route`
    (one of ROUTES); samples a fast route cannot certify go on to the augmented route where it is
    faster than LAPACK (tries_augmented), then to LAPACK. `well_conditioned=False` tells `auto`
    that many matrices may defeat the Gram route (choose_route).

    On NumPy, `workers` > 1 splits the stack over that many threads (LAPACK releases the GIL);
    give each thread one BLAS thread (`svperturb --threads`), or they oversubscribe the cores.
    Every sample's result is independent of the split."""
    if workers > 1 and xp_name(xp) == "numpy" and len(a) >= 2 * workers:
        parts = list(_pool(workers).map(
            lambda part: singular_values(part, xp, route, well_conditioned=well_conditioned),
            np.array_split(np.asarray(a), workers)))
        return Spectrum(*(np.concatenate([getattr(p, name) for p in parts]) if name != "route"
                          else parts[0].route for name in Spectrum.__dataclass_fields__))
    a = _stack_of_square_matrices(a, route, ROUTES, xp)
    count, n = a.shape[0], a.shape[-1]
    chosen = choose_route(n, xp, well_conditioned) if route == "auto" else route
    square_error, absolute_error = xp.zeros(count), xp.zeros(count)
    augmented = xp.zeros(count, dtype=bool)
    if chosen == "lapack" or count == 0:
        return Spectrum(lapack_singular_values(a, xp), xp.zeros(count, dtype=bool), chosen,
                        square_error, absolute_error, augmented)
    values = xp.empty(a.shape[:-1], dtype=xp.float64)
    pending = xp.ones(count, dtype=bool)  # not yet certified
    sums = None
    if chosen == "gram":
        # samples whose s_1 the Gram route is unlikely to certify (s1_certificate_likely, O(n^2))
        sums = line_sums(a, xp)
        hopeless = ~s1_certificate_likely(a, sums.norm_product(), xp)
        if not bool(hopeless.any()):  # the usual case: no copy of the stack
            values[...], certified, delta = gram_singular_values(a, sums, xp)
            pending = ~certified
            square_error = xp.where(certified, delta, 0.0)
        elif not bool(hopeless.all()):
            hopeful = xp.nonzero(~hopeless)[0]
            gram_values, certified, delta = gram_singular_values(a[hopeful], sums.take(hopeful), xp)
            values[hopeful] = gram_values
            pending[hopeful] = ~certified
            square_error[hopeful] = xp.where(certified, delta, 0.0)
    tries = chosen == "augmented" or (chosen == "gram" and tries_augmented(n, xp))
    if tries and bool(pending.any()):
        where = xp.nonzero(pending)[0]
        sub = a[where]
        sub_sums = line_sums(sub, xp) if sums is None else sums.take(where)
        structural = xp.maximum(*sub_sums.zero_lines())
        aug_values, certified, delta = augmented_singular_values(sub, xp, structural)
        refined, theta, error = _refine_the_smallest(sub, sub_sums, aug_values, certified, delta,
                                                     structural, xp)
        aug_values[refined, -1] = theta
        certified[refined] = True
        delta[refined] = error  # max(delta, the bound on s_n): a bound on every |s^_i - s_i|
        proved = where[certified]
        values[where] = aug_values
        pending[proved], augmented[proved] = False, True
        absolute_error[proved] = delta[certified]
        square_error[proved] = delta[certified] * (2 * aug_values[certified, 0] + delta[certified])
    if bool(pending.all()):
        values = lapack_singular_values(a, xp)
    elif bool(pending.any()):
        where = xp.nonzero(pending)[0]
        values[where] = lapack_singular_values(a[where], xp)
    return Spectrum(values, pending, chosen, square_error, absolute_error, augmented)


def _refine_the_smallest(a, sums: LineSums, aug_values, certified, delta, structural,
                         xp: ModuleType):
    """(indices, theta, error) for the matrices of `a` (`sums` = line_sums(a)) whose augmented
    spectrum (aug_values, each within delta) proves every s_i but s_n, and that have no zero line
    (`structural` 0): s_n by inverse iteration (extreme_singular_values), certified by the
    Kato-Temple bound with s_(n-1) >= s^_(n-1) - delta; `indices` those where it is proved,
    `error` max(delta, the bound on s_n). This is kappa beyond the augmented route's reach,
    1e-10 / (2n eps) (2,300 at n = 100; 1,500 with the kernel's 3n eps), with an isolated s_n:
    12 % of W1 alone at n = 100, which would otherwise loop through CuPy's SVD."""
    none = xp.zeros(0, dtype=xp.int64)
    if a.shape[-1] < 2 or bool(certified.all()):
        return none, xp.zeros(0), xp.zeros(0)
    after = aug_values[:, -2]
    bottom = (~certified & (structural == 0) & _proved(aug_values[:, 0], delta, TOLERANCE_S1)
              & _proved(after, delta, TOLERANCE_S_MIN))
    refine = xp.nonzero(bottom)[0]
    if not len(refine):
        return none, xp.zeros(0), xp.zeros(0)
    sub = a[refine]
    next_low = (after[refine] - delta[refine]) * (1 - 2 * EPS)  # the subtraction's rounding
    theta, bound, proved = _inverse_iteration(sub, next_low, sums.take(refine).norm_product(), xp)
    return refine[proved], theta[proved], xp.maximum(delta[refine[proved]], bound[proved])


# --- s_1 only ---------------------------------------------------------------------------------

# Smallest n at which largest_singular_values takes the Gram route (None: never). On the CPU its
# eigensolver costs about as much as gesdd (1.0-1.3x faster per core), too little to give up LAPACK's
# values, which the earlier runs' shards hold; on CuPy the library SVD loops above n = 32.
LARGEST_GRAM_FROM_WIDTH = {"numpy": None, "cupy": 33}


def largest_singular_values(a, xp: ModuleType = np, route: str = "auto"):
    """(s_1, error) for each matrix of the stack `a` (samples, n, n): its largest singular value
    within the contract (1e-12 relative) of LAPACK's, and a bound on |s^_1 - s_1| beyond LAPACK's
    rounding (0 for LAPACK's values). `route`: "lapack" the library SVD, "gram" the largest
    eigenvalue of A^T A with the s_1 certificate alone (singular and rank-one matrices pass too),
    LAPACK for the samples it cannot certify; "auto" as LARGEST_GRAM_FROM_WIDTH says."""
    a = _stack_of_square_matrices(a, route, EXTREMES_ROUTES, xp)
    count, n = a.shape[0], a.shape[-1]
    chosen = _gram_or_lapack(LARGEST_GRAM_FROM_WIDTH, n, xp) if route == "auto" else route
    if chosen == "lapack" or count == 0:
        return lapack_singular_values(a, xp)[:, 0], xp.zeros(count)
    norm_product = abs_norm_product(a, xp)
    hopeful = s1_certificate_likely(a, norm_product, xp, cautious=False)  # s_1's is all it needs
    lam_1 = xp.full(count, xp.nan)
    if bool(hopeful.all()):
        lam_1 = symmetric_eigenvalues(xp.swapaxes(a, -1, -2) @ a, xp)[:, 0]
    elif bool(hopeful.any()):
        where = xp.nonzero(hopeful)[0]
        lam_1[where] = symmetric_eigenvalues(xp.swapaxes(a[where], -1, -2) @ a[where], xp)[:, 0]
    delta = gram_error_bound(norm_product, lam_1, n, xp)
    certified = _proved(lam_1, delta, TOLERANCE_S1)
    s1 = xp.sqrt(xp.maximum(lam_1, 0))
    error = xp.where(certified, _square_root_error(lam_1, delta, xp), 0.0)
    rest = xp.nonzero(~certified)[0]
    if len(rest):
        s1[rest] = lapack_singular_values(a[rest], xp)[:, 0]
    return s1, error


# --- s_1, s_n and s_* only: the Gram route, refined by inverse iteration where it cannot prove s_n -

EXTREMES_ROUTES = ("auto", "lapack", "gram")
# Smallest n at which `extremes` takes the Gram route with inverse iteration (None: never). On the
# CPU it is 0.24-0.34x LAPACK at n = 33-100 (svperturb bench: eigvalsh and the batched inverse
# each cost about half a gesdd); on CuPy the libraries' SVD loops one matrix at a time above n = 32
# (reference rates, docs/engine.md: 294 matrices/s at n = 100, against 49,000/s for eigvalsh of the Gram matrices).
EXTREMES_GRAM_FROM_WIDTH = {"numpy": None, "cupy": 33}


def choose_extremes_route(n: int, xp: ModuleType = np) -> str:
    """The route `extremes(route="auto")` takes for n x n matrices on this array module."""
    return _gram_or_lapack(EXTREMES_GRAM_FROM_WIDTH, n, xp) if n >= 2 else "lapack"


def extremes(a, xp: ModuleType = np, route: str = "auto") -> Extremes:
    """s_1, s_n and s_* of each n x n matrix of the stack `a` within the contract, by `route` (one
    of EXTREMES_ROUTES): "lapack" the whole spectrum, "gram" extreme_singular_values (proved per
    sample, LAPACK for the samples it cannot prove); "auto" the faster of the two for this n and
    array module."""
    a = _stack_of_square_matrices(a, route, EXTREMES_ROUTES, xp)
    chosen = choose_extremes_route(a.shape[-1], xp) if route == "auto" else route
    if chosen == "gram" and len(a):
        return extreme_singular_values(a, xp)
    values = lapack_singular_values(a, xp)
    return Extremes(values[:, 0], values[:, -1], smallest_nonzero_singular_value(values, xp),
                    xp.full(len(a), 2, dtype=xp.int8), xp.zeros(len(a)))


INVERSE_ITERATION_CHECKS = (3, 6, 12, 24, 48, 96)  # power steps after which the certificate is tried


@dataclass
class Extremes:
    """s_1, s_n and s_* (samples,) within the contract of LAPACK; `route` (samples,) says who
    proved each sample: 0 the Gram route, 1 inverse iteration (s_n), 2 LAPACK, 3 the augmented
    route (where tries_augmented). s_* is the smallest singular value above
    spectra.rank_tolerance (n eps s_1; docs/claims.md, Objects): from the whole spectrum (LAPACK's, the
    augmented route's), or s_n where the Gram route or inverse iteration proved s_n, as they never
    do at or below that tolerance: the Gram route needs lambda_n >~ 1e10 n eps lambda_1, inverse
    iteration s_n above its residual's rounding 2 gamma_(n+4) sqrt(||A||_1 ||A||_inf), which is
    >= 2 (n + 4) eps s_1."""

    s1: object
    s_min: object
    s_star: object
    route: object
    s_min_error: object  # proved bound on |s^_n - s_n| of the route that proved it; 0 for LAPACK


SLICES = 3  # slices of A and of v in exact_matvec: 63 to 69 bits below each row's largest entry


def _gamma(k: int) -> float:
    """gamma_k = k eps / (1 - k eps): the relative rounding of a k-term float64 sum or product."""
    return k * EPS / (1 - k * EPS)


def _slices(x, exponent, bits: int, xp: ModuleType):
    """(parts, rest) with x = sum(parts) + rest exactly: parts[k] holds integers of at most `bits`
    bits times 2^(exponent - (k + 1) bits) (|x| < 2^exponent, broadcast), and
    |rest| <= 2^(exponent - SLICES bits - 1). Scaling by powers of two, rint and the subtraction
    are exact in float64."""
    parts, rest = [], x
    for k in range(1, SLICES + 1):
        scale = xp.ldexp(xp.ones_like(exponent, dtype=xp.float64), k * bits - exponent)
        part = xp.rint(rest * scale) / scale
        parts.append(part)
        rest = rest - part
    return parts, rest


def _exponent(x, axis: int, xp: ModuleType):
    """e with max |x| < 2^e along `axis` (kept), 0 where x is all zero."""
    return xp.frexp(xp.abs(x).max(axis=axis, keepdims=True))[1]


def split_rows(a, xp: ModuleType = np):
    """The row slices of a stack (samples, n, n) for exact_matvec: (parts, bits, largest |tail|
    per row, 1-norm per row)."""
    n = a.shape[-1]
    bits = (53 - int(np.ceil(np.log2(n)))) // 2
    parts, rest = _slices(a, _exponent(a, -1, xp), bits, xp)
    return parts, bits, xp.abs(rest).max(axis=-1), xp.abs(a).sum(axis=-1)


def exact_matvec(split, v, xp: ModuleType = np):
    """(y, bound): y ~ A v for each matrix of the stack and vector v (samples, n), with
    |y - A v| <= bound componentwise, bound ~ eps |A v| (not gamma_n |A| |v|).

    Error-free splitting (Ozaki, Ogita, Oishi, Rump, Numer. Algorithms 59 (2012)): rows of A and
    the vector v are cut into SLICES slices of b bits (2 b + log2 n <= 53) on a common exponent
    per row and per vector, so that every product of slices, summed over a row by the BLAS in any
    order, is exact; only the SLICES^2 exact partial results are summed with rounding
    (<= gamma_9 of their absolute values), and the tails left after the slices add
    max|tail of a_i| ||v||_1 + (||a_i||_1 + n max|tail of a_i|) max|tail of v|."""
    parts, bits, row_tail, row_norm = split
    n = v.shape[-1]
    v_parts, v_rest = _slices(v, _exponent(v, -1, xp), bits, xp)
    terms = [(a_p @ v_q[..., None])[..., 0] for a_p in parts for v_q in v_parts]  # each exact
    y, magnitude = xp.zeros_like(terms[0]), xp.zeros_like(terms[0])
    for term in reversed(terms):  # the small slices' products first
        y = y + term
        magnitude = magnitude + xp.abs(term)
    v_tail = xp.abs(v_rest).max(axis=-1, keepdims=True)
    tails = row_tail * xp.abs(v).sum(axis=-1, keepdims=True) + (row_norm + n * row_tail) * v_tail
    return y, 2 * _gamma(len(terms)) * magnitude + 2 * tails  # 2: the tails' own rounding


def smallest_singular_value_bound(split, a, u, v, next_low, norm_product, xp: ModuleType = np):
    """(theta, error, ok) for s_n of each nonsingular matrix of the stack from vectors u, v
    (samples, n) near its left and right singular vectors: |theta - s_n| <= error wherever ok.
    `split` is split_rows(a), `norm_product` abs_norm_product(a), `next_low` <= s_(n-1).

    z = (u / ||u||, v / ||v||) / sqrt(2) is an approximate eigenvector of the symmetric
    H = [[0, A], [A^T, 0]] (eigenvalues +-s_j) with Rayleigh quotient theta = u^T A v / (||u|| ||v||)
    and residual rho = sqrt((||A v - theta u||^2 + ||A^T u - theta v||^2) / 2) (unit u, v). With
    beta = next_low, if theta - rho > 0 and theta + rho < beta, the interval (0, beta) holds exactly
    one eigenvalue of H, s_n, and the Kato-Temple inequality bounds it quadratically in rho:
        theta - rho^2 / (beta - theta) <= s_n <= theta + rho^2 / theta.
    A v comes from exact_matvec, so theta's rounding is ~n eps theta, not the gamma_n ||A|| of a
    plain product (which decides the contract when kappa is large); A^T u from a plain product,
    its rounding gamma_n sqrt(||A||_1 ||A||_inf) entering rho, hence only squared."""
    n = a.shape[-1]
    g = _gamma(n + 4)
    y, y_bound = exact_matvec(split, v, xp)
    u_norm = xp.sqrt((u * u).sum(axis=-1))
    v_norm = xp.sqrt((v * v).sum(axis=-1))
    u, v = u / u_norm[:, None], v / v_norm[:, None]
    y = y / v_norm[:, None]  # A v for the unit v, up to y_error and the scaling's rounding
    y_norm = xp.sqrt((y * y).sum(axis=-1))
    y_error = xp.sqrt((y_bound * y_bound).sum(axis=-1)) / v_norm * (1 + g) + g * y_norm
    theta = (u * y).sum(axis=-1)
    theta_error = 2 * ((g * y_norm + y_error) * (1 + g) + g * xp.abs(theta))
    w = (xp.swapaxes(a, -1, -2) @ u[..., None])[..., 0]
    w_norm = xp.sqrt((w * w).sum(axis=-1))
    norm_a = xp.sqrt(norm_product)  # abs_norm_product(a): >= ||A||_2 and >= || |A| ||_2
    left, right = y - theta[:, None] * u, w - theta[:, None] * v
    rho_left = (xp.sqrt((left * left).sum(axis=-1)) * (1 + g) + y_error + theta_error
                + 2 * g * (y_norm + xp.abs(theta)))
    rho_right = (xp.sqrt((right * right).sum(axis=-1)) * (1 + g) + 2 * g * norm_a + theta_error
                 + 2 * g * (w_norm + xp.abs(theta)))
    rho = xp.sqrt((rho_left**2 + rho_right**2) / 2) * (1 + 4 * EPS)
    theta_low, theta_high = theta - theta_error, theta + theta_error
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ok = xp.isfinite(theta) & (theta_low - rho > 0) & (theta_high + rho < next_low)
        error = theta_error + rho * rho / xp.minimum(theta_low, next_low - theta_high) * (1 + 4 * EPS)
    return theta, xp.where(ok, error, xp.inf), ok


def extreme_singular_values(a, xp: ModuleType = np) -> Extremes:
    """s_1 and s_n of each nonsingular n x n matrix of the stack, each within the contract of
    LAPACK (s_1 1e-12, s_n 1e-10), proved per sample; the others by the augmented route where
    tries_augmented and it proves them, else LAPACK.

    s_1 comes from the Gram route (module docstring). Where its bound delta does not prove s_n
    (it squares kappa: most unit-variance K_n from n = 33 on), inverse iteration refines it: steps
    u <- X^T v, v <- X u with X ~ A^-1 (batched inverse; X only steers the iteration), certified by
    smallest_singular_value_bound with A itself and the Gram bound's s_(n-1) >= sqrt(lambda_(n-1)
    - delta); the sample is proved when that error is <= 1e-10 (theta - error)."""
    a = xp.asarray(a, dtype=xp.float64)
    if a.ndim != 3 or a.shape[-1] != a.shape[-2] or a.shape[-1] < 2:
        raise ValueError(f"expected a stack of square matrices (samples, n, n), n >= 2, got shape "
                         f"{a.shape}")
    count, n = a.shape[0], a.shape[-1]
    sums = line_sums(a, xp)
    norm_product = sums.norm_product()
    eigenvalues = symmetric_eigenvalues(xp.swapaxes(a, -1, -2) @ a, xp)
    delta = gram_error_bound(norm_product, eigenvalues[:, 0], n, xp)
    lam_1, lam_n, lam_next = eigenvalues[:, 0], eigenvalues[:, -1], eigenvalues[:, -2]
    s1_proved = _proved(lam_1, delta, TOLERANCE_S1)
    gram_proves_sn = _proved(lam_n, delta, TOLERANCE_S_MIN)
    s1 = xp.sqrt(xp.maximum(lam_1, 0))
    s_min = xp.sqrt(xp.maximum(lam_n, 0))
    route = xp.where(s1_proved & gram_proves_sn, 0, 2).astype(xp.int8)
    error = xp.where(route == 0, _square_root_error(lam_n, delta, xp), 0.0)
    refine = xp.nonzero(s1_proved & ~gram_proves_sn & (lam_next - delta > 0))[0]
    if len(refine):
        # s_(n-1) >= sqrt(lambda_(n-1) - delta), the square root's rounding taken off
        next_low = xp.sqrt(lam_next[refine] - delta[refine]) * (1 - 2 * EPS)
        theta, bound, proved = _inverse_iteration(a[refine], next_low, norm_product[refine], xp)
        s_min[refine] = xp.where(proved, theta, s_min[refine])
        error[refine] = xp.where(proved, bound, 0.0)
        route[refine] = xp.where(proved, 1, 2).astype(xp.int8)
    s_star = s_min.copy()  # a proved s_n is above the rank tolerance (Extremes)

    def take_whole_spectra(where, values):
        s1[where], s_min[where] = values[:, 0], values[:, -1]
        s_star[where] = smallest_nonzero_singular_value(values, xp)

    if tries_augmented(n, xp) and bool((route == 2).any()):
        where = xp.nonzero(route == 2)[0]
        values, certified, delta = augmented_singular_values(
            a[where], xp, xp.maximum(*sums.take(where).zero_lines()))
        proved = where[certified]
        take_whole_spectra(proved, values[certified])
        error[proved], route[proved] = delta[certified], 3
    lapack = xp.nonzero(route == 2)[0]
    if len(lapack):
        take_whole_spectra(lapack, lapack_singular_values(a[lapack], xp))
    log.debug("extreme_singular_values: %d matrices, %d by inverse iteration, %d by LAPACK",
              count, len(refine), len(lapack))
    return Extremes(s1, s_min, s_star, route, error)


def _inverse_iteration(a, next_low, norm_product, xp: ModuleType):
    """(theta, error, proved) for s_n of each matrix: see extreme_singular_values.
    `next_low` is a lower bound on s_(n-1), `norm_product` abs_norm_product(a). Only the unproved
    samples keep iterating (and are copied, once per check)."""
    count, n = a.shape[0], a.shape[-1]
    theta = xp.zeros(count)
    bound = xp.zeros(count)
    proved = xp.zeros(count, dtype=bool)
    x = isolating_failures(xp.linalg.inv, a, "batched inverse", xp, vectors=False)  # NaN: unproved
    parts, bits, row_tail, row_norm = split_rows(a, xp)
    active = xp.arange(count)  # samples still unproved; the arrays below hold only theirs
    v = xp.ones((count, n)) / np.sqrt(n)
    done = 0
    for check in INVERSE_ITERATION_CHECKS:
        for _ in range(check - done):
            # X^T = U S^-1 V^T and X X^T = V S^-2 V^T: u and v tend to the singular vectors of s_n
            u = (xp.swapaxes(x, -1, -2) @ v[..., None])[..., 0]
            u = u / xp.sqrt((u * u).sum(axis=-1))[:, None]
            v = (x @ u[..., None])[..., 0]
            v = v / xp.sqrt((v * v).sum(axis=-1))[:, None]
        done = check
        value, error, ok = smallest_singular_value_bound(
            (parts, bits, row_tail, row_norm), a, u, v, next_low, norm_product, xp)
        with np.errstate(invalid="ignore"):
            ok = ok & (error <= TOLERANCE_S_MIN * (value - error))
        theta[active[ok]], bound[active[ok]], proved[active[ok]] = value[ok], error[ok], True
        keep = xp.nonzero(~ok)[0]
        if not len(keep):
            break
        active, u, v, a, x = active[keep], u[keep], v[keep], a[keep], x[keep]
        parts, next_low, norm_product = [p[keep] for p in parts], next_low[keep], norm_product[keep]
        row_tail, row_norm = row_tail[keep], row_norm[keep]
    return theta, bound, proved
