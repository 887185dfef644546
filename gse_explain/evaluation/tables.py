"""Render summaries as the paper's tables: Table 1 (untargeted and targeted side by side), Table 2
(untargeted), Table 3 (targeted best/average/worst) and Table 4 (time per image) layouts.

Both Markdown (printed by the CLI, pasted into READMEs) and LaTeX (booktabs) come from the same rows.
Summaries are the dictionaries of :mod:`gse_explain.evaluation.summary`; nothing is computed here.

Baseline variants: every table function takes ``variants={name: variant}`` (from :func:`attack_variant` of
each run); a row whose run used the GSE authors' port (``variant="reference"``) is labelled
"NAME (reference port)" (:func:`variant_label`), corrected rows keep their name.
"""

from __future__ import annotations

import math
import os
from typing import Mapping, Sequence

__all__ = [
    "attack_variant", "comparison_table", "latex_escape", "run_report", "targeted_table", "timing_table",
    "untargeted_table", "variant_label",
]

_HEADER = ["ASR", "ACP", "ANC", "ℓ2", "d2,0", "time/img (s)"]
_LATEX_HEADER = [r"ASR", r"ACP", r"ANC", r"$\ell_2$", r"$d_{2,0}$", r"time (s)"]


def _cells(row: Mapping[str, float]) -> list[str]:
    def fmt(value: float, spec: str) -> str:
        return "N/A" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)

    return [
        "N/A" if math.isnan(row["asr"]) else f"{100 * row['asr']:.1f}%",
        fmt(row["acp"], ".1f"),
        fmt(row["anc"], ".2f"),
        fmt(row["l2"], ".2f"),
        fmt(row["d20"], ".0f"),
        fmt(row["time"], ".3g"),
    ]


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters that occur in table cells and captions (e.g. "imagenet_adv", "100%")."""
    return "".join("\\" + ch if ch in "%&_#" else ch for ch in text)


def _render(header: list[str], rows: list[list[str]], fmt: str) -> str:
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    if fmt == "latex":
        escape = latex_escape
        numeric = sum(1 for cell in rows[0] if cell[:1].isdigit() or cell == "N/A") if rows else len(header) - 1
        lines = [r"\begin{tabular}{" + "l" * (len(header) - numeric) + "r" * numeric + "}", r"\toprule",
                 " & ".join(h if "$" in h else escape(h) for h in header) + r" \\", r"\midrule"]
        lines += [" & ".join(escape(c) for c in r) + r" \\" for r in rows]
        lines += [r"\bottomrule", r"\end{tabular}"]
        return "\n".join(lines)
    raise ValueError(f"fmt must be 'markdown' or 'latex'; got {fmt!r}")


def attack_variant(run) -> str | None:
    """The baseline variant a stored run used: ``"corrected"``, ``"reference"``, or None for attacks without
    the ``variant`` option (GSE, user attacks).

    ``run`` is a :class:`~gse_explain.evaluation.results.RunResults`, a :class:`~gse_explain.evaluation.store.ResultStore`,
    a store path or a manifest configuration dict. Read from the manifest's ``attack_variant``; a store made
    before it was recorded gives its explicit ``variant`` option, else ``"corrected"`` when its attack (as
    registered here) has the option: that is what those stores ran.
    """
    from ..attacks.registry import get_attack
    from ..attacks.variants import CORRECTED, VARIANTS, has_variant

    if isinstance(run, (str, os.PathLike)):
        from .store import ResultStore

        run = ResultStore.open(run)
    config = run if isinstance(run, Mapping) else run.config
    if config.get("attack_variant") is not None:
        return config["attack_variant"]
    option = dict(config.get("options") or {}).get("variant")
    if option in VARIANTS:
        return option
    try:
        spec = get_attack(config.get("attack"))
    except (ValueError, ImportError):
        return None
    return CORRECTED if has_variant(spec.config_class) else None


def variant_label(name: str, variant: str | None) -> str:
    """``name`` for corrected runs and attacks without variants; "name (reference port)" for reference runs."""
    return f"{name} (reference port)" if variant == "reference" else name


def _labelled(items: list, variants: Mapping[str, str | None] | None) -> list:
    """``(name, value)`` pairs with each name passed through :func:`variant_label` (``variants`` by name)."""
    return [(variant_label(name, (variants or {}).get(name)), value) for name, value in items]


def untargeted_table(summaries: Mapping[str, Mapping[str, float]] | Sequence[tuple[str, Mapping[str, float]]], fmt: str = "markdown",
                     *, variants: Mapping[str, str | None] | None = None) -> str:
    """Table 2 layout: one row per attack with ASR, ACP, ANC, ℓ2 ([-1, 1] scale), d2,0 and time.
    ``variants``: ``{name: variant}``; reference-variant rows are labelled "name (reference port)"."""
    items = _labelled(list(summaries.items()) if isinstance(summaries, Mapping) else list(summaries), variants)
    header = ["attack", *(_LATEX_HEADER if fmt == "latex" else _HEADER)]
    return _render(header, [[name, *_cells(row)] for name, row in items], fmt)


def targeted_table(summaries: Mapping[str, Mapping[str, Mapping[str, float]]] | Sequence[tuple[str, Mapping]], fmt: str = "markdown",
                   *, variants: Mapping[str, str | None] | None = None) -> str:
    """Table 3 layout: per attack, the best / average / worst case rows (``variants`` as for Table 2)."""
    items = _labelled(list(summaries.items()) if isinstance(summaries, Mapping) else list(summaries), variants)
    header = ["attack", "case", *(_LATEX_HEADER if fmt == "latex" else _HEADER)]
    rows = [[name, case, *_cells(cases[case])] for name, cases in items for case in ("best", "average", "worst")]
    return _render(header, rows, fmt)


def _items(summaries) -> list:
    return list(summaries.items()) if isinstance(summaries, Mapping) else list(summaries)


def comparison_table(untargeted: Mapping[str, Mapping[str, float]], targeted: Mapping[str, Mapping[str, Mapping[str, float]]],
                     fmt: str = "markdown", *, variants: Mapping[str, str | None] | None = None) -> str:
    """Table 1 layout: per attack, the untargeted row and the targeted average-case row side by side.

    An attack missing from one mode gets N/A cells there (attacks are listed in the order first seen).
    ``variants`` as for Table 2 (one variant per name: give the two modes' runs distinct names if they differ).
    """
    untargeted, targeted = _labelled(_items(untargeted), variants), _labelled(_items(targeted), variants)
    names = list(dict.fromkeys([name for name, _ in untargeted] + [name for name, _ in targeted]))
    untargeted, targeted = dict(untargeted), dict(targeted)
    missing = {"asr": math.nan, "acp": math.nan, "anc": math.nan, "l2": math.nan, "d20": math.nan, "time": math.nan}
    metric_header = _LATEX_HEADER if fmt == "latex" else _HEADER
    header = ["attack", *[f"U: {h}" for h in metric_header], *[f"T: {h}" for h in metric_header]]
    rows = [[name, *_cells(untargeted.get(name, missing)), *_cells(targeted.get(name, {}).get("average", missing))] for name in names]
    return _render(header, rows, fmt)


def timing_table(times: Mapping[str, Mapping[str, float]], columns: Sequence[str] | None = None, fmt: str = "markdown",
                 *, variants: Mapping[str, str | None] | None = None) -> str:
    """Table 4 layout: seconds per image (amortised over the batch), one row per attack, one column per setting.

    Args:
        times: ``{attack: {setting: seconds}}``, e.g. ``{"GSE": {"U resnet20": 0.58, "T resnet20": 0.5}}``.
        columns: the settings in column order (default: in the order first seen).
        variants: ``{attack: variant}``; reference-variant rows are labelled "attack (reference port)".
    """
    items = _labelled(_items(times), variants)
    if columns is None:
        columns = list(dict.fromkeys(key for _, row in items for key in row))
    def cell(value):
        return "N/A" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3g}"
    rows = [[name, *[cell(row.get(column)) for column in columns]] for name, row in items]
    return _render(["attack", *[f"{c} (s)" for c in columns]], rows, fmt)


def run_report(results, average: str = "successful") -> str:
    """The table of one stored run as the evaluation CLI prints it: a header line naming the model, data,
    mode, image count and completeness, the Table 2 (untargeted) or Table 3 (targeted) layout, and notes.

    Args:
        results: a :class:`~gse_explain.evaluation.store.RunResults` (from ``load_results`` or ``run``).
        average: ``"successful"`` (the paper's targeted average case) or ``"all"`` (the reference code's).
    """
    config = results.config
    path = results.store.path
    if results.records.empty:
        return f"no examples stored in {path} yet"
    summary = results.summary(average)
    variant = attack_variant(results)
    name = variant_label(config["attack"] + (f" ({config['preset']})" if config.get("preset") else ""), variant)
    images = results.records["example"].nunique()
    status = "complete" if results.complete else f"INCOMPLETE: {results.records['batch'].nunique()} of {results.expected_batches} batches"
    lines = [f"\n{config['model']} on {config['dataset']}, {config['mode']}, {images} images ({status}); store: {path}"]
    if config["targeted"]:
        lines.append(targeted_table({name: summary}))
        lines.append(f"average case over {'successful' if average == 'successful' else 'all'} (image, target) pairs")
    else:
        lines.append(untargeted_table({name: summary}))
    lines.append("ℓ2 on the [-1, 1] scale; time = seconds per example, amortised over the batch")
    if variant is not None:
        lines.append(f"baseline variant: {variant}" + (" (the GSE authors' port, spec §B)" if variant == "reference"
                                                       else " (the original attack; variant='reference' runs the GSE authors' port)"))
    return "\n".join(lines)
