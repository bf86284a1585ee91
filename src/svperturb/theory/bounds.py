"""The paper's inequalities as functions of measured quantities.

Each function returns the bound(s); `slack` and `rounding_tolerance` turn a bound into a
pass/fail count that ignores floating-point noise. Notation: s0 = singular values of Mo
(decreasing), tau_low/tau_bar = extreme eigenvalues of Mo^T + Mo (Definition 15),
M(rho) = Mo + rho I (45). All functions are elementwise in NumPy/CuPy arrays.
"""

from __future__ import annotations

import numpy as np


def singular_value_growth_interval(s0, tau_low, tau_bar, rho):
    """Theorem 16, (70): s_i(0)^2 + rho tau_low + rho^2 <= s_i(rho)^2 <= s_i(0)^2 + rho tau_bar + rho^2.

    `s0` has shape (..., n); tau_low, tau_bar shape (...). Returns (lower, upper) for s_i(rho)^2.
    """
    base = s0**2 + rho**2
    return base + (rho * tau_low)[..., None], base + (rho * tau_bar)[..., None]


def extreme_singular_value_growth(s1_0, sn_0, tau_low, tau_bar, rho):
    """Lemma 21, (74): s_n(0)^2 + rho tau_low + rho^2 <= s_n(rho)^2 and s_1(rho)^2 <= s_1(0)^2 + rho tau_bar + rho^2.

    Returns (lower bound of s_n(rho)^2, upper bound of s_1(rho)^2). At rho = 1 this is (115).
    """
    return sn_0**2 + rho * tau_low + rho**2, s1_0**2 + rho * tau_bar + rho**2


def skip_weyl_interval(s1_0, rho):
    """Lemma 17, (71)/(72): rho - s_1(Mo) <= s_i(M(rho)) <= rho + s_1(Mo)."""
    return rho - s1_0, rho + s1_0


def rounding_tolerance(scale, n: int, dtype=np.float64):
    """What float64 LAPACK may get wrong in a quantity of size `scale` for n x n inputs: 16 n eps scale."""
    return 16 * n * np.finfo(dtype).eps * scale


def symmetric_part_norm_bound(s1_0):
    """(69): max(-tau_low, tau_bar) = ||Mo^T + Mo||_op <= 2 s_1(Mo); returns 2 s_1(Mo)."""
    return 2 * s1_0


def condition_bound_small_norm(s1_0, tau_bar):
    """Theorem 22 (76), = (114) for Mo = W1 and (117) for Mo = D1 W1; valid when s_1(Mo) < 1.

    kappa(Mo + I) <= sqrt(1 + tau_bar + s_1^2) / (1 - s_1) <= (1 + s_1) / (1 - s_1).
    Returns (first, second); NaN where s_1(Mo) >= 1.
    """
    valid = s1_0 < 1
    denominator = np.where(valid, 1 - s1_0, np.nan)
    return np.sqrt(1 + tau_bar + s1_0**2) / denominator, (1 + s1_0) / denominator


def condition_bound_symmetric_part(s1_0, sn_0, tau_low, tau_bar):
    """Theorem 22 (77); valid when tau_low > -1.

    kappa(Mo + I) <= sqrt((1 + tau_bar + s_1^2) / (1 + tau_low + s_n^2)) <= (1 + s_1) / sqrt(1 + tau_low).
    Returns (first, second); NaN where tau_low <= -1.
    """
    shifted = np.where(tau_low > -1, 1 + tau_low, np.nan)
    return (
        np.sqrt((1 + tau_bar + s1_0**2) / (shifted + sn_0**2)),
        (1 + s1_0) / np.sqrt(shifted),
    )


def condition_bound_lemma36(s1_0, tau_low, tau_bar):
    """Lemma 36 (116), = (118) for Mo = D1 W1; valid when tau_low > -1.

    kappa(W1 + I) <= sqrt((s_1^2 + tau_bar + 1) / (tau_low + 1)) <= (s_1 + 1) / sqrt(tau_low + 1).
    Returns (first, second); NaN where tau_low <= -1.
    """
    shifted = np.where(tau_low > -1, 1 + tau_low, np.nan)
    return np.sqrt((s1_0**2 + tau_bar + 1) / shifted), (s1_0 + 1) / np.sqrt(shifted)


def bound_efficiencies(s1_0, sn_0, tau_low, tau_bar, s1_1, sn_1):
    """Figure 6: how tight (115) and (116) are at rho = 1; each ratio is >= 1 when tau_low > -1.

    (a) s_n(W1+I)^2 / (s_n(W1)^2 + tau_low + 1), (b) (s_1(W1)^2 + tau_bar + 1) / s_1(W1+I)^2,
    (c) [first bound of (116)] / kappa(W1 + I).
    """
    lower_sn, upper_s1 = extreme_singular_value_growth(s1_0, sn_0, tau_low, tau_bar, 1.0)
    a = sn_1**2 / np.where(tau_low > -1, lower_sn, np.nan)
    b = upper_s1 / s1_1**2
    c = condition_bound_lemma36(s1_0, tau_low, tau_bar)[0] / (s1_1 / sn_1)
    return a, b, c


