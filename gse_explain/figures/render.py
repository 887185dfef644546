"""Draw a study's figures and tables from its (complete) stores into one folder.

Files written to ``out_dir`` (each figure as PNG and PDF, written atomically; they are regenerated from the
stores, so existing files are replaced):

- ``figure1_gse_examples``: GSE adversarial examples (Fig. 1);
- ``figure2_interpretability`` + ``figure2_is_curves.csv`` / ``figure2_is_per_example.csv`` (Fig. 2);
- ``figure3_untargeted_examples``, ``figure4_targeted_examples`` (Figs. 3 and 4);
- ``figure5_interpretability_second_model`` + its two CSVs (Fig. 5, when the study has a second model);
- ``table1`` … ``table4`` as ``.md`` and ``.tex``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

from ..analysis.export import write_csv
from ..io import atomic_write_bytes
from ..analysis.runs import run_model
from ..evaluation.store import load_results
from ..plotting import save_figure
from ..plotting.style import paper_style
from .paper_figures import figure_attack_examples, figure_gse_examples, figure_interpretability
from .paper_tables import paper_tables
from .studies import FIGURE2_ATTACKS, Study

__all__ = ["FIGURES", "render_study"]

FIGURES = ("figure1", "figure2", "figure3", "figure4", "figure5", "tables")


def _ordered(runs: dict) -> dict:
    order = {a: i for i, a in enumerate(FIGURE2_ATTACKS)}
    return dict(sorted(runs.items(), key=lambda item: order.get(item[0], len(order))))


def render_study(study: Study, paths: Mapping[str, Path], out_dir: Path, *, only: Sequence[str] | None = None,
                 device="cpu", progress: bool = True, log=None) -> list[Path]:
    """Draw ``only`` (default: all of :data:`FIGURES`) for ``study`` from the stores ``paths`` ({run key: store}).

    Returns:
        The files written.
    """
    import matplotlib.pyplot as plt

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg") and "inline" not in matplotlib.get_backend():
        plt.switch_backend("Agg")  # the CLI needs no window
    log = sys.stderr if log is None else log
    out_dir = Path(out_dir)
    wanted = list(only or FIGURES)
    runs = {spec.key: load_results(paths[spec.key]) for spec in study.runs}
    by_group = {}
    for spec in study.runs:
        by_group.setdefault((spec.group, spec.targeted), {})[spec.attack] = runs[spec.key]
    main_u = _ordered(by_group.get(("main", False), {}))
    main_t = _ordered(by_group.get(("main", True), {}))
    second_t = _ordered(by_group.get(("second", True), {}))
    models: dict = {}  # rebuilt models, shared by every figure of a group (run_model's cache)

    def model_of(group_runs: dict):
        return run_model(next(iter(group_runs.values())), None, device, models)

    written: list[Path] = []

    def save(fig, name: str) -> None:
        written.extend(save_figure(fig, out_dir / name))
        plt.close(fig)

    def step(name: str, description: str, draw) -> None:
        if name not in wanted:
            return
        start = time.perf_counter()
        print(f"drawing {name}: {description} ...", file=log, flush=True)
        draw()
        print(f"  {name} done in {time.perf_counter() - start:.1f} s", file=log, flush=True)

    def figure1():
        gse_runs = {f"gse-{mode}": r for mode, r in (("u", main_u.get("gse")), ("t", main_t.get("gse"))) if r is not None}
        if not gse_runs:
            print("  skipped: the study has no GSE run", file=log)
            return
        fig, _ = figure_gse_examples(gse_runs, model_of(gse_runs), device=device)
        fig.suptitle(f"GSE adversarial examples ({study.main_label})", y=1.02)
        save(fig, "figure1_gse_examples")

    def interpretability(runs: dict, stem: str, label: str):
        if not runs:
            print(f"  skipped: no targeted runs for {stem}", file=log)
            return
        fig, _, table, curves = figure_interpretability(runs, model_of(runs), title=f"Interpretability score ({label})", device=device)
        save(fig, stem)
        prefix = stem.split("_")[0]
        written.append(write_csv(curves, out_dir / f"{prefix}_is_curves.csv", overwrite=True))
        written.append(write_csv(table, out_dir / f"{prefix}_is_per_example.csv", overwrite=True))

    def examples(runs: dict, stem: str, what: str):
        if not runs:
            print(f"  skipped: no {what} runs", file=log)
            return
        fig, _, _ = figure_attack_examples(runs, model_of(runs), device=device)
        fig.suptitle(f"{what.capitalize()} examples per attack ({study.main_label})", y=1.01)
        save(fig, stem)

    def figure5():
        if not second_t:
            print("  skipped: the study has no second model (" + "; ".join(study.notes or ("see --second-model",)) + ")", file=log)
            return
        interpretability(second_t, "figure5_interpretability_second_model", study.second_label or "second model")

    def tables():
        table1 = {(spec.attack, spec.targeted): runs[spec.key] for spec in study.runs if spec.group == "table1"}
        rendered = paper_tables(main_u, main_t, table1=table1 or None, second_targeted=second_t or None,
                                main_label=study.main_label.split(",")[0], second_label=(study.second_label or "second").split(",")[0])
        for name, texts in rendered.items():
            written.append(atomic_write_bytes(out_dir / f"{name}.md", texts["markdown"].encode(), overwrite=True))
            written.append(atomic_write_bytes(out_dir / f"{name}.tex", texts["latex"].encode(), overwrite=True))

    with paper_style():
        step("figure1", "GSE examples", figure1)
        step("figure2", "interpretability score, targeted attacks", lambda: interpretability(main_t, "figure2_interpretability", study.main_label))
        step("figure3", "untargeted examples per attack", lambda: examples(main_u, "figure3_untargeted_examples", "untargeted"))
        step("figure4", "targeted examples per attack", lambda: examples(main_t, "figure4_targeted_examples", "targeted"))
        step("figure5", "interpretability score on the second model", figure5)
        step("tables", "Tables 1-4 (Markdown and LaTeX)", tables)
    return written
