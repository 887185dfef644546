"""Input checks shared by the analysis and plotting modules: one clear error message per kind of mistake.

Images, perturbations and saliency maps are (B, C, H, W) float tensors (numpy arrays are converted); maps
over pixels (CAMs) are (B, H, W). Every check here raises before any number is computed, because a bad
input (NaN, a channels-last array read as 32 channels, a uint8 image) gives silently wrong numbers.

Channels-last detection (:func:`looks_channels_last`): a 4-D shape (B, d1, d2, d3) is taken for
(B, H, W, C) when d3 is a plausible channel count (1, 3 or 4), d1 is not, and d1 is either > 4 or equal
to d2 (a square image). Anything else is read as (B, C, H, W): e.g. (B, 3, 3, 3) (a 3×3 RGB image either
way) and (B, 2, 5, 3) (a 2-channel 5×3 image) are ambiguous and accepted as channels-first. Where the
model's channel count is known (the per-channel normalisation of a ``NormalizedModel``), C is also
checked against it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..models.normalization import NormalizedModel

#: Channel counts an image plausibly has (gray, RGB, RGBA).
IMAGE_CHANNELS = (1, 3, 4)
_MAX_ROWS_NAMED = 10


def looks_channels_last(shape) -> bool:
    """Whether a 4-D shape reads as (B, H, W, C) rather than (B, C, H, W) (see the module docstring)."""
    if len(shape) != 4:
        return False
    _, first, second, last = (int(s) for s in shape)
    return last in IMAGE_CHANNELS and first not in IMAGE_CHANNELS and (first > 4 or first == second)


def _permute_hint(name: str, is_numpy: bool) -> str:
    if is_numpy:
        return f"np.transpose({name}, (0, 3, 1, 2))"
    return f"{name}.permute(0, 3, 1, 2)"


def _as_tensor(value, name: str, layout: str) -> tuple[torch.Tensor, bool]:
    """``(tensor, was_numpy)``; TypeError for anything but a tensor or numpy array."""
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError(f"{name} must be a numeric array of shape {layout}; got a numpy array of Python objects")
        return torch.from_numpy(value), True
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array of shape {layout}; got {type(value).__name__}")
    return value, False


def rows_text(rows: Sequence[int]) -> str:
    """``"[0, 3, 7]"``, shortened after 10 rows."""
    rows = [int(r) for r in rows]
    shown = ", ".join(map(str, rows[:_MAX_ROWS_NAMED]))
    return f"[{shown}{', …' if len(rows) > _MAX_ROWS_NAMED else ''}] ({len(rows)} row{'s' if len(rows) != 1 else ''})"


def nonfinite_rows(tensor: torch.Tensor) -> list[int]:
    """Indices along dim 0 of the rows holding a NaN or ±inf (empty for integer tensors)."""
    if not (tensor.is_floating_point() or tensor.is_complex()) or tensor.numel() == 0:
        return []
    bad = ~torch.isfinite(tensor.detach())
    return torch.nonzero(bad.reshape(bad.shape[0], -1).any(dim=1)).flatten().tolist() if bad.dim() else []


def check_finite(value, name: str) -> None:
    """ValueError naming ``name`` and the index of the first NaN/inf of one array (e.g. a single image)."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.ascontiguousarray(value))
    if not (value.is_floating_point() or value.is_complex()) or value.numel() == 0:
        return
    bad = ~torch.isfinite(value.detach())
    if bool(bad.any()):
        where = tuple(int(i) for i in torch.nonzero(bad)[0].tolist())
        raise ValueError(f"{name} contains NaN or inf values (first at index {where}); every value must be finite")


def _check_batch_finite(tensor: torch.Tensor, name: str) -> None:
    rows = nonfinite_rows(tensor)
    if rows:
        more = f"; rows {rows_text(rows)}" if len(rows) > 1 else ""
        raise ValueError(f"{name} contains NaN or inf values (first at row {rows[0]}{more}); every value must be finite")


def _dims_hint(name: str, shape: tuple) -> str:
    if len(shape) == 3:
        hint = f"; a single image? add the batch dimension with {name}[None]"
        if shape[-1] in IMAGE_CHANNELS and shape[0] not in IMAGE_CHANNELS:
            hint += " (it looks channels-last (H, W, C): reorder it to (C, H, W) first)"
        return hint
    if len(shape) == 5 and shape[0] == 1:
        return f"; drop the extra leading dimension with {name}[0]"
    return ""


