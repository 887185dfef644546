"""Explainability analysis of adversarial perturbations (notebook API).

Conventions: images and perturbations are float tensors (B, C, H, W); images are in [0, 1] (every
``gse_explain`` model normalises internally); δ = x_adv − x in the same units. Maps over pixels are (B, H, W).
Results are returned on the input's device; models get their train/eval mode and ``requires_grad`` flags
back, and inputs are never modified.

Input checks (``analysis._inputs``, shared with :mod:`gse_explain.plotting`): NaN or inf in images,
perturbations, saliency maps or CAMs is a ValueError naming the argument and the first bad row, and so is
a model whose logits, activations or gradients are not finite (naming the rows); a channels-last
(B, H, W, C) array or tensor is a ValueError saying how to reorder it; other dimensions, non-float dtypes
and mismatched batch sizes or shapes are errors too. Nothing returns NaN maps or reads 32 channels.

Stores: every store-level function raises on an empty store, and on an incomplete one (a run that has not
written all its batches) unless ``allow_incomplete=True``; its tables then record their coverage
(``attrs["coverage"]``, and ``stored_images`` / ``selected_images`` columns; see :mod:`.runs`).
``weights=PATH`` rebuilds a run's model from a weights file that has moved since the run (its SHA-256
must match the store's).

Saliency and interpretability (spec §C.7)
    ``adversarial_saliency_map(model, images, labels, targets, sign_condition=False)`` → (B, C, H, W):
        ∂Z_t/∂x ⊙ |∂Z_y/∂x| per sample (w.r.t. [0, 1] inputs: 4× the paper's [-1, 1] values, same IS).
    ``interpretability_score(saliency, delta, percentiles=(50, …, 90))`` → (B, P) in [0, 1].
    ``saliency_threshold(saliency, percentiles)`` → (B, P) τ_P;  ``saliency_mask(saliency, P)`` → (B, C, H, W) bool.
    ``interpretability_table(store_or_run, model=None, …, weights=None, allow_incomplete=False)`` → tidy
        DataFrame (one row per example × P).
    ``interpretability_curves({name: store, …}, model=None, …)`` → (per-example table, curves with mean and band).
    ``aggregate_curves(table)`` → curves of an existing table;  ``write_csv(frame, path, overwrite=False)``.

Class activation maps (spec §C.8)
    ``class_activation_maps(model, images, classes, method="auto")`` → (B, H, W) in [0, 1].
    ``ClassActivationMap(model)`` (GAP + linear models), ``GradCAM(model, target_layer=None)`` (VGG, ViT, any
    layer); both are context managers owning their forward hook; ``.raw_maps(images, classes)`` gives the
    un-normalised (B, h, w) maps.

Clusters and alignment
    ``perturbation_clusters(delta)`` → (labels (B, H, W) int32, table of size / centroid / bbox / energy share).
    ``cam_alignment(cam, delta, top_percent=20)`` → (B,) share of δ's energy in the top-q % CAM region.
    ``cam_alignment_table(store_or_run, model=None, …)``, ``cam_alignment_curves({name: store}, …)``.

Figures: :mod:`gse_explain.plotting`.
"""

from .aggregate import mean_band, summarize_groups
from .alignment import cam_alignment, cam_alignment_curves, cam_alignment_table, top_cam_region
from .cam import (
    CAMExtractor,
    ClassActivationMap,
    GradCAM,
    default_gradcam_layer,
    find_gap_linear_head,
    upsample_and_normalize,
    vit_token_reshape,
)
from .explanations import (
    CAM_METHODS,
    CAPTUM_METHODS,
    class_activation_maps,
    explain,
    get_explanation,
    list_explanations,
    register_explanation,
    unregister_explanation,
)
from .clusters import cluster_table, perturbation_clusters
from .curves import aggregate_curves, interpretability_curves, interpretability_table
from .export import read_csv, write_csv
from .interpretability import DEFAULT_PERCENTILES, interpretability_score, saliency_mask, saliency_threshold
from .saliency import adversarial_saliency_map

__all__ = [
    "CAMExtractor",
    "ClassActivationMap",
    "DEFAULT_PERCENTILES",
    "GradCAM",
    "adversarial_saliency_map",
    "aggregate_curves",
    "cam_alignment",
    "cam_alignment_curves",
    "cam_alignment_table",
    "class_activation_maps",
    "cluster_table",
    "default_gradcam_layer",
    "find_gap_linear_head",
    "interpretability_curves",
    "interpretability_score",
    "interpretability_table",
    "mean_band",
    "perturbation_clusters",
    "read_csv",
    "saliency_mask",
    "saliency_threshold",
    "summarize_groups",
    "top_cam_region",
    "upsample_and_normalize",
    "vit_token_reshape",
    "write_csv",
]
