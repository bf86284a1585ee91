"""A ReLU / leaky-ReLU layer around a random ResNet layer: M = D1 W1 + rho I and the trained
layer's pattern D (section 5.2, Lemma 24, Proposition 25; section 6.2, Theorem 39, Corollary 40).

W1 = K_n / (r sqrt(8 n)) (111); D1 in D(m~, n, eta) (pattern "left"), D in D(m, n, eta) (pattern
"right"), m = m~ = active_count(n, activity) (78). Per sample:

- s1_W = s_1(W1) and tau_low_W = smallest eigenvalue of W1^T + W1 (eta = 0 only, NaN
  otherwise): the exceptional events of
  Theorem 39, E_s1 = {s_1(W1) >= 1} (as stated; the proof's (145)-(146), (150) need s_1(W1) <= 1/r)
  and E_tau(r') = {tau_low(W1) <= -r'/r} (135).
- per rho (axis 1, the sorted skip values), for A = M D: s1, s_star, kappa; Lemma 24 (80):
  `violations_80` counts (i, side) with s_i(MD) or s_i(DM) above s_i(M) beyond 16 n eps s_1(M) over
  every i, `violations_80_first` the same at i = 1 only (the paper's scope for eta != 0), and
  `shrinkage_80` / `shrinkage_80_first` the smallest (s_i(M) - s~_i)/s_1(M) over those checks;
  Proposition 25 for eta = 0 (NaN otherwise): `identity_81_error`, the largest disagreement between
  the four members of (81) relative to ||M||_F^2, for M D and (Proposition 26) D M; for every eta
  the Hoffman-Wielandt/Mirsky form of (82), sum |s_i - s~_i|^2 <= ||M - M D||_F^2 (= the zeroed
  columns' energy for eta = 0): `slack_82` the smallest (bound - sum)/bound of the two sides,
  `violations_82` the sides beyond 16 n eps ||M||_F^2.
- at rho = 1, per theta (axis 1, the sorted theta values): for (128), (129) with r' = 2 and
  Corollary 40 (151): `holds_<eq>` 1 (holds), 0 (fails) or -1 (not applicable: Gaussian weights,
  eta = 0, m < n and the numerical hypotheses 4 < theta <= 2 sqrt(n), r > 2 + 2 nu + theta
  (r > 2 + 2 n + theta for (151)) are needed), and `ratio_<eq>` = kappa / bound (NaN where the
  numerical hypotheses or eta = 0 fail; computed for uniform weights too, outside the theorem).

r' = 2 in (129): the paper calls P[E_tau(r')] negligible for r' >= 2 (remark after Theorem 39,
(135)), and r > r' + r' nu + theta is weakest at the smallest such r'; with r' = 2 it is the
condition r > 2 + 2 nu + theta of (128), so (128) and (129) are tested on the same cells.
Claims 11, 12.
"""

from __future__ import annotations

import numpy as np

from svperturb.linalg.spectra import (
    add_identity,
    condition_number,
    singular_values,
    smallest_nonzero_singular_value,
    symmetric_part_extremes,
)
from svperturb.sampling.ensembles import (
    activation_pattern,
    active_count,
    pattern_ranks,
    unit_variance_matrices,
    weight_std,
)
from svperturb.studies.datasets import (
    COUNT,
    KEPT_SAMPLES_PER_SKIP,
    NO_UNITS,
    PER_SKIP,
    PER_THETA,
    SAMPLE,
    Dataset,
    extremes,
)
from svperturb.theory.bounds import (
    relu_condition_bound_spectral,
    relu_condition_bound_symmetric,
    relu_condition_bound_uniform,
    relu_energy_identity,
    relu_interaction,
    relu_perturbation_bound,
    relu_perturbation_sum,
    relu_uniform_singular_value_bounds,
    rounding_tolerance,
    singular_value_shrinkage,
)

NAME = "relu_layer"
AXES = ("distribution", "width", "weight_scale", "activation_slope", "activity")
INNER = ("skip", "theta")

