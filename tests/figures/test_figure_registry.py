"""The figure registry: a figure registered in a test is drawn by render_study from the toy stores, writes
through its context, and is gone after the ``with`` block; unknown names are refused, naming the registry."""

import io
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from gse_explain.figures import registry
from gse_explain.figures.registry import (
    FigureContext,
    get_figure,
    list_figures,
    register_figure,
    registered_figure,
    unregister_figure,
)
from gse_explain.figures.render import FIGURES, render_study

PAPER = ("figure1", "figure2", "figure3", "figure4", "figure5", "tables")
# the derived studies' figures (transfer, explain, ablation), registered by their modules after the paper's
BUILT_IN = (*PAPER, "transfer", "explain", "ablation")


@dataclass(frozen=True)
class ToyRun:
    """The attributes render_study relies on (a RunSpec has them too)."""

    group: str
    attack: str
    targeted: bool

    @property
    def key(self) -> str:
        return f"{self.group}-{self.attack}-{'targeted' if self.targeted else 'untargeted'}"


@dataclass
class ToyStudy:
    name: str
    runs: tuple
    main_label: str = "toy, 8×8"
    second_label: str | None = None
    notes: tuple = ()


def _study(toy_runs, attacks=("pgd0", "strattack", "gse"), **kwargs):
    """A study over the toy stores, runs listed in reverse legend order; returns (study, paths)."""
    runs = tuple(ToyRun("main", a, t) for t in (False, True) for a in attacks)
    paths = {r.key: toy_runs["targeted" if r.targeted else "untargeted"][r.attack] for r in runs}
    return ToyStudy("toy", runs, **kwargs), paths


def draw_toy(context: FigureContext) -> list[Path]:
    """Bars of the targeted runs' success counts, as a figure and a CSV."""
    counts = pd.DataFrame({"attack": list(context.main_targeted),
                           "successes": [int(r.records["success"].sum()) for r in context.main_targeted.values()]})
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.bar(counts["attack"], counts["successes"])
    files = context.save(fig, "toy_successes")
    files.append(context.write_csv(counts, "toy_successes.csv"))
    files.append(context.write_text("toy_note.md", f"{context.study.name}: {len(context.runs)} runs\n"))
    return files


def test_a_registered_figure_is_drawn_and_gone_afterwards(toy_runs, tmp_path):
    study, paths = _study(toy_runs)
    study.figures = ("toy",)  # the study asks for the toy figure only
    log = io.StringIO()
    with registered_figure("toy", "success counts", draw_toy) as spec:
        assert list_figures() == (*BUILT_IN, "toy") and get_figure("toy") is spec  # default order: last
        written = render_study(study, paths, tmp_path / "out", log=log)
    assert "toy" not in list_figures() and list_figures() == BUILT_IN and set(FIGURES) <= set(BUILT_IN)
    out = tmp_path / "out"
    assert written == [out / "toy_successes.png", out / "toy_successes.pdf", out / "toy_successes.csv", out / "toy_note.md"]
    assert written[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and written[1].read_bytes()[:5] == b"%PDF-"
    # the context groups runs in the paper's legend order, whatever the study's order
    counts = pd.read_csv(written[2])
    assert list(counts["attack"]) == ["gse", "strattack", "pgd0"] and list(counts["successes"]) == [6, 5, 6]
    assert written[3].read_text() == "toy: 6 runs\n"
    lines = log.getvalue().splitlines()
    assert lines[0] == "drawing toy: success counts ..." and lines[1].startswith("  toy done in ") and len(lines) == 2
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in written)


def test_only_intersects_the_study_figures_in_drawing_order(toy_runs, tmp_path):
    study, paths = _study(toy_runs)  # no figures attribute: every registered figure
    log = io.StringIO()
    with registered_figure("toy", "success counts", draw_toy, order=5):
        written = render_study(study, paths, tmp_path, only=["tables", "toy"], log=log)
    names = [p.name for p in written]
    assert names[:4] == ["toy_successes.png", "toy_successes.pdf", "toy_successes.csv", "toy_note.md"]  # order 5 < tables
    assert names[4:] == ["table2.md", "table2.tex", "table3.md", "table3.tex", "table4.md", "table4.tex"]
    drawing = [line for line in log.getvalue().splitlines() if line.startswith("drawing")]
    assert drawing == ["drawing toy: success counts ...", "drawing tables: Tables 1-4 (Markdown and LaTeX) ..."]


def test_paper_figures_without_their_runs_are_skipped(toy_runs, tmp_path):
    study, paths = _study(toy_runs, attacks=("pgd0",), notes=("no second model in this toy",))
    log = io.StringIO()
    assert render_study(study, paths, tmp_path, only=["figure1", "figure5"], log=log) == []
    lines = log.getvalue().splitlines()
    assert lines[0] == "drawing figure1: GSE examples ..." and lines[1] == "  skipped: the study has no GSE run"
    assert lines[3] == "drawing figure5: interpretability score on the second model ..."
    assert lines[4] == "  skipped: the study has no second model (no second model in this toy)"
    # asked for, but not one of the study's figures: said, not drawn
    study.figures = ("tables",)
    log = io.StringIO()
    assert render_study(study, paths, tmp_path, only=["figure1"], log=log) == []
    assert log.getvalue().startswith("skipping figure1: not one of study 'toy''s figures (tables)")


def test_unknown_names_are_refused_naming_the_registered_figures(toy_runs, tmp_path):
    study, paths = _study(toy_runs)
    with pytest.raises(ValueError, match=r"only names unknown figures \['figure9'\]; registered: figure1, figure2, figure3, "
                                         r"figure4, figure5, tables"):
        render_study(study, paths, tmp_path / "out", only=["figure2", "figure9"])
    study.figures = ("figure1", "mystery")
    with pytest.raises(ValueError, match=r"study 'toy' figures names unknown figures \['mystery'\]"):
        render_study(study, paths, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before anything was drawn


def test_register_get_and_unregister():
    @register_figure("toy-a", "first toy", order=1)
    def draw_a(context):
        return []

    try:
        assert get_figure("toy-a").draw is draw_a and list_figures()[0] == "toy-a"
        with pytest.raises(ValueError, match="already registered"):
            register_figure("toy-a", "again")(draw_a)
    finally:
        assert unregister_figure("toy-a").description == "first toy"
    with pytest.raises(KeyError, match="no figure named 'toy-a'; registered: figure1"):
        get_figure("toy-a")
    with pytest.raises(ValueError, match="without commas"):
        register_figure("a,b", "bad name")(draw_a)
    assert list_figures() == BUILT_IN and set(registry._REGISTRY) == set(BUILT_IN)


def test_a_figure_must_return_its_files(toy_runs, tmp_path):
    study, paths = _study(toy_runs, attacks=("gse",))
    with registered_figure("toy-none", "returns nothing", lambda context: None):
        with pytest.raises(TypeError, match="'toy-none' must return the list of Paths it wrote"):
            render_study(study, paths, tmp_path, only=["toy-none"], log=io.StringIO())
    assert "toy-none" not in list_figures()
