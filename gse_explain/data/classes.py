"""Human-readable class names for figure titles: CIFAR-10's ten classes and ImageNet's 1000 categories.

ImageNet names come from torchvision's weight metadata, which is part of the installed package (nothing is
downloaded).
"""

from __future__ import annotations

from .cifar10 import CIFAR10_CLASSES

__all__ = ["class_names"]


def class_names(num_classes: int) -> list[str]:
    """Names of classes 0 … num_classes − 1: CIFAR-10's for 10, ImageNet's for 1000, else "class i"."""
    if num_classes == len(CIFAR10_CLASSES):
        return list(CIFAR10_CLASSES)
    if num_classes == 1000:
        from torchvision.models import ResNet50_Weights

        return list(ResNet50_Weights.IMAGENET1K_V2.meta["categories"])
    if num_classes < 1:
        raise ValueError(f"num_classes must be ≥ 1; got {num_classes}")
    return [f"class {i}" for i in range(num_classes)]
