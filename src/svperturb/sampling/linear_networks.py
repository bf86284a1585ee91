"""Teachers and initial weights of deep linear networks (Jacot et al., arXiv 2106.15933), drawn
with the paired, split-independent seeding of ensembles.sample_draws.

A sample's teacher singular vectors depend on (seed, study, teacher dimension d, sample index)
alone: every width, depth, initialization scale and L2 coefficient of a sample sees the same
teacher directions. Its initial weights are standard Gaussian matrices Z_i drawn per (width, depth,
layer) and multiplied by w^(-gamma/2) (variance w^(-gamma)): every gamma of a sample scales the
same Z_i, so that the initialization scale is compared on the same draws (docs/studies.md).
"""

from __future__ import annotations

import numpy as np

from svperturb.sampling.ensembles import sample_draws
from svperturb.sampling.factorizations import haar_orthogonal


def _gaussian(rows: int, columns: int):
    return lambda generator, size: generator.standard_normal((size, rows, columns))


def teacher_frames(seed: int, study: str, d: int, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """(U, V): Haar-distributed d x d orthogonal matrices of samples [start, stop), the teacher's
    left and right singular vectors (columns): M = U diag(m) V^T."""
    u = haar_orthogonal(sample_draws(seed, study, d, "teacher/left", start, stop, _gaussian(d, d)))
    v = haar_orthogonal(sample_draws(seed, study, d, "teacher/right", start, stop, _gaussian(d, d)))
    return u, v


def teacher_matrices(u: np.ndarray, v: np.ndarray, singular_values) -> np.ndarray:
    """M = U diag(m) V^T, `singular_values` (d,) or (samples, d)."""
    m = np.broadcast_to(np.asarray(singular_values, dtype=float), u.shape[:-1])
    return (u * m[..., None, :]) @ np.swapaxes(v, -1, -2)


def initial_weights(seed: int, study: str, width: int, d: int, depth: int, init_exponent: float,
                    start: int, stop: int) -> list[np.ndarray]:
    """W_1 (w x d), W_2 .. W_(L-1) (w x w), W_L (d x w) of samples [start, stop): iid N(0,
    w^(-gamma)) entries, gamma = `init_exponent`, from the streams `init/depth=L/layer=i` at width
    w (the same Z_i for every gamma)."""
    shapes = [(width, d)] + [(width, width)] * (depth - 2) + [(d, width)]
    scale = float(width) ** (-init_exponent / 2)
    return [scale * sample_draws(seed, study, width, f"init/depth={depth}/layer={i}", start, stop,
                                 _gaussian(*shape))
            for i, shape in enumerate(shapes, 1)]
