"""The per-image solver of the group-wise Homotopy-Attack: the λ homotopy, nmAPG and the after-attack phases.

Used by :func:`gse_explain.attacks.homotopy.homotopy`, which documents the algorithm, its cost and its
deviations from the GSE authors' port. This module holds the state machine for one canonical image
(:class:`HomotopySolver`) and its ``variant="reference"`` form (:class:`ReferenceHomotopySolver`), which
follows the port where the spec (§B.3) documents a deviation.
"""

from __future__ import annotations

import bisect
import math
from typing import TYPE_CHECKING

import torch

from .base import ModelCaller
from .losses import cw_margin_loss, is_successful

if TYPE_CHECKING:
    from .homotopy import HomotopyConfig

__all__ = ["BudgetExhausted", "HomotopySolver", "ReferenceHomotopySolver", "solver_class"]


class BudgetExhausted(Exception):
    """Raised when an image used up ``max_passes``; the last committed δ is returned."""


class HomotopySolver:
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
            raise BudgetExhausted

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
        except BudgetExhausted:
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
        """Li & Lin's nmAPG with BB steps from x0 (1, C, H, W) at fixed λ; returns (δ, success).

        Each iteration: extrapolate y, take a backtracked prox step z from y; if z does not decrease the
        averaged objective c enough, also try a prox step v from x and keep the better; then limit the
        group count and the box (:meth:`_limit`).
        """
        cfg = self.cfg
        groups0 = self.n_groups(x0)
        logits_x, loss_x = self.forward(x0)
        f_x = self.objective(loss_x, x0, lam)
        x = x_prev = z = x0
        t, t_prev, c, q = 1.0, 0.0, f_x, 1.0
        y_prev = g_y_prev = None
        prev_loss = cur_loss = 0.0
        counter, success = False, False
        for k in range(cfg.max_nmapg_iterations):
            y = x + (t_prev / t) * (z - x) + ((t_prev - 1.0) / t) * (x - x_prev)
            _, loss_y, g_y = self.grad(y)
            f_y = self.objective(loss_y, y, lam)
            alpha_y = _bb_step(y - y_prev, g_y - g_y_prev) if k > 0 else cfg.initial_step
            z, logits_z, f_z, decrease = self._extrapolated_step(y, g_y, f_y, alpha_y, c, lam)
            x_prev = x
            if f_z <= c - decrease:
                x, logits_x, f_x, took_z = z, logits_z, f_z, True
            else:
                x, logits_x, f_x, took_z = self._fallback_step(x, (z, logits_z, f_z), (y_prev, g_y_prev), k, c, lam)
            x, z, logits_x, f_x = self._limit(x, z, took_z, groups0, (logits_x, f_x), lam)
            self.delta = x
            y_prev, g_y_prev = y, g_y
            t_prev, t = self._momentum(t_prev, t)
            c, q = self._average(c, q, f_x)
            success = self.success(logits_x)
            prev_loss, cur_loss = cur_loss, self._loss(logits_x).item()
            if success:
                break
            small_change = k + 1 >= cfg.maxiter and abs(prev_loss - cur_loss) < 1e-3
            if small_change and counter:
                break
            counter = counter or small_change
        return x, success

    def _momentum(self, t_prev: float, t: float) -> tuple[float, float]:
        """Li & Lin's (t_prev, t) update: t_prev ← t, t ← (√(4t² + 1) + 1)/2."""
        return t, (math.sqrt(4.0 * t * t + 1.0) + 1.0) / 2.0

    def _average(self, c: float, q: float, f_x: float) -> tuple[float, float]:
        """Li & Lin's averaged objective: c ← (η q c + F(x))/(η q + 1), q ← η q + 1 (old q in the numerator)."""
        eta = self.cfg.eta
        return (eta * q * c + f_x) / (eta * q + 1.0), eta * q + 1.0

    def _threshold_fallback(self) -> bool:
        """Whether the group limit also applies to an iterate taken from the fallback (v) step."""
        return True

    def _extrapolated_step(self, y, g_y, f_y: float, alpha: float, c: float, lam: float):
        """Backtracked prox step z from the extrapolated point y (step α, shrunk by ρ per try) until z
        decreases f(y) or c by δ‖z − y‖²; returns (z, logits at z, f(z), that decrease)."""
        cfg = self.cfg
        for _ in range(cfg.max_backtracks):
            z = self.prox(y - alpha * g_y, alpha, lam)
            alpha *= cfg.rho
            logits_z, loss_z = self.forward(z)
            f_z = self.objective(loss_z, z, lam)
            decrease = cfg.delta * ((z - y) ** 2).sum().item()
            if f_z <= f_y - decrease or f_z <= c - decrease:
                break
        return z, logits_z, f_z, decrease

    def _fallback_step(self, x, z_step, previous, k: int, c: float, lam: float):
        """The monotone fallback: a backtracked prox step v from x; returns (point, logits, f, took_z) for
        the better of ``z_step = (z, logits_z, f_z)`` and v. ``previous = (y_prev, g_y_prev)`` feeds the BB
        step (from iteration 1 on)."""
        cfg = self.cfg
        z, logits_z, f_z = z_step
        y_prev, g_y_prev = previous
        _, _, g_x = self.grad(x)
        alpha = _bb_step(x - y_prev, g_x - g_y_prev) if k > 0 else cfg.initial_step
        for _ in range(cfg.max_v_backtracks):
            v = self.prox(x - alpha * g_x, alpha, lam)
            alpha *= cfg.rho
            logits_v, loss_v = self.forward(v)
            f_v = self.objective(loss_v, v, lam)
            bound = c - cfg.delta * ((v - x) ** 2).sum().item()
            if f_v <= bound or abs(f_v - bound) < 1e-3:
                break
        if f_z <= f_v:
            return z, logits_z, f_z, True
        return v, logits_v, f_v, False

    def _limit(self, x, z, took_z: bool, groups0: int, evaluated, lam: float):
        """At most ``groups0 + max_update`` groups (largest ℓ2 norms) and the ε-box for x; re-evaluates x
        when that changed it. ``evaluated = (logits, f)`` at x; returns (x, z, logits, f)."""
        cfg = self.cfg
        logits_x, f_x = evaluated
        stale = False
        if abs(self.n_groups(x) - groups0) > cfg.max_update and (took_z or self._threshold_fallback()):
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
        return x, z, logits_x, f_x

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


