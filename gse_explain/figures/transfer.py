"""The ``transfer`` study (the paper's Tab. 8): untargeted adversarial examples made on each source model,
classified by each target model, per attack.

Runs: the base study's (``--on demo`` or ``cifar10``) main untargeted runs on its model, reused from the base
study's runs folder, plus the same runs (same data, images, budgets) on every other model (group ``source``).
Every model is both a source and a target. Defaults: the demo: EfficientNet-Lite0 (main) and Lite1; cifar10:
the authors' ResNet20 (``--weights``, main) and the akamaster ResNet20 and ResNet56 found beside it
(``--transfer-models`` names others). The rates (:mod:`gse_explain.analysis.transfer`) are computed from the
stored adversarial images when drawing; each source attacks its own first N correctly classified images, so
the sources' image sets overlap but need not be equal.

Outputs (figure ``transfer``): ``transfer_asr.md`` / ``.tex`` (the matrices), ``transfer_asr.csv`` (every
rate, long format) and ``transfer_asr_heatmap.png`` / ``.pdf`` (one heatmap per attack).
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from ..analysis.transfer import asr_matrix, matrix_text, transfer_matrix
from ..evaluation.tables import latex_escape
from ..plotting.style import attack_label
from .registry import FigureContext, register_figure
from .studies import STUDIES, Study, StudyOptions, _by_group, register_study

__all__ = ["AKAMASTER_FILES", "BASE_STUDIES", "draw_transfer", "model_label", "transfer_heatmap", "transfer_study"]

BASE_STUDIES = ("demo", "cifar10")
#: cifar10's default other models: {model: weights file name}, looked up in the folder of ``--weights``.
AKAMASTER_FILES = {"resnet20": "resnet20_cifar10_akamaster.th", "resnet56": "resnet56_cifar10_akamaster.th"}
DEMO_MODELS = ("efficientnet_lite1",)


def model_label(model: str, weights: str | None) -> str:
    """A model's name in the matrices: ``model``, plus the weights file's stem when there is one."""
    return model if weights in (None, "DEFAULT", "random") else f"{model} ({Path(weights).stem})"


def _tag(weights: str | None) -> str:
    return "" if weights in (None, "DEFAULT", "random") else re.sub(r"[^A-Za-z0-9_.-]", "_", Path(weights).stem)


def _parse_model(text: str) -> tuple[str, str | None]:
    model, sep, weights = text.partition("=")
    if not model.strip() or (sep and not weights.strip()):
        raise ValueError(f"--transfer-models takes MODEL or MODEL=WEIGHTS entries; got {text!r}")
    weights = weights.strip() or None
    if weights not in (None, "DEFAULT", "random") and not Path(weights).exists():
        raise ValueError(f"--transfer-models {text}: the weights file {weights} does not exist")
    return model.strip(), weights


def _other_models(on: str, options: StudyOptions) -> list[tuple[str, str | None]]:
    if options.transfer_models:
        return [_parse_model(text) for text in options.transfer_models]
    if on == "demo":
        return [(model, None) for model in DEMO_MODELS]
    folder = Path(options.weights).parent
    found = [(model, str(folder / name)) for model, name in AKAMASTER_FILES.items() if (folder / name).exists()]
    if not found:
        raise ValueError(f"transfer --on cifar10 found none of {', '.join(AKAMASTER_FILES.values())} beside --weights "
                         f"({folder}); name the other models with --transfer-models MODEL=WEIGHTS,...")
    return found



def _notes(base: Study) -> tuple[str, ...]:
    """The base study's notes that concern this study's runs (not its Figure 5)."""
    return tuple(note for note in base.notes if "Figure 5" not in note)


@register_study("transfer")
def transfer_study(options: StudyOptions) -> Study:
    on = options.on or "demo"
    if on not in BASE_STUDIES:
        raise ValueError(f"transfer --on must be one of {', '.join(BASE_STUDIES)}; got {on!r}")
    base = STUDIES[on](replace(options, on=None, transfer_models=None, table1_images=0))
    main = base.group("main", targeted=False)
    others = _other_models(on, options)
    main_label = model_label(main[0].model, main[0].config.weights)
    labels = [main_label] + [model_label(m, w) for m, w in others]
    if len(set(labels)) != len(labels):
        raise ValueError(f"two transfer models share a name ({', '.join(labels)}): give each its own weights file")
    runs = list(main)
    for model, weights in others:
        runs += [spec.with_config("source", _tag(weights), model=model, weights=weights) for spec in main]
    return Study(
        "transfer",
        f"Transferability (Tab. 8) on {on}: untargeted examples of each attack made on each of {', '.join(labels)}, "
        "classified by every other; the base model's runs are the base study's.",
        _by_group(runs), base.main_label, figures=("transfer",), runs_name=base.runs_name or base.name,
        notes=(*_notes(base), "ASR on a target = share of the source's successful adversarial examples the target "
               "misclassifies; the CSV also has it over all attacked images and over those the target classifies "
               "correctly when clean, and each target's clean accuracy on the source's images."),
    )


def transfer_heatmap(table, value: str = "asr", axes=None):
    """One seaborn heatmap per attack of ``value`` (source rows × target columns, shares in [0, 1] shown as %).

    Args:
        table: :func:`~gse_explain.analysis.transfer.transfer_matrix`'s long table.
        axes: a sequence of matplotlib axes, one per attack (default: a new figure with one row).

    Returns:
        ``(fig, axes)``.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    attacks = list(dict.fromkeys(table["attack"]))
    if axes is None:
        size = len(dict.fromkeys(table["target"]))
        fig, axes = plt.subplots(1, len(attacks), figsize=(2.5 + (0.6 + 0.9 * size) * len(attacks), 2.0 + 0.8 * size),
                                 squeeze=False, constrained_layout=True)
        axes = list(axes[0])
    else:
        axes = list(axes)
        fig = axes[0].figure
    if len(axes) != len(attacks):
        raise ValueError(f"transfer_heatmap needs one axis per attack ({len(attacks)}); got {len(axes)}")
    for ax, attack in zip(axes, attacks):
        matrix = asr_matrix(table, attack, value) * 100
        sns.heatmap(matrix, ax=ax, vmin=0, vmax=100, cmap="rocket_r", annot=True, fmt=".0f", cbar=ax is axes[-1],
                    cbar_kws={"label": f"{value} (%)"} if ax is axes[-1] else None, square=True)
        ax.set_title(attack_label(attack))
        ax.set_xlabel("target")
        ax.set_ylabel("source" if ax is axes[0] else "")
        ax.set_xticklabels(ax.get_xticklabels(), rotation=35, ha="right")
        ax.tick_params(axis="y", labelrotation=0)
        if ax is not axes[0]:  # same sources in every panel: name them once
            ax.set_yticklabels([])
    return fig, axes


