"""CIFAR-10 test set: torchvision's folder layout or a compact .npz file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np
import torchvision

from ._base import ArrayImageDataset

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_BATCH_FOLDER = "cifar-10-batches-py"


def cifar10(root: Union[str, os.PathLike], download: bool = False) -> ArrayImageDataset:
    """The 10,000 CIFAR-10 test images via ``torchvision.datasets.CIFAR10``.

    Args:
        root: folder containing ``cifar-10-batches-py`` (torchvision's layout),
            or where to download it.
        download: fetch the archive from the internet if it is missing.

    Returns:
        Dataset of (3, 32, 32) float32 images in [0, 1], labels 0..9, and
        ``index`` = official test-set index.
    """
    root = Path(root).expanduser()
    batches = root / _BATCH_FOLDER
    if not download and not (batches / "test_batch").is_file():
        raise FileNotFoundError(
            f"CIFAR-10 not found under root='{root}' (expected '{batches / 'test_batch'}'): "
            f"pass download=True, or point root to the folder containing '{_BATCH_FOLDER}'"
        )
    try:
        base = torchvision.datasets.CIFAR10(str(root), train=False, download=download)
    except RuntimeError as exc:
        raise RuntimeError(
            f"torchvision could not read CIFAR-10 from root='{root}' ({exc}). torchvision verifies the md5 of "
            f"every file of the official '{_BATCH_FOLDER}' folder (train and test batches and batches.meta): "
            "re-download with download=True, or use cifar10_npz() for a subset stored as .npz"
        ) from exc
    images = np.asarray(base.data, dtype=np.uint8)
    return ArrayImageDataset(
        images, list(base.targets), list(range(len(images))), name="cifar10", num_classes=10
    )


def cifar10_npz(path: Union[str, os.PathLike]) -> ArrayImageDataset:
    """CIFAR-10 images stored as a NumPy ``.npz`` file.

    Args:
        path: ``.npz`` with ``x`` (uint8, N x 32 x 32 x 3, NHWC, RGB), ``y``
            (N integer labels in 0..9) and optionally ``index`` (N original
            test-set indices; defaults to 0..N-1).

    Returns:
        Dataset of (3, 32, 32) float32 images in [0, 1].
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(
            f"npz file '{p}' not found: pass path=PATH to an .npz with arrays x (N,32,32,3 uint8) and y (N,)"
        )
    try:
        with np.load(p, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as exc:  # zip/format errors all mean "not a readable npz"
        raise ValueError(f"'{p}' is not a readable .npz file ({exc})") from exc
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise ValueError(
            f"npz file '{p}' lacks the array(s) {missing}: expected keys 'x' (N,32,32,3 uint8), "
            f"'y' (N,) and optional 'index' (N,); found {sorted(arrays)}"
        )
    x, y = arrays["x"], arrays["y"]
    if x.ndim != 4 or x.shape[1:] != (32, 32, 3):
        hint = " (it looks like NCHW: transpose to NHWC)" if x.ndim == 4 and x.shape[1] == 3 else ""
        raise ValueError(f"npz file '{p}': x must be shaped (N, 32, 32, 3) NHWC, got {x.shape}{hint}")
    if x.dtype != np.uint8:
        raise ValueError(
            f"npz file '{p}': x must be uint8 (0..255), got {x.dtype}; "
            "convert [0, 1] floats with (x * 255).round().astype(np.uint8)"
        )
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"npz file '{p}': y must be shaped ({len(x)},) to match x, got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer) or (len(y) and (y.min() < 0 or y.max() > 9)):
        raise ValueError(f"npz file '{p}': y must hold integer labels in 0..9, got dtype {y.dtype}")
    index = arrays.get("index", np.arange(len(x)))
    if index.ndim != 1 or len(index) != len(x) or not np.issubdtype(index.dtype, np.integer):
        raise ValueError(
            f"npz file '{p}': index must be ({len(x)},) integers to match x, got {index.dtype} {index.shape}"
        )
    return ArrayImageDataset(x, y.tolist(), index.tolist(), name="cifar10", num_classes=10)
