import warnings

import numpy as np
import pytest
import torch

from gse_explain.models import IMAGENET_STATS, UNIT_RANGE, CifarResNet, NormalizedModel, cifar_resnet, create_model
from gse_explain.models.cifar_resnet import _ShortcutA


@pytest.fixture(scope="module")
def cifar500(shared_data):
    """The 500 shared CIFAR-10 test images as (500, 3, 32, 32) in [0, 1] and their labels."""
    with np.load(shared_data / "cifar10" / "cifar10_test_0-499.npz") as npz:
        x = torch.from_numpy(npz["x"]).permute(0, 3, 1, 2).float() / 255
        y = torch.from_numpy(npz["y"]).long()
    return x, y


def accuracy(model, x, y):
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


@pytest.fixture(scope="module")
def gse_file(shared_data):
    return shared_data / "models" / "resnet20_cifar10_gse.pt"


def test_gse_resnet20_accuracy(cifar500, gse_file):
    model = create_model("resnet20", weights=gse_file)
    assert isinstance(model, NormalizedModel) and not model.training
    # The authors' weights take [-1, 1] inputs; format detection must pick that.
    assert torch.allclose(model.mean.flatten(), torch.tensor(UNIT_RANGE[0]))
    assert accuracy(model, *cifar500) == pytest.approx(0.902, abs=0.005)


def test_akamaster_resnet20_accuracy(cifar500, shared_data):
    model = create_model("resnet20", weights=shared_data / "models" / "resnet20_cifar10_akamaster.th")
    assert torch.allclose(model.mean.flatten(), torch.tensor(IMAGENET_STATS[0]))
    assert torch.allclose(model.std.flatten(), torch.tensor(IMAGENET_STATS[1]))
    assert accuracy(model, *cifar500) == pytest.approx(0.910, abs=0.005)


def test_akamaster_resnet56_accuracy(cifar500, shared_data):
    model = create_model("resnet56", weights=str(shared_data / "models" / "resnet56_cifar10_akamaster.th"))
    assert len(model.model.layer1) == 9
    assert accuracy(model, *cifar500) > 0.85


def test_normalization_override_changes_predictions(cifar500, gse_file):
    wrong = create_model("resnet20", weights=gse_file, normalization="imagenet")
    assert torch.allclose(wrong.mean.flatten(), torch.tensor(IMAGENET_STATS[0]))
    right = create_model("resnet20", weights=gse_file, normalization="unit")
    x, y = cifar500
    assert accuracy(right, x[:100], y[:100]) > accuracy(wrong, x[:100], y[:100])
    identity = create_model("resnet20", weights=gse_file, normalization=None)
    assert identity.mean.abs().sum() == 0 and torch.all(identity.std == 1)


def test_keys_match_gse_checkpoint(gse_file):
    state = torch.load(gse_file, map_location="cpu")
    assert set(CifarResNet(20).state_dict()) == set(state)
    assert all(p.numel() > 0 for p in CifarResNet(20).parameters())


