"""Sparse-RS (ℓ0 pixels, Croce et al. 2022, spec §B.5) on the authors' ResNet20 and real CIFAR-10 images."""

import pytest
import torch
from torch import nn

from gse_explain.attacks import sparse_rs, sparse_rs_config
from gse_explain.attacks.pixel_sparse import changed_pixels
from gse_explain.attacks.sparse_rs import _new_colours, alpha_schedule


def _check_black_box_result(result, model, images, labels, k, budget, targeted=False):
    """Contract shared by the real-data tests; returns the fooling rate."""
    with torch.no_grad():
        predicted = model(result.adversarials)
    hit = predicted.argmax(1) == labels if targeted else predicted.argmax(1) != labels
    assert torch.equal(hit, result.success)  # success flags are real
    assert result.gradient_passes == 0
    assert result.adversarials.min() >= 0 and result.adversarials.max() <= 1
    changed = changed_pixels(result.adversarials, images)
    assert (changed <= k).all()
    assert (changed[~result.success] == 0).all()
    assert torch.equal(result.adversarials[~result.success], images[~result.success])
    # Changed entries are colour-cube corners.
    moved = result.adversarials[result.adversarials != images]
    assert ((moved == 0) | (moved == 1)).all()
    assert result.queries.dtype == torch.long and (result.queries >= 1).all() and (result.queries <= budget).all()
    # Targeted: one more forward pass on the clean images (the target check), not a query of the search.
    check = images.shape[0] if targeted else 0
    assert result.queries.sum().item() + check == result.forward_passes == sum(b for b, _ in result.model_calls)
    return result.success.float().mean().item()


def test_paper_preset_untargeted_first_16_correct(resnet20, cifar_correct, counting_model, one_thread):
    images, labels = cifar_correct[0][:16], cifar_correct[1][:16]
    counting = counting_model(resnet20)
    result = sparse_rs(counting, images, labels, preset="cifar10")
    rate = _check_black_box_result(result, resnet20, images, labels, k=90, budget=10 * 10000)
    # Measured: 16/16 fooled, at most 62 queries per image (k = 90 of 1024 pixels).
    assert rate >= 0.9, f"fooling rate {rate:.0%}"
    assert counting.seen == {True: 0, False: result.forward_passes}  # never asks for a gradient


def test_few_pixels_small_budget(resnet20, cifar_correct, one_thread):
    """k = 10 pixels and 300 queries, one restart: measured 16/16 fooled (median 14, max 137 queries)."""
    images, labels = cifar_correct[0][:16], cifar_correct[1][:16]
    result = sparse_rs(resnet20, images, labels, k=10, n_queries=300, n_restarts=1)
    rate = _check_black_box_result(result, resnet20, images, labels, k=10, budget=300)
    assert rate >= 0.85, f"fooling rate {rate:.0%}"


def test_targeted_reaches_the_target(resnet20, cifar_correct, one_thread):
    images, labels = cifar_correct[0][:8], cifar_correct[1][:8]
    targets = (labels + 3) % 10
    result = sparse_rs(resnet20, images, targets, targeted=True, preset="cifar10", n_queries=1000, n_restarts=1)
    rate = _check_black_box_result(result, resnet20, images, targets, k=90, budget=1000, targeted=True)
    # Measured: 8/8 reach the target with ≤ 147 queries.
    assert rate >= 0.85, f"targeted success {rate:.0%}"


def test_budget_is_exact_on_failures(resnet20, cifar_correct, counting_model, one_thread):
    images, labels = cifar_correct[0][:4], cifar_correct[1][:4]
    counting = counting_model(resnet20)
    result = sparse_rs(counting, images, labels, k=1, n_queries=15, n_restarts=2)
    _check_black_box_result(result, resnet20, images, labels, k=1, budget=30)
    assert (~result.success).sum() == 3  # measured: one random pixel fools image 2 at once
    assert (result.queries[~result.success] == 30).all()  # the whole budget, never more
    assert counting.seen == {True: 0, False: result.forward_passes}
    sizes = [b for b, _ in result.model_calls]
    assert sizes == sorted(sizes, reverse=True) and len(sizes) == 30  # fooled images leave the working set


