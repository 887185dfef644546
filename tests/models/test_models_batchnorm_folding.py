"""Batch-norm folding (gse_explain.models.batchnorm_folding) and the ``fold_batchnorm`` execution option."""

import warnings

import pytest
import torch
from torch import nn

from gse_explain.attacks import gse
from gse_explain.attacks.execution import ExecutionOptions
from gse_explain.evaluation import RunConfig
from gse_explain.models import batchnorm_folding
from gse_explain.models.batchnorm_folding import FoldingError, fold_batchnorm, folded_model


def _bn(channels, seed):
    """A batch norm with non-trivial running statistics and affine parameters."""
    g = torch.Generator().manual_seed(seed)
    bn = nn.BatchNorm2d(channels)
    bn.running_mean.copy_(torch.randn(channels, generator=g))
    bn.running_var.copy_(torch.rand(channels, generator=g) + 0.5)
    with torch.no_grad():
        bn.weight.copy_(torch.randn(channels, generator=g))
        bn.bias.copy_(torch.randn(channels, generator=g))
    return bn


class Checked(nn.Module):
    """A wrapper torch.fx cannot trace (control flow on the input), around a traceable network."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), _bn(4, 1), nn.ReLU(), nn.Conv2d(4, 4, 3), _bn(4, 2),
                                 nn.Flatten(), nn.Linear(4 * 4 * 4, 5))

    def forward(self, x):
        if x.ndim != 4:
            raise ValueError("expected 4-D images")
        return self.net(x)


class SharedConv(nn.Module):
    """The same convolution called twice, a batch norm after one call only: folding it would change the other."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 3, 3, padding=1), _bn(3, 3)

    def forward(self, x):
        return (self.bn(self.conv(x)) + self.conv(x)).flatten(1)


def test_folds_the_authors_resnet20_and_keeps_its_function(resnet20, one_thread):
    model = resnet20.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [p.requires_grad for p in model.parameters()]
    folded, pairs = fold_batchnorm(model)
    assert pairs == 19  # every conv → bn of the 3×3 blocks and the stem
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    xs = [x.clone().requires_grad_(True) for _ in range(2)]
    outs = [m(v) for m, v in zip((model, folded), xs)]
    assert torch.allclose(outs[0], outs[1], rtol=0, atol=1e-4 * outs[0].abs().max().item())
    grads = [torch.autograd.grad(o[:, 0].sum(), v)[0] for o, v in zip(outs, xs)]
    # Rounding may flip a ReLU whose input is ~0, so gradients agree in norm, not in every entry.
    assert (grads[0] - grads[1]).norm() < 1e-3 * grads[0].norm()
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # the model is not touched
    assert [p.requires_grad for p in model.parameters()] == flags
    assert not any(p.requires_grad for p in folded.parameters())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())


def test_untraceable_wrapper_gets_its_children_folded():
    model = Checked().eval()
    folded, pairs = fold_batchnorm(model)
    assert pairs == 2
    x = torch.rand(2, 3, 6, 6, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(folded(x), model(x), atol=1e-5)
    with pytest.raises(ValueError, match="4-D"):  # the wrapper's own code still runs
        folded(x[0])


def test_shared_layer_is_not_folded():
    model = SharedConv().eval()
    folded, pairs = fold_batchnorm(model)
    assert pairs == 0
    x = torch.rand(2, 3, 5, 5, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(folded(x), model(x), atol=1e-6)


def test_training_mode_is_refused_and_falls_back_with_a_warning():
    model = Checked().train()
    with pytest.raises(FoldingError, match="training mode.*model.eval"):
        fold_batchnorm(model)
    with pytest.warns(RuntimeWarning, match="unfolded: the model is in training mode"):
        assert folded_model(model, torch.rand(2, 3, 6, 6, generator=torch.Generator().manual_seed(1))) is model


def test_weights_changed_in_place_are_refolded():
    model = Checked().eval()
    x = torch.rand(2, 3, 6, 6, generator=torch.Generator().manual_seed(1))
    first = folded_model(model, x)
    assert first is not model and folded_model(model, x) is first  # cached
    with torch.no_grad():
        model.net[1].running_mean.add_(1.0)
    second = folded_model(model, x)
    assert second is not first
    assert torch.allclose(second(x), model(x), atol=1e-5)


def test_a_folded_copy_that_disagrees_is_not_used(monkeypatch):
    model = Checked().eval()

    def wrong(m):
        copy = Checked().eval()  # other weights: other logits
        return copy, 2

    monkeypatch.setattr(batchnorm_folding, "fold_batchnorm", wrong)
    with pytest.warns(RuntimeWarning, match="logits differ from the model's"):
        assert folded_model(model, torch.rand(2, 3, 6, 6, generator=torch.Generator().manual_seed(1))) is model


def test_models_without_batchnorm_and_functions_run_as_they_are():
    linear = nn.Sequential(nn.Flatten(), nn.Linear(12, 3)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert folded_model(linear, torch.rand(1, 3, 2, 2)) is linear
        assert folded_model(torch.sin, torch.rand(1)) is torch.sin


def test_gse_with_folding_matches_unfolded(resnet20, cifar_dataset, one_thread):
    images = torch.stack([torch.as_tensor(cifar_dataset[i][0]) for i in range(3)]).float()
    labels = resnet20(images).argmax(1)
    flags = [p.requires_grad for p in resnet20.parameters()]
    plain = gse(resnet20, images, labels, preset="cifar10", iterations=30, search_steps=2)
    folded = gse(resnet20, images, labels, preset="cifar10", iterations=30, search_steps=2, fold_batchnorm=True)
    assert torch.equal(plain.success, folded.success)
    assert (plain.adversarials - folded.adversarials).abs().max() < 1e-3
    assert [p.requires_grad for p in resnet20.parameters()] == flags and not resnet20.training
    assert folded.model_passes == plain.model_passes  # the check of the folded copy is not an attack pass


def test_option_is_validated_everywhere():
    with pytest.raises(TypeError, match="fold_batchnorm must be True or False"):
        ExecutionOptions(fold_batchnorm="yes")
    with pytest.raises(TypeError, match="RunConfig.fold_batchnorm must be True or False"):
        RunConfig(dataset="skimage", fold_batchnorm=1)
