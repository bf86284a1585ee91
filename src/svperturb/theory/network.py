"""A fully connected network of layers of form (1) and its local linearisation (sections 3.1-3.3).

Layer k maps z_k to z_{k+1} = phi(W_k z_k + b_k) + rho_k z_k (1), with the leaky ReLU
phi(t) = max(t, eta t) (34), taken coordinate by coordinate. Locally phi(t) = D_k t with the
activation pattern D_k = diag(1 if t_i >= 0 else eta) of the pre-activation t = W_k z_k + b_k, so
inside a region of linearity each layer is affine: z_{k+1} = (D_k W_k + rho_k I) z_k + D_k b_k (36),
(39). For a trained layer `trained` with input z, weights W and pattern D, the network output is
y_hat = M D W z + B (42), with M = J_last ... J_{trained+1} the product of the subsequent layers'
Jacobians J_k = D_k W_k + rho_k I ((43), (44) for the single-skip case) and B every constant term
(38).

Every function works on stacks: arrays carry leading batch axes (samples, skip coefficients...),
which broadcast as in NumPy; skip coefficients may be scalars or arrays of the batch shape. The
array module is NumPy (the networks here are tiny; float64 throughout).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def leaky_relu(t: np.ndarray, eta: float) -> np.ndarray:
    """phi(t) = max(t, eta t) (34) for eta <= 1: ReLU (0), leaky ReLU (0 < eta < 1), |t| (-1)."""
    if eta > 1:
        raise ValueError(f"eta: got {eta}; allowed: eta <= 1 (phi(t) = max(t, eta t))")
    return np.maximum(t, eta * t)


def activation_pattern_of(t: np.ndarray, eta: float) -> np.ndarray:
    """Diagonal of D with phi(t) = D t: 1 where t >= 0, eta where t < 0 (phi(0) = 0 either way)."""
    return np.where(t >= 0, 1.0, eta)


def _matvec(w: np.ndarray, z: np.ndarray) -> np.ndarray:
    return (w @ z[..., None])[..., 0]


def _skip_term(skip, z: np.ndarray, out_dim: int) -> np.ndarray | float:
    skip = np.asarray(skip, dtype=float)
    if not np.any(skip):
        return 0.0
    if z.shape[-1] != out_dim:
        raise ValueError(f"skip connection needs a square layer; got input {z.shape[-1]}, output {out_dim}")
    return skip[..., None] * z


@dataclass
class ForwardPass:
    """Every layer's input z_k, pre-activation t_k = W_k z_k + b_k and pattern D_k (diagonals)."""

    inputs: list[np.ndarray]
    preactivations: list[np.ndarray]
    patterns: list[np.ndarray]
    output: np.ndarray


def forward(
    x: np.ndarray,
    weights: Sequence[np.ndarray],
    biases: Sequence[np.ndarray],
    eta: float,
    skips: Sequence | None = None,
) -> ForwardPass:
    """Run z_{k+1} = phi(W_k z_k + b_k) + rho_k z_k (1) through every layer, recording D_k.

    `weights[k]` has shape (..., n_{k+1}, n_k), `biases[k]` (..., n_{k+1}), x (..., n_0);
    `skips[k]` is rho_k (a scalar or an array of the batch shape; default 0 everywhere).
    """
    skips = [0.0] * len(weights) if skips is None else list(skips)
    if not len(weights) == len(biases) == len(skips):
        raise ValueError("weights, biases and skips: one entry per layer")
    z = np.asarray(x, dtype=float)
    inputs, pre, patterns = [], [], []
    for w, b, rho in zip(weights, biases, skips):
        t = _matvec(w, z) + b
        inputs.append(z)
        pre.append(t)
        patterns.append(activation_pattern_of(t, eta))
        z = leaky_relu(t, eta) + _skip_term(rho, z, t.shape[-1])
    return ForwardPass(inputs, pre, patterns, z)


def layer_jacobian(w: np.ndarray, d: np.ndarray, skip=0.0) -> np.ndarray:
    """J_k = D_k W_k + rho_k I: the layer's linear part inside its region of linearity (36), (39)."""
    j = d[..., :, None] * w
    skip = np.asarray(skip, dtype=float)
    if np.any(skip):
        if w.shape[-1] != w.shape[-2]:
            raise ValueError(f"skip connection needs a square layer; got W of shape {w.shape[-2:]}")
        j = j + skip[..., None, None] * np.eye(w.shape[-1])
    return j


def subsequent_matrix(
    weights: Sequence[np.ndarray],
    patterns: Sequence[np.ndarray],
    skips: Sequence | None,
    trained: int,
) -> np.ndarray:
    """M = J_last ... J_{trained+1}: the action of the layers after layer `trained` (42)-(44).

    For the toy network (158) with the trained layer 0 and layers 1, 2 after it, this is
    M(rho) = D_2 W_2 (D_1 W_1 + rho I).
    """
    skips = [0.0] * len(weights) if skips is None else list(skips)
    after = range(trained + 1, len(weights))
    if not after:
        raise ValueError(f"no layer after layer {trained}")
    m = None
    for k in after:
        j = layer_jacobian(weights[k], patterns[k], skips[k])
        m = j if m is None else j @ m
    return m


def local_affine_form(
    fp: ForwardPass,
    weights: Sequence[np.ndarray],
    biases: Sequence[np.ndarray],
    trained: int,
    skips: Sequence | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(M, B) with y_hat = M D W z + B (42) in the current region of linearity.

    D, W, z are the trained layer's pattern, weights and input; B collects the constants (38):
    B = M D b + sum over later layers k of J_last ... J_{k+1} D_k b_k (plus rho_trained z if
    the trained layer itself has a skip).
    """
    skips = [0.0] * len(weights) if skips is None else list(skips)
    m = subsequent_matrix(weights, fp.patterns, skips, trained)
    d, b = fp.patterns[trained], biases[trained]
    offset = d * b + _skip_term(skips[trained], fp.inputs[trained], b.shape[-1])
    for k in range(trained + 1, len(weights)):
        offset = _matvec(layer_jacobian(weights[k], fp.patterns[k], skips[k]), offset) + fp.patterns[k] * biases[k]
    return m, offset


def kronecker_singular_values(s_md: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Singular values of Q = diag(z) (x) (M D) (49), from those of M D: s_i(MD) |z[j]| (51).

    `s_md` (..., n) are the singular values of MD, z (..., n_z) the trained layer's input; returns
    all n * n_z singular values of Q, decreasing, shape (..., n * n_z).
    """
    products = s_md[..., :, None] * np.abs(z)[..., None, :]
    flat = products.reshape(*products.shape[:-2], -1)
    return -np.sort(-flat, axis=-1)


def toy_targets(x: np.ndarray) -> np.ndarray:
    """The six statistics the toy network (158) is tasked to predict from x in R^2:
    y = [x[1], x[2], mean(x), max(x), min(x), ||x||_2]."""
    return np.stack([x[..., 0], x[..., 1], x.mean(axis=-1), x.max(axis=-1), x.min(axis=-1),
                     np.linalg.norm(x, axis=-1)], axis=-1)
