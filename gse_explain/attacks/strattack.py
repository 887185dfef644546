"""StrAttack: structured (group-sparse) adversarial attack by ADMM (Xu et al., ICLR 2019; §B.1).

The attack minimises, per image, c·f(x + δ) + γ‖δ‖² + τ Σ_G ‖δ_G‖₂ over the box, with f the CW margin loss
(κ = 0) and G the non-overlapping g×g×C groups (g = 2 if W ≤ 32 else 8). ADMM splits δ into four copies: δ
(the ℓ2 term), w (the box, |w| ≤ ε and x + w ∈ [-1, 1]), y (the group-lasso term) and z (the loss, handled
by a linearised step with proximal weight η_k = α√(k+1)); u, v, s are the multipliers. Each of
``search_steps`` binary-search steps over the per-image loss weight c restarts ADMM from zero and runs
``max_iter`` iterations; the candidate of an iteration is x + y (y clipped to the box), and the successful
candidate with the smallest ‖δ‖₂² is kept. A "retrain" phase then refines on the support found: it keeps
the entries of the best y above their 3 % quantile and runs a second, linearised ADMM for
c·f(x + δ) + (γ/200)‖δ‖² with δ restricted to that support and the box (``retrain_steps`` × ``retrain_iter``
iterations, its own binary search over c starting at 5).

All hyperparameters are on the paper's [-1, 1] box; other ``bounds`` are mapped affinely.

Cost per image: phase 1 takes one gradient pass (at x + z) and one forward pass (the candidate x + y) per
iteration: search_steps·max_iter of each (1600 + 1600 with the presets); the retrain phase one gradient
pass per iteration whose logits also judge the candidate (1600); one final forward checks the returned
images. Total with the presets: 3200 gradient + 1601 forward passes per image. No image leaves the working
set early in phase 1: every binary-search step can still lower the kept ‖δ‖₂ (the bisection bounds never
become equal), so dropping an image would change its result. In the retrain phase, images without a
support (no success in phase 1) are left out: their refinement is identically δ = 0 and cannot change
anything.

Deviations from the GSE authors' code (attacks.py ``StrAttack``, a port of the authors' TF code
github.com/KaidiXu/StrAttack, ``l2_LADMMST_attack_v3.py``), each following the original TF code / paper:

- Loss weight per image: the gradient is of Σ_b c_b f_b (TF: ``const * reduce_sum(loss)``), not of the
  batch mean, so results do not depend on the batch size.
- Retrain z-step: (α z₁ + ρ(Δ + u₁) − g⊙A)/(α + 2ρ), exactly the authors' TF code (we could not consult
  the paper's appendix text here); the port multiplies α·z₁·ρ·(Δ + u₁), which all but freezes z₁.
- Best tracking uses ‖δ‖₂² of the candidate actually evaluated (TF: ``l2dist_real`` of the perturbation fed
  to the model: y in phase 1, Δ in the retrain). The port scores ‖z‖² in phase 1 and keeps that stale value
  through the retrain, where every candidate is then judged by the same constant.
- Candidates are clipped to the feasible set of the problem, x + δ ∈ [-1, 1] and |δ| ≤ ε (the set w is
  projected on); neither the TF code nor the port clips y, so their returned images can leave the box.
- The retrain threshold e0 is the 3 % quantile (linear interpolation, as numpy.percentile / torch.quantile)
  of the non-zero |best y| of each image separately. TF and port take it over the whole batch, which
  couples the images (and torch.quantile fails above 16M entries). An image without any success in phase 1
  has no support and no refinement (TF and port start the best y at all ones, and a per-image quantile of
  all ones leaves no entry above it either).
- Retrain binary search as in the TF code: bounds reset (lb = 0, ub = max_c), c = 5, and a step counts as
  a success when any candidate of the step succeeded. The port keeps phase 1's bounds and also requires
  the step to have improved the overall best.
- Choices where neither paper nor code decides for us: images whose width is not a multiple of the group
  size get smaller edge groups (the port crashes, the TF code leaves the remainder unthresholded); the
  retrain runs ``retrain_iter`` = 200 iterations per step like the port and the GSE paper (the TF code runs
  400), and phase 1 a fixed ``max_iter`` per step (the TF code adds 1000 per search step). Phase 1 keeps
  the port's constants and update (τ = 2, γ = 1, ε = 1 on [-1, 1], η = α√(k+1), unscaled multipliers);
  the TF code uses τ = 3, γ = 2 and a slightly different z-step weighting. As in both codes, the loss
  gradient is taken at x + z without clipping.

``variant="reference"`` runs the port's version of every deviation above (:mod:`.strattack_reference`).
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
from .variants import CORRECTED, REFERENCE, check_variant

__all__ = ["SPEC", "STRATTACK_PRESETS", "StrAttackConfig", "strattack", "strattack_config"]

_NO_UPPER = 1e9  # an upper bound of c at or above this means "no success yet" (TF code)


@dataclass(frozen=True)
class StrAttackConfig:
    """StrAttack hyperparameters (spec §B.1); defaults are the reference code's.

    Attributes:
        c: initial per-image loss weight of phase 1.
        search_steps, max_iter: binary-search steps over c and ADMM iterations per step (phase 1).
        retrain: run the refinement phase on the support found in phase 1.
        retrain_steps, retrain_iter, retrain_c: its binary-search steps, iterations per step, initial c.
        rho, alpha, tau, gamma: ADMM penalty ρ, linearisation weight α (η_k = α√(k+1)), group-lasso weight τ,
            ℓ2 weight γ.
        box_radius: ε, the bound |δ| ≤ ε per entry ([-1, 1] scale).
        group_size: side g of the square groups (all channels); None picks 2 if W ≤ 32 else 8.
        support_quantile: the retrain keeps entries of |best y| above this quantile of its non-zero entries.
        kappa: confidence margin of the CW loss.
        max_c: initial upper bound of the binary search (≥ 1e9 means unbounded).
        variant: ``"corrected"`` (this module) or ``"reference"`` (the port, :mod:`.strattack_reference`).
    """

    c: float = 2.5
    search_steps: int = 8
    max_iter: int = 200
    retrain: bool = True
    retrain_steps: int = 8
    retrain_iter: int = 200
    retrain_c: float = 5.0
    rho: float = 1.0
    alpha: float = 5.0
    tau: float = 2.0
    gamma: float = 1.0
    box_radius: float = 1.0
    group_size: int | None = None
    support_quantile: float = 0.03
    kappa: float = 0.0
    max_c: float = 1e10
    variant: str = CORRECTED

    def __post_init__(self) -> None:
        check_variant(self.variant, "StrAttack")
        checks = [
            (self.c > 0, "c must be > 0"),
            (self.search_steps >= 1, "search_steps must be ≥ 1"),
            (self.max_iter >= 1, "max_iter must be ≥ 1"),
            (self.retrain_steps >= 0, "retrain_steps must be ≥ 0"),
            (self.retrain_iter >= 1, "retrain_iter must be ≥ 1"),
            (self.retrain_c > 0, "retrain_c must be > 0"),
            (self.rho > 0, "rho must be > 0"),
            (self.alpha > 0, "alpha must be > 0"),
            (self.tau >= 0, "tau must be ≥ 0"),
            (self.gamma >= 0, "gamma must be ≥ 0"),
            (self.box_radius > 0, "box_radius must be > 0"),
            (self.group_size is None or self.group_size >= 1, "group_size must be ≥ 1 (or None)"),
            (0.0 <= self.support_quantile < 1.0, "support_quantile must be in [0, 1)"),
            (self.kappa >= 0, "kappa must be ≥ 0"),
            (self.max_c > 0, "max_c must be > 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"StrAttack option error: {message}")


# attackParams.json of the reference code (spec §B.1): only c differs between the datasets.
STRATTACK_PRESETS: dict[str, dict[bool, dict[str, float]]] = {
    "cifar10": {False: dict(c=0.25), True: dict(c=0.25)},
    "imagenet": {False: dict(c=2.5), True: dict(c=2.5)},
}


def strattack_config(preset: str | None = None, targeted: bool = False, **options) -> StrAttackConfig:
    """Build a :class:`StrAttackConfig` from a preset name (``STRATTACK_PRESETS``) and option overrides."""
    return SPEC.make_config(preset, targeted, **options)


def strattack(
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
    """Run StrAttack on a batch.

    Args:
        model: maps images in ``bounds`` (B, C, H, W) to logits (B, K); its mode and ``requires_grad``
            flags are restored afterwards; the attack runs on the model's device.
        images: (B, C, H, W) float images inside ``bounds``; not modified.
        labels: (B,) int64 target classes (targeted) or true classes (untargeted).
        targeted: reach ``labels`` (targeted) or leave them (untargeted).
        bounds: the box (lo, hi) of valid images; hyperparameters refer to its affine image [-1, 1].
        preset: ``"cifar10"`` (c = 0.25) or ``"imagenet"`` (c = 2.5); None keeps the defaults.
        seed, generator: checked (int / torch.Generator or None) for the uniform signature; StrAttack is deterministic.
        progress: tqdm bar over the binary-search steps of both phases.
        **options: any :class:`StrAttackConfig` field, overriding the preset.

    Returns:
        :class:`AttackResult` with, per image, the successful candidate of smallest ℓ2 norm found in either
        phase, or the unchanged image when none succeeded.
    """
    config = strattack_config(preset, targeted, **options)
    with attack_session(model, images, labels, bounds, targeted, seed=seed, generator=generator) as session:
        total = config.search_steps + (config.retrain_steps if config.retrain else 0)
        with tqdm(total=total, desc="StrAttack search steps", disable=not progress) as bar:
            adv_canonical = _run(session.caller, session.canonical, session.labels, targeted, config, bar)
        return session.result(adv_canonical)  # success: one forward pass on the returned images


def group_soft_threshold(v: torch.Tensor, threshold: float, size: int) -> torch.Tensor:
    """Group soft-thresholding max(0, 1 − threshold/‖v_G‖₂)·v_G over non-overlapping size×size×C groups.

    ``v`` is (B, C, H, W); edge groups are smaller when H or W is not a multiple of ``size``. A group of
    norm 0 stays 0.
    """
    batch, _, height, width = v.shape
    rows, cols = -(-height // size), -(-width // size)
    energy = (v * v).sum(dim=1, keepdim=True)
    energy = nn.functional.pad(energy, (0, cols * size - width, 0, rows * size - height))
    norms = energy.view(batch, 1, rows, size, cols, size).sum(dim=(3, 5)).sqrt().clamp(min=1e-12)
    factor = (1.0 - threshold / norms).clamp(min=0.0)
    factor = factor.repeat_interleave(size, dim=2).repeat_interleave(size, dim=3)[:, :, :height, :width]
    return factor * v


def nonzero_quantile(values: torch.Tensor, q: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row q-quantile of the non-zero entries of |values| (B, N), linear interpolation like numpy.

    Returns ``(quantile (B,), has_nonzero (B,) bool)``; rows without non-zero entries get +inf.
    """
    magnitude = values.abs()
    nonzero = magnitude != 0
    count = nonzero.sum(dim=1)
    ordered = torch.where(nonzero, magnitude, torch.full_like(magnitude, math.inf)).sort(dim=1).values
    position = q * (count - 1).clamp(min=0).to(torch.float64)
    low = position.floor().long()
    high = torch.minimum(low + 1, (count - 1).clamp(min=0))
    frac = (position - low).to(values.dtype)
    v_low = ordered.gather(1, low[:, None]).squeeze(1)
    v_high = ordered.gather(1, high[:, None]).squeeze(1)
    quantile = torch.where(frac > 0, v_low + frac * (v_high - v_low), v_low)
    return torch.where(count > 0, quantile, torch.full_like(quantile, math.inf)), count > 0


