"""Every array entry point of the analysis layer rejects bad input with a message naming the problem: NaN/inf
values, channels-last layouts, wrong dimensions, non-float dtypes, mismatched batches and shapes, and models
whose logits or gradients are not finite (instead of returning NaN maps or silently wrong numbers).

``CASES`` is a plain list (entry point, case, thunk, exception type, message fragment) so that it can also
be run outside pytest."""

import numpy as np
import pytest
import torch
from torch import nn

from gse_explain.analysis import (
    ClassActivationMap,
    GradCAM,
    adversarial_saliency_map,
    cam_alignment,
    class_activation_maps,
    cluster_table,
    interpretability_score,
    perturbation_clusters,
    saliency_mask,
    saliency_threshold,
    top_cam_region,
    upsample_and_normalize,
)
from gse_explain.models import wrap_model

B, C, H, W = 2, 3, 8, 8


class _NaNGradient(torch.autograd.Function):
    """Identity forward; the backward pass puts NaN into the gradient of the rows marked ``faulty``."""

    @staticmethod
    def forward(ctx, x, faulty):
        ctx.faulty = faulty
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        grad[ctx.faulty] = float("nan")
        return grad, None


class _Net(nn.Module):
    """Conv + ReLU + GAP + linear (CAM and Grad-CAM apply); optionally NaN logits or NaN gradients in row 1."""

    def __init__(self, fault: str | None = None):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(C, 4, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(4, 3)
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator))
        self.fault = fault

    def forward(self, x):
        faulty = x.detach().flatten(1)[:, 0] == 1.0  # the fault follows the image, not its row in a chunk
        if self.fault == "input_gradient":
            x = _NaNGradient.apply(x, faulty)
        features = torch.relu(self.conv(x))
        if self.fault == "feature_gradient":
            features = _NaNGradient.apply(features, faulty)
        logits = self.linear(self.pool(features).flatten(1))
        if self.fault == "logits":
            logits = logits.clone()
            logits[1, 0] = float("nan")
        return logits


def model(fault=None):
    """The [0, 1] → 'unit'-normalised 3-channel model (the normalisation tells the channel count)."""
    return wrap_model(_Net(fault), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)).eval()


def images(shape=(B, C, H, W), dtype=torch.float32):
    return torch.rand(shape, generator=torch.Generator().manual_seed(1)).to(dtype)


def with_value(tensor, index, value):
    tensor = tensor.clone()
    tensor[index] = value
    return tensor


FAULTY_ROW1 = with_value(images(), (1, 0, 0, 0), 1.0)  # _Net's gradient fault trigger (1.0 stays 1.0 after 'unit')
NAN_ROW1 = with_value(images(), (1, 0, 2, 3), float("nan"))
INF_ROW1 = with_value(images(), (1, 2, 0, 0), float("inf"))
CHANNELS_LAST = images((B, H, W, C))
DELTA = images() - 0.5
CAM = images((B, H, W))
NAN_CAM = with_value(CAM, (1, 4, 4), float("nan"))
LABELS, TARGETS = torch.tensor([0, 1]), torch.tensor([1, 2])
NAN_DELTA_FRAGMENT = r"delta contains NaN or inf values \(first at row 1"
CHANNELS_LAST_FRAGMENT = r"looks channels-last \(B, H, W, C\).*permute\(0, 3, 1, 2\)"
NUMPY_CHANNELS_LAST_FRAGMENT = r"looks channels-last.*np\.transpose\(images, \(0, 3, 1, 2\)\)"

ASM = adversarial_saliency_map
CAMF = class_activation_maps

