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