def _update_c(c, lower, upper, success):
    """Binary search over c per image (TF code): halve towards lb after success, else raise."""
    upper = torch.where(success, torch.minimum(upper, c), upper)
    lower = torch.where(success, lower, torch.maximum(lower, c))
    bisect = (lower + upper) / 2
    c = torch.where(upper < _NO_UPPER, bisect, torch.where(success, c, 5 * c))
    return c, lower, upper


class _Best:
    """Per-image record of the best successful candidate (smallest ‖δ‖₂²) over both phases."""

    def __init__(self, x: torch.Tensor):
        self.l2 = torch.full((x.shape[0],), math.inf, dtype=torch.float64, device=x.device)
        self.adv = x.clone()
        self.delta = torch.zeros_like(x)

    def offer(self, index, x, candidate, logits, labels, targeted, step_best):
        """Record the candidate images of the images ``index``; update and return their step bests."""
        delta = candidate - x
        l2 = delta.double().flatten(1).pow(2).sum(dim=1)
        success = is_successful(logits, labels, targeted)
        step_best = torch.where(success & (l2 < step_best), l2, step_best)
        better = success & (l2 < self.l2[index])
        if better.any():
            rows = index[better]
            self.l2[rows] = l2[better]
            self.adv[rows] = candidate[better]
            self.delta[rows] = delta[better]
        return step_best


