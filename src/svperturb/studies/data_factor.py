"""The data factor: Lemma 8, Corollary 9, Lemma 10, Corollary 11 on explicit matrices (claim 14).

Per sample: W1 = K_n / (r sqrt(8n)) (111) and, for each datum g = 1..G of the mini-batch, an input
z^(g) (iid N(0, 1), stream "input/datum=g") and patterns D1^(g), D^(g) in D(m, n, eta) (streams
"left/datum=g", "right/datum=g": the patterns depend on the datum); M^(g) = D1^(g) W1 + rho I.
Per-datum streams keep batches nested: the first G' data of a batch of G > G' are those of G'.
A probe W with iid N(0, 1) entries (stream "probe") tests the quadratic-form identity (50).

Checked at each rho, on dense matrices and LAPACK (n <= ~10: Q is n^2 x n^2):
- (51): the singular values of Q^(g) = diag(z^(g)) (x) (M^(g) D^(g)) (49), every datum, against
  s_i(MD) |z[j]|: err_51 (largest absolute discrepancy / s_1(Q)), violations_51 beyond rounding.
- (54): kappa(Q^(g)) against kappa(MD) kappa(diag z): err_54 (largest relative discrepancy over g),
  violations_54.
- (59): the eigenvalues of the dense A = (1/G) sum_g Q^(g)T Q^(g) against those of the blocks A_j
  (59): err_59 (/ lambda_max), violations_59.
- (57), (58): every lambda_i(A_j) = s_{i,j}^2(Q_batch) against the bounds: violations_57/58,
  ratio_57 = max_ij lambda_i(A_j) / bound57_j (<= 1), ratio_58 = min_ij lambda_i(A_j) / bound58_j
  (>= 1; over the j whose bound58_j is above rounding, NaN where none is, e.g. ReLU patterns).
- (63): kappa(Q_batch) (the singular values of Q_batch are sqrt(lambda(A)), taken from the SVD of
  the stacked [Q^(1); ...; Q^(G)] / sqrt(G)) against bound_63 (NaN where c = 0: not applicable),
  violations_63.
- (50): for datum 1, loss_true = ||M D W z||^2 and loss_paper = w^T Q^T Q w with w = W flattened
  row by row (the paper's convention); err_50 = |difference| / max of the two; violations_50
  beyond rounding. (56): the batch versions, loss_batch_true = (1/G) sum_g ||M^(g) D^(g) W z^(g)||^2
  and loss_batch_paper = w^T A w; err_56, violations_56.
- The true quadratic form. MDWz = T w with T = (M D) (x) z^T (n x n^2, row-major w), so
  ||MDWz||^2 = w^T (MD^T MD (x) z z^T) w: rank n, non-zero singular values ||z||_2 s_i(MD).
  err_true_form: |w^T T^T T w - loss_true| / loss_true (checks T); err_true_spectrum: singular
  values of T (LAPACK) against ||z|| s_i(MD) (/ s_1(T)); kappa_true = kappa(T) (= kappa(MD));
  for the batch, the stacked T_batch = [T^(1); ...; T^(G)] / sqrt(G) with T_batch^T T_batch =
  (1/G) sum_g (M^(g)D^(g))^T (M^(g)D^(g)) (x) z^(g) z^(g)T: rank_true_batch, kappa_true_batch.
Also per sample and rho: kappa_MD, kappa_diag_z, kappa_Q (datum 1), kappa_Q_batch, C, c.
Spectra (datum 1): singular values of Q (LAPACK) and predicted, of T, eigenvalues of A (dense)
and of its blocks.
"""

from __future__ import annotations

import numpy as np

from svperturb.linalg.spectra import condition_number, numerical_rank, singular_values
from svperturb.sampling.ensembles import (
    activation_pattern,
    active_count,
    pattern_ranks,
    sample_draws,
    unit_variance_matrices,
    weight_std,
)
from svperturb.studies.datasets import COUNT, KEPT_SAMPLES_PER_SKIP, PER_SKIP, Dataset
from svperturb.theory.bounds import (
    batch_condition_bound,
    batch_singular_value_lower_bound,
    batch_singular_value_upper_bound,
    rounding_tolerance,
)

