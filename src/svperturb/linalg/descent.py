"""Gradient descent on deep matrix factorization near a minimizer, and whether it escapes (Kamber &
Parhi, arXiv 2509.25783; the escape study, studies/escape.py).

The loss L(W_1, ..., W_L) = ||M - W_L ... W_1||_F^2 (no factor 1/2) has the gradient

    grad_(W_i) L = -2 A_i^T R B_i^T,   R = M - W_L ... W_1,

A_i = W_L ... W_(i+1) and B_i = W_(i-1) ... W_1 (identities at the ends; factor_products of
linalg/sharpness.py). Weights are lists of L arrays (batch, d_i, d_(i-1)), W_1 first, on the array
module `xp`; the results stay on `xp`, only the per-step losses cross to the host (one small
transfer a step), where the bookkeeping of which run is decided is done.

Every operation acts on each sample alone (stacked matmuls, elementwise arithmetic, sums over a
sample's own axes), so a sample's iterates are the same whichever samples share its batch: taking
the decided samples out of the batch (compaction) changes no number, bit for bit on NumPy, where a
stacked matmul computes each matrix by itself with the same kernel (tested against running every
sample for all the steps).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy as np

from svperturb.linalg.backend import to_host
from svperturb.linalg.sharpness import factor_products

# The outcome of a run (the escape study's dataset `outcome`, an HDF5 enum; descend says which is
# which).
STAYED, ESCAPED, UNDECIDED, MOVED = 0, 1, 2, 3
OUTCOMES = {STAYED: "stayed", ESCAPED: "escaped", UNDECIDED: "undecided", MOVED: "moved"}
# A loss counts as having risen above the start's l_0 beyond (1 + RISE_TOLERANCE) l_0. Its rounding
# is about 2 sqrt(l_0 floor), floor the loss at the minimizer as computed: relative 2
# sqrt(floor / l_0) < 1e-5 on the escape study's default grid (9.8e-6 at most), 100 times less.
RISE_TOLERANCE = 1e-3


def end_to_end_map(weights):
    """A = W_L ... W_1 (batch, d_L, d_0) of the factors [W_1, ..., W_L], W_1 applied first."""
    product = weights[0]
    for w in weights[1:]:
        product = w @ product
    return product


def residual(weights, m, xp: ModuleType = np):
    """R = M - W_L ... W_1 (batch, d_L, d_0)."""
    return m - end_to_end_map(weights)


def loss(weights, m, xp: ModuleType = np):
    """||M - W_L ... W_1||_F^2 per sample (batch,)."""
    r = residual(weights, m, xp)
    return (r * r).sum(axis=(-2, -1))


def residual_products(lefts, rights, r, xp: ModuleType = np):
    """[A_i^T R B_i^T for i = 1..L]: the derivative of <R, W_L ... W_1> in W_i, from the products
    A_i, B_i of factor_products; the gradient of ||M - W_L ... W_1||_F^2 is -2 times it (and of the
    deep linear network's loss, linalg/linear_network.py, -1 times it)."""
    return [xp.swapaxes(a, -1, -2) @ r @ xp.swapaxes(b, -1, -2) for a, b in zip(lefts, rights)]


def loss_and_gradient(weights, m, xp: ModuleType = np):
    """(loss (batch,), [grad_(W_i) L = -2 A_i^T R B_i^T for i = 1..L]) at `weights`."""
    lefts, rights = factor_products(weights, xp)
    r = m - weights[-1] @ rights[-1]
    gradients = [-2 * p for p in residual_products(lefts, rights, r, xp)]
    return (r * r).sum(axis=(-2, -1)), gradients


@dataclass(frozen=True)
class Descent:
    """descend's result per sample, on `xp`: the outcome (STAYED, ESCAPED, MOVED, UNDECIDED), the
    steps taken until decided (max_steps where undecided), and the loss at the start, at the end
    (after those steps) and the largest on the way."""

    outcome: object
    steps: object
    start_loss: object
    end_loss: object
    peak_loss: object


def descend(weights, m, rates, max_steps: int, escape_factor: float, stay_factor: float,
            xp: ModuleType = np, compact: bool = True) -> Descent:
    """Full-batch gradient descent W_i <- W_i - eta grad_(W_i) L from `weights`, eta = `rates`
    (batch,) per sample, until each run is decided by its loss l_k against the start's l_0, at the
    first step k where

    - escaped: l_k >= escape_factor^2 l_0 (the deviation grew escape_factor-fold);
    - stayed: l_k <= l_0 / stay_factor^2, the loss never above (1 + RISE_TOLERANCE) l_0 before;
    - moved: l_k < l_0 after the loss rose above (1 + RISE_TOLERANCE) l_0: gradient descent left
      the minimizer's linear neighbourhood before its loss grew escape_factor^2-fold and came down
      elsewhere, towards another minimizer (a catapult). Near a minimizer a run's loss either
      only falls (its deviation shrinks) or only rises (it grows), whatever the step, so a rise
      and then a fall happen only beyond the linear regime, and only where the deviation grew;
    - undecided: none of these within `max_steps` steps.

    With `compact` a decided run leaves the batch, so that the work follows the runs still
    undecided; without, every run stays in the batch, stepping on, until the last one is decided
    or `max_steps` is reached, and is recorded when first decided (the reference compaction is
    tested against: the same numbers, see the module docstring).
    """
    batch = m.shape[0]
    rows = np.arange(batch)  # the samples of the arrays' rows
    live = np.ones(batch, dtype=bool)  # per row: not decided yet
    outcome = np.full(batch, UNDECIDED, dtype=np.uint8)
    steps = np.full(batch, max_steps, dtype=np.int64)
    weights, rates = list(weights), rates[:, None, None]
    with np.errstate(over="ignore", invalid="ignore"):  # without compaction escaped runs overflow
        current, gradients = loss_and_gradient(weights, m, xp)
        start = to_host(current)
        end, peak = start.copy(), start.copy()
        high, low = start * escape_factor**2, start / stay_factor**2
        rise = start * (1 + RISE_TOLERANCE)
        for step in range(1, max_steps + 1):
            weights = [w - rates * g for w, g in zip(weights, gradients)]
            current, gradients = loss_and_gradient(weights, m, xp)
            values = to_host(current)
            rose = peak[rows] > rise[rows]
            peak[rows[live]] = np.fmax(peak[rows[live]], values[live])
            escaped = live & (values >= high[rows])
            moved = live & ~escaped & rose & (values < start[rows])
            stayed = live & ~rose & (values <= low[rows])
            decided = escaped | moved | stayed
            if step == max_steps:
                decided = live
            if decided.any():
                samples = rows[decided]
                outcome[samples] = np.select([escaped[decided], moved[decided], stayed[decided]],
                                             [ESCAPED, MOVED, STAYED], UNDECIDED)
                steps[samples], end[samples] = step, values[decided]
                live &= ~decided
                if compact:
                    keep = xp.asarray(np.flatnonzero(live))
                    rows, live = rows[live], live[live]
                    weights = [w[keep] for w in weights]
                    gradients = [g[keep] for g in gradients]
                    m, rates = m[keep], rates[keep]
            if not live.any():
                break
    return Descent(xp.asarray(outcome), xp.asarray(steps), xp.asarray(start), xp.asarray(end),
                   xp.asarray(peak))
