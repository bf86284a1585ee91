"""The toy four-layer network of the paper's numerical validation (158), Figure 8 (claim 16).

f = f2 . f1 . f0 . f_{-1}, layers of form (1) with the leaky ReLU phi(t) = max(t, eta t),
eta = activation_slope (0.1 in the paper): input x in R^2, f_{-1} with W_{-1} of shape n x 2
(the paper writes "W_2 of size 6 x 2", a slip: W_2 maps the 6-dimensional z_2), f0, f1, f2
with n x n weights, all biases n-dimensional, n = width (6 in the paper); x, every W_k and
b_k iid N(0, 1). Only f1 has a skip connection: z2 = phi(W1 z1 + b1) + rho z1.

For each rho of the skip grid the forward pass is run for real. The trained layer is layer 0:
its input z = z0 = f_{-1}(x) and pattern D = D0; the layers after it act as
M(rho) = D2 W2 (D1 W1 + rho I), so that y_hat = M D W z + B (42). Which patterns can change with
rho: D_{-1}, D0 and D1 cannot -- their pre-activations W_k z_k + b_k are computed before the skip
enters (z1 does not depend on rho) -- only D2 can, since W2 z2 + b2 moves with rho. So M(rho)
is piecewise affine in rho, with jumps where an entry of D2 flips; pattern_changes_layer=k
count the grid steps at which D_k changes (0 for k < 2 by construction: a check).

Per sample and rho: the singular values of Q = diag(z) (x) (M D) (49) are s_i(MD) |z[j]| (51),
computed from the n singular values of MD (not from the n^2 x n^2 matrix): s1_Q, s_star_Q,
kappa_Q, and kappa_MD = kappa(M D). kappa(diag z) does not depend on rho, so kappa_Q and kappa_MD
are monotone in rho together (kappa_Q = kappa_MD kappa(diag z), (54)). Also the squared loss
||y - y_hat||^2 against the targets y = [x1, x2, mean x, max x, min x, ||x||_2] (only for n = 6,
the targets' dimension; NaN otherwise) and pattern_flips: entries of D2(rho) that differ from
D2(0); kappa_MD_dense = kappa((D2 W2 D1 W1 + rho I) D0), the matrix of Figure 8's axis labels
"s_i(Mo + rho Id)", i.e. a skip across both f1 and f2 (DenseNet (40)), for which no pattern
depends on rho (context for the claim, not the paper's stated network). Per sample: kappa_poles,
the rho in the skip range where MD(rho) is singular (kappa infinite): M D is singular exactly
where D1 W1 + rho I is (D2, W2, D0 are invertible when eta != 0), i.e. at rho = -lambda for the
real eigenvalues lambda of D1 W1 -- a grid-free reason for kappa not to decrease monotonically;
kappa_poles_dense the same for D2 W2 D1 W1 + rho I; s_MD (len(skip), n) and z_abs (n), from which every singular value of Q at any
rho is rebuilt (Figure 8(d) over all realisations), kappa_diag_z, pattern_changes_layer=k.
Spectra: all n^2 singular values of Q at every rho, (samples, len(skip), n^2), decreasing.
Runs on the CPU (NumPy) whatever the backend: the matrices are 6 x 6.
"""

from __future__ import annotations

import numpy as np

from svperturb.linalg.spectra import (
    condition_number,
    singular_values,
    smallest_nonzero_singular_value,
)
from svperturb.sampling.ensembles import sample_draws
from svperturb.studies.datasets import COUNT, PER_SKIP, SAMPLE, Dataset, extremes
from svperturb.studies.rho_paths import singular_zeros
from svperturb.theory.network import (
    forward,
    kronecker_singular_values,
    subsequent_matrix,
    toy_targets,
)

NAME = "toy_network"
AXES = ("width", "activation_slope")
INNER = ("skip",)

INPUT_DIMENSION = 2
LAYERS = (-1, 0, 1, 2)  # the paper's layer indices; layer 0 is trained, layer 1 has the skip
TRAINED = LAYERS.index(0)
SKIPPED = LAYERS.index(1)

# The stored datasets (studies/datasets.py); finite: a NaN or an infinity marks a numerical fault.
# M = D2 W2 (D1 W1 + rho I), D = D0, z = z0 = f_{-1}(x) the trained layer's input, Q = diag(z)
# (x) (M D) (49), whose singular values s_i(M D) |z[j]| (51) come from those of M D.
DATASETS = {
    **extremes("Q", "Q = diag(z) (x) (M D), M = D2 W2 (D1 W1 + rho I), D = D0, from s_i(M D) "
               "|z[j]| (51)", PER_SKIP, "_Q", "(54), Figure 8", rank=False),
    "kappa_MD": Dataset("kappa(M D), M = D2 W2 (D1 W1 + rho I), D = D0", PER_SKIP,
                        equation="(42)-(44), Figure 8"),
    "kappa_diag_z": Dataset("kappa(diag z) = max_j |z[j]| / min_j |z[j]| (independent of rho)",
                            SAMPLE, equation="(54)"),
    "s_MD": Dataset("singular values of M D, decreasing", ("sample", "skip", "index"),
                    equation="(42)-(44)"),
    "z_abs": Dataset("|z[j]|, the trained layer's input z = f_{-1}(x)", ("sample", "component"),
                     equation="(158)"),
    "kappa_MD_dense": Dataset("kappa((D2 W2 D1 W1 + rho I) D0): one skip across f1 and f2, as "
                              "Figure 8's axis labels read (no pattern depends on rho there)",
                              PER_SKIP, equation="(40), Figure 8"),
    "kappa_poles": Dataset("rho in the skip range where M D is singular (kappa infinite): the real "
                           "eigenvalues -rho of D1 W1", SAMPLE, COUNT, "Figure 8"),
    "kappa_poles_dense": Dataset("the same for D2 W2 D1 W1 + rho I", SAMPLE, COUNT, "Figure 8"),
    "loss": Dataset("squared loss ||y - y_hat||^2 against the targets y = [x1, x2, mean x, max x, "
                    "min x, ||x||_2]; n = 6 only (NaN otherwise)", PER_SKIP, equation="(158)"),
    **{f"pattern_changes_layer={k}": Dataset(
        f"grid steps of rho at which the pattern D_{k} changes"
        + (" (0 by construction: a check)" if k < 2 else ""), SAMPLE, COUNT, "(1)")
       for k in LAYERS},
    "pattern_flips": Dataset("entries of D2(rho) that differ from D2(0)", PER_SKIP, COUNT, "(1)"),
    "spectra/singular_values_Q": Dataset("all n^2 singular values of Q, decreasing",
                                         ("spectrum_sample", "skip", "index_ij"),
                                         equation="(49), (51)", finite=True),
}


