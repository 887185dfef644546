"""Curves with confidence bands per attack: interpretability score over P (the paper's Fig. 2), or CAM
alignment over q, from the aggregated tables of :mod:`gse_explain.analysis`."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

__all__ = ["plot_curves"]

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
        (line,) = ax.plot(group[x], group["mean"], marker="o", markersize=3, label=str(attack))
        if band:
            ax.fill_between(group[x], group["band_low"], group["band_high"], color=line.get_color(), alpha=0.2, linewidth=0)
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
