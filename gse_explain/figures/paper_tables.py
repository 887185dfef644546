"""The paper's Tables 1–4 from a study's stores, as Markdown and LaTeX (booktabs) text.

The numbers come from :meth:`RunResults.summary` (:mod:`gse_explain.evaluation.summary`) and the layouts
from :mod:`gse_explain.evaluation.tables`; this module only chooses which stores feed which table.

Baseline variants (:func:`~gse_explain.evaluation.tables.attack_variant` of each store): a row made with the
GSE authors' port (``variant="reference"``) reads "StrAttack (reference port)"; the caption says once
which variant the baselines ran.
"""

from __future__ import annotations

from typing import Mapping

from ..analysis.runs import open_run
from ..evaluation.tables import (
    attack_variant, comparison_table, latex_escape, targeted_table, timing_table, untargeted_table, variant_label,
)
from ..plotting.style import attack_label
from .table4 import budget_note, with_projection

__all__ = ["TABLE_CAPTIONS", "paper_tables", "variant_note"]

TABLE_CAPTIONS = {
    "table1": "Table 1: GSE, Homotopy and SAPF, one image at a time (sequential timing); U = untargeted, "
              "T = targeted average case.",
    "table2": "Table 2: untargeted attacks (metrics over successful examples).",
    "table3": "Table 3: targeted attacks, best / average / worst case over each image's targets.",
    "table4": "Table 4: seconds per image (per image-target pair for targeted runs), amortised over the batch.",
}
_FOOTER = "ℓ2 on the [-1, 1] scale (as the paper); ACP = changed pixels, ANC = 4-connected clusters, d2,0 = non-zero 8×8 patches."


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _variants(runs: Mapping) -> dict[str, str | None]:
    """``{display name: variant}`` of the runs (None for attacks without the ``variant`` option)."""
    return {attack_label(name): attack_variant(run) for name, run in runs.items()}


def variant_note(variants: Mapping[str, str | None]) -> str:
    """The caption's sentence on the baselines' variants ("" when no run has the option)."""
    used = {v for v in variants.values() if v is not None}
    if not used:
        return ""
    if used == {"corrected"}:
        return " Baselines: corrected variants (variant='reference' runs the GSE authors' ports, spec §B)."
    if used == {"reference"}:
        return " Baselines: the GSE authors' ports (variant='reference', spec §B), as in the paper."
    return " Rows marked (reference port) ran the GSE authors' ports (variant='reference', spec §B); the other baselines the corrected attacks."


def _caption(key: str, runs: Mapping) -> str:
    counts = []
    for name, run in runs.items():
        records = run.records
        if records.empty:
            continue
        pairs = f" × {_count(records['offset'].nunique(), 'target')}" if run.config.get("targeted") else ""
        label = variant_label(attack_label(name), attack_variant(run))
        counts.append(f"{label} {_count(records['example'].nunique(), 'image')}{pairs}")
    return f"{TABLE_CAPTIONS[key]} Attacked: {'; '.join(counts)}.{variant_note(_variants(runs))}"


def _with_caption(caption: str, body: str, fmt: str) -> str:
    if fmt == "markdown":
        return f"**{caption}**\n\n{body}\n\n{_FOOTER}\n"
    escaped = latex_escape(caption)
    return "\\begin{table}[t]\n\\centering\n\\caption{" + escaped + "}\n" + body + "\n\\end{table}\n"


def paper_tables(main_untargeted: Mapping, main_targeted: Mapping, *, table1: Mapping | None = None,
                 second_targeted: Mapping | None = None, main_label: str = "main", second_label: str = "second",
                 average: str = "successful") -> dict[str, dict[str, str]]:
    """Render the tables a study's stores allow.

    Args:
        main_untargeted, main_targeted: ``{attack: store}`` on the study's model (Tables 2, 3 and 4).
        table1: ``{(attack, targeted): store}`` of the sequential GSE, Homotopy and SAPF runs.
        second_targeted: ``{attack: store}`` on the second model (an extra Table 4 column).
        average: targeted average case over ``"successful"`` pairs (paper) or ``"all"`` (reference code).

    Returns:
        ``{"table2": {"markdown": text, "latex": text}, ...}`` for every table with at least one store.
    """
    main_untargeted = {k: open_run(v) for k, v in main_untargeted.items()}
    main_targeted = {k: open_run(v) for k, v in main_targeted.items()}
    tables: dict[str, dict[str, str]] = {}

    def render(key: str, runs: Mapping, make) -> None:
        caption = _caption(key, runs)
        tables[key] = {fmt: _with_caption(caption, make(fmt), fmt) for fmt in ("markdown", "latex")}

    def summaries(runs: Mapping) -> dict:
        """``{display name: summary}`` of the runs holding examples (targeted runs: the three cases)."""
        return {attack_label(a): r.summary(average) for a, r in runs.items() if not r.records.empty}

    if table1:
        untargeted = {attack: open_run(r) for (attack, targeted), r in table1.items() if not targeted}
        targeted = {attack: open_run(r) for (attack, targeted), r in table1.items() if targeted}
        u_rows, t_rows = summaries(untargeted), summaries(targeted)
        variants = {**_variants(untargeted), **_variants(targeted)}
        render("table1", {**untargeted, **targeted}, lambda fmt: comparison_table(u_rows, t_rows, fmt, variants=variants))
    main_u_rows, main_t_rows = summaries(main_untargeted), summaries(main_targeted)
    if main_untargeted:
        variants_u = _variants(main_untargeted)
        render("table2", main_untargeted, lambda fmt: untargeted_table(main_u_rows, fmt, variants=variants_u))
    if main_targeted:
        variants_t = _variants(main_targeted)
        render("table3", main_targeted, lambda fmt: targeted_table(main_t_rows, fmt, variants=variants_t))
    # Table 4 reads the summaries' time (seconds per image, or per pair: the same in every targeted case).
    settings = [(f"U {main_label}", main_u_rows), (f"T {main_label}", {k: v["average"] for k, v in main_t_rows.items()})]
    timed = {**main_untargeted, **main_targeted}
    if second_targeted:
        second_targeted = {k: open_run(v) for k, v in second_targeted.items()}
        timed.update(second_targeted)
        second_rows = summaries(second_targeted)
        settings.append((f"T {second_label}", {k: v["average"] for k, v in second_rows.items()}))
    times: dict[str, dict[str, float]] = {}
    for column, rows in settings:
        for name, row in rows.items():
            times.setdefault(name, {})[column] = row["time"]
    if times:
        columns = [c for c, rows in settings if rows]
        variants = _variants(timed)
        caption = (TABLE_CAPTIONS["table4"] + " Hardware: see the study's manifest.json. "
                   + budget_note(main_untargeted, main_targeted) + variant_note(variants))
        tables["table4"] = {fmt: _with_caption(caption, with_projection(timing_table(times, columns, fmt, variants=variants),
                                                                         main_untargeted, fmt), fmt) for fmt in ("markdown", "latex")}
    return tables
