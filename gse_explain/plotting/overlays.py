"""Image panels for adversarial examples, like the GSE paper's Figures 3–4.

Every function takes an optional ``ax`` (or ``axes``) to draw into and returns ``(fig, axes)``. Images are
(C, H, W) or (H, W, C) arrays/tensors in [0, 1]; perturbations δ = x_adv − x are (C, H, W); maps (H, W).
Batches (:func:`plot_examples`) are (N, C, H, W), channels first. Every image, perturbation and map must be
floating-point and finite: a uint8 image (which would be clipped to white), a NaN or inf value (which would
be drawn as a plausible picture) or a channels-last batch is an error, as in :mod:`gse_explain.analysis`.

Panels: original, adversarial, perturbation (δ scaled per image around mid-grey so that its 99th-percentile
|δ| is full colour, the factor written in the panel, "δ ×k"; unchanged pixels are exactly that grey), perturbed-pixel mask (changed pixels black on white), cluster labels (one
colour per 4-connected cluster, white background) and the CAM heat-map over the image (``jet``, as the
paper's figures).
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import ListedColormap

from ..analysis._inputs import check_finite, image_batch, map_batch
from ..distances import cluster_labels

__all__ = [
    "PANELS",
    "perturbation_rgb",
    "perturbation_scale",
    "plot_examples",
    "show_cam",
    "show_clusters",
    "show_image",
    "show_mask",
    "show_perturbation",
]

#: Panel names accepted by :func:`plot_examples`, in their default order.
PANELS = ("original", "adversarial", "perturbation", "mask", "clusters", "cam")
_TITLES = {"original": "original", "adversarial": "adversarial", "perturbation": "perturbation",
           "mask": "perturbed pixels", "clusters": "clusters", "cam": "CAM"}


def _numpy(array, name: str) -> np.ndarray:
    """A finite floating array as float64 (TypeError for other dtypes, ValueError for NaN/inf)."""
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu()
        array = (array.float() if array.dtype == torch.bfloat16 else array).numpy()
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"{name} must be a floating-point array in [0, 1]; got dtype {array.dtype} "
                        "(convert uint8 images with .float() / 255, or np.asarray(x, dtype=float) / 255)")
    check_finite(array, name)
    return array.astype(np.float64, copy=False)


def _hwc(image, name: str) -> np.ndarray:
    """(C, H, W) or (H, W, C) image → (H, W, C) with C in {1, 3}."""
    image = _numpy(image, name)
    if image.ndim == 2:
        return image[..., None]
    if image.ndim != 3:
        hint = f"; pass one row of the batch, e.g. {name}[0]" if image.ndim == 4 else ""
        raise ValueError(f"{name} must be one image (C, H, W) or (H, W, C); got shape {image.shape}{hint}")
    if image.shape[0] in (1, 3):  # channels first, the library's layout (wins when both ends could be channels)
        image = image.transpose(1, 2, 0)
    if image.shape[-1] not in (1, 3):
        raise ValueError(f"{name} must have 1 or 3 channels; got shape {image.shape}")
    return image


def _axis(ax):
    if ax is None:
        fig, ax = plt.subplots(figsize=(2.2, 2.2))
    return ax.figure, ax


def _draw(ax, image: np.ndarray, title: str | None, **kwargs) -> None:
    if image.shape[-1] == 1 and "cmap" not in kwargs:
        kwargs["cmap"] = "gray"
    ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, interpolation="nearest", **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def show_image(image, ax=None, title: str | None = None):
    """Draw an image in [0, 1] (values outside are clipped)."""
    fig, ax = _axis(ax)
    _draw(ax, np.clip(_hwc(image, "image"), 0, 1), title, vmin=0, vmax=1)
    return fig, ax


def perturbation_scale(delta, percentile: float = 99.0) -> float:
    """The display scale s of δ (C, H, W): the ``percentile`` of |δ| over its non-zero entries (0 for δ = 0).

    A percentile rather than the maximum keeps one extreme entry from washing the rest out to grey; entries
    above s saturate. ``percentile=100`` is the maximum |δ|."""
    magnitude = np.abs(_hwc(delta, "delta"))
    nonzero = magnitude[magnitude > 0]
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100]; got {percentile}")
    return float(np.percentile(nonzero, percentile)) if nonzero.size else 0.0


def perturbation_rgb(delta, scale: float | None = None) -> np.ndarray:
    """δ (C, H, W) → displayable (H, W, C) in [0, 1]: 0.5 + δ / (2 s), clipped, so unchanged pixels are
    mid-grey and |δ| ≥ s is full colour; s = ``scale`` or :func:`perturbation_scale` (per image)."""
    delta = _hwc(delta, "delta")
    scale = perturbation_scale(delta) if scale is None else float(scale)
    return np.clip(0.5 + delta / (2 * scale), 0, 1) if scale > 0 else np.full_like(delta, 0.5)


def show_perturbation(delta, ax=None, title: str | None = None, *, scale: float | None = None, label: bool = True):
    """Draw δ scaled for display (mid-grey = no change, brighter/darker = up/down per channel) with the
    scale written in the panel's corner: "δ × k" means a change of 1/(2k) of the [0, 1] range is full
    colour (k = 1 / (2 s), s from :func:`perturbation_scale` unless ``scale`` is given)."""
    fig, ax = _axis(ax)
    s = perturbation_scale(delta) if scale is None else float(scale)
    _draw(ax, perturbation_rgb(delta, s), title, vmin=0, vmax=1)
    if label and s > 0:
        ax.text(0.03, 0.03, scale_label(s), transform=ax.transAxes, fontsize=6, ha="left", va="bottom",
                bbox=dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor="none", alpha=0.8))
    return fig, ax


def scale_label(scale: float) -> str:
    """The panel text for display scale s: "δ ×k" with k = 1/(2s) (the factor δ is multiplied by around grey)."""
    factor = 1.0 / (2.0 * scale)
    return f"δ ×{factor:.0f}" if factor >= 10 else f"δ ×{factor:.2g}"


def _changed(delta) -> np.ndarray:
    return (_hwc(delta, "delta") != 0).any(axis=-1)


def show_mask(delta, ax=None, title: str | None = None):
    """Draw the perturbed-pixel mask of δ (C, H, W): changed pixels (any channel) black, others white."""
    fig, ax = _axis(ax)
    _draw(ax, (~_changed(delta)).astype(float)[..., None], title, cmap="gray", vmin=0, vmax=1)
    return fig, ax


def show_clusters(delta, ax=None, title: str | None = None):
    """Draw the 4-connected clusters of δ's changed pixels, one colour each, on white."""
    fig, ax = _axis(ax)
    labels, count = cluster_labels(_changed(delta))
    colours = plt.get_cmap("tab20")(np.arange(max(count, 1)) % 20)
    cmap = ListedColormap(np.vstack([[1.0, 1.0, 1.0, 1.0], colours]))
    _draw(ax, labels[..., None].astype(float), title, cmap=cmap, vmin=-0.5, vmax=max(count, 1) + 0.5)
    return fig, ax


