"""Adversarial saliency maps: analytic values on a linear model, per-sample gradients on the real ResNet20."""

import pytest
import torch

from gse_explain.analysis import adversarial_saliency_map

SHAPE = (2, 3, 3)  # C, H, W
K = 4


@pytest.fixture
def weight():
    return torch.randn(K, 18, generator=torch.Generator().manual_seed(1))


def test_linear_model_gives_weight_row_product(make_linear_model, weight):
    model = make_linear_model(weight)
    images = torch.rand(3, *SHAPE)
    labels, targets = torch.tensor([0, 1, 3]), torch.tensor([2, 0, 1])
    saliency = adversarial_saliency_map(model, images, labels, targets)
    assert saliency.shape == images.shape and saliency.dtype == images.dtype
    expected = torch.stack([weight[t] * weight[y].abs() for y, t in zip(labels, targets)]).view(3, *SHAPE)
    torch.testing.assert_close(saliency, expected, rtol=1e-6, atol=0)


def test_sign_condition_zeroes_exactly_papernot_entries(make_linear_model, weight):
    model = make_linear_model(weight)
    images = torch.rand(2, *SHAPE)
    labels, targets = torch.tensor([0, 3]), torch.tensor([2, 1])
    plain = adversarial_saliency_map(model, images, labels, targets)
    masked = adversarial_saliency_map(model, images, labels, targets, sign_condition=True)
    for row, (y, t) in enumerate(zip(labels, targets)):
        others = weight.sum(0) - weight[t]
        zero = ((weight[t] < 0) | (others > 0)).view(SHAPE)
        assert 0 < int(zero.sum()) < zero.numel()  # the check is not vacuous
        assert (masked[row][zero] == 0).all()
        torch.testing.assert_close(masked[row][~zero], plain[row][~zero], rtol=0, atol=0)
        assert (masked[row][~zero] >= 0).all()  # kept entries have ∂Z_t/∂x ≥ 0


def test_batched_equals_one_at_a_time_on_resnet20(resnet20, cifar_correct):
    images, labels = cifar_correct[0][:4], cifar_correct[1][:4]
    targets = (labels + torch.tensor([1, 3, 5, 7])) % 10  # a different target in every row
    batched = adversarial_saliency_map(resnet20, images, labels, targets)
    single = torch.cat([adversarial_saliency_map(resnet20, images[i : i + 1], labels[i : i + 1], targets[i : i + 1])
                        for i in range(4)])
    # Equal up to float32 rounding (convolutions sum in a batch-size dependent order): 1e-5 of the largest entry.
    atol = 1e-5 * float(single.abs().max())
    torch.testing.assert_close(batched, single, rtol=1e-4, atol=atol)
    chunked = adversarial_saliency_map(resnet20, images, labels, targets, batch_size=3)
    torch.testing.assert_close(chunked, single, rtol=1e-4, atol=atol)

    # The reference code's seed marks every target of the batch in every row (spec §C.7 [bug]): different maps.
    inputs = images.clone().requires_grad_(True)
    logits = resnet20(inputs)
    seed_t = torch.zeros_like(logits)
    seed_t[:, targets] = 1
    seed_y = torch.zeros_like(logits)
    seed_y[:, labels] = 1
    (grad_t,) = torch.autograd.grad(logits, inputs, seed_t, retain_graph=True)
    (grad_y,) = torch.autograd.grad(logits, inputs, seed_y)
    assert not torch.allclose(grad_t * grad_y.abs(), batched, rtol=1e-2, atol=0)


def test_restores_model_state_and_leaves_inputs_alone(resnet20, cifar_correct):
    images, labels = cifar_correct[0][:2].clone(), cifar_correct[1][:2]
    before = images.clone()
    flags = [p.requires_grad for p in resnet20.parameters()]
    resnet20.train()
    try:
        adversarial_saliency_map(resnet20, images, labels, (labels + 1) % 10)
        assert resnet20.training and all(m.training for m in resnet20.modules())
        assert [p.requires_grad for p in resnet20.parameters()] == flags
    finally:
        resnet20.eval()
    assert torch.equal(images, before) and images.grad is None and not images.requires_grad


def test_bad_inputs_are_reported(make_linear_model, weight):
    model = make_linear_model(weight)
    images = torch.rand(2, *SHAPE)
    with pytest.raises(ValueError, match=r"shape \(B, C, H, W\)"):
        adversarial_saliency_map(model, images[0], 0, 1)
    with pytest.raises(ValueError, match=r"labels must have shape \(2,\)"):
        adversarial_saliency_map(model, images, torch.tensor([0, 1, 2]), 1)
    with pytest.raises(ValueError, match="targets must be < num_classes = 4"):
        adversarial_saliency_map(model, images, 0, torch.tensor([1, 4]))
    with pytest.raises(TypeError, match="integer class indices"):
        adversarial_saliency_map(model, images, torch.tensor([0.0, 1.0]), 1)
