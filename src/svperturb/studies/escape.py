"""Escape of gradient descent from minima of deep matrix factorization (Kamber & Parhi, arXiv
2509.25783): the transition at the step 2 / lambda_max.

Per sample: a minimizer W* of ||M - W_L ... W_1||_F^2, its Hessian's lambda_max (exact,
linalg/sharpness.py: sharpness) and unit top eigenvector u (top_direction, sum_i ||U_i||_F^2 = 1),
a step factor c uniform in the study's `step_factor` interval [low, high], and full-batch gradient
descent with the step eta = c 2 / lambda_max (linalg/descent.py) started at W* + delta u, delta =
`start_distance` ||W*||, ||W*||^2 = sum_i ||W*_i||_F^2. Linear stability
(theory/matrix_factorization.py: linear_growth_factor) multiplies the deviation along u by
|1 - 2c| per step: it shrinks for c < 1 and grows for c > 1.

The minimizers are the sharpness study's: the target M and the imbalance directions Z_i are drawn
under the sharpness study's name (SEEDING_STUDY; sampling/ensembles.py: sample_draws keys every
draw on the study's name), so sample k of (seed, target, width, depth, imbalance) is the very
minimizer of the sharpness study's sample k, and its lambda_max the same to rounding (to the
Lanczos bound beyond d^2 = 64, whose start vector depends on the batch): the two studies are
paired. The step factors are this study's own stream (sampling/factorizations.py: step_factors):
the same c for every depth and imbalance of a sample of a (target, width), independent across
targets and widths, and split-independent like every draw.

Classified by the LOSS, l_k after k steps against the start's l_0 (about delta^2 lambda_max / 2;
linalg/descent.py: descend): escaped once l_k >= escape_factor^2 l_0 (the deviation grew
escape_factor-fold), stayed once l_k <= l_0 / stay_factor^2 without having risen above l_0,
moved once l_k falls below l_0 after having risen (gradient descent left the linear neighbourhood
of W* and slid to another, flatter minimizer: a catapult), undecided when none of these happened
within max_steps steps (then c lies in theory/matrix_factorization.py: undecided_window, to
rounding). The loss ignores the flat directions along the manifold of minimizers, where rounding
drift would otherwise pollute a distance in parameter space: it sees only the deviation that the
Hessian sees.

The thresholds against the rounding floor: the loss at W* itself as computed (`minimizer_loss`,
(a few eps times the product of the factors' norms)^2) is the least loss a run can show. The stay
threshold l_0 / stay_factor^2 sits at least 4e4 times above it on the default grid (start_distance
1e-9, stay_factor 1e3; docs/findings.md), so that a run near its floor is never mistaken for one
still shrinking, nor kept from reaching the threshold; and the loss's own rounding, relative
2 sqrt(floor / l_0) < 1e-5 there, leaves the measured growth (l_end / l_0)^(1 / 2k) that of the
deviation. The escape threshold must be met while the run is still linear: at deep imbalanced
minimizers gradient descent at c just above 1 leaves the linear regime early and catapults to a
flatter minimizer (moved); from 1e-9 ||W*|| at scalar depth 8, kappa = 1, the loss peaks as low as
4e6 l_0 at c = 1.002 and 4e8 l_0 at c = 1.02 (the peak grows as (c - 1)^2, and falls as the
start moves out, as 1 / start_distance^2). escape_factor 100 (the default; a loss 1e4 l_0)
decides before that on the default grid, a factor of 1e6 would not (tests/test_escape.py).

Depth and imbalance are BATCHED: one job per (target, width) computes every (depth, imbalance),
the target and the Z_i drawn once (as the sharpness study does); gradient descent runs the
samples of every imbalance of a depth in one batch, and a decided run leaves it (compaction), so
that the work follows the runs near c = 1, not max_steps times the batch.
"""

from __future__ import annotations

import numpy as np

from svperturb.linalg.backend import to_host
from svperturb.linalg.descent import OUTCOMES, descend, loss
from svperturb.linalg.sharpness import sharpness, top_direction
from svperturb.sampling.factorizations import (
    balanced_factors,
    imbalance_directions,
    imbalanced_factors,
    step_factors,
    target_matrices,
)
from svperturb.studies import sharpness as sharpness_study
from svperturb.studies.datasets import COUNT, NO_UNITS, SAMPLE, Dataset
from svperturb.theory.matrix_factorization import linear_growth_factor

NAME = "escape"
AXES = ("target", "width", "depth", "imbalance")
INNER = ()
BATCHED = ("depth", "imbalance")
# The study's own settings (config schema, `escape_study`): in every point, its shards' point_json
# and data hash, so that a change of one recomputes the shards and a stale shard is refused.
SETTINGS = ("step_factor", "max_steps", "start_distance", "escape_factor", "stay_factor")
# The minimizers are the sharpness study's: its name keys their draws (module docstring).
SEEDING_STUDY = sharpness_study.NAME
SOURCE = "Kamber & Parhi (arXiv 2509.25783)"
STABILITY = "linear stability (theory/matrix_factorization.py: linear_growth_factor)"
# The most imbalance values of a depth that bytes_per_sample allows for (they share a batch).
STACKED_IMBALANCES = 4

