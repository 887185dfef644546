"""The explain study: built from the base study's targeted main runs (same store keys, runs folder reused), its
options checked, and its tables, Markdown and heatmap drawn from toy stores."""

import math

import matplotlib.pyplot as plt
import pytest

from gse_explain.figures import StudyOptions, build_study
from gse_explain.figures.explain import DEFAULT_EXPLANATIONS, agreement_markdown, agreement_tables, at_percentile, draw_explain
from gse_explain.figures.registry import FigureContext
from gse_explain.plotting.heatmaps import agreement_matrix, plot_agreement


def test_study_reuses_the_base_study_targeted_runs():
    study = build_study("explain", StudyOptions())
    demo = build_study("demo", StudyOptions())
    assert study.name == "explain-demo" and study.runs_name == "demo" and study.figures == ("explain",)
    assert [r.key for r in study.runs] == [r.key for r in demo.group("main", targeted=True)]
    assert [r.config for r in study.runs] == [r.config for r in demo.group("main", targeted=True)]
    with pytest.raises(ValueError, match="unknown explanation method 'gradcam\\+'"):
        build_study("explain", StudyOptions(explanations=["asm", "gradcam+"]))
    with pytest.raises(ValueError, match="--percentile must be in \\(0, 100\\)"):
        build_study("explain", StudyOptions(percentile=0))
    with pytest.raises(ValueError, match="needs --data-root"):
        build_study("explain", StudyOptions(on="cifar10"))
    assert DEFAULT_EXPLANATIONS[0] == "asm" and "integrated_gradients" in DEFAULT_EXPLANATIONS


def test_tables_markdown_and_heatmap_from_toy_stores(toy_runs, model, tmp_path):
    runs = toy_runs["targeted"]
    methods = ("asm", "saliency", "occlusion")
    per_example, curves = agreement_tables(runs, model, methods, 75, cache=tmp_path / "cache")
    assert list(per_example["method"].unique()) == list(methods)
    assert set(curves["percentile"]) == {50, 60, 70, 75, 80, 90}
    summary = at_percentile(curves, 75)
    assert len(summary) == len(methods) * len(runs)
    means, labels = agreement_matrix(summary, methods)
    assert list(means.mean(axis=1)) == sorted(means.mean(axis=1), reverse=True)  # rows ordered by mean
    cell = summary[(summary["attack"] == "gse") & (summary["method"] == "asm")].iloc[0]
    assert labels.loc["gse", "asm"] == f"{cell['mean']:.2f}\n[{cell['band_low']:.2f}, {cell['band_high']:.2f}]"
    text = agreement_markdown(curves, 75, "toy")
    assert f"chance √(1 − P/100) = {math.sqrt(0.25):.3f}" in text and text.count("\n| ") == len(runs) + 1
    fig, axes = plot_agreement(summary, curves, 75)
    assert set(axes) == {"heatmap", *methods}
    annotations = [t.get_text() for t in axes["heatmap"].texts]
    assert labels.loc["gse", "asm"] in annotations
    plt.close(fig)


def test_the_figure_is_drawn_only_by_the_explain_study(tmp_path):
    context = FigureContext(study=build_study("demo", StudyOptions()), out_dir=tmp_path)
    assert draw_explain(context) == []
