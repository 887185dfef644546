import dataclasses

import pytest
import torch
from torch import nn

from gse_explain.models import NormalizedModel, create_model, list_models, model_info, register_model, registry

BUILTIN = {"resnet20", "resnet32", "resnet44", "resnet56", "resnet50", "vgg19", "vit_b_16", "efficientnet_lite0", "efficientnet_lite1"}


@pytest.fixture
def scratch_registry(monkeypatch):
    """Registrations made by a test are undone afterwards."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def test_builtin_names():
    assert BUILTIN <= set(list_models())
    assert list_models() == sorted(list_models())


def test_model_info_values_and_frozen():
    info = model_info("resnet20")
    assert (info.name, info.input_size, info.num_classes) == ("resnet20", (3, 32, 32), 10)
    assert info.default_weights is None
    for name in ("resnet50", "vgg19", "vit_b_16"):
        assert model_info(name).input_size == (3, 224, 224) and model_info(name).num_classes == 1000
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.num_classes = 3


def test_unknown_name_lists_known_ones():
    with pytest.raises(ValueError, match=r"unknown model 'resnet18'.*efficientnet_lite0.*vit_b_16"):
        create_model("resnet18")
    with pytest.raises(ValueError, match="resnet20"):
        model_info("nope")


def test_create_model_eval_mode_device_and_grad():
    model = create_model("resnet20", weights="random", device=torch.device("cpu"))
    assert isinstance(model, NormalizedModel) and not model.training
    assert all(not m.training for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())
    assert model.mean.device.type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_create_model_on_cuda():
    model = create_model("resnet20", weights="random", device="cuda")
    assert model.mean.is_cuda and next(model.parameters()).is_cuda
    assert model(torch.rand(2, 3, 32, 32, device="cuda")).shape == (2, 10)


def test_missing_weights_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        create_model("resnet44", weights=tmp_path / "missing.pt")


def test_register_custom_factory(scratch_registry):
    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(12, 4)
            self.drop = nn.Dropout(0.5)

        def forward(self, x):
            return self.drop(self.fc(x.flatten(1)))

    seen = {}

    def factory(weights, scale=1.0):
        seen.update(weights=weights, scale=scale)
        return Tiny().train()

    info = register_model("tiny", factory, input_size=(3, 2, 2), num_classes=4, description="test net")
    assert info == model_info("tiny") and "tiny" in list_models()
    model = create_model("tiny", weights="w.pt", scale=2.0)
    assert seen == {"weights": "w.pt", "scale": 2.0}
    assert isinstance(model, NormalizedModel) and not model.training and not model.model.training
    x = torch.rand(5, 3, 2, 2)
    assert torch.equal(model(x), model(x))  # eval mode: dropout is off
    with pytest.raises(ValueError, match="already registered"):
        register_model("tiny", factory, input_size=(3, 2, 2), num_classes=4, description="again")
    register_model("tiny", factory, input_size=(3, 4, 4), num_classes=4, description="again", overwrite=True)
    assert model_info("tiny").input_size == (3, 4, 4)


def test_register_validation(scratch_registry):
    with pytest.raises(ValueError, match="input_size"):
        register_model("bad", lambda w: nn.Identity(), input_size=(32, 32), num_classes=1, description="")
    with pytest.raises(TypeError, match="callable"):
        register_model("bad", None, input_size=(3, 32, 32), num_classes=1, description="")
