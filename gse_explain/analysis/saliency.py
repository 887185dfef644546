"""Adversarial saliency maps (ASM; Papernot et al. 2016, in the form Xu et al. 2019 and the GSE paper use).

For an image x with true label y and attack target t, per entry i = (c, h, w)::

    ASM(x, t)_i = (∂Z_t/∂x_i) · |∂Z_y/∂x_i|

with Z the logits (pre-softmax). Large positive values mark entries where raising the input raises the
target logit while the true-class logit is sensitive as well.

Sign condition (``sign_condition=True``): Papernot et al.'s JSMA saliency map (their Eq. 8, the
"increase features" version) sets an entry to zero when raising it cannot help the targeted attack::

    ASM_i = 0   if  ∂Z_t/∂x_i < 0   or   Σ_{j≠t} ∂Z_j/∂x_i > 0

(it lowers the target logit, or it raises the other logits in total). Papernot et al. state it on the
softmax outputs F and with |Σ_{j≠t} ∂F_j/∂x_i| as the second factor; here, as in Xu et al. and the GSE
code, the map is built from logits and the second factor is |∂Z_y/∂x_i|; only the zeroing rule is
Papernot's. The GSE reference code has the condition but disables it (spec §C.7), so it is off by
default here to match the paper's numbers.

Per-sample gradients. The GSE reference code seeds its backward pass with the targets of the whole batch
in every row, giving ∂(Σ_{c∈T} Z_c)/∂x instead of ∂Z_t/∂x (spec §C.7 [bug]). Here row b uses only its own
t_b and y_b. One backward pass per quantity serves the whole batch because, with the model in eval mode,
the logits of sample b depend on input b only, so ∂(Σ_b Z_{b,t_b})/∂x_b = ∂Z_{b,t_b}/∂x_b
(models whose samples interact in eval mode are not supported).

Scale. Gradients are taken with respect to the model's input, i.e. the [0, 1] images every
``gse_explain`` model takes. For a model fed [-1, 1] inside its wrapper (the paper's setting,
``normalization="unit"``), ∂Z/∂x_[0,1] = 2·∂Z/∂x_[-1,1], so this ASM is exactly 4× the paper's. A positive
constant factor changes no ordering or percentile mask, so interpretability scores are unaffected.
"""

from __future__ import annotations

import torch
from torch import nn

from ..models.inference import frozen_model, model_device
from ._inputs import check_logits, check_model_values, class_vector, image_batch

__all__ = ["adversarial_saliency_map"]


def adversarial_saliency_map(
    model: nn.Module,
    images: torch.Tensor,
    labels,
    targets,
    *,
    sign_condition: bool = False,
    batch_size: int | None = None,
) -> torch.Tensor:
    """Per-sample adversarial saliency maps ∂Z_t/∂x ⊙ |∂Z_y/∂x| (see the module docstring).

    Args:
        model: classifier taking images in [0, 1] (a ``gse_explain`` model) and returning logits (B, K).
            It is run in eval mode without parameter gradients; its mode and ``requires_grad`` flags are
            restored afterwards.
        images: (B, C, H, W) float images in [0, 1] (usually the *clean* images, as in the paper), finite
            (NaN/inf is a ValueError), channels first (a channels-last array is a ValueError). Not modified.
        labels: true classes y, an int or B ints.
        targets: target classes t, an int or B ints (any class per row).
        sign_condition: zero the entries where ∂Z_t/∂x < 0 or Σ_{j≠t} ∂Z_j/∂x > 0 (Papernot et al.);
            off by default, as in the GSE code.
        batch_size: images per model call (default: all at once).

    Returns:
        (B, C, H, W) tensor of the images' dtype on the images' device, in units of logit² per
        (unit of [0, 1] input)², signed.

    Raises:
        ValueError: bad images (see above), or the model returns NaN/inf logits or gradients (the rows are
            named), so no NaN map is ever returned.
    """
    images = image_batch(images, model=model)
    batch = images.shape[0]
    labels = class_vector(labels, batch, "labels")
    targets = class_vector(targets, batch, "targets")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1 (or None for one call); got {batch_size}")
    device = model_device(model, images.device)
    chunk = batch if batch_size is None else batch_size
    maps = []
    with frozen_model(model), torch.enable_grad():
        for start in range(0, batch, chunk):
            stop = min(start + chunk, batch)
            maps.append(_saliency_chunk(model, images[start:stop], labels[start:stop], targets[start:stop],
                                        sign_condition, device, start).to(images.device))
    return torch.cat(maps)


def _saliency_chunk(model, images, labels, targets, sign_condition, device, offset: int) -> torch.Tensor:
    """ASM of one chunk; ``offset`` (the chunk's first row in the caller's batch) is for error messages."""
    # A fresh leaf: the caller's tensor is neither modified nor given a gradient.
    inputs = images.detach().to(device).clone().requires_grad_(True)
    logits = model(inputs)
    check_logits(logits, inputs.shape[0], offset)
    num_classes = logits.shape[1]
    class_vector(labels, inputs.shape[0], "labels", num_classes)
    class_vector(targets, inputs.shape[0], "targets", num_classes)
    # One-hot seeds per row: row b's backward pass starts from its own class only (no batch mixing).
    target_seed = torch.zeros_like(logits).scatter_(1, targets.to(device)[:, None], 1.0)
    label_seed = torch.zeros_like(logits).scatter_(1, labels.to(device)[:, None], 1.0)
    (grad_target,) = torch.autograd.grad(logits, inputs, grad_outputs=target_seed, retain_graph=True)
    (grad_label,) = torch.autograd.grad(logits, inputs, grad_outputs=label_seed, retain_graph=sign_condition)
    check_model_values(grad_target, "gradients ∂Z_t/∂x", offset)
    check_model_values(grad_label, "gradients ∂Z_y/∂x", offset)
    saliency = grad_target * grad_label.abs()
    if sign_condition:
        # Σ_{j≠t} ∂Z_j/∂x seeded directly (not as a difference of two gradients, which would round).
        (grad_others,) = torch.autograd.grad(logits, inputs, grad_outputs=1.0 - target_seed)
        check_model_values(grad_others, "gradients Σ_{j≠t} ∂Z_j/∂x", offset)
        useless = (grad_target < 0) | (grad_others > 0)
        saliency = torch.where(useless, torch.zeros_like(saliency), saliency)
    saliency = saliency.detach().to(images.dtype)
    check_model_values(saliency, "saliency values (finite gradients overflowing the images' dtype)", offset)
    return saliency
