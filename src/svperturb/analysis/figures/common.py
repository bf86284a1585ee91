"""Plot helpers shared by the figure modules."""

from __future__ import annotations

from collections.abc import Callable

import matplotlib.pyplot as plt
import numpy as np


def width_colours(widths):
    cmap = plt.get_cmap("viridis")
    return {n: cmap(i / max(len(widths) - 1, 1)) for i, n in enumerate(sorted(widths))}


def hist_by_width(ax, points, values: Callable, bins, label_unit=""):
    colours = width_colours([p.point["width"] for p in points])
    for data in sorted(points, key=lambda p: p.point["width"]):
        x = np.asarray(values(data), dtype=float)
        x = x[np.isfinite(x)]
        n = data.point["width"]
        ax.hist(x, bins=bins, density=True, histtype="step", lw=1.3, color=colours[n],
                label=f"n = {n}{label_unit} (N = {len(x):,})")
