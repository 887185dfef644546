"""Each figure function renders from small hand-made stores and shows what it claims."""

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest

from gse_explain.analysis import interpretability_curves, read_csv, write_csv
from gse_explain.figures import figure_attack_examples, figure_gse_examples, figure_interpretability, pick_examples
from gse_explain.plotting import plot_is_curves, save_figure
from gse_explain.plotting.style import attack_color

NAMES = ["ant", "bee", "cow"]  # the toy model's classes (conftest)


def test_figure1_grid_of_gse_examples(toy_runs, model, tmp_path):
    runs = {"u": toy_runs["untargeted"]["gse"], "t": toy_runs["targeted"]["gse"]}
    fig, axes = figure_gse_examples(runs, model, max_examples=2, names=NAMES)
    assert axes.shape == (3, 2)
    # one column per distinct image, taken in store order: images 100 (label ant) and 101 (label bee)
    assert [axes[0, c].get_title() for c in range(2)] == ["ant", "bee"]
    assert axes[2, 0].get_title() == "4 pixels"  # the 2×2 cluster
    assert all(axes[1, c].get_title() in NAMES for c in range(2))
    png, pdf = save_figure(fig, tmp_path / "fig1")
    assert png.stat().st_size > 1000 and pdf.read_bytes().startswith(b"%PDF")


def test_figure1_needs_a_successful_example(tmp_path, model, make_store):
    store = make_store(tmp_path / "failed", "gse", False, images=2, failed={(0, -1), (1, -1)})
    with pytest.raises(ValueError, match="no successful example"):
        figure_gse_examples(store, model, names=NAMES)


def test_figure2_one_curve_per_attack_in_given_order(toy_runs, model, tmp_path):
    fig, ax, table, curves = figure_interpretability(toy_runs["targeted"], model, percentiles=(50, 70, 90))
    assert list(dict.fromkeys(curves["attack"])) == ["gse", "strattack", "pgd0"]
    # 3 images × 2 targets = 6 rows per attack, failed rows counted (as the paper)
    assert set(curves["n"]) == {6}
    assert len(table) == 3 * 6 * 3
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:3] == ["GSE", "StrAttack", "PGD0"] and labels[3].startswith("chance")
    assert mcolors.same_color(ax.lines[0].get_color(), attack_color("gse"))
    assert ax.get_title().startswith("") and ax.get_xlabel() == "percentile P"
    # the chance line is √(1 − P/100)
    x, y = ax.lines[3].get_xdata(), ax.lines[3].get_ydata()
    np.testing.assert_allclose(y, np.sqrt(1 - np.asarray(x) / 100))
    # mean of the per-example table is the plotted value
    gse50 = table[(table.attack == "gse") & (table.percentile == 50)]["interpretability_score"].mean()
    assert ax.lines[0].get_ydata()[0] == pytest.approx(gse50)


def test_plot_is_curves_draws_computed_curves_and_their_csv(toy_runs, model, tmp_path):
    # computing (analysis.interpretability_curves) and writing (analysis.write_csv) are the caller's;
    # plot_is_curves draws the table, fresh or read back from its CSV, the same way
    _, curves = interpretability_curves(toy_runs["targeted"], model, percentiles=(50, 90))
    write_csv(curves, tmp_path / "curves.csv")
    written = read_csv(tmp_path / "curves.csv")
    assert list(written.columns[:3]) == ["attack", "percentile", "n"]
    pd.testing.assert_frame_equal(written, curves.reset_index(drop=True), check_dtype=False)
    fig, ax = plot_is_curves(curves)
    fig2, ax2 = plot_is_curves(written, chance=False)
    assert len(ax.lines) == 4 and len(ax2.lines) == 3  # three attacks (+ the chance line)
    np.testing.assert_allclose(ax2.lines[1].get_ydata(), ax.lines[1].get_ydata())
    with pytest.raises(TypeError, match=r"interpretability_curves\(\.\.\.\) first"):
        plot_is_curves(toy_runs["targeted"])


def test_pick_examples_prefers_pairs_every_attack_fooled(toy_runs):
    keys = pick_examples(toy_runs["targeted"], 6)
    # store order is batch by batch, offset-major; strattack failed (101, 2): the five fully successful pairs come
    # first, that pair last
    assert list(map(tuple, keys.to_numpy())) == [(100, 1), (101, 1), (100, 2), (102, 1), (102, 2), (101, 2)]


@pytest.mark.parametrize("mode", ["untargeted", "targeted"])
def test_figures3_4_one_row_per_attack_on_the_same_image(toy_runs, model, mode):
    fig, axes, keys = figure_attack_examples(toy_runs[mode], model, num_examples=1, names=NAMES)
    assert axes.shape == (3, 5) and len(keys) == 1
    assert [axes[r, 0].get_ylabel() for r in range(3)] == ["GSE", "StrAttack", "PGD0"]
    assert {axes[r, 0].get_title() for r in range(3)} == {"true: ant"}  # the same image in every row
    assert all(axes[r, 1].get_title().startswith("pred: ") for r in range(3))
    assert [axes[r, 2].get_title().split(" px")[0] for r in range(3)] == ["δ: 4", "δ: 3", "δ: 36"]
    if mode == "targeted":
        assert "(target bee)" in axes[0, 2].get_title()
    assert axes[0, 4].collections  # perturbed pixels outlined on the CAM


def test_figure_examples_need_common_images(tmp_path, model, make_store):
    a = make_store(tmp_path / "a", "gse", False, images=2)
    b = make_store(tmp_path / "b", "pgd0", False, images=2)
    # same dataset indices: fine
    fig, axes, keys = figure_attack_examples({"gse": a, "pgd0": b}, model, names=NAMES)
    assert axes.shape == (2, 5)
    with pytest.raises(ValueError, match="two runs are named"):
        figure_attack_examples([a, a], model)
