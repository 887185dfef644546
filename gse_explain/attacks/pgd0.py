"""PGD0: ℓ0 projected gradient descent with random restarts (Croce & Hein 2019, spec §B.6).

"Sparse and imperceivable adversarial attacks" (ICCV 2019), pixel version: the perturbation δ may change at most
k *pixels* (all channels of a pixel count once) and must keep the image in the box. Each restart starts from a
uniformly random image, projected; every iteration takes a gradient step normalised by its ℓ1 norm and projects
back with Π_k:

    Π_k(δ): clip δ to the box [-1 - u, 1 - u] (u the clean image, canonical coordinates); score each pixel by
            Σ_c δ² − Σ_c (δ − clip(δ))², i.e. the squared norm minus the squared box *violation*; keep the
            clipped values of the k best pixels and set δ = 0 everywhere else.

Loss: targeted descends CE(t), untargeted descends −CE(y) (i.e. ascends the cross-entropy of the true class).

Success is tested on every iterate (the logits of the gradient pass give it for free, the last iterate of a
restart costs one extra forward pass). An image that succeeds keeps that iterate and leaves the working set;
later restarts only run on images that have not succeeded. Failures are returned unchanged (δ = 0).

Cost per restart and still-active image: ≤ ``iterations`` gradient passes + 1 forward pass.

All hyperparameters are on the paper's [-1, 1] scale (the attack runs on ``u = caller.to_canonical(x)``).

Deviations from the GSE authors' code (spec §B.6), and choices where paper/spec are silent:
    * Projection: the authors' port subtracts Σ_c max(0, min(ub − δ, δ − lb))², the squared distance of
      *in-box* entries to the nearest bound, which ranks pixels wrongly. We follow Croce & Hein's original
      projection, which squares the box violation min(0, ub − δ, δ − lb) (zero for in-box entries).
    * Exactly k pixels are kept (``torch.topk``); the original keeps every pixel whose score ties with the
      k-th best, which can exceed k.
    * Success checks: the port checks only the final iterate of a restart. The original checks every iterate
      (except the very last) during the run and stores adversarial iterates. We check every iterate including
      the last and keep the *first* successful one (the original keeps running and overwrites it with later
      adversarial iterates; the set of images fooled is the same, and stopping early saves passes).
    * The 1e-12 uniform noise of the original (tie-breaking among zero-gradient entries) is kept
      (``noise_scale``, 0 disables it) and drawn from the attack's generator, never from the global RNG.
    * The original's first iteration only projects the random start (``iterations`` − 1 gradient steps);
      here ``iterations`` counts gradient steps (200 by default).

``variant="reference"`` follows the authors' port (spec §B.6) in the two places it differs: the projection
scores pixels by Σ_c δ² − Σ_c max(0, min(ub − δ, δ − lb))² (``project_l0_box(..., rule="reference")``),
and success is tested only on the last iterate of each restart (an image fooled mid-run but not at the end
fails that restart). Everything else (exact top-k, generator, noise) is shared.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .base import AttackResult, ModelCaller, attack_session
from .losses import is_successful
from .pixel_sparse import check_pixel_budget, top_k_pixel_mask
from .registry import AttackSpec, register_attack
from .variants import CORRECTED, REFERENCE, check_variant

__all__ = ["SPEC", "PGD0Config", "PGD0_PRESETS", "pgd0", "pgd0_config", "project_l0_box"]


@dataclass(frozen=True)
class PGD0Config:
    """PGD0 hyperparameters ([-1, 1] scale); defaults are the reference JSON's CIFAR-10 values (spec §B.6).

    Attributes:
        k: maximal number of perturbed pixels per image (all channels of a pixel count once).
        n_restarts: random restarts; each one only runs on images not fooled yet.
        iterations: gradient steps per restart.
        step_size: step η applied to the ℓ1-normalised gradient (120000/255 in the reference code).
        noise_scale: width of the uniform noise added before each projection (original: 1e-12; 0 = none).
        variant: ``"corrected"`` (Croce & Hein's projection, success on every iterate) or ``"reference"``
            (the GSE authors' port: its projection, success only after each restart); see the module docstring.
    """

    k: int = 90
    n_restarts: int = 5
    iterations: int = 200
    step_size: float = 120000.0 / 255.0
    noise_scale: float = 1e-12
    variant: str = CORRECTED

    def __post_init__(self) -> None:
        check_variant(self.variant, "PGD0")
        checks = [
            (_positive_int(self.k), f"k must be an integer ≥ 1 (pixels); got {self.k!r}"),
            (_positive_int(self.n_restarts), f"n_restarts must be an integer ≥ 1; got {self.n_restarts!r}"),
            (_positive_int(self.iterations), f"iterations must be an integer ≥ 1; got {self.iterations!r}"),
            (self.step_size > 0, f"step_size must be > 0; got {self.step_size!r}"),
            (self.noise_scale >= 0, f"noise_scale must be ≥ 0; got {self.noise_scale!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"PGD0 option error: {message}")


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


# The paper's settings (attackParams.json of the reference code; spec §B.6). Same for both modes.
PGD0_PRESETS: dict[str, dict[bool, dict[str, float]]] = {
    "cifar10": {False: dict(k=90), True: dict(k=90)},
    "imagenet": {False: dict(k=6600), True: dict(k=6600)},
}


def pgd0_config(preset: str | None = None, targeted: bool = False, **options) -> PGD0Config:
    """Build a :class:`PGD0Config` from a preset name (``PGD0_PRESETS``) and explicit option overrides."""
    return SPEC.make_config(preset, targeted, **options)


def project_l0_box(delta: torch.Tensor, k: int, lower: torch.Tensor, upper: torch.Tensor,
                   rule: str = CORRECTED) -> torch.Tensor:
    """Croce & Hein's Π_k: δ (B, C, H, W) → box-clipped δ on its k best pixels, 0 elsewhere.

    ``lower`` ≤ 0 ≤ ``upper`` (same shape) bound δ entrywise. Pixel score, from the unclipped δ:
    ``rule="corrected"``: Σ_c δ² − Σ_c (δ − clip(δ))² (the squared box violation, zero inside the box);
    ``rule="reference"``: Σ_c δ² − Σ_c max(0, min(upper − δ, δ − lower))² (the port: the squared distance
    of in-box entries to their nearest bound, zero outside the box).
    """
    clipped = torch.minimum(torch.maximum(delta, lower), upper)
    if rule == REFERENCE:
        penalty = torch.minimum(upper - delta, delta - lower).clamp(min=0.0)
    else:
        penalty = delta - clipped
    score = delta.square().sum(dim=1) - penalty.square().sum(dim=1)
    return clipped * top_k_pixel_mask(score, k)


def pgd0(
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
    """Run PGD0 on a batch.

    Args:
        model: maps images in ``bounds`` (B, C, H, W) to logits (B, K); mode and ``requires_grad`` flags are
            restored afterwards; the attack runs on the model's device.
        images: (B, C, H, W) float images inside ``bounds``; not modified.
        labels: (B,) int64 target classes (targeted) or true classes (untargeted).
        targeted: reach ``labels`` instead of leaving them.
        bounds: the box (lo, hi) of valid images, e.g. (0, 1).
        preset: ``"cifar10"`` (k = 90) or ``"imagenet"`` (k = 6600), the paper's settings.
        seed, generator: randomness (random starts, noise); ``generator`` (CPU) wins, else a generator seeded
            with ``seed`` (default 0). The global RNG is never used.
        progress: tqdm bar over iterations of all restarts.
        **options: any :class:`PGD0Config` field, overriding the preset.

    Returns:
        :class:`AttackResult`; adversarials differ from the images in at most k pixels, failures are returned
        unchanged. ``success`` comes from the logits of exactly the returned (canonical) images.
    """
    config = pgd0_config(preset, targeted, **options)
    with attack_session(model, images, labels, bounds, targeted, seed=seed, generator=generator) as session:
        check_pixel_budget(config.k, session.x, "PGD0")
        with tqdm(total=config.n_restarts * config.iterations, desc="PGD0", disable=not progress) as bar:
            return session.result(
                *_restarts(session.caller, session.canonical, session.labels, targeted, config, session.generator, bar)
            )


def _restarts(caller: ModelCaller, u: torch.Tensor, y: torch.Tensor, targeted: bool, cfg: PGD0Config,
              generator: torch.Generator, bar):
    """All restarts on canonical images u (B, C, H, W) in [-1, 1]; returns (adversarials, success (B,))."""
    result = u.clone()
    success = torch.zeros(u.shape[0], dtype=torch.bool, device=u.device)
    for restart in range(cfg.n_restarts):
        index = torch.nonzero(~success).squeeze(1)
        if index.numel() == 0:
            break
        found, found_success = _single_run(caller, u[index], y[index], targeted, cfg, generator, bar)
        result[index[found_success]] = found[found_success]
        success[index[found_success]] = True
        bar.n = (restart + 1) * cfg.iterations  # finished images end a restart early
        bar.set_postfix(success=f"{success.float().mean().item():.0%}")
        bar.refresh()
    return result, success


def _single_run(caller, u, y, targeted, cfg: PGD0Config, generator, bar):
    """One restart on canonical images u (A, C, H, W); returns (first successful iterates, success (A,))."""
    batch = u.shape[0]
    result = u.clone()
    success = torch.zeros(batch, dtype=torch.bool, device=u.device)
    sign = 1.0 if targeted else -1.0  # descend CE(t) / −CE(y)

    def loss_fn(labels):
        return lambda logits: sign * F.cross_entropy(logits, labels, reduction="none")

    def noise(shape):
        if cfg.noise_scale == 0:
            return 0.0
        draw = torch.rand(shape, generator=generator, dtype=u.dtype).to(u.device)
        return (draw - 0.5) * cfg.noise_scale

    # Working set: per-image state of the images still active (index maps back into this run's batch).
    index = torch.arange(batch, device=u.device)
    uw, yw = u, y
    lower, upper = -1.0 - uw, 1.0 - uw
    start = torch.rand(u.shape, generator=generator, dtype=u.dtype).to(u.device) * 2.0 - 1.0
    delta = project_l0_box(start - uw, cfg.k, lower, upper, cfg.variant)

    for j in range(cfg.iterations + 1):
        current = (uw + delta).clamp(-1.0, 1.0)  # δ = 0 entries stay bit-identical to u
        if j < cfg.iterations:
            logits, grad = caller.logits_and_grad(current, loss_fn(yw))
        else:
            logits = caller.logits(current)
        done = is_successful(logits, yw, targeted)
        if cfg.variant == REFERENCE and j < cfg.iterations:
            done = torch.zeros_like(done)  # the port tests only the last iterate of a restart
        if done.any():
            result[index[done]] = current[done]
            success[index[done]] = True
            active = ~done
            if not active.any():
                break
            index, uw, yw, delta, lower, upper = (t[active] for t in (index, uw, yw, delta, lower, upper))
            if j < cfg.iterations:
                grad = grad[active]
        if j == cfg.iterations:
            break
        grad = grad / (grad.abs().flatten(1).sum(dim=1).view(-1, 1, 1, 1) + 1e-10)
        delta = project_l0_box(delta - cfg.step_size * grad + noise(delta.shape), cfg.k, lower, upper, cfg.variant)
        bar.update(1)
    return result, success


# This attack's registry entry: the CLIs, contract tests, plot style and demo study read it.
SPEC = register_attack(AttackSpec(
    name="pgd0",
    function=pgd0,
    config_class=PGD0Config,
    presets=PGD0_PRESETS,
    description="PGD0: l0 PGD over k pixels with Croce-Hein box projection and random restarts",
    label="PGD0",
    color="#CC79A7",
    demo_budget=dict(n_restarts=1),  # ≤ 201 passes per image (stops when fooled)
    test_options=dict(k=3, iterations=3, n_restarts=1),
    randomized=True,
))