def test_alpha_schedule():
    # Piecewise constant in ⌊i / n_queries · 10000⌋ with breakpoints 10, 50, 200, ... (bisect_left).
    expected = {0: 1, 10: 1, 11: 2, 50: 2, 51: 4, 200: 4, 201: 5, 500: 5, 501: 6, 1000: 6, 1001: 8,
                2001: 10, 4001: 12, 6001: 15, 8000: 15, 8001: 20, 9999: 20}
    for i, factor in expected.items():
        assert alpha_schedule(i, 10000, 0.8) == pytest.approx(0.8 / factor), i
    assert alpha_schedule(1, 1000, 0.8) == pytest.approx(0.8)  # ⌊1/1000 · 10000⌋ = 10
    assert alpha_schedule(2, 1000, 0.8) == pytest.approx(0.4)


def test_single_pixel_colours_differ_from_corner_values():
    """k_i = 1: a pixel whose value is a corner gets one of the 2^C − 1 other corners, uniformly."""
    generator = torch.Generator().manual_seed(0)
    corner = torch.tensor([-1.0, 1.0, -1.0]).view(1, 3, 1).expand(7000, 3, 1)
    drawn = _new_colours(corner, generator)
    assert ((drawn == 1) | (drawn == -1)).all()
    assert not (drawn == corner).all(dim=1).any()
    codes = ((drawn.squeeze(2) > 0).long() * torch.tensor([1, 2, 4])).sum(dim=1)
    counts = torch.bincount(codes, minlength=8)
    assert counts[2] == 0 and (counts[[0, 1, 3, 4, 5, 6, 7]] > 850).all()  # 1000 each expected
    inner = torch.zeros(8000, 3, 1)  # not a corner: all 8 corners possible
    codes = ((_new_colours(inner, generator).squeeze(2) > 0).long() * torch.tensor([1, 2, 4])).sum(dim=1)
    assert (torch.bincount(codes, minlength=8) > 850).all()


def _linear():
    """A linear model on 3×4×4 images in which class 0 wins everywhere: the attack runs its whole budget."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5))
    with torch.no_grad():
        model[1].bias[0] = 100.0
    return model


def test_black_images_and_full_pixel_budget_terminate(counting_model):
    """The port loops forever when k_i = 1 hits a black pixel; here all-black images finish, every k_i = 1
    candidate really adds a non-black pixel, and k = H·W (no pixel left to swap in) works."""
    images = torch.zeros(3, 3, 4, 4)
    for k in (1, 16):
        model = counting_model(_linear(), record=True)
        with torch.no_grad():
            labels = model.model(images).argmax(1)
        result = sparse_rs(model, images, labels, k=k, n_queries=40, n_restarts=1)
        assert (changed_pixels(result.adversarials, images) <= k).all()
        assert (result.queries == 40).all() and result.gradient_passes == 0 and len(model.inputs) == 40
        if k == 1:  # after the initial query, each candidate is the clean image plus one non-black pixel
            for batch in model.inputs[1:]:
                assert (changed_pixels(batch, torch.zeros_like(batch)) == 1).all()


def test_positions_are_drawn_per_image(counting_model):
    """Identical images in a batch get different random pixel sets (the port shares positions)."""
    model = counting_model(_linear(), record=True)
    images = torch.full((4, 3, 4, 4), 0.5)
    sparse_rs(model, images, torch.zeros(4, dtype=torch.long), k=4, n_queries=3, n_restarts=1)
    for batch in model.inputs:
        masks = (batch != 0.5).any(dim=1).flatten(1)
        assert (masks.sum(dim=1) == 4).all()
        assert len({tuple(m.tolist()) for m in masks}) > 1


def test_presets_and_bad_options():
    for targeted in (False, True):
        cifar, imagenet = sparse_rs_config("cifar10", targeted), sparse_rs_config("imagenet", targeted)
        assert (cifar.k, imagenet.k) == (90, 6600)
        assert (cifar.n_queries, cifar.n_restarts, cifar.alpha_init) == (10000, 10, 0.8)
    images, labels = torch.rand(2, 3, 4, 4), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="Sparse-RS option error: k must be an integer ≥ 1"):
        sparse_rs(_linear(), images, labels, k=0)
    with pytest.raises(ValueError, match="k = 17 pixels exceeds the 4×4 = 16 pixels"):
        sparse_rs(_linear(), images, labels, k=17)
    with pytest.raises(ValueError, match="alpha_init must be in"):
        sparse_rs_config(None, alpha_init=0.0)
    with pytest.raises(ValueError, match="loss must be one of"):
        sparse_rs_config(None, loss="hinge")
    with pytest.raises(ValueError, match="n_queries must be"):
        sparse_rs_config(None, n_queries=0)
