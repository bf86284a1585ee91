"""A deep network with a smooth activation, its predictor's gradient and Hessian-vector products by
hand, both ends of the Hessian's spectrum by Lanczos, and gradient descent on a square loss
(Banerjee et al., arXiv 2209.15106: the abstract's bound O(poly(L) / sqrt(m)) on the spectral norm
of the predictor's Hessian, and restricted strong convexity along gradient descent).

The network: alpha_0 = x, z_l = W_l alpha_(l-1) / sqrt(m), alpha_l = phi(z_l) (l = 1..L),
f(theta; x) = v^T alpha_L / sqrt(m); W_1 is m x d, W_2..W_L are m x m, v has m entries, and theta
is every weight, (W_1, ..., W_L, v) flattened in that order (each W_l row by row): P = m d +
(L - 1) m^2 + m parameters.

Derivatives (reverse mode; g_l = df/d alpha_l, delta_l = df/dz_l):
    g_L = v / sqrt(m),  delta_l = phi'(z_l) g_l,  g_(l-1) = W_l^T delta_l / sqrt(m),
    df/dW_l = delta_l alpha_(l-1)^T / sqrt(m),  df/dv = alpha_L / sqrt(m).
The Hessian-vector product H (U_1, ..., U_L, u) is the derivative of that gradient along the
direction (Pearlmutter's R-operator): a forward tangent pass
    dz_l = (U_l alpha_(l-1) + W_l dalpha_(l-1)) / sqrt(m),  dalpha_l = phi'(z_l) dz_l,
    dalpha_0 = 0,
and a second-order backward pass
    dg_L = u / sqrt(m),  ddelta_l = phi''(z_l) dz_l g_l + phi'(z_l) dg_l,
    dg_(l-1) = (U_l^T delta_l + W_l^T ddelta_l) / sqrt(m),
    H_(W_l) = (ddelta_l alpha_(l-1)^T + delta_l dalpha_(l-1)^T) / sqrt(m),  H_v = dalpha_L / sqrt(m):
O(L m^2) per product, as the gradient. Every array carries a leading batch axis (one network and
one input per sample), on the array module `xp`; no autodiff library.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from svperturb.linalg.backend import to_host
from svperturb.linalg.lanczos import LanczosEnds, MatrixFreeOperator, lanczos_ends

# GELU in its tanh form, 0.5 x (1 + tanh(c (x + a x^3))) (Hendrycks & Gimpel, arXiv 1606.08415),
# which every array module computes (the erf form needs scipy.special on the host).
GELU_C, GELU_A = math.sqrt(2 / math.pi), 0.044715


@dataclass(frozen=True)
class Activation:
    """phi and its first two derivatives, each (z, xp) -> array of z's shape."""

    value: Callable
    first: Callable
    second: Callable


def _tanh_first(z, xp):
    t = xp.tanh(z)
    return 1 - t * t


def _tanh_second(z, xp):
    t = xp.tanh(z)
    return -2 * t * (1 - t * t)


def _sigmoid(z, xp):
    return 0.5 * (1 + xp.tanh(z / 2))  # 1 / (1 + exp(-z)) without overflow


def _softplus_second(z, xp):
    s = _sigmoid(z, xp)
    return s * (1 - s)


def _gelu_parts(z, xp):
    """(t, u', u'') of u = c (z + a z^3), t = tanh(u)."""
    return (xp.tanh(GELU_C * (z + GELU_A * z ** 3)), GELU_C * (1 + 3 * GELU_A * z * z),
            6 * GELU_C * GELU_A * z)


def _gelu(z, xp):
    return 0.5 * z * (1 + _gelu_parts(z, xp)[0])


def _gelu_first(z, xp):
    t, du, _ = _gelu_parts(z, xp)
    return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * du


def _gelu_second(z, xp):
    t, du, ddu = _gelu_parts(z, xp)
    return (1 - t * t) * (du + 0.5 * z * (ddu - 2 * t * du * du))