CASES = [
    # adversarial_saliency_map
    ("adversarial_saliency_map", "NaN in images", lambda: ASM(model(), NAN_ROW1, LABELS, TARGETS),
     ValueError, r"images contains NaN or inf values \(first at row 1"),
    ("adversarial_saliency_map", "inf in images", lambda: ASM(model(), INF_ROW1, LABELS, TARGETS),
     ValueError, r"images contains NaN or inf values \(first at row 1"),
    ("adversarial_saliency_map", "channels-last tensor (2, 8, 8, 3)", lambda: ASM(model(), CHANNELS_LAST, LABELS, TARGETS),
     ValueError, CHANNELS_LAST_FRAGMENT),
    ("adversarial_saliency_map", "channels-last numpy (2, 8, 8, 3)",
     lambda: ASM(model(), CHANNELS_LAST.numpy(), LABELS, TARGETS), ValueError, NUMPY_CHANNELS_LAST_FRAGMENT),
    ("adversarial_saliency_map", "(2, 4, 4, 3) tensor, 3-channel model",
     lambda: ASM(model(), images((B, 4, 4, 3)), LABELS, TARGETS), ValueError,
     r"has 4 channels.*model takes 3-channel.*looks channels-last.*permute\(0, 3, 1, 2\)"),
    ("adversarial_saliency_map", "uint8 images", lambda: ASM(model(), (images() * 255).to(torch.uint8), LABELS, TARGETS),
     TypeError, r"must be a floating-point tensor.*uint8"),
    ("adversarial_saliency_map", "one (3, 8, 8) image without batch dim", lambda: ASM(model(), images()[0], 0, 1),
     ValueError, r"shape \(B, C, H, W\).*add the batch dimension with images\[None\]"),
    ("adversarial_saliency_map", "3 labels for 2 images", lambda: ASM(model(), images(), torch.tensor([0, 1, 2]), 1),
     ValueError, r"labels must have shape \(2,\)"),
    ("adversarial_saliency_map", "model returns NaN logits in row 1", lambda: ASM(model("logits"), images(), LABELS, TARGETS),
     ValueError, r"NaN or inf logits for image rows \[1\]"),
    ("adversarial_saliency_map", "model gives NaN gradients in row 1",
     lambda: ASM(model("input_gradient"), FAULTY_ROW1, LABELS, TARGETS), ValueError,
     r"NaN or inf gradients ∂Z_t/∂x for image rows \[1\]"),
    ("adversarial_saliency_map", "NaN gradients in row 1, second chunk",
     lambda: ASM(model("input_gradient"), with_value(images((4, C, H, W)), (3, 0, 0, 0), 1.0), 0, 1, batch_size=2), ValueError,
     r"for image rows \[3\]"),
    # interpretability_score, saliency_threshold, saliency_mask
    ("interpretability_score", "NaN in delta", lambda: interpretability_score(DELTA, with_value(DELTA, (1, 0, 0, 0), float("nan"))),
     ValueError, NAN_DELTA_FRAGMENT),
    ("interpretability_score", "inf in delta", lambda: interpretability_score(DELTA, with_value(DELTA, (1, 0, 0, 0), -float("inf"))),
     ValueError, NAN_DELTA_FRAGMENT),
    ("interpretability_score", "NaN in saliency", lambda: interpretability_score(with_value(DELTA, (0, 1, 1, 1), float("nan")), DELTA),
     ValueError, r"saliency contains NaN or inf values \(first at row 0"),
    ("interpretability_score", "channels-last saliency and delta",
     lambda: interpretability_score(CHANNELS_LAST, CHANNELS_LAST), ValueError, r"saliency has shape \(2, 8, 8, 3\).*channels-last"),
    ("interpretability_score", "batch sizes 2 and 1", lambda: interpretability_score(DELTA, DELTA[:1]),
     ValueError, r"saliency and delta must have the same shape; got \(2, 3, 8, 8\) and \(1, 3, 8, 8\)"),
    ("interpretability_score", "integer delta", lambda: interpretability_score(DELTA, (DELTA > 0).to(torch.int64)),
     TypeError, r"delta must be a floating-point tensor"),
    ("saliency_threshold", "NaN in saliency", lambda: saliency_threshold(NAN_ROW1, [50]),
     ValueError, r"saliency contains NaN or inf values \(first at row 1"),
    ("saliency_threshold", "channels-last numpy", lambda: saliency_threshold(CHANNELS_LAST.numpy(), [50]),
     ValueError, r"channels-last.*np\.transpose\(saliency, \(0, 3, 1, 2\)\)"),
    ("saliency_mask", "inf in saliency", lambda: saliency_mask(INF_ROW1, 50),
     ValueError, r"saliency contains NaN or inf values \(first at row 1"),
    ("saliency_mask", "(B, H, W) saliency", lambda: saliency_mask(CAM, 50), ValueError, r"saliency must have shape \(B, C, H, W\)"),
    # class activation maps
    ("class_activation_maps", "NaN in images (CAM)", lambda: CAMF(model(), NAN_ROW1, LABELS),
     ValueError, r"images contains NaN or inf values \(first at row 1"),
    ("class_activation_maps", "inf in images (Grad-CAM)", lambda: CAMF(model(), INF_ROW1, LABELS, method="gradcam"),
     ValueError, r"images contains NaN or inf values \(first at row 1"),
    ("class_activation_maps", "channels-last tensor", lambda: CAMF(model(), CHANNELS_LAST, LABELS), ValueError, CHANNELS_LAST_FRAGMENT),
    ("class_activation_maps", "model returns NaN logits in row 1", lambda: CAMF(model("logits"), images(), LABELS),
     ValueError, r"NaN or inf logits for image rows \[1\]"),
    ("ClassActivationMap", "channels-last numpy", lambda: ClassActivationMap(model())(CHANNELS_LAST.numpy(), LABELS),
     ValueError, NUMPY_CHANNELS_LAST_FRAGMENT),
    ("ClassActivationMap.raw_maps", "uint8 images",
     lambda: ClassActivationMap(model()).raw_maps((images() * 255).to(torch.uint8), LABELS), TypeError, "floating-point"),
    ("ClassActivationMap", "5-D (1, 2, 3, 8, 8) input", lambda: ClassActivationMap(model())(images()[None], LABELS),
     ValueError, r"shape \(B, C, H, W\).*drop the extra leading dimension"),
    ("GradCAM", "NaN in images", lambda: GradCAM(model())(NAN_ROW1, LABELS),
     ValueError, r"images contains NaN or inf values \(first at row 1"),
    ("GradCAM", "channels-last tensor", lambda: GradCAM(model())(CHANNELS_LAST, LABELS), ValueError, CHANNELS_LAST_FRAGMENT),
    ("GradCAM", "NaN gradients at the target layer in row 1",
     lambda: GradCAM(model("feature_gradient"), "conv")(FAULTY_ROW1, LABELS), ValueError,
     r"NaN or inf gradients ∂Z_c/∂A at the target layer for image rows \[1\]"),
    ("GradCAM.raw_maps", "model returns NaN logits in row 1", lambda: GradCAM(model("logits")).raw_maps(images(), LABELS),
     ValueError, r"NaN or inf logits for image rows \[1\]"),
    ("upsample_and_normalize", "NaN in maps", lambda: upsample_and_normalize(NAN_CAM, (16, 16)),
     ValueError, r"maps contains NaN or inf values \(first at row 1"),
    ("upsample_and_normalize", "(B, 1, h, w) maps", lambda: upsample_and_normalize(CAM[:, None], (16, 16)),
     ValueError, r"maps must be a \(B, H, W\) map.*drop the channel dimension with maps\[:, 0\]"),
    ("upsample_and_normalize", "size (16,)", lambda: upsample_and_normalize(CAM, (16,)),
     ValueError, r"size must be the output \(H, W\), two positive ints"),
    ("upsample_and_normalize", "integer maps", lambda: upsample_and_normalize((CAM > 0.5).to(torch.int64), (16, 16)),
     TypeError, r"maps must be a floating-point tensor"),
    # clusters
    ("perturbation_clusters", "NaN in delta", lambda: perturbation_clusters(with_value(DELTA, (1, 0, 0, 0), float("nan"))),
     ValueError, NAN_DELTA_FRAGMENT),
    ("perturbation_clusters", "inf in delta", lambda: perturbation_clusters(with_value(DELTA, (1, 0, 0, 0), float("inf"))),
     ValueError, NAN_DELTA_FRAGMENT),
    ("perturbation_clusters", "channels-last numpy (1, 8, 8, 3)", lambda: perturbation_clusters(CHANNELS_LAST[:1].numpy()),
     ValueError, r"channels-last.*np\.transpose\(delta, \(0, 3, 1, 2\)\)"),
    ("perturbation_clusters", "integer delta", lambda: perturbation_clusters((DELTA > 0).to(torch.int32)),
     TypeError, r"delta must be a floating-point tensor"),
    ("cluster_table", "NaN in delta",
     lambda: cluster_table(np.zeros((B, H, W), dtype=np.int32), with_value(DELTA, (1, 0, 0, 0), float("nan"))),
     ValueError, NAN_DELTA_FRAGMENT),
    ("cluster_table", "float labels", lambda: cluster_table(np.zeros((B, H, W)), DELTA),
     TypeError, r"labels must be integer cluster labels"),
    ("cluster_table", "labels of another batch size", lambda: cluster_table(np.zeros((1, H, W), dtype=np.int32), DELTA),
     ValueError, r"labels must have shape \(B, H, W\) = \(2, 8, 8\)"),
    # alignment
    ("cam_alignment", "NaN in cam", lambda: cam_alignment(NAN_CAM, DELTA), ValueError, r"cam contains NaN or inf values \(first at row 1"),
    ("cam_alignment", "NaN in delta", lambda: cam_alignment(CAM, with_value(DELTA, (1, 0, 0, 0), float("nan"))),
     ValueError, NAN_DELTA_FRAGMENT),
    ("cam_alignment", "channels-last delta", lambda: cam_alignment(CAM, CHANNELS_LAST),
     ValueError, r"delta has shape \(2, 8, 8, 3\), which looks channels-last"),
    ("cam_alignment", "(B, 1, H, W) cam", lambda: cam_alignment(CAM[:, None], DELTA),
     ValueError, r"cam must be a \(B, H, W\) map.*cam\[:, 0\]"),
    ("cam_alignment", "cam and delta batch sizes 2 and 1", lambda: cam_alignment(CAM, DELTA[:1]),
     ValueError, "must agree in batch size and H × W"),
    ("cam_alignment", "integer cam", lambda: cam_alignment((CAM * 10).to(torch.int64), DELTA),
     TypeError, r"cam must be a floating-point tensor"),
    ("top_cam_region", "NaN in cam", lambda: top_cam_region(NAN_CAM, 20), ValueError, r"cam contains NaN or inf values \(first at row 1"),
    ("top_cam_region", "inf in cam", lambda: top_cam_region(with_value(CAM, (0, 0, 0), float("inf")), 20),
     ValueError, r"cam contains NaN or inf values \(first at row 0"),
    ("top_cam_region", "one (H, W) map", lambda: top_cam_region(CAM[0], 20),
     ValueError, r"cam must be a \(B, H, W\) map.*add the batch dimension with cam\[None\]"),
]


