"""Sharpness at the minima of deep matrix factorization (Kamber & Parhi, arXiv 2509.25783).

The loss is L(W_1, ..., W_L) = ||M - W_L ... W_1||_F^2 (no factor 1/2), W_i of size d_i x d_(i-1).
With A_i = W_L ... W_(i+1) and B_i = W_(i-1) ... W_1 (identities at the ends), the Hessian at a
zero-loss minimizer is 2 J^T J, J(U_1, ..., U_L) = sum_i A_i U_i B_i, so its largest eigenvalue
("the sharpness") is 2 lambda_max(K), K = sum_i (B_i^T B_i) (x) (A_i A_i^T)
(linalg/sharpness.py computes it for any minimizer). These are its closed forms and bounds, as
functions of measured quantities, batched over a leading axis, in float64.
"""

from __future__ import annotations

import numpy as np


def depth_two_sharpness(w1, w2):
    """Kamber & Parhi (arXiv 2509.25783), depth 2: at a minimizer W_2 W_1 = M the sharpness is
    2 (||W_1||^2 + ||W_2||^2), spectral norms (K = (W_1^T W_1) (x) I + I (x) (W_2 W_2^T) is a
    Kronecker sum, whose largest eigenvalue is the sum of the two largest).

    `w1` (batch, d_1, d_0), `w2` (batch, d_2, d_1); returns (batch,)."""
    return 2 * (_spectral_norm(w1) ** 2 + _spectral_norm(w2) ** 2)


def scalar_sharpness(w):
    """Kamber & Parhi (arXiv 2509.25783), scalar factorization w_L ... w_1 = m: the sharpness is
    2 sum_i prod_(j != i) w_j^2 (K is the number sum_i prod_(j != i) w_j^2).

    `w` (batch, L); returns (batch,)."""
    w = np.asarray(w, dtype=float)
    others = [np.prod(np.delete(w, i, axis=-1) ** 2, axis=-1) for i in range(w.shape[-1])]
    return 2 * np.sum(others, axis=0)


def least_scalar_sharpness(m, depth):
    """Kamber & Parhi (arXiv 2509.25783), scalar factorization: the least sharpness over all
    minimizers w_L ... w_1 = m is 2 L |m|^(2 - 2/L) (AM-GM on the L terms m^2 / w_i^2, whose product
    is m^(2L - 2)), reached at |w_i| = |m|^(1/L)."""
    return 2 * depth * np.abs(np.asarray(m, dtype=float)) ** (2 - 2 / depth)


def balanced_sharpness(norm_m, depth):
    """Kamber & Parhi (arXiv 2509.25783), balanced factorizations (every W_i on M's singular
    vectors with singular values s(M)^(1/L)): the sharpness is 2 L ||M||^(2 - 2/L), `norm_m` = ||M||
    the spectral norm: the K_i share the eigenvector u_1 v_1^T of M's top singular pair, where
    each contributes ||M||^(2 - 2/L). It is also the least sharpness over all minimizers of M: at
    V = u_1 v_1^T, <V, K V> = sum_i ||A_i^T u_1||^2 ||B_i v_1||^2 >= L ||M||^(2 - 2/L) by AM-GM,
    since A_(i-1) B_i = M makes the product of the L terms >= ||M||^(2L - 2). The scalar least
    value with |m| -> ||M||."""
    return least_scalar_sharpness(norm_m, depth)


def cauchy_schwarz_sharpness_bound(left_norms, right_norms):
    """Kamber & Parhi (arXiv 2509.25783), the upper bound from Cauchy-Schwarz:
    sharpness <= 2 sum_i ||A_i||^2 ||B_i||^2 (||J(U)|| <= sum_i ||A_i|| ||U_i||_F ||B_i||, then
    Cauchy-Schwarz over i). Exact at depth 2 and wherever the K_i share a top eigenvector
    (balanced and scalar factorizations); in general not for L >= 3.

    `left_norms`, `right_norms` (batch, L): ||A_i||, ||B_i||; returns (batch,)."""
    left, right = np.asarray(left_norms, dtype=float), np.asarray(right_norms, dtype=float)
    return 2 * np.sum(left**2 * right**2, axis=-1)