def image_batch(images, name: str = "images", *, model=None) -> torch.Tensor:
    """``images`` as a finite floating (B, C, H, W) tensor (numpy arrays are converted, not copied when possible).

    Raises TypeError for non-arrays and non-float dtypes, ValueError for other dimensions, a channels-last
    layout, an empty batch, NaN/inf values, or (given ``model``) a channel count the model does not take.
    """
    images, is_numpy = _as_tensor(images, name, "(B, C, H, W)")
    shape = tuple(images.shape)
    if images.dim() != 4:
        raise ValueError(f"{name} must have shape (B, C, H, W); got shape {shape}{_dims_hint(name, shape)}")
    if looks_channels_last(shape):
        raise ValueError(
            f"{name} has shape {shape}, which looks channels-last (B, H, W, C) with C = {shape[-1]}; the analysis layer "
            f"takes (B, C, H, W): reorder it with {_permute_hint(name, is_numpy)} "
            f"(or {_permute_hint(name, not is_numpy)} for a {'tensor' if is_numpy else 'numpy array'})"
        )
    if shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (B = 0)")
    if not images.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor; got dtype {images.dtype} (convert uint8 with .float() / 255)")
    if model is not None:
        _check_model_channels(shape, model, name, is_numpy)
    _check_batch_finite(images, name)
    return images


def map_batch(maps, name: str = "cam") -> torch.Tensor:
    """``maps`` as a finite floating (B, H, W) tensor (one map over pixels per image)."""
    maps, _ = _as_tensor(maps, name, "(B, H, W)")
    shape = tuple(maps.shape)
    if maps.dim() != 3:
        hint = ""
        if maps.dim() == 4 and shape[1] == 1:
            hint = f"; drop the channel dimension with {name}[:, 0]"
        elif maps.dim() == 4 and shape[-1] == 1:
            hint = f"; drop the trailing channel dimension with {name}[..., 0]"
        elif maps.dim() == 2:
            hint = f"; a single map? add the batch dimension with {name}[None]"
        raise ValueError(f"{name} must be a (B, H, W) map; got shape {shape}{hint}")
    if shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (B = 0)")
    if not maps.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor; got dtype {maps.dtype} (convert it with .float())")
    _check_batch_finite(maps, name)
    return maps


def model_channels(model) -> int | None:
    """Input channels a model is known to take: the per-channel normalisation of a ``NormalizedModel``
    (which rejects other counts itself), else None (not guessed from the layers)."""
    if isinstance(model, NormalizedModel) and model.mean.dim() == 4 and model.mean.shape[1] > 1:
        return int(model.mean.shape[1])
    return None


def _check_model_channels(shape: tuple, model, name: str, is_numpy: bool) -> None:
    expected = model_channels(model)
    if expected is None or shape[1] == expected:
        return
    hint = ""
    if shape[-1] == expected:
        hint = f"; it looks channels-last (B, H, W, C): reorder it with {_permute_hint(name, is_numpy)}"
    raise ValueError(f"{name} has {shape[1]} channels (shape {shape}) but the model takes {expected}-channel "
                     f"(B, {expected}, H, W) images{hint}")


def same_shape(first: torch.Tensor, second: torch.Tensor, first_name: str, second_name: str) -> None:
    if tuple(first.shape) != tuple(second.shape):
        raise ValueError(
            f"{first_name} and {second_name} must have the same shape; got {tuple(first.shape)} and {tuple(second.shape)}"
        )


def class_vector(classes, batch: int, name: str, num_classes: int | None = None) -> torch.Tensor:
    """``classes`` (an int, or a sequence/tensor of B ints) as an int64 tensor (B,) of valid class indices."""
    if isinstance(classes, (int, np.integer)) and not isinstance(classes, bool):
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


def check_logits(logits, batch: int, offset: int = 0) -> None:
    """Logits (B, K) with finite values; a NaN/inf row is named by its index in the caller's batch."""
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != batch:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"the model must return logits of shape (B, num_classes) = ({batch}, K); got {shape}")
    check_model_values(logits, "logits", offset)


def check_model_values(tensor: torch.Tensor, what: str, offset: int = 0) -> None:
    """ValueError naming the image rows for which the model produced NaN/inf ``what`` (logits, gradients, …)."""
    rows = nonfinite_rows(tensor)
    if rows:
        raise ValueError(
            f"the model produced NaN or inf {what} for image rows {rows_text([offset + r for r in rows])}; the maps of "
            "those rows would be NaN. Check the model (e.g. a log or division of zero) and its inputs"
        )


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