ACTIVATIONS: dict[str, Activation] = {
    "tanh": Activation(lambda z, xp: xp.tanh(z), _tanh_first, _tanh_second),
    "softplus": Activation(lambda z, xp: xp.logaddexp(0, z), _sigmoid, _softplus_second),
    "gelu": Activation(_gelu, _gelu_first, _gelu_second),
}


def activation(name: str) -> Activation:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation: got {name!r}; allowed: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


@dataclass(frozen=True)
class SmoothNetwork:
    """A batch of networks: weights [W_1 (batch, m, d), W_2..W_L (batch, m, m)], v (batch, m), on
    xp, and the activation's name (ACTIVATIONS)."""

    weights: list
    v: object
    activation: str

    @property
    def width(self) -> int:
        return self.v.shape[-1]

    @property
    def size(self) -> int:
        """P, the number of parameters of one network."""
        return sum(w.shape[-1] * w.shape[-2] for w in self.weights) + self.width

    def rows(self, rows) -> SmoothNetwork:
        """The networks of the given samples (an index array on xp)."""
        return SmoothNetwork([w[rows] for w in self.weights], self.v[rows], self.activation)

    def moved(self, step) -> SmoothNetwork:
        """theta + step for a flat step (batch, P)."""
        blocks = unflatten(step, self)
        return SmoothNetwork([w + b for w, b in zip(self.weights, blocks[:-1])], self.v + blocks[-1],
                             self.activation)


def flatten(blocks, xp: ModuleType = np):
    """(batch, P) from per-weight blocks [(batch, m, d), (batch, m, m), ..., (batch, m)]."""
    return xp.concatenate([b.reshape(b.shape[0], -1) for b in blocks], axis=-1)


def unflatten(flat, network: SmoothNetwork) -> list:
    """The blocks of a flat (batch, P) in the network's weights' shapes, v's last."""
    blocks, offset = [], 0
    for shape in [w.shape[1:] for w in network.weights] + [network.v.shape[1:]]:
        count = math.prod(shape)
        blocks.append(flat[:, offset:offset + count].reshape(flat.shape[0], *shape))
        offset += count
    return blocks


def _times(matrix, vector):
    """(batch, r, c) @ (batch, c) -> (batch, r)."""
    return (matrix @ vector[..., None])[..., 0]


def _transposed_times(matrix, vector, xp):
    return (xp.swapaxes(matrix, -1, -2) @ vector[..., None])[..., 0]


def forward(network: SmoothNetwork, x, xp: ModuleType = np):
    """(z_1..z_L, alpha_0..alpha_L, f) at inputs x (batch, d): the module docstring's forward pass."""
    phi, scale = activation(network.activation), 1 / math.sqrt(network.width)
    pre, post = [], [x]
    for w in network.weights:
        pre.append(_times(w, post[-1]) * scale)
        post.append(phi.value(pre[-1], xp))
    return pre, post, (network.v * post[-1]).sum(axis=-1) * scale


def predictor(network: SmoothNetwork, x, xp: ModuleType = np):
    """f(theta; x) per sample (batch,)."""
    return forward(network, x, xp)[2]


def _backward(network: SmoothNetwork, pre, xp):
    """[delta_1..delta_L], [g_0..g_L] of the module docstring."""
    phi, scale = activation(network.activation), 1 / math.sqrt(network.width)
    g = [network.v * scale]
    deltas = []
    for w, z in zip(network.weights[::-1], pre[::-1]):
        deltas.insert(0, phi.first(z, xp) * g[0])
        g.insert(0, _transposed_times(w, deltas[0], xp) * scale)
    return deltas, g


def predictor_gradient(network: SmoothNetwork, x, xp: ModuleType = np):
    """df/dtheta (batch, P) at inputs x (batch, d) (module docstring)."""
    return predictor_and_gradient(network, x, xp)[1]


