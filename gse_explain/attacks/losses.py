"""Losses and the success test shared by the attacks (spec §A.3, §A.6 step 6)."""

from __future__ import annotations

import torch

__all__ = ["cw_margin_loss", "is_successful"]


def cw_margin_loss(logits: torch.Tensor, labels: torch.Tensor, targeted: bool, kappa: float = 0.0) -> torch.Tensor:
    """Carlini–Wagner margin loss per example, to be *minimised* in both modes; shape (B,).

    targeted:   max(-kappa, max_{i≠t} Z_i − Z_t)
    untargeted: max(-kappa, Z_y − max_{i≠y} Z_i)
    ``labels`` is the target class when targeted and the true class otherwise. With ``kappa = 0`` the loss
    reaches 0 exactly when the example is (weakly) adversarial.
    """
    own = logits.gather(1, labels[:, None]).squeeze(1)
    others = logits.masked_fill(torch.nn.functional.one_hot(labels, logits.shape[1]).bool(), float("-inf"))
    best_other = others.amax(dim=1)
    margin = best_other - own if targeted else own - best_other
    return margin.clamp(min=-kappa)


def is_successful(logits: torch.Tensor, labels: torch.Tensor, targeted: bool) -> torch.Tensor:
    """(B,) bool: argmax equals the target (targeted) or differs from the true label (untargeted).

    The one success test of every attack. A row with a NaN or inf logit is never a success (its arg-max
    would be an arbitrary class); the attacks' model caller already refuses such logits.
    """
    predicted = logits.argmax(dim=1)
    hit = predicted == labels if targeted else predicted != labels
    return hit & torch.isfinite(logits).all(dim=1)
