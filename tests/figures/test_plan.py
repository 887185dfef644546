"""The plan's time estimate, checked by hand: the cost of a pass by call size, the attack calls of a run, the
typical share of an early-stopping attack's cap, and the sum over the calls."""

import pytest
from torch import nn

from gse_explain.evaluation.protocol import MAX_CALL_ELEMENTS
from gse_explain.figures import plan
from gse_explain.figures.plan import (SUSTAINED, PassBudget, PassCost, call_rows, estimate_seconds, pass_budget,
                                      plan_lines, typical_share)
from gse_explain.figures.studies import RunSpec


def _spec(attack, targeted=False, num_images=2, batch_size=4, offsets=None, **fields):
    extra = dict(offsets=offsets) if targeted else {}
    return RunSpec.make("main", attack, targeted, "efficientnet_lite0", "skimage", num_images, image_size=128,
                        batch_size=batch_size, preset="imagenet", **extra, **fields)


def test_pass_cost_per_image_follows_the_line_through_the_two_measured_calls():
    # a call on 4 images: 30 ms per image (120 ms), on one image 60 ms: t(a) = 40 ms + a · 20 ms
    cost = PassCost(gradient=0.03, forward=0.01, batch=4, gradient_1=0.06, forward_1=0.02)
    assert cost.per_image(1, True) == pytest.approx(0.06) and cost.per_image(4, True) == pytest.approx(0.03)
    assert cost.per_image(2, True) == pytest.approx(0.02 + 0.04 / 2)  # t₁ + t₀ / a
    # forward: t(1) = 20 ms, t(4) = 40 ms, so t₀ = 40/3 ms and t₁ = 20/3 ms
    assert cost.per_image(1.5, False) == pytest.approx(0.02 / 3 + 0.04 / 3 / 1.5)
    assert cost.per_image(10, True) == pytest.approx(0.03) and cost.per_image(0.5, True) == pytest.approx(0.06)
    flat = PassCost(0.02, 0.005)  # no one-image calibration: the same per image at every size
    assert flat.per_image(1, True) == flat.per_image(64, True) == 0.02
    assert "one image alone: 60 / 20 ms" in cost.describe() and flat.describe().endswith("5 ms/image forward")


def test_call_rows_batches_and_offsets_per_call():
    assert call_rows(_spec("gse", num_images=10).config) == [4, 4, 2]
    assert call_rows(_spec("gse", num_images=3, batch_size=1).config) == [1, 1, 1]
    # GSE has independent rows: offsets share a call up to MAX_CALL_ELEMENTS values (here 2 offsets of 4 images)
    values = MAX_CALL_ELEMENTS // 8
    targeted = _spec("gse", True, num_images=10, offsets=(1, 2, 3)).config
    assert call_rows(targeted, values) == [8, 4, 8, 4, 6]  # the last batch of 2 holds all 3 offsets: 6 rows
    # PGD0 draws random numbers: one call per offset
    assert call_rows(_spec("pgd0", True, num_images=5, offsets=(1, 2)).config, values) == [4, 4, 1, 1]
    assert call_rows(_spec("gse", num_images=2).config.replace(num_images=None)) == []


def test_typical_share_by_attack_and_preset():
    assert typical_share("gse", "imagenet", False) == 0.25 and typical_share("gse", "imagenet", True) == 0.36
    assert typical_share("gse", "cifar10", True) == 0.25  # its own measurement
    assert typical_share("gse", "some_preset.json", False) == 0.25  # falls back to the attack's share
    assert typical_share("sparse_rs", None, True) == 1.0 and typical_share("strattack", "imagenet", False) == 1.0


def test_early_stopping_estimate_sums_calls_at_the_shrinking_working_set():
    spec = _spec("gse", num_images=6, batch_size=4)  # calls of 4 and 2 images
    budget = pass_budget("gse", False, "imagenet")
    assert (budget.gradient, budget.forward, budget.fixed) == (1991, 10, False)  # 1 + 10 · 199 and 10: ≤ 2001
    cost = PassCost(gradient=0.03, forward=0.01, batch=4, gradient_1=0.06, forward_1=0.02)
    expected = 0.0
    for rows in (4, 2):
        working = (rows + 1) / 2  # images succeed one after another: the mean working set
        expected += rows * 0.25 * (1991 * cost.per_image(working, True) + 10 * cost.per_image(working, False))
    assert estimate_seconds(spec, budget, cost) == pytest.approx(expected * SUSTAINED)
    # the call of 4: mean working set 2.5 images at 20 + 40/2.5 = 36 ms per gradient pass, 4 · 0.25 · 1991 passes
    assert cost.per_image(2.5, True) == pytest.approx(0.036)
    assert estimate_seconds(spec, None, cost) is None and estimate_seconds(spec, budget, None) is None