def predictor_and_gradient(network: SmoothNetwork, x, xp: ModuleType = np):
    """(f (batch,), df/dtheta (batch, P)) at inputs x (batch, d), one forward pass for both."""
    pre, post, f = forward(network, x, xp)
    deltas, _ = _backward(network, pre, xp)
    scale = 1 / math.sqrt(network.width)
    blocks = [d[:, :, None] * a[:, None, :] * scale for d, a in zip(deltas, post[:-1])]
    return f, flatten(blocks + [post[-1] * scale], xp)


def predictor_hvp(network: SmoothNetwork, x, direction, xp: ModuleType = np, passes=None):
    """H direction (batch, P): the predictor's Hessian at inputs x (batch, d) times a flat
    direction (batch, P), by the forward tangent and second-order backward passes of the module
    docstring. `passes` (forward's and _backward's results at x) may be given to skip them."""
    phi, scale = activation(network.activation), 1 / math.sqrt(network.width)
    pre, post, deltas, g = passes if passes is not None else hvp_passes(network, x, xp)
    blocks = unflatten(direction, network)
    u, directions = blocks[-1], blocks[:-1]
    tangent_pre, tangent_post = [], [xp.zeros_like(x)]
    for w, d, a, z in zip(network.weights, directions, post[:-1], pre):
        tangent_pre.append((_times(d, a) + _times(w, tangent_post[-1])) * scale)
        tangent_post.append(phi.first(z, xp) * tangent_pre[-1])
    dg = u * scale
    products = []
    for layer in range(len(network.weights) - 1, -1, -1):
        z, dz = pre[layer], tangent_pre[layer]
        ddelta = phi.second(z, xp) * dz * g[layer + 1] + phi.first(z, xp) * dg
        products.insert(0, (ddelta[:, :, None] * post[layer][:, None, :]
                            + deltas[layer][:, :, None] * tangent_post[layer][:, None, :]) * scale)
        dg = (_transposed_times(directions[layer], deltas[layer], xp)
              + _transposed_times(network.weights[layer], ddelta, xp)) * scale
    return flatten(products + [tangent_post[-1] * scale], xp)


def hvp_passes(network: SmoothNetwork, x, xp: ModuleType = np):
    """(z, alpha, delta, g) at x: what every Hessian-vector product at x shares."""
    pre, post, _ = forward(network, x, xp)
    deltas, g = _backward(network, pre, xp)
    return pre, post, deltas, g


def predictor_hessian_dense(network: SmoothNetwork, x, xp: ModuleType = np):
    """The predictor's Hessian (batch, P, P), column j the product with the unit vector e_j (P
    products; for tests and small networks)."""
    batch, size = network.v.shape[0], network.size
    passes = hvp_passes(network, x, xp)
    columns = []
    for j in range(size):
        unit = xp.zeros((batch, size), dtype=network.v.dtype)
        unit[:, j] = 1
        columns.append(predictor_hvp(network, x, unit, xp, passes))
    return xp.stack(columns, axis=-1)


def hvp_operator(network: SmoothNetwork, x, xp: ModuleType) -> MatrixFreeOperator:
    """The predictor's Hessian at x as a batched matrix-free operator (linalg/lanczos.py)."""
    passes = hvp_passes(network, x, xp)
    return MatrixFreeOperator(lambda q: predictor_hvp(network, x, q, xp, passes),
                              lambda rows: hvp_operator(network.rows(rows), x[rows], xp))


def hvp_rounding_ulps(network: SmoothNetwork) -> float:
    """The rounding allowance of lanczos_ends, in eps times the spectrum's scale: P for the
    Rayleigh-Ritz backward error on the computed basis (p(P) eps ||H|| with p(P) taken as P, as for
    the sharpness route), plus a product's, its passes' summation lengths (d + (L + 1) m) each
    contributing gamma_k ~ k eps relative to the terms, which are taken to be of the order of ||H||
    (the checks against dense eigvalsh bound what this misses)."""
    d, depth, m = network.weights[0].shape[-1], len(network.weights), network.width
    return network.size + d + (depth + 1) * m