@pytest.mark.parametrize("depth, blocks", [(20, 3), (32, 5), (44, 7), (56, 9)])
def test_depths_and_shapes(depth, blocks):
    net = CifarResNet(depth)
    assert [len(net.layer1), len(net.layer2), len(net.layer3)] == [blocks] * 3
    convs = sum(1 for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    assert convs + 1 == depth  # depth counts the conv layers plus the linear head
    x = torch.rand(2, 3, 32, 32)
    assert net.eval()(x).shape == (2, 10)


def test_features_and_head_reproduce_forward():
    net = CifarResNet(20).eval()
    x = torch.rand(3, 3, 32, 32)
    feats = net.features(x)
    assert feats.shape == (3, 64, 8, 8)
    # A class activation map needs exactly this decomposition: linear(mean(features)).
    assert torch.allclose(net.linear(feats.mean(dim=(2, 3))), net(x), atol=1e-5)
    assert net.linear.in_features == 64 and net.linear.out_features == 10


def test_option_a_shortcut_subsamples_and_zero_pads():
    x = torch.arange(2 * 16 * 4 * 4, dtype=torch.float32).view(2, 16, 4, 4)
    out = _ShortcutA(32)(x)
    assert out.shape == (2, 32, 2, 2)
    assert torch.equal(out[:, 8:24], x[:, :, ::2, ::2])
    assert out[:, :8].abs().sum() == 0 and out[:, 24:].abs().sum() == 0
    assert list(_ShortcutA(32).parameters()) == []


def test_invalid_depth():
    with pytest.raises(ValueError, match="6n\\+2"):
        CifarResNet(21)


def test_random_init_warns_unless_explicit():
    with pytest.warns(UserWarning, match="randomly initialised"):
        create_model("resnet20")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = create_model("resnet32", weights="random")
    assert not model.training
    assert all(p.requires_grad for p in model.parameters())


def test_default_weights_do_not_exist_for_cifar():
    with pytest.raises(ValueError, match="no downloadable DEFAULT"):
        cifar_resnet(20, "DEFAULT")


def test_missing_weights_file(tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        create_model("resnet20", weights=missing)


def test_corrupted_weights_file(tmp_path):
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"this is not a torch checkpoint" * 10)
    with pytest.raises(ValueError, match="corrupt.pt' is corrupted"):
        create_model("resnet20", weights=bad)
    truncated = tmp_path / "truncated.pt"
    torch.save(CifarResNet(20).state_dict(), truncated)
    truncated.write_bytes(truncated.read_bytes()[:2000])
    with pytest.raises(ValueError, match="truncated.pt"):
        create_model("resnet20", weights=truncated)


def test_wrong_depth_names_file_and_depths(gse_file):
    with pytest.raises(ValueError, match=r"resnet20_cifar10_gse\.pt.*ResNet20, not ResNet32"):
        create_model("resnet32", weights=gse_file)


def test_incomplete_state_dict_names_missing_keys(tmp_path):
    state = CifarResNet(20).state_dict()
    del state["linear.bias"]
    path = tmp_path / "partial.pt"
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"partial\.pt' does not match a CIFAR ResNet20.*missing keys.*linear\.bias"):
        create_model("resnet20", weights=path)


def test_wrong_num_classes(tmp_path):
    path = tmp_path / "c100.pt"
    torch.save(CifarResNet(20, num_classes=100).state_dict(), path)
    with pytest.raises(ValueError, match="10 classes"):
        create_model("resnet20", weights=path)
    model = create_model("resnet20", weights=path, num_classes=100)
    assert model(torch.rand(1, 3, 32, 32)).shape == (1, 100)


def test_checkpoint_variants_round_trip(tmp_path):
    """Plain, nested, DataParallel-prefixed and NormalizedModel state_dicts all load to the same weights."""
    source = cifar_resnet(20, "random")
    state = source.model.state_dict()
    variants = {
        "plain.pt": state,
        "nested.pt": {"model": state, "epoch": 3},
        "dp.th": {"state_dict": {f"module.{k}": v for k, v in state.items()}, "best_prec1": 90.0},
        "wrapped.pt": source.state_dict(),
    }
    x = torch.rand(2, 3, 32, 32)
    expected = source(x)
    for name, obj in variants.items():
        torch.save(obj, tmp_path / name)
        loaded = create_model("resnet20", weights=tmp_path / name, normalization="unit")
        assert torch.allclose(loaded(x), expected, atol=1e-6), name
    # Auto-detection: akamaster-style files take ImageNet statistics, plain ones [-1, 1].
    akamaster_style = create_model("resnet20", weights=tmp_path / "dp.th")
    plain = create_model("resnet20", weights=tmp_path / "plain.pt")
    assert torch.allclose(akamaster_style.mean.flatten(), torch.tensor(IMAGENET_STATS[0]))
    assert torch.allclose(plain.mean.flatten(), torch.tensor(UNIT_RANGE[0]))


def test_not_a_state_dict(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([1, 2, 3], path)
    with pytest.raises(ValueError, match="holds no state_dict"):
        create_model("resnet20", weights=path)
