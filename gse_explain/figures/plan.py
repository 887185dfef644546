"""A study's plan before anything runs: every run's budget in model passes and an estimate of its time.

The estimate is (model passes per image) × (images) × (measured cost of one pass):

- passes come from each attack's options (:func:`pass_budget`): exact for the fixed-schedule attacks
  (StrAttack, FWnucl, SAPF), a cap for the attacks that stop an image once it is fooled (GSE, PGD0,
  Sparse-RS, Homotopy). For those the estimate uses :data:`TYPICAL_SHARE` of the cap — the share they
  used on the demo's photographs (measured, see the constant) — and prints the cap beside it;
- the cost of one pass is calibrated once per (model, image size, batch size, device): the fastest of three
  forward+backward and three forward-only passes of the run's model on a batch of the run's size, after
  warm-up calls (a few seconds in all).

Runs whose store is complete are listed but cost nothing. Everything here reads configurations and times
two model calls; nothing is written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Mapping, Sequence, TextIO

import torch

from ..attacks import get_attack
from ..evaluation.rebuild import load_run_model

__all__ = ["PassBudget", "PassCost", "TYPICAL_SHARE", "calibrate", "estimate_seconds", "pass_budget", "plan_lines"]

#: Share of its pass cap an early-stopping attack used on average (per image, untargeted / targeted), measured
#: on the demo study (EfficientNet-Lite0, 2 + 1 photographs at 128 × 128, its demo budgets, 2026-12-02: GSE used
#: 10 / 91 of ≤ 1001 passes, PGD0 1 / 9 of ≤ 201, Sparse-RS 1 / 301 of ≤ 301). Only the time estimate reads it;
#: the plan prints the cap too.
TYPICAL_SHARE: dict[str, tuple[float, float]] = {
    "gse": (0.01, 0.09), "pgd0": (0.005, 0.05), "sparse_rs": (0.005, 1.0), "homotopy": (1.0, 1.0),
}


@dataclass(frozen=True)
class PassBudget:
    """Model passes per image of one run: ``gradient`` (forward+backward) and ``forward`` (forward only) —
    exact when ``fixed``, else caps the attack usually stops well before (it leaves fooled images alone)."""

    gradient: int
    forward: int
    fixed: bool

    @property
    def total(self) -> int:
        return self.gradient + self.forward

    def describe(self) -> str:
        kind = "" if self.fixed else "≤ "
        return f"{kind}{self.total} passes/image ({self.gradient} grad + {self.forward} fwd)"


def _config(attack: str, targeted: bool, preset: str | None, options: Mapping):
    return get_attack(attack).make_config(preset, targeted, **dict(options))


def pass_budget(attack: str, targeted: bool, preset: str | None = None, options: Mapping | None = None) -> PassBudget | None:
    """The :class:`PassBudget` per image of ``attack`` with ``preset`` and ``options`` (None for an attack this
    module does not know: its plan line then says so and the estimate leaves it out)."""
    c = _config(attack, targeted, preset, options or {})
    extra = int(targeted)  # targeted runs make one counted forward pass for the clean-image target check
    if attack == "gse":  # ∇ at δ = 0, one gradient per iteration, one last forward per search step
        return PassBudget(1 + c.search_steps * (c.iterations - 1), c.search_steps + extra, False)
    if attack == "strattack":
        return PassBudget(c.search_steps * c.max_iter + (c.retrain_steps * c.retrain_iter if c.retrain else 0),
                          c.search_steps * c.max_iter + 1, True)
    if attack == "fwnucl":
        return PassBudget(c.iterations, c.iterations * (1 + c.line_search_steps) + 1, True)
    if attack == "pgd0":
        return PassBudget(c.n_restarts * c.iterations, c.n_restarts + extra, False)
    if attack == "sparse_rs":
        return PassBudget(0, c.n_restarts * c.n_queries + 1 + extra, False)
    if attack == "sapf":
        per_step = c.iterations * (c.iterations_delta + c.iterations_g) + c.iterations_finetune
        return PassBudget(c.search_steps * per_step, c.search_steps + extra, True)
    if attack == "homotopy" and c.max_passes is not None:
        return PassBudget(c.max_passes, 0, False)  # a cap on both kinds together
    return None


@dataclass(frozen=True)
class PassCost:
    """Seconds per image of one forward+backward (``gradient``) and one forward-only pass (``forward``)."""

    gradient: float
    forward: float


def _image_shape(config) -> tuple[int, int, int]:
    from ..evaluation.rebuild import load_run_dataset

    image = load_run_dataset(config)[0][0]
    return tuple(int(s) for s in image.shape)


def calibrate(config, repeats: int = 3) -> PassCost:
    """Time the model of ``config`` (a RunConfig) on a random batch of ``config.batch_size`` images of the
    run's size: two warm-up calls (the first passes of a shape build kernels and buffers, several times
    slower), then the fastest of ``repeats`` forward+backward and forward-only calls (the least disturbed by
    other processes; an attack's thousands of passes run at that steady cost)."""
    model = load_run_model(config, config.device)
    batch = torch.rand((config.batch_size, *_image_shape(config)), generator=torch.Generator().manual_seed(0))
    parameter = next(iter(model.parameters()), None)
    batch = batch if parameter is None else batch.to(parameter.device)

    def timed(with_gradient: bool) -> float:
        times = []
        for _ in range(repeats):
            x = batch.clone().requires_grad_(with_gradient)
            start = time.perf_counter()
            with torch.set_grad_enabled(with_gradient):
                out = model(x)
                if with_gradient:
                    torch.autograd.grad(out.sum(), x)
            times.append(time.perf_counter() - start)
        return min(times) / config.batch_size

    for _ in range(2):  # warm-up
        timed(True)
    return PassCost(timed(True), timed(False))


def _pairs(spec) -> int:
    return spec.num_images * (len(spec.offsets) if spec.targeted and spec.offsets else 1)


def estimate_seconds(spec, budget: PassBudget | None, cost: PassCost | None) -> float | None:
    """Estimated attack seconds of ``spec`` (None when its budget or cost is unknown)."""
    if budget is None or cost is None:
        return None
    share = 1.0 if budget.fixed else TYPICAL_SHARE.get(spec.attack, (1.0, 1.0))[int(bool(spec.targeted))]
    return _pairs(spec) * share * (budget.gradient * cost.gradient + budget.forward * cost.forward)


def _cost_key(config) -> tuple:
    return (str(config.model), config.weights, config.image_size, config.batch_size, str(config.device), config.dataset)


def plan_lines(specs: Sequence, pending: Sequence[bool], *, calibrate_cost=None) -> tuple[list[str], list[float | None]]:
    """The plan: one line per run (state, images × targets, budget, passes, estimate) and a total line.

    Args:
        specs: the study's :class:`~.studies.RunSpec` in running order; pending: whether each still runs.
        calibrate_cost: ``config -> PassCost`` (default :func:`calibrate`; tests pass a constant).

    Returns:
        ``(lines, seconds)``: the printed lines and each run's estimated seconds (0 for complete runs,
        None where unknown).
    """
    calibrate_cost = calibrate if calibrate_cost is None else calibrate_cost
    costs: dict[tuple, PassCost | None] = {}
    lines, seconds = [], []
    for spec, todo in zip(specs, pending):
        config = spec.config
        budget = pass_budget(spec.attack, spec.targeted, config.resolved_preset, spec.options)
        if todo and _cost_key(config) not in costs:
            try:
                costs[_cost_key(config)] = calibrate_cost(config)
            except (ValueError, TypeError, KeyError, FileNotFoundError, ImportError, RuntimeError) as exc:
                costs[_cost_key(config)] = None  # the run itself reports the problem with its fix
                lines.append(f"  (no estimate for {config.model}: {str(exc).splitlines()[0][:120]})")
        estimate = estimate_seconds(spec, budget, costs.get(_cost_key(config))) if todo else 0.0
        seconds.append(estimate)
        options = ", ".join(f"{k}={v}" for k, v in sorted(spec.options.items())) or "paper preset"
        passes = budget.describe() if budget is not None else "passes: not modelled"
        when = "done (stored)" if not todo else (f"~{estimate:.0f} s" if estimate is not None else "? s")
        lines.append(f"  {spec.group:6s} {spec.attack:9s} {spec.mode:10s} {_pairs(spec)} × [{options}]: {passes}; {when}")
    known = [s for s in seconds if s is not None]
    total = sum(known)
    lines.append(f"  estimated attack time: ~{total:.0f} s ({total / 60:.1f} min)"
                 + ("" if len(known) == len(seconds) else f", {len(seconds) - len(known)} run(s) not estimated")
                 + "; = passes per image × images × one pass's cost measured just now (early-stopping attacks: "
                   "their typical share of the cap)")
    for key, cost in costs.items():
        if cost is not None:
            lines.append(f"  one pass of {key[0]} at batch {key[3]}: {cost.gradient * 1000:.0f} ms/image forward+backward, "
                     f"{cost.forward * 1000:.0f} ms/image forward")
    return lines, seconds


def print_plan(specs: Sequence, pending: Sequence[bool], log: TextIO, **kwargs) -> list[float | None]:
    """Print :func:`plan_lines` under a ``plan:`` header; return the per-run estimates."""
    lines, seconds = plan_lines(specs, pending, **kwargs)
    print("plan (runs in this order):", file=log)
    print("\n".join(lines), file=log, flush=True)
    return seconds
