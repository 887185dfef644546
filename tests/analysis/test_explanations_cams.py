"""The CAM family: torchcam's methods beside CAM and Grad-CAM (shapes, ranges, batching, seeding, layers from the
model's metadata), bicubic upsampling by default with bilinear as an option, CAMs as IS explanations."""

import pytest
import torch

from gse_explain.analysis import ClassActivationMap, GradCAM, class_activation_maps, upsample_and_normalize
from gse_explain.analysis.explanations import CAM_METHODS, explain
from gse_explain.analysis.explanations.cams import torchcam_raw_maps
from gse_explain.models import create_model


@pytest.fixture(scope="module")
def images_and_labels(cifar_correct):
    images, labels = cifar_correct
    return images[:3], labels[:3]


@pytest.mark.parametrize("method", CAM_METHODS)
def test_every_method_gives_normalised_maps_batch_by_batch(method, resnet20, images_and_labels):
    images, labels = images_and_labels
    before = images.clone()
    state = torch.get_rng_state()
    maps = class_activation_maps(resnet20, images, labels, method=method, batch_size=2)
    assert maps.shape == (3, 32, 32) and maps.dtype == torch.float32
    assert float(maps.min()) == 0.0 and float(maps.max()) == 1.0  # per-image min-max
    assert torch.equal(images, before) and torch.equal(state, torch.get_rng_state())
    whole = class_activation_maps(resnet20, images, labels, method=method)
    torch.testing.assert_close(maps, whole, rtol=1e-4, atol=1e-4)


def test_model_state_is_restored_and_layer_comes_from_metadata(resnet20, images_and_labels):
    images, labels = images_and_labels
    resnet20.train()
    flags = [p.requires_grad for p in resnet20.parameters()]
    try:
        class_activation_maps(resnet20, images, labels, method="gradcam++")
        assert resnet20.training and [p.requires_grad for p in resnet20.parameters()] == flags
    finally:
        resnet20.eval()
    assert not resnet20.model.layer3._forward_hooks  # torchcam's hooks are removed
    # The default layer is the declared one (model.info.gradcam_layer = "layer3").
    explicit = class_activation_maps(resnet20, images, labels, method="layercam", target_layer="layer3")
    torch.testing.assert_close(explicit, class_activation_maps(resnet20, images, labels, method="layercam"))


def test_xgradcam_and_layercam_known_answers_on_a_gap_linear_head(images_and_labels, resnet20):
    """With logits = W · mean_hw(A), ∂Z_c/∂A_k(i, j) = W[c, k] / hw everywhere, so XGradCAM = ReLU(Σ_k W[c, k] A_k) / hw
    (ReLU of the CAM) and LayerCAM = ReLU(Σ_k ReLU(W[c, k]) A_k) / hw."""
    images, labels = images_and_labels
    features = {}
    handle = resnet20.model.layer3.register_forward_hook(lambda m, a, out: features.__setitem__("a", out.detach()))
    with torch.no_grad():
        resnet20(images)
    handle.remove()
    weight, hw = resnet20.model.linear.weight[labels], 8 * 8
    xgrad = torch.relu(torch.einsum("bk,bkhw->bhw", weight, features["a"])) / hw
    layer = torch.relu(torch.einsum("bk,bkhw->bhw", weight.clamp_min(0), features["a"])) / hw
    torch.testing.assert_close(torchcam_raw_maps(resnet20, images, labels, "xgradcam"), xgrad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(torchcam_raw_maps(resnet20, images, labels, "layercam"), layer, rtol=1e-4, atol=1e-6)


def test_bicubic_is_the_default_and_bilinear_an_option(resnet20, images_and_labels):
    images, labels = images_and_labels
    raw = ClassActivationMap(resnet20).raw_maps(images, labels)
    bicubic = class_activation_maps(resnet20, images, labels)
    assert torch.equal(bicubic, upsample_and_normalize(raw, (32, 32), "bicubic"))
    assert torch.equal(bicubic, class_activation_maps(resnet20, images, labels, upsample="bicubic"))
    bilinear = class_activation_maps(resnet20, images, labels, upsample="bilinear")
    assert torch.equal(bilinear, upsample_and_normalize(raw, (32, 32), "bilinear"))
    assert torch.equal(bilinear, class_activation_maps(resnet20, images, labels, interpolation="bilinear"))  # older name
    assert 0.001 < float((bicubic - bilinear).abs().mean()) < 0.1  # same map, other interpolation
    assert torch.equal(GradCAM(resnet20)(images, labels), class_activation_maps(resnet20, images, labels, method="gradcam"))
    with pytest.raises(ValueError, match="upsample must be one of \\('bicubic', 'bilinear'\\); got 'nearest'"):
        class_activation_maps(resnet20, images, labels, upsample="nearest")
    with pytest.raises(ValueError, match="method must be one of .*gradcam\\+\\+"):
        class_activation_maps(resnet20, images, labels, method="grad-cam++")


def test_efficientnet_input_capture_layer_and_vit_tokens_are_handled():
    model = create_model("efficientnet_lite0", weights="random")  # gradcam_layer is the pooling module's *input*
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    maps = class_activation_maps(model, images, [3], method="xgradcam")
    assert maps.shape == (1, 64, 64) and 0.0 <= float(maps.min()) <= float(maps.max()) <= 1.0
    vit = create_model("vit_b_16", weights="random")
    with pytest.raises(ValueError, match="yields tokens .*use method='gradcam'"):
        class_activation_maps(vit, torch.rand(1, 3, 224, 224), [0], method="gradcam++")


def test_cams_as_explanations_are_broadcast_over_channels(resnet20, images_and_labels):
    images, labels = images_and_labels
    maps = explain("gradcam++", resnet20, images, labels)
    assert maps.shape == images.shape
    assert torch.equal(maps[:, 0], maps[:, 2])
    torch.testing.assert_close(maps[:, 0], class_activation_maps(resnet20, images, labels, method="gradcam++"))
