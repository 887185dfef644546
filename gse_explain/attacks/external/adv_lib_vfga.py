"""``adv_lib:vfga``: adv-lib's Voting Folded Gaussian Attack (Hajri et al., 2020), a greedy ℓ0 attack.

Each iteration picks, per image, the most relevant unchanged entry to increase and the one to decrease (from
the gradient of the label's probability), draws ``n_samples`` folded-Gaussian values for each from the
*global* torch RNG, evaluates the 2 · n_samples candidates and keeps the best; it stops for an image once
it is adversarial (or every entry has changed). Entries, not pixels, are counted (an RGB pixel up to 3).

Cost per iteration and still-active image: 1 gradient pass + 2 · n_samples forward passes; + 1 forward pass
(success test), + 1 when targeted.

Randomness: the draws come from the global RNG inside ``torch.random.fork_rng`` seeded from the attack's
``seed`` / ``generator`` (:mod:`.adv_lib_base`), so runs are reproducible and the caller's global RNG state
is unchanged. Registered on first use of ``"adv_lib:vfga"``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..base import AttackResult, attack_session
from ..registry import AttackSpec
from .adv_lib_base import adv_lib_function, check_installed, run_adv_lib

__all__ = ["SPEC", "VFGAConfig", "VFGA_PRESETS", "check_installed", "vfga"]


@dataclass(frozen=True)
class VFGAConfig:
    """adv-lib VFGA options (defaults: adv-lib's).

    Attributes:
        max_iter: iterations (each changes at most one more entry per image); None: until every entry of
            the image has changed (C·H·W iterations at most).
        n_samples: folded-Gaussian draws per selected entry and iteration (2 · n_samples candidates).
        large_memory: evaluate all candidates in one model call (faster for small models, n_samples times
            the memory); otherwise n_samples calls.
    """

    max_iter: int | None = None
    n_samples: int = 10
    large_memory: bool = False

    def __post_init__(self) -> None:
        checks = [
            (self.max_iter is None or self.max_iter >= 1, f"max_iter must be an integer ≥ 1 or None; got {self.max_iter!r}"),
            (self.n_samples >= 1, f"n_samples must be an integer ≥ 1; got {self.n_samples!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"VFGA option error: {message}")


# The VFGA paper's setting: 10 samples, run until adversarial. Same for both modes and datasets.
VFGA_PRESETS: dict[str, dict[bool, dict[str, int | None]]] = {
    "cifar10": {False: dict(max_iter=None), True: dict(max_iter=None)},
    "imagenet": {False: dict(max_iter=None), True: dict(max_iter=None)},
}


def vfga(
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
    """Run adv-lib's VFGA on a batch, with the project's uniform signature.

    Args:
        model: maps images in ``bounds`` (B, C, H, W) to logits (B, K); mode and flags are restored.
        images: (B, C, H, W) float images inside ``bounds``; not modified.
        labels: (B,) int64 target classes (targeted) or true classes (untargeted).
        targeted, bounds, preset, progress: as for every attack (:mod:`..base`).
        seed, generator: seed the forked global RNG that VFGA's draws come from (default seed 0).
        **options: any :class:`VFGAConfig` field, overriding the preset.

    Returns:
        :class:`AttackResult`: the first adversarial found per image (unchanged where none).
    """
    config = SPEC.make_config(preset, targeted, **options)
    function = adv_lib_function("vfga")
    kwargs = dict(targeted=bool(targeted), max_iter=config.max_iter, n_samples=config.n_samples,
                  large_memory=config.large_memory)
    with attack_session(model, images, labels, bounds, targeted, seed=seed, generator=generator) as session:
        return run_adv_lib(session, function, kwargs, label=SPEC.label, steps=config.max_iter, progress=progress)


vfga.__name__ = vfga.__qualname__ = "adv_lib:vfga"  # the registry name

# Registered by gse_explain.attacks.registry.get_attack on first use of the name.
SPEC = AttackSpec(
    name="adv_lib:vfga",
    function=vfga,
    config_class=VFGAConfig,
    presets=VFGA_PRESETS,
    description="VFGA (adv-lib): greedy l0 attack with folded-Gaussian sampling on the most relevant entries",
    label="VFGA",
    color="#A6761D",
    demo_budget=dict(max_iter=200),
    test_options=dict(max_iter=3, n_samples=2),
    randomized=True,
)
