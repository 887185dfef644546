"""The ``explain`` study: does an attack's interpretability score (IS) depend on which explanation it is scored
against? ``python -m gse_explain.figures explain [--on demo|cifar10] [--explanations a,b,...] [--percentile P]``.

The study's runs are exactly the base study's (``--on``, default ``demo``) targeted runs of the main model, with
the same store keys and configurations, so the base study's stores in ``runs/<base>`` are reused and nothing
is attacked again (missing ones are run as the base study would). For every explanation method (default: the
paper's ASM and captum's seven attributions, :data:`DEFAULT_EXPLANATIONS`) it computes the IS of every stored
row (all rows with δ ≠ 0, as Fig. 2) against that method's map of the clean image for the attack's target
(:func:`~gse_explain.analysis.interpretability_curves` with ``saliency=``; maps cached in each store's
``explanations/`` folder, so a redraw only reads them). It writes into ``figures/explain-<base>/``:

- ``explain_agreement.png`` / ``.pdf``: a heatmap of the mean IS at P (default 80) for attacks (rows, ordered by
  their mean over methods) × methods, each cell annotated with its mean and 95 % t-band over rows; beside it
  one IS-versus-P panel per method. Chance (δ spread evenly over the image) is √(1 − P/100).
- ``explain_agreement.md``: the heatmap's numbers as a Markdown table;
- ``explain_is_curves.csv`` (method, attack, percentile, n, mean, std, band) and ``explain_is_per_example.csv``
  (every row's IS for every method and percentile).
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from ..analysis import DEFAULT_PERCENTILES, interpretability_curves
from ..analysis.explanations import CAPTUM_METHODS, get_explanation
from ..plotting.heatmaps import agreement_matrix, plot_agreement
from .registry import FigureContext, register_figure
from .studies import Study, StudyOptions, build_study, register_study

__all__ = ["DEFAULT_EXPLANATIONS", "DEFAULT_PERCENTILE", "agreement_markdown", "agreement_tables", "draw_explain",
           "explain_study"]

#: The methods the study compares by default: the paper's ASM and captum's attributions.
DEFAULT_EXPLANATIONS = ("asm", *CAPTUM_METHODS)
DEFAULT_PERCENTILE = 80.0


def _settings(options: StudyOptions) -> tuple[tuple[str, ...], float]:
    methods = tuple(options.explanations or DEFAULT_EXPLANATIONS)
    for method in methods:
        get_explanation(method)  # ValueError naming the registered methods
    if len(set(methods)) != len(methods):
        raise ValueError(f"--explanations lists a method twice: {', '.join(methods)}")
    percentile = DEFAULT_PERCENTILE if options.percentile is None else float(options.percentile)
    if not 0 < percentile < 100:
        raise ValueError(f"--percentile must be in (0, 100) for the IS; got {percentile:g}")
    return methods, percentile


@register_study("explain")
def explain_study(options: StudyOptions) -> Study:
    methods, percentile = _settings(options)
    # The base study exactly as `python -m gse_explain.figures <base>` builds it (same store keys and configs);
    # the explain-only options are not the base study's.
    base = build_study(options.on or "demo", replace(options, on=None, explanations=None, percentile=None))
    runs = tuple(base.group("main", targeted=True))
    if not runs:
        raise ValueError(f"study {base.name!r} has no targeted runs of its main model to explain")
    return Study(
        f"explain-{base.name}",
        f"IS of the {base.name} study's targeted attacks against {len(methods)} explanation methods "
        f"({', '.join(methods)}) at P = {percentile:g}; reuses the stores of runs/{base.runs_name or base.name}.",
        runs, base.main_label, notes=base.notes, figures=("explain",), runs_name=base.runs_name or base.name,
    )


def agreement_tables(runs, model, methods=DEFAULT_EXPLANATIONS, percentile: float = DEFAULT_PERCENTILE, *,
                     batch_size: int = 64, device="cpu", cache=True, log=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(per_example, curves)`` of every (method, attack): the IS of each stored row against each method's map.

    Args:
        runs: ``{attack: store}`` of targeted runs on ``model``.
        methods: explanation names (or callables); percentile: the heatmap's P, added to the paper's percentiles.
        cache: see :func:`~gse_explain.analysis.interpretability_table`; log: a stream for one line per method.

    Returns:
        Tables with a leading ``method`` column: the per-example table and the curves (``n``, ``mean``, ``std``,
        ``band_low``, ``band_high`` per attack and percentile; 95 % Student-t band over rows).
    """
    percentiles = sorted({*DEFAULT_PERCENTILES, float(percentile) if not float(percentile).is_integer() else int(percentile)})
    tables, curves = [], []
    for method in methods:
        start = time.perf_counter()
        table, curve = interpretability_curves(runs, model, percentiles=percentiles, saliency=method,
                                               batch_size=batch_size, device=device, cache=cache)
        name = method if isinstance(method, str) else getattr(method, "__name__", "custom")
        table.insert(0, "method", name)
        curve.insert(0, "method", name)
        tables.append(table)
        curves.append(curve)
        if log is not None:
            print(f"  {name}: {len(table) // len(percentiles)} rows in {time.perf_counter() - start:.1f} s", file=log, flush=True)
    return pd.concat(tables, ignore_index=True), pd.concat(curves, ignore_index=True)


