"""Cluster labelling of perturbations: where the groups of changed pixels are and how much of δ each holds.

A *cluster* is a 4-connected component of the changed-pixel mask (a pixel is changed when any channel of
δ is non-zero; diagonal neighbours are separate clusters), exactly the components ANC counts: labels come
from :func:`gse_explain.distances.cluster_labels`, so the count here always equals ``distances.anc``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy import ndimage

from ..distances import changed_pixel_mask, cluster_labels
from ._inputs import image_batch

__all__ = ["CLUSTER_COLUMNS", "cluster_table", "perturbation_clusters"]

#: Columns of :func:`cluster_table`.
CLUSTER_COLUMNS = [
    "example", "cluster", "size", "centroid_row", "centroid_col",
    "bbox_top", "bbox_left", "bbox_bottom", "bbox_right", "energy", "energy_share",
]


def perturbation_clusters(delta) -> tuple[np.ndarray, pd.DataFrame]:
    """Label the clusters of each perturbation and describe every cluster.

    Args:
        delta: (B, C, H, W) perturbations x_adv − x (tensor or numpy array), any scale; float, finite and
            channels first (NaN/inf or a channels-last layout is a ValueError).

    Returns:
        ``(labels, table)``: ``labels`` is an int32 (B, H, W) array, 0 for unchanged pixels and 1..count_b
        for the clusters of example b; ``table`` is :func:`cluster_table` of them.
    """
    delta = image_batch(delta, "delta")
    masks = changed_pixel_mask(delta).cpu().numpy()
    labels = np.zeros(masks.shape, dtype=np.int32)
    for index, mask in enumerate(masks):
        labels[index] = cluster_labels(mask)[0]
    return labels, cluster_table(labels, delta)


def _label_maps(labels) -> np.ndarray:
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    labels = np.asarray(labels)
    if labels.dtype == bool or not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must be integer cluster labels (0 = unchanged, 1..count); got dtype {labels.dtype}")
    if labels.size and int(labels.min()) < 0:
        raise ValueError(f"labels must be ≥ 0 (0 = unchanged pixel); got {int(labels.min())}")
    return labels


def cluster_table(labels: np.ndarray, delta) -> pd.DataFrame:
    """One row per (example, cluster) of a (B, H, W) label map and its (B, C, H, W) perturbations.

    Columns:
        ``example`` (row b of the batch), ``cluster`` (label 1..count), ``size`` (pixels), ``centroid_row``,
        ``centroid_col`` (mean pixel coordinates, unweighted, rows from the top), ``bbox_top``,
        ``bbox_left``, ``bbox_bottom``, ``bbox_right`` (half-open like slices: the cluster lies in
        ``labels[b, top:bottom, left:right]``), ``energy`` (Σ δ² over the cluster's pixels and all channels,
        in the units of δ squared) and ``energy_share`` (energy / Σ δ² of the whole perturbation; the
        shares of an example sum to 1). An example without changed pixels has no rows.

    ``labels`` must be non-negative integers of shape (B, H, W) matching ``delta`` (B, C, H, W), a finite float
    perturbation (TypeError / ValueError otherwise).
    """
    delta = image_batch(delta, "delta")
    labels = _label_maps(labels)
    if labels.ndim != 3 or labels.shape != (delta.shape[0], *delta.shape[2:]):
        raise ValueError(
            f"labels must have shape (B, H, W) = {(delta.shape[0], *delta.shape[2:])} to match delta {tuple(delta.shape)}; "
            f"got {labels.shape}"
        )
    pixel_energy = delta.detach().double().square().sum(dim=1).cpu().numpy()  # (B, H, W)
    rows = []
    for example, (label_map, energy_map) in enumerate(zip(labels, pixel_energy)):
        count = int(label_map.max(initial=0))
        if count == 0:
            continue
        flat = label_map.ravel()
        width = label_map.shape[1]
        row_index, col_index = np.divmod(np.arange(flat.size), width)
        sizes = np.bincount(flat, minlength=count + 1)[1:]
        row_sum = np.bincount(flat, weights=row_index, minlength=count + 1)[1:]
        col_sum = np.bincount(flat, weights=col_index, minlength=count + 1)[1:]
        energy = np.bincount(flat, weights=energy_map.ravel(), minlength=count + 1)[1:]
        total = float(energy_map.sum())
        boxes = ndimage.find_objects(label_map, max_label=count)
        for cluster in range(count):
            box = boxes[cluster]
            rows.append({
                "example": example,
                "cluster": cluster + 1,
                "size": int(sizes[cluster]),
                "centroid_row": row_sum[cluster] / sizes[cluster],
                "centroid_col": col_sum[cluster] / sizes[cluster],
                "bbox_top": box[0].start,
                "bbox_left": box[1].start,
                "bbox_bottom": box[0].stop,
                "bbox_right": box[1].stop,
                "energy": float(energy[cluster]),
                "energy_share": float(energy[cluster]) / total if total > 0 else float("nan"),
            })
    return pd.DataFrame(rows, columns=CLUSTER_COLUMNS).astype(
        {"example": "int64", "cluster": "int64", "size": "int64", "bbox_top": "int64", "bbox_left": "int64",
         "bbox_bottom": "int64", "bbox_right": "int64", "centroid_row": "float64", "centroid_col": "float64",
         "energy": "float64", "energy_share": "float64"}
    )