@pytest.mark.parametrize(("call", "error", "fragment"), [pytest.param(c[2], c[3], c[4], id=f"{c[0]}: {c[1]}") for c in CASES])
def test_bad_input_is_a_clear_error(call, error, fragment):
    with pytest.raises(error, match=fragment):
        call()


def test_channel_layout_heuristic_edge_cases():
    from gse_explain.analysis._inputs import looks_channels_last

    assert looks_channels_last((2, 32, 32, 3)) and looks_channels_last((2, 224, 224, 1)) and looks_channels_last((1, 2, 2, 4))
    assert looks_channels_last((2, 64, 48, 3))  # not square, but 64 cannot be a channel count of an image
    assert not looks_channels_last((2, 3, 32, 32)) and not looks_channels_last((2, 1, 28, 28))
    assert not looks_channels_last((2, 3, 3, 3))  # 3 × 3 RGB: ambiguous, read as (B, C, H, W)
    assert not looks_channels_last((2, 4, 4, 3))  # dim 1 is a channel count: read as (B, C, H, W)
    assert not looks_channels_last((2, 2, 5, 3))  # 2 channels of 5 × 3: ambiguous, read as (B, C, H, W)
    assert not looks_channels_last((2, 8, 8, 8)) and not looks_channels_last((2, 32, 32))


def test_valid_edge_inputs_are_still_accepted(make_linear_model):
    weight = torch.randn(3, 27, generator=torch.Generator().manual_seed(2))
    tiny = images((B, 3, 3, 3))  # 3 × 3 RGB, ambiguous layout: read as (B, C, H, W)
    saliency = adversarial_saliency_map(make_linear_model(weight), tiny, 0, 1)
    assert saliency.shape == tiny.shape and torch.isfinite(saliency).all()
    # numpy saliency maps (saliency_mask used to fail on them with AttributeError)
    mask = saliency_mask(saliency.numpy(), 50)
    assert mask.shape == tiny.shape and torch.equal(mask, saliency_mask(saliency, 50))
    # a 1-channel (B, 1, H, W) model input and float64 numpy inputs
    scores = interpretability_score(DELTA.double().numpy()[:, :1], DELTA.numpy()[:, :1], [50])
    assert scores.shape == (B, 1) and torch.isfinite(scores).all()
    maps = class_activation_maps(model(), images(), LABELS)
    assert maps.shape == (B, H, W) and torch.isfinite(maps).all()
