"""The CAM family: :func:`class_activation_maps` with the original CAM, our Grad-CAM and torchcam's methods, and
each of them as a (per-pixel) explanation for the interpretability score.

Methods (``method=``):

- ``"cam"``: the original CAM (Zhou et al.; :class:`~gse_explain.analysis.ClassActivationMap`), for models
  ending in global average pooling + linear; ``"gradcam"``: our Grad-CAM (:class:`~gse_explain.analysis.GradCAM`);
  ``"auto"`` (default): CAM where the model has such a head and no ``target_layer`` is given, else Grad-CAM.
- torchcam 0.5's ``"gradcam++"`` (``GradCAMpp``, Chattopadhyay et al.), ``"smoothgradcam++"``
  (``SmoothGradCAMpp``: 4 noisy copies, σ = 0.3, seeded per image, global RNGs untouched), ``"scorecam"``
  (``ScoreCAM``: one forward pass per feature channel, ``batch_size`` masked images per call), ``"layercam"``
  (``LayerCAM``) and ``"xgradcam"`` (``XGradCAM``).

The target layer comes from the model's metadata (``model.info.gradcam_layer``; see
:func:`~gse_explain.analysis.default_gradcam_layer`), else the structure, else probing, as for Grad-CAM. torchcam
hooks a layer's *output*: a declared layer whose *input* is the feature map (EfficientNet's global pooling) is
replaced by the module that produces that input, found with one forward pass. Token layers (ViT) are not
supported by the torchcam methods (use ``"gradcam"``).

Every method returns the raw (B, h, w) map (torchcam's ``normalized=False``, ReLU included where the method has
it) upsampled **bicubically** (the paper, spec §C.8; ``upsample="bilinear"`` as before) and min–max normalised
per image to [0, 1] (constant maps → 0), computed ``batch_size`` images at a time (default: all).
"""

from __future__ import annotations

import torch
from torch import nn

from ...models.inference import frozen_model, model_device
from .._inputs import check_logits, check_model_values, class_vector, image_batch
from ..cam import DEFAULT_INTERPOLATION, INTERPOLATIONS, CAMExtractor, ClassActivationMap, GradCAM, upsample_and_normalize
from ..cam_layers import default_gradcam_layer, find_gap_linear_head, network_of, probe_gradcam_layer, resolve_layer
from .registry import register_explanation, seeded_rngs

__all__ = ["CAM_METHODS", "TORCHCAM_METHODS", "class_activation_maps", "torchcam_raw_maps"]

#: torchcam class per method name, and the settings each gets.
TORCHCAM_METHODS = {"gradcam++": "GradCAMpp", "smoothgradcam++": "SmoothGradCAMpp", "scorecam": "ScoreCAM",
                    "layercam": "LayerCAM", "xgradcam": "XGradCAM"}
CAM_METHODS = ("auto", "cam", "gradcam", *TORCHCAM_METHODS)


def _feature_layer(model: nn.Module, target_layer, images: torch.Tensor) -> nn.Module:
    """The module whose output is the feature map torchcam should hook (see the module docstring)."""
    if target_layer is not None:
        return resolve_layer(model, target_layer, "target_layer")
    default = default_gradcam_layer(model)
    if default is None:
        return probe_gradcam_layer(model, tuple(images.shape[1:]))[1]
    layer, capture, reshape = default
    if reshape is not None:
        raise ValueError("torchcam's CAM methods need a (B, K, h, w) feature map, but this model's Grad-CAM layer yields "
                         "tokens (a ViT); use method='gradcam', or pass target_layer= a layer that outputs a map")
    return layer if capture == "output" else _producer_of_input(model, layer, images[:1])


def _producer_of_input(model: nn.Module, layer: nn.Module, sample: torch.Tensor) -> nn.Module:
    """The last module of the network whose output tensor is ``layer``'s first input (one forward pass)."""
    seen: dict[int, nn.Module] = {}
    wanted: list = []
    handles = [m.register_forward_hook(lambda m, a, out: seen.__setitem__(id(out), m) if isinstance(out, torch.Tensor) else None)
               for m in network_of(model).modules() if m is not layer]
    handles.append(layer.register_forward_pre_hook(lambda m, args: wanted.append(seen.get(id(args[0])))))
    try:
        with frozen_model(model), torch.no_grad():
            model(sample.detach().to(model_device(model, sample.device)))
    finally:
        for handle in handles:
            handle.remove()
    if len(wanted) != 1 or wanted[0] is None:
        raise ValueError(f"could not find the module producing the input of {type(layer).__name__} for torchcam; "
                         "pass target_layer= the last feature layer")
    return wanted[0]


