"""The panel functions reject what would draw a plausible but wrong picture: NaN/inf values, uint8 images
(clipped to white), channels-last batches, wrong dimensions and mismatched shapes.

``CASES`` is a plain list (entry point, case, thunk, exception type, message fragment)."""

import numpy as np
import pytest
import torch

from gse_explain.plotting import (
    perturbation_rgb,
    plot_examples,
    show_cam,
    show_clusters,
    show_image,
    show_mask,
    show_perturbation,
)

N, C, H, W = 2, 3, 8, 8


def _rand(shape):
    return torch.rand(shape, generator=torch.Generator().manual_seed(0))


def _with(tensor, index, value):
    tensor = tensor.clone()
    tensor[index] = value
    return tensor


CLEAN = _rand((N, C, H, W))
ADV = _with(CLEAN, (slice(None), slice(None), 1, 1), 1.0)
CAMS = _rand((N, H, W))
DELTA = ADV[0] - CLEAN[0]
NAN = float("nan")
INF = float("inf")

CASES = [
    ("plot_examples", "NaN in clean", lambda: plot_examples(_with(CLEAN, (1, 0, 2, 2), NAN), ADV),
     ValueError, r"clean contains NaN or inf values \(first at row 1"),
    ("plot_examples", "inf in adversarial", lambda: plot_examples(CLEAN, _with(ADV, (0, 1, 3, 3), INF)),
     ValueError, r"adversarial contains NaN or inf values \(first at row 0"),
    ("plot_examples", "NaN in cams", lambda: plot_examples(CLEAN, ADV, _with(CAMS, (1, 0, 0), NAN)),
     ValueError, r"cams contains NaN or inf values \(first at row 1"),
    ("plot_examples", "channels-last tensors (2, 8, 8, 3)",
     lambda: plot_examples(CLEAN.permute(0, 2, 3, 1), ADV.permute(0, 2, 3, 1)),
     ValueError, r"clean has shape \(2, 8, 8, 3\), which looks channels-last.*clean\.permute\(0, 3, 1, 2\)"),
    ("plot_examples", "channels-last numpy (2, 8, 8, 3)",
     lambda: plot_examples(CLEAN.permute(0, 2, 3, 1).numpy(), ADV.permute(0, 2, 3, 1).numpy()),
     ValueError, r"looks channels-last.*np\.transpose\(clean, \(0, 3, 1, 2\)\)"),
    ("plot_examples", "uint8 images", lambda: plot_examples((CLEAN * 255).to(torch.uint8), (ADV * 255).to(torch.uint8)),
     TypeError, r"clean must be a floating-point tensor.*uint8"),
    ("plot_examples", "one image (3, 8, 8) per argument", lambda: plot_examples(CLEAN[0], ADV[0]),
     ValueError, r"clean must have shape \(B, C, H, W\).*clean\[None\]"),
    ("plot_examples", "batch sizes 2 and 1", lambda: plot_examples(CLEAN, ADV[:1]), ValueError, "equal shapes"),
    ("plot_examples", "cams (N, 1, H, W)", lambda: plot_examples(CLEAN, ADV, CAMS[:, None]),
     ValueError, r"cams must be a \(B, H, W\) map.*cams\[:, 0\]"),
    ("show_image", "NaN in image", lambda: show_image(_with(CLEAN[0], (0, 1, 2), NAN)),
     ValueError, r"image contains NaN or inf values \(first at index \(0, 1, 2\)\)"),
    ("show_image", "uint8 image (H, W, C)", lambda: show_image(np.full((H, W, C), 200, dtype=np.uint8)),
     TypeError, r"image must be a floating-point array.*uint8.*/ 255"),
    ("show_image", "a (1, 3, 8, 8) batch", lambda: show_image(CLEAN[:1]), ValueError, r"one image.*image\[0\]"),
    ("show_perturbation", "inf in delta", lambda: show_perturbation(_with(DELTA, (2, 0, 0), INF)),
     ValueError, r"delta contains NaN or inf values \(first at index \(2, 0, 0\)\)"),
    ("perturbation_rgb", "NaN in delta", lambda: perturbation_rgb(_with(DELTA, (0, 4, 4), NAN)),
     ValueError, r"delta contains NaN or inf values"),
    ("perturbation_rgb", "integer delta", lambda: perturbation_rgb(np.zeros((C, H, W), dtype=np.int64)),
     TypeError, r"delta must be a floating-point array"),
    ("show_mask", "NaN in delta", lambda: show_mask(_with(DELTA, (0, 4, 4), NAN)), ValueError, r"delta contains NaN or inf"),
    ("show_clusters", "inf in delta", lambda: show_clusters(_with(DELTA, (1, 0, 7), -INF)), ValueError, r"delta contains NaN or inf"),
    ("show_cam", "NaN in cam", lambda: show_cam(CLEAN[0], _with(CAMS[0], (3, 3), NAN)),
     ValueError, r"cam contains NaN or inf values \(first at index \(3, 3\)\)"),
    ("show_cam", "NaN in image", lambda: show_cam(_with(CLEAN[0], (0, 0, 0), NAN), CAMS[0]), ValueError, r"image contains NaN"),
    ("show_cam", "cam (1, H, W)", lambda: show_cam(CLEAN[0], CAMS[:1]), ValueError, r"cam must be one \(H, W\) map"),
]


@pytest.mark.parametrize(("call", "error", "fragment"), [pytest.param(c[2], c[3], c[4], id=f"{c[0]}: {c[1]}") for c in CASES])
def test_bad_input_is_a_clear_error(call, error, fragment):
    with pytest.raises(error, match=fragment):
        call()


def test_valid_inputs_still_draw_the_same_pictures():
    # single images in both layouts, float64 numpy arrays and 2-D gray images are still accepted
    _, ax = show_image(CLEAN[0].permute(1, 2, 0).double().numpy())
    assert np.allclose(np.asarray(ax.images[0].get_array()), CLEAN[0].permute(1, 2, 0).numpy())
    _, ax = show_image(CLEAN[0, 0].numpy())
    assert ax.images[0].get_array().shape == (H, W)
    rgb = perturbation_rgb(DELTA)
    assert rgb.shape == (H, W, C) and np.isfinite(rgb).all() and rgb.min() >= 0 and rgb.max() <= 1
    _, axes = plot_examples(CLEAN.numpy(), ADV.numpy(), CAMS.numpy())
    assert axes.shape == (N, 6)
    tiny = torch.rand(1, 3, 3, 3)  # a 3 × 3 RGB image: ambiguous layout, read as (N, C, H, W)
    _, axes = plot_examples(tiny, tiny.flip(1), panels=["original", "mask"])
    assert axes.shape == (1, 2)
