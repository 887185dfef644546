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
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from .base import AttackResult, ModelCaller, check_attack_inputs, frozen_model, model_device
from .losses import cw_margin_loss, is_successful
from .superpixels import slic_segments

__all__ = ["HomotopyConfig", "HOMOTOPY_PRESETS", "homotopy", "homotopy_config"]


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

    def __post_init__(self) -> None:
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
    values: dict = {}
    if preset is not None:
        if preset not in HOMOTOPY_PRESETS:
            raise ValueError(f"unknown Homotopy preset {preset!r}; choose one of {sorted(HOMOTOPY_PRESETS)} or None")
        values.update(HOMOTOPY_PRESETS[preset][bool(targeted)])
    known = {f.name for f in dataclasses.fields(HomotopyConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"unknown Homotopy option(s) {unknown}; valid options: {sorted(known)}")
    values.update(options)
    return HomotopyConfig(**values)


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
        seed, generator: accepted for the uniform signature; the attack is deterministic.
        progress: tqdm bar over the images.
        **options: any :class:`HomotopyConfig` field.

    Returns:
        :class:`AttackResult` with x+δ of the last phase for every image (unchanged where δ = 0).
    """
    del seed, generator  # deterministic
    config = homotopy_config(preset, targeted, **options)
    bounds = check_attack_inputs(images, labels, bounds)
    device = model_device(model, images.device)
    x = images.detach().to(device).contiguous()
    y = labels.detach().to(device=device, dtype=torch.long)
    segments = slic_segments(x, bounds, config.n_segments, config.compactness)
    with frozen_model(model):
        caller = ModelCaller(model, bounds, int(y.max().item()))
        x_canonical = caller.to_canonical(x)
        adv_canonical = x_canonical.clone()
        for i in tqdm(range(x.shape[0]), desc="Homotopy (images)", disable=not progress):
            delta = _Attack(caller, x_canonical[i : i + 1], y[i : i + 1], segments[i], targeted, config).run()
            adv_canonical[i : i + 1] = (x_canonical[i : i + 1] + delta).clamp(-1.0, 1.0)
        success = is_successful(caller.logits(adv_canonical), y, targeted)
    adversarials = caller.from_canonical(x, adv_canonical, x_canonical, bounds)
    return AttackResult(
        adversarials=adversarials.to(images.device),
        success=success.to(images.device),
        forward_passes=caller.forward_passes,
        gradient_passes=caller.gradient_passes,
        model_calls=caller.calls,
    )


class _BudgetExhausted(Exception):
    """Raised when an image used up ``max_passes``; the last committed δ is returned."""


class _Attack:
    """State of the attack on one canonical image x (1, C, H, W) with groups ``segments`` (H, W)."""

    def __init__(self, caller: ModelCaller, x, y, segments, targeted: bool, cfg: HomotopyConfig):
        self.caller, self.x, self.y, self.targeted, self.cfg = caller, x, y, targeted, cfg
        self.ids = segments.unsqueeze(0).expand(x.shape[1], -1, -1).flatten()  # group of each entry
        self.num_groups = int(segments.max().item()) + 1
        self.passes_at_start = caller.forward_passes + caller.gradient_passes
        self.delta = torch.zeros_like(x)  # last committed perturbation (returned if the budget runs out)

    # ----- model access (each call counts against the optional per-image budget) -----
    def _spend(self) -> None:
        used = self.caller.forward_passes + self.caller.gradient_passes - self.passes_at_start
        if self.cfg.max_passes is not None and used >= self.cfg.max_passes:
            raise _BudgetExhausted

    def _loss(self, logits):
        return cw_margin_loss(logits, self.y, self.targeted, self.cfg.kappa)

    def grad(self, d):
        """(logits, CW loss, ∇_δ CW) at δ = d."""
        self._spend()
        logits, g = self.caller.logits_and_grad(self.x + d, self._loss)
        return logits, self._loss(logits).item(), g

    def forward(self, d):
        """(logits, CW loss) at δ = d."""
        self._spend()
        logits = self.caller.logits(self.x + d)
        return logits, self._loss(logits).item()

    def success(self, logits) -> bool:
        return bool(is_successful(logits, self.y, self.targeted).item())

    # ----- groups -----
    def group_sq(self, v):
        return torch.zeros(self.num_groups, dtype=v.dtype, device=v.device).index_add_(0, self.ids, v.flatten() ** 2)

    def n_groups(self, v) -> int:
        """Number of groups with a non-zero entry."""
        sums = torch.zeros(self.num_groups, dtype=v.dtype, device=v.device).index_add_(0, self.ids, v.abs().flatten())
        return int((sums > 0).sum().item())

    def project(self, v):
        """Clip to ±ε and to the box [-1, 1] around x."""
        eps = self.cfg.max_epsilon
        return (self.x + v.clamp(-eps, eps)).clamp(-1.0, 1.0) - self.x

    def prox_gains(self, v):
        """Per group: ‖v_g‖² − ‖v_g − v̂_g‖², the decrease of the prox objective when keeping group g."""
        v_hat = self.project(v)
        return self.group_sq(v) - self.group_sq(v - v_hat), v_hat

    def prox(self, v, alpha: float, lam: float):
        gains, v_hat = self.prox_gains(v)
        keep = gains >= 2.0 * alpha * lam
        return v_hat * keep[self.ids].view_as(v)

    def group_thres(self, v, k: int):
        """Keep the k groups of largest ℓ2 norm."""
        sq = self.group_sq(v)
        keep = torch.zeros_like(sq, dtype=torch.bool)
        keep[sq.topk(min(k, self.num_groups)).indices] = True
        return v * keep[self.ids].view_as(v)

    # ----- the algorithm -----
    def run(self):
        cfg = self.cfg
        try:
            logits, _, grad0 = self.grad(torch.zeros_like(self.x))
            if self.success(logits):
                return self.delta  # already adversarial: nothing to do
            lam = self.initial_lambda(grad0)
            numel = self.x.numel()
            for outer in range(1, cfg.max_outer_iterations + 1):
                self.delta, success = self.nmapg(self.delta, lam)
                nnz = int((self.delta != 0).sum().item())
                if nnz > 0.95 * numel and outer * cfg.max_update > 0.95 * numel:
                    break  # the port's failure test
                iters = 0
                if self.delta.abs().sum().item() <= nnz * cfg.max_epsilon * cfg.val_gamma:
                    iters = (bisect.bisect_left(cfg.iter_inc, nnz) + 1) * cfg.iter_init
                if success:
                    break
                changed = self.after_attack(iters)
                lam *= cfg.dec_factor
                if changed and self.success(self.forward(self.delta)[0]):
                    break
            self.final_phase()
        except _BudgetExhausted:
            pass
        return self.delta

    def initial_lambda(self, grad0) -> float:
        """The reference λ search: λ = β, +β while the first prox step is non-zero, then ×0.99 while it is
        zero, times val_c. Done on the scalar max gain (same outcome as re-running the prox)."""
        cfg = self.cfg
        alpha = cfg.initial_step
        gains, _ = self.prox_gains(-alpha * grad0)
        top = gains.max().item()
        if top <= 0:
            return 0.0

        def zero(lam: float) -> bool:
            return top < 2.0 * alpha * lam

        lam = cfg.beta * max(1, math.floor(top / (2.0 * alpha * cfg.beta)))
        while not zero(lam):
            lam += cfg.beta
        while zero(lam):
            lam *= 0.99
        return lam * cfg.val_c

    def objective(self, loss: float, d, lam: float) -> float:
        return loss + lam * self.n_groups(d)

    def nmapg(self, x0, lam: float):
        """Li & Lin's nmAPG with BB steps from x0 at fixed λ; returns (δ, success)."""
        cfg = self.cfg
        groups0 = self.n_groups(x0)
        logits_x, loss_x = self.forward(x0)
        f_x = self.objective(loss_x, x0, lam)
        x = x_prev = z = x0
        t, t_prev, c, q = 1.0, 0.0, f_x, 1.0
        alpha_y = alpha_x = cfg.initial_step
        y_prev = g_y_prev = None
        prev_loss = cur_loss = 0.0
        counter, success = False, False
        for k in range(cfg.max_nmapg_iterations):
            y = x + (t_prev / t) * (z - x) + ((t_prev - 1.0) / t) * (x - x_prev)
            _, loss_y, g_y = self.grad(y)
            f_y = self.objective(loss_y, y, lam)
            if k > 0:
                alpha_y = _bb_step(y - y_prev, g_y - g_y_prev)
            for _ in range(cfg.max_backtracks):
                z = self.prox(y - alpha_y * g_y, alpha_y, lam)
                alpha_y *= cfg.rho
                logits_z, loss_z = self.forward(z)
                f_z = self.objective(loss_z, z, lam)
                decrease = cfg.delta * ((z - y) ** 2).sum().item()
                if f_z <= f_y - decrease or f_z <= c - decrease:
                    break
            x_prev = x
            took_z = True
            if f_z <= c - decrease:
                x, logits_x, f_x = z, logits_z, f_z
            else:
                _, _, g_x = self.grad(x)
                if k > 0:
                    alpha_x = _bb_step(x - y_prev, g_x - g_y_prev)
                for _ in range(cfg.max_v_backtracks):
                    v = self.prox(x - alpha_x * g_x, alpha_x, lam)
                    alpha_x *= cfg.rho
                    logits_v, loss_v = self.forward(v)
                    f_v = self.objective(loss_v, v, lam)
                    bound = c - cfg.delta * ((v - x) ** 2).sum().item()
                    if f_v <= bound or abs(f_v - bound) < 1e-3:
                        break
                if f_z <= f_v:
                    x, logits_x, f_x = z, logits_z, f_z
                else:
                    x, logits_x, f_x = v, logits_v, f_v
                    took_z = False
            stale = False
            if abs(self.n_groups(x) - groups0) > cfg.max_update:
                thresholded = self.group_thres(x, groups0 + cfg.max_update)
                stale = not torch.equal(thresholded, x)
                x = thresholded
                if took_z:
                    z = x  # the port (and Zhu et al.) also threshold z in this branch
            clipped = self.project(x)
            if not torch.equal(clipped, x):
                x, stale = clipped, True
            if stale:
                logits_x, loss = self.forward(x)
                f_x = self.objective(loss, x, lam)
            self.delta = x
            y_prev, g_y_prev = y, g_y
            t_prev, t = t, (math.sqrt(4.0 * t * t + 1.0) + 1.0) / 2.0
            c = (cfg.eta * q * c + f_x) / (cfg.eta * q + 1.0)
            q = cfg.eta * q + 1.0
            success = self.success(logits_x)
            prev_loss, cur_loss = cur_loss, self._loss(logits_x).item()
            if success:
                break
            small_change = k + 1 >= cfg.maxiter and abs(prev_loss - cur_loss) < 1e-3
            if small_change and counter:
                break
            counter = counter or small_change
        return x, success

    def after_attack(self, iters: int) -> bool:
        """``iters`` steps δ ← δ − w2·∇‖δ‖∞ − w1·∇CW on the support, projected; returns whether δ changed."""
        cfg = self.cfg
        mask = (self.delta != 0).to(self.delta.dtype)
        if iters <= 0 or not mask.any():
            return False
        delta = self.delta
        for _ in range(iters):
            _, _, g = self.grad(delta)
            delta = self.project(delta - cfg.val_w2 * _linf_grad(delta) * mask - cfg.val_w1 * g * mask)
            self.delta = delta
        return True

    def final_phase(self) -> None:
        """Shrink ‖δ‖∞ on the support while the example stays adversarial (the port's post = 1 phase)."""
        cfg = self.cfg
        mask = (self.delta != 0).to(self.delta.dtype)
        if not mask.any():
            return
        for _ in range(cfg.post_iterations):
            previous = self.delta
            candidate = self.project(previous - cfg.post_step * _linf_grad(previous) * mask)
            if not self.success(self.forward(candidate)[0]):
                return  # keep the last adversarial δ
            self.delta = candidate


def _linf_grad(v):
    """Gradient of ‖v‖∞ as PyTorch computes it: sign(v) on the maximal entries, shared among ties."""
    magnitude = v.abs()
    top = magnitude.max()
    if top == 0:
        return torch.zeros_like(v)
    ties = magnitude == top
    return torch.sign(v) * ties / ties.sum()


def _bb_step(s, r) -> float:
    """Barzilai–Borwein step ⟨s, r⟩/⟨r, r⟩ with the port's guards, clamped to [1e-20, 1e20]."""
    s_sum = s if s.abs().sum().item() >= 1e-5 else torch.full((), 1e-5, dtype=s.dtype, device=s.device)
    r_sum = r if r.abs().sum().item() >= 1e-10 else torch.full((), 1e-10, dtype=r.dtype, device=r.device)
    alpha = ((s_sum * r_sum).sum() / (r_sum * r_sum).sum()).item()
    if math.isnan(alpha):
        return 1e-20
    return min(max(alpha, 1e-20), 1e20)
