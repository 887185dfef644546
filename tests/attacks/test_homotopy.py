"""Group-wise Homotopy-Attack on the authors' ResNet20 and real CIFAR-10 images (spec §B.3).

The cifar10 preset is used as is, except where a test says otherwise: the final ℓ∞-shrinking phase is
shortened (``post_iterations``; 40000 in the paper setting), and the targeted test also shortens nmAPG
(``maxiter=10``, ``max_backtracks=100``) and the after-attack phase (``iter_init=10``) to stay fast.
Measured on this machine (2-core CPU, 1 thread): untargeted paper preset 4/4 fooled, ~2–4 s per image;
targeted (offset +1) full preset 3/3 fooled, ~50 s per image.
"""

import itertools

import pytest
import torch
from torch import nn

from gse_explain.attacks.base import ModelCaller
from gse_explain.attacks.homotopy import HOMOTOPY_PRESETS, homotopy, homotopy_config
from gse_explain.attacks.homotopy_solver import HomotopySolver

UNTARGETED = dict(post_iterations=300)
TARGETED = dict(maxiter=10, max_backtracks=100, iter_init=10, post_iterations=100)
TINY = dict(max_outer_iterations=2, maxiter=5, post_iterations=10, iter_init=5)


def _linf_canonical(adversarials, images):
    return ((adversarials - images).abs().flatten(1).amax(dim=1) * 2).max().item()  # [-1, 1] scale


def test_untargeted_preset_fools_most(resnet20, cifar_correct, one_thread):
    images, labels = cifar_correct[0][:4], cifar_correct[1][:4]
    result = homotopy(resnet20, images, labels, preset="cifar10", **UNTARGETED)
    # Measured: 4/4 fooled (ACP 33, 43, 12, 19 pixels).
    assert result.success.float().mean().item() >= 0.75
    with torch.no_grad():
        predicted = resnet20(result.adversarials).argmax(1)
    assert torch.equal(predicted != labels, result.success)
    assert result.adversarials.min() >= 0 and result.adversarials.max() <= 1
    assert _linf_canonical(result.adversarials, images) <= 0.1 + 1e-6  # max_epsilon on the [-1, 1] scale
    assert result.gradient_passes > 0 and sum(b for b, _ in result.model_calls) == result.model_passes


def test_targeted_hits_the_target(resnet20, cifar_correct, one_thread):
    images, labels = cifar_correct[0][:2], cifar_correct[1][:2]
    targets = (labels + 1) % 10
    result = homotopy(resnet20, images, targets, targeted=True, preset="cifar10", **TARGETED)
    # Measured: 2/2 (ACP 64 and 177 pixels).
    assert result.success.all()
    with torch.no_grad():
        assert torch.equal(resnet20(result.adversarials).argmax(1), targets)
    assert _linf_canonical(result.adversarials, images) <= 0.1 + 1e-6


def _tiny_attack(x, segments, eps=0.3, channels=2):
    model = nn.Sequential(nn.Flatten(), nn.Linear(channels * 4, 3))
    caller = ModelCaller(model, (-1.0, 1.0), 0)
    cfg = homotopy_config(max_epsilon=eps)
    return HomotopySolver(caller, x, torch.tensor([0]), segments, False, cfg)


def test_prox_is_the_exact_group_l0_box_minimiser():
    """prox(v) minimises ‖u − v‖²/(2α) + λ·#groups(u) over u with ‖u‖∞ ≤ ε and x + u in the box."""
    torch.manual_seed(0)
    segments = torch.tensor([[0, 0], [1, 2]])
    for trial in range(200):
        x = torch.rand(1, 2, 2, 2) * 2 - 1
        attack = _tiny_attack(x, segments)
        v = torch.randn(1, 2, 2, 2) * 0.4
        alpha, lam = 0.5, float(torch.rand(()) * 0.1)
        out = attack.prox(v, alpha, lam)
        v_hat = attack.project(v)

        def cost(u):
            return ((u - v) ** 2).sum().item() / (2 * alpha) + lam * attack.n_groups(u)

        best = min(
            cost(v_hat * torch.tensor(keep, dtype=v.dtype)[segments].view(1, 1, 2, 2))
            for keep in itertools.product([0.0, 1.0], repeat=3)
        )
        assert cost(out) <= best + 1e-6, trial
        assert (out.abs() <= 0.3 + 1e-7).all() and ((x + out).abs() <= 1 + 1e-6).all()


def test_prox_keeps_a_group_inside_the_box():
    """The reference port zeroes every group whose step stays inside the ε box; Zhu et al.'s prox keeps it."""
    x = torch.zeros(1, 2, 2, 2)
    attack = _tiny_attack(x, torch.zeros(2, 2, dtype=torch.long))
    v = torch.full((1, 2, 2, 2), 0.1)
    assert torch.equal(attack.prox(v, alpha=1.0, lam=0.01), v)  # gain 0.08 ≥ 2αλ = 0.02
    assert not attack.prox(v, alpha=1.0, lam=0.05).any()  # gain 0.08 < 0.1


def test_pass_budget_and_counts(resnet20, cifar_correct, counting_model, one_thread):
    counting = counting_model(resnet20)
    images, labels = cifar_correct[0][:2], cifar_correct[1][:2]
    result = homotopy(counting, images, labels, preset="cifar10", max_passes=30)
    assert counting.images == result.model_passes == result.forward_passes + result.gradient_passes
    assert result.model_passes <= 2 * 30 + 2  # budget per image plus the final success forward
    assert result.adversarials.min() >= 0 and result.adversarials.max() <= 1


def test_already_adversarial_image_is_returned_unchanged(resnet20, cifar_correct, one_thread):
    images, labels = cifar_correct[0][:1], cifar_correct[1][:1]
    wrong = (labels + 1) % 10  # untargeted with a label the model does not predict: already "fooled"
    result = homotopy(resnet20, images, wrong, preset="cifar10")
    assert result.success.all() and torch.equal(result.adversarials, images)
    assert (result.gradient_passes, result.forward_passes) == (1, 1)


def test_presets_and_options():
    cifar = homotopy_config("cifar10", targeted=True)
    assert (cifar.dec_factor, cifar.val_c, cifar.val_w1, cifar.val_w2) == (0.9, 1e-1, 1e-3, 1e-5)
    assert (cifar.val_gamma, cifar.beta, cifar.n_segments) == (0.96, 1e-1, 100)
    assert cifar.iter_inc == (100, 200, 300, 400, 500)
    imagenet = homotopy_config("imagenet")
    assert imagenet.iter_inc == tuple(range(500, 6001, 500)) and imagenet.n_segments == 500
    assert (imagenet.max_epsilon, imagenet.maxiter, imagenet.eta, imagenet.delta, imagenet.rho) == (0.1, 100, 0.9, 0.3, 0.8)
    assert homotopy_config("cifar10", maxiter=7).maxiter == 7
    assert set(HOMOTOPY_PRESETS) == {"cifar10", "imagenet"}
    with pytest.raises(ValueError, match="Homotopy option error: max_update must be ≥ 1"):
        homotopy_config(None, max_update=0)
    with pytest.raises(ValueError, match="Homotopy option error: max_epsilon must be > 0"):
        homotopy_config(None, max_epsilon=0.0)
    with pytest.raises(ValueError, match="Homotopy option error: max_outer_iterations"):
        homotopy_config(None, max_outer_iterations=0)