# --- hard bounds ---
# Section 6.1: weights with |W_i[j,k]| <= c, c < 1/n. Arguments are numbers or arrays (c, n, the
# count m of pattern entries equal to eta, eta); each bound is NaN where its own hypothesis fails.


def spectral_norm_entry_bound(c, n):
    """Lemma 27 (85): |W[i,j]| <= c for all entries of an n x n W implies s_1(W) <= c n
    (equality for the matrix of all c). Returns c n."""
    return np.asarray(c, dtype=float) * n


def product_entry_bound(c, n):
    """Lemma 28: if c <= 1/n and the diagonal D_i have entries bounded by 1, every entry of
    Mo = D_p W_p ... D_1 W_1 is bounded by c. Returns c; NaN where c n > 1."""
    c = np.asarray(c, dtype=float)
    return np.where(c * n <= 1, c, np.nan)


def skip_hard_interval(c, n):
    """Lemma 29 (86): 0 < 1 - c n <= s_n(M(1)) <= s_1(M(1)) <= 1 + c n < 2 for c < 1/n.

    Returns (lower bound of s_n(M(1)), upper bound of s_1(M(1))); NaN where c n >= 1."""
    cn = np.asarray(c, dtype=float) * n
    valid = cn < 1
    return np.where(valid, 1 - cn, np.nan), np.where(valid, 1 + cn, np.nan)


def condition_bound_hard(c, n):
    """Lemma 29 (87): kappa(M(1)) <= (1 + c n)/(1 - c n) for c < 1/n; the same bound is Theorem 30
    (88) for kappa(M(1) D), D in D(m, n, -1). NaN where c n >= 1."""
    cn = np.asarray(c, dtype=float) * n
    return np.where(cn < 1, (1 + cn) / np.where(cn < 1, 1 - cn, np.nan), np.nan)


def condition_bound_relu_width(c, n):
    """Theorem 31 (89), D in D(m, n, 0): kappa(M(1) D) <= (1 + c n)/sqrt(1 - 2 c n (1 + n)),
    provided 2 c n < 1/(1 + n). NaN where that fails."""
    cn = np.asarray(c, dtype=float) * n
    radicand = 1 - 2 * cn * (1 + n)
    valid = (cn < 1) & (2 * cn * (1 + n) < 1)
    return np.where(valid, (1 + cn) / np.sqrt(np.where(valid, radicand, np.nan)), np.nan)


