"""Curves with confidence bands per attack: interpretability score over P (the paper's Fig. 2), or CAM
alignment over q, from the aggregated tables of :mod:`gse_explain.analysis`."""

from __future__ import annotations

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
    curves: pd.DataFrame,
    ax=None,
    *,
    chance: bool = True,
    title: str | None = None,
    band: bool = True,
):
    """Draw an interpretability-score table: IS versus percentile P, one line and band per attack (Fig. 2).

    This only draws. Compute the table with ``gse_explain.analysis.interpretability_curves(runs, model)``
    (it returns ``(per_example, curves)``) and write it with ``gse_explain.analysis.write_csv``.

    Args:
        curves: the curves table of ``interpretability_curves`` / ``aggregate_curves`` (or read back from
            its CSV): one row per (attack, percentile) with columns ``attack``, ``percentile`` (P in
            (0, 100)), ``mean``, ``band_low``, ``band_high`` (scores in [0, 1]), optionally ``level`` and
            ``band`` (named in the legend's title).
        ax: axes to draw into (a new figure otherwise).
        chance: draw √(1 − P/100), the score of a perturbation spread evenly over the image, dashed grey.
        title, band: see :func:`plot_curves`.

    Returns:
        ``(fig, ax)``; the y axis spans [0, 1].

    Raises:
        TypeError: ``curves`` is not a DataFrame (e.g. stores).
    """
    if not isinstance(curves, pd.DataFrame):
        raise TypeError(f"plot_is_curves draws a curves table (a DataFrame), not {type(curves).__name__}; compute the "
                        "table with gse_explain.analysis.interpretability_curves(...) first (it returns (per_example, curves))")
    fig, ax = plot_curves(curves, ax, x="percentile", band=band, title=title)
    ax.set_ylim(0.0, 1.0)  # scores live in [0, 1]; t-bands of few examples can reach outside
    if chance and len(curves):
        grid = np.linspace(float(curves["percentile"].min()), float(curves["percentile"].max()), 50)
        ax.plot(grid, np.sqrt(1 - grid / 100), linestyle="--", color="0.5", linewidth=1, label="chance √(1−P/100)")
        handles, labels = ax.get_legend_handles_labels()
        legend = ax.get_legend()
        ax.legend(handles, labels, title=legend.get_title().get_text() if legend else None, fontsize=8, title_fontsize=8)
    return fig, ax
