"""Overlay panels render, have the right number of axes, and show what they claim."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from gse_explain.plotting import (
    PANELS,
    perturbation_rgb,
    plot_examples,
    save_figure,
    show_cam,
    show_clusters,
    show_image,
    show_mask,
    show_perturbation,
)


def _examples(rows=2, size=8):
    gen = torch.Generator().manual_seed(0)
    clean = torch.rand(rows, 3, size, size, generator=gen)
    adversarial = clean.clone()
    adversarial[:, :, 1:3, 1:3] = 1.0  # one 2 × 2 cluster
    adversarial[:, 0, 5, 5] = 0.0  # and a single pixel
    cams = torch.rand(rows, size, size, generator=gen)
    return clean, adversarial, cams


def test_grid_has_one_panel_per_example_and_kind(tmp_path):
    clean, adversarial, cams = _examples(rows=3)
    fig, axes = plot_examples(clean, adversarial, cams, row_labels=["GSE", "StrAttack", "FWnucl"])
    assert axes.shape == (3, len(PANELS)) and len(fig.axes) == 3 * len(PANELS)
    assert [ax.get_title() for ax in axes[0]] == ["original", "adversarial", "perturbation", "perturbed pixels", "clusters", "CAM"]
    assert axes[1, 0].get_ylabel() == "StrAttack"
    png, pdf = save_figure(fig, tmp_path / "examples.png")
    assert png.name == "examples.png" and pdf.name == "examples.pdf"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and pdf.read_bytes()[:5] == b"%PDF-"


def test_without_cams_the_cam_column_is_dropped_and_axes_can_be_given(tmp_path):
    clean, adversarial, _ = _examples(rows=2)
    fig, axes = plot_examples(clean, adversarial)
    assert len(fig.axes) == 2 * (len(PANELS) - 1)
    fig2, given = plt.subplots(2, 2)
    out_fig, out_axes = plot_examples(clean, adversarial, panels=["original", "mask"], axes=given)
    assert out_fig is fig2 and len(fig2.axes) == 4 and out_axes[1, 1] is given[1, 1]
    save_figure(fig2, tmp_path / "two")
    assert (tmp_path / "two.png").is_file() and (tmp_path / "two.pdf").is_file()


def test_single_panels_draw_the_right_pictures():
    clean, adversarial, cams = _examples(rows=1)
    delta = adversarial[0] - clean[0]
    fig, ax = show_mask(delta)
    mask_image = ax.images[0].get_array()
    assert mask_image[1, 1] == 0 and mask_image[5, 5] == 0 and mask_image[0, 0] == 1  # changed = black
    _, ax = show_clusters(delta)
    labels = np.asarray(ax.images[0].get_array())
    assert labels[1, 1] == labels[2, 2] == 1 and labels[5, 5] == 2 and labels[0, 0] == 0
    rgb = perturbation_rgb(delta)
    assert rgb.shape == (8, 8, 3) and np.all(rgb[0, 0] == 0.5)  # unchanged pixel: mid-grey
    for draw in (lambda ax: show_image(clean[0], ax), lambda ax: show_perturbation(delta, ax),
                 lambda ax: show_cam(clean[0], cams[0], ax)):
        fig, ax = plt.subplots()
        out_fig, out_ax = draw(ax)
        assert out_fig is fig and out_ax is ax and len(fig.axes) == 1
    _, ax = show_cam(clean[0], cams[0])
    assert len(ax.images) == 2  # image plus heat-map


def test_bad_inputs_are_reported(tmp_path):
    clean, adversarial, cams = _examples(rows=2)
    with pytest.raises(ValueError, match="unknown panels"):
        plot_examples(clean, adversarial, cams, panels=["original", "saliency"])
    with pytest.raises(ValueError, match="needs cams"):
        plot_examples(clean, adversarial, panels=["cam"])
    with pytest.raises(ValueError, match="equal shapes"):
        plot_examples(clean, adversarial[:1])
    with pytest.raises(ValueError, match=r"cams must have shape \(N, H, W\)"):
        plot_examples(clean, adversarial, cams[:, :4])
    with pytest.raises(ValueError, match="row_labels must have 2 entries"):
        plot_examples(clean, adversarial, cams, row_labels=["one"])
    with pytest.raises(ValueError, match="height and width"):
        show_cam(clean[0], cams[0, :4])
    fig, _ = show_image(clean[0])
    save_figure(fig, tmp_path / "f")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_figure(fig, tmp_path / "f.pdf", overwrite=False)
