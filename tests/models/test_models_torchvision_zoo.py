import urllib.error
import warnings

import pytest
import torch
import torchvision

from gse_explain.models import IMAGENET_STATS, UNIT_RANGE, NormalizedModel, create_model, resnet50, vgg19, vit_b_16
from gse_explain.models.cifar_resnet import CifarResNet


@pytest.fixture(scope="module")
def resnet50_state():
    """A random ResNet-50 state_dict standing in for pretrained weights."""
    torch.manual_seed(0)
    return torchvision.models.resnet50(weights=None).state_dict()


@pytest.fixture
def offline(monkeypatch):
    """Make every torchvision weight download fail like it does without network."""

    def refuse(url, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", refuse)


def test_build_all_with_random_weights():
    for name, size in (("resnet50", 64), ("vgg19", 64), ("vit_b_16", 224)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # weights="random" is explicit: no warning
            model = create_model(name, weights="random")
        assert isinstance(model, NormalizedModel) and not model.training
        assert torch.allclose(model.mean.flatten(), torch.tensor(IMAGENET_STATS[0]))
        with torch.no_grad():
            assert model(torch.rand(1, 3, size, size)).shape == (1, 1000), name


def test_weights_none_warns():
    with pytest.warns(UserWarning, match="resnet50 is randomly initialised"):
        model = resnet50(None)
    assert isinstance(model.model, torchvision.models.ResNet)


def test_unit_normalization_option():
    model = create_model("resnet50", weights="random", normalization="unit")
    assert torch.allclose(model.mean.flatten(), torch.tensor(UNIT_RANGE[0]))
    assert torch.allclose(model.std.flatten(), torch.tensor(UNIT_RANGE[1]))


def test_local_weights_file(tmp_path, resnet50_state):
    path = tmp_path / "resnet50.pth"
    torch.save({"state_dict": resnet50_state, "epoch": 90}, path)
    model = create_model("resnet50", weights=str(path))
    for key, value in model.model.state_dict().items():
        assert torch.equal(value, resnet50_state[key]), key
    # Loaded weights really drive the output: the model matches a torchvision net built from the same state.
    reference = torchvision.models.resnet50(weights=None)
    reference.load_state_dict(resnet50_state)
    x = torch.rand(2, 3, 64, 64)
    mean, std = (torch.tensor(s).view(1, 3, 1, 1) for s in IMAGENET_STATS)
    with torch.no_grad():
        assert torch.allclose(model(x), reference.eval()((x - mean) / std), atol=1e-5)


def test_default_offline_says_to_pass_a_local_file(offline):
    with pytest.raises(RuntimeError, match="pass a local weights file path"):
        create_model("resnet50", weights="DEFAULT")
    with pytest.raises(RuntimeError, match="vgg19"):
        vgg19("DEFAULT")


def test_default_uses_torchvision_weights_when_available(monkeypatch, resnet50_state):
    """With the download (or hub cache) working, "DEFAULT" loads torchvision's IMAGENET1K weights."""
    requested = []

    def fake_download(url, *args, **kwargs):
        requested.append(url)
        return resnet50_state

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", fake_download)
    model = resnet50("DEFAULT")
    assert requested == [torchvision.models.ResNet50_Weights.DEFAULT.url]
    assert torch.equal(model.model.fc.weight, resnet50_state["fc.weight"])


def test_default_with_other_num_classes_is_refused(offline):
    with pytest.raises(ValueError, match="num_classes=10"):
        vit_b_16("DEFAULT", num_classes=10)


def test_missing_and_mismatched_files(tmp_path):
    missing = tmp_path / "resnet50.pth"
    with pytest.raises(FileNotFoundError, match="resnet50.pth' not found"):
        create_model("resnet50", weights=missing)
    cifar = tmp_path / "cifar.pt"
    torch.save(CifarResNet(20).state_dict(), cifar)
    with pytest.raises(ValueError, match=r"cifar\.pt' does not match torchvision resnet50"):
        create_model("resnet50", weights=cifar)


def test_kwargs_reach_the_builder():
    model = create_model("resnet50", weights="random", num_classes=7)
    assert model.model.fc.out_features == 7