DATASETS = {
    "step_factor": Dataset("c: gradient descent's step is eta = c 2 / lambda_max; uniform in the "
                           "study's step_factor interval, the same for every depth and imbalance "
                           "of a sample", SAMPLE, finite=True),
    "lambda_max": Dataset("largest eigenvalue of the loss Hessian at the minimizer W* (the "
                          "sharpness study's, exact)", SAMPLE, equation=SOURCE, finite=True),
    "outcome": Dataset("the run's outcome (HDF5 enum): "
                       + ", ".join(f"{code} {name}" for code, name in OUTCOMES.items())
                       + "; escaped: the loss reached escape_factor^2 start_loss; stayed: it fell "
                       "to start_loss / stay_factor^2 without rising first; moved: it rose above "
                       "start_loss, then fell below it (gradient descent left W* for another "
                       "minimizer); undecided: none of these within max_steps steps",
                       SAMPLE, NO_UNITS, equation=STABILITY, codes=OUTCOMES),
    "steps": Dataset("gradient steps taken until the loss met a threshold (max_steps where "
                     "undecided)", SAMPLE, COUNT),
    "growth_per_step": Dataset("measured factor per step of the deviation, (end_loss / "
                               "start_loss)^(1 / (2 steps))", SAMPLE, equation=STABILITY,
                               finite=True),
    "predicted_growth_per_step": Dataset("|1 - 2c|, its prediction by linear stability",
                                         SAMPLE, equation=STABILITY, finite=True),
    "start_loss": Dataset("loss ||M - W_L ... W_1||_F^2 at the start W* + delta u (about "
                          "delta^2 lambda_max / 2)", SAMPLE, finite=True),
    "end_loss": Dataset("loss after `steps` steps", SAMPLE, finite=True),
    "peak_loss": Dataset("largest loss of the run up to its end (start_loss where it only fell)",
                         SAMPLE, finite=True),
    "start_deviation": Dataset("delta = start_distance ||W*||, ||W*||^2 = sum_i ||W*_i||_F^2: the "
                               "start's distance from W* along u", SAMPLE, finite=True),
    "minimizer_loss": Dataset("loss at W* itself as computed: the rounding floor, far below "
                              "start_loss / stay_factor^2", SAMPLE, finite=True),
}


def bytes_per_sample(point) -> int:
    """Per imbalance of the batch (up to STACKED_IMBALANCES share one): the factors, their
    products, gradients and the next iterate (about 6 L d x d matrices); and the dense operator
    (d^2 x d^2, twice for eigh) of the top eigenpair, in float64."""
    d, depth = point["width"], point["depth"]
    return (STACKED_IMBALANCES * 6 * depth * d * d + 2 * d**4) * 8


def simulate(point, start, stop, xp):
    [result] = simulate_points([point], start, stop, xp)
    return result


def simulate_points(points, start, stop, xp):
    """simulate for each point, the values unchanged: the target drawn once per (seed, width,
    target), the imbalance directions once for the deepest of the job's depths, the step factors
    once; one descent per depth for all of its imbalances."""
    results: list = [None] * len(points)
    groups: dict[tuple, list[int]] = {}
    for k, point in enumerate(points):
        settings = tuple(str(point[key]) for key in SETTINGS)
        groups.setdefault((point["seed"], point["width"], point["target"], settings), []).append(k)
    for indices in groups.values():
        first = points[indices[0]]
        d, target, seed = first["width"], first["target"], first["seed"]
        m = target_matrices(seed, SEEDING_STUDY, d, target, start, stop)
        deepest = max(points[k]["depth"] for k in indices)
        directions = imbalance_directions(seed, SEEDING_STUDY, d, deepest, start, stop)
        c = step_factors(seed, NAME, d, target, *first["step_factor"], start, stop)
        for depth in sorted({points[k]["depth"] for k in indices}):
            mine = [k for k in indices if points[k]["depth"] == depth]
            balanced = balanced_factors(m, depth)
            minimizers = [imbalanced_factors(balanced, directions[:depth - 1],
                                             points[k]["imbalance"]) for k in mine]
            for k, per_sample in zip(mine, _descend_depth(first, m, minimizers, c, xp)):
                results[k] = (per_sample, {})
    return results


def _descend_depth(settings, m: np.ndarray, minimizers: list[list[np.ndarray]], c: np.ndarray, xp):
    """Per minimizer set (one per imbalance, each a list of L factors (samples, d, d)), the
    datasets of its samples; the descents of all of them in one batch."""
    count = len(m)
    targets = xp.asarray(np.concatenate([m] * len(minimizers)))
    weights, values, directions = [], [], []
    for factors in minimizers:  # the top eigenpair point by point, as the sharpness study does
        w = [xp.asarray(f) for f in factors]
        weights.append(w)
        values.append(sharpness(w, xp))
        directions.append(top_direction(w, xp))
    stacked = [xp.concatenate(layer) for layer in zip(*weights)]
    top = [xp.concatenate(layer) for layer in zip(*directions)]
    lambda_max = xp.concatenate(values)
    factor = xp.asarray(np.concatenate([c] * len(minimizers)))
    norm = xp.sqrt(sum((w * w).sum(axis=(-2, -1)) for w in stacked))
    deviation = settings["start_distance"] * norm
    starts = [w + deviation[:, None, None] * u for w, u in zip(stacked, top)]
    run = descend(starts, targets, 2 * factor / lambda_max, int(settings["max_steps"]),
                  float(settings["escape_factor"]), float(settings["stay_factor"]), xp)
    growth = (run.end_loss / run.start_loss) ** (1 / (2 * run.steps))
    per_sample = {
        "step_factor": factor,
        "lambda_max": lambda_max,
        "outcome": run.outcome,
        "steps": run.steps,
        "growth_per_step": growth,
        "predicted_growth_per_step": xp.asarray(linear_growth_factor(to_host(factor))),
        "start_loss": run.start_loss,
        "end_loss": run.end_loss,
        "peak_loss": run.peak_loss,
        "start_deviation": deviation,
        "minimizer_loss": loss(stacked, targets, xp),
    }
    return [{key: values[j * count:(j + 1) * count] for key, values in per_sample.items()}
            for j in range(len(minimizers))]