R_PRIME = 2.0  # r' of Theorem 39 (129); see the module docstring
THEOREM_39 = ("128", "129", "151")

# The stored datasets (studies/datasets.py); finite: a NaN or an infinity marks a numerical fault.
# M = D1 W1 + rho I, A = M D; s~_i: the singular values of M D or D M. Checks beyond rounding.
STATEMENTS_39 = {
    "128": "kappa((D1 W1 + I) D) <= 2 (1 + 1/r) / (1 - (2 + 2 nu + theta) / r)",
    "129": "kappa((D1 W1 + I) D) <= its bound with s_1(W1) and r' = 2",
    "151": "c <= s_* and s_1 <= C, hence kappa((D1 W1 + I) D) <= C / c",
}
EQUATIONS_39 = {"128": "(128), Theorem 39", "129": "(129), (135), Theorem 39",
                "151": "(151), Corollary 40"}
DATASETS = {
    **extremes("A", "A = (D1 W1 + rho I) D", PER_SKIP, rank=False),
    "violations_80": Dataset("pairs (i, side) with s_i(M D) or s_i(D M) above s_i(M) beyond "
                             "rounding, over every i", PER_SKIP, COUNT, "(80), Lemma 24"),
    "violations_80_first": Dataset("sides with s_1(M D) or s_1(D M) above s_1(M) beyond rounding "
                                   "(0, 1 or 2)", PER_SKIP, COUNT, "(80), Lemma 24"),
    "shrinkage_80": Dataset("smallest (s_i(M) - s~_i) / s_1(M) over every i and both sides; "
                            "negative: s~_i above s_i(M)", PER_SKIP, equation="(80), Lemma 24"),
    "shrinkage_80_first": Dataset("smallest (s_1(M) - s~_1) / s_1(M) over both sides", PER_SKIP,
                                  equation="(80), Lemma 24"),
    "identity_81_error": Dataset(
        "eta = 0 only (NaN otherwise): largest disagreement between the four members of the energy "
        "identity, for M D and D M, over ||M||_F^2", PER_SKIP,
        equation="(81), Propositions 25, 26"),
    "slack_82": Dataset(
        "smallest (bound - sum) / bound over both sides of sum_i |s_i(M) - s~_i|^2 <= ||M - M "
        "D||_F^2 (Hoffman-Wielandt / Mirsky form); NaN where the bound is 0", PER_SKIP,
        equation="(82), Proposition 25"),
    "violations_82": Dataset("sides (0, 1 or 2) whose sum exceeds the bound of (82) beyond "
                             "rounding", PER_SKIP, COUNT, "(82), Proposition 25"),
    "s1_W": Dataset("eta = 0 only (NaN otherwise): s_1(W1), W1 = K_n / (r sqrt(8n)) (111); the "
                    "event E_s1 = {s_1(W1) >= 1}", SAMPLE, equation="Theorem 39"),
    "tau_low_W": Dataset("eta = 0 only (NaN otherwise): smallest eigenvalue of W1^T + W1; the "
                         "event E_tau(r') = {tau_low(W1) <= -r'/r}", SAMPLE,
                         equation="(135), Theorem 39"),
    **{f"holds_{key}": Dataset(
        f"at rho = 1: 1 where {statement} holds, 0 where it fails, -1 not applicable (Gaussian "
        "weights, eta = 0, m < n and the numerical hypotheses on theta and r are needed)",
        PER_THETA, NO_UNITS, EQUATIONS_39[key]) for key, statement in STATEMENTS_39.items()},
    **{f"ratio_{key}": Dataset(
        f"at rho = 1: kappa(A) over the bound of {EQUATIONS_39[key].split(',')[0]}; NaN where eta "
        "!= 0, m = n or the numerical hypotheses fail (computed for uniform weights too)",
        PER_THETA, equation=EQUATIONS_39[key]) for key in STATEMENTS_39},
    "spectra/singular_values": Dataset("singular values of A = (D1 W1 + rho I) D, decreasing",
                                       KEPT_SAMPLES_PER_SKIP, finite=True),
}


