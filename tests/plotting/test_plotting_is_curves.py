"""Curves with bands: one line and one band per attack; the IS plot only draws a given table."""

import pandas as pd
import pytest

import numpy as np

from gse_explain.plotting import plot_curves, plot_is_curves, save_figure


def _curves(x="percentile"):
    rows = []
    for attack, base in (("GSE", 0.7), ("StrAttack", 0.5)):
        for p in (50, 70, 90):
            rows.append({"attack": attack, x: p, "n": 10, "mean": base - p / 1000, "std": 0.1,
                         "band_low": base - p / 1000 - 0.05, "band_high": base - p / 1000 + 0.05, "level": 0.95, "band": "t"})
    return pd.DataFrame(rows)


def test_one_line_and_band_per_attack(tmp_path):
    fig, ax = plot_curves(_curves())
    assert len(fig.axes) == 1 and len(ax.lines) == 2 and len(ax.collections) == 2
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["GSE", "StrAttack"]
    assert ax.get_xlabel() == "percentile P" and ax.get_ylabel() == "interpretability score"
    assert list(ax.lines[0].get_xdata()) == [50, 70, 90]
    png, pdf = save_figure(fig, tmp_path / "is_curves")
    assert png.stat().st_size > 0 and pdf.stat().st_size > 0


def test_alignment_curves_and_no_band():
    fig, ax = plot_curves(_curves("top_percent"), band=False)
    assert len(ax.collections) == 0 and ax.get_xlabel() == "top q % of the CAM"


def test_missing_columns_are_reported():
    with pytest.raises(ValueError, match="curves lacks the columns"):
        plot_curves(_curves().drop(columns=["band_low"]))


def test_is_curves_draw_a_table_with_the_chance_line():
    fig, ax = plot_is_curves(_curves(), title="IS")
    assert len(ax.lines) == 3 and ax.get_title() == "IS" and ax.get_ylim() == (0.0, 1.0)
    x, y = ax.lines[2].get_xdata(), ax.lines[2].get_ydata()
    assert x[0] == 50 and x[-1] == 90
    np.testing.assert_allclose(y, np.sqrt(1 - np.asarray(x) / 100))
    assert ax.get_legend().get_title().get_text() == "95% band (t)"  # the legend keeps the band's title
    _, ax = plot_is_curves(_curves(), chance=False, band=False)
    assert len(ax.lines) == 2 and not ax.collections


def test_is_curves_refuse_stores_and_point_to_the_analysis_layer():
    with pytest.raises(TypeError, match=r"not dict; compute the table with gse_explain\.analysis\.interpretability_curves"):
        plot_is_curves({"gse": "runs/gse-targeted"})
    with pytest.raises(TypeError):
        plot_is_curves(_curves(), csv="curves.csv")  # writing is analysis.write_csv's job
