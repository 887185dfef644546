"""SLIC superpixels for the group-wise baselines (Homotopy-Attack, SAPF).

Both attacks group the entries of a perturbation by the superpixels of the *clean* image: a group is one
superpixel across all channels. This module computes the segments and the flat group index the attacks
scatter over.

Segments are computed with ``skimage.segmentation.slic`` on the real image, i.e. the image mapped to
[0, 1] from its box, as a float (H, W, C) array with ``channel_axis=-1``. For RGB images skimage converts
to CIELAB first (``convert2lab`` default), exactly what the SAPF authors' code gets from its uint8 RGB
input, so ``compactness=10`` (both attacks' value) keeps its usual meaning (Lab distances in [0, 100]).
``n_segments`` is only a target: SLIC's grid initialisation and connectivity enforcement give roughly that
many segments (for example about 100–150 for n_segments=150 on a 32×32 CIFAR image).

Labels are returned relabelled to 0..n_b−1 (contiguous, in order of first label) per image b.

Deviation from the GSE authors' code: their SAPF casts the [-1, 1] tensor to uint8 before SLIC (almost
every value becomes 0, 1 or 255, so the segments are close to a regular grid), and their Homotopy runs SLIC
on the [-1, 1] values, which skimage's RGB→Lab conversion misreads as out-of-gamut colours. Here both use
the real image. The attacks' ``variant="reference"`` reproduces the port's inputs (``source`` below):
``"uint8_cast"`` (SAPF) and ``"signed"`` (Homotopy).
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.segmentation import slic

__all__ = ["SLIC_SOURCES", "slic_segments", "slic_input", "group_ids"]

#: What SLIC sees: the real image in [0, 1] (default), the [-1, 1] values (the Homotopy port) or the [-1, 1]
#: tensor cast to uint8 (the SAPF port).
SLIC_SOURCES = ("real", "signed", "uint8_cast")


def slic_input(images: torch.Tensor, bounds: tuple[float, float], source: str = "real") -> np.ndarray:
    """The (B, H, W, C) array SLIC segments for ``images`` (B, C, H, W) in ``bounds``.

    ``"real"``: float64 in [0, 1]. ``"signed"``: float64 on the canonical [-1, 1] scale (the Homotopy port).
    ``"uint8_cast"``: the canonical [-1, 1] values cast to uint8 as C/numpy/torch casts do on x86 (truncation
    toward zero, then modulo 256): -1 → 255, 1 → 1, everything else → 0 (the SAPF port; made explicit here
    because casting negative floats to uint8 is undefined behaviour in C).
    """
    if source not in SLIC_SOURCES:
        raise ValueError(f"source must be one of {SLIC_SOURCES}; got {source!r}")
    lo, hi = bounds
    unit = ((images.detach().to("cpu", torch.float64) - lo) / (hi - lo)).clamp(0.0, 1.0)
    if source == "real":
        values = unit
    else:
        values = unit * 2.0 - 1.0
        if source == "uint8_cast":
            values = torch.remainder(torch.trunc(values).to(torch.int64), 256).to(torch.uint8)
    return values.permute(0, 2, 3, 1).numpy()


def slic_segments(
    images: torch.Tensor,
    bounds: tuple[float, float] = (0.0, 1.0),
    n_segments: int = 100,
    compactness: float = 10.0,
    source: str = "real",
) -> torch.Tensor:
    """SLIC superpixels of each image.

    Args:
        images: (B, C, H, W) float images inside ``bounds``.
        bounds: the images' box (lo, hi); images are mapped to [0, 1] before SLIC.
        n_segments: approximate number of superpixels per image (SLIC's target).
        compactness: SLIC compactness (colour vs. space trade-off); 10 is skimage's default.
        source: what SLIC sees (:data:`SLIC_SOURCES`, :func:`slic_input`): ``"real"`` (default), or the
            GSE authors' ports' inputs ``"signed"`` (Homotopy) and ``"uint8_cast"`` (SAPF).

    Returns:
        (B, H, W) int64 tensor on ``images.device`` with labels 0..n_b−1 per image.
    """
    if images.dim() != 4:
        raise ValueError(f"images must have shape (B, C, H, W); got {tuple(images.shape)}")
    if n_segments < 1:
        raise ValueError(f"n_segments must be ≥ 1; got {n_segments}")
    if compactness <= 0:
        raise ValueError(f"compactness must be > 0; got {compactness}")
    arrays = slic_input(images, bounds, source)  # (B, H, W, C)
    out = np.empty(arrays.shape[:3], dtype=np.int64)
    for b, array in enumerate(arrays):
        labels = slic(
            array,
            n_segments=int(n_segments),
            compactness=float(compactness),
            channel_axis=-1,
            convert2lab=array.shape[-1] == 3,
            start_label=0,
        )
        _, inverse = np.unique(labels, return_inverse=True)
        out[b] = inverse.reshape(labels.shape)
    return torch.from_numpy(out).to(images.device)


def group_ids(segments: torch.Tensor, channels: int) -> tuple[torch.Tensor, int, torch.Tensor]:
    """Global group ids for a batch: superpixel s of image b becomes group offset_b + s.

    Args:
        segments: (B, H, W) int64 labels 0..n_b−1 per image (as from :func:`slic_segments`).
        channels: C; every channel of a pixel belongs to the pixel's group.

    Returns:
        ``(ids, total, counts)``: ids (B, C, H, W) int64 global group ids, total = Σ_b n_b, and
        counts (B,) int64 = n_b. Use ``torch.zeros(total).index_add_(0, ids.flatten(), values.flatten())``
        for per-group sums and ``per_group[ids]`` to broadcast back.
    """
    counts = segments.flatten(1).amax(dim=1) + 1
    offsets = torch.cumsum(counts, 0) - counts
    ids = (segments + offsets.view(-1, 1, 1)).unsqueeze(1).expand(-1, channels, -1, -1).contiguous()
    return ids, int(counts.sum().item()), counts