def torchcam_raw_maps(model: nn.Module, images: torch.Tensor, classes, method: str, *, target_layer=None,
                      batch_size: int | None = None, seed: int = 0) -> torch.Tensor:
    """Un-normalised (B, h, w) maps of torchcam's ``method`` (a key of :data:`TORCHCAM_METHODS`)."""
    import torchcam.methods

    if method not in TORCHCAM_METHODS:
        raise ValueError(f"torchcam method must be one of {tuple(TORCHCAM_METHODS)}; got {method!r}")
    images = image_batch(images, model=model)
    classes = class_vector(classes, images.shape[0], "classes")
    layer = _feature_layer(model, target_layer, images)
    device = model_device(model, images.device)
    stochastic = method == "smoothgradcam++"
    chunk = 1 if stochastic else (batch_size or images.shape[0])
    options = {"batch_size": batch_size or 32} if method == "scorecam" else {}
    maps = []
    with frozen_model(model):
        for start in range(0, images.shape[0], chunk):
            rows = slice(start, min(start + chunk, images.shape[0]))
            extractor = getattr(torchcam.methods, TORCHCAM_METHODS[method])(model, target_layer=layer,
                                                                            input_shape=tuple(images.shape[1:]), **options)
            try:
                if stochastic:
                    with seeded_rngs(seed + start, device):
                        raw = _torchcam_chunk(model, extractor, images[rows], classes[rows], device, start)
                else:
                    raw = _torchcam_chunk(model, extractor, images[rows], classes[rows], device, start)
            finally:
                extractor.remove_hooks()
            maps.append(raw.to(images.device))
    return torch.cat(maps)


def _torchcam_chunk(model, extractor, images, classes, device, offset: int) -> torch.Tensor:
    with torch.enable_grad():
        inputs = images.detach().to(device).clone().requires_grad_(True)
        scores = model(inputs)
        check_logits(scores, inputs.shape[0], offset)
        class_vector(classes, inputs.shape[0], "classes", scores.shape[1])
        (raw,) = extractor(class_idx=[int(c) for c in classes], scores=scores, normalized=False)
    raw = raw.detach().float()
    check_model_values(raw, f"{type(extractor).__name__} maps", offset)
    return raw


def class_activation_maps(model: nn.Module, images: torch.Tensor, classes, *, method: str = "auto", target_layer=None,
                          batch_size: int | None = None, upsample: str | None = None, interpolation: str | None = None,
                          seed: int = 0) -> torch.Tensor:
    """(B, H, W) class activation maps in [0, 1] for (B, C, H, W) images in [0, 1] (see the module docstring).

    The images must be finite floats, channels first; NaN/inf, a channels-last layout or a model producing
    NaN/inf values is a ValueError.

    Args:
        classes: an int or B ints (the paper: the true labels).
        method: one of :data:`CAM_METHODS`; ``"auto"``: CAM when the model ends in global average pooling + linear
            (declared in ``model.info.cam_head`` or found) and no ``target_layer`` is given, Grad-CAM otherwise.
        target_layer: the layer (module or dotted name) for every method but ``"cam"``.
        batch_size: images per model call (default: all at once).
        upsample: ``"bicubic"`` (default, the paper's) or ``"bilinear"``; ``interpolation`` is its older name.
        seed: for ``"smoothgradcam++"`` (image b uses seed + b).
    """
    if method not in CAM_METHODS:
        raise ValueError(f"method must be one of {CAM_METHODS}; got {method!r}")
    if upsample is not None and interpolation is not None and upsample != interpolation:
        raise ValueError("pass upsample= (or its older name interpolation=), not both")
    mode = upsample or interpolation or DEFAULT_INTERPOLATION
    if mode not in INTERPOLATIONS:
        raise ValueError(f"upsample must be one of {INTERPOLATIONS}; got {mode!r}")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be an int ≥ 1 (or None for one call); got {batch_size!r}")
    images = image_batch(images, model=model)  # bad images are reported as such, before any probing
    if method in TORCHCAM_METHODS:
        raw = torchcam_raw_maps(model, images, classes, method, target_layer=target_layer, batch_size=batch_size, seed=seed)
        return upsample_and_normalize(raw, images.shape[-2:], mode)
    if method == "cam" or (method == "auto" and target_layer is None and find_gap_linear_head(model) is not None):
        if target_layer is not None:
            raise ValueError("target_layer is for Grad-CAM; ClassActivationMap takes feature_layer= and linear=")
        extractor: CAMExtractor = ClassActivationMap(model, interpolation=mode)
    else:
        extractor = GradCAM(model, target_layer, interpolation=mode, input_size=tuple(images.shape[1:]))
    classes = class_vector(classes, images.shape[0], "classes")
    chunk = batch_size or images.shape[0]
    with extractor:
        return torch.cat([extractor(images[s : s + chunk], classes[s : s + chunk]) for s in range(0, images.shape[0], chunk)])


def _register_cam(name: str, method: str) -> None:
    def cam_explanation(model, images, classes, *, batch_size):
        # explain() seeds the global RNG per row for the stochastic method; derive the torchcam seed from it.
        seed = int(torch.randint(2**31, (1,))) if method == "smoothgradcam++" else 0
        return class_activation_maps(model, images, classes, method=method, batch_size=batch_size, seed=seed)

    cam_explanation.__name__ = f"cam_{method}"
    register_explanation(name, description=f"the {method} class activation map of the class (per pixel, in [0, 1])",
                         stochastic=method == "smoothgradcam++")(cam_explanation)


for _method in ("cam", "gradcam", *TORCHCAM_METHODS):
    _register_cam(_method, _method)
