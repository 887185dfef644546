"""The baselines' ``variant`` option: "corrected" (default) is today's attack, "reference" takes the GSE authors'
port's code path wherever spec §B documents a deviation. Each test checks the path that differs, on a tiny
input (a seeded linear model on 2 images of 3×8×8)."""

import importlib
import math

import numpy as np
import pytest
import torch
from torch import nn

from gse_explain.attacks import get_attack, list_attacks
from gse_explain.attacks.fwnucl import fwnucl_config
from gse_explain.attacks.homotopy import homotopy_config
from gse_explain.attacks.homotopy_solver import HomotopySolver, ReferenceHomotopySolver
from gse_explain.attacks.pgd0 import project_l0_box
from gse_explain.attacks.strattack_reference import batch_support
from gse_explain.attacks.superpixels import slic_input
from gse_explain.attacks.variants import has_variant

# (the package exports the attack functions under the modules' names)
homotopy_module = importlib.import_module("gse_explain.attacks.homotopy")
sapf_module = importlib.import_module("gse_explain.attacks.sapf")
BASELINES = ["strattack", "fwnucl", "homotopy", "sapf", "sparse_rs", "pgd0"]


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


def linear_model(seed: int = 0) -> nn.Module:
    """A seeded linear classifier on 3×8×8 images in [0, 1] (10 classes), in eval mode."""
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    return net.eval()


@pytest.fixture(scope="module")
def tiny():
    """(model, images (2, 3, 8, 8) in [0, 1], their predicted labels)."""
    model = linear_model()
    images = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        labels = model(images).argmax(dim=1)
    return model, images, labels


def _run(name, tiny, targeted=False, **options):
    model, images, labels = tiny
    spec = get_attack(name)
    targets = (labels + 1) % 10 if targeted else labels
    return spec.function(model, images, targets, targeted=targeted, seed=0, **{**spec.test_options, **options})


def test_every_baseline_has_the_variant_option_and_gse_has_none():
    with_variant = sorted(name for name in list_attacks() if has_variant(get_attack(name).config_class))
    assert set(BASELINES) <= set(with_variant) and "gse" not in with_variant
    for name in BASELINES:
        assert get_attack(name).make_config().variant == "corrected"  # the default
        assert get_attack(name).make_config("cifar10", variant="reference").variant == "reference"


@pytest.mark.parametrize("name", BASELINES)
def test_bad_variant_names_the_choices(name):
    with pytest.raises(ValueError, match=r"variant must be one of 'corrected', 'reference'.*got 'port'"):
        get_attack(name).make_config(None, variant="port")


@pytest.mark.parametrize("name", BASELINES)
def test_corrected_is_the_default(name, tiny):
    default, corrected = _run(name, tiny), _run(name, tiny, variant="corrected")
    assert torch.equal(default.adversarials, corrected.adversarials)
    assert torch.equal(default.success, corrected.success)
    assert (default.forward_passes, default.gradient_passes) == (corrected.forward_passes, corrected.gradient_passes)


# ----- Sparse-RS: black pixels only -----------------------------------------------------------------------
def test_sparse_rs_reference_sets_pixels_to_the_lower_bound_only(tiny):
    _, images, _ = tiny
    options = dict(k=6, n_queries=20, n_restarts=1)
    reference = _run("sparse_rs", tiny, targeted=True, variant="reference", **options)
    corrected = _run("sparse_rs", tiny, targeted=True, **options)
    for result, black_only in ((reference, True), (corrected, False)):
        changed = result.adversarials != images
        assert changed.any()
        values = result.adversarials[changed]
        assert bool((values == 0.0).all()) is black_only  # the lower bound of the [0, 1] box
    assert (corrected.adversarials[corrected.adversarials != images] == 1.0).any()  # corners use hi too


# ----- PGD0: the port's projection, success only after a restart ----------------------------------------
def test_pgd0_reference_projection_ranks_pixels_by_the_ports_score():
    lower, upper = torch.full((1, 1, 1, 2), -1.0), torch.full((1, 1, 1, 2), 1.0)
    # pixel 0 in the box near a bound (0.9), pixel 1 far outside it (3.0, clipped to 1)
    delta = torch.tensor([[[[0.9, 3.0]]]])
    corrected = project_l0_box(delta, 1, lower, upper)  # 0.81 vs 9 − 4 = 5: pixel 1 wins
    reference = project_l0_box(delta, 1, lower, upper, "reference")  # 0.81 − 0.01 = 0.8 vs 9 − 0 = 9: pixel 1
    assert corrected.flatten().tolist() == [0.0, 1.0] and reference.flatten().tolist() == [0.0, 1.0]
    delta = torch.tensor([[[[0.5, 0.7]]]])  # both in the box: 0.25 − 0.25 = 0 vs 0.49 − 0.09 = 0.4
    assert project_l0_box(delta, 1, lower, upper, "reference").flatten().tolist() == pytest.approx([0.0, 0.7])
    delta = torch.tensor([[[[0.6, 1.2]]]])  # corrected: 0.36 vs 1.44 − 0.04 = 1.4; port: 0.36 − 0.16 = 0.2 vs 1.44
    assert project_l0_box(delta, 1, lower, upper).flatten().tolist() == [0.0, 1.0]
    penalty = torch.minimum(upper - delta, delta - lower).clamp(min=0)
    score = delta.square().sum(1) - penalty.square().sum(1)
    assert score.flatten().tolist() == pytest.approx([0.36 - 0.16, 1.44])


