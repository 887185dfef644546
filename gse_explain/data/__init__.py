"""Datasets of (image, label) pairs for attacks and evaluation.

Every dataset returns ``image`` as float32 (C, H, W) in [0, 1] and ``label``
as an int (-1 = unknown: use the model's prediction), and has the attributes
``name``, ``num_classes``, ``labels_known`` and ``index`` (original dataset
index of each item).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Optional, Union

from ._base import ArrayImageDataset, ImageDataset, ImageFileDataset
from .cifar10 import CIFAR10_CLASSES, cifar10, cifar10_npz
from .classes import class_names
from .imagenet import IMAGE_EXTENSIONS, image_folder, imagenet_val, nips2017, read_index_file
from .photos import DEFAULT_PHOTOS, skimage_photos


def _needs_root(name: str, fn: Callable[..., ImageDataset], what: str) -> Callable[..., ImageDataset]:
    def load(root, **kwargs):
        if root is None:
            raise ValueError(f"dataset {name!r} needs root=PATH pointing to {what}")
        return fn(root, **kwargs)

    return load


def _skimage(root, **kwargs):
    if root is not None:
        raise ValueError("dataset 'skimage' reads photos shipped with scikit-image: leave root=None")
    return skimage_photos(**kwargs)


_DATASETS: Dict[str, Callable[..., ImageDataset]] = {
    "cifar10": _needs_root("cifar10", cifar10, "the folder containing cifar-10-batches-py"),
    "cifar10_npz": _needs_root("cifar10_npz", cifar10_npz, "an .npz file with arrays x and y"),
    "nips2017": _needs_root("nips2017", nips2017, "the folder with images.csv and images/"),
    "imagenet_val": _needs_root("imagenet_val", imagenet_val, "torchvision's ImageNet root"),
    "folder": _needs_root("folder", image_folder, "a folder of images"),
    "skimage": _skimage,
}


def list_datasets() -> List[str]:
    """Names accepted by :func:`load_dataset`, sorted."""
    return sorted(_DATASETS)


def load_dataset(name: str, root: Optional[Union[str, os.PathLike]] = None, **kwargs: Any) -> ImageDataset:
    """Load a dataset by name.

    Args:
        name: one of :func:`list_datasets`: ``cifar10`` (root = folder with
            ``cifar-10-batches-py``), ``cifar10_npz`` (root = .npz file),
            ``nips2017``, ``imagenet_val``, ``folder`` (root = folder; needs
            ``size=``), ``skimage`` (no root).
        root: path the dataset is read from.
        **kwargs: passed to the loader (``size``, ``index_file``,
            ``labels_csv``, ``download``, ``names`` ...).
    """
    if name not in _DATASETS:
        raise ValueError(f"unknown dataset {name!r}: known datasets are {', '.join(list_datasets())}")
    return _DATASETS[name](root, **kwargs)


__all__ = [
    "class_names",
    "ArrayImageDataset",
    "CIFAR10_CLASSES",
    "DEFAULT_PHOTOS",
    "IMAGE_EXTENSIONS",
    "ImageDataset",
    "ImageFileDataset",
    "cifar10",
    "cifar10_npz",
    "image_folder",
    "imagenet_val",
    "list_datasets",
    "load_dataset",
    "nips2017",
    "read_index_file",
    "skimage_photos",
]
