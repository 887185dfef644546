"""Running a model without side effects, shared by every layer above ``models`` (attacks, evaluation, analysis).

- :func:`model_device`, :func:`model_dtype`: where a model lives and which floating dtype it computes in (its
  first parameter or buffer; a plain function or a stateless module has neither, so the caller's fallback).
- :func:`frozen_model`: eval mode and no parameter gradients inside a ``with`` block, both restored exactly
  (a plain function has nothing to freeze).
- :func:`predict`: arg-max classes of a batch of images, in chunks, with the model frozen.
- :func:`check_logits`: the one check that a model's logits are finite (NaN rows are never a class);
  :func:`check_gradient` the same for input gradients.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

__all__ = [
    "NonFiniteGradientError", "NonFiniteLogitsError", "check_gradient", "check_logits", "check_model", "frozen_model",
    "model_device", "model_dtype", "predict",
]


def check_model(model) -> None:
    """TypeError unless ``model`` can be called on images: an ``nn.Module`` or any callable (a function
    taking (B, C, H, W) images and returning (B, K) logits)."""
    if not callable(model):
        raise TypeError(
            f"model must be an nn.Module or a function mapping (B, C, H, W) images to (B, num_classes) logits; "
            f"got {type(model).__name__}"
        )


def _tensors(model) -> Iterator[torch.Tensor]:
    """The parameters, then the buffers, of an ``nn.Module``; nothing for a plain function."""
    if isinstance(model, nn.Module):
        yield from model.parameters()
        yield from model.buffers()


def model_device(model, fallback: torch.device) -> torch.device:
    """The device of the model's first parameter or buffer, or ``fallback`` for a stateless model or a
    plain function."""
    for tensor in _tensors(model):
        return tensor.device
    return fallback


def model_dtype(model, fallback: torch.dtype) -> torch.dtype:
    """The dtype of the model's first floating-point parameter or buffer (the dtype its inputs must have),
    or ``fallback`` for a model without any (a plain function, a stateless module)."""
    for tensor in _tensors(model):
        if tensor.is_floating_point():
            return tensor.dtype
    return fallback


@contextlib.contextmanager
def frozen_model(model) -> Iterator:
    """Put ``model`` in eval mode with parameter gradients off, and restore both afterwards.

    Restores every submodule's ``training`` flag and every parameter's ``requires_grad`` flag exactly,
    also when the body raises. A plain function (not an ``nn.Module``) is yielded as it is.
    """
    check_model(model)
    if not isinstance(model, nn.Module):
        yield model
        return
    modes = [(module, module.training) for module in model.modules()]
    flags = [(param, param.requires_grad) for param in model.parameters()]
    model.eval()
    for param, _ in flags:
        param.requires_grad_(False)
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training
        for param, requires_grad in flags:
            param.requires_grad_(requires_grad)


class NonFiniteLogitsError(ValueError):
    """The model returned NaN or infinite logits, so no class (and no attack success) can be decided."""


def check_logits(logits: torch.Tensor, first_row: int = 0, *, context: str = "") -> torch.Tensor:
    """``logits`` (B, K) if every entry is finite; else :class:`NonFiniteLogitsError` naming the rows.

    ``first_row`` offsets the reported row numbers (rows of a larger batch processed in chunks);
    ``context`` (e.g. "in an attack's model call on 3 images") is added after the rows.
    """
    finite = torch.isfinite(logits).all(dim=1)
    if not bool(finite.all()):
        rows = (torch.nonzero(~finite).flatten() + first_row).tolist()
        shown = ", ".join(map(str, rows[:10])) + (" …" if len(rows) > 10 else "")
        raise NonFiniteLogitsError(
            f"the model returned NaN or inf logits for {len(rows)} image(s) (rows {shown}){context}; check the "
            "model's weights and inputs (value range, normalisation, dtype) — an arg-max of NaN would silently count as class 0")
    return logits


class NonFiniteGradientError(ValueError):
    """The gradient of a loss with respect to the model's input is NaN or infinite (finite logits, but the
    backward pass overflowed or the model's backward is broken), so no gradient step can be taken."""


def check_gradient(grad: torch.Tensor, *, context: str = "") -> torch.Tensor:
    """``grad`` (B, ...) if every entry is finite; else :class:`NonFiniteGradientError` naming the rows."""
    finite = torch.isfinite(grad.flatten(1)).all(dim=1)
    if not bool(finite.all()):
        rows = torch.nonzero(~finite).flatten().tolist()
        shown = ", ".join(map(str, rows[:10])) + (" …" if len(rows) > 10 else "")
        raise NonFiniteGradientError(
            f"the gradient with respect to the model's input is NaN or inf for {len(rows)} image(s) (rows {shown})"
            f"{context}; check the model's backward pass and its dtype (float16 overflows easily: use images.float() "
            "and model.float())")
    return grad


def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Arg-max predictions (B,) int64 on the CPU for (B, C, H, W) images; restores the model's mode and flags.

    Floating-point images are cast to the model's dtype (:func:`model_dtype`), e.g. float64 images for a
    float32 model.

    Raises:
        NonFiniteLogitsError: the model returned NaN or inf logits for some rows (named in the message).
    """
    device = model_device(model, images.device)
    dtype = model_dtype(model, images.dtype) if images.is_floating_point() else images.dtype
    out = []
    with frozen_model(model), torch.no_grad():
        for start in range(0, images.shape[0], batch_size):
            logits = model(images[start : start + batch_size].to(device=device, dtype=dtype))
            out.append(check_logits(logits, start).argmax(dim=1).cpu())
    return torch.cat(out)
