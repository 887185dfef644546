"""StrAttack as the GSE authors' port runs it (spec §B.1): ``strattack(..., variant="reference")``.

Used by :mod:`.strattack`, which documents the algorithm and the corrected version. The reference variant
follows the port (attacks.py ``StrAttack``) in every place the spec marks as a bug or oddity:

- Batch-shared loss weight: the gradient is of mean_b(c_b·f_b), i.e. each image's c is divided by the
  batch size B of the call, so results depend on the batch size.
- Phase 1 candidates are x + y, not clipped to the box, and are scored by ‖z‖² (z, not y) of the same
  iteration; the best y of an image that never succeeded starts (and stays) all ones.
- Retrain: c restarts at ``retrain_c`` (5) but keeps phase 1's lb/ub; the threshold e0 is the
  ``support_quantile`` (3 %) quantile of the non-zero |best y| of the *whole batch* (images that never
  succeeded contribute their ones), and the support A = 1[|best y| > e0] is fixed for the whole retrain.
  The z-step is the port's product (α·z₁·ρ·(Δ + u₁) − g⊙A)/(α + 2ρ), and candidates are scored by the stale
  ‖z‖² of phase 1's last iteration (constant through the retrain).
- Both phases update c per image after a step only when the step succeeded *and* its best equals the
  overall best (it improved); otherwise the step counts as a failure.

Reading where the spec is silent: each retrain step restarts z₁ from the best y at that time and u₁ from 0
(as the corrected version). The returned images are clipped to [-1, 1] (every attack in this project returns
valid images) and their success is tested on exactly what is returned; an unclipped candidate that fooled
the model only outside the box is then reported as a failure.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from .base import ModelCaller
from .losses import is_successful

if TYPE_CHECKING:
    from .strattack import _Best, _Problem

__all__ = ["run_reference"]


def run_reference(caller: ModelCaller, problem: "_Problem", bar) -> torch.Tensor:
    """Both phases as the port runs them on canonical images (B, C, H, W); returns the best candidates,
    clipped to [-1, 1] (the unchanged image where no candidate succeeded)."""
    from .strattack import _Best

    best = _Best(problem.x)
    best.delta = torch.ones_like(problem.x)  # the port's initial "best y"
    stale, lower, upper = _phase1(caller, problem, best, bar)
    if problem.cfg.retrain:
        _retrain(caller, problem, best, (stale, lower, upper), bar)
    return best.adv.clamp(-1.0, 1.0)


def _offer(best: "_Best", index, x, candidate, score, logits, labels, targeted: bool, step_best):
    """Record successful candidates whose ``score`` (A,) beats the overall best; returns the step bests."""
    success = is_successful(logits, labels, targeted)
    step_best = torch.where(success & (score < step_best), score, step_best)
    better = success & (score < best.l2[index])
    if better.any():
        rows = index[better]
        best.l2[rows] = score[better]
        best.adv[rows] = candidate[better]
        best.delta[rows] = (candidate - x)[better]
    return step_best


def _phase1(caller: ModelCaller, problem: "_Problem", best: "_Best", bar):
    """The port's phase 1; returns (stale ‖z‖² of the last iteration (B,), lb, ub) for the retrain."""
    from .strattack import _initial_search, _report, _update_c

    cfg = problem.cfg
    c, lower, upper = _initial_search(problem, cfg.c)
    stale = torch.zeros_like(best.l2)
    for _ in range(cfg.search_steps):
        step_best, stale = _admm_run(caller, problem, best, (c / problem.x.shape[0]).to(problem.x.dtype))
        improved = torch.isfinite(step_best) & (step_best == best.l2)
        c, lower, upper = _update_c(c, lower, upper, improved)
        _report(bar, best)
    return stale, lower, upper


def _admm_run(caller: ModelCaller, problem: "_Problem", best: "_Best", weights: torch.Tensor):
    """``max_iter`` ADMM iterations from zero (the same updates as the corrected version) with the port's
    candidates x + y (unclipped) scored by ‖z‖²; returns (step bests (B,), ‖z‖² of the last iteration (B,))."""
    from .strattack import group_soft_threshold

    cfg, x = problem.cfg, problem.x
    rho, alpha, gamma = cfg.rho, cfg.alpha, cfg.gamma
    everyone = torch.arange(x.shape[0], device=x.device)
    objective = problem.loss(weights, problem.labels)
    z, u, v, s = (torch.zeros_like(x) for _ in range(4))
    step_best = torch.full_like(best.l2, math.inf)
    score = torch.zeros_like(best.l2)
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
        candidate = x + y
        score = z.double().flatten(1).pow(2).sum(dim=1)
        logits = caller.logits(candidate)  # the port judges the unclipped x + y
        step_best = _offer(best, everyone, x, candidate, score, logits, problem.labels, problem.targeted, step_best)
    return step_best, score


def batch_support(best_y: torch.Tensor, q: float) -> torch.Tensor:
    """The port's retrain support 1[|best y| > e0] (B, C, H, W) bool, e0 = the q-quantile (linear
    interpolation) of the non-zero |best y| over the whole batch; empty when best y is all zero."""
    from .strattack import nonzero_quantile

    e0, has_nonzero = nonzero_quantile(best_y.reshape(1, -1), q)
    return (best_y.abs() > e0) & bool(has_nonzero.item())


def _retrain(caller: ModelCaller, problem: "_Problem", best: "_Best", phase1, bar) -> None:
    """The port's retrain: c from ``retrain_c`` with phase 1's bounds, batch-wide support, stale scores."""
    from .strattack import _update_c, _report

    cfg, x = problem.cfg, problem.x
    stale, lower, upper = phase1
    c = torch.full_like(lower, cfg.retrain_c)
    support = batch_support(best.delta, cfg.support_quantile)
    everyone = torch.arange(x.shape[0], device=x.device)
    index = everyone[support.flatten(1).any(dim=1)]
    for _ in range(cfg.retrain_steps):
        step_best = torch.full_like(best.l2, math.inf)
        if len(index):
            weights = (c[index] / x.shape[0]).to(x.dtype)
            step_best[index] = _retrain_run(caller, problem, best, index, support[index], weights, stale[index])
        improved = torch.isfinite(step_best) & (step_best == best.l2)
        c, lower, upper = _update_c(c, lower, upper, improved)
        _report(bar, best)


def _retrain_run(caller: ModelCaller, problem: "_Problem", best: "_Best", index, mask, weights, stale) -> torch.Tensor:
    """``retrain_iter`` port iterations on the images ``index`` (A,) from their best y; returns step bests (A,)."""
    cfg = problem.cfg
    rho, alpha = cfg.rho, cfg.alpha
    shrink = rho / (rho + cfg.gamma / 100)
    xw, yw = problem.x[index], problem.labels[index]
    lw, hw = problem.box_low[index], problem.box_high[index]
    mask = mask.to(xw.dtype)
    z1 = best.delta[index].clone()
    u1 = torch.zeros_like(z1)
    objective = problem.loss(weights, yw)
    step_best = torch.full_like(stale, math.inf)
    for _ in range(cfg.retrain_iter):
        delta = torch.minimum(torch.maximum((z1 - u1) * shrink, lw), hw) * mask
        candidate = xw + delta
        logits, grad = caller.logits_and_grad(candidate, objective)
        z1 = (alpha * z1 * rho * (delta + u1) - grad * mask) / (alpha + 2 * rho)  # the port's product
        u1 = u1 + delta - z1
        step_best = _offer(best, index, xw, candidate, stale, logits, yw, problem.targeted, step_best)
    return step_best
