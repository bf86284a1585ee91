"""Targets M and minimizers W_L ... W_1 = M of deep matrix factorization (Kamber & Parhi, arXiv
2509.25783), drawn with the paired, split-independent seeding of ensembles.sample_draws.

A sample's target and its imbalance directions Z_i depend on (seed, study, width d, what is drawn,
sample index) alone: every depth L and imbalance kappa of a sample shares them, so that the
statistics compare along L and kappa on the same matrices (docs/studies.md). So does the step
factor c of the escape study (step_factors).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from svperturb.sampling.ensembles import sample_draws

TARGETS = ("gaussian", "ill_conditioned")
# ill_conditioned: singular values 1 = s_1 > ... > s_d = 1/TARGET_CONDITION, geometric
TARGET_CONDITION = 1e3


def _gaussian(d: int):
    return lambda generator, size: generator.standard_normal((size, d, d))


def haar_orthogonal(z: np.ndarray) -> np.ndarray:
    """Haar-distributed orthogonal matrices from Gaussian ones (QR with the signs fixed)."""
    q, r = np.linalg.qr(z)
    return q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[..., None, :]


def target_matrices(seed: int, study: str, d: int, target: str, start: int, stop: int) -> np.ndarray:
    """The d x d targets M of samples [start, stop): `gaussian`, iid N(0, 1/d) entries (||M|| near
    2 for large d); `ill_conditioned`, U diag(s) V^T with U, V Haar and s geometric from 1 down to
    1/TARGET_CONDITION (for d = 1: M = +-1)."""
    if target == "gaussian":
        return sample_draws(seed, study, d, "target", start, stop, _gaussian(d)) / np.sqrt(d)
    if target != "ill_conditioned":
        raise ValueError(f"target: got {target!r}; allowed: {', '.join(TARGETS)}")
    u = haar_orthogonal(sample_draws(seed, study, d, "target/left", start, stop, _gaussian(d)))
    v = haar_orthogonal(sample_draws(seed, study, d, "target/right", start, stop, _gaussian(d)))
    s = TARGET_CONDITION ** -(np.arange(d) / max(d - 1, 1))
    return (u * s) @ np.swapaxes(v, -1, -2)


def balanced_factors(m: np.ndarray, depth: int) -> list[np.ndarray]:
    """W_1 = S^(1/L) V^T, W_i = S^(1/L) (1 < i < L), W_L = U S^(1/L) for M = U S V^T: the balanced
    minimizer, each factor with singular values s(M)^(1/L) on M's singular vectors."""
    u, s, vt = np.linalg.svd(m)
    root = s ** (1.0 / depth)
    middle = root[..., :, None] * np.eye(m.shape[-1])
    return [root[..., :, None] * vt, *([middle] * (depth - 2)), u * root[..., None, :]]


def imbalance_directions(seed: int, study: str, d: int, depth: int, start: int, stop: int) -> list[np.ndarray]:
    """Z_1 .. Z_(L-1), iid N(0, 1) d x d: the directions of G_i = expm(kappa Z_i / sqrt(d));
    Z_i is the same for every depth that has layer i."""
    return [sample_draws(seed, study, d, f"imbalance/layer={i}", start, stop, _gaussian(d))
            for i in range(1, depth)]


def imbalanced_factors(factors: list[np.ndarray], directions: list[np.ndarray], kappa: float) -> list[np.ndarray]:
    """W_i -> G_i W_i G_(i-1)^(-1), G_i = expm(kappa Z_i / sqrt(d)), G_0 = G_L = I: another
    minimizer of the same M (the product telescopes); kappa = 0 leaves the factors as they are."""
    if kappa == 0:
        return [f.copy() for f in factors]
    d = factors[0].shape[-1]
    g = [scipy.linalg.expm(kappa * z / np.sqrt(d)) for z in directions]
    g_inv = [np.linalg.inv(x) for x in g]
    out = []
    for i, w in enumerate(factors):
        left = g[i] @ w if i < len(g) else w
        out.append(left @ g_inv[i - 1] if i > 0 else left)
    return out


def step_factors(seed: int, study: str, d: int, target: str, low: float, high: float, start: int,
                 stop: int) -> np.ndarray:
    """The step factors c of samples [start, stop), uniform in [low, high): c = low + (high - low)
    u with u uniform in [0, 1) from the stream `step_factor/target=<target>` at width d, so that
    a sample's c is the same for every depth and imbalance of its (target, width) and independent
    across targets and widths; u does not depend on low and high."""
    if not low < high:
        raise ValueError(f"step factor interval: got [{low}, {high}]; need low < high")
    u = sample_draws(seed, study, d, f"step_factor/target={target}", start, stop,
                     lambda generator, size: generator.random(size))
    return low + (high - low) * u
