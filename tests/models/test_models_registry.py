import dataclasses

import pytest
import torch
from torch import nn

from gse_explain.models import CifarResNet, ModelInfo, NormalizedModel, create_model, list_models, model_info, register_model, registry

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


def _network_on_meta(name):
    """The bare network of a built-in model, built on the meta device (no memory) for checking layer paths."""
    import torchvision

    with torch.device("meta"):
        if name in ("resnet50", "vgg19", "vit_b_16"):
            return getattr(torchvision.models, name)(weights=None)
        if name.startswith("efficientnet_lite"):
            from efficientnet_lite_pytorch import EfficientNet

            return EfficientNet.from_name(name.replace("_", "-"), num_classes=1000)
        return CifarResNet(int(name[len("resnet"):]))


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_builtin_models_declare_what_the_analysis_needs(name):
    info = model_info(name)
    assert info.mean is not None and len(info.mean) == len(info.std) == 3
    net = _network_on_meta(name)
    assert info.gradcam_layer is not None and isinstance(net.get_submodule(info.gradcam_layer), nn.Module)
    if info.cam_head is not None:
        assert isinstance(net.get_submodule(info.cam_head), nn.Linear)
    expected_head = {"vgg19": None, "vit_b_16": None, "resnet50": "fc", "efficientnet_lite0": "_fc",
                     "efficientnet_lite1": "_fc"}.get(name, "linear")
    assert info.cam_head == expected_head
    if name == "vit_b_16":
        assert (info.gradcam_layer, info.token_grid, info.prefix_tokens) == ("encoder.layers.encoder_layer_11.ln_1", (14, 14), 1)


def test_built_model_carries_exact_info(resnet20_weights, shared_data):
    gse = create_model("resnet20", weights=resnet20_weights)
    assert gse.info.mean == (0.5, 0.5, 0.5) and gse.info.cam_head == "linear" and gse.info.gradcam_layer == "layer3"
    akamaster = create_model("resnet20", weights=shared_data / "models" / "resnet20_cifar10_akamaster.th")
    assert akamaster.info.mean == pytest.approx((0.485, 0.456, 0.406))  # the statistics in use, detected from the file
    assert create_model("resnet32", weights="random", num_classes=4).info.num_classes == 4
    lite = create_model("efficientnet_lite0", weights="random")
    assert (lite.info.gradcam_layer, lite.info.gradcam_capture, lite.info.input_size) == ("_avg_pooling", "input", (3, 224, 224))


def test_model_info_validation():
    with pytest.raises(ValueError, match=r"input_size must be \(C, H, W\)"):
        ModelInfo("x", input_size=(32, 32))
    with pytest.raises(ValueError, match="mean and ModelInfo.std must be given together"):
        ModelInfo("x", mean=(0.5,))
    with pytest.raises(ValueError, match="std must be strictly positive"):
        ModelInfo("x", mean=(0.5,), std=(0.0,))
    with pytest.raises(ValueError, match="gradcam_capture must be one of"):
        ModelInfo("x", gradcam_capture="middle")
    with pytest.raises(ValueError, match="cam_head needs gradcam_layer"):
        ModelInfo("x", cam_head="fc")
    with pytest.raises(ValueError, match=r"token_grid must be \(h, w\)"):
        ModelInfo("x", token_grid=(14,))
    info = ModelInfo("x", input_size=[3, 8, 8], mean=[0.5], std=[0.5], token_grid=[2, 2])
    assert (info.input_size, info.mean, info.token_grid, info.normalization) == ((3, 8, 8), (0.5,), (2, 2), ((0.5,), (0.5,)))


def test_register_model_with_info_fields(scratch_registry):
    info = register_model("tiny2", lambda weights: nn.Linear(2, 2), input_size=(1, 1, 2), num_classes=2,
                          description="", cam_head="0", gradcam_layer="0")
    assert (info.cam_head, info.gradcam_layer) == ("0", "0")
    with pytest.raises(ValueError, match="must not contain ':'"):
        register_model("my:net", lambda weights: nn.Identity(), input_size=(3, 2, 2), num_classes=1, description="")
