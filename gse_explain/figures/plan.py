"""A study's plan before anything runs: every run's budget in model passes and an estimate of its time.

The estimate sums, over the run's attack calls (:func:`call_rows`: its batches, and for targeted runs of an
attack with independent rows the offsets that share a call), rows × passes per row × one pass's cost:

- passes come from each attack's options (:func:`pass_budget`): exact for the fixed-schedule attacks
  (StrAttack, FWnucl, SAPF), a cap for the attacks that stop an image once it is fooled (GSE, PGD0,
  Sparse-RS, Homotopy). For those the estimate uses :func:`typical_share` of the cap — the share they used
  on real images (measured, see :data:`TYPICAL_SHARE`) — and prints the cap beside it;
- the cost of one pass depends on how many images the model call holds (a call has a fixed part: on 2 CPU
  threads EfficientNet-Lite0 at 128 px costs 39 ms per image alone, 27 ms per image in a call of 4), so it
  is calibrated once per (model, image size, call size, device) at the run's largest call and at one image
  (:func:`calibrate`, a few seconds), and read off the line through the two (:meth:`PassCost.per_image`);
- a call of an early-stopping attack shrinks as its images succeed: its passes are priced at the mean
  working set, taken as (rows + 1) / 2 (images finishing evenly spread; on the demo's 2 untargeted photos
  GSE's mean was 1.1 rows: 664 of its 753 calls held one image), or all rows when the share is 1;
- :data:`SUSTAINED` turns the calibrated (fastest) pass into a run's mean pass (measured).

Runs whose store is complete are listed but cost nothing. Everything here reads configurations and times
a few model calls; nothing is written.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Mapping, Sequence, TextIO

import torch

from ..attacks import get_attack
from ..evaluation.rebuild import load_run_model

__all__ = ["PassBudget", "PassCost", "TYPICAL_SHARE", "calibrate", "call_rows", "estimate_seconds",
           "pass_budget", "plan_lines", "SUSTAINED", "typical_share"]

#: Share of its pass cap an early-stopping attack uses per image on average, (untargeted, targeted), by
#: (attack, preset) with (attack, None) for any other preset. Measured 2026-12-02 on 2 CPU threads:
#: GSE at the ImageNet preset on the demo's 128-px photos (cap 2001/2002 passes): untargeted 422 (2 photos,
#: Lite0) and 579 (1 photo, Lite0, batch 1), targeted 776 (Lite0) and 665 (Lite1) passes per image; at the
#: CIFAR-10 preset on the authors' ResNet20 (bench/results/gse_cifar10_cpu.md, baselines_cifar10_cpu.md):
#: 354-356 and 495-496. PGD0 (demo budget, ≤ 201): 1 / 9; Sparse-RS (≤ 301): 1 / 301. Only the time
#: estimate reads it; the plan prints the cap too.
TYPICAL_SHARE: dict[tuple[str, str | None], tuple[float, float]] = {
    ("gse", None): (0.25, 0.36), ("gse", "cifar10"): (0.18, 0.25),
    ("pgd0", None): (0.005, 0.05), ("sparse_rs", None): (0.005, 1.0), ("homotopy", None): (1.0, 1.0),
}

#: A run's mean cost of one pass / the calibrated cost (the fastest of a few calls): the thousands of passes of
#: a run meet cache misses and other processes that the fastest call escapes. Measured 2026-12-02 by replaying
#: GSE's model calls of the demo alone (2 CPU threads, other jobs on the machine): 1.09 (Lite0 and Lite1, one
#: image) to 1.14 (Lite0 targeted). GSE's own tensor work beside its model calls measured 0.98-1.00 of the
#: replay there (1.02-1.07 with ResNet20 on CIFAR-10, bench/results/gse_cifar10_cpu.md): not modelled.
SUSTAINED = 1.1


def typical_share(attack: str, preset: str | None, targeted: bool) -> float:
    """The :data:`TYPICAL_SHARE` of ``attack`` at ``preset`` (1.0 for an attack without one)."""
    shares = TYPICAL_SHARE.get((attack, preset)) or TYPICAL_SHARE.get((attack, None)) or (1.0, 1.0)
    return shares[int(bool(targeted))]


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
    """Seconds per image of one forward+backward (``gradient``) and one forward-only pass (``forward``) in a
    model call on ``batch`` images, and the same in a call on one image (``gradient_1``, ``forward_1``; None:
    as on ``batch``, i.e. a cost per image that does not depend on the call's size)."""

    gradient: float
    forward: float
    batch: int = 1
    gradient_1: float | None = None
    forward_1: float | None = None

    def per_image(self, rows: float, with_gradient: bool) -> float:
        """Seconds per image of a pass in a call on ``rows`` images (clamped to [1, batch]), from the line
        t(a) = t₀ + a·t₁ through the two measured calls (t(1) = the one-image cost, t(batch) = batch × the
        batch cost): t₁ + t₀ / rows, between the two measured per-image costs."""
        at_batch = self.gradient if with_gradient else self.forward
        at_one = self.gradient_1 if with_gradient else self.forward_1
        if at_one is None or self.batch <= 1:
            return at_batch
        rows = min(max(float(rows), 1.0), float(self.batch))
        fixed = (at_one - at_batch) * self.batch / (self.batch - 1)  # t₀, the call's own part
        return (at_one - fixed) + fixed / rows

    def describe(self) -> str:
        text = f"{self.gradient * 1000:.0f} ms/image forward+backward, {self.forward * 1000:.0f} ms/image forward"
        if self.batch > 1 and self.gradient_1 is not None:
            text += f" (one image alone: {self.gradient_1 * 1000:.0f} / {self.forward_1 * 1000:.0f} ms)"
        return text


def _image_shape(config) -> tuple[int, int, int]:
    from ..evaluation.rebuild import load_run_dataset

    image = load_run_dataset(config)[0][0]
    return tuple(int(s) for s in image.shape)


def _image_values(config) -> int:
    """Values of one image of the run (C·H·W; RGB assumed when only the size is configured)."""
    from ..evaluation.config import CIFAR_DATASETS

    if config.dataset in CIFAR_DATASETS:
        return 3 * 32 * 32
    if config.image_size:
        return 3 * config.image_size * config.image_size
    return math.prod(_image_shape(config))


def call_rows(config, image_values: int | None = None) -> list[int]:
    """Rows (images × targets) of each attack call of a run: one call per batch of ``config.batch_size``
    images (the last one shorter) untargeted; targeted, one per offset, or for an attack with independent
    rows as many offsets per call as keep it within
    :data:`~gse_explain.evaluation.protocol.MAX_CALL_ELEMENTS` image values (``image_values`` per image,
    computed from ``config`` when None and needed). Empty when ``num_images`` is None (all: unknown here)."""
    from ..evaluation.protocol import offsets_per_call

    n, size = config.num_images, config.batch_size
    if n is None:
        return []
    batches = [size] * (n // size) + ([n % size] if n % size else [])
    targets = len(config.offsets) if config.targeted and config.offsets else 1
    if targets == 1:
        return batches
    spec = get_attack(config.attack)
    # the image size matters only to an attack with independent rows (and may mean reading the data)
    values = (_image_values(config) if image_values is None else image_values) if spec.independent_rows else 1
    rows = []
    for images in batches:
        per_call = offsets_per_call(spec, values, images)
        rows += [images * min(per_call, targets - first) for first in range(0, targets, per_call)]
    return rows


def calibrate(config, repeats: int = 3) -> PassCost:
    """Time the model of ``config`` (a RunConfig) on random images of the run's size, in a call of the run's
    largest attack call (:func:`call_rows`) and in a call of one image: warm-up calls first (the first
    passes of a shape build kernels and buffers, several times slower), then the fastest of ``repeats``
    forward+backward and forward-only calls of each (the least disturbed by other processes; an attack's
    thousands of passes run at that steady cost)."""
    model = load_run_model(config, config.device)
    shape = _image_shape(config)
    rows = max(call_rows(config, math.prod(shape)) or [config.batch_size])
    parameter = next(iter(model.parameters()), None)
    images = torch.rand((rows, *shape), generator=torch.Generator().manual_seed(0))
    images = images if parameter is None else images.to(parameter.device)

    def timed(batch: int, with_gradient: bool) -> float:
        times = []
        for _ in range(repeats):
            x = images[:batch].clone().requires_grad_(with_gradient)
            start = time.perf_counter()
            with torch.set_grad_enabled(with_gradient):
                out = model(x)
                if with_gradient:
                    torch.autograd.grad(out.sum(), x)
            times.append(time.perf_counter() - start)
        return min(times) / batch

    sizes = (rows, 1) if rows > 1 else (rows,)
    for batch in sizes:  # warm-up
        timed(batch, True), timed(batch, True)
    at_rows = PassCost(timed(rows, True), timed(rows, False), rows)
    if rows == 1:
        return at_rows
    return PassCost(at_rows.gradient, at_rows.forward, rows, timed(1, True), timed(1, False))


def _pairs(spec) -> int:
    return spec.num_images * (len(spec.offsets) if spec.targeted and spec.offsets else 1)


def estimate_seconds(spec, budget: PassBudget | None, cost: PassCost | None, rows: Sequence[int] | None = None) -> float | None:
    """Estimated attack seconds of ``spec`` (None when its budget, cost or number of images is unknown).

    Sum over its attack calls (``rows``: images × targets of each, :func:`call_rows` when None) of
    rows × share × (gradient passes × :meth:`PassCost.per_image` + forward passes × ...), with share 1 for
    fixed schedules and :func:`typical_share` otherwise; an early-stopping call's passes are priced at its
    mean working set (rows + 1) / 2 (all rows at share 1); times :data:`SUSTAINED`.
    """
    if budget is None or cost is None:
        return None
    rows = call_rows(spec.config) if rows is None else rows
    if not rows:
        return None
    share = 1.0 if budget.fixed else typical_share(spec.attack, spec.config.resolved_preset, spec.targeted)
    total = 0.0
    for call in rows:
        working = call if share >= 1.0 else (call + 1) / 2
        per_row = budget.gradient * cost.per_image(working, True) + budget.forward * cost.per_image(working, False)
        total += call * share * per_row
    return total * SUSTAINED


def _cost_key(config) -> tuple:
    """What one pass's cost depends on: model, weights, image size, the run's largest call, device, data."""
    rows = max(call_rows(config) or [config.batch_size])
    return (str(config.model), config.weights, config.image_size, rows, str(config.device), config.dataset)


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
        cost = _cost(config, costs, calibrate_cost, lines) if todo else None
        estimate = estimate_seconds(spec, budget, cost) if todo else 0.0
        seconds.append(estimate)
        options = ", ".join(f"{k}={v}" for k, v in sorted(spec.options.items())) or "paper preset"
        passes = budget.describe() if budget is not None else "passes: not modelled"
        when = "done (stored)" if not todo else (f"~{estimate:.0f} s" if estimate is not None else "? s")
        lines.append(f"  {spec.group:6s} {spec.attack:9s} {spec.mode:10s} {_pairs(spec)} × [{options}]: {passes}; {when}")
    known = [s for s in seconds if s is not None]
    total = sum(known)
    lines.append(f"  estimated attack time: ~{total:.0f} s ({total / 60:.1f} min)"
                 + ("" if len(known) == len(seconds) else f", {len(seconds) - len(known)} run(s) not estimated")
                 + "; = images × passes per image × one pass's cost measured just now in a call of that size "
                   "(early-stopping attacks: their typical share of the cap, at the shrinking working set)")
    for key, cost in costs.items():
        if cost is not None:
            lines.append(f"  one pass of {key[0]} in a call of {key[3]} image(s): {cost.describe()}")
    return lines, seconds


_BUILD_ERRORS = (ValueError, TypeError, KeyError, FileNotFoundError, ImportError, RuntimeError)


def _cost(config, costs: dict, calibrate_cost, lines: list[str]) -> PassCost | None:
    """The cost of ``config``'s passes from ``costs``, calibrated once per key (None, with a line saying why,
    when the model or data cannot be built: the run itself then reports the problem with its fix)."""
    try:
        key = _cost_key(config)
        if key not in costs:
            costs[key] = None  # a failed calibration is not retried for the next run of the same key
            costs[key] = calibrate_cost(config)
        return costs[key]
    except _BUILD_ERRORS as exc:
        message = f"  (no estimate for {config.model}: {str(exc).splitlines()[0][:120]})"
        if message not in lines:
            lines.append(message)
        return None


def print_plan(specs: Sequence, pending: Sequence[bool], log: TextIO, **kwargs) -> list[float | None]:
    """Print :func:`plan_lines` under a ``plan:`` header; return the per-run estimates."""
    lines, seconds = plan_lines(specs, pending, **kwargs)
    print("plan (runs in this order):", file=log)
    print("\n".join(lines), file=log, flush=True)
    return seconds
