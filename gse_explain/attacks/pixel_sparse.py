"""ℓ0 pixel utilities shared by the pixel-sparse baselines (PGD0, Sparse-RS).

A *pixel* is one spatial position (h, w) with all its channels: an image changed in any channel of a pixel
counts that pixel once. All helpers work on (B, C, H, W) tensors.
"""

from __future__ import annotations

import torch

__all__ = ["changed_pixels", "check_pixel_budget", "random_corners", "top_k_pixel_mask"]


def check_pixel_budget(k: int, images: torch.Tensor, attack: str) -> None:
    """Raise a clear ValueError when ``k`` exceeds the H·W pixels of ``images`` (B, C, H, W)."""
    height, width = images.shape[-2:]
    if k > height * width:
        raise ValueError(
            f"{attack} option error: k = {k} pixels exceeds the {height}×{width} = {height * width} pixels of "
            f"the images; choose k ≤ {height * width} (or the preset for this image size)"
        )


def changed_pixels(adversarials: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """(B,) int64: number of pixels where ``adversarials`` differs from ``images`` in any channel."""
    return (adversarials != images).any(dim=1).flatten(1).sum(dim=1)


def top_k_pixel_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """(B, 1, H, W) 0/1 mask (dtype of ``scores``) of exactly the k highest-scoring pixels of (B, H, W) scores.

    Ties are broken by ``torch.topk``, so exactly k pixels are kept even when scores tie.
    """
    batch = scores.shape[0]
    flat = scores.reshape(batch, -1)
    mask = torch.zeros_like(flat)
    mask.scatter_(1, flat.topk(k, dim=1).indices, 1.0)
    return mask.view(batch, 1, *scores.shape[1:])


def random_corners(shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype,
                   device: torch.device) -> torch.Tensor:
    """Entries drawn independently and uniformly from {-1, +1} (corners of the canonical colour cube).

    Drawn on the CPU ``generator`` and moved to ``device``, so CPU and CUDA runs draw the same values.
    """
    bits = torch.randint(0, 2, shape, generator=generator)
    return (bits * 2 - 1).to(device=device, dtype=dtype)
