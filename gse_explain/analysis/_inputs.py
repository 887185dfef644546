"""Input checks shared by the analysis modules: one clear error message per kind of mistake."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch


def image_batch(images, name: str = "images") -> torch.Tensor:
    """``images`` as a floating (B, C, H, W) tensor (numpy arrays are converted, not copied when possible)."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array of shape (B, C, H, W); got {type(images).__name__}")
    if images.dim() != 4:
        raise ValueError(f"{name} must have shape (B, C, H, W); got shape {tuple(images.shape)}")
    if images.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (B = 0)")
    if not images.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor; got dtype {images.dtype} (convert uint8 with .float() / 255)")
    return images


def same_shape(first: torch.Tensor, second: torch.Tensor, first_name: str, second_name: str) -> None:
    if tuple(first.shape) != tuple(second.shape):
        raise ValueError(
            f"{first_name} and {second_name} must have the same shape; got {tuple(first.shape)} and {tuple(second.shape)}"
        )


def class_vector(classes, batch: int, name: str, num_classes: int | None = None) -> torch.Tensor:
    """``classes`` (an int, or a sequence/tensor of B ints) as an int64 tensor (B,) of valid class indices."""
    if isinstance(classes, (int, np.integer)):
        classes = torch.full((batch,), int(classes), dtype=torch.int64)
    elif isinstance(classes, np.ndarray) or isinstance(classes, Sequence):
        classes = torch.as_tensor(np.asarray(classes))
    if not isinstance(classes, torch.Tensor):
        raise TypeError(f"{name} must be an int or a sequence/tensor of {batch} class indices; got {type(classes).__name__}")
    if classes.is_floating_point() or classes.dtype == torch.bool or classes.is_complex():
        raise TypeError(f"{name} must hold integer class indices; got dtype {classes.dtype}")
    if classes.dim() != 1 or classes.shape[0] != batch:
        raise ValueError(f"{name} must have shape ({batch},), one class per image; got shape {tuple(classes.shape)}")
    classes = classes.to(torch.int64)
    if classes.numel() and int(classes.min()) < 0:
        raise ValueError(f"{name} must be class indices ≥ 0; got {int(classes.min())}")
    if num_classes is not None and classes.numel() and int(classes.max()) >= num_classes:
        raise ValueError(f"{name} must be < num_classes = {num_classes} (the model's output size); got {int(classes.max())}")
    return classes


def check_logits(logits, batch: int) -> None:
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != batch:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"the model must return logits of shape (B, num_classes) = ({batch}, K); got {shape}")


def percentile_list(percentiles, name: str = "percentiles", low_open: bool = True) -> list[float | int]:
    """A non-empty list of percentiles in (0, 100] (or [0, 100] when ``low_open`` is False)."""
    values = [percentiles] if np.isscalar(percentiles) else list(percentiles)
    if not values:
        raise ValueError(f"{name} must not be empty")
    out = []
    for value in values:
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be numbers in (0, 100]; got {value!r}") from None
        if not np.isfinite(value) or value > 100 or value < 0 or (low_open and value == 0):
            raise ValueError(f"{name} must lie in {'(0' if low_open else '[0'}, 100]; got {value!r}")
        out.append(int(value) if value.is_integer() else value)  # 50, not 50.0, in tables
    return out
