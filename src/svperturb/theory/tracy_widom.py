"""Tracy-Widom distributions F_1 (GOE) and F_2 (GUE) of the largest eigenvalue.

Tracy & Widom, Commun. Math. Phys. 159 (1994) 151 (F_2) and 177 (1996) 727 (F_1), evaluated as
Fredholm determinants by Bornemann's Nystrom method: F. Bornemann, "On the numerical evaluation of
Fredholm determinants", Math. Comp. 79 (2010) 871, and "On the numerical evaluation of distributions
in random matrix theory: a review", Markov Process. Relat. Fields 16 (2010) 803.

`tracy_widom_cdf_exact` is the quadrature itself (absolute error ~1e-14 with the default nodes).
`tracy_widom_cdf`, `_pdf`, `_ppf`, `_mean` and `_variance` use a piecewise Chebyshev interpolant of
it, built once per beta (well under a second) and cached.
"""

from __future__ import annotations

from functools import cache, lru_cache

import numpy as np
from numpy.polynomial import chebyshev
from scipy.fft import dct
from scipy.optimize import brentq
from scipy.special import airy

TRACY_WIDOM_BETAS = (1, 2)

# Kernel arguments at or beyond AIRY_CUTOFF are dropped: |Ai(x)| <= Ai(15) = 2.2e-18 there, and it
# decays like exp(-2/3 x^(3/2)), so truncating L2(s, inf) to a finite interval changes the
# determinant by far less than its rounding error (~1e-14).
AIRY_CUTOFF = 15.0

# Gauss-Legendre nodes of the Nystrom rule. Against 200 nodes the determinant has converged to
# rounding (<1e-14) from about 35 nodes for beta = 1 and 30 for beta = 2 over -12 <= s <= 15; 48
# leaves a margin. Below s = -12 the oscillation of Ai needs more nodes (the values are < 1e-31).
DEFAULT_NODES = 48

# Interpolant: [a, b] per beta, outside which F < 1e-12 (left) or 1 - F < 1e-12 (right):
# F_1(-9) = 7.6e-17, 1 - F_1(11) = 6.2e-13, F_2(-8) = 2.0e-19, 1 - F_2(6.5) = 2.8e-13. At b the
# density (> 1e-12) still exceeds the derivative noise of values near 1 (~1e-14); near a the values
# keep a small relative error. So the interpolated CDF increases on [a, b] (the tests check it on a
# 1e-4 grid); it is set to 0 below a and 1 above b.
_SUPPORT = {1: (-9.0, 11.0), 2: (-8.0, 6.5)}
_PANEL_LENGTH = 2.0  # at most; panels are equal
_PANEL_POINTS = 24  # Chebyshev points per panel: trailing coefficients fall to ~1e-16


def _check_beta(beta):
    if beta not in TRACY_WIDOM_BETAS:
        raise ValueError(f"beta must be one of {TRACY_WIDOM_BETAS} (got beta={beta!r})")
    return int(beta)


@lru_cache(maxsize=16)
def _gauss_legendre(m: int):
    """Gauss-Legendre nodes and weights on [-1, 1]."""
    return np.polynomial.legendre.leggauss(m)


def _nystrom_determinant(kernel_matrix, w):
    """det(delta_ij - w_i^(1/2) K(x_i, x_j) w_j^(1/2)): Bornemann's Nystrom approximation of
    det(I - K) on L2 (Math. Comp. 2010, symmetrised form)."""
    sw = np.sqrt(w)
    return float(np.linalg.det(np.eye(len(w)) - sw[:, None] * kernel_matrix * sw[None, :]))


def tracy_widom_f2_exact(s: float, nodes: int = DEFAULT_NODES) -> float:
    """F_2(s) = det(I - K_Ai) on L2(s, inf) (Tracy & Widom 1994), with the Airy kernel
    K_Ai(x, y) = (Ai(x) Ai'(y) - Ai'(x) Ai(y)) / (x - y), K_Ai(x, x) = Ai'(x)^2 - x Ai(x)^2,
    by Gauss-Legendre on [s, max(AIRY_CUTOFF, s + 1)] (Bornemann 2010)."""
    t, w = _gauss_legendre(nodes)
    hi = max(AIRY_CUTOFF, s + 1.0)
    x = s + (hi - s) * (t + 1.0) / 2.0
    w = w * (hi - s) / 2.0
    ai, aip, _, _ = airy(x)
    dx = x[:, None] - x[None, :]
    np.fill_diagonal(dx, 1.0)
    k = (ai[:, None] * aip[None, :] - aip[:, None] * ai[None, :]) / dx
    np.fill_diagonal(k, aip**2 - x * ai**2)
    return _nystrom_determinant(k, w)


