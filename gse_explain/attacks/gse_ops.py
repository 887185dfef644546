"""The elementary operations of GSE (spec §A.4, §A.5, §A.7), each usable and testable on its own."""

from __future__ import annotations

import math

import torch
from torchvision.transforms.v2 import functional as TF

__all__ = ["half_threshold", "half_threshold_level", "largest_nonzero_lambda", "adjust_lambda"]

_THRESHOLD_CONST = 54.0 ** (1.0 / 3.0) / 4.0


def half_threshold_level(tau: torch.Tensor) -> torch.Tensor:
    """Magnitude p(τ) = (54^{1/3}/4)·τ^{2/3} at or below which :func:`half_threshold` returns 0."""
    return _THRESHOLD_CONST * tau.clamp(min=0) ** (2.0 / 3.0)


def half_threshold(v: torch.Tensor, tau: torch.Tensor | float) -> torch.Tensor:
    """Half-thresholding operator H(v; τ) = argmin_u (u − v)² + τ·|u|^{1/2}, elementwise.

    The convention has no ½ on the quadratic (spec §A.4), so GSE's step ``H(v; σΛ)`` is the proximal
    step of size σ for the regulariser Λ/2·|u|^{1/2}. ``tau`` (≥ 0) broadcasts against ``v``; τ = 0 is the
    identity. Above the threshold the operator jumps from 0 to (2/3)·p(τ), so it acts like a hard
    threshold that also shrinks.
    """
    tau = torch.as_tensor(tau, dtype=v.dtype, device=v.device)
    magnitude = v.abs()
    keep = magnitude > half_threshold_level(tau)
    # arccos/pow are evaluated only where |v| is above the threshold; elsewhere dummy inputs keep them
    # finite so no NaN can leak through torch.where (which evaluates both branches).
    safe_mag = torch.where(keep, magnitude, torch.ones_like(magnitude))
    cos_arg = (tau / 8.0) * (safe_mag / 3.0).pow(-1.5)
    phi = torch.arccos(cos_arg.clamp(-1.0, 1.0))
    shrunk = (2.0 / 3.0) * safe_mag * (1.0 + torch.cos(2.0 * math.pi / 3.0 - 2.0 * phi / 3.0))
    out = torch.where(keep, torch.sign(v) * shrunk, torch.zeros_like(v))
    # The closed form equals v at τ = 0 only up to rounding; return v exactly there.
    return torch.where(tau == 0, v, out)


def largest_nonzero_lambda(grad: torch.Tensor, step_size: float | torch.Tensor) -> torch.Tensor:
    """λ_max per example: the smallest λ for which H(σ·g; σ·λ) is all zero (spec §A.5).

    ``grad`` is (B, ...); returns (B,). Closed form of the reference's bracketing + 50-step bisection:
    H(σg; σλ) = 0 iff σ·max|g| ≤ p(σλ), i.e. λ ≥ (8/√54)·σ^{1/2}·max|g|^{3/2}.
    """
    max_abs = grad.detach().flatten(1).abs().amax(dim=1)
    sigma = torch.as_tensor(step_size, dtype=max_abs.dtype, device=max_abs.device)
    return (8.0 / math.sqrt(54.0)) * sigma.sqrt() * max_abs.pow(1.5)


def adjust_lambda(
    lam: torch.Tensor, delta: torch.Tensor, q: float, kernel_size: int = 5, blur_sigma: float = 1.5
) -> torch.Tensor:
    """One step of the λ-map heuristic (spec §A.7): shrink λ near the support of δ, grow it elsewhere.

    Args:
        lam: (B, 1, H, W) per-pixel regularisation weights (≥ 0).
        delta: (B, C, H, W) current perturbation; a pixel is in the support when any channel is non-zero.
        q: growth factor in (0, 1]; λ is divided by q away from the blurred support.
        kernel_size, blur_sigma: Gaussian blur (reflect padding) that spreads the support mask.

    Returns the new (B, 1, H, W) map λ / D with D = 1 + blur(mask) on the blurred support and q off it.
    """
    mask = (delta != 0).any(dim=1, keepdim=True).to(lam.dtype)
    blurred = TF.gaussian_blur(mask, kernel_size=[kernel_size, kernel_size], sigma=[blur_sigma, blur_sigma])
    divisor = 1.0 + blurred
    # The reference tests `1 + blur == 1`, so a blur value lost in float rounding counts as "away".
    divisor = torch.where(divisor == 1.0, torch.full_like(divisor, q), divisor)
    return lam / divisor
