"""Running a model without side effects, shared by every layer above ``models`` (attacks, evaluation, analysis).

- :func:`model_device`: where a model lives (its first parameter or buffer).
- :func:`frozen_model`: eval mode and no parameter gradients inside a ``with`` block, both restored exactly.
- :func:`predict`: arg-max classes of a batch of images, in chunks, with the model frozen.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

__all__ = ["frozen_model", "model_device", "predict"]


def model_device(model: nn.Module, fallback: torch.device) -> torch.device:
    """The device of the model's first parameter or buffer, or ``fallback`` for a stateless model."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return fallback


@contextlib.contextmanager
def frozen_model(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode with parameter gradients off, and restore both afterwards.

    Restores every submodule's ``training`` flag and every parameter's ``requires_grad`` flag exactly,
    also when the body raises.
    """
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


def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Arg-max predictions (B,) int64 on the CPU for (B, C, H, W) images; restores the model's mode and flags."""
    device = model_device(model, images.device)
    out = []
    with frozen_model(model), torch.no_grad():
        for chunk in images.split(batch_size):
            out.append(model(chunk.to(device)).argmax(dim=1).cpu())
    return torch.cat(out)
