"""Sparsity and size measures of perturbations (spec §C.4).

Every measure takes a perturbation ``delta = adversarial - clean`` of shape (B, C, H, W) and returns one
value per example. This module is the single place where these quantities are defined: the attacks (GSE's
λ search selects by :func:`d20`), the evaluation records and the analysis layer all call it.

Conventions
-----------
- A *pixel* is a spatial location (h, w) across all C channels; it is *changed* when any channel of
  ``delta`` is non-zero. The comparison is exact (no threshold), as in the reference code.
- ``l2`` is measured on the scale of the box the attack ran in, multiplied by ``scale``. The paper reports
  ℓ2 on the [-1, 1] scale; :func:`l2_scale_to_unit_box` gives the factor for other boxes.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

__all__ = [
    "changed_pixel_mask",
    "acp",
    "anc",
    "l2",
    "d20",
    "cluster_labels",
    "l2_scale_to_unit_box",
]

# 4-connectivity (a diagonal pair of pixels is two clusters), as in the reference ANC.
_FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)


def _check_delta(delta: torch.Tensor) -> None:
    if not isinstance(delta, torch.Tensor) or delta.dim() != 4:
        shape = tuple(delta.shape) if isinstance(delta, torch.Tensor) else type(delta).__name__
        raise ValueError(f"delta must be a tensor of shape (B, C, H, W); got {shape}")


def changed_pixel_mask(delta: torch.Tensor) -> torch.Tensor:
    """Boolean (B, H, W) mask of pixels where any channel of ``delta`` (B, C, H, W) is non-zero."""
    _check_delta(delta)
    return (delta != 0).any(dim=1)


def acp(delta: torch.Tensor) -> torch.Tensor:
    """Number of changed pixels per example ("ACP", pixel ℓ0), int64 tensor of shape (B,)."""
    return changed_pixel_mask(delta).flatten(1).sum(dim=1)


def cluster_labels(mask: np.ndarray | torch.Tensor) -> tuple[np.ndarray, int]:
    """Label the 4-connected clusters of one (H, W) boolean mask.

    Returns ``(labels, count)``: an int32 (H, W) array with 0 for unchanged pixels and 1..count for the
    clusters, and the number of clusters.
    """
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must have shape (H, W); got {mask.shape}")
    labels, count = ndimage.label(mask, structure=_FOUR_CONNECTED)
    return labels.astype(np.int32), int(count)


def anc(delta: torch.Tensor) -> torch.Tensor:
    """Number of 4-connected clusters of changed pixels per example ("ANC"), int64 tensor (B,).

    An all-zero perturbation has 0 clusters.
    """
    masks = changed_pixel_mask(delta).cpu().numpy()
    return torch.tensor([cluster_labels(m)[1] for m in masks], dtype=torch.int64)


def l2(delta: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Euclidean norm over all C·H·W entries per example, times ``scale``; float64 tensor (B,)."""
    _check_delta(delta)
    return delta.detach().double().flatten(1).norm(dim=1) * scale


def d20(delta: torch.Tensor, patch_size: int = 8) -> torch.Tensor:
    """Group-sparsity d_{2,0}: number of overlapping ``patch_size``² patches with non-zero ℓ2 norm.

    All stride-1 patch positions inside the image are counted ((H-p+1)(W-p+1) of them: 625 for 32×32,
    47,089 for 224×224). A patch has non-zero norm exactly when it contains a changed pixel, so this is the
    sum of a stride-1 max-pool of the changed-pixel mask. Returns an int64 tensor (B,).
    """
    mask = changed_pixel_mask(delta)
    _, height, width = mask.shape
    if patch_size < 1 or patch_size > min(height, width):
        raise ValueError(f"patch_size must be in [1, {min(height, width)}] for {height}×{width} images; got {patch_size}")
    pooled = F.max_pool2d(mask[:, None].float(), kernel_size=patch_size, stride=1)
    return pooled.flatten(1).sum(dim=1).round().to(torch.int64)


def l2_scale_to_unit_box(bounds: tuple[float, float]) -> float:
    """Factor that converts an ℓ2 norm measured in a box ``bounds=(lo, hi)`` to the [-1, 1] scale."""
    lo, hi = bounds
    return 2.0 / (hi - lo)