def hessian_ends(network: SmoothNetwork, x, xp: ModuleType = np, rtol: float = 1e-10,
                 max_iter: int | None = None, seed: int = 0, start=None) -> LanczosEnds:
    """lambda_max and lambda_min of the predictor's Hessian at x with their bounds, by Lanczos on
    Hessian-vector products (linalg/lanczos.py: lanczos_ends, ends="both"); the spectral norm is
    max(|top|, |bottom|), its bound the larger end's. `start`: Lanczos's start vectors (batch, P)
    on the host, else drawn from `seed`."""
    return lanczos_ends(hvp_operator(network, x, xp), network.v.shape[0], network.size,
                        network.v.dtype, xp, rtol, max_iter, seed, hvp_rounding_ulps(network),
                        ends="both", start=start)


def spectral_norm(ends: LanczosEnds):
    """(max |lambda|, its bound) per sample from lanczos_ends's both ends (host arrays)."""
    top_wins = np.abs(ends.top) >= np.abs(ends.bottom)
    return (np.where(top_wins, np.abs(ends.top), np.abs(ends.bottom)),
            np.where(top_wins, ends.top_bound, ends.bottom_bound))


def predictor_jacobian(network: SmoothNetwork, inputs, xp: ModuleType = np):
    """The gradients of f at each of n inputs (batch, n, d) -> (batch, n, P)."""
    return xp.stack([predictor_gradient(network, inputs[:, i], xp) for i in range(inputs.shape[1])],
                    axis=1)


def predictions(network: SmoothNetwork, inputs, xp: ModuleType = np):
    """f at each of n inputs (batch, n, d) -> (batch, n)."""
    return xp.stack([predictor(network, inputs[:, i], xp) for i in range(inputs.shape[1])], axis=1)


def square_loss(network: SmoothNetwork, inputs, targets, xp: ModuleType = np):
    """(1 / 2n) sum_i (f(theta; x_i) - y_i)^2 per sample (batch,)."""
    r = predictions(network, inputs, xp) - targets
    return 0.5 * (r * r).mean(axis=-1)


def square_loss_hvp(network: SmoothNetwork, inputs, residuals, direction, xp: ModuleType = np,
                    shared=None):
    """The square loss's Hessian (1/n) sum_i (grad f_i grad f_i^T + r_i H_i) times a flat direction
    (batch, P), r_i = f(theta; x_i) - y_i (batch, n): the Gauss-Newton part plus the predictors'
    Hessians weighted by the residuals. `shared`: (Jacobian, each input's hvp_passes)."""
    jacobian, passes = shared if shared is not None else _loss_shared(network, inputs, xp)
    total = (jacobian * (jacobian @ direction[..., None])).mean(axis=1)
    for i, at in enumerate(passes):
        total = total + residuals[:, i:i + 1] * predictor_hvp(network, inputs[:, i], direction, xp,
                                                              at) / len(passes)
    return total


def _loss_shared(network: SmoothNetwork, inputs, xp):
    return (predictor_jacobian(network, inputs, xp),
            [hvp_passes(network, inputs[:, i], xp) for i in range(inputs.shape[1])])


def loss_hessian_operator(network: SmoothNetwork, inputs, residuals, xp: ModuleType) -> MatrixFreeOperator:
    """The square loss's Hessian as a batched matrix-free operator (linalg/lanczos.py)."""
    shared = _loss_shared(network, inputs, xp)
    return MatrixFreeOperator(
        lambda q: square_loss_hvp(network, inputs, residuals, q, xp, shared),
        lambda rows: loss_hessian_operator(network.rows(rows), inputs[rows], residuals[rows], xp))


def loss_hessian_ends(network: SmoothNetwork, inputs, targets, xp: ModuleType = np,
                      rtol: float = 1e-10, max_iter: int | None = None, seed: int = 0,
                      start=None) -> LanczosEnds:
    """Both ends of the square loss's Hessian at inputs (batch, n, d) and targets (batch, n), by
    Lanczos (ends="both"); its spectral norm is the loss's smoothness at theta."""
    residuals = predictions(network, inputs, xp) - targets
    return lanczos_ends(loss_hessian_operator(network, inputs, residuals, xp), network.v.shape[0],
                        network.size, network.v.dtype, xp, rtol, max_iter, seed,
                        hvp_rounding_ulps(network) + network.size, ends="both", start=start)


