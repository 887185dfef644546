"""PGD0 (Croce & Hein 2019, spec §B.6) on the authors' ResNet20 and real CIFAR-10 images (shared contract:
``test_attack_contract.py``)."""

import pytest
import torch
from torch import nn

from gse_explain.attacks import pgd0, pgd0_config
from gse_explain.attacks.pgd0 import project_l0_box
from gse_explain.attacks.pixel_sparse import changed_pixels

FAST = dict(iterations=20, n_restarts=2)


def test_paper_preset_untargeted_first_16_correct(resnet20, cifar_correct, one_thread):
    images, labels = cifar_correct[0][:16], cifar_correct[1][:16]
    result = pgd0(resnet20, images, labels, preset="cifar10")
    rate = result.success.float().mean().item()
    # Measured: 16/16 fooled (k = 90 of 1024 pixels; most images fall within the first iterations).
    assert rate >= 0.9, f"fooling rate {rate:.0%}"
    with torch.no_grad():
        predicted = resnet20(result.adversarials).argmax(1)
    assert torch.equal(predicted != labels, result.success)  # success flags are real
    assert result.adversarials.min() >= 0 and result.adversarials.max() <= 1
    assert changed_pixels(result.adversarials, images).max() <= 90
    assert result.gradient_passes > 0 and sum(b for b, _ in result.model_calls) == result.model_passes
    sizes = [b for b, _ in result.model_calls]
    assert sizes == sorted(sizes, reverse=True)  # fooled images leave the working set


def test_few_pixels_stay_within_k_and_the_box(resnet20, cifar_correct, one_thread):
    """k = 3: the ℓ0 constraint binds (measured 3/8 fooled with 20 iterations × 2 restarts)."""
    images, labels = cifar_correct[0][:8], cifar_correct[1][:8]
    result = pgd0(resnet20, images, labels, k=3, **FAST)
    changed = changed_pixels(result.adversarials, images)
    assert (changed <= 3).all()
    assert (changed[result.success] >= 1).all() and (changed[~result.success] == 0).all()
    assert result.success.any()
    assert result.adversarials.min() >= 0 and result.adversarials.max() <= 1


def test_targeted_reaches_the_target_on_the_paper_scale(resnet20, cifar_correct, one_thread):
    images, labels = cifar_correct[0][:8], cifar_correct[1][:8]
    targets = (labels + 3) % 10
    network = resnet20.model  # raw network on [-1, 1], as in the paper's code
    x = images * 2 - 1
    result = pgd0(network, x, targets, targeted=True, bounds=(-1.0, 1.0), preset="cifar10")
    # Measured: 8/8 reach the target.
    assert result.success.float().mean().item() >= 0.85
    with torch.no_grad():
        predicted = network(result.adversarials).argmax(1)
    assert torch.equal(predicted == targets, result.success)
    assert result.adversarials.min() >= -1 and result.adversarials.max() <= 1
    assert changed_pixels(result.adversarials, x).max() <= 90


def test_failures_unchanged_and_passes_counted(resnet20, cifar_correct, counting_model, one_thread):
    images, labels = cifar_correct[0][:4], cifar_correct[1][:4]
    counting = counting_model(resnet20)
    result = pgd0(counting, images, labels, k=1, iterations=3, n_restarts=2, step_size=1e-6)
    assert not result.success.any()  # one pixel and tiny steps: no image is fooled (measured)
    assert torch.equal(result.adversarials, images)
    assert counting.seen == {True: result.gradient_passes, False: result.forward_passes}
    # Per restart: gradient passes at iterates 0, 1, 2 and a forward pass for the last iterate 3.
    assert result.gradient_passes == 2 * 3 * 4 and result.forward_passes == 2 * 4
    assert result.model_calls == ([(4, True)] * 3 + [(4, False)]) * 2


def test_projection_scores_the_box_violation():
    """Croce–Hein Π_k: in-box entries score δ², out-of-box entries δ² − (δ − clip δ)²; exactly k kept."""
    u = torch.tensor([0.0, 0.6, 0.0, -0.5]).view(1, 1, 2, 2)
    lower, upper = -1.0 - u, 1.0 - u
    delta = torch.tensor([0.5, 0.3, 0.0, 3.0]).view(1, 1, 2, 2)
    # Scores: 0.25, 0.09, 0, 9 − 1.5² = 6.75. The GSE port's score (squared distance to the nearer bound
    # subtracted for in-box entries) would rank pixel 1 (0.09 − 0.1² = 0.08) above pixel 0 (0.25 − 0.5² = 0).
    kept = project_l0_box(delta, 2, lower, upper)
    assert torch.allclose(kept.flatten(), torch.tensor([0.5, 0.0, 0.0, 1.5]))
    assert torch.allclose(project_l0_box(delta, 1, lower, upper).flatten(), torch.tensor([0.0, 0.0, 0.0, 1.5]))
    # Ties: exactly k pixels survive, all channels of a pixel together.
    ties = torch.ones(2, 3, 4, 4)
    projected = project_l0_box(ties, 5, -torch.full_like(ties, 2.0), torch.full_like(ties, 2.0))
    assert ((projected != 0).any(dim=1).flatten(1).sum(dim=1) == 5).all()
    assert ((projected != 0).sum(dim=1) % 3 == 0).all()


def test_presets_and_bad_options():
    assert pgd0_config("cifar10").k == 90 and pgd0_config("cifar10", targeted=True).k == 90
    assert pgd0_config("imagenet").k == 6600 and pgd0_config("imagenet", targeted=True).k == 6600
    config = pgd0_config("cifar10")
    assert (config.n_restarts, config.iterations) == (5, 200) and config.step_size == pytest.approx(470.588, abs=1e-3)
    assert pgd0_config("cifar10", k=7).k == 7
    with pytest.raises(ValueError, match="PGD0 option error: k must be an integer ≥ 1"):
        pgd0_config(None, k=0)
    with pytest.raises(ValueError, match="iterations must be"):
        pgd0_config(None, iterations=0)


def test_bad_calls_raise_clear_errors():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5))
    images, labels = torch.rand(2, 3, 4, 4), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="k = 17 pixels exceeds the 4×4 = 16 pixels"):
        pgd0(model, images, labels, k=17)
    with pytest.raises(ValueError, match="PGD0 option error: k must"):
        pgd0(model, images, labels, k=-1)
    # k = H·W is allowed (every pixel may change).
    result = pgd0(model, images, labels, k=16, iterations=2, n_restarts=1)
    assert result.adversarials.shape == images.shape