def bytes_per_sample(point) -> int:
    """Per rho: activations, patterns and the n x n matrices M, MD and their SVD copies."""
    n, r = point["width"], len(point["skip"])
    return r * (8 * n * n + 40 * n) * 8


def network_draws(seed: int, n: int, start: int, stop: int):
    """x, [W_{-1}, W0, W1, W2], [b_{-1}, b0, b1, b2] of samples [start, stop), all iid N(0, 1)."""
    def normal(*shape):
        return lambda g, size: g.standard_normal((size, *shape))

    x = sample_draws(seed, NAME, n, "input", start, stop, normal(INPUT_DIMENSION))
    weights, biases = [], []
    for k in LAYERS:
        fan_in = INPUT_DIMENSION if k == LAYERS[0] else n
        weights.append(sample_draws(seed, NAME, n, f"weights/layer={k}", start, stop, normal(n, fan_in)))
        biases.append(sample_draws(seed, NAME, n, f"bias/layer={k}", start, stop, normal(n)))
    return x, weights, biases


def simulate(point, start, stop, xp):
    n, eta = point["width"], point["activation_slope"]
    rhos = np.array(sorted(point["skip"]), dtype=float)
    x, weights, biases = network_draws(point["seed"], n, start, stop)
    # batch axes (samples, rho): every layer sees the same draws for every rho
    weights = [w[:, None] for w in weights]
    biases = [b[:, None] for b in biases]
    skips = [0.0] * len(LAYERS)
    skips[SKIPPED] = rhos[None, :]
    # a full forward pass per rho (x repeated), so that every pattern is recomputed at every rho
    fp = forward(np.repeat(x[:, None, :], len(rhos), axis=1), weights, biases, eta, skips)
    m = subsequent_matrix(weights, fp.patterns, skips, TRAINED)  # D2 W2 (D1 W1 + rho I)
    md = m * fp.patterns[TRAINED][..., None, :]  # M D, D = D0 on the right
    s_md = singular_values(md)
    z = fp.inputs[TRAINED][:, 0]  # z0 = f_{-1}(x): the same for every rho
    s_q = kronecker_singular_values(s_md, z[:, None, :])
    per_sample = {
        "s1_Q": s_q[..., 0],
        "s_star_Q": smallest_nonzero_singular_value(s_q),
        "kappa_Q": condition_number(s_q),
        "kappa_MD": condition_number(s_md),
        "kappa_diag_z": condition_number(-np.sort(-np.abs(z), axis=-1)),
        "s_MD": s_md,
        "z_abs": np.abs(z),
    }
    # the reading of Figure 8's axis labels, s_i(Mo + rho I): a skip across f1 and f2 (DenseNet (40)),
    # z3 = phi(W2 phi(W1 z1 + b1) + b2) + rho z1; no pattern depends on rho there, Mo = D2 W2 D1 W1
    plain = forward(x, [w[:, 0] for w in weights], [b[:, 0] for b in biases], eta)
    mo = subsequent_matrix([w[:, 0] for w in weights], plain.patterns, None, TRAINED)
    dense = (mo[:, None] + rhos[None, :, None, None] * np.eye(n)) * plain.patterns[TRAINED][:, None, None, :]
    per_sample["kappa_MD_dense"] = condition_number(singular_values(dense))
    # MD(rho) is singular exactly where D1 W1 + rho I is (D2, W2, D0 are invertible for eta != 0):
    # at rho = -lambda for each real eigenvalue lambda of D1 W1 in [-1, 0], kappa has a pole
    d1w1 = fp.patterns[SKIPPED][:, 0, :, None] * weights[SKIPPED][:, 0]
    per_sample["kappa_poles"] = singular_zeros(d1w1, rhos[0], rhos[-1]).astype(np.int16)
    per_sample["kappa_poles_dense"] = singular_zeros(mo, rhos[0], rhos[-1]).astype(np.int16)
    if n == 6:
        residual = toy_targets(x)[:, None, :] - fp.output
        per_sample["loss"] = (residual**2).sum(axis=-1)
    else:
        per_sample["loss"] = np.full(s_md.shape[:2], np.nan)
    for k, d in zip(LAYERS, fp.patterns):
        changes = (d[:, 1:] != d[:, :-1]).any(axis=-1).sum(axis=1)
        per_sample[f"pattern_changes_layer={k}"] = changes.astype(np.int16)
    d2 = fp.patterns[-1]
    per_sample["pattern_flips"] = (d2 != d2[:, :1]).sum(axis=-1).astype(np.int16)
    return per_sample, {"singular_values_Q": s_q}