def _spectral_norm(w):
    return np.linalg.norm(np.asarray(w, dtype=float), ord=2, axis=(-2, -1))


# ---------------------------------------------------------------------------------------------
# Gradient descent near a minimizer: the escape transition


def linear_growth_factor(step_factor):
    """Kamber & Parhi (arXiv 2509.25783), the escape of gradient descent from a minimizer: with the
    step eta = c 2 / lambda_max, GD W <- W - eta grad L started at W* + e, W* a zero-loss minimizer,
    multiplies the deviation's component along the Hessian's top eigenvector u by |1 - 2c| per step
    (linear stability). Since grad L(W* + e) = H e + O(||e||^2), H the Hessian at W*, a step maps
    e to (I - eta H) e + O(||e||^2), and H u = lambda_max u gives the factor 1 - eta lambda_max =
    1 - 2c; the loss, lambda_max / 2 times the squared component to leading order (H = 2 J^T J,
    L = ||J e||^2 + O(||e||^3)), is multiplied by (1 - 2c)^2. The deviation shrinks for
    0 < c < 1 and grows for c > 1: the transition sits at c* = 1, eta = 2 / lambda_max.

    `step_factor` c, any shape; returns |1 - 2c| of the same shape."""
    return np.abs(1 - 2 * np.asarray(step_factor, dtype=float))


def undecided_window(max_steps, escape_factor, stay_factor):
    """(low, high): the step factors c near 1 for which gradient descent as in linear_growth_factor
    decides neither way within `max_steps` = T steps, when a run counts as escaped once its loss
    reaches escape_factor^2 times the start's and as stayed once it falls to 1 / stay_factor^2
    times it:

        (1 + stay_factor^(-1/T)) / 2  <  c  <  (1 + escape_factor^(1/T)) / 2.

    Derivation: after k steps the loss is g^(2k) times the start's, g = |1 - 2c|
    (linear_growth_factor), so a run is still undecided after T steps iff
    stay_factor^(-2) < g^(2T) < escape_factor^2, i.e. stay_factor^(-1/T) < g < escape_factor^(1/T)
    (g^(2k) is monotone in k, so no earlier step decided it either); for c > 1/2, g = 2c - 1,
    which gives the window. Its mirror image near c = 0 (g = 1 - 2c; a step too small to move) is
    (1 - escape_factor^(1/T)) / 2 < c < (1 - stay_factor^(-1/T)) / 2, see linearly_undecided.
    Both ends tend to 1 as T grows: the window's width is about
    (ln escape_factor + ln stay_factor) / (2T)."""
    steps = np.asarray(max_steps, dtype=float)
    return ((1 + np.asarray(stay_factor, dtype=float) ** (-1 / steps)) / 2,
            (1 + np.asarray(escape_factor, dtype=float) ** (1 / steps)) / 2)


def linearly_undecided(step_factor, max_steps, escape_factor, stay_factor, margin=0.0):
    """Whether linear stability leaves a run at step factor c undecided after `max_steps` steps
    (undecided_window, and its mirror image near c = 0): stay_factor^(-1/T) < |1 - 2c| <
    escape_factor^(1/T). `margin` widens the window on each side by that fraction of its width in
    log |1 - 2c| (0: the window itself)."""
    with np.errstate(divide="ignore"):  # c = 1/2: g = 0, decided in one step
        log_growth = np.log(linear_growth_factor(step_factor))
    steps = float(max_steps)
    low, high = -np.log(stay_factor) / steps, np.log(escape_factor) / steps
    slack = margin * (high - low)
    return (log_growth > low - slack) & (log_growth < high + slack)