_EXPLAINED = {"asr": "share of the source's successful adversarial examples the target misclassifies",
              "asr_clean_correct": "the same over the images the target classifies correctly when clean",
              "asr_all": "share of all the source's attacked images whose adversarial example the target misclassifies",
              "clean_accuracy": "the target's accuracy on the source's clean images"}


def _tables(table, fmt: str, label: str) -> str:
    """The four matrices of ``table`` as Markdown or LaTeX tables, then (Markdown) the attacked image counts."""
    parts = []
    for value, explained in _EXPLAINED.items():
        caption = f"Transferability ({label}), {value}: {explained}."
        body = matrix_text(table, fmt, value)
        parts.append(f"**{caption}**\n\n{body}\n" if fmt == "markdown" else
                     "\\begin{table}[t]\n\\centering\n\\caption{" + latex_escape(caption) + "}\n" + body + "\n\\end{table}\n")
    if fmt == "markdown":
        counts = table.drop_duplicates(["attack", "source"])
        parts.append("Attacked (images; successful on the source): " + "; ".join(
            f"{attack_label(a)} on {s}: {r}; {n}" for a, s, r, n in
            zip(counts["attack"], counts["source"], counts["rows"], counts["successful"])) + ".\n")
    return "\n".join(parts)


@register_figure("transfer", "transferability: each source's adversarial examples on each target (Tab. 8)", order=70)
def draw_transfer(context: FigureContext) -> list[Path]:
    study = context.study
    specs = [s for s in study.runs if s.group in ("main", "source") and not s.targeted]
    if not any(s.group == "source" for s in specs):
        return context.skip("the study has no other source models (python -m gse_explain.figures transfer)")
    sources: dict = {}
    models: dict = {}
    for spec in specs:
        label = model_label(spec.model, spec.config.weights)
        run = context.runs[spec.key]
        sources.setdefault(spec.attack, {})[label] = run
        if label not in models:
            models[label] = context.model_of({spec.key: run})
    table = transfer_matrix(sources, models)
    label = f"untargeted, {study.main_label.split(',')[-1].strip()}"
    files = [context.write_csv(table, "transfer_asr.csv"),
             context.write_text("transfer_asr.md", _tables(table, "markdown", label)),
             context.write_text("transfer_asr.tex", _tables(table, "latex", label))]
    fig, _ = transfer_heatmap(table)
    fig.suptitle(f"Transfer ASR: source's successful untargeted examples misclassified by the target ({study.main_label})")
    return files + context.save(fig, "transfer_asr_heatmap")