def gram_eigenvalues(jacobian, xp: ModuleType = np) -> np.ndarray:
    """The eigenvalues (batch, n), increasing, of (1/n) J J^T, J the Jacobian (batch, n, P): the
    nonzero eigenvalues of the square loss's Gauss-Newton part (1/n) J^T J, whose spectral norm is
    the last; host work, n x n per sample."""
    gram = to_host(jacobian @ xp.swapaxes(jacobian, -1, -2)) / jacobian.shape[1]
    return np.linalg.eigvalsh(gram)


def average_gradient_norm2(jacobian):
    """||(1/n) sum_i grad f(theta; x_i)||^2 per sample: the abstract's restricted-strong-convexity
    quantity, the squared norm of the average gradient of the predictors."""
    mean = jacobian.mean(axis=1)
    return (mean * mean).sum(axis=-1)


# A run whose loss would exceed DIVERGED times its start (or overflow) has diverged: it stops at its
# last iterate (a geometrically falling loss never rises, so the factor only keeps the numbers
# finite; 1e6: the residuals grew a thousandfold).
DIVERGED = 1e6


@dataclass(frozen=True)
class Descent:
    """gradient_descent's run per sample: the network after the steps, the loss at steps 0..T
    (batch, T + 1), the RSC quantity at steps 0..T (batch, T + 1), on xp, and the step at which a
    diverged run stopped (host, int64; -1 where it did not)."""

    network: SmoothNetwork
    losses: object
    average_gradient_norm2: object
    diverged_at: np.ndarray


def gradient_descent(network: SmoothNetwork, inputs, targets, step, steps: int,
                     xp: ModuleType = np) -> Descent:
    """`steps` steps theta <- theta - eta grad L of the square loss L = (1/2n) sum_i (f(theta; x_i)
    - y_i)^2, grad L = (1/n) sum_i (f_i - y_i) grad f_i, per sample's step eta (batch,). A step
    that would take the loss above DIVERGED times its start, or to a non-finite value, is refused
    and the run stays where it is from then on (diverged_at: that step)."""
    losses, rsc = [], []
    diverged_at = np.full(network.v.shape[0], -1, dtype=np.int64)
    for t in range(steps + 1):
        pairs = [predictor_and_gradient(network, inputs[:, i], xp) for i in range(inputs.shape[1])]
        jacobian = xp.stack([g for _, g in pairs], axis=1)
        r = xp.stack([f for f, _ in pairs], axis=1) - targets
        losses.append(0.5 * (r * r).mean(axis=-1))
        rsc.append(average_gradient_norm2(jacobian))
        if t == steps:
            break
        moving = xp.asarray(diverged_at < 0)
        gradient = (r[:, :, None] * jacobian).mean(axis=1)
        candidate = network.moved(-(step * moving)[:, None] * gradient)
        with np.errstate(over="ignore", invalid="ignore"):
            after = to_host(square_loss(candidate, inputs, targets, xp))
        bad = ~(after <= DIVERGED * to_host(losses[0])) & (diverged_at < 0)
        diverged_at[bad] = t + 1
        network = candidate if not bad.any() else _kept(network, candidate, xp.asarray(bad), xp)
    return Descent(network, xp.stack(losses, axis=-1), xp.stack(rsc, axis=-1), diverged_at)


def _kept(old: SmoothNetwork, new: SmoothNetwork, keep_old, xp: ModuleType) -> SmoothNetwork:
    """new, but old on the rows where keep_old (batch,)."""
    def pick(a, b):
        return xp.where(keep_old.reshape(-1, *[1] * (a.ndim - 1)), a, b)
    return SmoothNetwork([pick(a, b) for a, b in zip(old.weights, new.weights)], pick(old.v, new.v),
                         old.activation)
