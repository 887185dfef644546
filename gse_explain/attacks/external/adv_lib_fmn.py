"""``adv_lib:fmn``: adv-lib's Fast Minimum-Norm attack (Pintor et al., NeurIPS 2021), ℓ0 by default (FMN-L0).

FMN minimises the ``norm`` of the perturbation δ while staying adversarial: each step takes a gradient step
on the logit difference (normalised to unit ℓ2) and projects δ onto a ball of radius ε, where ε shrinks
by a factor (1 − γ) while the iterate is adversarial and grows by (1 + γ) otherwise (α and γ follow cosine
schedules). With ``norm=0`` ε counts non-zero *entries* of δ (an RGB pixel counts up to 3 times) and the
projection keeps the ε largest |δ| entries. The best (smallest-norm) adversarial iterate is returned;
images never fooled come back unchanged. It runs all ``steps`` on every image (no early stop).

Cost: ``steps`` gradient passes per image, + 1 forward pass (success test), + 1 when targeted.

Adapted through :mod:`.adv_lib_base` (box map, checked model calls, forked global RNG; adv-lib's FMN draws
no random numbers, so the seed changes nothing). The warm start (adv-lib's ``starting_points``) is not
exposed.

Workaround of an adv-lib 0.2.8 bug: its ℓ0 projection calls ``topk(k=max ε)`` and then indexes the result,
which fails ("index 0 is out of bounds") when the radius ε of *every* image of the batch is 0 at the same
step (a batch whose images are all misclassified already, or a batch of one image fooled by one entry).
During the call the projection is wrapped so that an all-zero radius projects δ onto 0 (the ℓ0 ball of
radius 0); every other call is adv-lib's own. Registered on first use of the name (``get_attack("adv_lib:fmn")``, ``--attack adv_lib:fmn``).
"""

from __future__ import annotations

import math
import contextlib
import importlib
from dataclasses import dataclass

import torch
from torch import nn

from ..base import AttackResult, attack_session
from ..registry import AttackSpec
from .adv_lib_base import adv_lib_function, check_installed, run_adv_lib

__all__ = ["FMN_PRESETS", "FMNConfig", "SPEC", "check_installed", "fmn"]


@dataclass(frozen=True)
class FMNConfig:
    """adv-lib FMN options (values on adv-lib's [0, 1] scale; defaults: adv-lib's, with 1000 steps).

    Attributes:
        norm: the norm minimised: 0 (entries changed; FMN-L0), 1, 2 or ``math.inf``.
        steps: optimisation steps (gradient passes per image).
        alpha_init: initial step size α of the ℓ2-normalised gradient step.
        alpha_final: final α of the cosine schedule; None: alpha_init / 100.
        gamma_init: initial ε update factor γ (ε ← ε (1 ± γ); for ℓ0 at least ± 1 entry per step).
        gamma_final: final γ of the cosine schedule.
    """

    norm: float = 0
    steps: int = 1000
    alpha_init: float = 1.0
    alpha_final: float | None = None
    gamma_init: float = 0.05
    gamma_final: float = 0.001

    def __post_init__(self) -> None:
        checks = [
            (self.norm in (0, 1, 2, math.inf), f"norm must be 0, 1, 2 or math.inf; got {self.norm!r}"),
            (isinstance(self.steps, int) and self.steps >= 1, f"steps must be an integer ≥ 1; got {self.steps!r}"),
            (self.alpha_init > 0, f"alpha_init must be > 0; got {self.alpha_init!r}"),
            (self.alpha_final is None or self.alpha_final > 0, f"alpha_final must be > 0 or None; got {self.alpha_final!r}"),
            (0 < self.gamma_init < 1, f"gamma_init must be in (0, 1); got {self.gamma_init!r}"),
            (0 < self.gamma_final < 1, f"gamma_final must be in (0, 1); got {self.gamma_final!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"FMN option error: {message}")


# 1000 steps, the budget of the FMN paper's and the σ-zero paper's comparisons; adv-lib's other defaults.
# Same for both modes and both datasets (FMN adapts ε per image, so the budget is the only knob).
FMN_PRESETS: dict[str, dict[bool, dict[str, int]]] = {
    "cifar10": {False: dict(steps=1000), True: dict(steps=1000)},
    "imagenet": {False: dict(steps=1000), True: dict(steps=1000)},
}


def fmn(
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
    """Run adv-lib's FMN (ℓ0 by default) on a batch, with the project's uniform signature.

    Args:
        model: maps images in ``bounds`` (B, C, H, W) to logits (B, K); mode and flags are restored.
        images: (B, C, H, W) float images inside ``bounds``; not modified.
        labels: (B,) int64 target classes (targeted) or true classes (untargeted).
        targeted, bounds, preset, seed, generator, progress: as for every attack (:mod:`..base`); the seed
            seeds the forked global RNG (FMN draws nothing from it).
        **options: any :class:`FMNConfig` field, overriding the preset.

    Returns:
        :class:`AttackResult`: the smallest-norm adversarial found per image (unchanged where none).
    """
    config = SPEC.make_config(preset, targeted, **options)
    function = adv_lib_function("fmn")
    kwargs = {"norm": config.norm, "targeted": bool(targeted), "steps": config.steps, "α_init": config.alpha_init,
              "α_final": config.alpha_final, "γ_init": config.gamma_init, "γ_final": config.gamma_final}
    with attack_session(model, images, labels, bounds, targeted, seed=seed, generator=generator) as session, \
            _zero_radius_projection():
        return run_adv_lib(session, function, kwargs, label=SPEC.label, steps=config.steps, progress=progress)


@contextlib.contextmanager
def _zero_radius_projection():
    """Within the block, adv-lib's ℓ0 projection maps δ to 0 when every radius is 0 (see the module docstring)."""
    module = importlib.import_module("adv_lib.attacks.fast_minimum_norm")
    original = module.l0_projection_

    def projection(δ: torch.Tensor, ε: torch.Tensor) -> torch.Tensor:
        if int(ε.long().max()) == 0:
            return δ.flatten(1).zero_()  # in place, as adv-lib's projection
        return original(δ, ε)

    module.l0_projection_ = projection
    try:
        yield
    finally:
        module.l0_projection_ = original


fmn.__name__ = fmn.__qualname__ = "adv_lib:fmn"  # the registry name (contract: function name == spec name)

# Registered by gse_explain.attacks.registry.get_attack on first use of the name.
SPEC = AttackSpec(
    name="adv_lib:fmn",
    function=fmn,
    config_class=FMNConfig,
    presets=FMN_PRESETS,
    description="FMN-L0 (adv-lib): fast minimum-norm attack, l0 ball radius adapted per image (optional extra)",
    label="FMN-L0",
    color="#8C564B",
    demo_budget=dict(steps=100),
    test_options=dict(steps=3),
)
