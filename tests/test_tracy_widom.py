"""Tracy-Widom F_1, F_2: published values, the Painleve II route, convergence, the interpolant,
and the largest eigenvalue of sampled GOE matrices."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad, solve_ivp
from scipy.linalg import eigvalsh_tridiagonal
from scipy.special import airy
from scipy.stats import kstest

from svperturb.theory.tracy_widom import (
    DEFAULT_NODES,
    tracy_widom_cdf,
    tracy_widom_cdf_exact,
    tracy_widom_mean,
    tracy_widom_pdf,
    tracy_widom_ppf,
    tracy_widom_variance,
)

# Pointwise accuracy of the interpolated CDF. On [-8, 6.5], inside both supports, the Nystrom values
# carry ~1e-14 rounding error and 24-point Chebyshev interpolation (Lebesgue constant ~3) keeps it
# below 1e-13; outside the support the neglected tail is below 1e-12 by construction.
CDF_TOL_INSIDE = 1e-13
CDF_TOL = 1e-12


def test_f1_at_zero_matches_bornemann():
    # F_1(0) = 0.83190806620 as tabulated by Bornemann (2010) to 11 decimals: half a unit of the
    # last digit (5e-12) plus the quadrature's ~1e-14.
    assert abs(tracy_widom_cdf_exact(0.0, beta=1) - 0.83190806620) < 6e-12


def test_f2_at_minus_two_matches_bornemann():
    # F_2(-2) = 0.41322414250512257 (Bornemann, Math. Comp. 2010, the value he converges to); also
    # reproduced by the Painleve route below. Quadrature rounding is ~1e-14.
    assert abs(tracy_widom_cdf_exact(-2.0, beta=2) - 0.41322414250512257) < 1e-13


# Published moments (Bornemann 2010, Table), 13 decimals. With the CDF within CDF_TOL_INSIDE on the
# support [a, b] (inside [-9, 11]), integration by parts bounds the error of E X^k by
# (|a|^k + |b|^k + k int_a^b |s|^(k-1) ds) * 1e-13: 4e-12 for the mean, 4e-11 for E X^2, so
# 4e-11 + 2 |mean| 4e-12 < 5e-11 for the variance; the tail beyond b comes from the quadrature.
MEAN_TOL = 5e-12
VARIANCE_TOL = 5e-11


@pytest.mark.parametrize(
    "beta, mean, variance",
    [(1, -1.2065335745820, 1.6077810345810), (2, -1.7710868074116, 0.8131947928329)],
)
def test_mean_and_variance_match_bornemann(beta, mean, variance):
    assert abs(tracy_widom_mean(beta) - mean) < MEAN_TOL
    assert abs(tracy_widom_variance(beta) - variance) < VARIANCE_TOL


def hastings_mcleod(s_eval, s0=10.0):
    """Painleve II q'' = s q + 2 q^3 with q ~ Ai at +inf (Hastings-McLeod), integrated from s0 down
    with the tail integrals u = int_s^inf q^2, v = int_s^inf (x - s) q^2, w = int_s^inf q.
    Tracy & Widom (1994, 1996): F_2 = exp(-v), F_1 = exp(-(v + w)/2), f_2 = F_2 u,
    f_1 = F_1 (u + q)/2. At s0 = 10, q - Ai = O(Ai^3) ~ 1e-30 and the tails are those of Ai:
    int_s^inf Ai^2 = Ai'^2 - s Ai^2,
    int_s^inf (x - s) Ai^2 = (2 s^2 Ai^2 - 2 s Ai'^2 - Ai Ai') / 3,
    int_s^inf Ai by quad (scipy.special.itairy is off by up to 1e-1 for 4 < x < 9, scipy 1.17)."""
    ai, aip, _, _ = airy(s0)
    u0 = aip**2 - s0 * ai**2
    v0 = (2 * s0**2 * ai**2 - 2 * s0 * aip**2 - ai * aip) / 3
    w0 = quad(lambda x: airy(x)[0], s0, s0 + 20.0, epsabs=1e-20, epsrel=1e-12)[0]

    def rhs(x, y):
        q, qp, u, v, w = y
        return [qp, x * q + 2 * q**3, -(q**2), -u, -q]

    order = np.argsort(s_eval)[::-1]
    sol = solve_ivp(
        rhs, (s0, float(np.min(s_eval))), [ai, aip, u0, v0, w0], method="DOP853",
        rtol=1e-13, atol=1e-300, t_eval=np.asarray(s_eval)[order],
    )
    assert sol.success
    y = np.empty_like(sol.y)
    y[:, order] = sol.y
    q, _, u, v, w = y
    f2 = np.exp(-v)
    f1 = np.exp(-(v + w) / 2)
    return {1: (f1, f1 * (u + q) / 2), 2: (f2, f2 * u)}


PAINLEVE_S = np.array([-4.0, -3.0, -2.0, -1.3, -0.5, 0.0, 0.7, 1.5, 3.0])


@pytest.fixture(scope="module")
def painleve():
    return hastings_mcleod(PAINLEVE_S)


@pytest.mark.parametrize("beta", [1, 2])
def test_fredholm_matches_painleve(beta, painleve):
    # DOP853 at rtol 1e-13 over ~14 units; the Hastings-McLeod solution is a separatrix, so errors
    # grow towards negative s (hence s >= -4). 1e-11 is a hundred times that local tolerance.
    cdf, _ = painleve[beta]
    np.testing.assert_allclose(tracy_widom_cdf_exact(PAINLEVE_S, beta), cdf, rtol=0, atol=1e-11)
    np.testing.assert_allclose(tracy_widom_cdf(PAINLEVE_S, beta), cdf, rtol=0, atol=1e-11)


@pytest.mark.parametrize("beta", [1, 2])
def test_density_matches_painleve(beta, painleve):
    # The density is the derivative of the 24-point panel interpolant: differentiating multiplies
    # the ~1e-14 data error by at most (n-1)^2 / (h/2) ~ 5e2 (Markov's inequality), so ~1e-11.
    _, pdf = painleve[beta]
    np.testing.assert_allclose(tracy_widom_pdf(PAINLEVE_S, beta), pdf, rtol=0, atol=1e-10)


@pytest.mark.parametrize("beta", [1, 2])
def test_quadrature_converges(beta):
    s = np.array([-5.0, -3.0, -1.0, 0.0, 1.0, 3.0])
    m = DEFAULT_NODES
    np.testing.assert_allclose(
        tracy_widom_cdf_exact(s, beta, nodes=m),
        tracy_widom_cdf_exact(s, beta, nodes=2 * m),
        rtol=0,
        atol=1e-12,
    )


@pytest.mark.parametrize("beta", [1, 2])
def test_interpolant_matches_quadrature_off_grid(beta):
    rng = np.random.default_rng(20100)
    s = rng.uniform(-8.0, 6.5, 40)
    np.testing.assert_allclose(
        tracy_widom_cdf(s, beta), tracy_widom_cdf_exact(s, beta), rtol=0, atol=CDF_TOL_INSIDE
    )
    s = np.concatenate([rng.uniform(-10.0, -8.0, 10), rng.uniform(6.5, 13.0, 20)])
    np.testing.assert_allclose(
        tracy_widom_cdf(s, beta), tracy_widom_cdf_exact(s, beta), rtol=0, atol=CDF_TOL
    )


@pytest.mark.parametrize("beta", [1, 2])
def test_cdf_increasing_and_pdf_nonnegative(beta):
    s = np.linspace(-12.0, 14.0, 260001)
    cdf = tracy_widom_cdf(s, beta)
    pdf = tracy_widom_pdf(s, beta)
    assert cdf[0] == 0.0 and cdf[-1] == 1.0
    assert np.all(np.diff(cdf) >= 0)
    assert np.all(pdf >= 0)


@pytest.mark.parametrize("beta", [1, 2])
def test_pdf_integrates_to_one(beta):
    # Trapezoid rule on a 1e-4 grid: error h^2/12 * int |f''| < 1e-9; the support's neglected
    # tails are < 1e-12.
    s = np.linspace(-12.0, 14.0, 260001)
    assert abs(np.trapezoid(tracy_widom_pdf(s, beta), s) - 1.0) < 1e-8


@pytest.mark.parametrize("beta", [1, 2])
def test_ppf_inverts_cdf(beta):
    s = np.linspace(-5.0, 4.0, 37)
    # brentq's xtol (1e-14) plus a few ulp of the CDF value divided by the slope.
    tol = 1e-14 + 1e-15 / tracy_widom_pdf(s, beta)
    assert np.all(np.abs(tracy_widom_ppf(tracy_widom_cdf(s, beta), beta) - s) <= tol)
    q = np.array([1e-6, 0.01, 0.5, 0.99, 1 - 1e-6])
    np.testing.assert_allclose(tracy_widom_cdf(tracy_widom_ppf(q, beta), beta), q, atol=1e-15)


@pytest.mark.parametrize("q", [0.0, 1.0, -0.1, 1.5, np.nan])
def test_ppf_rejects_q_outside_unit_interval(q):
    with pytest.raises(ValueError, match="q"):
        tracy_widom_ppf(q, 1)


@pytest.mark.parametrize(
    "call",
    [
        lambda b: tracy_widom_cdf(0.0, b),
        lambda b: tracy_widom_cdf_exact(0.0, b),
        lambda b: tracy_widom_pdf(0.0, b),
        lambda b: tracy_widom_ppf(0.5, b),
        tracy_widom_mean,
        tracy_widom_variance,
    ],
)
@pytest.mark.parametrize("beta", [0, 3, 4, 1.5])
def test_bad_beta_raises(call, beta):
    with pytest.raises(ValueError, match="beta"):
        call(beta)


def goe_largest_eigenvalue(n, size, rng):
    """Largest eigenvalue of GOE(n) (off-diagonal variance 1, diagonal 2), sampled through the
    Dumitriu-Edelman tridiagonal model (J. Math. Phys. 43 (2002) 5830; Trotter 1984): diagonal
    N(0, 2), off-diagonal chi_{n-1}, ..., chi_1, which has exactly the GOE eigenvalue law."""
    dof = np.arange(n - 1, 0, -1)
    out = np.empty(size)
    for k in range(size):
        d = rng.normal(0.0, np.sqrt(2.0), n)
        e = np.sqrt(rng.chisquare(dof))
        out[k] = eigvalsh_tridiagonal(d, e, select="i", select_range=(n - 1, n - 1))[0]
    return out


def test_goe_largest_eigenvalue_is_close_to_tw1():
    n, size, alpha = 200, 4000, 1e-3
    x = (goe_largest_eigenvalue(n, size, np.random.default_rng(1994)) - 2 * np.sqrt(n)) * n ** (
        1 / 6
    )
    # DKW: P(sup |F_N - F| > eps) <= 2 exp(-2 N eps^2), so eps = 0.031 at alpha = 1e-3.
    dkw = np.sqrt(np.log(2 / alpha) / (2 * size))
    # Centring at 2 sqrt(n) misplaces lambda_max by O(n^(-1/3)) in Tracy-Widom units (Johnstone &
    # Ma 2012); a shift of n^(-1/3) moves the CDF by at most n^(-1/3) max f_1 = 0.055 at n = 200.
    # (At N = 50000 the KS distance is 0.032: a shift of about 0.56 n^(-1/3).)
    finite_n = n ** (-1 / 3) * np.max(tracy_widom_pdf(np.linspace(-4, 2, 601), 1))
    tol = dkw + finite_n
    assert kstest(x, lambda s: tracy_widom_cdf(s, 1)).statistic < tol
    # The same sample is far from TW_2 (KS ~0.19), so the check can tell the betas apart.
    assert kstest(x, lambda s: tracy_widom_cdf(s, 2)).statistic > tol