NAME = "data_factor"
AXES = ("distribution", "width", "weight_scale", "activation_slope", "activity", "batch_size")
INNER = ("skip",)
# The stored datasets (studies/datasets.py); finite: a NaN or an infinity marks a numerical fault.
# Datum g = 1..G of the mini-batch: M^(g) = D1^(g) W1 + rho I, Q^(g) = diag(z^(g)) (x) (M^(g)
# D^(g)) (49); "datum 1": of the first datum alone. Checks beyond rounding.
Q_KEPT_SAMPLES = ("spectrum_sample", "skip", "index_ij")


def _check(tag: str, equation: str, error: str, violations: str) -> dict[str, Dataset]:
    """err_<tag>: the `error` in `equation`; violations_<tag>: what exceeds rounding."""
    return {f"err_{tag}": Dataset(error, PER_SKIP, equation=equation),
            f"violations_{tag}": Dataset(f"{violations} beyond rounding", PER_SKIP, COUNT,
                                         equation)}


DATASETS = {
    **_check("51", "(51), Lemma 8", "largest |s_{i,j}(Q) - s_i(M D) |z[j]|| over (i, j), over "
             "s_1(Q); largest over the data", "data whose discrepancy in (51) is"),
    **_check("54", "(54), Corollary 9", "largest relative discrepancy |kappa(Q) - kappa(M D) "
             "kappa(diag z)| / (kappa(M D) kappa(diag z)) over the data",
             "data whose discrepancy in (54) is"),
    **_check("59", "(59), Lemma 10", "largest discrepancy between the eigenvalues of the dense A = "
             "(1/G) sum_g Q^(g)T Q^(g) and those of its blocks A_j, over lambda_max(A)",
             "1 where the discrepancy in (59) is"),
    **_check("50", "(50), Lemma 8", "|loss_true - loss_paper| / max(loss_true, loss_paper)",
             "1 where |loss_true - loss_paper| is"),
    **_check("56", "(56), Lemma 10", "|loss_batch_true - loss_batch_paper| / max of the two",
             "1 where |loss_batch_true - loss_batch_paper| is"),
    "kappa_MD": Dataset("kappa(M D), datum 1", PER_SKIP, equation="(54)"),
    "kappa_diag_z": Dataset("kappa(diag z) = max_j |z[j]| / min_j |z[j]|, datum 1", PER_SKIP,
                            equation="(54)"),
    "kappa_Q": Dataset("kappa(Q) from its singular values (LAPACK), datum 1", PER_SKIP,
                       equation="(54)"),
    "violations_57": Dataset("eigenvalues lambda_i(A_j) = s_{i,j}^2(Q_batch) above the upper bound "
                             "(1/G) sum_g z^(g)[j]^2 s_1^2(M^(g) D^(g)) beyond rounding", PER_SKIP,
                             COUNT, "(57), Lemma 10"),
    "ratio_57": Dataset("max over (i, j) of lambda_i(A_j) over the upper bound of (57) (<= 1)",
                        PER_SKIP, equation="(57), Lemma 10"),
    "violations_58": Dataset("eigenvalues lambda_i(A_j) below the lower bound (1/G) sum_g "
                             "z^(g)[j]^2 s_n^2(M^(g) D^(g)) beyond rounding", PER_SKIP, COUNT,
                             "(58), Lemma 10"),
    "ratio_58": Dataset("min over (i, j) of lambda_i(A_j) over the lower bound of (58) (>= 1), "
                        "over the j whose bound is above rounding; NaN where none is (ReLU "
                        "patterns)",
                        PER_SKIP, equation="(58), Lemma 10"),
    "kappa_Q_batch": Dataset("kappa(Q_batch), from the SVD of [Q^(1); ...; Q^(G)] / sqrt(G), whose "
                             "Gram matrix is A", PER_SKIP, equation="(63), Corollary 11"),
    "bound_63": Dataset("(C / c) max_j zbar[j] / min*_j zbar[j], zbar the root mean square of "
                        "z^(g) over the batch; NaN where c is within rounding of 0 (not "
                        "applicable)",
                        PER_SKIP, equation="(63), Corollary 11"),
    "violations_63": Dataset("1 where kappa(Q_batch) exceeds bound_63 beyond rounding", PER_SKIP,
                             COUNT, "(63), Corollary 11"),
    "C": Dataset("C = max_g s_1(M^(g) D^(g))", PER_SKIP, equation="(62)"),
    "c": Dataset("c = min_g s_n(M^(g) D^(g))", PER_SKIP, equation="(62)"),
    "loss_true": Dataset("||M D W z||^2 for the probe W (iid N(0, 1)), datum 1", PER_SKIP,
                         equation="(47)"),
    "loss_paper": Dataset("w^T Q^T Q w, w = W flattened row by row, datum 1", PER_SKIP,
                          equation="(50), Lemma 8"),
    "loss_batch_true": Dataset("(1/G) sum_g ||M^(g) D^(g) W z^(g)||^2", PER_SKIP, equation="(56)"),
    "loss_batch_paper": Dataset("(1/G) sum_g w^T Q^(g)T Q^(g) w = w^T A w", PER_SKIP,
                                equation="(56), Lemma 10"),
    "err_true_form": Dataset("|w^T T^T T w - loss_true| / loss_true, T = (M D) (x) z^T (so that "
                             "M D W z = T w), datum 1", PER_SKIP, equation="(47)"),
    "err_true_spectrum": Dataset("largest |s_i(T) - ||z|| s_i(M D)| over ||z|| s_1(M D), datum 1",
                                 PER_SKIP, equation="(47)"),
    "kappa_true": Dataset("kappa(T) (= kappa(M D)), datum 1", PER_SKIP, equation="(47)"),
    "kappa_true_batch": Dataset("kappa(T_batch), T_batch = [T^(1); ...; T^(G)] / sqrt(G)",
                                PER_SKIP, equation="(47)"),
    "rank_true_batch": Dataset("numerical rank of T_batch", PER_SKIP, COUNT, "(47)"),
    "spectra/singular_values_Q": Dataset("singular values of Q (LAPACK), decreasing, datum 1",
                                         Q_KEPT_SAMPLES, equation="(49)", finite=True),
    "spectra/predicted_Q": Dataset("s_i(M D) |z[j]| over (i, j), decreasing, datum 1", Q_KEPT_SAMPLES,
                                   equation="(51), Lemma 8"),
    "spectra/eigenvalues_A": Dataset("eigenvalues of the dense A = (1/G) sum_g Q^(g)T Q^(g), "
                                     "increasing", Q_KEPT_SAMPLES, equation="(59), Lemma 10"),
    "spectra/eigenvalues_blocks": Dataset("eigenvalues of the blocks A_j, all j together, "
                                          "increasing", Q_KEPT_SAMPLES, equation="(59), Lemma 10"),
    "spectra/singular_values_T": Dataset("singular values of T = (M D) (x) z^T (LAPACK), "
                                         "decreasing, datum 1", KEPT_SAMPLES_PER_SKIP,
                                         equation="(47)", finite=True),
}


