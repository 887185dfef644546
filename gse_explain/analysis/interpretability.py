"""Interpretability score (IS) of a perturbation against an adversarial saliency map (spec §C.7).

For percentile P, per image::

    τ_P = s[⌈P/100 · (n + 1)⌉ − 1]     s = the non-zero ASM entries sorted ascending (signed), n = len(s)
    B_P = 1[ASM > τ_P]                  (strict; over all C·H·W entries, zeros included)
    IS_P = ‖B_P ⊙ δ‖₂ / ‖δ‖₂

IS_P is the share of the perturbation's ℓ2 norm that lies on the most salient entries: 1 when δ lives
only where the ASM exceeds its P-th percentile, 0 when it lives only outside. The index formula is the
reference code's (it prepends a 0 to s and indexes ⌈P(n+1)/100⌉); it is computed here in exact integer
arithmetic, so e.g. P = 70, n = 9 gives index 7 (no floating-point rounding up to 8).

Edge cases (silent in the spec): the index is clamped to [1, n], so P close to 100 with few non-zero
entries gives τ = max(s) and an empty mask (IS = 0); an all-zero ASM (n = 0) gives τ = NaN and an empty
mask (IS = 0); a zero perturbation gives IS = NaN (0/0), which is why runs are analysed on rows with
‖δ‖₂ > 0 only.
"""

from __future__ import annotations

from fractions import Fraction

import torch

from ._inputs import image_batch, percentile_list, same_shape

__all__ = ["DEFAULT_PERCENTILES", "interpretability_score", "saliency_mask", "saliency_threshold"]

#: The paper's percentiles (Fig. 2).
DEFAULT_PERCENTILES = (50, 60, 70, 80, 90)


def _percentile_index(percentile: float, counts: torch.Tensor) -> torch.Tensor:
    """⌈P/100 · (n + 1)⌉ per image, exactly (P as a fraction with a small denominator)."""
    fraction = Fraction(percentile).limit_denominator(10**6)
    numerator = fraction.numerator * (counts + 1)
    denominator = fraction.denominator * 100
    return -((-numerator) // denominator)  # integer ceiling division


def saliency_threshold(saliency: torch.Tensor, percentiles=DEFAULT_PERCENTILES) -> torch.Tensor:
    """Per-image thresholds τ_P (see the module docstring) of (B, C, H, W) saliency maps.

    Args:
        saliency: (B, C, H, W) signed maps (e.g. :func:`~gse_explain.analysis.adversarial_saliency_map`), float and
            finite (NaN/inf or a channels-last layout is a ValueError).
        percentiles: one value or a sequence, each in (0, 100].

    Returns:
        (B, P) tensor in the saliency's dtype: each τ is one of the image's non-zero entries (NaN for an
        all-zero map).
    """
    saliency = image_batch(saliency, "saliency")
    values = percentile_list(percentiles)
    flat = saliency.detach().flatten(1)
    nonzero = flat != 0
    counts = nonzero.sum(dim=1)
    # Zeros are pushed past the end so the first n sorted values are the non-zero entries, ascending.
    ordered = torch.where(nonzero, flat, torch.full_like(flat, float("inf"))).sort(dim=1).values
    columns = []
    for percentile in values:
        index = torch.minimum(_percentile_index(percentile, counts), counts).clamp(min=1) - 1
        tau = ordered.gather(1, index[:, None])[:, 0]
        columns.append(torch.where(counts > 0, tau, torch.full_like(tau, float("nan"))))
    return torch.stack(columns, dim=1)


def saliency_mask(saliency: torch.Tensor, percentile: float) -> torch.Tensor:
    """Boolean (B, C, H, W) mask B_P = 1[ASM > τ_P] for one percentile."""
    saliency = image_batch(saliency, "saliency")
    tau = saliency_threshold(saliency, [percentile])[:, 0]
    return saliency.detach() > tau.view(-1, 1, 1, 1)  # NaN compares False: empty mask


def interpretability_score(saliency: torch.Tensor, delta: torch.Tensor, percentiles=DEFAULT_PERCENTILES) -> torch.Tensor:
    """IS_P = ‖B_P ⊙ δ‖₂ / ‖δ‖₂ for every image and percentile.

    Args:
        saliency: (B, C, H, W) adversarial saliency maps (of the clean images, as in the paper).
        delta: (B, C, H, W) perturbations x_adv − x, any scale (IS is scale-free), the saliency's shape.
        Both are float and finite; NaN/inf, a channels-last layout or differing shapes is a ValueError.
        percentiles: one value or a sequence, each in (0, 100] (default: 50, 60, 70, 80, 90).

    Returns:
        (B, P) float64 tensor in [0, 1]; NaN for a zero perturbation.
    """
    saliency = image_batch(saliency, "saliency")
    delta = image_batch(delta, "delta")
    same_shape(saliency, delta, "saliency", "delta")
    thresholds = saliency_threshold(saliency, percentiles)
    flat = saliency.detach().flatten(1)
    energy = delta.detach().to(flat.device).double().flatten(1).square()
    total = energy.sum(dim=1)
    scores = []
    for column in range(thresholds.shape[1]):  # one (B, N) mask at a time keeps memory at O(B·N)
        mask = flat > thresholds[:, column : column + 1]
        scores.append((energy * mask).sum(dim=1).sqrt() / total.sqrt())
    return torch.stack(scores, dim=1)
