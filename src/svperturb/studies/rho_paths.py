"""Singular-value paths rho -> s_i(Mo + rho I), rho in [0, 1] (Figure 2(b), claim 15).

Mo is n x n with iid entries of standard deviation SIGMA = 0.3, the constant of Figure 2(b) ("the
entries of the 15 x 15 matrix Mo are drawn from a zero-mean Gaussian distribution with sigma =
0.3"). It is deliberately not the grid's weight_scale r (sigma_n = 1/(r sqrt(8n)) (111)): the
figure fixes sigma, and at n = 15 sigma = 0.3 corresponds to r = 1/(0.3 sqrt(120)) ~ 0.30 < 1.
The skip axis should be a fine equally spaced grid (config `skip_points`, e.g. 201 points).

Per sample (first axis) the paths are summarised by:
- n_extrema[i]: interior local extrema of s_i along the grid (sign changes of the differences,
  differences within rounding counted as flat); n_isolated_extrema[i]: those at which s_i stays
  away from zero and from its neighbours s_{i-1}, s_{i+1} by more than max(SEPARATION s_1(rho), 2h)
  (h the largest grid step) -- extrema "without coinciding with others" (Figure 2's caption);
  two_extrema / two_isolated_extrema: some s_i has >= 2 of them;
- zeros_of_s_min: real eigenvalues of Mo in [-1, 0], i.e. the rho in [0, 1] where Mo + rho I is
  singular, where s_n(rho) = 0 has a V-shaped kink (exact count, from the eigenvalues);
  kinks_on_grid: interior local minima of s_n within one grid step of zero (the same kinks as
  seen on the grid; they agree with zeros_of_s_min unless two zeros share a grid step or one
  sits within a step of 0 or 1). Kinks elsewhere need two singular values to cross, which a
  generic Mo never does (the family M(rho)^T M(rho) is real symmetric: crossings have
  codimension 2); min_gap, min_gap_rho, min_gap_index measure how close the paths come to one:
  min over rho and i of (s_i - s_{i+1}) / s_1(rho), where, and which i (1-based);
- s1_nondecreasing, s1_argmin_rho: whether s_1 increases along the whole path, and where it is
  smallest; s1_slope_drop: the largest decrease of the slope of s_1 between consecutive grid
  intervals. s_1 is a norm of an affine family, hence convex in rho: the drop must be <= 0 up to
  rounding (a check of the computation); nonconvex_count: singular values whose slope drops
  somewhere beyond rounding.
Spectra: the full paths, shape (samples, len(skip), n).

The study runs on the CPU (NumPy/LAPACK) whatever the backend: its matrices are small (batched
15 x 15 SVDs run at ~60k matrices/s on one core) and the path statistics need host arrays.
"""

from __future__ import annotations

import numpy as np

from svperturb.linalg.spectra import add_identity, singular_values
from svperturb.sampling.ensembles import unit_variance_matrices
from svperturb.studies.datasets import COUNT, KEPT_SAMPLES_PER_SKIP, NO_UNITS, SAMPLE, Dataset
from svperturb.theory.bounds import rounding_tolerance

NAME = "rho_paths"
AXES = ("distribution", "width")
INNER = ("skip",)

SIGMA = 0.3  # Figure 2(b): entries of Mo have standard deviation 0.3 (a constant, not r)
SEPARATION = 0.01  # an extremum is isolated if s_i keeps this fraction of s_1 away from 0 and neighbours

