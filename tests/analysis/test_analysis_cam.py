"""Class activation maps: explicit Σ_k w_k A_k on the real ResNet20, Grad-CAM against a by-hand computation,
hook lifecycle, automatic layers of the torchvision/EfficientNet models, clear errors."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gse_explain.analysis import (
    ClassActivationMap,
    GradCAM,
    class_activation_maps,
    upsample_and_normalize,
    vit_token_reshape,
)
from gse_explain.models import create_model, wrap_model


def _hook_count(module):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in module.modules())


def test_cam_equals_weighted_feature_sum_on_resnet20(resnet20, cifar_correct):
    images, labels = cifar_correct[0][:4], cifar_correct[1][:4]
    net = resnet20.model
    with torch.no_grad():
        features = net.features((images - 0.5) / 0.5)  # (4, 64, 8, 8), the map before global average pooling
    expected = torch.einsum("bk,bkhw->bhw", net.linear.weight[labels], features)  # no bias
    cam = ClassActivationMap(resnet20)
    raw = cam.raw_maps(images, labels)
    assert raw.shape == (4, 8, 8)
    torch.testing.assert_close(raw, expected, rtol=1e-5, atol=1e-5)
    maps = cam(images, labels)
    assert maps.shape == (4, 32, 32) and maps.min() >= 0 and maps.max() <= 1
    torch.testing.assert_close(maps, upsample_and_normalize(expected, (32, 32)), rtol=1e-5, atol=1e-5)
    for image_map in maps:  # per-image normalisation: every map spans [0, 1]
        assert image_map.min() == 0 and image_map.max() == pytest.approx(1.0)
    # Any class per image; one image's map does not depend on the rest of the batch.
    other = cam(images, torch.tensor([1, 2, 3, 4]))
    torch.testing.assert_close(other[1:2], cam(images[1:2], 2), rtol=1e-5, atol=1e-5)
    assert _hook_count(resnet20) == 0
    torch.testing.assert_close(class_activation_maps(resnet20, images, labels), maps)


def test_hooks_are_removed_after_errors_and_context_blocks(resnet20, cifar_correct):
    images = cifar_correct[0][:2]
    cam = ClassActivationMap(resnet20)
    with pytest.raises(ValueError, match="classes must be < num_classes = 10"):
        cam(images, torch.tensor([3, 10]))  # fails after the forward pass, with the hook in place
    assert _hook_count(resnet20) == 0 and not cam.hooks_registered
    with pytest.raises(ValueError, match="channels"):
        cam(images[:, :1], 0)  # the model itself raises
    assert _hook_count(resnet20) == 0
    with pytest.raises(RuntimeError, match="inside"):
        with cam:
            assert cam.hooks_registered and _hook_count(resnet20) == 1
            cam(images, 0)
            assert cam.hooks_registered  # the block owns the hook, a call inside does not remove it
            raise RuntimeError("inside")
    assert _hook_count(resnet20) == 0 and not cam.hooks_registered


class SmallVGG(nn.Module):
    """VGG-like: conv blocks, then a flattening MLP head (no global average pooling)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                                      nn.Conv2d(8, 6, 3, padding=1), nn.ReLU(inplace=True))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(6 * 8 * 8, 16), nn.ReLU(), nn.Linear(16, 5))

    def forward(self, x):
        return self.classifier(self.features(x))


def test_gradcam_matches_by_hand_computation_and_explicit_layer():
    torch.manual_seed(0)
    model = wrap_model(SmallVGG()).eval()
    images = torch.rand(3, 3, 16, 16)
    classes = torch.tensor([0, 4, 2])
    activation = model.model.features(images)
    activation.retain_grad()
    model.model.classifier(activation).gather(1, classes[:, None]).sum().backward()
    expected = F.relu((activation.grad.mean(dim=(2, 3))[:, :, None, None] * activation).sum(1)).detach()
    model.zero_grad(set_to_none=True)
    for layer in ("features", model.model.features):
        cam = GradCAM(model, target_layer=layer)
        torch.testing.assert_close(cam.raw_maps(images, classes), expected, rtol=1e-5, atol=1e-6)
        maps = cam(images, classes)
        assert maps.shape == (3, 16, 16) and 0 <= maps.min() and maps.max() <= 1
    assert _hook_count(model) == 0
    assert all(p.grad is None for p in model.parameters())