def theorem39_bounds(point) -> dict[str, np.ndarray]:
    """Per theta (sorted): the bounds (128), (151) on kappa((D1 W1 + I) D) and the factor of (129)
    that multiplies (1 + s_1(W1)); NaN where eta != 0, m = n or the numerical hypotheses fail.
    Plus the Corollary 40 constants c, C and nu (127)."""
    n, r, eta = point["width"], point["weight_scale"], point["activation_slope"]
    m = active_count(n, point["activity"])
    nu = float(relu_interaction(m, m, n))
    theta = np.asarray(sorted(point["theta"]), dtype=float)
    relu = eta == 0 and m < n  # m = n: A = 0 and kappa is undefined
    nan = np.full(theta.shape, np.nan)
    c, upper = relu_uniform_singular_value_bounds(n, r, theta)
    return {
        "nu": nu,
        "128": relu_condition_bound_spectral(n, nu, r, theta) if relu else nan,
        "129_factor": relu_condition_bound_symmetric(n, nu, r, theta, 0.0, R_PRIME) / 2 if relu else nan,
        "151": relu_condition_bound_uniform(n, r, theta) if relu else nan,
        "c": c if relu else nan,
        "C": upper if relu else nan,
    }


def theorem39_judged(point) -> bool:
    """Whether Theorem 39 / Corollary 40 speak about this grid point at all (Gaussian, ReLU)."""
    m = active_count(point["width"], point["activity"])
    return point["distribution"] == "gaussian" and point["activation_slope"] == 0 and m < point["width"]


def _shrinkage(s_m, s_masked, tol, scale):
    """Lemma 24 (80) for one side: (violations over all i, violation at i = 1, smallest relative
    difference over all i, relative difference at i = 1)."""
    diff = singular_value_shrinkage(s_m, s_masked)
    return ((diff < -tol[:, None]).sum(axis=-1), (diff[:, 0] < -tol).astype(np.int16),
            diff.min(axis=-1) / scale, diff[:, 0] / scale)


