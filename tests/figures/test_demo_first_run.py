"""The first run a newcomer makes: perturbations visible, titles apart, Figure 1 before the other runs,
a plan with a time estimate, and Table 4 saying what its times are measured on."""

import importlib
import io
import itertools

import numpy as np
import pytest
import torch

from gse_explain.figures import figure_attack_examples, figure_gse_examples
from gse_explain.figures.paper_tables import paper_tables
from gse_explain.figures.plan import SUSTAINED, PassCost, pass_budget, plan_lines
from gse_explain.figures.studies import RunSpec, Study, build_study
from gse_explain.plotting import show_perturbation
from gse_explain.plotting.overlays import perturbation_rgb, perturbation_scale

reproduce_module = importlib.import_module("gse_explain.figures.reproduce")  # the package exports the function

LONG_NAMES = ["American black bear", "hand-held computer", "Granny Smith apple"]  # ImageNet names, 18+ characters


def test_tiny_perturbation_is_drawn_full_range_with_its_scale():
    delta = torch.zeros(3, 16, 16)
    delta[0, 3, 4] = 2e-3
    delta[1, 8, 8] = -2e-3
    rgb = perturbation_rgb(delta)
    assert rgb.min() == 0.0 and rgb.max() == 1.0  # full range although |δ| ≤ 0.002
    assert np.all(rgb[0, 0] == 0.5)  # unchanged: exactly mid-grey
    assert perturbation_scale(delta) == pytest.approx(2e-3)
    _, ax = show_perturbation(delta)
    assert [t.get_text() for t in ax.texts] == ["δ ×250"]  # 0.5 + 250·δ: ±0.002 is full colour
    # one extreme entry does not grey out the rest: the 99th percentile sets the scale, it saturates
    delta[2, 0:10, 0:10] = 0.01
    delta[2, 15, 15] = 0.9
    assert perturbation_scale(delta) == pytest.approx(0.01)
    assert perturbation_rgb(delta)[15, 15, 2] == 1.0


def _text_boxes(fig):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = [fig._suptitle] if fig._suptitle is not None else []
    for ax in fig.axes:
        texts += [ax.title, ax.yaxis.label, *ax.texts]
    return [(t.get_text(), t.get_window_extent(renderer)) for t in texts if t.get_text() and t.get_visible()]


def _overlaps(fig) -> list:
    boxes = _text_boxes(fig)
    return [(a, b) for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2) if box_a.overlaps(box_b)]


@pytest.mark.parametrize("mode", ["untargeted", "targeted"])
def test_figures3_4_titles_never_overlap(toy_runs, model, mode):
    fig, axes, keys = figure_attack_examples(toy_runs[mode], model, num_examples=2, names=LONG_NAMES)
    fig.suptitle(f"{mode.capitalize()} examples per attack (a model, some photos)")
    assert _overlaps(fig) == []
    failed = [axes[r, 1].get_title() for r in range(axes.shape[0]) if "(failed)" in axes[r, 1].get_title()]
    assert all("\n(failed)" in title for title in failed)  # the verdict gets its own line
    assert all(any(t.get_text().startswith("δ ×") for t in axes[r, 2].texts) for r in range(axes.shape[0]))


def test_figures3_4_show_k_examples_in_blocks(toy_runs, model):
    fig, axes, keys = figure_attack_examples(toy_runs["targeted"], model, num_examples=2, names=LONG_NAMES)
    assert len(keys) == 2 and axes.shape == (6, 5)
    # one block per example: the three attacks on the first image, then on the second
    assert [axes[r, 0].get_ylabel() for r in range(6)] == ["GSE", "StrAttack", "PGD0"] * 2
    assert len({axes[r, 0].get_title() for r in range(3)}) == 1
    assert _overlaps(fig) == []


def test_figure1_titles_apart_and_scale_stated(toy_runs, model):
    fig, axes = figure_gse_examples({"u": toy_runs["untargeted"]["gse"]}, model, names=LONG_NAMES)
    fig.suptitle("GSE adversarial examples\n(a model, some photos)")
    assert _overlaps(fig) == []
    assert axes[2, 0].texts[0].get_text().startswith("δ ×")


def _spec(attack: str, targeted: bool, group: str = "main") -> RunSpec:
    return RunSpec.make(group, attack, targeted, "efficientnet_lite0", num_images=1, dataset="skimage", image_size=32,
                        offsets=(1,) if targeted else None, options={})