def tracy_widom_f1_exact(s: float, nodes: int = DEFAULT_NODES) -> float:
    """F_1(s) = det(I - B_s) on L2(0, inf), B_s(x, y) = Ai(x + y + s) (Ferrari & Spohn 2005;
    Sasamoto 2005; Bornemann 2010), by Gauss-Legendre
    on [0, max(AIRY_CUTOFF - s, 1)]. Equivalently, kernel Ai((x + y)/2 + s) / 2 (x -> 2x)."""
    t, w = _gauss_legendre(nodes)
    length = max(AIRY_CUTOFF - s, 1.0)
    x = length * (t + 1.0) / 2.0
    w = w * length / 2.0
    i, j = np.triu_indices(nodes)
    k = np.empty((nodes, nodes))
    k[i, j] = airy(x[i] + x[j] + s)[0]  # Hankel, symmetric: one Airy call per pair
    k[j, i] = k[i, j]
    return _nystrom_determinant(k, w)


_EXACT = {1: tracy_widom_f1_exact, 2: tracy_widom_f2_exact}


def tracy_widom_cdf_exact(s, beta: int = 1, nodes: int = DEFAULT_NODES):
    """F_beta(s) by Nystrom quadrature of its Fredholm determinant (Bornemann 2010), elementwise.

    Absolute error ~1e-14 for s >= -12 with the default nodes (values below are < 1e-31).
    """
    beta = _check_beta(beta)
    if int(nodes) != nodes or nodes < 1:
        raise ValueError(f"nodes must be a positive integer (got {nodes!r})")
    f = _EXACT[beta]
    s = np.asarray(s, dtype=float)
    out = np.array([f(float(v), int(nodes)) for v in s.ravel()]).reshape(s.shape)
    return out[()]


class _PiecewiseChebyshev:
    """Interpolant on equal panels of [a, b], each through the Chebyshev extreme points."""

    def __init__(self, f, a: float, b: float, panel_length: float, points: int):
        self.a, self.b = a, b
        n_panels = int(np.ceil((b - a) / panel_length - 1e-12))
        self.edges = np.linspace(a, b, n_panels + 1)
        self.h = self.edges[1] - self.edges[0]
        t = np.cos(np.pi * np.arange(points) / (points - 1))  # from +1 down to -1
        s = (self.edges[:-1] + self.edges[1:])[None, :] / 2 + self.h / 2 * t[:, None]
        # Neighbouring panels share an end point: evaluate f once there.
        vals = np.empty_like(s)
        vals[1:, :] = f(s[1:, :])
        vals[0, :-1] = vals[-1, 1:]
        vals[0, -1] = f(s[0, -1])
        coef = dct(vals, type=1, axis=0) / (points - 1)  # Chebyshev coefficients (DCT-I)
        coef[0] /= 2
        coef[-1] /= 2
        self.coef = coef
        self.dcoef = chebyshev.chebder(coef, axis=0) * (2.0 / self.h)

    def _local(self, x):
        p = np.clip(np.searchsorted(self.edges, x) - 1, 0, len(self.edges) - 2)
        t = (2.0 * x - self.edges[p] - self.edges[p + 1]) / self.h
        return p, t

    def value(self, x):
        p, t = self._local(x)
        return chebyshev.chebval(t, self.coef[:, p], tensor=False)

    def derivative(self, x):
        p, t = self._local(x)
        return chebyshev.chebval(t, self.dcoef[:, p], tensor=False)

    def derivative_moment(self, k: int) -> float:
        """Integral of x^k p'(x) over [a, b], exact (Gauss-Legendre per panel)."""
        t, w = _gauss_legendre(self.coef.shape[0] + k)
        total = 0.0
        for p in range(len(self.edges) - 1):
            x = (self.edges[p] + self.edges[p + 1]) / 2 + self.h / 2 * t
            total += self.h / 2 * np.sum(w * x**k * chebyshev.chebval(t, self.dcoef[:, p]))
        return float(total)