def test_fixed_schedules_and_a_full_share_are_priced_at_the_whole_call():
    cost = PassCost(gradient=0.03, forward=0.01, batch=4, gradient_1=0.06, forward_1=0.02)
    strattack = _spec("strattack", num_images=4)
    budget = PassBudget(200, 101, True)
    assert estimate_seconds(strattack, budget, cost) == pytest.approx(4 * (200 * 0.03 + 101 * 0.01) * SUSTAINED)
    sparse_rs = _spec("sparse_rs", True, num_images=4, offsets=(1,))  # targeted Sparse-RS uses its whole cap
    budget = PassBudget(0, 302, False)
    assert estimate_seconds(sparse_rs, budget, cost) == pytest.approx(4 * 1.0 * 302 * 0.01 * SUSTAINED)


def test_demo_gse_estimate_against_its_measured_time():
    """Regression of issue 15: the demo's four GSE runs (Lite0 at 128 px, ImageNet preset) with the pass costs
    calibrated on 2026-12-02 (2 CPU threads) took 34.6 + 33.4 + 37.9 + 25.9 = 131.8 s; the old estimate (1 % and
    9 % of the cap, the pass priced in a call of 4) said 13.6 s."""
    lite0 = PassCost(0.0293, 0.0132, 2, 0.0369, 0.0160)
    runs = [(_spec("gse", num_images=2), lite0, 34.6),
            (_spec("gse", True, num_images=1, offsets=(857,)), PassCost(0.0385, 0.0167), 33.4),
            (_spec("gse", True, num_images=1, offsets=(857,)), PassCost(0.0523, 0.0229), 37.9),  # Lite1's cost
            (_spec("gse", num_images=1, batch_size=1), PassCost(0.0411, 0.0177), 25.9)]
    estimates = [estimate_seconds(s, pass_budget("gse", s.targeted, "imagenet"), c) for s, c, _ in runs]
    for estimate, (_, _, measured) in zip(estimates, runs):
        assert measured / 1.25 < estimate < measured * 1.25
    assert sum(estimates) == pytest.approx(131.8, rel=0.1)


class _Conv(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                 nn.Linear(4, 5))

    def forward(self, x):
        return self.net(x)


def test_calibrate_times_the_largest_call_and_one_image(monkeypatch):
    monkeypatch.setattr(plan, "load_run_model", lambda config, device: _Conv().eval())
    monkeypatch.setattr(plan, "_image_shape", lambda config: (3, 8, 8))
    cost = plan.calibrate(_spec("gse", num_images=3, batch_size=4).config, repeats=1)
    assert cost.batch == 3 and cost.gradient > 0 and cost.forward > 0 and cost.gradient_1 > 0 and cost.forward_1 > 0
    single = plan.calibrate(_spec("gse", num_images=1).config, repeats=1)
    assert single.batch == 1 and single.gradient_1 is None


def test_plan_notes_a_model_it_cannot_time_once_and_leaves_its_runs_out():
    calls = []

    def failing(config):
        calls.append(config.attack)
        raise FileNotFoundError("weights not found: /nowhere.pt\nmore")

    specs = [_spec("gse", num_images=2), _spec("pgd0", num_images=2)]  # one cost key: calibrated (tried) once
    lines, seconds = plan_lines(specs, [True, True], calibrate_cost=failing)
    assert calls == ["gse"] and seconds == [None, None]
    assert [line for line in lines if "no estimate" in line] == ["  (no estimate for efficientnet_lite0: weights not found: /nowhere.pt)"]
    assert "2 run(s) not estimated" in lines[-1]
    done, _ = plan_lines(specs, [False, True], calibrate_cost=lambda config: PassCost(0.01, 0.001))
    assert "done (stored)" in done[0] and done[-1].startswith("  one pass of efficientnet_lite0 in a call of 2 image(s)")