def show_cam(image, cam, ax=None, title: str | None = None, alpha: float = 0.5, cmap: str = "jet"):
    """Draw a (H, W) CAM in [0, 1] as a heat-map over the image (same H × W)."""
    fig, ax = _axis(ax)
    picture = _hwc(image, "image")
    cam = _numpy(cam, "cam")
    if cam.ndim != 2:
        raise ValueError(f"cam must be one (H, W) map; got shape {cam.shape}")
    if cam.shape != picture.shape[:2]:
        raise ValueError(f"cam {cam.shape} must have the image's height and width {picture.shape[:2]}")
    _draw(ax, np.clip(picture, 0, 1), title, vmin=0, vmax=1)
    ax.imshow(cam, cmap=cmap, alpha=alpha, vmin=0, vmax=1, interpolation="bilinear")
    return fig, ax


def _check_panels(clean, adversarial, cams, panels: Sequence[str], row_labels):
    """Validate :func:`plot_examples`' arguments; return (clean, adversarial as (N, C, H, W) float64 arrays,
    panels as a list, cams as (N, H, W) or None)."""
    clean, adversarial = image_batch(clean, "clean"), image_batch(adversarial, "adversarial")
    if tuple(clean.shape) != tuple(adversarial.shape):
        raise ValueError(f"clean and adversarial must both be (N, C, H, W) with equal shapes; got {tuple(clean.shape)} "
                         f"and {tuple(adversarial.shape)}")
    panels = list(panels)
    if cams is None and tuple(panels) == PANELS:  # default panels without maps: leave the CAM column out
        panels.remove("cam")
    unknown = [p for p in panels if p not in PANELS]
    if unknown or not panels:
        raise ValueError(f"unknown panels {unknown}: choose from {PANELS}" if unknown else "panels must not be empty")
    if "cam" not in panels:
        cams = None  # maps for no CAM column are ignored
    elif cams is None:
        raise ValueError("the 'cam' panel needs cams=(N, H, W) maps (e.g. from class_activation_maps)")
    else:
        cams = map_batch(cams, "cams")
        if tuple(cams.shape) != (clean.shape[0], *clean.shape[2:]):
            raise ValueError(f"cams must have shape (N, H, W) = {(clean.shape[0], *clean.shape[2:])}; got {tuple(cams.shape)}")
        cams = _numpy(cams, "cams")
    if row_labels is not None and len(row_labels) != clean.shape[0]:
        raise ValueError(f"row_labels must have {clean.shape[0]} entries, one per row; got {len(row_labels)}")
    return _numpy(clean, "clean"), _numpy(adversarial, "adversarial"), panels, cams


