"""Homotopy-Attack, group-wise variant (Zhu, Chen & Wang, ICML 2021; spec §B.3).

Minimises F(δ) = CW(x+δ) + λ·#{non-zero superpixel groups of δ} subject to ‖δ‖∞ ≤ ε and x+δ in the box,
for a decreasing sequence of λ (the homotopy). Groups are the SLIC superpixels of the clean image, each
across all channels (:mod:`.superpixels`). Per λ, the non-monotone accelerated proximal gradient method of
Li & Lin (2015, "nmAPG") with Barzilai–Borwein steps and backtracking runs from the current δ; each call
may switch on at most ``max_update`` new groups. Between λ values an optional "after attack" phase takes
small gradient steps on the support, and a final phase shrinks ‖δ‖∞ while the example stays adversarial.

Group prox (ℓ0 of groups with the ε/box constraint): for v = y − α∇f(y) let v̂ be v clipped to ±ε and the
box. Group g keeps v̂_g iff ‖v_g‖² − ‖v_g − v̂_g‖² ≥ 2αλ, else it is zeroed (Zhu et al.'s element-wise prox
applied to groups: the exact minimiser of ‖u − v‖²/(2α) + λ·1[u_g ≠ 0] over the feasible u_g).

One image at a time (the support bookkeeping is per image; spec: not batched). All quantities live on the
paper's [-1, 1] scale (ε = 0.1 there is 0.05 on a [0, 1] box).

Cost per image (model passes, batch size 1): 1 gradient for λ; per nmAPG iteration 1 gradient at the
extrapolated point, 1 forward per backtracking try, and when the non-monotone test fails 1 more gradient
and 1 forward per try of the fallback step (plus a forward when thresholding changed the iterate); each
"after attack" step 1 gradient; the final ℓ∞ shrinking 1 forward per step (≤ ``post_iterations``), and
1 forward per image at the end for the success flags. Typically thousands to tens of thousands of passes
(measured with the cifar10 preset on ResNet20, CPU, 1 thread: ~700 passes and 2–4 s per image untargeted,
~16,000 passes and ~50 s per image targeted); the paper reports 499 s / 754 s per CIFAR image on a GPU.

Returned: x+δ from the last phase, also when the attack failed (as in the reference code).

Deviations from the GSE authors' code (their port of Zhu et al.'s element-wise code to groups):
- nmAPG follows Li & Lin: t_prev ← t is updated (the port keeps t_prev = 0, which makes the extrapolation
  step *backwards*); the fallback (v) branch keeps its group-thresholded iterate (the port discards it);
  c_{k+1} = (η q_k c_k + F(x_{k+1})) / q_{k+1} uses the old q_k in the numerator (the port uses q_{k+1}).
- Prox: the port zeroes a group iff ‖v_g‖² − ‖v̂_g‖² < 2αλ (it drops the "− v" of Zhu et al.'s
  (v̂ − v)² term) and returns the unclipped v. Then every group whose step stays inside the ε box is
  zeroed, and the λ initialisation degenerates (λ shrinks ×0.99 until it underflows). We use Zhu et al.'s
  condition and return v̂.
- The ℓ0 term of F counts non-zero *groups*, matching the prox (the port counts entries, C·|g| per
  group, ~30× on CIFAR, so its nmAPG acceptance tests and its prox use different λ). The homotopy's own rules (failure
  test, after-attack length, ‖δ‖₁ criterion) count entries, as in the port.
- SLIC on the real image in [0, 1] (the port: on the [-1, 1] values, labels from 1).
- Kept as in the port and Zhu et al.: BB steps ⟨s, r⟩/⟨r, r⟩ clamped to [1e-20, 1e20] (a negative
  curvature estimate gives a 1e-20 step; a vanishing r gives a huge one that backtracking then shrinks,
  which is where most forward passes go), and the extrapolated point is evaluated unclipped.
- Work the port discards is skipped with identical results: gradients at the same point are computed
  once (the port recomputes ∇f(y) on every backtracking try and ∇f(y_{k−1}) every iteration), the
  after-attack phases do not compute the unused CW gradient / prediction, and a step that cannot change δ
  (empty support) costs nothing. If the clean image is already adversarial (zero CW loss, zero gradient,
  where the port's λ search never ends) it is returned unchanged.
- Hard caps so every run ends: ``max_outer_iterations`` λ values (default 200: with ``max_update = 1``
  the port needs ≥ 0.95·C·H·W outer loops to declare failure), ``max_nmapg_iterations`` per nmAPG call
  (default 1000 = 10 × maxiter; the port's stopping test can cycle forever), and optionally ``max_passes``
  model passes per image (default None: no budget).

``variant="reference"`` follows the port in every deviation listed above that changes the result (the
prox rule and its unclipped output, the entry-count ℓ0 in F, t_prev = 0, the discarded fallback
thresholding, c with the updated q: :class:`.homotopy_solver.ReferenceHomotopySolver`) and runs SLIC on
the [-1, 1] values (the port's input). The skipped redundant work, the already-adversarial shortcut and the
hard caps are shared (the port cannot finish without them).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from .base import AttackResult, attack_session
from .homotopy_solver import solver_class
from .registry import AttackSpec, register_attack
from .superpixels import slic_segments
from .variants import CORRECTED, REFERENCE, check_variant

__all__ = ["SPEC", "HomotopyConfig", "HOMOTOPY_PRESETS", "homotopy", "homotopy_config"]


@dataclass(frozen=True)
class HomotopyConfig:
    """Homotopy-Attack hyperparameters; defaults are the reference constructor's (spec §B.3).

    Attributes:
        max_epsilon: ℓ∞ bound ε on δ ([-1, 1] scale).
        dec_factor: λ ← dec_factor·λ after each unsuccessful outer (homotopy) step.
        val_c: λ₀ = val_c · (largest λ for which the first prox step is non-zero, found by the β search).
        val_w1, val_w2: after-attack step sizes on the CW gradient and on the ∇‖δ‖∞ term.
        val_gamma: after-attack runs only if ‖δ‖₁ ≤ γ·ε·‖δ‖₀ (the perturbation is not saturated).
        beta: increment of the initial λ search.
        iter_init, iter_inc: after-attack length = (bisect_left(iter_inc, ‖δ‖₀) + 1)·iter_init steps.
        n_segments, compactness: SLIC parameters of the groups.
        max_update: new groups allowed per nmAPG call.
        maxiter: nmAPG stops (unsuccessful) after ≥ maxiter iterations once the loss changed < 1e-3 twice.
        eta, delta, rho: nmAPG's averaging weight η, sufficient-decrease constant δ, backtracking factor ρ.
        kappa: CW confidence.
        initial_step: first step size α of nmAPG and of the λ search.
        max_backtracks, max_v_backtracks: tries of the extrapolated and the fallback step (1000 / 10).
        post_iterations, post_step: final ℓ∞ shrinking phase (40000 steps of 1e-3).
        max_outer_iterations, max_nmapg_iterations, max_passes: hard caps (see module docstring).
        variant: ``"corrected"`` (Li & Lin's nmAPG, Zhu et al.'s prox) or ``"reference"`` (the GSE authors'
            port: t_prev = 0, its prox and ℓ0, SLIC on [-1, 1] values); see the module docstring.
    """

    max_epsilon: float = 0.1
    dec_factor: float = 0.98
    val_c: float = 1e-2
    val_w1: float = 1e-1
    val_w2: float = 1e-3
    val_gamma: float = 0.8
    beta: float = 1e-2
    iter_init: int = 50
    iter_inc: tuple[int, ...] = ()
    n_segments: int = 500
    compactness: float = 10.0
    max_update: int = 1
    maxiter: int = 100
    eta: float = 0.9
    delta: float = 0.3
    rho: float = 0.8
    kappa: float = 0.0
    initial_step: float = 1e-3
    max_backtracks: int = 1000
    max_v_backtracks: int = 10
    post_iterations: int = 40000
    post_step: float = 1e-3
    max_outer_iterations: int = 200
    max_nmapg_iterations: int = 1000
    max_passes: int | None = None
    variant: str = CORRECTED

    def __post_init__(self) -> None:
        check_variant(self.variant, "Homotopy")
        object.__setattr__(self, "iter_inc", tuple(int(v) for v in self.iter_inc))
        checks = [
            (self.max_epsilon > 0, "max_epsilon must be > 0"),
            (0 < self.dec_factor < 1, "dec_factor must be in (0, 1)"),
            (self.val_c > 0, "val_c must be > 0"),
            (self.val_w1 >= 0 and self.val_w2 >= 0, "val_w1 and val_w2 must be ≥ 0"),
            (self.val_gamma > 0 and self.beta > 0, "val_gamma and beta must be > 0"),
            (self.iter_init >= 0, "iter_init must be ≥ 0"),
            (list(self.iter_inc) == sorted(self.iter_inc), "iter_inc must be sorted ascending"),
            (self.n_segments >= 1 and self.compactness > 0, "n_segments must be ≥ 1 and compactness > 0"),
            (self.max_update >= 1, "max_update must be ≥ 1"),
            (self.maxiter >= 1, "maxiter must be ≥ 1"),
            (0 <= self.eta < 1 and 0 < self.rho < 1, "eta must be in [0, 1) and rho in (0, 1)"),
            (self.delta > 0 and self.initial_step > 0, "delta and initial_step must be > 0"),
            (self.kappa >= 0, "kappa must be ≥ 0"),
            (self.max_backtracks >= 1 and self.max_v_backtracks >= 1, "max_backtracks/max_v_backtracks must be ≥ 1"),
            (self.post_iterations >= 0 and self.post_step >= 0, "post_iterations and post_step must be ≥ 0"),
            (self.max_outer_iterations >= 1, "max_outer_iterations must be ≥ 1"),
            (self.max_nmapg_iterations >= 1, "max_nmapg_iterations must be ≥ 1"),
            (self.max_passes is None or self.max_passes >= 1, "max_passes must be ≥ 1 or None"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"Homotopy option error: {message}")


_CIFAR = dict(
    dec_factor=0.9, val_c=1e-1, val_w1=1e-3, val_w2=1e-5, val_gamma=0.96, beta=1e-1, iter_init=50,
    iter_inc=(100, 200, 300, 400, 500), n_segments=100,
)
_IMAGENET = dict(
    dec_factor=0.98, val_c=1e-2, val_w1=1e-1, val_w2=1e-3, val_gamma=0.8, beta=1e-2, iter_init=50,
    iter_inc=tuple(range(500, 6001, 500)), n_segments=500,
)
# attackParams.json of the reference code (spec §B.3); the same values for both modes.
HOMOTOPY_PRESETS: dict[str, dict[bool, dict]] = {
    "cifar10": {False: dict(_CIFAR), True: dict(_CIFAR)},
    "imagenet": {False: dict(_IMAGENET), True: dict(_IMAGENET)},
}


def homotopy_config(preset: str | None = None, targeted: bool = False, **options) -> HomotopyConfig:
    """Build a :class:`HomotopyConfig` from a preset name (``HOMOTOPY_PRESETS``) and option overrides."""
    return SPEC.make_config(preset, targeted, **options)


def homotopy(
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
    """Run the group-wise Homotopy-Attack on each image of a batch, one image at a time.

    Args:
        model: maps images in ``bounds`` (B, C, H, W) to logits (B, K); mode and flags are restored.
        images: (B, C, H, W) float images inside ``bounds``; not modified.
        labels: (B,) int64 target classes (targeted) or true classes (untargeted).
        targeted, bounds: as for every attack; hyperparameters are on the [-1, 1] scale.
        preset: ``"cifar10"`` or ``"imagenet"`` (reference JSON values), or None for the defaults.
        seed, generator: checked (int / torch.Generator or None) for the uniform signature; the attack is deterministic.
        progress: tqdm bar over the images.
        **options: any :class:`HomotopyConfig` field.

    Returns:
        :class:`AttackResult` with x+δ of the last phase for every image (unchanged where δ = 0).
    """
    config = homotopy_config(preset, targeted, **options)
    with attack_session(model, images, labels, bounds, targeted, seed=seed, generator=generator) as session:
        source = "signed" if config.variant == REFERENCE else "real"
        segments = slic_segments(session.x, session.bounds, config.n_segments, config.compactness, source)
        solver = solver_class(config.variant)
        x, y = session.canonical, session.labels
        adv_canonical = x.clone()
        session.caller.check_targets_now()  # targeted: before any image's pass budget starts
        for i in tqdm(range(x.shape[0]), desc="Homotopy (images)", disable=not progress):
            session.caller.image_offset = i  # errors name image i
            delta = solver(session.caller, x[i : i + 1], y[i : i + 1], segments[i], targeted, config).run()
            adv_canonical[i : i + 1] = (x[i : i + 1] + delta).clamp(-1.0, 1.0)
        session.caller.image_offset = None
        return session.result(adv_canonical, session.is_successful(adv_canonical))


# This attack's registry entry: the CLIs, contract tests, plot style and demo study read it.
SPEC = register_attack(AttackSpec(
    name="homotopy",
    function=homotopy,
    config_class=HomotopyConfig,
    presets=HOMOTOPY_PRESETS,
    description="Homotopy-Attack: group-wise (SLIC) l0 + l_inf homotopy with nmAPG, one image at a time",
    label="Homotopy",
    color="#56B4E9",
    demo_budget=dict(max_outer_iterations=20, max_nmapg_iterations=100, post_iterations=200, max_passes=300),
    test_options=dict(max_passes=20, post_iterations=5),
    sequential=True,
))