def test_pgd0_reference_tests_success_only_after_the_restart(tiny):
    options = dict(k=16, iterations=6, n_restarts=1, step_size=50.0)
    corrected = _run("pgd0", tiny, **options)
    reference = _run("pgd0", tiny, variant="reference", **options)
    assert bool(corrected.success.all())  # an easy linear model: fooled at the first iterates
    assert corrected.gradient_passes < 2 * 6
    assert reference.gradient_passes == 2 * 6  # every image runs all iterations of its restart


# ----- FWnucl: the port's LMO rule ------------------------------------------------------------------------
def test_fwnucl_reference_uses_the_ports_lmo(tiny):
    _, images, _ = tiny
    assert fwnucl_config().lmo_rule == "exact" and fwnucl_config(variant="reference").lmo_rule == "reference"
    assert fwnucl_config(variant="reference", lmo="exact").lmo_rule == "exact"  # an explicit lmo wins
    corrected = _run("fwnucl", tiny, iterations=1, line_search_steps=3, eps=0.5)
    reference = _run("fwnucl", tiny, iterations=1, line_search_steps=3, eps=0.5, variant="reference")
    # one Frank-Wolfe step: δ = γ·s, s on one 4×4 patch: one channel (exact LMO) or every channel (the port)
    for result, channels in ((corrected, 1), (reference, 3)):
        changed = (result.adversarials != images).flatten(2).any(dim=2)  # (B, C)
        assert changed.sum(dim=1).tolist() == [channels, channels]


# ----- SAPF: SLIC on the uint8-cast [-1, 1] tensor --------------------------------------------------------
def test_uint8_cast_maps_minus_one_to_255_one_to_1_else_0():
    images = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0]).view(1, 1, 1, 5).expand(1, 3, 1, 5)
    cast = slic_input(images, (0.0, 1.0), "uint8_cast")
    assert cast.dtype == np.uint8 and cast[0, 0, :, 0].tolist() == [255, 0, 0, 0, 1]
    assert slic_input(images, (0.0, 1.0), "signed")[0, 0, :, 0].tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert slic_input(images, (0.0, 1.0))[0, 0, :, 0].tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    with pytest.raises(ValueError, match="source must be one of"):
        slic_input(images, (0.0, 1.0), "png")


@pytest.mark.parametrize(("name", "module", "expected"), [
    ("sapf", sapf_module, {"corrected": "real", "reference": "uint8_cast"}),
    ("homotopy", homotopy_module, {"corrected": "real", "reference": "signed"}),
])
def test_superpixels_come_from_the_ports_input(name, module, expected, tiny, monkeypatch):
    seen = []
    original = module.slic_segments

    def recording(images, bounds, n_segments, compactness, source="real"):
        seen.append(source)
        return original(images, bounds, n_segments, compactness, source)

    monkeypatch.setattr(module, "slic_segments", recording)
    for variant in ("corrected", "reference"):
        _run(name, tiny, variant=variant)
    assert seen == [expected["corrected"], expected["reference"]]


def test_sapf_reference_decays_the_step_after_steps_1_51_101(tiny, monkeypatch):
    """With decay every 2 steps, the port's second δ step already uses 0.9·η (decay after step 1), Fan et
    al.'s still η (decay after step 2): the same superpixels, different δ."""
    original = sapf_module.slic_segments
    monkeypatch.setattr(sapf_module, "slic_segments", lambda images, bounds, n, c, source: original(images, bounds, n, c))
    options = dict(search_steps=1, iterations=1, iterations_delta=2, iterations_g=1, iterations_finetune=0,
                   eta_decay_every=2, eta_delta=0.05, k=150, lam1=50.0)
    _, images, _ = tiny
    results = {v: _run("sapf", tiny, variant=v, **options).adversarials for v in ("corrected", "reference")}
    assert not torch.equal(results["corrected"], images)
    assert not torch.equal(results["corrected"], results["reference"])


# ----- Homotopy: t_prev, prox, ℓ0, c ------------------------------------------------------------------------
class _Caller:
    forward_passes = gradient_passes = 0


