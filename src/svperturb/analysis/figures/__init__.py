"""The report's figures, one module per family of studies. Each module lists FIGURES:
{file stem: (draw, needs_fits)}; `draw(results)` or `draw(results, fits)` returns a matplotlib
Figure, or None when the study it needs was not run. Their captions are analysis.captions."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from svperturb.analysis.figures import (
    deep_linear,
    derivative_data,
    escape,
    hard_bounds,
    paths,
    random_layer,
    relu,
    sharpness,
    smooth_hessian,
)

FIGURES: dict = {**random_layer.FIGURES, **hard_bounds.FIGURES, **relu.FIGURES, **derivative_data.FIGURES,
                 **paths.FIGURES, **sharpness.FIGURES, **escape.FIGURES,
                 **smooth_hessian.FIGURES, **deep_linear.FIGURES}
