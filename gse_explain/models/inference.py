"""Running a model without side effects, shared by every layer above ``models`` (attacks, evaluation, analysis).

- :func:`model_device`: where a model lives (its first parameter or buffer).
- :func:`frozen_model`: eval mode and no parameter gradients inside a ``with`` block, both restored exactly.
- :func:`predict`: arg-max classes of a batch of images, in chunks, with the model frozen.
- :func:`check_logits`: the one check that a model's logits are finite (NaN rows are never a class).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

__all__ = ["NonFiniteLogitsError", "check_logits", "frozen_model", "model_device", "predict"]


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


class NonFiniteLogitsError(ValueError):
    """The model returned NaN or infinite logits, so no class (and no attack success) can be decided."""


def check_logits(logits: torch.Tensor, first_row: int = 0) -> torch.Tensor:
    """``logits`` (B, K) if every entry is finite; else :class:`NonFiniteLogitsError` naming the rows.

    ``first_row`` offsets the reported row numbers (rows of a larger batch processed in chunks).
    """
    finite = torch.isfinite(logits).all(dim=1)
    if not bool(finite.all()):
        rows = (torch.nonzero(~finite).flatten() + first_row).tolist()
        shown = ", ".join(map(str, rows[:10])) + (" …" if len(rows) > 10 else "")
        raise NonFiniteLogitsError(
            f"the model returned NaN or inf logits for {len(rows)} image(s) (rows {shown}); check the model's weights and "
            "inputs (value range, normalisation, dtype) — an arg-max of NaN would silently count as class 0")
    return logits


def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Arg-max predictions (B,) int64 on the CPU for (B, C, H, W) images; restores the model's mode and flags.

    Raises:
        NonFiniteLogitsError: the model returned NaN or inf logits for some rows (named in the message).
    """
    device = model_device(model, images.device)
    out = []
    with frozen_model(model), torch.no_grad():
        for start in range(0, images.shape[0], batch_size):
            logits = model(images[start : start + batch_size].to(device))
            out.append(check_logits(logits, start).argmax(dim=1).cpu())
    return torch.cat(out)
