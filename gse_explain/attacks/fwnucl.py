"""FWnucl: Frank–Wolfe over a nuclear group-norm ball (Kazemi et al., "Minimally distorted structured
adversarial attacks", IJCV 2023; spec §B.2).

The attack maximises the cross-entropy L (untargeted: CE(f(x + δ), y); targeted: −CE(f(x + δ), t)) over the
ball ‖δ‖_{G,*} = Σ_g ‖δ_g‖_* ≤ ε, where the groups g are the non-overlapping P×P patches of each
colour channel (a P×P matrix per channel and patch; P = 4 if H ≤ 64 else 32), ‖·‖_* the nuclear norm.
Frank–Wolfe from δ₀ = 0, for ``iterations`` steps:

    g = ∇_δ L(x + δ);   s = LMO(g) = argmax_{‖s‖_{G,*} ≤ ε} ⟨g, s⟩;
    γ = golden-section search of L(x + δ + γ(s − δ)) over [0, 1] (``line_search_steps`` comparisons);
    δ ← (1 − γ)δ + γ s.

The dual norm of Σ_g ‖·‖_* is max_g ‖·‖₂ (spectral norm), so the exact LMO puts ε·u₁v₁ᵀ on the single
group whose gradient block has the largest top singular value σ₁ (u₁, v₁ its singular vectors; then
⟨g, s⟩ = ε σ₁ > 0 increases the loss) and zero elsewhere. All blocks of all images go through one batched
``torch.linalg.svd``. The returned images are clip(x + δ) to the box after the last iteration, whether
successful or not: like the paper and the reference code, the attack runs a fixed number of iterations,
tracks no success and never stops early (``success`` only reports the argmax test on what is returned).

ε is on the paper's [-1, 1] box; other ``bounds`` are mapped affinely. The model is evaluated at x + δ
without clipping during the iterations (as the reference code does).

Cost per image: per iteration one gradient pass and 2 + (line_search_steps − 1) forward passes (golden
section re-uses one of its two interior points per step), plus one final forward pass for the success
test: 200 gradient + 5201 forward passes with the presets.

Deviations from the GSE authors' code (attacks.py ``FWnucl``):

- LMO: the reference picks the patch location with the largest *sum over channels of nuclear norms* and
  writes ε·u₁v₁ᵀ into that patch of *every* channel (an element of norm C·ε, outside the ε-ball). We
  implement the exact LMO above. ``variant="reference"`` (or ``lmo="reference"`` alone) reproduces the
  reference rule for comparison; it is the only code path the reference variant changes (the other
  differences below change nothing but rounding and the number of forward passes).
  Group definition: the nuclear norm needs matrices, so a group is one channel's P×P patch, and the ball
  sums over channels and patches. We could not consult the paper's text here; the per-channel patch
  matrices follow the reference code's grouping, and the single-group LMO is the exact solution for a
  sum of nuclear norms (spec §B.2).
- Golden section: the reference evaluates both interior points in each of its iterations (50 forwards per
  line search); we evaluate each new point once (26 forwards). The points compared are the same up to
  rounding, so the step sizes agree up to rounding.
- The gradient is of the per-image CE summed over the batch (the reference uses the batch mean; the
  LMO is invariant to the positive factor 1/B, so this changes nothing but rounding).
- Pixels beyond the last full patch (H or W not a multiple of P) belong to no group and are never
  perturbed, as with the reference's ``unfold``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from .base import AttackResult, attack_session
from .registry import AttackSpec, register_attack
from .variants import CORRECTED, REFERENCE, check_variant

__all__ = ["SPEC", "FWNUCL_PRESETS", "FWnuclConfig", "fwnucl", "fwnucl_config", "nuclear_group_lmo"]

_GOLDEN = (1.0 + math.sqrt(5.0)) / 2.0


@dataclass(frozen=True)
class FWnuclConfig:
    """FWnucl hyperparameters (spec §B.2).

    Attributes:
        eps: radius of the nuclear group-norm ball ([-1, 1] scale).
        iterations: Frank–Wolfe iterations (fixed; no early stop).
        line_search_steps: golden-section comparisons per line search.
        patch_size: side P of the square groups; None picks 4 if H ≤ 64 else 32.
        lmo: ``"exact"`` (single group of largest spectral norm), ``"reference"`` (the GSE authors' rule), or
            None (the default): the rule of ``variant``. An explicit value wins over the variant.
        variant: ``"corrected"`` (exact LMO) or ``"reference"`` (the GSE authors' port: its LMO rule).
    """

    eps: float = 5.0
    iterations: int = 200
    line_search_steps: int = 25
    patch_size: int | None = None
    lmo: str | None = None
    variant: str = CORRECTED

    def __post_init__(self) -> None:
        check_variant(self.variant, "FWnucl")
        checks = [
            (self.eps > 0, "eps must be > 0"),
            (self.iterations >= 1, "iterations must be ≥ 1"),
            (self.line_search_steps >= 1, "line_search_steps must be ≥ 1"),
            (self.patch_size is None or self.patch_size >= 1, "patch_size must be ≥ 1 (or None)"),
            (self.lmo in (None, "exact", "reference"), f"lmo must be 'exact' or 'reference' (or None: by variant); got {self.lmo!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"FWnucl option error: {message}")

    @property
    def lmo_rule(self) -> str:
        """The LMO rule used: ``lmo`` when given, else ``"reference"`` for the reference variant, ``"exact"`` otherwise."""
        if self.lmo is not None:
            return self.lmo
        return "reference" if self.variant == REFERENCE else "exact"


# attackParams.json of the reference code: eps = 5 for every dataset and mode.
FWNUCL_PRESETS: dict[str, dict[bool, dict[str, float]]] = {
    "cifar10": {False: dict(eps=5.0), True: dict(eps=5.0)},
    "imagenet": {False: dict(eps=5.0), True: dict(eps=5.0)},
}


def fwnucl_config(preset: str | None = None, targeted: bool = False, **options) -> FWnuclConfig:
    """Build a :class:`FWnuclConfig` from a preset name (``FWNUCL_PRESETS``) and option overrides."""
    return SPEC.make_config(preset, targeted, **options)


def nuclear_group_lmo(grad: torch.Tensor, eps: float, patch_size: int, rule: str = "exact") -> torch.Tensor:
    """argmax_{Σ_g ‖s_g‖_* ≤ eps} ⟨grad, s⟩ per image over per-channel patch groups; (B, C, H, W).

    ``rule="exact"``: eps·u₁v₁ᵀ on the (channel, patch) block of ``grad`` with the largest top singular
    value. ``rule="reference"``: the GSE authors' rule, eps·u₁v₁ᵀ in every channel of the patch location
    whose summed nuclear norms are largest. Ties go to the first block in (channel, row, column) order.
    """
    batch, channels, height, width = grad.shape
    p = patch_size
    rows, cols = height // p, width // p
    if rows == 0 or cols == 0:
        raise ValueError(f"patch_size {p} is larger than the image ({height}×{width})")
    blocks = grad[:, :, : rows * p, : cols * p].reshape(batch, channels, rows, p, cols, p).transpose(3, 4)
    if blocks.dtype in (torch.float16, torch.bfloat16):  # no 16-bit SVD in torch: compute it in float32
        u, sv, vh = (t.to(blocks.dtype) for t in torch.linalg.svd(blocks.float(), full_matrices=False))
    else:
        u, sv, vh = torch.linalg.svd(blocks, full_matrices=False)  # (B, C, rows, cols, P, P) batched
    if rule == "exact":
        pick = F.one_hot(sv[..., 0].flatten(1).argmax(dim=1), channels * rows * cols)
        pick = pick.view(batch, channels, rows, cols)
    else:
        location = F.one_hot(sv.sum(dim=(1, 4)).flatten(1).argmax(dim=1), rows * cols).view(batch, 1, rows, cols)
        pick = location.expand(batch, channels, rows, cols)
    rank_one = u[..., :, :1] * vh[..., :1, :]  # u₁v₁ᵀ of every block
    s_blocks = (eps * pick.to(grad.dtype))[..., None, None] * rank_one
    s = s_blocks.transpose(3, 4).reshape(batch, channels, rows * p, cols * p)
    return F.pad(s, (0, width - cols * p, 0, height - rows * p))


def fwnucl(
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
    """Run FWnucl on a batch.

    Args:
        model: maps images in ``bounds`` (B, C, H, W) to logits (B, K); its mode and ``requires_grad``
            flags are restored afterwards; the attack runs on the model's device.
        images: (B, C, H, W) float images inside ``bounds``; not modified.
        labels: (B,) int64 target classes (targeted) or true classes (untargeted).
        targeted: reach ``labels`` (targeted) or leave them (untargeted).
        bounds: the box (lo, hi) of valid images; ε refers to its affine image [-1, 1].
        preset: ``"cifar10"`` or ``"imagenet"`` (both eps = 5); None keeps the defaults.
        seed, generator: checked (int / torch.Generator or None) for the uniform signature; FWnucl is deterministic.
        progress: tqdm bar over the Frank–Wolfe iterations.
        **options: any :class:`FWnuclConfig` field, overriding the preset.

    Returns:
        :class:`AttackResult` with clip(x + δ) after the last iteration for every image.
    """
    config = fwnucl_config(preset, targeted, **options)
    sign = -1.0 if targeted else 1.0
    with attack_session(model, images, labels, bounds, targeted, seed=seed, generator=generator) as session:
        u, y = session.canonical, session.labels
        patch = config.patch_size or (4 if u.shape[2] <= 64 else 32)
        if patch > min(u.shape[2:]):
            raise ValueError(f"FWnucl option error: patch_size {patch} is larger than the images {tuple(u.shape[2:])}")

        def objective(logits):  # per-image loss to maximise
            return sign * F.cross_entropy(logits, y, reduction="none")

        delta = _frank_wolfe(session.caller, u, objective, config, patch, progress)
        return session.result((u + delta).clamp(-1.0, 1.0))  # success: one forward pass on the returned images


def _frank_wolfe(caller, u, objective, cfg: FWnuclConfig, patch: int, progress: bool) -> torch.Tensor:
    """``cfg.iterations`` Frank–Wolfe steps from δ = 0 on canonical images u (B, C, H, W); returns δ."""
    delta = torch.zeros_like(u)
    for _ in tqdm(range(cfg.iterations), desc="FWnucl iterations", disable=not progress):
        _, grad = caller.logits_and_grad(u + delta, objective)
        s = nuclear_group_lmo(grad, cfg.eps, patch, cfg.lmo_rule)
        gamma = _golden_section(caller, u, delta, s - delta, objective, cfg.line_search_steps)
        delta = (1.0 - gamma) * delta + gamma * s
    return delta


def _golden_section(caller, u, delta, direction, objective, steps: int) -> torch.Tensor:
    """Per-image γ ∈ [0, 1] maximising objective(u + δ + γ·direction); returns (B, 1, 1, 1).

    Each step compares the interior points c < d, keeps [a, d] if L(c) > L(d) else [c, b], and re-uses the
    surviving interior point, so only one new point is evaluated per step after the first two.
    """
    batch = u.shape[0]
    view = (-1, 1, 1, 1)

    def loss_at(gamma):
        return objective(caller.logits(u + delta + gamma.view(view) * direction))

    a = torch.zeros(batch, dtype=u.dtype, device=u.device)
    b = torch.ones_like(a)
    c = b - (b - a) / _GOLDEN
    d = a + (b - a) / _GOLDEN
    logits = caller.logits(torch.cat([u + delta + c.view(view) * direction, u + delta + d.view(view) * direction]))
    loss_c, loss_d = objective(logits[:batch]), objective(logits[batch:])
    for step in range(steps):
        left = loss_c > loss_d  # the maximum lies in [a, d]
        b = torch.where(left, d, b)
        a = torch.where(left, a, c)
        if step == steps - 1:
            break
        # Left: the old c becomes the new d and a new c is needed; right: the old d becomes c, new d.
        new_point = torch.where(left, b - (b - a) / _GOLDEN, a + (b - a) / _GOLDEN)
        loss_new = loss_at(new_point)
        c, d = torch.where(left, new_point, d), torch.where(left, c, new_point)
        loss_c, loss_d = torch.where(left, loss_new, loss_d), torch.where(left, loss_c, loss_new)
    return ((a + b) / 2).view(view)


# This attack's registry entry: the CLIs, contract tests, plot style and demo study read it.
SPEC = register_attack(AttackSpec(
    name="fwnucl",
    function=fwnucl,
    config_class=FWnuclConfig,
    presets=FWNUCL_PRESETS,
    description="FWnucl: Frank-Wolfe over the nuclear group-norm ball with golden-section line search",
    label="FWnucl",
    color="#009E73",
    demo_budget=dict(iterations=11),  # 298 passes per image (11 gradients, 287 forward)
    test_options=dict(iterations=2, line_search_steps=3),
))