def condition_bound_relu_fraction(c, n, m):
    """Theorem 31 (90), D in D(m, n, 0): kappa(M(1) D) <= (1 + c n)/(1 - c n - sqrt(m/n)),
    provided m <= n (1 - c n)^2 (at equality the bound is +inf). NaN where that fails."""
    cn = np.asarray(c, dtype=float) * n
    denominator = 1 - cn - np.sqrt(np.asarray(m, dtype=float) / n)
    valid = (cn < 1) & (m <= n * (1 - cn) ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = np.where(denominator > 0, (1 + cn) / np.where(denominator > 0, denominator, 1), np.inf)
    return np.where(valid, bound, np.nan)


def condition_bound_relu_count(c, n, m):
    """Theorem 31 (91), D in D(m, n, 0): kappa(M(1) D) <= (1 + c n)/sqrt(1 - 2 c n (1 + 2 m)),
    provided 2 c n < 1/(1 + 2 m). NaN where that fails."""
    cn = np.asarray(c, dtype=float) * n
    valid = (cn < 1) & (2 * cn * (1 + 2 * np.asarray(m)) < 1)
    radicand = np.where(valid, 1 - 2 * cn * (1 + 2 * np.asarray(m)), np.nan)
    return np.where(valid, (1 + cn) / np.sqrt(radicand), np.nan)


def condition_bound_leaky_gram(c, n, m, eta):
    """Theorem 32 (100), D in D(m, n, eta), 0 <= eta < 1: kappa(M(1) D) <=
    (1 + c n)/sqrt((1 - c n)^2 - 4 (1 - eta) sqrt(m)), provided n >= 5 and
    (1 - c n)^2 > 4 (1 - eta) sqrt(m) (from the Gram perturbation (102)-(104)). NaN where that fails."""
    cn = np.asarray(c, dtype=float) * n
    eta = np.asarray(eta, dtype=float)
    radicand = (1 - cn) ** 2 - 4 * (1 - eta) * np.sqrt(np.asarray(m, dtype=float))
    valid = (cn < 1) & (np.asarray(n) >= 5) & (eta >= 0) & (eta < 1) & (radicand > 0)
    return np.where(valid, (1 + cn) / np.sqrt(np.where(valid, radicand, np.nan)), np.nan)


def condition_bound_leaky_direct(c, n, m, eta):
    """Theorem 32 (101), D in D(m, n, eta), 0 <= eta < 1: kappa(M(1) D) <=
    (1 + c n)/(1 - c n - (1 - eta) m (3 c + 1)), provided 1 - c n > (1 - eta) m (3 c + 1)
    (from (105)). NaN where that fails. The theorem's n >= 5 is needed by (100) only."""
    c = np.asarray(c, dtype=float)
    cn = c * n
    eta = np.asarray(eta, dtype=float)
    denominator = 1 - cn - (1 - eta) * np.asarray(m, dtype=float) * (3 * c + 1)
    valid = (cn < 1) & (eta >= 0) & (eta < 1) & (denominator > 0)
    return np.where(valid, (1 + cn) / np.where(valid, denominator, np.nan), np.nan)


# --- relu ---
# Section 5.2 (Lemma 24, Proposition 25) and section 6.2 (Theorem 39, Corollary 40): ReLU patterns
# D in D(m, n, 0) and the ResNet layer (D1 W1 + I) D with W1 = K_n / (r sqrt(8 n)) Gaussian.


def singular_value_shrinkage(s, s_masked):
    """Lemma 24 (80): s_i(M) - s_i(M D) >= 0 and s_i(M) - s_i(D M) >= 0 for D in D(m, n, 0), every i.

    `s`, `s_masked` are the decreasing singular values of M and of M D (or D M). For 0 < |eta| <= 1
    the paper states the inequality for i = 1 only; s_i(M D) <= s_i(M) s_1(D) makes it hold for
    every i whenever |eta| <= 1. Returns the differences s - s_masked (elementwise)."""
    return s - s_masked


def relu_energy_identity(s, s_masked, frobenius_sq, masked_frobenius_sq, removed_energy):
    """Proposition 25 (81), D in D(m, n, 0): the four quantities
    sum s_i^2 - sum s~_i^2, sum |s_i^2 - s~_i^2|, ||M||_F^2 - ||M D||_F^2 and
    sum_i sum_j M[j, k_i]^2 (the energy of the columns that D zeroes) are equal.

    `s`, `s_masked` (..., n): singular values of M and M D; the other arguments (...) are computed
    from the matrices. Returns the four quantities in that order."""
    s2, t2 = s**2, s_masked**2
    return (s2.sum(axis=-1) - t2.sum(axis=-1), abs(s2 - t2).sum(axis=-1),
            frobenius_sq - masked_frobenius_sq, removed_energy)


def relu_perturbation_sum(s, s_masked):
    """Left-hand side of Proposition 25 (82) and of Corollary 2: sum_i |s_i - s~_i|^2."""
    return ((s - s_masked) ** 2).sum(axis=-1)


def relu_perturbation_bound(removed_energy):
    """Proposition 25 (82): sum_i |s_i(M) - s_i(M D)|^2 <= sum_i sum_j M[j, k_i]^2 = ||M (I - D)||_F^2
    for D in D(m, n, 0). For any diagonal D the same holds with ||M - M D||_F^2 (Corollary 2,
    Hoffman-Wielandt/Mirsky). Returns the bound, i.e. its argument."""
    return removed_energy


def relu_interaction(m, m_left, n):
    """(127): nu = m + m~ - m m~ / n for D in D(m, n, 0), D1 in D(m~, n, 0); 1 <= nu <= n when
    m + m~ >= 1. Also the number k = n nu of entries of W1 changed by D1 (.) D (Theorem 39 (i))."""
    m, m_left = np.asarray(m, dtype=float), np.asarray(m_left, dtype=float)
    return m + m_left - m * m_left / n


def relu_theorem39_applies(n, nu, r, theta, r_prime=2.0):
    """The hypotheses of Theorem 39 that concern numbers: nu >= 1 (m + m~ >= 1), 4 < theta <= 2 sqrt(n)
    and r > r' + r' nu + theta; with r' = 2 that is r > 2 + 2 nu + theta, the condition of (128).
    (Gaussian weights and eta = 0 are the caller's to check.)"""
    nu = np.asarray(nu, dtype=float)
    theta = np.asarray(theta, dtype=float)
    return (nu >= 1) & (theta > 4) & (theta <= 2 * np.sqrt(n)) & (r > r_prime + r_prime * nu + theta)


def relu_condition_bound_spectral(n, nu, r, theta):
    """Theorem 39 (128): kappa((D1 W1 + I) D) <= 2 (1 + 1/r) / (1 - (2 + 2 nu + theta)/r),
    with probability >= 1 - 2 exp(-theta^2/2) - P[E_s1]. NaN where the hypotheses fail."""
    valid = relu_theorem39_applies(n, nu, r, theta, 2.0)
    denominator = np.where(valid, 1 - (2 + 2 * np.asarray(nu, dtype=float) + theta) / r, np.nan)
    return 2 * (1 + 1 / r) / denominator


def relu_condition_bound_symmetric(n, nu, r, theta, s1_w, r_prime=2.0):
    """Theorem 39 (129): kappa((D1 W1 + I) D) <= 2 (1 + s_1(W1)) / (1 - (r' + r' nu + theta)/r),
    r' > 1, with probability >= 1 - 2 exp(-theta^2/2) - P[E_tau(r')], E_tau(r') = {tau_low(W1) <= -r'/r}
    (135). NaN where the hypotheses fail (r' <= 1 included)."""
    valid = relu_theorem39_applies(n, nu, r, theta, r_prime) & (r_prime > 1)
    denominator = np.where(valid, 1 - (r_prime + r_prime * np.asarray(nu, dtype=float) + theta) / r, np.nan)
    return 2 * (1 + np.asarray(s1_w, dtype=float)) / denominator


def relu_uniform_singular_value_bounds(n, r, theta):
    """Corollary 40: c = (1 - (2 + 2 n + theta)/r)/2 <= s_i((D1 W1 + I) D) <= C = 1 + 1/r for every
    non-zero s_i and every pattern, provided 4 < theta <= 2 sqrt(n) and r > 2 + 2 n + theta.
    Returns (c, C); NaN where the hypotheses fail."""
    theta = np.asarray(theta, dtype=float)
    valid = (theta > 4) & (theta <= 2 * np.sqrt(n)) & (r > 2 + 2 * n + theta)
    c = np.where(valid, (1 - (2 + 2 * n + theta) / r) / 2, np.nan)
    return c, np.where(valid, 1 + 1 / r, np.nan)


def relu_condition_bound_uniform(n, r, theta):
    """Corollary 40 (151): kappa((D1 W1 + I) D) <= C / c. NaN where the hypotheses fail."""
    c, upper = relu_uniform_singular_value_bounds(n, r, theta)
    return upper / c


def relu_bound_probability(theta):
    """Theorem 39 / Corollary 40: the bounds hold with probability >= 1 - 2 exp(-theta^2/2) - P[E];
    returns 1 - 2 exp(-theta^2/2) (subtract the exceptional event's probability P[E])."""
    return 1 - 2 * np.exp(-np.asarray(theta, dtype=float) ** 2 / 2)


# --- derivative and data factor ---
# Section 3.6 (Lemma 10, Corollary 11): a mini-batch of G data with inputs z^(g) and matrices
# M^(g) D^(g); arrays carry the batch along axis -2 (z: (..., G, n)) and s_1, s_n along axis -1
# ((..., G)).


def batch_singular_value_upper_bound(z, s1):
    """Lemma 10 (57): s_{i,j}^2(Q_batch) <= (1/G) sum_g z^(g)[j]^2 s_1^2(M^(g) D^(g)) for every i.
    `z` (..., G, n), `s1` (..., G); returns the bound on s_{i,j}^2, shape (..., n)."""
    return (np.asarray(z) ** 2 * (np.asarray(s1) ** 2)[..., None]).mean(axis=-2)


def batch_singular_value_lower_bound(z, sn):
    """Lemma 10 (58): s_{i,j}^2(Q_batch) >= (1/G) sum_g z^(g)[j]^2 s_n^2(M^(g) D^(g)) for every i.
    `z` (..., G, n), `sn` (..., G); returns the bound on s_{i,j}^2, shape (..., n)."""
    return (np.asarray(z) ** 2 * (np.asarray(sn) ** 2)[..., None]).mean(axis=-2)


def batch_condition_bound(z, s1, sn):
    """Corollary 11 (63): kappa(Q_batch) <= (C / c) max_j zbar[j] / min*_j zbar[j], with
    C = max_g s_1(M^(g) D^(g)), c = min_g s_n(M^(g) D^(g)) (62) and zbar[j] the root mean square of
    z^(g)[j] over the batch. Needs c > 0: NaN where c is within rounding of 0 (c <= 16 n eps C,
    e.g. ReLU patterns) or every zbar vanishes."""
    z = np.asarray(z, dtype=float)
    n = z.shape[-1]
    upper, lower = np.max(s1, axis=-1), np.min(sn, axis=-1)
    zbar = np.sqrt((z**2).mean(axis=-2))
    nonzero = zbar > 0
    smallest = np.min(np.where(nonzero, zbar, np.inf), axis=-1)
    valid = (lower > rounding_tolerance(upper, n)) & nonzero.any(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = upper / lower * zbar.max(axis=-1) / smallest
    return np.where(valid, bound, np.nan)
