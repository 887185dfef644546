"""The paper's outputs as registered figures (:mod:`.registry`), in drawing order:

- ``figure1``: ``figure1_gse_examples`` (GSE examples, untargeted and targeted GSE runs of the main model);
- ``figure2``: ``figure2_interpretability`` + ``figure2_is_curves.csv`` / ``figure2_is_per_example.csv``;
- ``figure3``, ``figure4``: ``figure3_untargeted_examples``, ``figure4_targeted_examples``;
- ``figure5``: ``figure5_interpretability_second_model`` + its two CSVs (when the study has a second model);
- ``tables``: ``table1`` … ``table4`` as ``.md`` and ``.tex`` (those the study's runs allow).

An output whose runs are missing prints ``  skipped: <why>`` and writes nothing.
"""

from __future__ import annotations

from pathlib import Path

from .paper_figures import figure_attack_examples, figure_gse_examples, figure_interpretability
from .paper_tables import paper_tables
from .registry import FigureContext, register_figure

__all__ = ["draw_figure1", "draw_figure2", "draw_figure3", "draw_figure4", "draw_figure5", "draw_tables"]


@register_figure("figure1", "GSE examples", order=10)
def draw_figure1(context: FigureContext) -> list[Path]:
    gse_runs = {f"gse-{mode}": run for mode, run in (("u", context.main_untargeted.get("gse")),
                                                    ("t", context.main_targeted.get("gse"))) if run is not None}
    if not gse_runs:
        return context.skip("the study has no GSE run")
    fig, _ = figure_gse_examples(gse_runs, context.model_of(gse_runs), device=context.device)
    fig.suptitle(f"GSE adversarial examples\n({context.study.main_label})", fontsize=9)
    return context.save(fig, "figure1_gse_examples")


def _interpretability(context: FigureContext, runs: dict, stem: str, label: str) -> list[Path]:
    """An IS figure ``<stem>`` and its curves and per-example CSVs, named ``<prefix>_is_*.csv`` after the
    stem's first word (``figure2_interpretability`` → ``figure2_is_curves.csv``)."""
    if not runs:
        return context.skip(f"no targeted runs for {stem}")
    fig, _, table, curves = figure_interpretability(runs, context.model_of(runs), title=f"Interpretability score ({label})",
                                                    device=context.device)
    files = context.save(fig, stem)
    prefix = stem.split("_")[0]
    files.append(context.write_csv(curves, f"{prefix}_is_curves.csv"))
    files.append(context.write_csv(table, f"{prefix}_is_per_example.csv"))
    return files


@register_figure("figure2", "interpretability score, targeted attacks", order=20)
def draw_figure2(context: FigureContext) -> list[Path]:
    return _interpretability(context, context.main_targeted, "figure2_interpretability", context.study.main_label)


def _examples(context: FigureContext, runs: dict, stem: str, what: str) -> list[Path]:
    if not runs:
        return context.skip(f"no {what} runs")
    examples = getattr(context.study, "examples", 1) or 1
    fig, _, _ = figure_attack_examples(runs, context.model_of(runs), num_examples=examples, device=context.device)
    fig.suptitle(f"{what.capitalize()} examples per attack ({context.study.main_label})")
    return context.save(fig, stem)


@register_figure("figure3", "untargeted examples per attack", order=30)
def draw_figure3(context: FigureContext) -> list[Path]:
    return _examples(context, context.main_untargeted, "figure3_untargeted_examples", "untargeted")


@register_figure("figure4", "targeted examples per attack", order=40)
def draw_figure4(context: FigureContext) -> list[Path]:
    return _examples(context, context.main_targeted, "figure4_targeted_examples", "targeted")


@register_figure("figure5", "interpretability score on the second model", order=50)
def draw_figure5(context: FigureContext) -> list[Path]:
    study = context.study
    if not context.second_targeted:
        return context.skip("the study has no second model (" + "; ".join(study.notes or ("see --second-model",)) + ")")
    return _interpretability(context, context.second_targeted, "figure5_interpretability_second_model",
                             study.second_label or "second model")


@register_figure("tables", "Tables 1-4 (Markdown and LaTeX)", order=60)
def draw_tables(context: FigureContext) -> list[Path]:
    study = context.study
    rendered = paper_tables(context.main_untargeted, context.main_targeted, table1=context.table1 or None,
                            second_targeted=context.second_targeted or None, main_label=study.main_label.split(",")[0],
                            second_label=(study.second_label or "second").split(",")[0])
    files = []
    for name, texts in rendered.items():
        files.append(context.write_text(f"{name}.md", texts["markdown"]))
        files.append(context.write_text(f"{name}.tex", texts["latex"]))
    return files
