"""Shared dataset classes: in-memory uint8 arrays and lists of image files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import v2 as T

SizeSpec = Union[int, Tuple[int, int], None]


def resolve_size(size: SizeSpec, arg: str = "size") -> Optional[Tuple[int, int]]:
    """``int`` -> (size, size); ``(h, w)`` as is; ``None`` stays None (keep the native size)."""
    if size is None:
        return None
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        pair = (int(size), int(size))
    else:
        try:
            h, w = size  # type: ignore[misc]
            pair = (int(h), int(w))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{arg}={size!r} is invalid: expected a positive int or an (height, width) pair") from exc
    if min(pair) < 1:
        raise ValueError(f"{arg}={size!r} is invalid: sizes are in pixels and must be >= 1")
    return pair


class ImageDataset(Dataset):
    """Base class: items are ``(image, label)``.

    ``image`` is a float32 tensor (C, H, W) in [0, 1]; ``label`` an int, -1
    when unknown (then take the model's prediction as the label).

    Attributes:
        name: dataset name.
        num_classes: number of classes of the label space.
        labels_known: True when every item has a label >= 0.
        index: original dataset index of each item (list of int), so results
            can name the examples they come from.
        labels: label of each item (list of int).
    """

    name: str
    num_classes: int
    index: List[int]
    labels: List[int]

    @property
    def labels_known(self) -> bool:
        return all(lbl >= 0 for lbl in self.labels)

    def __len__(self) -> int:
        return len(self.index)

    def _check_position(self, i: int) -> int:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"item {i} out of range for dataset {self.name!r} with {n} items")
        return i % n

    def _subset_attrs(self, positions: Sequence[int]) -> List[int]:
        return [self._check_position(int(p)) for p in positions]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, items={len(self)}, "
            f"num_classes={self.num_classes}, labels_known={self.labels_known})"
        )


class ArrayImageDataset(ImageDataset):
    """Images held in memory as a uint8 array (N, H, W, C).

    Args:
        images: uint8 array (N, H, W, C), values 0..255.
        labels: N ints (-1 = unknown).
        index: N original indices.
        name, num_classes: dataset attributes.
        names: optional N strings naming the items.
    """

    def __init__(self, images: np.ndarray, labels, index, *, name: str, num_classes: int, names=None):
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(f"images must be a uint8 array shaped (N, H, W, C), got {images.dtype} {images.shape}")
        if len(labels) != len(images) or len(index) != len(images):
            raise ValueError(
                f"got {len(images)} images but {len(labels)} labels and {len(index)} indices: they must match"
            )
        self.images = images
        self.labels = [int(v) for v in labels]
        self.index = [int(v) for v in index]
        self.names = list(names) if names is not None else None
        self.name = name
        self.num_classes = int(num_classes)

    def __getitem__(self, i: int) -> Tuple[torch.Tensor, int]:
        i = self._check_position(i)
        # torch.from_numpy would share memory with self.images; the division
        # allocates a fresh float tensor, so callers may modify it freely.
        image = torch.from_numpy(np.ascontiguousarray(self.images[i])).permute(2, 0, 1).float() / 255.0
        return image, self.labels[i]

    def subset(self, positions: Sequence[int]) -> "ArrayImageDataset":
        """A dataset with the items at ``positions`` (keeps ``index`` and labels)."""
        pos = self._subset_attrs(positions)
        out = ArrayImageDataset(
            self.images[pos],
            [self.labels[p] for p in pos],
            [self.index[p] for p in pos],
            name=self.name,
            num_classes=self.num_classes,
            names=[self.names[p] for p in pos] if self.names is not None else None,
        )
        return out


class ImageFileDataset(ImageDataset):
    """Images read from files on access, converted to RGB and resized.

    Args:
        files: image paths.
        labels: one int per file (-1 = unknown).
        index: one original index per file.
        size: output (H, W) in pixels, int for square, None to keep the native
            size. Resizing squashes the aspect ratio (as in the GSE paper) with
            bilinear, antialiased interpolation.
        name, num_classes: dataset attributes.
        extra: per-item attributes (lists of the same length) kept in sync by
            :meth:`subset`, e.g. ``target_classes``.
    """

    def __init__(
        self,
        files: Sequence[Union[str, os.PathLike]],
        labels: Sequence[int],
        index: Sequence[int],
        *,
        size: SizeSpec,
        name: str,
        num_classes: int,
        extra: Optional[dict] = None,
    ):
        if not (len(files) == len(labels) == len(index)):
            raise ValueError(f"got {len(files)} files, {len(labels)} labels and {len(index)} indices: they must match")
        self.files = [Path(f) for f in files]
        self.labels = [int(v) for v in labels]
        self.index = [int(v) for v in index]
        self.size = resolve_size(size)
        self.name = name
        self.num_classes = int(num_classes)
        self._extra = {}
        for key, values in (extra or {}).items():
            if len(values) != len(self.files):
                raise ValueError(f"extra attribute {key!r} has {len(values)} values for {len(self.files)} files")
            self._extra[key] = list(values)
            setattr(self, key, self._extra[key])
        # Resize acts on the PIL image (bilinear with antialiasing, as PIL
        # always filters when shrinking), before conversion to [0, 1].
        self._resize = T.Resize(self.size, antialias=True) if self.size is not None else None

    def load(self, path: Path) -> torch.Tensor:
        """Read one file: (3, H, W) float32 in [0, 1]."""
        try:
            with Image.open(path) as img:
                rgb = img.convert("RGB")
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"image file '{path}' of dataset {self.name!r} not found") from exc
        except OSError as exc:
            raise ValueError(f"image file '{path}' of dataset {self.name!r} cannot be decoded ({exc})") from exc
        if self._resize is not None:
            rgb = self._resize(rgb)
        # Same uint8 -> float conversion as ArrayImageDataset (x / 255), so a
        # PNG and its .npz copy give bit-identical tensors.
        return torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1).float() / 255.0

    def __getitem__(self, i: int) -> Tuple[torch.Tensor, int]:
        i = self._check_position(i)
        return self.load(self.files[i]), self.labels[i]

    def subset(self, positions: Sequence[int]) -> "ImageFileDataset":
        """A dataset with the items at ``positions`` (keeps ``index``, labels and extra attributes)."""
        pos = self._subset_attrs(positions)
        return ImageFileDataset(
            [self.files[p] for p in pos],
            [self.labels[p] for p in pos],
            [self.index[p] for p in pos],
            size=self.size,
            name=self.name,
            num_classes=self.num_classes,
            extra={k: [v[p] for p in pos] for k, v in self._extra.items()},
        )
