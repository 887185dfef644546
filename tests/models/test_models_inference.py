"""gse_explain.models.inference: devices and dtypes of modules and plain functions, freezing, the logit and
gradient checks and predict."""

import math

import pytest
import torch
from torch import nn

from gse_explain.models.inference import (
    NonFiniteGradientError, NonFiniteLogitsError, check_gradient, check_logits, check_model, frozen_model,
    model_device, model_dtype, predict,
)


class _Stateless(nn.Module):
    def forward(self, x):
        return x.flatten(1)[:, :3]


def test_device_and_dtype_of_modules_and_functions():
    linear = nn.Linear(4, 2)
    cpu = torch.device("cpu")
    assert model_device(linear, torch.device("meta")) == cpu
    assert model_dtype(linear, torch.float16) == torch.float32
    assert model_dtype(linear.double(), torch.float16) == torch.float64
    function = lambda x: linear(x)  # noqa: E731
    assert model_device(function, torch.device("meta")) == torch.device("meta")  # no parameters: the fallback
    assert model_dtype(function, torch.float16) == torch.float16 and model_dtype(_Stateless(), None) is None
    batch_norm = nn.BatchNorm1d(3)
    batch_norm.weight = None  # buffers only; the first floating one (not num_batches_tracked, int64) decides
    batch_norm.bias = None
    assert model_dtype(batch_norm.double(), None) == torch.float64


def test_frozen_model_restores_modules_and_passes_functions_through():
    model = nn.Sequential(nn.Linear(4, 2), nn.Dropout())
    model.train()
    model[0].bias.requires_grad_(False)
    with frozen_model(model) as frozen:
        assert frozen is model and not model.training and not any(p.requires_grad for p in model.parameters())
    assert model.training and model[0].weight.requires_grad and not model[0].bias.requires_grad
    function = lambda x: x  # noqa: E731
    with frozen_model(function) as frozen:
        assert frozen is function
    with pytest.raises(TypeError, match="model must be an nn.Module or a function"), frozen_model("resnet20"):
        pass
    check_model(function)
    with pytest.raises(TypeError, match=r"got int"):
        check_model(3)


def test_check_logits_names_rows_with_offset_and_context():
    logits = torch.zeros(4, 3)
    assert check_logits(logits) is logits
    logits[2, 1] = math.nan
    logits[3, 0] = -math.inf
    with pytest.raises(NonFiniteLogitsError, match=r"for 2 image\(s\) \(rows 12, 13\) in call 7; check"):
        check_logits(logits, 10, context=" in call 7")


def test_check_gradient_names_rows():
    grad = torch.zeros(3, 2, 2)
    assert check_gradient(grad) is grad
    grad[1, 0, 1] = math.inf
    with pytest.raises(NonFiniteGradientError, match=r"NaN or inf for 1 image\(s\) \(rows 1\) here; check"):
        check_gradient(grad, context=" here")


def test_predict_casts_images_to_the_model_dtype_and_takes_functions():
    torch.manual_seed(0)
    linear = nn.Linear(12, 5)
    images = torch.rand(7, 3, 2, 2, dtype=torch.float64)
    model = nn.Sequential(nn.Flatten(), linear)
    expected = model(images.float()).argmax(1)
    assert torch.equal(predict(model, images, batch_size=3), expected)  # float64 images, float32 model
    assert torch.equal(predict(lambda x: linear(x.flatten(1)), images.float()), expected)
    calls = []

    def nan_after_first_chunk(x):
        calls.append(x.shape[0])
        return torch.full((x.shape[0], 5), math.nan if len(calls) > 1 else 0.0)

    with pytest.raises(NonFiniteLogitsError, match=r"rows 3, 4, 5\)"):  # rows of the whole batch
        predict(nan_after_first_chunk, images, batch_size=3)