def simulate(point, start, stop, xp):
    n, r, eta = point["width"], point["weight_scale"], point["activation_slope"]
    rhos = sorted(point["skip"])
    thetas = sorted(point["theta"])
    m = active_count(n, point["activity"])
    seed = point["seed"]
    w = unit_variance_matrices(seed, NAME, n, point["distribution"], start, stop, xp=xp,
                               scale=weight_std(n, r))
    left = xp.asarray(activation_pattern(pattern_ranks(seed, NAME, n, "left", start, stop), m, eta))
    right = xp.asarray(activation_pattern(pattern_ranks(seed, NAME, n, "right", start, stop), m, eta))
    if eta == 0:  # only Theorem 39 (ReLU) needs them; skip two decompositions elsewhere
        s1_w = singular_values(w, xp)[:, 0]
        tau_low_w, _ = symmetric_part_extremes(w, xp)
    else:
        s1_w = tau_low_w = xp.full(len(w), xp.nan)
    mo = left[:, :, None] * w  # D1 W1
    size = len(w)
    shape = (size, len(rhos))
    out = {name: xp.empty(shape) for name in
           ("s1", "s_star", "kappa", "shrinkage_80", "shrinkage_80_first", "identity_81_error", "slack_82")}
    for name in ("violations_80", "violations_80_first", "violations_82"):
        out[name] = xp.zeros(shape, dtype=np.int16)
    spectra = xp.empty((size, len(rhos), n))
    complement = 1 - right  # diagonal of I - D: 1 - eta at the zeroed positions
    a_at_one = None
    for j, rho in enumerate(rhos):
        m_rho = add_identity(mo, rho, xp)
        md = m_rho * right[:, None, :]
        dm = right[:, :, None] * m_rho
        s_m = singular_values(m_rho, xp)
        s_md = singular_values(md, xp)
        s_dm = singular_values(dm, xp)
        spectra[:, j] = s_md
        out["s1"][:, j] = s_md[:, 0]
        out["s_star"][:, j] = smallest_nonzero_singular_value(s_md, xp)
        out["kappa"][:, j] = condition_number(s_md, xp)
        if rho == 1:
            a_at_one = s_md
        scale = s_m[:, 0]
        tol = rounding_tolerance(scale, n)
        frob = (m_rho**2).sum(axis=(-2, -1))
        energy_tol = rounding_tolerance(frob, n)
        worst_all, worst_first = None, None
        identity_error = xp.zeros(size)
        slack_82 = xp.full(size, xp.inf)
        for s_masked, masked, removed in (
            (s_md, md, ((m_rho * complement[:, None, :]) ** 2).sum(axis=(-2, -1))),  # M (I - D)
            (s_dm, dm, ((complement[:, :, None] * m_rho) ** 2).sum(axis=(-2, -1))),  # (I - D) M
        ):
            count, first, smallest, at_first = _shrinkage(s_m, s_masked, tol, scale)
            out["violations_80"][:, j] += count.astype(np.int16)
            out["violations_80_first"][:, j] += first
            worst_all = smallest if worst_all is None else xp.minimum(worst_all, smallest)
            worst_first = at_first if worst_first is None else xp.minimum(worst_first, at_first)
            if eta == 0:
                members = relu_energy_identity(s_m, s_masked, frob, (masked**2).sum(axis=(-2, -1)), removed)
                spread = xp.max(xp.stack(members), axis=0) - xp.min(xp.stack(members), axis=0)
                identity_error = xp.maximum(identity_error, spread / frob)
            bound = relu_perturbation_bound(removed)
            lhs = relu_perturbation_sum(s_m, s_masked)
            out["violations_82"][:, j] += (lhs > bound + energy_tol).astype(np.int16)
            with np.errstate(invalid="ignore", divide="ignore"):
                slack_82 = xp.minimum(slack_82, xp.where(bound > 0, (bound - lhs) / bound, xp.nan))
        out["shrinkage_80"][:, j] = worst_all
        out["shrinkage_80_first"][:, j] = worst_first
        out["identity_81_error"][:, j] = identity_error if eta == 0 else xp.nan
        out["slack_82"][:, j] = slack_82
    if a_at_one is None:
        raise ValueError(f"{NAME}: the skip values {rhos} must include 1 (Theorem 39 is about rho = 1)")
    out["s1_W"] = s1_w
    out["tau_low_W"] = tau_low_w
    out.update(_theorem39(point, a_at_one, s1_w, thetas, xp))
    return out, {"singular_values": spectra}


def _theorem39(point, s, s1_w, thetas, xp):
    """holds_/ratio_ arrays (samples, len(theta)) for (128), (129), (151) at rho = 1."""
    n = point["width"]
    size = len(s1_w)
    bounds = theorem39_bounds(point)
    judged = theorem39_judged(point)
    s1, s_star = s[:, 0], smallest_nonzero_singular_value(s, xp)
    kappa = s1 / s_star
    kappa_tol = rounding_tolerance(kappa * (1 + kappa), n)
    s_tol = rounding_tolerance(s1, n)
    out = {}
    for key in THEOREM_39:
        out[f"holds_{key}"] = xp.full((size, len(thetas)), -1, dtype=np.int8)
        out[f"ratio_{key}"] = xp.full((size, len(thetas)), xp.nan)
    reference = {"128": bounds["128"], "129": bounds["129_factor"], "151": bounds["151"]}
    for t in range(len(thetas)):
        values = {
            "128": xp.full(size, bounds["128"][t]),
            "129": 2 * (1 + s1_w) * bounds["129_factor"][t],
            "151": xp.full(size, bounds["151"][t]),
        }
        for key, bound in values.items():
            if not np.isfinite(reference[key][t]):
                continue
            out[f"ratio_{key}"][:, t] = kappa / bound
            if not judged:
                continue
            ok = kappa <= bound + kappa_tol
            if key == "151":  # c <= s_* and s_1 <= C as well
                ok &= (s_star >= bounds["c"][t] - s_tol) & (s1 <= bounds["C"][t] + s_tol)
            out[f"holds_{key}"][:, t] = ok.astype(np.int8)
    return out
