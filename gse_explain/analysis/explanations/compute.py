"""``explain(saliency, model, images, classes)``: one explanation method's maps for a batch, in chunks.

Which class is explained is the caller's choice (``classes``); the store-level functions pass the attack's
target for targeted runs and the adversarial prediction for ``targets="predicted"``, as the IS does. Inputs
are the images exactly as the model takes them (the [0, 1] images of every ``gse_explain`` model, whose
wrapper normalises internally, as the ASM uses them), so baselines and noise levels are in [0, 1] units.
"""

from __future__ import annotations

import torch

from ...models.inference import frozen_model, model_device
from .._inputs import check_model_values, class_vector, image_batch
from .registry import Explanation, resolve_explanation, seeded_rngs

__all__ = ["explain", "row_seeds"]


def row_seeds(seed: int, examples, classes) -> torch.Tensor:
    """(B,) int64 seeds of rows identified by their dataset example and explained class: the same (image, class)
    gets the same random draws in every store, whatever rows surround it."""
    examples = torch.as_tensor(examples, dtype=torch.int64)
    classes = torch.as_tensor(classes, dtype=torch.int64)
    return (int(seed) * 1_000_003 + examples * 1009 + classes) % (2**62)


def explain(saliency, model, images, classes, *, labels=None, settings=None, batch_size: int | None = None,
            seed: int = 0, seeds=None) -> torch.Tensor:
    """Attribution maps (B, C, H, W) of ``images`` for ``classes`` with one explanation method.

    Args:
        saliency: a registered name (see :func:`~gse_explain.analysis.explanations.list_explanations`), a
            callable ``(model, images, classes) -> map``, or an :class:`Explanation`.
        model: classifier taking the images and returning logits (B, K); run in eval mode without parameter
            gradients, its mode and ``requires_grad`` flags restored afterwards.
        images: (B, C, H, W) float, finite, channels first (ValueError otherwise); not modified.
        classes: the explained class per image (an int or B ints).
        labels: the true classes (the ASM needs them; other methods ignore them).
        settings: overrides of the method's defaults (registered methods only).
        batch_size: images per model call (default: all at once); stochastic methods run one row (with its noisy
            copies) per call, whatever the batch size.
        seed, seeds: stochastic methods draw row ``b`` from seed ``seeds[b]`` (default ``seed + b``).

    Returns:
        float tensor (B, C, H, W) in the images' dtype, on the images' device; per-pixel maps are broadcast
        over the channels (see :mod:`.registry`).

    Raises:
        ValueError: bad images, classes, settings or batch size; a map of the wrong shape, or NaN/inf values
            (the rows are named).
    """
    method = saliency if isinstance(saliency, Explanation) else resolve_explanation(saliency, settings)
    images = image_batch(images, model=model)
    batch = images.shape[0]
    classes = class_vector(classes, batch, "classes")
    if "labels" in method.extras:
        if labels is None:
            raise ValueError(f"explanation {method.name!r} needs labels= (the true classes)")
        labels = class_vector(labels, batch, "labels")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be an int ≥ 1 (or None for one call); got {batch_size!r}")
    seeds = torch.arange(batch, dtype=torch.int64) + int(seed) if seeds is None else torch.as_tensor(seeds, dtype=torch.int64)
    if seeds.shape != (batch,):
        raise ValueError(f"seeds must have one entry per image, shape ({batch},); got {tuple(seeds.shape)}")
    device = model_device(model, images.device)
    chunk = 1 if method.stochastic else (batch if batch_size is None else batch_size)
    maps = []
    with frozen_model(model), torch.enable_grad():
        for start in range(0, batch, chunk):
            rows = slice(start, min(start + chunk, batch))
            inputs = images[rows].detach().to(device).clone().requires_grad_(True)  # a fresh leaf for gradient methods
            extras = {"labels": None if labels is None else labels[rows].to(device), "batch_size": batch_size or batch}
            call = dict(**method.settings, **{name: extras[name] for name in method.extras})
            if method.stochastic:
                with seeded_rngs(int(seeds[start]), device):
                    out = method.function(model, inputs, classes[rows].to(device), **call)
            else:
                out = method.function(model, inputs, classes[rows].to(device), **call)
            maps.append(_as_map(out, inputs.shape, method.name, start).to(images.device, images.dtype))
    return torch.cat(maps)


def _as_map(out, shape, name: str, offset: int) -> torch.Tensor:
    """A method's output as a detached (b, C, H, W) map (per-pixel maps broadcast over the channels)."""
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"explanation {name!r} must return a tensor (B, C, H, W) or (B, H, W); got {type(out).__name__}")
    out = out.detach()
    b, c, h, w = shape
    if out.dim() == 3 and tuple(out.shape) == (b, h, w):
        out = out[:, None]
    if out.dim() == 4 and tuple(out.shape) == (b, 1, h, w):
        out = out.expand(b, c, h, w)
    if tuple(out.shape) != (b, c, h, w):
        raise ValueError(f"explanation {name!r} returned shape {tuple(out.shape)} for images {tuple(shape)}; it must "
                         f"return ({b}, {c}, {h}, {w}) or per-pixel ({b}, {h}, {w})")
    if not out.is_floating_point():
        out = out.float()
    check_model_values(out, f"{name} attributions", offset)
    return out.contiguous()
