"""Curves with confidence bands per attack: interpretability score over P (the paper's Fig. 2), or CAM
alignment over q, from the aggregated tables of :mod:`gse_explain.analysis`."""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .style import attack_color, attack_label

__all__ = ["plot_curves", "plot_is_curves"]

_REQUIRED = ("attack", "mean", "band_low", "band_high")


def plot_curves(
    curves: pd.DataFrame,
    ax=None,
    *,
    x: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    band: bool = True,
    title: str | None = None,
):
    """Mean line and shaded confidence band for every attack of an aggregated table.

    Args:
        curves: output of ``aggregate_curves`` / ``interpretability_curves`` (x = ``percentile``) or
            ``cam_alignment_curves`` (x = ``top_percent``): columns ``attack``, x, ``mean``, ``band_low``,
            ``band_high``.
        ax: axes to draw into (a new figure otherwise).
        x: the x column (default: ``percentile`` if present, else ``top_percent``).
        xlabel, ylabel, title: labels (defaults name the quantity).
        band: shade [band_low, band_high] (the band's level and method are in the table).

    Every attack has its fixed colour and display name (:mod:`gse_explain.plotting.style`).

    Returns:
        ``(fig, ax)``.
    """
    if x is None:
        x = "percentile" if "percentile" in curves.columns else "top_percent"
    missing = [c for c in (*_REQUIRED, x) if c not in curves.columns]
    if missing:
        raise ValueError(f"curves lacks the columns {missing}; pass the output of aggregate_curves (it has {list(curves.columns)})")
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.0, 3.0))
    else:
        fig = ax.figure
    for attack, group in curves.groupby("attack", sort=False):
        group = group.sort_values(x)
        colour = attack_color(str(attack))
        ax.plot(group[x], group["mean"], marker="o", markersize=3, color=colour, label=attack_label(str(attack)))
        if band:
            ax.fill_between(group[x], group["band_low"], group["band_high"], color=colour, alpha=0.2, linewidth=0)
    is_curve = x == "percentile"
    ax.set_xlabel(xlabel or ("percentile P" if is_curve else "top q % of the CAM"))
    ax.set_ylabel(ylabel or ("interpretability score" if is_curve else "share of perturbation energy"))
    if title:
        ax.set_title(title)
    if "level" in curves.columns and band and len(curves):
        ax.legend(title=f"{float(curves['level'].iloc[0]):.0%} band ({curves['band'].iloc[0]})" if "band" in curves.columns else None,
                  fontsize=8, title_fontsize=8)
    else:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig, ax


def plot_is_curves(
    stores_or_curves,
    ax=None,
    *,
    model=None,
    chance: bool = True,
    csv: str | os.PathLike | None = None,
    title: str | None = None,
    band: bool = True,
    **curve_options,
):
    """Interpretability score versus percentile P, one line and band per attack (the paper's Fig. 2).

    Args:
        stores_or_curves: a curves table (from ``interpretability_curves`` / ``aggregate_curves``, or read
            back from its CSV) or targeted runs to compute it from: ``{name: store path or RunResults}``,
            or a sequence of them (named by their attack).
        ax: axes to draw into (a new figure otherwise).
        model: the model the runs attacked (None: rebuilt from each store's configuration).
        chance: draw √(1 − P/100), the score of a perturbation spread evenly over the image, dashed grey.
        csv: also write the plotted curves to this CSV file (atomic; replaces an existing file, since the
            curves are regenerable).
        title, band: see :func:`plot_curves`.
        **curve_options: passed to ``interpretability_curves`` (``percentiles``, ``successful_only``,
            ``level``, ``band``, ``by_image``, ...) when runs are given.

    Returns:
        ``(fig, ax)``; the curves table is attached as ``ax.curves`` for further use.
    """
    if isinstance(stores_or_curves, pd.DataFrame):
        if curve_options:
            raise TypeError(f"options {sorted(curve_options)} only apply when stores are given, not a curves table")
        curves = stores_or_curves
    else:
        from ..analysis import interpretability_curves

        _, curves = interpretability_curves(stores_or_curves, model, **curve_options)
    fig, ax = plot_curves(curves, ax, x="percentile", band=band, title=title)
    ax.set_ylim(0.0, 1.0)  # scores live in [0, 1]; t-bands of few examples can reach outside
    if chance and len(curves):
        grid = np.linspace(float(curves["percentile"].min()), float(curves["percentile"].max()), 50)
        ax.plot(grid, np.sqrt(1 - grid / 100), linestyle="--", color="0.5", linewidth=1, label="chance √(1−P/100)")
        handles, labels = ax.get_legend_handles_labels()
        legend = ax.get_legend()
        ax.legend(handles, labels, title=legend.get_title().get_text() if legend else None, fontsize=8, title_fontsize=8)
    if csv is not None:
        from ..analysis.export import write_csv

        write_csv(curves, csv, overwrite=True)
    ax.curves = curves
    return fig, ax
