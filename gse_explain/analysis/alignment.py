"""CAM–perturbation alignment: how much of the perturbation's energy lies where the model looks.

For a class activation map M (H, W) and a perturbation δ (C, H, W)::

    region_q  = the pixels with M ≥ τ_q, τ_q = the k-th largest value of M, k = ⌈q/100 · H·W⌉
    alignment = Σ_{(h,w) ∈ region_q} Σ_c δ²_{c,h,w}  /  Σ δ²

i.e. the share of the perturbation's squared ℓ2 norm ("energy") inside the top-q % CAM region. Ties at τ_q
are all included, so the region can be larger than q % (flat maps, e.g. the zeros of Grad-CAM); the
region's actual pixel share is reported beside the score as ``region_fraction``, which is also what a
perturbation spread uniformly over the image would score (the chance level).

Other explanations (``saliency=``): instead of a CAM, the region can come from any explanation method
(:mod:`gse_explain.analysis.explanations`; e.g. ``"integrated_gradients"``, ``"asm"``, a callable), computed on
the clean image for the same class (``cam_class``; the ASM uses the true label as y) and reduced to one map
per pixel by **summing its channels** (signed). ``saliency=None`` (default) keeps the CAM of ``method=``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from ._inputs import image_batch, map_batch, percentile_list
from .runs import (
    COVERAGE_COLUMNS,
    base_columns,
    check_coverage,
    column_tensor,
    iter_row_batches,
    long_format,
    named_runs,
    open_run,
    run_label,
    run_model,
    weights_for,
    with_coverage,
)
from .explanations.cams import class_activation_maps
from .explanations.registry import resolve_explanation
from .explanations.stored import stored_maps
from .curves import aggregate_curves

__all__ = ["CAM_CLASSES", "DEFAULT_TOP_PERCENTS", "cam_alignment", "cam_alignment_curves", "cam_alignment_table",
           "top_cam_region"]

DEFAULT_TOP_PERCENTS = (10, 20, 30, 40, 50)
CAM_CLASSES = ("label", "target")


def top_cam_region(cam, top_percent: float) -> torch.Tensor:
    """Boolean (B, H, W) mask of the top-``top_percent`` % pixels of each (B, H, W) map (ties included).

    ``cam`` must be finite float (B, H, W) maps (NaN/inf, a (B, 1, H, W) or other shape: ValueError).
    """
    cam = map_batch(cam, "cam")
    (top_percent,) = percentile_list([top_percent], "top_percent")
    flat = cam.detach().flatten(1)
    k = max(1, math.ceil(top_percent / 100 * flat.shape[1]))
    threshold = flat.topk(k, dim=1).values[:, -1:]
    return (flat >= threshold).view_as(cam)


def cam_alignment(cam, delta, top_percent: float = 20.0) -> torch.Tensor:
    """Share of each perturbation's energy inside the top-q % region of its CAM.

    Args:
        cam: (B, H, W) float maps (any scale; only the order of values matters), e.g. from
            :func:`~gse_explain.analysis.class_activation_maps`.
        delta: (B, C, H, W) float perturbations with the same B, H, W.
        Both must be finite, and ``delta`` channels first (ValueError otherwise).
        top_percent: q in (0, 100].

    Returns:
        float64 (B,) in [0, 1]; NaN for a zero perturbation.
    """
    cam = map_batch(cam, "cam")
    delta = image_batch(delta, "delta")
    if (cam.shape[0], *cam.shape[1:]) != (delta.shape[0], *delta.shape[2:]):
        raise ValueError(
            f"cam {tuple(cam.shape)} and delta {tuple(delta.shape)} must agree in batch size and H × W "
            "(upsample the CAM to the image size first)"
        )
    region = top_cam_region(cam, top_percent).to(delta.device)
    energy = delta.detach().double().square().sum(dim=1)
    return (energy * region).flatten(1).sum(dim=1) / energy.flatten(1).sum(dim=1)


def cam_alignment_table(
    run,
    model=None,
    *,
    top_percents=DEFAULT_TOP_PERCENTS,
    cam_class: str = "label",
    method: str = "auto",
    target_layer=None,
    successful_only: bool = False,
    attack: str | None = None,
    device="cpu",
    weights=None,
    allow_incomplete: bool = False,
    saliency=None, saliency_settings=None, saliency_seed: int = 0, cache=True,
    batch_size: int | None = None, upsample: str | None = None,
) -> pd.DataFrame:
    """CAM alignment of every stored row with ‖δ‖₂ > 0, in tidy (long) form.

    The CAM is computed on the clean image (as the paper's figures) for ``cam_class``: ``"label"`` (the
    true class, default, as the paper) or ``"target"`` (the stored target; targeted runs only), with
    :func:`~gse_explain.analysis.class_activation_maps` (``method``, ``target_layer``). ``model=None``
    rebuilds the run's model (``weights``: its weights file when it has moved since the run, accepted when
    its SHA-256 matches the store's). ``allow_incomplete``: analyse a store whose run has not written all its
    batches (an error otherwise; see :mod:`gse_explain.analysis.runs`). ``saliency``: None (the CAM) or an
    explanation method whose channel-summed map defines the region (module docstring), with
    ``saliency_settings``, ``saliency_seed`` and ``cache`` as in :func:`~gse_explain.analysis.interpretability_table`.
    ``batch_size``: images per model call; ``upsample``: the CAM's upsampling (default bicubic).

    Returns:
        One row per (example row, q): ``attack``, ``batch``, ``image``, ``example``, ``label``, ``target``,
        ``offset``, ``success``, ``l2``, ``top_percent``, ``region_fraction`` (pixel share of the region:
        the chance level) and ``energy_share`` (the alignment); for an incomplete store also
        ``stored_images`` and ``selected_images``. ``attrs["coverage"]`` = ``{attack name: coverage}``.
    """
    run = open_run(run)
    values = percentile_list(top_percents, "top_percents")
    if cam_class not in CAM_CLASSES:
        raise ValueError(f"cam_class must be one of {CAM_CLASSES}; got {cam_class!r}")
    if cam_class == "target" and not run.config.get("targeted"):
        raise ValueError(f"cam_class='target' needs a targeted run; {run.store.path} is untargeted")
    name = run_label(run) if attack is None else attack
    coverage = check_coverage(run, allow_incomplete)
    model = run_model(run, model, device, weights=weights_for(weights, name, model))
    parts = []
    for rows, maps in _alignment_maps(run, model, cam_class, method, target_layer, successful_only, allow_incomplete,
                                      saliency, saliency_settings, saliency_seed, cache, batch_size, upsample):
        delta = rows.delta
        share = np.stack([cam_alignment(maps, delta, q).numpy() for q in values], axis=1)
        fraction = np.stack([top_cam_region(maps, q).flatten(1).double().mean(dim=1).numpy() for q in values], axis=1)
        table = long_format(base_columns(rows.records, name), "top_percent", values, "energy_share", share)
        table.insert(len(table.columns) - 1, "region_fraction", fraction.reshape(-1))
        parts.append(table)
    if parts:
        table = pd.concat(parts, ignore_index=True)
    else:
        columns = [*base_columns(run.records.head(0), name).columns, "top_percent", "region_fraction", "energy_share"]
        table = pd.DataFrame(columns=columns)
    return with_coverage(table, {name: coverage})


def _alignment_maps(run, model, cam_class, method, target_layer, successful_only, allow_incomplete, saliency,
                    saliency_settings, saliency_seed, cache, batch_size, upsample):
    """``(rows, (rows, H, W) maps)`` per stored batch: CAMs, or channel-summed explanation maps."""
    if saliency is None:
        if saliency_settings is not None:
            raise ValueError("saliency_settings= needs saliency= (a method name); the CAM's options are method= and target_layer=")
        for rows in iter_row_batches(run, successful_only=successful_only, allow_incomplete=allow_incomplete):
            yield rows, _row_maps(model, rows, cam_class, method, target_layer, batch_size, upsample)
        return
    explanation = resolve_explanation(saliency, saliency_settings)
    column = "label" if cam_class == "label" else "target"
    maps = stored_maps(run, model, explanation, classes_of=lambda rows: column_tensor(rows.records, column),
                       rows_key={"classes": column}, successful_only=successful_only, allow_incomplete=allow_incomplete,
                       batch_size=batch_size or 64, seed=saliency_seed, cache=cache)
    for rows, _, row_maps in maps:
        yield rows, row_maps.sum(dim=1).float().cpu()


def _row_maps(model, rows, cam_class: str, method: str, target_layer, batch_size=None, upsample=None) -> torch.Tensor:
    """(rows, H, W) CAMs of the rows' clean images, for their label (one map per image) or target."""
    image_index = column_tensor(rows.records, "image")
    if cam_class == "target":
        return class_activation_maps(model, rows.clean, column_tensor(rows.records, "target"), method=method,
                                     target_layer=target_layer, batch_size=batch_size, upsample=upsample)
    # One map per clean image, shared by all its target rows.
    labels = torch.zeros(rows.clean_images.shape[0], dtype=torch.int64)
    labels[image_index] = column_tensor(rows.records, "label")
    used = torch.unique(image_index)
    maps = torch.zeros(rows.clean_images.shape[0], *rows.clean_images.shape[2:])
    maps[used] = class_activation_maps(model, rows.clean_images[used], labels[used], method=method,
                                       target_layer=target_layer, batch_size=batch_size, upsample=upsample)
    return maps[image_index]