def bytes_per_sample(point) -> int:
    """Per rho (freed between rho values): G dense n^2 x n^2 matrices Q, their SVD copies and the
    stacked copy, A, the stacked true form (G n x n^2) and G sets of n x n matrices."""
    n, g = point["width"], point["batch_size"]
    return 8 * (n**4 * (4 * g + 6) + 4 * g * n**3 + 16 * g * n * n) + 8 * len(point["skip"]) * 8 * n**2


def data_factor_matrix(z, md):
    """Q = diag(z) (x) (M D) (49), dense: (..., n_z) and (..., n, n) -> (..., n_z n, n_z n); block
    j of its diagonal is z[j] M D, acting on the j-th row of W in the row-by-row flattening w."""
    n_z, n = z.shape[-1], md.shape[-1]
    eye = np.eye(n_z)
    blocks = np.einsum("...j,jk,...ab->...jakb", z, eye, md)
    return blocks.reshape(*blocks.shape[:-4], n_z * n, n_z * n)


def loss_form_matrix(z, md):
    """T = (M D) (x) z^T, dense (..., n, n n_z): M D W z = T w for w = W flattened row by row, so
    ||M D W z||^2 = w^T T^T T w is the quadratic term (47) of the loss."""
    t = md[..., :, :, None] * z[..., None, None, :]
    return t.reshape(*t.shape[:-3], md.shape[-2], md.shape[-1] * z.shape[-1])