def at_percentile(curves: pd.DataFrame, percentile: float) -> pd.DataFrame:
    """The rows of ``curves`` at ``percentile`` (one per method and attack)."""
    return curves[curves["percentile"].astype(float) == float(percentile)].reset_index(drop=True)


def agreement_markdown(curves: pd.DataFrame, percentile: float, label: str = "") -> str:
    """The heatmap's numbers as Markdown: attacks (by mean) × methods, ``mean [band]``, chance level stated."""
    summary = at_percentile(curves, percentile)
    means, _ = agreement_matrix(summary)
    cells = summary.set_index(["attack", "method"])
    lines = [f"IS at P = {percentile:g}{f' ({label})' if label else ''}: mean [95 % band] over rows; "
             f"chance √(1 − P/100) = {math.sqrt(1 - percentile / 100):.3f}; rows ordered by their mean over methods.", "",
             "| attack | " + " | ".join(means.columns) + " | mean | n |", "|---" * (len(means.columns) + 3) + "|"]
    for attack in means.index:
        row = [f"{cells.loc[(attack, m), 'mean']:.3f} [{cells.loc[(attack, m), 'band_low']:.3f}, "
               f"{cells.loc[(attack, m), 'band_high']:.3f}]" for m in means.columns]
        count = int(cells.loc[(attack, means.columns[0]), "n"])
        lines.append(f"| {attack} | " + " | ".join(row) + f" | {means.loc[attack].mean():.3f} | {count} |")
    return "\n".join(lines) + "\n"


@register_figure("explain", "IS against other explanation methods (attacks × methods heatmap)", order=75)
def draw_explain(context: FigureContext) -> list[Path]:
    if not str(context.study.name).startswith("explain"):
        return context.skip("drawn by the explain study (python -m gse_explain.figures explain [--on STUDY])")
    if not context.main_targeted:
        return context.skip("the study has no targeted runs")
    methods, percentile = _settings(context.study.options or StudyOptions())
    model = context.model_of(context.main_targeted)
    per_example, curves = agreement_tables(context.main_targeted, model, methods, percentile, device=context.device,
                                           log=context.log)
    fig, _ = plot_agreement(at_percentile(curves, percentile), curves, percentile, methods=list(methods),
                            title=f"Interpretability score against {len(methods)} explanations ({context.study.main_label})")
    files = context.save(fig, "explain_agreement")
    files.append(context.write_text("explain_agreement.md", agreement_markdown(curves, percentile, context.study.main_label)))
    files.append(context.write_csv(curves, "explain_is_curves.csv"))
    files.append(context.write_csv(per_example, "explain_is_per_example.csv"))
    return files
