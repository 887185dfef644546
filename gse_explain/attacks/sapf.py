"""SAPF: sparse adversarial attack via perturbation factorisation (Fan et al., ECCV 2020; spec §B.4).

The perturbation is factorised as δ⊙G with magnitudes δ and a selection G ∈ {0, 1}^n (n = C·H·W entries):

    min_{δ, G}  ‖δ⊙G‖² + λ1·L(x + δ⊙G) + λ2·Σ_s ‖G_s‖₂   s.t.  1ᵀG = k,  G ∈ {0, 1}^n,

with L the CW margin loss (κ = 0) of the clipped image and s the SLIC superpixels of the clean image (each
across all channels; :mod:`.superpixels`). The binary constraint is replaced by the ℓp-box equivalence
{0, 1}^n = [0, 1]^n ∩ {G : ‖G − ½‖² = n/4} (Wu & Ghanem's ℓp-box ADMM with p = 2). One call of
``perturb(λ1)`` starts from G = 1, δ = 0 and alternates ``iterations`` times:

- δ-step: ``iterations_delta`` gradient steps on ‖δ⊙G‖² + λ1·L, gradient 2δG² + λ1·G⊙∇L;
- G-step: ``iterations_g`` ADMM steps with auxiliaries y1 = Π_box(G + z1/ρ1), y2 = Π_sphere(G + z2/ρ2),
  y3 = group soft-threshold of G + z3/ρ3 with coefficient max(0, 1 − λ2/(ρ3‖·‖)) per superpixel, one
  gradient step on the augmented Lagrangian
  G ← G − η_G[2Gδ² + λ1·δ⊙∇L + Σ_i z_i + z4 + Σ_i ρ_i(G − y_i) + ρ4(1ᵀG − k)],
  dual ascent z_i += ρ_i(G − y_i), z4 += ρ4(1ᵀG − k), and ρ_i ← min(1.01ρ_i, ρ_i,max);

then G ← 1[G > 0.5] and ``iterations_finetune`` more δ-steps. Both step sizes decay ×0.9 after every 50
steps of a call (floor 0.001) and carry over between calls; the ρ_i carry over within ``perturb``, the
auxiliaries and duals restart with every G-step. An outer binary search over λ1 (``search_steps`` steps,
per image) halves λ1 after a success and raises it (×10, or bisection once bounded) after a failure; it
keeps, per image, the successful example with the fewest changed entries and returns the clean image where
no step succeeded. An image leaves the search once λ1 < ``lam1_stop``·(initial λ1).

Everything is batched: δ, G, the auxiliaries and duals are per image, the group soft-threshold scatters
over superpixel ids offset per image, ρ and η are shared (every image runs the same schedule).
Hyperparameters are on the paper's [-1, 1] scale.

Cost per active image and search step: iterations·(iterations_delta + iterations_g) + iterations_finetune
gradient passes and 1 forward (paper setting: 10·(200 + 200) + 100 = 4100 gradients), so up to 41,000
gradient passes per image; the paper reports 250 s per CIFAR image on an A40. Measured here (ResNet20, CPU,
1 thread, cifar10 preset): 78–79 s per image amortised over a batch of 4, 166 s for a single image; 4/4 fooled
both untargeted (ACP ≈ 88) and targeted.

Deviations from the GSE authors' code (and choices where the paper is silent):
- SLIC runs on the real image in [0, 1] (the port casts the [-1, 1] tensor to uint8, giving almost-grid
  segments); this matches Fan et al.'s code, which runs SLIC on the uint8 [0, 255] image.
- Step-size decay after steps 50, 100, … of each call, as in Fan et al.'s code (the port decays after
  steps 1, 51, 101, …).
- The sphere projection guards ‖G + z2/ρ2 − ½‖ = 0 (never hit in practice) and the group soft-threshold maps
  a zero-norm group to 0 also when λ2 = 0 (0/0 in the port).
- Kept example: smallest entry-ℓ0 among successes, as in the port (Fan et al. keep the last success).
- A search step whose result is not finite (large λ1 can make the fixed-step δ iteration diverge) counts
  as a failure; the port would return the NaN image as a success (argmax of NaN logits ≠ label).
- ∇L is the gradient of the clipped image's loss as autograd gives it through clamp: zero for entries
  outside the box, passed through at the bounds.

``variant="reference"`` follows the authors' port (spec §B.4) in its superpixels: SLIC on the [-1, 1]
tensor cast to uint8 (-1 → 255, 1 → 1, all else 0: segments close to a regular grid;
:func:`.superpixels.slic_input`), and in its step-size decay after steps 1, 51, 101, … of each call.
Diverged steps still count as failures (the port would return a NaN image as a success).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from .base import AttackResult, ModelCaller, attack_session
from .losses import cw_margin_loss, is_successful
from .registry import AttackSpec, register_attack
from .superpixels import group_ids, slic_segments
from .variants import CORRECTED, REFERENCE, check_variant

__all__ = ["SPEC", "SAPFConfig", "SAPF_PRESETS", "sapf", "sapf_config"]


@dataclass(frozen=True)
class SAPFConfig:
    """SAPF hyperparameters; defaults are the reference constructor's (spec §B.4).

    Attributes:
        search_steps: binary-search steps over λ1.
        iterations: alternations of δ-step and G-step per search step.
        iterations_delta, iterations_g, iterations_finetune: gradient steps per δ-step, ADMM steps per
            G-step, δ steps after binarising G.
        eta_delta, eta_g: initial step sizes; eta_decay, eta_decay_every, eta_min: their schedule.
        rhos, rhos_max: ADMM penalties (box, sphere, group, cardinality) and their caps; rho_growth: ×
            per ADMM step.
        k: target number of selected entries (1ᵀG = k).
        lam1: initial weight of the loss; lam1_lower, lam1_upper: initial search bounds; lam1_stop: an
            image leaves the search once λ1 < lam1_stop·lam1.
        lam2: weight of the group sparsity term.
        nsegs, compactness: SLIC parameters.
        kappa: CW confidence.
        variant: ``"corrected"`` (SLIC on the real image) or ``"reference"`` (the GSE authors' port: SLIC on
            the uint8-cast [-1, 1] tensor, step sizes decayed after steps 1, 51, …); see the module docstring.
    """

    search_steps: int = 10
    iterations: int = 10
    iterations_delta: int = 200
    iterations_g: int = 200
    iterations_finetune: int = 100
    eta_delta: float = 0.1
    eta_g: float = 0.1
    eta_decay: float = 0.9
    eta_decay_every: int = 50
    eta_min: float = 0.001
    rhos: tuple[float, float, float, float] = (5e-3, 5e-3, 5e-3, 1e-4)
    rhos_max: tuple[float, float, float, float] = (20.0, 20.0, 100.0, 0.01)
    rho_growth: float = 1.01
    k: int = 350
    lam1: float = 1e-3
    lam1_lower: float = 0.0
    lam1_upper: float = 100.0
    lam1_stop: float = 0.01
    lam2: float = 10.0
    nsegs: int = 150
    compactness: float = 10.0
    kappa: float = 0.0
    variant: str = CORRECTED

    def __post_init__(self) -> None:
        check_variant(self.variant, "SAPF")
        object.__setattr__(self, "rhos", tuple(float(r) for r in self.rhos))
        object.__setattr__(self, "rhos_max", tuple(float(r) for r in self.rhos_max))
        checks = [
            (self.search_steps >= 1, "search_steps must be ≥ 1"),
            (self.iterations >= 1, "iterations must be ≥ 1"),
            (self.iterations_delta >= 1 and self.iterations_g >= 1, "iterations_delta and iterations_g must be ≥ 1"),
            (self.iterations_finetune >= 0, "iterations_finetune must be ≥ 0"),
            (self.eta_delta > 0 and self.eta_g > 0 and self.eta_min > 0, "eta_delta, eta_g and eta_min must be > 0"),
            (0 < self.eta_decay <= 1 and self.eta_decay_every >= 1, "eta_decay must be in (0, 1], eta_decay_every ≥ 1"),
            (len(self.rhos) == 4 and len(self.rhos_max) == 4, "rhos and rhos_max need 4 values"),
            (all(r > 0 for r in self.rhos + self.rhos_max), "rhos and rhos_max must be > 0"),
            (self.rho_growth >= 1, "rho_growth must be ≥ 1"),
            (self.k >= 1, "k must be ≥ 1"),
            (0 <= self.lam1_lower < self.lam1_upper, "lam1 bounds must satisfy 0 ≤ lam1_lower < lam1_upper"),
            (self.lam1 > 0, "lam1 must be > 0"),
            (0 <= self.lam1_stop < 1, "lam1_stop must be in [0, 1)"),
            (self.lam2 >= 0, "lam2 must be ≥ 0"),
            (self.nsegs >= 1, "nsegs must be ≥ 1"),
            (self.compactness > 0, "compactness must be > 0"),
            (self.kappa >= 0, "kappa must be ≥ 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"SAPF option error: {message}")


_CIFAR = dict(search_steps=10, k=265, nsegs=150, lam1=1e-3, lam2=10.0)
_IMAGENET = dict(search_steps=10, k=19000, nsegs=350, lam1=1e-2, lam2=10.0)
# attackParams.json of the reference code (spec §B.4); the same values for both modes.
SAPF_PRESETS: dict[str, dict[bool, dict]] = {
    "cifar10": {False: dict(_CIFAR), True: dict(_CIFAR)},
    "imagenet": {False: dict(_IMAGENET), True: dict(_IMAGENET)},
}


def sapf_config(preset: str | None = None, targeted: bool = False, **options) -> SAPFConfig:
    """Build a :class:`SAPFConfig` from a preset name (``SAPF_PRESETS``) and option overrides."""
    return SPEC.make_config(preset, targeted, **options)


def sapf(
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
    """Run SAPF on a batch.

    Args:
        model: maps images in ``bounds`` (B, C, H, W) to logits (B, K); mode and flags are restored.
        images: (B, C, H, W) float images inside ``bounds``; not modified.
        labels: (B,) int64 target classes (targeted) or true classes (untargeted).
        targeted, bounds: as for every attack; hyperparameters are on the [-1, 1] scale.
        preset: ``"cifar10"`` or ``"imagenet"`` (reference JSON values), or None for the defaults.
        seed, generator: checked (int / torch.Generator or None) for the uniform signature; SAPF is deterministic.
        progress: tqdm bar over the λ1 search steps.
        **options: any :class:`SAPFConfig` field.

    Returns:
        :class:`AttackResult`; images with no successful search step are returned unchanged.
    """
    cfg = sapf_config(preset, targeted, **options)
    with attack_session(model, images, labels, bounds, targeted, seed=seed, generator=generator) as session:
        source = "uint8_cast" if cfg.variant == REFERENCE else "real"
        segments = slic_segments(session.x, session.bounds, cfg.nsegs, cfg.compactness, source)
        return session.result(
            *_search(session.caller, session.canonical, session.labels, segments, targeted, cfg, progress)
        )


def _search(caller: ModelCaller, x, y, segments, targeted: bool, cfg: SAPFConfig, progress: bool):
    """Per-image binary search over λ1 on canonical images x (B, C, H, W); returns (adversarials, success (B,)).

    Keeps, per image, the successful example with the fewest changed entries; images leave the search once
    λ1 < lam1_stop·lam1.
    """
    batch, device = x.shape[0], x.device
    result = x.clone()
    success = torch.zeros(batch, dtype=torch.bool, device=device)
    # Working set of images still searching, with their per-image search state.
    index = torch.arange(batch, device=device)
    lam1 = torch.full((batch,), cfg.lam1, dtype=x.dtype, device=device)
    lower = torch.full_like(lam1, cfg.lam1_lower)
    upper = torch.full_like(lam1, cfg.lam1_upper)
    best_l0 = torch.full((batch,), math.inf, dtype=torch.float64, device=device)
    for _ in tqdm(range(cfg.search_steps), desc="SAPF search steps", disable=not progress):
        if index.numel() == 0:
            break
        xs, ys = x[index], y[index]
        adv, logits = _perturb(caller, xs, ys, segments[index], lam1, targeted, cfg)
        # A diverged run (λ1 too large for the step size gives inf/NaN) counts as a failure.
        ok = is_successful(logits, ys, targeted) & torch.isfinite(adv).flatten(1).all(1)
        l0 = (adv != xs).flatten(1).sum(1).to(torch.float64)
        keep = ok & (l0 < best_l0)
        result[index[keep]] = adv[keep]
        success[index[keep]] = True
        best_l0 = torch.where(keep, l0, best_l0)

        lam1, lower, upper = _search_update(ok, lam1, lower, upper, cfg.lam1_upper)
        active = lam1 >= cfg.lam1_stop * cfg.lam1
        index, lam1, lower, upper, best_l0 = (t[active] for t in (index, lam1, lower, upper, best_l0))
    return result, success


def _perturb(caller: ModelCaller, x, y, segments, lam1, targeted: bool, cfg: SAPFConfig):
    """One ``perturb(λ1)`` on canonical images x (B, C, H, W); returns (x + δ⊙G clipped, its logits)."""
    ids, total, _ = group_ids(segments, x.shape[1])
    ids = ids.flatten()
    lam1 = lam1.view(-1, 1, 1, 1).to(x.dtype)
    n = x[0].numel()
    # The port decays after steps 1, 51, 101, … of a call; Fan et al. (corrected) after steps 50, 100, …
    decay_phase = 0 if cfg.variant == REFERENCE else cfg.eta_decay_every - 1

    def loss_grad(delta, G):
        return _loss_grad(caller, x, y, targeted, cfg.kappa, x + delta * G)

    def delta_step(delta, G, eta, steps):
        for j in range(steps):
            grad = 2.0 * delta * G * G + lam1 * G * loss_grad(delta, G)
            delta = delta - eta * grad
            if j % cfg.eta_decay_every == decay_phase:
                eta = max(eta * cfg.eta_decay, cfg.eta_min)
        return delta, eta

    def G_step(delta, G, rhos, eta):
        rho1, rho2, rho3, rho4 = rhos
        z1, z2, z3 = torch.zeros_like(G), torch.zeros_like(G), torch.zeros_like(G)
        z4 = torch.zeros(G.shape[0], 1, 1, 1, dtype=G.dtype, device=G.device)
        for j in range(cfg.iterations_g):
            y1 = (G + z1 / rho1).clamp(0.0, 1.0)
            w = G + z2 / rho2 - 0.5
            norm = w.flatten(1).norm(dim=1).clamp_min(1e-30).view(-1, 1, 1, 1)
            y2 = 0.5 + (math.sqrt(n) / 2.0) * w / norm
            y3 = _group_soft_threshold(G + z3 / rho3, ids, total, cfg.lam2 / rho3)
            card = G.flatten(1).sum(1).view(-1, 1, 1, 1) - cfg.k
            grad = (
                2.0 * G * delta * delta + lam1 * delta * loss_grad(delta, G)
                + z1 + z2 + z3 + z4
                + rho1 * (G - y1) + rho2 * (G - y2) + rho3 * (G - y3) + rho4 * card
            )
            G = G - eta * grad
            z1 = z1 + rho1 * (G - y1)
            z2 = z2 + rho2 * (G - y2)
            z3 = z3 + rho3 * (G - y3)
            z4 = z4 + rho4 * (G.flatten(1).sum(1).view(-1, 1, 1, 1) - cfg.k)
            rho1, rho2, rho3, rho4 = (min(cfg.rho_growth * r, m) for r, m in zip((rho1, rho2, rho3, rho4), cfg.rhos_max))
            if j % cfg.eta_decay_every == decay_phase:
                eta = max(eta * cfg.eta_decay, cfg.eta_min)
        return G, (rho1, rho2, rho3, rho4), eta

    G = torch.ones_like(x)
    delta = torch.zeros_like(x)
    eta_delta, eta_g, rhos = cfg.eta_delta, cfg.eta_g, cfg.rhos
    for _ in range(cfg.iterations):
        delta, eta_delta = delta_step(delta, G, eta_delta, cfg.iterations_delta)
        G, rhos, eta_g = G_step(delta, G, rhos, eta_g)
    G = (G > 0.5).to(x.dtype)
    delta, _ = delta_step(delta, G, eta_delta, cfg.iterations_finetune)
    adv = (x + delta * G).clamp(-1.0, 1.0)
    return adv, caller.logits(_model_safe(adv, x)[0])


def _loss_grad(caller: ModelCaller, x, y, targeted: bool, kappa: float, a):
    """∇ of the CW loss of clip(a) w.r.t. the perturbed image a = x + δ⊙G, zero where clamp cuts it off
    (NaN for diverged images, which are not sent to the model: see :func:`_model_safe`)."""
    inputs, finite = _model_safe(a.clamp(-1.0, 1.0), x)
    _, g = caller.logits_and_grad(inputs, lambda logits: cw_margin_loss(logits, y, targeted, kappa))
    g = g * ((a >= -1.0) & (a <= 1.0))
    return g if finite is None else torch.where(finite, g, torch.full_like(g, math.nan))


def _model_safe(images: torch.Tensor, clean: torch.Tensor):
    """``(images, None)`` when every entry is finite; else the images with each non-finite one (a run that
    diverged: λ1 too large for the step size) replaced by its clean image, and the (B, 1, 1, 1) mask of the
    finite ones. The model never sees NaN (the caller refuses NaN logits); a diverged image stays NaN (its
    gradient is NaN) and its search step counts as a failure, exactly as before the model was checked."""
    finite = torch.isfinite(images).flatten(1).all(dim=1)
    if bool(finite.all()):
        return images, None
    finite = finite.view(-1, 1, 1, 1)
    return torch.where(finite, images, clean), finite


def _group_soft_threshold(c: torch.Tensor, ids: torch.Tensor, total: int, tau: float) -> torch.Tensor:
    """Prox of τ·Σ_groups ‖·‖₂: c_g ← max(0, 1 − τ/‖c_g‖)·c_g per group (zero-norm groups stay 0).

    ``c`` is (B, C, H, W), ``ids`` the flat global group id of each entry (see :func:`.superpixels.group_ids`),
    ``total`` the number of groups in the batch.
    """
    norm = torch.zeros(total, dtype=c.dtype, device=c.device).index_add_(0, ids, c.flatten() ** 2).sqrt()
    coeff = torch.where(norm > 0, (1.0 - tau / norm).clamp_min(0.0), torch.zeros_like(norm))
    return coeff[ids].view_as(c) * c


def _search_update(ok, lam1, lower, upper, lam1_upper: float):
    """Per-image λ1 search step: success → upper = min(upper, λ1); failure → lower = max(lower, λ1);
    λ1 = (lower + upper)/2 once upper < lam1_upper, else λ1 stays (success) or grows ×10 (failure)."""
    upper = torch.where(ok, torch.minimum(upper, lam1), upper)
    lower = torch.where(ok, lower, torch.maximum(lower, lam1))
    unbounded = torch.where(ok, lam1, 10.0 * lam1)
    return torch.where(upper < lam1_upper, (lower + upper) / 2, unbounded), lower, upper


# This attack's registry entry: the CLIs, contract tests, plot style and demo study read it.
SPEC = register_attack(AttackSpec(
    name="sapf",
    function=sapf,
    config_class=SAPFConfig,
    presets=SAPF_PRESETS,
    description="SAPF: perturbation factorisation delta*G with lp-box ADMM, cardinality k and SLIC group sparsity",
    label="SAPF",
    color="#7F7F7F",
    demo_budget=dict(search_steps=2, iterations=2, iterations_delta=30, iterations_g=30, iterations_finetune=30),  # 302 passes
    test_options=dict(search_steps=1, iterations=1, iterations_delta=2, iterations_g=2, iterations_finetune=1),
    sequential=True,
))