# The stored datasets (studies/datasets.py); finite: a NaN or an infinity marks a numerical fault.
# Paths: s_i(Mo + rho I) over the skip grid, Mo with iid entries of standard deviation SIGMA.
FIGURE = "Figure 2(b)"
DATASETS = {
    "n_extrema": Dataset("interior local extrema of the path of s_i (flat steps within rounding "
                         "carry the previous direction)", ("sample", "index"), COUNT, FIGURE),
    "n_isolated_extrema": Dataset("extrema of s_i at which s_i stays more than max(0.01 s_1, 2 h) "
                                  "away from 0, s_(i-1) and s_(i+1) (h: the largest grid step)",
                                  ("sample", "index"), COUNT, FIGURE),
    "max_extrema": Dataset("max_i n_extrema", SAMPLE, COUNT, FIGURE),
    "two_extrema": Dataset("1 where some s_i has at least 2 extrema", SAMPLE, NO_UNITS, FIGURE),
    "two_isolated_extrema": Dataset("1 where some s_i has at least 2 isolated extrema", SAMPLE,
                                    NO_UNITS, FIGURE),
    "zeros_of_s_min": Dataset("rho in the skip range where Mo + rho I is singular (real "
                              "eigenvalues of Mo in [-rho_max, -rho_min]): V-shaped kinks of s_n", SAMPLE,
                              COUNT, FIGURE),
    "kinks_on_grid": Dataset("interior local minima of s_n within one grid step of zero", SAMPLE,
                             COUNT, FIGURE),
    "min_gap": Dataset("min over rho and i of (s_i - s_(i+1)) / s_1(rho)", SAMPLE,
                       equation=FIGURE),
    "min_gap_rho": Dataset("the rho of min_gap", SAMPLE, equation=FIGURE),
    "min_gap_index": Dataset("the i (from 1) of min_gap", SAMPLE, NO_UNITS, FIGURE),
    "s1_nondecreasing": Dataset("1 where s_1 does not decrease along the path beyond rounding",
                                SAMPLE, NO_UNITS, FIGURE),
    "s1_argmin_rho": Dataset("the rho where s_1 is smallest", SAMPLE, equation=FIGURE),
    "s1_slope_drop": Dataset("largest decrease of the slope of s_1 between consecutive grid "
                             "intervals; <= 0 up to rounding (s_1 is convex in rho)", SAMPLE,
                             equation=FIGURE),
    "nonconvex_count": Dataset("singular values whose slope drops somewhere beyond rounding",
                               SAMPLE, COUNT, FIGURE),
    "s1_Mo": Dataset("s_1(Mo), Mo with iid entries of standard deviation 0.3", SAMPLE,
                     finite=True),
    "spectra/singular_values": Dataset("the paths: singular values of Mo + rho I, decreasing",
                                       KEPT_SAMPLES_PER_SKIP, equation=FIGURE, finite=True),
}


def bytes_per_sample(point) -> int:
    """The stack Mo + rho I for every rho, its LAPACK copy and workspace: ~4 (R, n, n) arrays."""
    n, r = point["width"], len(point["skip"])
    return 4 * r * n * n * 8 + 64 * r * n


def path_differences(paths: np.ndarray, tol: np.ndarray) -> np.ndarray:
    """Signs of the steps s[k+1] - s[k] along axis -2 of paths (..., R, n); steps within `tol`
    (broadcast against (..., 1, n) or (..., 1, 1)) are flat (0) and take the sign of the last
    non-flat step before them, so that a flat stretch never counts as an extremum."""
    steps = np.diff(paths, axis=-2)
    sign = np.where(np.abs(steps) <= tol, 0, np.sign(steps)).astype(np.int8)
    positions = np.arange(sign.shape[-2]).reshape(-1, 1)
    last = np.where(sign != 0, positions, -1)
    last = np.maximum.accumulate(last, axis=-2)
    filled = np.take_along_axis(sign, np.maximum(last, 0), axis=-2)
    return np.where(last >= 0, filled, 0)


def interior_extrema(paths: np.ndarray, tol) -> tuple[np.ndarray, np.ndarray]:
    """Masks (..., R, n) of interior local maxima and minima of each path along axis -2.

    Grid point k (0 < k < R-1) is an extremum where the sign of the step before it and the step
    from it differ (flat steps within `tol` carry the previous sign).
    """
    sign = path_differences(paths, tol)
    before, after = sign[..., :-1, :], sign[..., 1:, :]
    pad = np.zeros_like(paths[..., :1, :], dtype=bool)
    maxima = (before > 0) & (after < 0)
    minima = (before < 0) & (after > 0)
    return (np.concatenate([pad, maxima, pad], axis=-2),
            np.concatenate([pad, minima, pad], axis=-2))


