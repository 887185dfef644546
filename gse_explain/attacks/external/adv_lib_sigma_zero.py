"""``adv_lib:sigma_zero``: adv-lib's σ-zero attack (Cinà et al., ICLR 2025), an ℓ0 minimum-norm attack.

σ-zero descends the (clamped) logit difference plus a smooth ℓ0 surrogate Σ δ² / (δ² + σ) (mean over
entries) with Adam on gradients normalised by their ``grad_norm`` norm, a cosine-annealed step size η, and
an adaptive threshold τ per image that zeroes entries |δ| < τ (τ rises by τ_factor · η while the iterate is
adversarial, falls otherwise). It counts changed *entries* (an RGB pixel up to 3 times) and returns the
adversarial iterate with the fewest; images never fooled come back unchanged. No early stop.

**Untargeted only**: adv-lib's σ-zero has no targeted loss (it warns and returns the inputs); here
``targeted=True`` is a ValueError before the model is called.

Cost: ``steps`` gradient passes per image + 1 forward pass (success test).

Adapted through :mod:`.adv_lib_base` (box map, checked model calls, forked global RNG; σ-zero draws no
random numbers, so the seed changes nothing). Registered on first use of ``"adv_lib:sigma_zero"``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..base import AttackResult, attack_session
from ..registry import AttackSpec
from .adv_lib_base import adv_lib_function, check_installed, run_adv_lib

__all__ = ["SIGMA_ZERO_PRESETS", "SPEC", "SigmaZeroConfig", "check_installed", "sigma_zero"]


@dataclass(frozen=True)
class SigmaZeroConfig:
    """adv-lib σ-zero options (adv-lib's [0, 1] scale; defaults: adv-lib's, which are the paper's).

    Attributes:
        steps: optimisation steps (gradient passes per image).
        eta_0: initial Adam step size η₀ (cosine-annealed down to 0.1 η₀).
        sigma: σ of the ℓ0 surrogate δ² / (δ² + σ): smaller is sharper.
        tau_0: initial sparsity threshold τ₀ in [0, 1].
        tau_factor: τ moves by tau_factor · η per step.
        grad_norm: the norm the gradient is normalised by (``math.inf`` in adv-lib and the paper).
    """

    steps: int = 1000
    eta_0: float = 1.0
    sigma: float = 0.001
    tau_0: float = 0.3
    tau_factor: float = 0.01
    grad_norm: float = math.inf

    def __post_init__(self) -> None:
        checks = [
            (isinstance(self.steps, int) and self.steps >= 1, f"steps must be an integer ≥ 1; got {self.steps!r}"),
            (self.eta_0 > 0, f"eta_0 must be > 0; got {self.eta_0!r}"),
            (self.sigma > 0, f"sigma must be > 0; got {self.sigma!r}"),
            (0 <= self.tau_0 <= 1, f"tau_0 must be in [0, 1]; got {self.tau_0!r}"),
            (self.tau_factor >= 0, f"tau_factor must be ≥ 0; got {self.tau_factor!r}"),
            (self.grad_norm >= 1, f"grad_norm must be ≥ 1 (a p-norm, math.inf for the max norm); got {self.grad_norm!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"σ-zero option error: {message}")


# The σ-zero paper's setting (1000 steps, η₀ = 1, σ = 1e-3, τ₀ = 0.3) for both datasets. The targeted
# entries exist because every preset names both modes; a targeted run is refused by the attack.
SIGMA_ZERO_PRESETS: dict[str, dict[bool, dict[str, int]]] = {
    "cifar10": {False: dict(steps=1000), True: dict(steps=1000)},
    "imagenet": {False: dict(steps=1000), True: dict(steps=1000)},
}


def sigma_zero(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    targeted: bool = False,
    bounds: tuple[float, float] = (0.0, 1.0),
    preset: str | None = None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
    **options,
) -> AttackResult:
    """Run adv-lib's σ-zero on a batch (untargeted only), with the project's uniform signature.

    Args:
        model: maps images in ``bounds`` (B, C, H, W) to logits (B, K); mode and flags are restored.
        images: (B, C, H, W) float images inside ``bounds``; not modified.
        labels: (B,) int64 true classes.
        targeted: must be False (ValueError otherwise: adv-lib's σ-zero is untargeted only).
        bounds, preset, seed, generator, progress: as for every attack (:mod:`..base`).
        **options: any :class:`SigmaZeroConfig` field, overriding the preset.

    Returns:
        :class:`AttackResult`: the adversarial with the fewest changed entries per image (unchanged where none).
    """
    config = SPEC.make_config(preset, targeted, **options)
    if targeted:
        raise ValueError("σ-zero (adv_lib:sigma_zero) is untargeted only: adv-lib's implementation has no targeted "
                         "loss; run it with targeted=False, or use adv_lib:fmn for targeted ℓ0 attacks")
    function = adv_lib_function("sigma_zero")
    kwargs = {"num_steps": config.steps, "η_0": config.eta_0, "σ": config.sigma, "τ_0": config.tau_0,
              "τ_factor": config.tau_factor, "grad_norm": config.grad_norm, "targeted": False}
    with attack_session(model, images, labels, bounds, targeted, seed=seed, generator=generator) as session:
        return run_adv_lib(session, function, kwargs, label=SPEC.label, steps=config.steps, progress=progress)


sigma_zero.__name__ = sigma_zero.__qualname__ = "adv_lib:sigma_zero"  # the registry name

# Registered by gse_explain.attacks.registry.get_attack on first use of the name.
SPEC = AttackSpec(
    name="adv_lib:sigma_zero",
    function=sigma_zero,
    config_class=SigmaZeroConfig,
    presets=SIGMA_ZERO_PRESETS,
    description="sigma-zero (adv-lib): l0 minimum-norm attack, smooth l0 surrogate + adaptive threshold; untargeted only",
    label="σ-zero",
    color="#6A3D9A",
    demo_budget=dict(steps=100),
    test_options=dict(steps=3),
)