def _run(caller: ModelCaller, x: torch.Tensor, labels: torch.Tensor, targeted: bool, cfg: StrAttackConfig, bar):
    """Both phases on canonical images x (B, C, H, W) in [-1, 1]; returns the canonical adversarials."""
    problem = _Problem.of(x, labels, targeted, cfg)
    if cfg.variant == REFERENCE:
        from .strattack_reference import run_reference  # it builds on this module's pieces

        return run_reference(caller, problem, bar)
    best = _Best(x)
    _admm_search(caller, problem, best, bar)
    if cfg.retrain:
        _retrain(caller, problem, best, bar)
    return best.adv


@dataclass(frozen=True)
class _Problem:
    """The fixed data of one call: canonical images x (B, C, H, W), labels (B,), mode, config, group side
    and the feasible set, as bounds on δ (``box_low`` ≤ δ ≤ ``box_high``: x + δ ∈ [-1, 1], |δ| ≤ ε) and the
    same set for candidate images (``image_low`` ≤ x + δ ≤ ``image_high``, exactly), all (B, C, H, W)."""

    x: torch.Tensor
    labels: torch.Tensor
    targeted: bool
    cfg: StrAttackConfig
    group_size: int
    box_low: torch.Tensor
    box_high: torch.Tensor
    image_low: torch.Tensor
    image_high: torch.Tensor

    @classmethod
    def of(cls, x, labels, targeted: bool, cfg: StrAttackConfig) -> "_Problem":
        return cls(
            x, labels, targeted, cfg, cfg.group_size or (2 if x.shape[-1] <= 32 else 8),
            box_low=torch.clamp(-1.0 - x, min=-cfg.box_radius), box_high=torch.clamp(1.0 - x, max=cfg.box_radius),
            image_low=torch.clamp(x - cfg.box_radius, min=-1.0), image_high=torch.clamp(x + cfg.box_radius, max=1.0),
        )

    def loss(self, weights: torch.Tensor, targets: torch.Tensor):
        """The per-image weighted CW loss c_b·f_b(logits) for labels ``targets``, as a function of the logits."""
        return lambda logits: weights * cw_margin_loss(logits, targets, self.targeted, self.cfg.kappa)


