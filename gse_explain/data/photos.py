"""Natural photographs shipped inside scikit-image (no download needed)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ._base import ArrayImageDataset, SizeSpec, resolve_size

DEFAULT_PHOTOS = ("chelsea", "coffee", "rocket", "astronaut")


def _load_photo(name: str) -> np.ndarray:
    import skimage.data

    loader = getattr(skimage.data, name, None)
    if not callable(loader) or name.startswith("_"):
        raise ValueError(
            f"names contains {name!r}, which is not an image of skimage.data: use e.g. {list(DEFAULT_PHOTOS)}"
        )
    img = np.asarray(loader())
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]  # alpha carries no class information
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"skimage.data.{name}() is not a 2-D photograph (shape {img.shape}): pick another name")
    if img.dtype != np.uint8:
        if np.issubdtype(img.dtype, np.floating):
            img = np.clip(img, 0.0, 1.0) * 255.0
        img = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return img


def skimage_photos(names: Sequence[str] = DEFAULT_PHOTOS, size: SizeSpec = 224) -> ArrayImageDataset:
    """scikit-image's sample photographs as an ImageNet-style dataset.

    Args:
        names: functions of ``skimage.data`` (e.g. "chelsea", "coffee",
            "rocket", "astronaut"); grey images are replicated to RGB.
        size: output size in pixels (int = square, or (H, W)); photos are
            squashed with bilinear, antialiased resizing.

    Returns:
        Dataset of (3, size, size) float32 images in [0, 1], label -1 (take
        the model's prediction), ``num_classes`` 1000, ``index`` 0..N-1 and
        ``names``.
    """
    if isinstance(names, str):
        names = (names,)
    names = list(names)
    if not names:
        raise ValueError("names is empty: pass at least one skimage.data image name, e.g. ('chelsea',)")
    hw = resolve_size(size)
    resized = []
    for name in names:
        img = _load_photo(name)
        if hw is not None:
            t = torch.from_numpy(img).permute(2, 0, 1)[None].float()
            t = F.interpolate(t, size=hw, mode="bilinear", antialias=True, align_corners=False)
            img = t[0].round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
        resized.append(img)
    if len({im.shape for im in resized}) > 1:
        raise ValueError(f"photos {names} differ in size: pass size=INT to resize them to a common size")
    return ArrayImageDataset(
        np.stack(resized), [-1] * len(names), list(range(len(names))), name="skimage", num_classes=1000, names=names
    )
