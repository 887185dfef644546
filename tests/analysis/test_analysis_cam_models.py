"""CAM / Grad-CAM on models brought by name: a timm ResNet-18 (CAM from its metadata, GAP + fc), a timm ViT
(token grid from its metadata), factory models (declared layers, or a layer found by probing), clear errors."""

from functools import partial
from pathlib import Path

import pytest
import timm  # a dependency of the package (pyproject.toml): a missing install is a failure, not a skip
import torch
import torch.nn.functional as F
from timm.data import resolve_model_data_config

from gse_explain.analysis import ClassActivationMap, GradCAM, class_activation_maps, vit_token_reshape
from gse_explain.models import create_model

MODELS_TESTS = Path(__file__).resolve().parents[1] / "models"


@pytest.fixture
def factories(monkeypatch):
    monkeypatch.syspath_prepend(str(MODELS_TESTS))
    import gse_test_factories

    return gse_test_factories


def _hook_count(module):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in module.modules())


def _by_hand_gradcam(features, head, images, classes):
    activation = features(images)
    activation.retain_grad()
    head(activation).gather(1, classes[:, None]).sum().backward()
    return F.relu((activation.grad.mean(dim=(2, 3))[:, :, None, None] * activation).sum(1)).detach()


def test_timm_resnet18_cam_from_metadata_is_the_weighted_feature_sum(tmp_path):
    torch.manual_seed(0)
    ref = timm.create_model("resnet18", pretrained=False, num_classes=10).eval()
    path = tmp_path / "resnet18_random.pth"
    torch.save({"state_dict": ref.state_dict()}, path)
    model = create_model("timm:resnet18", weights=path, num_classes=10)
    cam = ClassActivationMap(model)
    assert cam.target_layer is model.model.global_pool and cam.capture == "input" and cam.linear is model.model.fc
    images, classes = torch.rand(3, 3, 96, 96), torch.tensor([0, 7, 3])
    config = resolve_model_data_config(ref)
    mean, std = (torch.tensor(config[k]).view(1, 3, 1, 1) for k in ("mean", "std"))
    with torch.no_grad():
        features = ref.forward_features((images - mean) / std)  # (3, 512, 3, 3), the map before global pooling
    expected = torch.einsum("bk,bkhw->bhw", ref.fc.weight[classes], features)  # Σ_k W[c, k] A_k, no bias
    raw = cam.raw_maps(images, classes)
    assert raw.shape == (3, 3, 3)
    torch.testing.assert_close(raw, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(class_activation_maps(model, images, classes), cam(images, classes))  # auto → CAM
    assert _hook_count(model) == 0


def test_timm_vit_gradcam_uses_the_declared_token_grid():
    torch.manual_seed(0)
    model = create_model("timm:vit_tiny_patch16_224", weights="random", num_classes=4)
    cam = GradCAM(model)
    assert cam.target_layer is model.model.blocks[-1].norm1 and cam.probed_layer is None
    images = torch.rand(1, 3, 224, 224)
    raw = cam.raw_maps(images, 2)
    assert raw.shape == (1, 14, 14) and raw.abs().max() > 0
    explicit = GradCAM(model, "blocks.11.norm1", reshape=partial(vit_token_reshape, grid=(14, 14), prefix_tokens=1))
    torch.testing.assert_close(raw, explicit.raw_maps(images, 2))


def test_factory_model_loads_a_checkpoint_and_gradcam_probes_its_layer(factories, tmp_path):
    torch.manual_seed(0)
    reference = factories.build_tiny(num_classes=3).eval()
    path = tmp_path / "tiny.pt"
    torch.save(reference.state_dict(), path)
    model = create_model("gse_test_factories:build_tiny", weights=path, num_classes=3)
    cam = GradCAM(model, input_size=(3, 12, 12))
    assert cam.probed_layer == "features" and cam.target_layer is model.model.features
    images, classes = torch.rand(2, 3, 12, 12), torch.tensor([2, 0])
    expected = _by_hand_gradcam(reference.features, lambda a: reference.fc(a.mean(dim=(2, 3))), images, classes)
    torch.testing.assert_close(cam.raw_maps(images, classes), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="does not end in global average pooling"):
        ClassActivationMap(model)  # pools with .mean() and declares no cam_head
    maps = class_activation_maps(model, images, classes)  # auto → Grad-CAM, probed at the images' size
    torch.testing.assert_close(maps, cam(images, classes))
    assert _hook_count(model) == 0


def test_declared_factory_cam(factories):
    model = create_model("gse_test_factories:build_declared")
    images, classes = torch.rand(2, 3, 16, 16), torch.tensor([4, 1])
    with torch.no_grad():
        features = model.model.features((images - 0.5) / 0.25)
    expected = torch.einsum("bk,bkhw->bhw", model.model.fc.weight[classes], features)
    torch.testing.assert_close(ClassActivationMap(model).raw_maps(images, classes), expected, rtol=1e-5, atol=1e-6)
    assert GradCAM(model).target_layer is model.model.features and GradCAM(model).probed_layer is None


def test_probing_finds_no_feature_map(factories):
    model = create_model("gse_test_factories:build_mlp")
    with pytest.raises(ValueError, match=r"no Grad-CAM layer found for Sequential.*\(B, C, h, w\).*target_layer=.*"
                                         r"method=\"gradcam\""):
        GradCAM(model, input_size=(3, 8, 8))
    with pytest.raises(ValueError, match=r"no Grad-CAM layer found.*method=\"gradcam\", target_layer="):
        class_activation_maps(model, torch.rand(1, 3, 8, 8), 0)
    assert _hook_count(model) == 0


def test_bad_target_layer_and_bad_declared_layer(factories):
    model = create_model("gse_test_factories:build_tiny")
    with pytest.raises(ValueError, match="target_layer 'features.9' is not a submodule of the model"):
        GradCAM(model, target_layer="features.9")
    with pytest.raises(ValueError, match="target_layer 'nope' is not a submodule"):
        class_activation_maps(model, torch.rand(1, 3, 8, 8), 0, method="gradcam", target_layer="nope")
    declared = create_model("gse_test_factories:build_bad_path")
    with pytest.raises(ValueError, match=r"model\.info\.gradcam_layer = 'features\.7' .*is not a submodule.*ModelInfo"):
        GradCAM(declared)
