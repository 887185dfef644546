"""The explanation-agreement figure: a seaborn heatmap of the interpretability score (IS) at one percentile for
attacks × explanation methods, and the per-method IS curves beside it.

Both only draw; the numbers come from :func:`gse_explain.figures.explain.agreement_tables` (or any table with the
columns named below, e.g. read back from its CSV).
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pandas as pd

from .is_curves import plot_is_curves
from .style import attack_label

__all__ = ["agreement_matrix", "plot_agreement", "plot_agreement_heatmap"]

_COLUMNS = ("attack", "method", "mean", "band_low", "band_high")


def agreement_matrix(summary: pd.DataFrame, methods=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(means, labels)``: attacks × methods frames of the mean IS and of the cell text ``"0.62\\n[0.55, 0.69]"``.

    ``summary`` has one row per (attack, method) (at one percentile) with the columns ``attack``, ``method``,
    ``mean``, ``band_low``, ``band_high``. Rows are ordered by their mean over the methods, highest first;
    columns follow ``methods`` (default: their order in ``summary``).
    """
    missing = [c for c in _COLUMNS if c not in summary.columns]
    if missing:
        raise ValueError(f"the agreement summary lacks the columns {missing} (it needs {list(_COLUMNS)})")
    if summary.duplicated(["attack", "method"]).any():
        raise ValueError("the agreement summary must have one row per (attack, method): select one percentile first")
    methods = list(dict.fromkeys(summary["method"])) if methods is None else list(methods)
    means = summary.pivot(index="attack", columns="method", values="mean").reindex(columns=methods)
    means = means.loc[means.mean(axis=1).sort_values(ascending=False, kind="stable").index]
    cells = summary.set_index(["attack", "method"])
    labels = pd.DataFrame(
        [[_cell(cells, attack, method) for method in methods] for attack in means.index], index=means.index, columns=methods)
    return means, labels


def _cell(cells: pd.DataFrame, attack, method) -> str:
    if (attack, method) not in cells.index:
        return ""
    row = cells.loc[(attack, method)]
    return f"{row['mean']:.2f}\n[{row['band_low']:.2f}, {row['band_high']:.2f}]"


def plot_agreement_heatmap(summary: pd.DataFrame, percentile: float, ax=None, *, methods=None, title: str | None = None,
                           cmap: str = "viridis"):
    """Heatmap of the mean IS at ``percentile`` per attack (rows, by mean) and explanation method (columns),
    each cell annotated with its mean and its band; the chance level √(1 − P/100) in the colour bar and title.

    Returns ``(fig, ax)``.
    """
    import seaborn as sns

    means, labels = agreement_matrix(summary, methods)
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.25 * means.shape[1] + 2.0, 0.75 * means.shape[0] + 1.5))
    else:
        fig = ax.figure
    chance = math.sqrt(1 - float(percentile) / 100)
    sns.heatmap(means.astype(float), annot=labels.to_numpy(), fmt="", vmin=0.0, vmax=1.0, cmap=cmap, ax=ax,
                annot_kws={"fontsize": 7}, linewidths=0.5, cbar_kws={"label": f"IS at P = {percentile:g}"})
    colorbar = ax.collections[0].colorbar
    colorbar.ax.axhline(chance, color="white", linestyle="--", linewidth=1.2)
    ax.set_yticklabels([attack_label(str(a)) for a in means.index], rotation=0)
    ax.set_xticklabels(list(means.columns), rotation=35, ha="right")
    ax.set_xlabel("explanation method")
    ax.set_ylabel("attack (ordered by mean IS)")
    band = ""
    if "level" in summary.columns and len(summary):
        band = f"; cells: mean [{float(summary['level'].iloc[0]):.0%} band]"
    ax.set_title(title or f"IS at P = {percentile:g} (chance √(1 − P/100) = {chance:.2f}, dashed on the scale){band}",
                 fontsize=9)
    return fig, ax


def plot_agreement(summary_at_p: pd.DataFrame, curves: pd.DataFrame, percentile: float, *, methods=None,
                   title: str | None = None):
    """The whole figure: the heatmap (left) and one IS-curve panel per method (right, a grid).

    Args:
        summary_at_p: one row per (attack, method) at ``percentile`` (see :func:`agreement_matrix`).
        curves: one row per (method, attack, percentile) with ``method`` plus the columns of
            :func:`~gse_explain.plotting.plot_is_curves`.
        percentile: P of the heatmap.

    Returns:
        ``(fig, {"heatmap": ax, method: ax, ...})``.
    """
    methods = list(dict.fromkeys(summary_at_p["method"])) if methods is None else list(methods)
    columns = min(4, max(1, math.ceil(math.sqrt(len(methods)))))
    rows = math.ceil(len(methods) / columns)
    attacks = summary_at_p["attack"].nunique()
    fig = plt.figure(figsize=(1.2 * len(methods) + 2.5 + 2.6 * columns, max(0.8 * attacks + 2.0, 2.4 * rows)))
    grid = fig.add_gridspec(rows, 1 + columns, width_ratios=[max(3.0, 0.45 * len(methods))] + [1.0] * columns,
                            wspace=0.45, hspace=0.55)
    axes = {"heatmap": fig.add_subplot(grid[:, 0])}
    plot_agreement_heatmap(summary_at_p, percentile, axes["heatmap"], methods=methods)
    for index, method in enumerate(methods):
        ax = fig.add_subplot(grid[index // columns, 1 + index % columns])
        plot_is_curves(curves[curves["method"] == method].drop(columns="method"), ax, title=method)
        ax.axvline(float(percentile), color="0.3", linewidth=0.8, linestyle=":")
        ax.tick_params(labelsize=7)
        ax.set_xlabel("P", fontsize=7)
        ax.set_ylabel("IS" if index % columns == 0 else "", fontsize=7)
        if index:
            legend = ax.get_legend()
            if legend is not None:
                legend.remove()
        else:
            plt.setp(ax.get_legend().get_texts(), fontsize=6)
        axes[method] = ax
    if title:
        fig.suptitle(title, y=1.0)
    return fig, axes