def _grid(axes, rows: int, columns: int, panel_size: float):
    """(fig, axes as a (rows, columns) object array): a new figure, or the given axes reshaped."""
    if axes is None:
        return plt.subplots(rows, columns, figsize=(panel_size * columns, panel_size * rows), squeeze=False)
    if np.size(axes) != rows * columns:
        raise ValueError(f"axes must hold {rows} × {columns} axes")
    axes = np.asarray(axes, dtype=object).reshape(rows, columns)
    return axes[0, 0].figure, axes


def _panel(panel: str, ax, x: np.ndarray, x_adv: np.ndarray, cam, title: str | None) -> None:
    """Draw one panel of one row: x, x_adv (C, H, W) in [0, 1], cam (H, W) or None."""
    if panel == "original":
        show_image(x, ax, title)
    elif panel == "adversarial":
        show_image(x_adv, ax, title)
    elif panel == "perturbation":
        show_perturbation(x_adv - x, ax, title)
    elif panel == "mask":
        show_mask(x_adv - x, ax, title)
    elif panel == "clusters":
        show_clusters(x_adv - x, ax, title)
    else:
        show_cam(x, cam, ax, title)


def plot_examples(
    clean,
    adversarial,
    cams=None,
    *,
    panels: Sequence[str] = PANELS,
    row_labels: Sequence[str] | None = None,
    axes=None,
    panel_size: float = 1.8,
):
    """A grid of panels: one row per example (or per attack on the same image), one column per panel.

    Args:
        clean, adversarial: (N, C, H, W) float images in [0, 1] (rows; repeat the clean image to compare
            attacks), finite and channels first (a channels-last batch is a ValueError).
        cams: (N, H, W) finite float maps in [0, 1], needed for the ``"cam"`` panel (dropped from the default
            panels when None).
        panels: names from :data:`PANELS`, in column order.
        row_labels: N strings written left of each row (e.g. attack names).
        axes: an existing (N, len(panels)) array of axes to draw into.
        panel_size: inches per panel (new figures only).

    Returns:
        ``(fig, axes)`` with ``axes`` a 2-D (N, len(panels)) array.
    """
    clean, adversarial, panels, cams = _check_panels(clean, adversarial, cams, panels, row_labels)
    rows = clean.shape[0]
    fig, axes = _grid(axes, rows, len(panels), panel_size)
    for row in range(rows):
        for column, panel in enumerate(panels):
            title = _TITLES[panel] if row == 0 else None  # column titles on the first row only
            _panel(panel, axes[row, column], clean[row], adversarial[row], None if cams is None else cams[row], title)
        if row_labels is not None:
            axes[row, 0].set_ylabel(row_labels[row], fontsize=9)
    if fig.get_layout_engine() is None:  # a figure made with layout="constrained" lays itself out
        fig.tight_layout()
    return fig, axes