def test_figure1_is_drawn_right_after_gse_runs_before_the_others(tmp_path, monkeypatch, make_store):
    runs = (_spec("strattack", False), _spec("gse", False), _spec("strattack", True), _spec("gse", True))
    study = Study("toy", "toy study", runs, "toy")
    events = []

    def fake_run(config, path, **kwargs):
        events.append(("run", config.attack, config.targeted))
        make_store(path, config.attack, config.targeted, images=1)

    def fake_render(part, paths, out_dir, *, only=None, **kwargs):
        events.append(("render", tuple(only), tuple(sorted(r.attack for r in part.runs))))
        return []

    monkeypatch.setattr("gse_explain.figures.runner.run", fake_run)
    monkeypatch.setattr(reproduce_module, "render_study", fake_render)
    monkeypatch.setattr("gse_explain.figures.plan.calibrate", lambda config: PassCost(0.01, 0.003))
    log = io.StringIO()
    reproduce_module.reproduce(study, tmp_path / "runs", tmp_path / "out", log=log, progress=False)
    assert events[:3] == [("run", "gse", False), ("run", "gse", True), ("render", ("figure1",), ("gse", "gse"))]
    assert events[3:5] == [("run", "strattack", False), ("run", "strattack", True)]
    assert events[5][0] == "render" and "figure1" not in events[5][1] and "tables" in events[5][1]
    text = log.getvalue()
    # the plan and its estimate come before the first run
    assert text.index("plan (runs in this order)") < text.index("estimated attack time") < text.index("[1/4] running")
    assert "Figure 1 comes after the first 2 run(s)" in text and "figure1 written after" in text


def test_plan_lists_every_run_with_its_passes_and_an_estimate():
    study = build_study("demo")
    order = reproduce_module.running_order(study)
    assert [r.attack for r in order[:2]] == ["gse", "gse"] and all(r.group == "main" for r in order[:2])
    pending = [True] * (len(order) - 1) + [False]
    lines, seconds = plan_lines(order, pending, calibrate_cost=lambda config: PassCost(0.02, 0.005))
    assert len(seconds) == len(order) and seconds[-1] == 0.0 and all(s is not None and s > 0 for s in seconds[:-1])
    strattack = next(line for line in lines if " strattack " in line and "untargeted" in line)
    assert "301 passes/image (200 grad + 101 fwd)" in strattack  # the demo's equal-passes budget, exact
    # StrAttack's schedule: 2·50 ADMM gradient + 2·50 forward + 2·50 retrain gradient passes + 1 forward
    spec = next(r for r in order if r.attack == "strattack" and not r.targeted)
    assert seconds[order.index(spec)] == pytest.approx(spec.num_images * (200 * 0.02 + 101 * 0.005) * SUSTAINED)
    assert lines[-4].startswith("  estimated attack time: ~") and "one pass's cost measured" in lines[-4]
    assert lines[-1].endswith("ms/image forward")


def test_paper_budget_passes_match_the_attacks_docstrings():
    assert pass_budget("strattack", False, "imagenet").total == 4801  # 3200 gradient + 1601 forward
    fw = pass_budget("fwnucl", False, "imagenet")
    assert (fw.gradient, fw.forward) == (200, 5201)
    assert pass_budget("sapf", False, "cifar10").gradient == 41000
    assert not pass_budget("gse", False, "imagenet").fixed


def test_table4_caption_states_budgets_and_passes(toy_runs):
    tables = paper_tables(toy_runs["untargeted"], toy_runs["targeted"], main_label="toy")
    text = tables["table4"]["markdown"]
    caption = text.split("\n\n")[0]
    for label in ("GSE paper preset (≤ 2001; used U 10, T 10)", "StrAttack paper preset (4801; used U 10, T 10)",
                  "PGD0 paper preset (≤ "):
        assert label in caption
    assert "the times alone do not give the paper's comparison" in caption
    # the projection: measured s/pass (0.5 s / 10 passes, 2 s / 10 passes) × the paper budget's passes
    projection = [line for line in text.splitlines() if line.startswith("| StrAttack |") and "4801" in line]
    assert projection and projection[0].rstrip(" |").endswith("960")
    assert "\\caption{" in tables["table4"]["latex"] and "projected s/image" in tables["table4"]["latex"]