@cache
def _interpolant(beta: int) -> _PiecewiseChebyshev:
    a, b = _SUPPORT[beta]
    return _PiecewiseChebyshev(
        lambda s: tracy_widom_cdf_exact(s, beta), a, b, _PANEL_LENGTH, _PANEL_POINTS
    )


def tracy_widom_cdf(s, beta: int = 1):
    """F_beta(s) from the cached interpolant of `tracy_widom_cdf_exact` (Tracy & Widom 1994, 1996;
    Bornemann 2010): absolute error ~1e-13; 0 below and 1 above the support where the neglected tail
    is < 1e-12. Vectorised, e.g. scipy.stats.kstest(x, lambda s: tracy_widom_cdf(s, 1))."""
    ip = _interpolant(_check_beta(beta))
    s = np.asarray(s, dtype=float)
    out = np.clip(ip.value(s), 0.0, 1.0)
    out = np.where(s < ip.a, 0.0, np.where(s > ip.b, 1.0, out))
    return out[()]


def tracy_widom_pdf(s, beta: int = 1):
    """Tracy-Widom density f_beta = F_beta', the derivative of the interpolant of
    `tracy_widom_cdf` (0 outside its support)."""
    ip = _interpolant(_check_beta(beta))
    s = np.asarray(s, dtype=float)
    out = np.where((s < ip.a) | (s > ip.b), 0.0, ip.derivative(s))
    return out[()]


def tracy_widom_ppf(q, beta: int = 1):
    """Quantile F_beta^(-1)(q) for 0 < q < 1, by root finding on `tracy_widom_cdf`."""
    beta = _check_beta(beta)
    q = np.asarray(q, dtype=float)
    if not np.all((q > 0) & (q < 1)):
        raise ValueError("tracy_widom_ppf needs 0 < q < 1")
    ip = _interpolant(beta)

    def one(qi):
        fa, fb = tracy_widom_cdf(ip.a, beta) - qi, tracy_widom_cdf(ip.b, beta) - qi
        if fa >= 0:
            return ip.a
        if fb <= 0:
            return ip.b
        return brentq(lambda s: tracy_widom_cdf(s, beta) - qi, ip.a, ip.b, xtol=1e-14)

    out = np.array([one(float(v)) for v in q.ravel()]).reshape(q.shape)
    return out[()]


@cache
def _raw_moments(beta: int):
    """(E X, E X^2) for X ~ TW_beta: the integral of s^k dF over the support [a, b] from the
    interpolant, plus the right tail by parts, b^k (1 - F(b)) + k int_b^c s^(k-1) (1 - F(s)) ds,
    with F from the quadrature and c = AIRY_CUTOFF (1 - F(c) < 1e-18). The left tail below a adds
    less than a^2 F(a) < 1e-14 and is left out."""
    ip = _interpolant(beta)
    b = ip.b
    t, w = _gauss_legendre(_PANEL_POINTS + 8)
    s = b + (AIRY_CUTOFF - b) * (t + 1.0) / 2.0
    w = w * (AIRY_CUTOFF - b) / 2.0
    survival = 1.0 - tracy_widom_cdf_exact(s, beta)
    mass_b = 1.0 - float(ip.value(b))
    tail1 = b * mass_b + np.sum(w * survival)
    tail2 = b**2 * mass_b + 2.0 * np.sum(w * s * survival)
    return ip.derivative_moment(1) + tail1, ip.derivative_moment(2) + tail2


def tracy_widom_mean(beta: int) -> float:
    """E[TW_beta] = integral of s f_beta(s) ds (Tracy & Widom 1994, 1996; Bornemann 2010 tabulates
    it), from the interpolant and the quadrature's right tail; cached."""
    return float(_raw_moments(_check_beta(beta))[0])


def tracy_widom_variance(beta: int) -> float:
    """Var[TW_beta] = integral of s^2 f_beta(s) ds - mean^2, as `tracy_widom_mean`; cached."""
    m1, m2 = _raw_moments(_check_beta(beta))
    return float(m2 - m1**2)