def _solvers():
    x = torch.zeros(1, 1, 2, 2)
    segments = torch.tensor([[0, 0], [1, 1]])
    cfg = homotopy_config(max_epsilon=0.5)
    return (HomotopySolver(_Caller(), x, torch.tensor([0]), segments, False, cfg),
            ReferenceHomotopySolver(_Caller(), x, torch.tensor([0]), segments, False, cfg))


def test_homotopy_reference_keeps_t_prev_at_zero_and_averages_with_the_new_q():
    corrected, reference = _solvers()
    t_next = (math.sqrt(5.0) + 1.0) / 2.0
    assert corrected._momentum(0.0, 1.0) == (1.0, t_next)
    assert reference._momentum(0.0, 1.0) == (0.0, t_next)  # t_prev never updated
    eta = corrected.cfg.eta
    assert corrected._average(2.0, 1.0, 5.0) == pytest.approx(((eta * 2.0 + 5.0) / (eta + 1.0), eta + 1.0))
    q = eta + 1.0
    assert reference._average(2.0, 1.0, 5.0) == pytest.approx(((eta * q * 2.0 + 5.0) / q, q))
    assert corrected._threshold_fallback() and not reference._threshold_fallback()


def test_homotopy_reference_prox_and_l0_follow_the_port():
    corrected, reference = _solvers()
    v = torch.tensor([[[[0.3, 0.2], [0.9, 0.0]]]])  # group 0 inside the ε = 0.5 box, group 1 partly clipped
    # corrected: gain ‖v‖² − ‖v − v̂‖²: group 0: 0.13, group 1: 0.81 − 0.16 = 0.65; returns v̂ (clipped)
    kept = corrected.prox(v, 1.0, 0.05)
    assert kept.flatten().tolist() == pytest.approx([0.3, 0.2, 0.5, 0.0])
    # port: gain ‖v‖² − ‖v̂‖²: group 0: 0 (zeroed for any λ > 0), group 1: 0.81 − 0.25 = 0.56; returns v (unclipped)
    kept = reference.prox(v, 1.0, 0.05)
    assert kept.flatten().tolist() == pytest.approx([0.0, 0.0, 0.9, 0.0])
    assert reference.prox(v, 1.0, 0.0).flatten().tolist() == pytest.approx([0.3, 0.2, 0.9, 0.0])
    # ℓ0 term: non-zero groups (corrected) vs entries (port)
    assert corrected.objective(1.0, v, 0.5) == pytest.approx(1.0 + 0.5 * 2)
    assert reference.objective(1.0, v, 0.5) == pytest.approx(1.0 + 0.5 * 3)


def test_homotopy_reference_lambda_search_ends_at_zero_when_nothing_is_clipped():
    corrected, reference = _solvers()
    grad = torch.tensor([[[[1.0, -2.0], [0.5, 0.0]]]])  # a first step of 1e-3·g stays deep inside the box
    assert corrected.initial_lambda(grad) > 0
    assert reference.initial_lambda(grad) == 0.0  # the port's λ shrinks ×0.99 until it underflows


# ----- StrAttack: batch-shared c, batch-wide support -------------------------------------------------------
def test_strattack_reference_depends_on_the_batch(tiny):
    model, images, labels = tiny
    options = dict(search_steps=2, max_iter=8, retrain_steps=1, retrain_iter=4, c=2.0)

    def first_alone_and_in_batch(variant):
        spec = get_attack("strattack")
        alone = spec.function(model, images[:1], labels[:1], variant=variant, **options).adversarials
        batch = spec.function(model, images, labels, variant=variant, **options).adversarials[:1]
        return alone, batch

    alone, batch = first_alone_and_in_batch("corrected")
    assert torch.allclose(alone, batch, atol=1e-5)  # per-image c: the batch does not matter (up to rounding)
    alone, batch = first_alone_and_in_batch("reference")
    assert (alone - batch).abs().max() > 1e-2  # mean over the batch: each c is divided by B
    reference = _run("strattack", tiny, variant="reference", **options)
    assert reference.adversarials.min() >= 0 and reference.adversarials.max() <= 1  # returned images in the box


def test_strattack_reference_support_uses_one_quantile_for_the_whole_batch():
    best_y = torch.zeros(2, 1, 1, 4)
    best_y[0, 0, 0] = torch.tensor([0.1, 0.2, 0.3, 0.4])
    best_y[1, 0, 0] = torch.tensor([1.0, 2.0, 3.0, 4.0])
    support = batch_support(best_y, 0.5)  # median of the 8 non-zero values: 0.7
    assert support[0].sum() == 0 and support[1].sum() == 4
    assert not batch_support(torch.zeros(2, 1, 1, 4), 0.03).any()