def cam_alignment_curves(
    runs,
    model=None,
    *,
    top_percents=DEFAULT_TOP_PERCENTS,
    cam_class: str = "label",
    method: str = "auto",
    target_layer=None,
    successful_only: bool = False,
    level: float = 0.95,
    band: str = "t",
    n_boot: int = 2000,
    seed: int = 0,
    device="cpu",
    by_image: bool = False,
    weights=None,
    allow_incomplete: bool = False,
    saliency=None,
    saliency_settings=None,
    saliency_seed: int = 0,
    cache=True,
    batch_size: int | None = None,
    upsample: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """CAM alignment of several runs: ``(per_example_table, summary)``.

    ``summary`` has one row per (attack, top_percent): ``n``, ``mean``, ``std``, ``band_low``, ``band_high``
    of ``energy_share`` (see :func:`~gse_explain.analysis.aggregate_curves`), plus ``chance`` (the mean
    ``region_fraction``, what a uniformly spread perturbation would score). ``by_image`` averages each
    image's rows first (see :func:`~gse_explain.analysis.aggregate_curves`). ``weights`` (one path, or
    ``{run name: path}``) and ``allow_incomplete`` (every store is checked before any is analysed; tables of
    incomplete runs end in ``stored_images``, ``selected_images``): see
    :func:`~gse_explain.analysis.interpretability_curves`. ``saliency``, ``saliency_settings``, ``saliency_seed``, ``cache``,
    ``batch_size``, ``upsample``: see :func:`cam_alignment_table`.
    """
    named = named_runs(runs)
    if saliency is not None:
        resolve_explanation(saliency, saliency_settings)  # fail before any map is computed
    coverage = {name: check_coverage(run, allow_incomplete) for name, run in named.items()}
    cache: dict = {}
    tables = [
        cam_alignment_table(run, run_model(run, model, device, cache, weights=weights_for(weights, name, model)),
                            top_percents=top_percents, cam_class=cam_class, method=method, target_layer=target_layer,
                            successful_only=successful_only, attack=name, allow_incomplete=allow_incomplete,
                            saliency=saliency, saliency_settings=saliency_settings, saliency_seed=saliency_seed, cache=cache,
                            batch_size=batch_size, upsample=upsample)
        for name, run in named.items()
    ]
    table = with_coverage(pd.concat(tables, ignore_index=True), coverage)
    summary = aggregate_curves(table, x="top_percent", value="energy_share", level=level, band=band, n_boot=n_boot,
                               seed=seed, by_image=by_image)
    chance = table.groupby(["attack", "top_percent"], sort=False)["region_fraction"].mean()
    summary["chance"] = [chance[(a, q)] for a, q in zip(summary["attack"], summary["top_percent"])]
    coverage_columns = [c for c in COVERAGE_COLUMNS if c in summary.columns]
    summary = summary[[c for c in summary.columns if c not in coverage_columns] + coverage_columns]
    summary.attrs["coverage"] = table.attrs["coverage"]
    return table, summary
