"""The sharpness of a minimizer of deep matrix factorization (Kamber & Parhi, arXiv 2509.25783):
the largest eigenvalue of the loss Hessian at W_L ... W_1 = M, L = ||M - W_L ... W_1||_F^2.

There the Hessian is 2 J^T J, J(U_1, ..., U_L) = sum_i A_i U_i B_i, A_i = W_L ... W_(i+1) and
B_i = W_(i-1) ... W_1 (identities at the ends), so the sharpness is 2 lambda_max(K) with
K = J J^T: V -> sum_i G_i V H_i, G_i = A_i A_i^T, H_i = B_i^T B_i, on d_L x d_0 matrices V. With
V flattened row by row (NumPy's order), K = sum_i G_i (x) H_i (Kronecker product; the column-major
vec of the literature writes it (B_i^T B_i) (x) (A_i A_i^T)). Two routes:

- dense: K built (N x N, N = d_L d_0) and `xp.linalg.eigvalsh`; exact to the eigensolver's
  rounding, p(N) eps ||K|| with p(N) taken as N (as in engine.py). O(N^3) per sample.
- lanczos: Lanczos on the matrix-free operator (O(L (d_L^2 d_0 + d_L d_0^2)) per product) with full
  reorthogonalisation, every sample of the batch advancing together (linalg/lanczos.py); it returns
  an error bound per sample (sharpness_lanczos states what it guarantees).

`sharpness` takes the dense route up to DENSE_LARGEST and Lanczos beyond. Weights are a list of L
arrays (batch, d_i, d_(i-1)), W_1 first, on the array module `xp`; results stay on `xp`. Host work
is the tridiagonal eigenproblems of Lanczos, the start vectors, and the rescaling problem
(scipy.optimize, one sample at a time); data cross explicitly (to_host, xp.asarray).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import scipy.linalg
import scipy.optimize

from svperturb.linalg.backend import to_host
from svperturb.linalg.lanczos import MatrixFreeOperator, lanczos_ends

log = logging.getLogger(__name__)

# Largest N = d_L d_0 for the dense route under route="auto", measured with `svperturb bench
# --sharpness` (docs/benchmarks.md, "Sharpness routes"): up to N = 36 dense is faster (a tie at
# depth 8); at N = 64 both take under 0.4 ms a sample, Lanczos 1.1 to 2.4 times less; from N = 100
# Lanczos is faster at every depth (1.4 to 3.9 times, 130 to 260 times at N = 2304). Where the
# gain is small the dense route keeps the sample: it is exact to rounding, while Lanczos's bound
# rests on an assumption (sharpness_lanczos).
DENSE_LARGEST = 64
DENSE_CHUNK_BYTES = 2**28  # the dense route builds K for as many samples as fit this at once
# SLSQP's stopping tolerance on the rescaling problem's value (scaled to 1). Against Nelder-Mead
# polishing its solution on 60 random problems (L 2 to 5, d 1 to 3) it was within 4e-14 relative,
# every run converged; 1e-15 gained a digit but stopped a fifth of them on a failed line search.
RESCALING_FTOL = 1e-13


@dataclass(frozen=True)
class LanczosSharpness:
    """sharpness_lanczos's result, per sample (arrays on `xp`): the sharpness 2 theta (theta the
    top Ritz value), a bound on |sharpness - 2 theta| (see sharpness_lanczos for what it assumes),
    and the Lanczos steps taken."""

    values: object
    error_bounds: object
    iterations: object


def factor_products(weights, xp: ModuleType = np):
    """(lefts, rights): A_i = W_L ... W_(i+1) (batch, d_L, d_i) and B_i = W_(i-1) ... W_1
    (batch, d_(i-1), d_0) for i = 1..L, A_L and B_1 identities."""
    batch = weights[0].shape[0]
    rights = [_identities(weights[0].shape[-1], batch, weights[0].dtype, xp)]
    for w in weights[:-1]:
        rights.append(w @ rights[-1])
    lefts = [_identities(weights[-1].shape[-2], batch, weights[-1].dtype, xp)]
    for w in weights[:0:-1]:
        lefts.insert(0, lefts[0] @ w)
    return lefts, rights


def operator_factors(weights, xp: ModuleType = np):
    """(G, H): G_i = A_i A_i^T stacked (L, batch, d_L, d_L) and H_i = B_i^T B_i (L, batch, d_0,
    d_0), so that K V = sum_i G_i V H_i."""
    lefts, rights = factor_products(weights, xp)
    return (xp.stack([a @ xp.swapaxes(a, -1, -2) for a in lefts]),
            xp.stack([xp.swapaxes(b, -1, -2) @ b for b in rights]))


def apply_operator(g, h, v):
    """K V = sum_i G_i V H_i for V (batch, d_L, d_0)."""
    return (g @ v[None] @ h).sum(axis=0)


def operator_blocks(g, h):
    """The blocks K_i = G_i (x) H_i (L, batch, N, N), N = d_L d_0, V flattened row by row."""
    layers, batch, rows, cols = g.shape[0], g.shape[1], g.shape[-1], h.shape[-1]
    blocks = g[:, :, :, None, :, None] * h[:, :, None, :, None, :]
    return blocks.reshape(layers, batch, rows * cols, rows * cols)


def operator_matrix(g, h):
    """K = sum_i G_i (x) H_i (batch, N, N), one layer's block at a time."""
    total = operator_blocks(g[:1], h[:1])[0]
    for i in range(1, g.shape[0]):
        total = total + operator_blocks(g[i:i + 1], h[i:i + 1])[0]
    return total


