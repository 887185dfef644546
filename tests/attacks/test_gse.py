"""GSE on the authors' ResNet20 and real CIFAR-10 images (spec §A); the shared contract is in
``test_attack_contract.py``."""

import pytest
import torch

from gse_explain import distances
from gse_explain.attacks import gse, gse_config

FAST = dict(iterations=40, search_steps=3)


def _raw_network(resnet20):
    """The ResNet20 without its wrapper: takes [-1, 1] inputs, as in the paper's code."""
    return resnet20.model


def test_paper_setting_untargeted_first_32_correct(resnet20, cifar_correct):
    images, labels = cifar_correct
    network = _raw_network(resnet20)
    x = images * 2 - 1
    result = gse(network, x, labels, bounds=(-1.0, 1.0), preset="cifar10")
    delta = result.adversarials - x
    acp = distances.acp(delta).float().mean().item()
    anc = distances.anc(delta).float().mean().item()
    # Measured here: ASR 100 %, mean ACP 39.5, mean ANC 1.50 (authors' code: 41.8 and 1.57).
    assert result.success.all(), f"ASR {result.success.float().mean().item():.1%}"
    assert acp <= 60 and anc <= 2.5, f"mean ACP {acp:.1f}, mean ANC {anc:.2f}"
    with torch.no_grad():
        assert (network(result.adversarials).argmax(1) != labels).all()  # success flags are real
    assert result.adversarials.min() >= -1 and result.adversarials.max() <= 1
    assert result.gradient_passes > 0 and result.model_passes == result.gradient_passes + result.forward_passes
    assert sum(b for b, _ in result.model_calls) == result.model_passes


def test_box_convention_does_not_change_the_attack(resnet20, cifar_correct):
    """bounds (0, 1) + normalising wrapper gives the same attack as bounds (-1, 1) on the raw network."""
    images, labels = cifar_correct[0][:6], cifar_correct[1][:6]
    unit = gse(resnet20, images, labels, bounds=(0.0, 1.0), preset="cifar10", **FAST)
    paper = gse(_raw_network(resnet20), images * 2 - 1, labels, bounds=(-1.0, 1.0), preset="cifar10", **FAST)
    assert torch.equal(unit.success, paper.success)
    assert torch.equal(distances.acp(unit.adversarials - images), distances.acp(paper.adversarials - (images * 2 - 1)))
    assert torch.allclose(unit.adversarials * 2 - 1, paper.adversarials, atol=1e-4)
    assert unit.adversarials.min() >= 0 and unit.adversarials.max() <= 1


def test_targeted_reaches_the_target(resnet20, cifar_correct):
    images, labels = cifar_correct[0][:4], cifar_correct[1][:4]
    targets = (labels + 3) % 10
    result = gse(resnet20, images, targets, targeted=True, preset="cifar10", search_steps=4)
    assert result.success.all()
    with torch.no_grad():
        assert torch.equal(resnet20(result.adversarials).argmax(1), targets)


def test_deterministic_and_batched_equals_sequential(resnet20, cifar_correct):
    images, labels = cifar_correct[0][:4], cifar_correct[1][:4]
    first = gse(resnet20, images, labels, preset="cifar10", **FAST)
    second = gse(resnet20, images, labels, preset="cifar10", **FAST)
    assert torch.equal(first.adversarials, second.adversarials) and torch.equal(first.success, second.success)
    sequential = gse(resnet20, images, labels, preset="cifar10", sequential=True, **FAST)
    assert torch.equal(sequential.success, first.success)
    assert torch.equal(distances.acp(sequential.adversarials - images), distances.acp(first.adversarials - images))
    assert torch.allclose(sequential.adversarials, first.adversarials, atol=1e-5)


def test_result_does_not_depend_on_memory_layout(resnet20, cifar_correct):
    images, labels = cifar_correct[0][:3], cifar_correct[1][:3]
    plain = gse(resnet20, images, labels, preset="cifar10", **FAST)
    channels_last = gse(resnet20, images.to(memory_format=torch.channels_last), labels, preset="cifar10", **FAST)
    assert torch.equal(plain.adversarials, channels_last.adversarials)


def test_failures_are_returned_unchanged_and_passes_counted(resnet20, cifar_correct):
    images, labels = cifar_correct[0][:2], cifar_correct[1][:2]
    # A step this small cannot fool the model within 5 iterations.
    result = gse(resnet20, images, labels, step_size=1e-9, boost_factor=1.0, iterations=5, search_steps=1)
    assert not result.success.any()
    assert torch.equal(result.adversarials, images)
    # 1 gradient for λ_max (reused at j = 0), gradients at j = 1..4, one final forward check.
    assert result.gradient_passes == 2 * 5 and result.forward_passes == 2
    assert result.model_calls == [(2, True)] * 5 + [(2, False)]


@pytest.mark.parametrize("k_hat", [0, 1000])
def test_phase_switch_extremes(resnet20, cifar_correct, k_hat):
    """k̂ = 0 is plain damped descent on all pixels; k̂ ≥ iterations never leaves phase 1."""
    images, labels = cifar_correct[0][:3], cifar_correct[1][:3]
    result = gse(resnet20, images, labels, preset="cifar10", k_hat=k_hat, **FAST)
    assert result.success.any()
    assert result.adversarials.min() >= 0 and result.adversarials.max() <= 1


def test_presets_and_options():
    assert gse_config("cifar10", targeted=False).k_hat == 30
    assert gse_config("cifar10", targeted=True).k_hat == 50
    imagenet = gse_config("imagenet", targeted=True)
    assert (imagenet.mu, imagenet.step_size, imagenet.q) == (0.1, 0.05, 0.9)
    assert gse_config("imagenet_adv").step_size == 0.75
    assert gse_config("cifar10", k_hat=7).k_hat == 7  # explicit options override the preset
    with pytest.raises(ValueError, match="q must be in"):
        gse_config(None, q=0.0)
    with pytest.raises(ValueError, match="blur_kernel_size"):
        gse_config(None, blur_kernel_size=4)
