"""The paper's normalisations and limits: Tracy-Widom scalings, Edelman's law, asymptotic bounds."""

from __future__ import annotations

import numpy as np


def symmetric_edge_statistic(t, n):
    """Z_n = (t - sqrt(8n)) n^(1/6) (107); with t = -tau_low it is Z~_n (108).

    t is an extreme eigenvalue of K_n^T + K_n for unit-variance K_n (Theorem 33).
    K_n^T + K_n is sqrt(2) times a GOE matrix, so Z_n / sqrt(2) -> TW_1.
    """
    return (t - np.sqrt(8.0 * n)) * n ** (1.0 / 6.0)


def wishart_centering(n):
    """(mu_n, q_n) of Theorem 35: mu_n = (sqrt(n-1) + sqrt(n))^2,
    q_n = sqrt(mu_n) (1/sqrt(n-1) + 1/sqrt(n))^(1/3)."""
    n = np.asarray(n, dtype=float)
    mu = (np.sqrt(n - 1) + np.sqrt(n)) ** 2
    q = np.sqrt(mu) * (1 / np.sqrt(n - 1) + 1 / np.sqrt(n)) ** (1.0 / 3.0)
    return mu, q


def largest_singular_statistic(s1, n):
    """Y_n = (s_1(K_n)^2 - mu_n) / q_n (110), -> TW_1 for Gaussian K_n (Theorem 35)."""
    mu, q = wishart_centering(n)
    return (s1**2 - mu) / q


def symmetric_to_spectral_ratio(tau_bar, s1):
    """tau_bar / (sqrt(2) s_1): conjectured to tend to 1 in distribution (remark after Theorem 38, Fig. 5b)."""
    return tau_bar / (np.sqrt(2.0) * s1)


def spectral_norm_limit(r):
    """Almost-sure limit of s_1(W1) for W1 = K_n / (r sqrt(8n)): 1 / (sqrt(2) r) (Lemma 36 (ii), from (109))."""
    return 1.0 / (np.sqrt(2.0) * r)


def condition_bound_limit_121(r):
    """(121): the limit in distribution of the first bound of (116), sqrt((r^2 + r + 1/2) / (r^2 - r))."""
    return np.sqrt((r**2 + r + 0.5) / (r**2 - r))


def condition_bound_limit_122(r):
    """(122): the limit in distribution of the first bound of (114), sqrt(r^2 + r + 1/2) / (r - 1/sqrt(2))."""
    return np.sqrt(r**2 + r + 0.5) / (r - 1 / np.sqrt(2.0))


def edelman_cdf(t):
    """P[K <= t] = exp(-2/t - 2/t^2) for t > 0, 0 otherwise: the law of lim kappa/n (Edelman 1988, Thm 6.1; (154))."""
    t = np.asarray(t, dtype=float)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        out = np.exp(-2.0 / t - 2.0 / t**2)
    return np.where(t > 0, out, 0.0)


def edelman_pdf(t):
    """Density (154) of lim kappa/n: f_K(t) = (2t + 4) / t^3 exp(-2/t - 2/t^2), t > 0."""
    t = np.asarray(t, dtype=float)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        out = (2 * t + 4) / t**3 * np.exp(-2.0 / t - 2.0 / t**2)
    return np.where(t > 0, out, 0.0)


def edelman_ppf(q):
    """Quantile of (154): t with exp(-2/t - 2/t^2) = q, i.e. 1/t = (sqrt(1 - 2 ln q) - 1) / 2."""
    q = np.asarray(q, dtype=float)
    if np.any((q <= 0) | (q >= 1)):
        raise ValueError(f"q: got {q}; allowed: 0 < q < 1")
    return 2.0 / (np.sqrt(1.0 - 2.0 * np.log(q)) - 1.0)