def _initial_search(problem: _Problem, c0: float):
    """Per-image loss weights c = c0 (B,) float64 and the binary-search bounds (0, max_c)."""
    c = torch.full((problem.x.shape[0],), c0, dtype=torch.float64, device=problem.x.device)
    return c, torch.zeros_like(c), torch.full_like(c, problem.cfg.max_c)


def _report(bar, best: _Best) -> None:
    bar.update(1)
    bar.set_postfix(success=f"{torch.isfinite(best.l2).float().mean().item():.0%}")


def _admm_search(caller: ModelCaller, problem: _Problem, best: _Best, bar) -> None:
    """Phase 1: ``search_steps`` binary-search steps over c, each a fresh ADMM run; updates ``best``."""
    cfg = problem.cfg
    c, lower, upper = _initial_search(problem, cfg.c)
    for _ in range(cfg.search_steps):
        step_best = _admm_run(caller, problem, best, c.to(problem.x.dtype))
        improved = torch.isfinite(step_best) & (step_best == best.l2)
        c, lower, upper = _update_c(c, lower, upper, improved)
        _report(bar, best)


def _admm_run(caller: ModelCaller, problem: _Problem, best: _Best, weights: torch.Tensor) -> torch.Tensor:
    """``max_iter`` ADMM iterations from zero with loss weights (B,); offers each candidate x + y to
    ``best`` and returns the (B,) smallest successful ‖δ‖₂² of this run (inf where none succeeded)."""
    cfg, x = problem.cfg, problem.x
    rho, alpha, gamma = cfg.rho, cfg.alpha, cfg.gamma
    everyone = torch.arange(x.shape[0], device=x.device)
    objective = problem.loss(weights, problem.labels)
    z, u, v, s = (torch.zeros_like(x) for _ in range(4))
    step_best = torch.full_like(best.l2, math.inf)
    for k in range(cfg.max_iter):
        delta = rho / (rho + 2 * gamma) * (z - u / rho)
        w = torch.minimum(torch.maximum(z - s / rho, problem.box_low), problem.box_high)
        y = group_soft_threshold(z - v / rho, cfg.tau / rho, problem.group_size)
        _, grad = caller.logits_and_grad(x + z, objective)
        eta = alpha * math.sqrt(k + 1)
        z = (eta * z + rho * (delta + w + y) + u + s + v - grad) / (eta + 3 * rho)
        u = u + rho * (delta - z)
        v = v + rho * (y - z)
        s = s + rho * (w - z)
        candidate = torch.minimum(torch.maximum(x + y, problem.image_low), problem.image_high)
        logits = caller.logits(candidate)
        step_best = best.offer(everyone, x, candidate, logits, problem.labels, problem.targeted, step_best)
    return step_best