def sharpness_dense(weights, xp: ModuleType = np):
    """The sharpness 2 lambda_max(K) of each sample (batch,), K built densely and
    `xp.linalg.eigvalsh` (Kamber & Parhi, arXiv 2509.25783: the Hessian at a zero-loss minimizer is
    2 J^T J)."""
    g, h = operator_factors(weights, xp)
    return 2 * _dense_top(g, h, xp, vectors=False)


def _dense_top(g, h, xp: ModuleType, vectors: bool):
    """lambda_max(K) per sample, and with `vectors` its unit eigenvector (batch, d_L, d_0); K is
    built for a chunk of samples at a time (DENSE_CHUNK_BYTES; K, a block and the solver's copy)."""
    batch, size = g.shape[1], g.shape[-1] * h.shape[-1]
    chunk = max(1, DENSE_CHUNK_BYTES // (3 * 8 * size * size))
    values, tops = [], []
    for start in range(0, batch, chunk):
        k = operator_matrix(g[:, start:start + chunk], h[:, start:start + chunk])
        if vectors:
            eigenvalues, eigenvectors = xp.linalg.eigh(k)
            tops.append(eigenvectors[..., -1])
        else:
            eigenvalues = xp.linalg.eigvalsh(k)
        values.append(eigenvalues[..., -1])
    top = xp.concatenate(values)
    if not vectors:
        return top
    return top, xp.concatenate(tops).reshape(batch, g.shape[-1], h.shape[-1])


LANCZOS_RTOL = 1e-12  # sharpness()'s Lanczos route: its relative error bound (sharpness_lanczos)


def sharpness_lanczos(weights, xp: ModuleType = np, rtol: float = LANCZOS_RTOL,
                      max_iter: int | None = None, seed: int = 0) -> LanczosSharpness:
    """The sharpness 2 lambda_max(K) by Lanczos on V -> sum_i G_i V H_i, with an error bound.

    Lanczos from a Gaussian start (seed `seed`), full reorthogonalisation (classical Gram-Schmidt,
    twice), the whole batch together; a sample leaves the batch when its bound is met. After k
    steps with tridiagonal T_k and next coefficient beta_k, the top Ritz pairs (theta_1, y_1),
    (theta_2, y_2) of T_k have residuals r_j = beta_k |e_k^T y_j| = ||K x_j - theta_j x_j||.

    Guaranteed (exact arithmetic): theta_1 <= lambda_max (Rayleigh-Ritz), and some eigenvalue of K
    lies within r_1 of theta_1.
    Assumed: that eigenvalue is lambda_max, and every eigenvalue below lambda_max is <= theta_2 +
    r_2 (Lanczos has missed nothing at the top of the spectrum). A start without a component along
    the top eigenvector has probability zero; one too small to show within k steps is what the
    assumption excludes (the tests check against the dense route).
    Then with the gap delta = theta_1 - theta_2 - r_2 > 0, Kato-Temple gives
        0 <= lambda_max - theta_1 <= r_1^2 / delta,
    so the bound on lambda_max (doubled on the sharpness) is min(r_1, r_1^2 / delta) (r_1 where
    delta <= 0) plus rounding, (N + L (d_L + d_0)) eps theta_1: the backward error of Rayleigh-Ritz
    on the computed basis, p(N) eps ||K|| with p(N) taken as N as for the dense route, and the
    product's, gamma_m sum_i ||K_i|| <= m L eps lambda_max, m = d_L + d_0 (every K_i <= K).
    A sample stops when its bound is <= max(rtol theta_1, the rounding), or after `max_iter` steps
    (default N: then the Krylov space is the whole space); its bound is returned either way.
    Memory: batch x steps x N floats for the basis.
    """
    g, h = operator_factors(weights, xp)
    theta, bound, steps, _ = _lanczos_top(g, h, xp, rtol, max_iter, seed)
    return LanczosSharpness(2 * theta, 2 * bound, steps)


def _lanczos_top(g, h, xp: ModuleType, rtol: float, max_iter: int | None, seed: int,
                 vector: bool = False):
    """(theta_1, its bound, steps, Ritz vector (batch, d_L, d_0), zeros without `vector`) per
    sample; see sharpness_lanczos and linalg/lanczos.py: lanczos_ends, whose `vector` stops a
    sample on r_1 itself."""
    batch, rows, cols = g.shape[1], g.shape[-1], h.shape[-1]
    size = rows * cols
    result = lanczos_ends(_operator(g, h), batch, size, g.dtype, xp, rtol, max_iter, seed,
                          rounding_ulps=size + g.shape[0] * (rows + cols), vector=vector)
    vectors = result.top_vectors if vector else xp.zeros((batch, size), dtype=g.dtype)
    return (xp.asarray(result.top), xp.asarray(result.top_bound), xp.asarray(result.steps),
            vectors.reshape(batch, rows, cols))


def _operator(g, h) -> MatrixFreeOperator:
    """V -> sum_i G_i V H_i on flattened V (batch, d_L d_0), restricted with its factors."""
    return MatrixFreeOperator(
        lambda q: apply_operator(g, h, q.reshape(-1, g.shape[-1], h.shape[-1])).reshape(q.shape),
        lambda rows: _operator(g[:, rows], h[:, rows]))


def sharpness(weights, xp: ModuleType = np, route: str = "auto"):
    """The sharpness (batch,) by the dense route where N = d_L d_0 <= DENSE_LARGEST ("auto"), by
    Lanczos beyond (within LANCZOS_RTOL relative, or its rounding term); `route` "dense" or
    "lanczos" forces one."""
    return sharpness_lanczos(weights, xp).values if _route(weights, route) == "lanczos" else \
        sharpness_dense(weights, xp)


def _route(weights, route: str) -> str:
    if route not in ("auto", "dense", "lanczos"):
        raise ValueError(f"route: got {route!r}; allowed: auto, dense, lanczos")
    if route != "auto":
        return route
    return "dense" if weights[-1].shape[-2] * weights[0].shape[-1] <= DENSE_LARGEST else "lanczos"


def top_direction(weights, xp: ModuleType = np, route: str = "auto") -> list:
    """The Hessian's top eigenvector in parameter space at a zero-loss minimizer: U_i = A_i^T V
    B_i^T (J^T V, (batch, d_i, d_(i-1))) for V the top eigenvector of K = J J^T, scaled so that
    sum_i ||U_i||_F^2 = 1 per sample. Its sign is arbitrary; where lambda_max is multiple, it is one
    of the top eigenvectors. By Lanczos, V stops when its residual is <= 1e-12 lambda_max (or
    rounding), so its angle to the top eigenvector is at most that over the gap (Davis-Kahan)."""
    g, h = operator_factors(weights, xp)
    if _route(weights, route) == "lanczos":
        v = _lanczos_top(g, h, xp, 1e-12, None, 0, vector=True)[3]
    else:
        v = _dense_top(g, h, xp, vectors=True)[1]
    lefts, rights = factor_products(weights, xp)
    parts = [xp.swapaxes(a, -1, -2) @ v @ xp.swapaxes(b, -1, -2) for a, b in zip(lefts, rights)]
    norm = xp.sqrt(sum((u * u).sum(axis=(-2, -1)) for u in parts))
    return [u / norm[:, None, None] for u in parts]


def least_sharpness_over_rescalings(weights, xp: ModuleType = np):
    """(values (batch,), scales (batch, L), converged (batch,) 1 where the optimizer met its
    tolerance): the least sharpness over the layer rescalings
    W_i -> c_i W_i, prod c_i = 1, which keep the product, and the c_i that reach it.

    A rescaling turns K into sum_i t_i K_i, K_i = G_i (x) H_i, t_i = prod_(j != i) c_j^2 = 1/c_i^2;
    with t_i = exp(u_i), sum u_i = 0, f(u) = lambda_max(sum_i exp(u_i) K_i) is convex (lambda_max
    is convex and monotone on PSD matrices, exp convex), but not smooth where lambda_max is
    multiple, which it often is at the minimum. Solved per sample on the host in epigraph form,
    min s subject to s >= lambda_j(u) for the top m = min(N, L + 1) eigenvalues, by SQP (SLSQP):
    at a crossing the sorted eigenvalues are the analytic branches (Rellich) relabelled, so each
    constraint stays smooth where it is active; m is one more than the L unknowns (u in the
    sum-zero plane, s), the most constraints active with independent gradients. The gradient of
    lambda_j is t_i v_j^T K_i v_j. The value returned is f at the solution (or at u = 0 if that is
    lower), so it is the sharpness of the returned rescaling, exact to the eigensolver's rounding;
    its minimality is the optimizer's (RESCALING_FTOL on s scaled to 1).

    Cost: per evaluation the dense sum (N x N, formed from the G_i and H_i: no L blocks kept) and
    its top m eigenpairs (LAPACK syevr, O(N^3)); the gradients use the Kronecker form, v^T K_i v =
    <V, G_i V H_i>. Some 7 to 30 evaluations per sample (more with depth): right and quick for
    N = d_L d_0 <= 256 (0.02 to 0.13 s a sample at N = 256, depth 2 to 8, 2-core AMD EPYC); about
    1 s a sample at N = 1024, L = 4 (0.06 s an evaluation), growing as N^3 beyond. Lanczos could
    replace the dense eigensolver there (warm-started from the last top vectors), but the top m
    eigenpairs of a nearly multiple lambda_max are what it converges to slowest.
    """
    g, h = (to_host(x) for x in operator_factors(weights, xp))
    values, scales, converged = [], [], []
    for sample in range(g.shape[1]):
        value, u, success = _least_over_rescalings(g[:, sample], h[:, sample])
        values.append(2 * value)
        scales.append(np.exp(-u / 2))
        converged.append(success)
    if not all(converged):
        log.info("least sharpness over rescalings: the optimizer stopped short of its tolerance "
                 "on %d of %d samples (their value is that of the returned rescaling)",
                 converged.count(False), len(converged))
    return (xp.asarray(np.array(values)), xp.asarray(np.array(scales)),
            xp.asarray(np.array(converged, dtype=np.uint8)))


def _sum_zero_basis(layers: int) -> np.ndarray:
    """An orthonormal basis (L, L-1) of the plane sum u_i = 0."""
    q, _ = np.linalg.qr(np.eye(layers) - 1.0 / layers)
    return q[:, : layers - 1]


def _top_eigenpairs(g: np.ndarray, h: np.ndarray, u: np.ndarray, count: int):
    """The `count` largest eigenvalues of sum_i exp(u_i) G_i (x) H_i (one sample: g (L, d_L, d_L),
    h (L, d_0, d_0)), decreasing, and their gradients in u (L, count): exp(u_i) v_j^T K_i v_j."""
    t = np.exp(u)
    rows, cols = g.shape[-1], h.shape[-1]
    size = rows * cols
    total = operator_matrix((t[:, None, None] * g)[:, None], h[:, None])[0]
    values, vectors = scipy.linalg.eigh(total, subset_by_index=[size - count, size - 1])
    tops = vectors[:, ::-1].T.reshape(count, rows, cols)
    quadratic = ((g[:, None] @ tops[None] @ h[:, None]) * tops[None]).sum(axis=(-2, -1))
    return values[::-1], t[:, None] * quadratic


def _least_over_rescalings(g: np.ndarray, h: np.ndarray) -> tuple[float, np.ndarray]:
    """(min over sum u = 0 of lambda_max(sum_i exp(u_i) G_i (x) H_i), the minimizing u) for one
    sample's g (L, d_L, d_L), h (L, d_0, d_0); see least_sharpness_over_rescalings."""
    layers, size = g.shape[0], g.shape[-1] * h.shape[-1]
    plane, count = _sum_zero_basis(layers), min(size, layers + 1)
    scale = _top_eigenpairs(g, h, np.zeros(layers), 1)[0][0]
    if layers == 1 or scale == 0:
        return float(scale), np.zeros(layers), True
    g = g / scale  # the value near 1, for SLSQP's tolerances
    last: dict = {}

    def pairs(x):  # SLSQP asks for the constraints and their Jacobian at the same x
        if last.get("x") is None or not np.array_equal(last["x"], x):
            last["x"], last["pairs"] = x.copy(), _top_eigenpairs(g, h, plane @ x[:-1], count)
        return last["pairs"]

    constraint = {"type": "ineq", "fun": lambda x: x[-1] - pairs(x)[0],
                  "jac": lambda x: np.hstack([-(plane.T @ pairs(x)[1]).T, np.ones((count, 1))])}
    objective_gradient = np.r_[np.zeros(layers - 1), 1.0]
    start = np.r_[np.zeros(layers - 1), 1.0]
    for _ in range(2):  # a stop short of the tolerance is retried once from where it stopped
        result = scipy.optimize.minimize(lambda x: x[-1], start,
                                         jac=lambda x: objective_gradient, constraints=[constraint],
                                         method="SLSQP",
                                         options={"ftol": RESCALING_FTOL, "maxiter": 500})
        if result.success:
            break
        start = np.r_[result.x[:-1], pairs(result.x)[0][0]]
    u = plane @ result.x[:-1]
    value = _top_eigenpairs(g, h, u, 1)[0][0]
    if not result.success:
        log.debug("least sharpness over rescalings: SLSQP stopped (%s) at %.17g of 1 at c = 1",
                  result.message, value)
    if not value <= 1.0:  # no higher than at c = 1 (also where the optimizer returned NaN)
        value, u = 1.0, np.zeros(layers)
    return float(value * scale), u, bool(result.success)


def _identities(n: int, batch: int, dtype, xp: ModuleType):
    return xp.eye(n, dtype=dtype) * xp.ones((batch, 1, 1), dtype=dtype)
