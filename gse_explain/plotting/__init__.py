"""Matplotlib figures for the analysis layer: example panels (Figs. 3–4), curves with bands (Fig. 2), saving.

Every plotting function takes an optional ``ax``/``axes`` and returns ``(fig, axes)``. In scripts and tests
use a non-interactive backend (``MPLBACKEND=Agg``).
"""

from .saving import save_figure
from .is_curves import plot_curves, plot_is_curves
from .overlays import (
    PANELS,
    perturbation_rgb,
    plot_examples,
    show_cam,
    show_clusters,
    show_image,
    show_mask,
    show_perturbation,
)

__all__ = [
    "PANELS",
    "perturbation_rgb",
    "plot_curves",
    "plot_is_curves",
    "plot_examples",
    "save_figure",
    "show_cam",
    "show_clusters",
    "show_image",
    "show_mask",
    "show_perturbation",
]