class ReferenceHomotopySolver(HomotopySolver):
    """The solver as the GSE authors' port runs it (spec §B.3), for ``variant="reference"``.

    Differences from :class:`HomotopySolver`, each the port's: the prox zeroes group g iff
    ‖v_g‖² − ‖v̂_g‖² < 2αλ and returns the unclipped v on the kept groups (so a group whose step stays
    inside the ε box has gain 0 and survives only at λ = 0, and the λ initialisation ends at λ = 0 whenever
    no group of the first step is clipped); the ℓ0 term of F counts non-zero *entries*; nmAPG keeps
    t_prev = 0 (the extrapolation y = x − (x − x_prev)/t steps backwards), discards the group limit on an
    iterate from the fallback (v) step, and averages c with the already-updated q. The λ search, BB steps,
    backtracking, after-attack phases and hard caps are shared.
    """

    def prox_gains(self, v):
        v_hat = self.project(v)
        return self.group_sq(v) - self.group_sq(v_hat), v_hat

    def prox(self, v, alpha: float, lam: float):
        gains, _ = self.prox_gains(v)
        keep = ~(gains < 2.0 * alpha * lam)
        return v * keep[self.ids].view_as(v)

    def objective(self, loss: float, d, lam: float) -> float:
        return loss + lam * int((d != 0).sum().item())

    def _momentum(self, t_prev: float, t: float) -> tuple[float, float]:
        return t_prev, (math.sqrt(4.0 * t * t + 1.0) + 1.0) / 2.0

    def _average(self, c: float, q: float, f_x: float) -> tuple[float, float]:
        q = self.cfg.eta * q + 1.0
        return (self.cfg.eta * q * c + f_x) / q, q

    def _threshold_fallback(self) -> bool:
        return False


def solver_class(variant: str) -> type[HomotopySolver]:
    """The solver of a Homotopy ``variant``: ``"corrected"`` or ``"reference"``."""
    return ReferenceHomotopySolver if variant == "reference" else HomotopySolver