def isolated(paths: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """Mask (..., R, n): s_i above `threshold` (..., R, 1) and more than it away from s_{i-1}, s_{i+1}."""
    far = paths > threshold
    gaps = -np.diff(paths, axis=-1)  # s_i - s_{i+1} >= 0
    wide = gaps > threshold
    far[..., :-1] &= wide
    far[..., 1:] &= wide
    return far


def slope_drops(paths: np.ndarray, rhos: np.ndarray) -> np.ndarray:
    """Largest decrease of the slope between consecutive grid intervals, per path: (..., n).
    <= 0 (up to rounding) for a convex path."""
    slopes = np.diff(paths, axis=-2) / np.diff(rhos)[:, None]
    return (slopes[..., :-1, :] - slopes[..., 1:, :]).max(axis=-2)


def summarise_paths(paths: np.ndarray, rhos, zeros_of_s_min: np.ndarray | None = None) -> dict:
    """Per-path statistics (see the module docstring) of singular-value paths (S, R, n)."""
    rhos = np.asarray(rhos, dtype=float)
    size, _, n = paths.shape
    h = float(np.max(np.diff(rhos)))
    scale = paths[:, :, 0].max(axis=1)  # s_1 along the path bounds every step's rounding
    tol = rounding_tolerance(scale, n)[:, None, None]
    maxima, minima = interior_extrema(paths, tol)
    extrema = maxima | minima
    threshold = np.maximum(SEPARATION * paths[:, :, :1], 2 * h)
    isolated_extrema = extrema & isolated(paths, threshold)
    steps = np.abs(np.diff(paths[:, :, -1], axis=1))
    step_near = np.maximum(steps[:, :-1], steps[:, 1:])  # largest adjacent step at interior points
    kinks = minima[:, 1:-1, -1] & (paths[:, 1:-1, -1] <= step_near)
    s1 = paths[:, :, 0]
    relative_gaps = -np.diff(paths, axis=-1) / paths[:, :, :1]
    flat_gap = relative_gaps.reshape(size, -1)
    where = flat_gap.argmin(axis=1)
    drops = slope_drops(paths, rhos)
    drop_tol = 4 * tol[:, 0, :] / float(np.min(np.diff(rhos)))
    n_extrema = extrema.sum(axis=1).astype(np.int16)
    n_isolated = isolated_extrema.sum(axis=1).astype(np.int16)
    out = {
        "n_extrema": n_extrema,
        "n_isolated_extrema": n_isolated,
        "max_extrema": n_extrema.max(axis=1),
        "two_extrema": (n_extrema >= 2).any(axis=1).astype(np.int8),
        "two_isolated_extrema": (n_isolated >= 2).any(axis=1).astype(np.int8),
        "kinks_on_grid": kinks.sum(axis=1).astype(np.int16),
        "s1_nondecreasing": (np.diff(s1, axis=1) >= -tol[:, :, 0]).all(axis=1).astype(np.int8),
        "s1_argmin_rho": rhos[s1.argmin(axis=1)],
        "s1_slope_drop": drops[:, 0],
        "nonconvex_count": (drops > drop_tol).sum(axis=1).astype(np.int16),
        "min_gap": flat_gap[np.arange(size), where],
        "min_gap_rho": rhos[where // (n - 1)],
        "min_gap_index": (where % (n - 1) + 1).astype(np.int16),
    }
    if zeros_of_s_min is not None:
        out["zeros_of_s_min"] = zeros_of_s_min.astype(np.int16)
    return out


def singular_zeros(mo: np.ndarray, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """How many rho in [lo, hi] make Mo + rho I singular: the real eigenvalues of Mo in [-hi, -lo].

    LAPACK's dgeev returns real eigenvalues of a real matrix with imaginary part exactly 0.
    """
    eig = np.linalg.eigvals(mo)
    real = eig.imag == 0
    return (real & (eig.real >= -hi) & (eig.real <= -lo)).sum(axis=-1)


def simulate(point, start, stop, xp):
    n = point["width"]
    rhos = np.array(sorted(point["skip"]), dtype=float)
    mo = SIGMA * unit_variance_matrices(point["seed"], NAME, n, point["distribution"], start, stop)
    stack = add_identity(mo[:, None], rhos[:, None, None], np)  # (S, R, n, n)
    paths = singular_values(stack)  # NumPy whatever the backend: see the module docstring
    per_sample = summarise_paths(paths, rhos, singular_zeros(mo, rhos[0], rhos[-1]))
    per_sample["s1_Mo"] = paths[:, 0, 0] if rhos[0] == 0 else singular_values(mo)[:, 0]
    return per_sample, {"singular_values": paths}
