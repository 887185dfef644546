"""Classifiers that take [0, 1] images, with a timm-like registry.

Every model returned here is a :class:`NormalizedModel`: it takes float
images (B, C, H, W) in [0, 1] and applies the normalisation its weights were
trained with internally, and carries its :class:`ModelInfo` as ``model.info``.
:func:`create_model` builds registered names, ``"timm:NAME"`` and
``"package.module:factory"``; :func:`check_model_name` validates a name
without building it.
"""

from .cifar_resnet import BasicBlock, CifarResNet, cifar_resnet
from .efficientnet import efficientnet_lite0, efficientnet_lite1
from .normalization import (
    IDENTITY_STATS,
    IMAGENET_STATS,
    UNIT_RANGE,
    NormalizedModel,
    resolve_normalization,
    wrap_model,
)
from .info import ModelInfo, declare_model_info
from .registry import check_model_name, create_model, list_models, model_info, register_model
from .torchvision_zoo import build_torchvision, resnet50, vgg19, vit_b_16

__all__ = [
    "BasicBlock",
    "CifarResNet",
    "IDENTITY_STATS",
    "IMAGENET_STATS",
    "ModelInfo",
    "NormalizedModel",
    "UNIT_RANGE",
    "build_torchvision",
    "check_model_name",
    "cifar_resnet",
    "create_model",
    "declare_model_info",
    "efficientnet_lite0",
    "efficientnet_lite1",
    "list_models",
    "model_info",
    "register_model",
    "resnet50",
    "resolve_normalization",
    "vgg19",
    "vit_b_16",
    "wrap_model",
]
