"""ImageNet classifiers from torchvision: ResNet-50, VGG-19, ViT-B/16.

``weights`` may be a local file (the offline path), ``"DEFAULT"`` for
torchvision's own pretrained weights (downloaded, or read from the torch hub
cache), ``"random"``, or ``None`` (random with a warning).
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Union

import torchvision
from torch import nn

from ._checkpoint import PathLike, extract_state_dict, load_strict, load_weights_file
from .normalization import NormalizationSpec, NormalizedModel, resolve_normalization

IMAGENET_INPUT_SIZE = (3, 224, 224)
IMAGENET_NUM_CLASSES = 1000

_BUILDERS: dict = {
    "resnet50": torchvision.models.resnet50,
    "vgg19": torchvision.models.vgg19,
    "vit_b_16": torchvision.models.vit_b_16,
}


def _download_default(arch: str) -> dict:
    """torchvision's DEFAULT state_dict for ``arch`` (hub cache or download)."""
    enum = torchvision.models.get_model_weights(arch).DEFAULT
    try:
        return enum.get_state_dict(progress=False, check_hash=True)
    except Exception as exc:  # URLError, timeouts, hash mismatch: all mean "no usable weights"
        raise RuntimeError(
            f"could not obtain torchvision's DEFAULT weights for {arch} ({enum}: {type(exc).__name__}: {exc}). "
            f"Without network access, pass a local weights file path instead: weights='/path/to/{arch}.pth' "
            f"(a state_dict, or a checkpoint dict with a 'state_dict' or 'model' entry)"
        ) from exc


def build_torchvision(
    arch: str,
    weights: Union[PathLike, str, None] = None,
    *,
    normalization: NormalizationSpec = "imagenet",
    **kwargs: Any,
) -> NormalizedModel:
    """Build a torchvision classifier taking [0, 1] images.

    Args:
        arch: ``"resnet50"``, ``"vgg19"`` or ``"vit_b_16"``.
        weights: local file path, ``"DEFAULT"``, ``"random"`` or ``None``
            (random init with a warning).
        normalization: ``"imagenet"`` (what torchvision's weights were trained
            with), ``"unit"`` (feeds [-1, 1] like the GSE paper did), ``None``
            or an explicit ``(mean, std)``.
        **kwargs: passed to the torchvision builder (e.g. ``num_classes`` for
            a fine-tuned checkpoint).

    Returns:
        :class:`NormalizedModel` in eval mode around the torchvision network.
        Inputs (B, 3, 224, 224) in [0, 1]; ViT-B/16 accepts only 224x224.
    """
    if arch not in _BUILDERS:
        raise ValueError(f"arch={arch!r} is not supported: expected one of {sorted(_BUILDERS)}")
    builder: Callable[..., nn.Module] = _BUILDERS[arch]
    mean, std = resolve_normalization(normalization)
    # Weights are read before the (slow, for VGG-19) build so that a missing
    # file or a failed download is reported at once.
    state, source = None, None
    is_str = isinstance(weights, str)
    if weights is None:
        warnings.warn(
            f"{arch} is randomly initialised: pass weights=PATH to a local weights file or weights='DEFAULT' "
            "for torchvision's pretrained weights (or weights='random' to silence this warning)",
            UserWarning,
            stacklevel=3,
        )
    elif is_str and weights.upper() == "DEFAULT":
        if kwargs.get("num_classes", IMAGENET_NUM_CLASSES) != IMAGENET_NUM_CLASSES:
            raise ValueError(
                f"weights='DEFAULT' for {arch} has {IMAGENET_NUM_CLASSES} classes but num_classes="
                f"{kwargs['num_classes']} was requested: drop num_classes or pass a local weights file"
            )
        state, source = _download_default(arch), f"torchvision {arch} DEFAULT"
    elif not (is_str and weights.lower() == "random"):
        obj = load_weights_file(weights, hint=f"pass weights=PATH for {arch}")
        state, source = extract_state_dict(obj, weights), weights
    net = builder(weights=None, **kwargs)
    if state is not None:
        what = f"torchvision {arch}" + (f" built with {kwargs}" if kwargs else "")
        load_strict(net, state, source, what)
    return NormalizedModel(net, mean, std).eval()


def resnet50(weights=None, *, normalization: NormalizationSpec = "imagenet", **kwargs: Any) -> NormalizedModel:
    """torchvision ResNet-50 (ImageNet, 1000 classes); see :func:`build_torchvision`."""
    return build_torchvision("resnet50", weights, normalization=normalization, **kwargs)


def vgg19(weights=None, *, normalization: NormalizationSpec = "imagenet", **kwargs: Any) -> NormalizedModel:
    """torchvision VGG-19 without batch norm (ImageNet, 1000 classes); see :func:`build_torchvision`."""
    return build_torchvision("vgg19", weights, normalization=normalization, **kwargs)


def vit_b_16(weights=None, *, normalization: NormalizationSpec = "imagenet", **kwargs: Any) -> NormalizedModel:
    """torchvision ViT-B/16 (ImageNet, 1000 classes, 224x224 inputs only); see :func:`build_torchvision`."""
    return build_torchvision("vit_b_16", weights, normalization=normalization, **kwargs)
