import pytest
import torch
from torch import nn

from gse_explain.models import IMAGENET_STATS, UNIT_RANGE, NormalizedModel, resolve_normalization, wrap_model


class Recorder(nn.Module):
    """Returns its input so the test can see exactly what the wrapped model received."""

    def forward(self, x):
        return x


def test_unit_range_maps_01_to_pm1():
    model = NormalizedModel(Recorder(), *UNIT_RANGE)
    x = torch.tensor([0.0, 0.25, 0.5, 1.0]).view(1, 1, 2, 2).repeat(1, 3, 1, 1)
    out = model(x)
    assert torch.allclose(out, x * 2 - 1)
    assert out.min().item() == -1.0 and out.max().item() == 1.0


def test_imagenet_stats_per_channel():
    model = NormalizedModel(Recorder(), *IMAGENET_STATS)
    x = torch.rand(2, 3, 4, 5)
    mean = torch.tensor(IMAGENET_STATS[0]).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STATS[1]).view(1, 3, 1, 1)
    assert torch.allclose(model(x), (x - mean) / std)
    assert model.mean.shape == (1, 3, 1, 1) and model.std.shape == (1, 3, 1, 1)
    assert {name for name, _ in model.named_buffers()} == {"mean", "std"}
    assert model.model.__class__ is Recorder


def test_forward_does_not_mutate_input_and_passes_gradients():
    model = NormalizedModel(nn.Conv2d(3, 2, 1), *IMAGENET_STATS)
    x = torch.rand(2, 3, 4, 4, requires_grad=True)
    before = x.detach().clone()
    model(x).sum().backward()
    assert torch.equal(x.detach(), before)
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_buffers_move_with_the_module():
    model = NormalizedModel(Recorder(), *UNIT_RANGE).to(torch.float64)
    assert model.mean.dtype == torch.float64
    state = model.state_dict()
    assert set(state) == {"mean", "std"}


@pytest.mark.parametrize(
    "mean, std, match",
    [((0.5, 0.5), (0.5, 0.5, 0.5), "same number of channels"), ((0.5,) * 3, (0.5, 0.0, 0.5), "strictly positive")],
)
def test_invalid_statistics(mean, std, match):
    with pytest.raises(ValueError, match=match):
        NormalizedModel(Recorder(), mean, std)


def test_wrong_input_shape_is_explained():
    model = NormalizedModel(Recorder(), *IMAGENET_STATS)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        model(torch.rand(3, 4, 4))
    with pytest.raises(ValueError, match="1 channels"):
        model(torch.rand(1, 1, 4, 4))


def test_not_a_module():
    with pytest.raises(TypeError, match="nn.Module"):
        NormalizedModel(lambda x: x, *UNIT_RANGE)


def test_wrap_model_identity_returns_eval_mode_and_same_outputs():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5))
    net.train()
    wrapped = wrap_model(net)
    assert isinstance(wrapped, NormalizedModel)
    assert not wrapped.training and not net.training
    x = torch.rand(2, 3, 8, 8)
    assert torch.equal(wrapped(x), net(x))


def test_wrap_model_with_stats_and_rewrap():
    wrapped = wrap_model(Recorder(), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    x = torch.rand(1, 3, 2, 2)
    assert torch.allclose(wrapped(x), (x - 0.5) / 0.25)
    assert wrap_model(wrapped) is wrapped  # already takes [0, 1]: no double wrapping
    with pytest.raises(ValueError, match="together"):
        wrap_model(Recorder(), mean=(0.5,))


def test_wrap_model_keeps_requires_grad():
    net = nn.Linear(3, 2)
    net.weight.requires_grad_(False)
    wrap_model(net)
    assert net.weight.requires_grad is False and net.bias.requires_grad is True


def test_resolve_normalization():
    assert resolve_normalization("unit") == UNIT_RANGE
    assert resolve_normalization("ImageNet") == IMAGENET_STATS
    assert resolve_normalization(None) == ((0.0,), (1.0,))
    assert resolve_normalization(([0.1, 0.2, 0.3], [1, 1, 1])) == ((0.1, 0.2, 0.3), (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="normalization='cifar'"):
        resolve_normalization("cifar")
    with pytest.raises(ValueError, match="not a valid normalisation"):
        resolve_normalization(3)