def _retrain(caller: ModelCaller, problem: _Problem, best: _Best, bar) -> None:
    """Phase 2: ``retrain_steps`` binary-search steps (c from ``retrain_c``, bounds reset) of the linearised
    ADMM restricted to the support of the best δ; updates ``best``."""
    cfg = problem.cfg
    c, lower, upper = _initial_search(problem, cfg.retrain_c)
    everyone = torch.arange(problem.x.shape[0], device=problem.x.device)
    for _ in range(cfg.retrain_steps):
        e0, has_support = nonzero_quantile(best.delta.flatten(1), cfg.support_quantile)
        support = (best.delta.abs() > e0.view(-1, 1, 1, 1)) & has_support.view(-1, 1, 1, 1)
        index = everyone[support.flatten(1).any(dim=1)]  # no support: the refinement is δ ≡ 0
        step_best = torch.full_like(best.l2, math.inf)
        if len(index):
            step_best[index] = _retrain_run(caller, problem, best, index, support[index], c[index], step_best[index])
        c, lower, upper = _update_c(c, lower, upper, torch.isfinite(step_best))
        _report(bar, best)


def _retrain_run(caller: ModelCaller, problem: _Problem, best: _Best, index, mask, c, step_best) -> torch.Tensor:
    """``retrain_iter`` iterations on the images ``index`` (A,) with support ``mask`` (A, C, H, W) bool and
    weights c (A,), from their best δ; returns their updated (A,) step bests."""
    cfg = problem.cfg
    rho, alpha = cfg.rho, cfg.alpha
    shrink = rho / (rho + cfg.gamma / 100)
    xw, yw = problem.x[index], problem.labels[index]
    lw, hw, il, ih = (t[index] for t in (problem.box_low, problem.box_high, problem.image_low, problem.image_high))
    mask = mask.to(xw.dtype)
    z1 = best.delta[index].clone()
    u1 = torch.zeros_like(z1)
    objective = problem.loss(c.to(xw.dtype), yw)
    for _ in range(cfg.retrain_iter):
        delta = torch.minimum(torch.maximum((z1 - u1) * shrink, lw), hw) * mask
        candidate = torch.minimum(torch.maximum(xw + delta, il), ih)  # = x off the support
        logits, grad = caller.logits_and_grad(candidate, objective)
        z1 = (alpha * z1 + rho * (delta + u1) - grad * mask) / (alpha + 2 * rho)
        u1 = u1 + delta - z1
        step_best = best.offer(index, xw, candidate, logits, yw, problem.targeted, step_best)
    return step_best

# This attack's registry entry: the CLIs, contract tests, plot style and demo study read it.
SPEC = register_attack(AttackSpec(
    name="strattack",
    function=strattack,
    config_class=StrAttackConfig,
    presets=STRATTACK_PRESETS,
    description="StrAttack: ADMM with group-lasso (2x2 / 8x8 groups), binary search over c, refinement on the support",
    label="StrAttack",
    color="#0072B2",
    demo_budget=dict(search_steps=2, max_iter=50, retrain_steps=2, retrain_iter=50),  # 301 passes per image
    test_options=dict(search_steps=1, max_iter=3, retrain_steps=1, retrain_iter=3),
))