def test_no_gap_head_is_a_clear_error_and_gradcam_probes_its_layer():
    model = wrap_model(SmallVGG()).eval()
    with pytest.raises(ValueError, match="does not end in global average pooling.*GradCAM"):
        ClassActivationMap(model)
    # Nothing declared or recognised: Grad-CAM probes for the last (B, C, h, w) map, at the images' size.
    cam = GradCAM(model, input_size=(3, 16, 16))
    assert cam.target_layer is model.model.features and cam.probed_layer == "features"
    images = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(class_activation_maps(model, images, 1), GradCAM(model, "features")(images, 1))
    with pytest.raises(ValueError, match=r"could not probe SmallVGG.*zero image \(1, 3, 224, 224\) failed.*input_size="
                                         r".*target_layer="):
        GradCAM(model)  # the flattening head only takes 16 × 16 images
    with pytest.raises(ValueError, match="'features.9' is not a submodule"):
        GradCAM(model, target_layer="features.9")
    assert _hook_count(model) == 0


def test_mismatched_shapes_are_clear_errors(resnet20, cifar_correct):
    images = cifar_correct[0][:2]
    cam = ClassActivationMap(resnet20)
    with pytest.raises(ValueError, match=r"classes must have shape \(2,\)"):
        cam(images, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match=r"images must have shape \(B, C, H, W\)"):
        cam(images[0], 1)
    wrong_head = ClassActivationMap(resnet20, feature_layer="layer2", linear="linear")
    with pytest.raises(ValueError, match="takes 64 features but the feature map has 32 channels"):
        wrong_head(images, 1)
    tokens_as_map = GradCAM(create_model("vit_b_16", weights="random"), target_layer="encoder.layers.encoder_layer_11.ln_1")
    with pytest.raises(ValueError, match=r"activation must be \(B, K, h, w\).*vit_token_reshape"):
        tokens_as_map.raw_maps(torch.rand(1, 3, 224, 224), 0)
    with pytest.raises(ValueError, match="do not form a square grid"):
        vit_token_reshape(torch.zeros(1, 1 + 15, 4))


def test_gap_models_are_found_automatically():
    torch.manual_seed(0)
    images = torch.rand(2, 3, 64, 64)
    for name in ("resnet50", "efficientnet_lite0"):  # torchvision ResNet head and EfficientNet head (pool input)
        model = create_model(name, weights="random")
        raw = ClassActivationMap(model).raw_maps(images, [1, 2])
        assert raw.shape == (2, 2, 2)
        maps = class_activation_maps(model, images, [1, 2], interpolation="bicubic")
        assert maps.shape == (2, 64, 64) and maps.min() >= 0 and maps.max() <= 1
        assert _hook_count(model) == 0


def test_vgg19_and_vit_default_layers():
    torch.manual_seed(0)
    vgg = create_model("vgg19", weights="random")
    maps = class_activation_maps(vgg, torch.rand(1, 3, 64, 64), 3)  # auto → Grad-CAM on `features`
    assert maps.shape == (1, 64, 64)
    assert GradCAM(vgg).target_layer is vgg.model.features
    vit = create_model("vit_b_16", weights="random")
    nn.init.normal_(vit.model.heads.head.weight, std=0.02)  # torchvision zero-initialises the head: no gradient
    cam = GradCAM(vit)
    assert cam.target_layer is vit.model.encoder.layers[-1].ln_1
    raw = cam.raw_maps(torch.rand(1, 3, 224, 224), 7)
    assert raw.shape == (1, 14, 14) and raw.abs().max() > 0  # 196 patch tokens on a 14 × 14 grid
    assert _hook_count(vit) == 0


def test_vit_token_reshape_layout():
    tokens = torch.arange(2 * 5 * 3, dtype=torch.float32).view(2, 5, 3)  # class token + 2 × 2 patches, D = 3
    grid = vit_token_reshape(tokens)
    assert grid.shape == (2, 3, 2, 2)
    assert torch.equal(grid[1, :, 0, 1], tokens[1, 2])  # patch 1 (row 0, column 1) is token 2