def predicted_singular_values(s_md, z):
    """(51): s_{i,j}(Q) = s_i(MD) |z[j]|, all n n_z of them, decreasing."""
    products = (s_md[..., :, None] * np.abs(z)[..., None, :]).reshape(*s_md.shape[:-1], -1)
    return -np.sort(-products, axis=-1)


def _draws(point, start, stop):
    n, g_count = point["width"], point["batch_size"]
    seed = point["seed"]
    m = active_count(n, point["activity"])
    eta = point["activation_slope"]
    z = np.stack([sample_draws(seed, NAME, n, f"input/datum={g}", start, stop,
                               lambda gen, size: gen.standard_normal((size, n)))
                  for g in range(g_count)], axis=1)
    left = np.stack([activation_pattern(pattern_ranks(seed, NAME, n, f"left/datum={g}", start, stop), m, eta)
                     for g in range(g_count)], axis=1)
    right = np.stack([activation_pattern(pattern_ranks(seed, NAME, n, f"right/datum={g}", start, stop), m, eta)
                      for g in range(g_count)], axis=1)
    probe = sample_draws(seed, NAME, n, "probe", start, stop,
                         lambda gen, size: gen.standard_normal((size, n, n)))
    return z, left, right, probe


def simulate(point, start, stop, xp):
    # Host arrays: the matrices are tiny and the dense Kronecker products are built with NumPy.
    n, g_count = point["width"], point["batch_size"]
    rhos = sorted(point["skip"])
    w1 = unit_variance_matrices(point["seed"], NAME, n, point["distribution"], start, stop) \
        * weight_std(n, point["weight_scale"])
    z, left, right, probe = _draws(point, start, stop)
    w_flat = probe.reshape(len(w1), n * n)  # row by row, as in Lemma 8
    size, count = len(w1), len(rhos)
    floats = ("err_51", "err_54", "err_59", "ratio_57", "ratio_58", "err_50", "err_56",
              "loss_true", "loss_paper", "loss_batch_true", "loss_batch_paper", "err_true_form",
              "err_true_spectrum", "kappa_true", "kappa_true_batch", "kappa_MD", "kappa_diag_z",
              "kappa_Q", "kappa_Q_batch", "bound_63", "C", "c")
    ints = ("violations_51", "violations_54", "violations_59", "violations_57", "violations_58",
            "violations_63", "violations_50", "violations_56", "rank_true_batch")
    out = {name: np.full((size, count), np.nan) for name in floats}
    out.update({name: np.zeros((size, count), dtype=np.int16) for name in ints})
    big = n * n
    spectra = {name: np.empty((size, count, big)) for name in
               ("singular_values_Q", "predicted_Q", "eigenvalues_A", "eigenvalues_blocks")}
    spectra["singular_values_T"] = np.empty((size, count, n))
    for k, rho in enumerate(rhos):
        m = left[..., :, None] * w1[:, None] + rho * np.eye(n)  # M^(g) = D1^(g) W1 + rho I
        md = m * right[..., None, :]  # (size, G, n, n): columns scaled by D^(g)
        s_md = singular_values(md)
        s1, sn = s_md[..., 0], s_md[..., -1]

        # Lemma 8 (51) and Corollary 9 (54), every datum
        q = data_factor_matrix(z, md)  # (size, G, n^2, n^2)
        s_q = singular_values(q)
        pred = predicted_singular_values(s_md, z)
        scale_q = pred[..., 0]
        tol_51 = rounding_tolerance(scale_q, big) + rounding_tolerance(scale_q, n)
        gap = np.abs(s_q - pred).max(axis=-1)
        out["err_51"][:, k] = (gap / scale_q).max(axis=-1)
        out["violations_51"][:, k] = (gap > tol_51).sum(axis=-1)
        kappa_q = condition_number(s_q)
        kappa_md = condition_number(s_md)
        abs_z = np.abs(z)
        kappa_z = abs_z.max(axis=-1) / np.where(abs_z > 0, abs_z, np.inf).min(axis=-1)
        kappa_pred = kappa_md * kappa_z
        rel_54 = np.abs(kappa_q - kappa_pred) / kappa_pred
        tol_54 = (tol_51 / scale_q) * (1 + kappa_pred)  # relative: s_1 and s_* each off by tol_51
        out["err_54"][:, k] = rel_54.max(axis=-1)
        out["violations_54"][:, k] = (rel_54 > tol_54).sum(axis=-1)
        out["kappa_MD"][:, k], out["kappa_diag_z"][:, k] = kappa_md[:, 0], kappa_z[:, 0]
        out["kappa_Q"][:, k] = kappa_q[:, 0]

        # Lemma 10: A dense, its blocks A_j (59), the bounds (57), (58); Corollary 11 (63)
        stacked = q.reshape(size, g_count * big, big)  # [Q^(1); ...; Q^(G)]
        # A = (1/G) sum_g Q^(g)T Q^(g) = stacked^T stacked / G: one BLAS product per sample
        # (einsum's loop over g took 23 times as long at n = 10, G = 64)
        a = np.swapaxes(stacked, -1, -2) @ stacked / g_count
        eig_a = np.linalg.eigvalsh(a)  # increasing
        gram = np.einsum("sgia,sgib->sgab", md, md)
        blocks = np.einsum("sgj,sgab->sjab", z**2, gram) / g_count  # A_j, (size, n, n, n)
        eig_blocks = np.linalg.eigvalsh(blocks)  # (size, j, i), increasing in i
        lam_max = eig_a[:, -1]
        tol_59 = 2 * rounding_tolerance(lam_max, big)
        err_59 = np.abs(np.sort(eig_blocks.reshape(size, -1), axis=-1) - eig_a).max(axis=-1)
        out["err_59"][:, k] = err_59 / lam_max
        out["violations_59"][:, k] = err_59 > tol_59
        upper = batch_singular_value_upper_bound(z, s1)  # (size, n)
        lower = batch_singular_value_lower_bound(z, sn)
        tol_bounds = (rounding_tolerance(upper, n) * 2)[..., None]
        out["violations_57"][:, k] = (eig_blocks > upper[..., None] + tol_bounds).sum(axis=(-2, -1))
        out["violations_58"][:, k] = (eig_blocks < lower[..., None] - tol_bounds).sum(axis=(-2, -1))
        out["ratio_57"][:, k] = (eig_blocks / upper[..., None]).max(axis=(-2, -1))
        positive = (lower > rounding_tolerance(upper, n))[..., None]  # (58) is 0 for ReLU patterns
        with np.errstate(divide="ignore", invalid="ignore"):
            below = np.where(positive, eig_blocks / lower[..., None], np.inf).min(axis=(-2, -1))
        out["ratio_58"][:, k] = np.where(np.isfinite(below), below, np.nan)
        # s_{i,j}(Q_batch) = sqrt(lambda(A)): from the SVD of [Q^(1); ...; Q^(G)] / sqrt(G), whose
        # Gram matrix is A, so that small ones keep their relative accuracy (eigvalsh of A would not)
        s_batch = singular_values(stacked / np.sqrt(g_count))
        kappa_batch = condition_number(s_batch)
        bound = batch_condition_bound(z, s1, sn)
        upper_c, lower_c = s1.max(axis=-1), sn.min(axis=-1)
        out["C"][:, k], out["c"][:, k] = upper_c, lower_c
        with np.errstate(invalid="ignore", divide="ignore"):
            tol_63 = (bound * rounding_tolerance(1 + upper_c / lower_c, n)
                      + kappa_batch * 2 * rounding_tolerance(kappa_batch, g_count * big))
            out["violations_63"][:, k] = np.isfinite(bound) & (kappa_batch > bound + tol_63)
        out["kappa_Q_batch"][:, k], out["bound_63"][:, k] = kappa_batch, bound

        # (50) and (56): is Q the matrix of the loss's quadratic form?
        mdw = md @ probe[:, None]  # (size, G, n, n): M^(g) D^(g) W
        outputs = np.einsum("sgab,sgb->sga", mdw, z)  # M D W z per datum
        loss_each = (outputs**2).sum(axis=-1)
        qw = np.einsum("sgij,sj->sgi", q, w_flat)
        paper_each = (qw**2).sum(axis=-1)
        z_norm2 = (z**2).sum(axis=-1)
        w_norm2 = (w_flat**2).sum(axis=-1)
        scale_50 = s1**2 * w_norm2[:, None] * np.maximum(z_norm2, (abs_z.max(axis=-1)) ** 2)
        tol_50 = rounding_tolerance(scale_50, big)
        for tag, true, paper, tol in (("50", loss_each[:, 0], paper_each[:, 0], tol_50[:, 0]),
                                      ("56", loss_each.mean(axis=1), paper_each.mean(axis=1),
                                       tol_50.mean(axis=1))):
            diff = np.abs(true - paper)
            out[f"err_{tag}"][:, k] = diff / np.maximum(np.maximum(true, paper), np.finfo(float).tiny)
            out[f"violations_{tag}"][:, k] = diff > tol
        out["loss_true"][:, k], out["loss_paper"][:, k] = loss_each[:, 0], paper_each[:, 0]
        out["loss_batch_true"][:, k] = loss_each.mean(axis=1)
        out["loss_batch_paper"][:, k] = paper_each.mean(axis=1)

        # The true quadratic form: T = (M D) (x) z^T, rank n, singular values ||z|| s_i(MD)
        t = loss_form_matrix(z, md)  # (size, G, n, n^2)
        tw = np.einsum("sgij,sj->sgi", t, w_flat)
        out["err_true_form"][:, k] = np.abs((tw[:, 0] ** 2).sum(axis=-1) - loss_each[:, 0]) \
            / np.maximum(loss_each[:, 0], np.finfo(float).tiny)
        s_t = singular_values(t[:, 0])  # (size, n)
        true_pred = np.sqrt(z_norm2[:, 0])[:, None] * s_md[:, 0]
        out["err_true_spectrum"][:, k] = np.abs(s_t - true_pred).max(axis=-1) / true_pred[:, 0]
        out["kappa_true"][:, k] = condition_number(s_t)
        stacked = t.reshape(size, g_count * n, big) / np.sqrt(g_count)
        s_stack = singular_values(stacked)
        out["kappa_true_batch"][:, k] = condition_number(s_stack)
        out["rank_true_batch"][:, k] = numerical_rank(s_stack)

        spectra["singular_values_Q"][:, k], spectra["predicted_Q"][:, k] = s_q[:, 0], pred[:, 0]
        spectra["eigenvalues_A"][:, k] = eig_a
        spectra["eigenvalues_blocks"][:, k] = np.sort(eig_blocks.reshape(size, -1), axis=-1)
        spectra["singular_values_T"][:, k] = s_t
    return ({name: xp.asarray(v) for name, v in out.items()},
            {name: xp.asarray(v) for name, v in spectra.items()})
