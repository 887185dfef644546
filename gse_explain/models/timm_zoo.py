"""Any timm model by name: ``create_model("timm:NAME", weights=FILE | "random", **model_options)``.

The network is ``timm.create_model(NAME, pretrained=False, **model_options)``:
nothing is ever downloaded. Weights come from a local file (a state_dict,
a checkpoint dict with one under ``state_dict`` / ``model``, or a
``.safetensors`` file such as the ``model.safetensors`` of a timm hub repo);
``weights="random"`` keeps timm's initialisation. The model takes [0, 1]
images: the mean/std of timm's pretrained config for NAME are applied inside
the :class:`NormalizedModel` wrapper (``normalization=`` overrides them).

Its :class:`ModelInfo` (``model.info``) is derived from timm's own metadata:
``pretrained_cfg`` (mean, std, input_size, classifier), the global pooling
module (GAP + linear head -> CAM), ``feature_info`` (last feature map ->
Grad-CAM) and, for ViTs, ``patch_embed.grid_size`` / ``num_prefix_tokens``.
"""

from __future__ import annotations

import difflib
from typing import Any, Optional

import torch
from torch import nn

from ._checkpoint import extract_state_dict, load_strict, load_weights_file
from .info import ModelInfo
from .normalization import NormalizedModel, resolve_normalization

TIMM_PREFIX = "timm:"
#: The timm release the project is tested with (pyproject.toml pins it).
TIMM_VERSION = "1.0.31"
_UNSET = object()


def _timm():
    try:
        import timm
    except ImportError as exc:
        raise ImportError(f"'timm:' models need the 'timm' package: pip install timm=={TIMM_VERSION}") from exc
    return timm


def check_timm_name(arch: str) -> None:
    """ValueError unless ``arch`` (a timm model name, optionally ``name.tag``) is a model timm can build."""
    timm = _timm()
    from timm.models import get_pretrained_cfg, split_model_name_tag

    if not isinstance(arch, str) or not arch or ":" in arch or "/" in arch:
        raise ValueError(
            f"'{TIMM_PREFIX}{arch}' is not a timm model name: expected 'timm:NAME' with a name from "
            "timm.list_models() (hub names such as 'hf-hub:...' would download and are not supported)")
    base, tag = split_model_name_tag(arch)
    if not timm.is_model(base):
        close = difflib.get_close_matches(base, timm.list_models(), n=5)
        hint = f" Close matches: {', '.join(close)}." if close else ""
        raise ValueError(f"unknown timm model {arch!r} (timm {timm.__version__}).{hint} "
                         "List the names with timm.list_models('*pattern*')")
    if tag:
        try:
            get_pretrained_cfg(arch)
        except RuntimeError as exc:
            tags = [n.split(".", 1)[1] for n in timm.list_pretrained(f"{base}.*")]
            raise ValueError(f"timm model {base!r} has no pretrained config {tag!r}: known tags are {tags}") from exc


def _check_weights_arg(arch: str, weights) -> None:
    name = TIMM_PREFIX + arch
    if weights is None:
        raise ValueError(
            f"{name} needs weights=PATH to a local weights file (state_dict, checkpoint or .safetensors) or "
            "weights='random' for timm's random initialisation; nothing is downloaded")
    if isinstance(weights, str) and weights.upper() == "DEFAULT":
        raise ValueError(
            f"weights='DEFAULT' is not available for {name}: timm's pretrained weights come from the internet, "
            "which gse_explain never downloads. On a machine with internet, save them with "
            f"torch.save(timm.create_model({arch!r}, pretrained=True).state_dict(), '{arch}.pth') "
            f"(or take the hub's model.safetensors) and pass weights='{arch}.pth'")


def _build_net(arch: str, model_options: dict) -> nn.Module:
    timm = _timm()
    try:
        return timm.create_model(arch, pretrained=False, **model_options)
    except TypeError as exc:
        raise TypeError(f"timm.create_model({arch!r}) rejected the options {model_options}: {exc}") from exc


def build_timm(arch: str, weights, *, normalization: Any = _UNSET, **model_options: Any) -> NormalizedModel:
    """``timm:ARCH`` as a :class:`NormalizedModel` with ``info`` (see the module docstring).

    Args:
        arch: timm model name (``timm.list_models()``), optionally with a pretrained tag (``resnet18.a1_in1k``),
            which selects the pretrained config (normalisation) that the weights file was trained with.
        weights: a local file path or ``"random"``; ``None`` and ``"DEFAULT"`` are errors (no downloads).
        normalization: override timm's mean/std (``"imagenet"``, ``"unit"``, ``None``, ``(mean, std)``).
        **model_options: passed to ``timm.create_model`` (e.g. ``num_classes=10``).
    """
    check_timm_name(arch)
    _check_weights_arg(arch, weights)
    state = None
    if not (isinstance(weights, str) and weights.lower() == "random"):
        hint = f"pass weights=PATH for {TIMM_PREFIX}{arch}"
        state = extract_state_dict(load_weights_file(weights, hint=hint), weights)
    net = _build_net(arch, model_options)
    if state is not None:
        options = f" built with {model_options}" if model_options else ""
        load_strict(net, state, weights, f"timm {arch}{options}")
    info = timm_model_info(TIMM_PREFIX + arch, net)
    if normalization is not _UNSET:
        mean, std = resolve_normalization(normalization)
        info = info.replace(mean=mean, std=std)
    return NormalizedModel(net, info.mean, info.std, info).eval()


def timm_info_by_name(arch: str) -> ModelInfo:
    """The :class:`ModelInfo` of ``timm:ARCH`` with timm's default options, from a build on the meta device
    (no memory, no weights; on the CPU for the rare architecture that cannot be built on meta)."""
    check_timm_name(arch)
    try:
        with torch.device("meta"):
            net = _build_net(arch, {})
    except (RuntimeError, NotImplementedError):  # an architecture whose construction reads tensor values
        net = _build_net(arch, {})
    return timm_model_info(TIMM_PREFIX + arch, net)


def timm_model_info(name: str, net: nn.Module) -> ModelInfo:
    """Derive the :class:`ModelInfo` of a timm network from its pretrained config and structure."""
    from timm.data import resolve_model_data_config

    config = resolve_model_data_config(net)
    arch = name[len(TIMM_PREFIX):]
    return ModelInfo(
        name, input_size=config["input_size"], num_classes=getattr(net, "num_classes", None) or None,
        description=f"timm {arch} (pretrained config {getattr(net, 'pretrained_cfg', {}).get('tag') or 'none'})",
        mean=config["mean"], std=config["std"], **_cam_fields(net))


def _cam_fields(net: nn.Module) -> dict:
    """cam_head / gradcam_layer / gradcam_capture / token_grid / prefix_tokens of a timm network."""
    head = _gap_linear_head(net)
    if head is not None:
        pool, linear = head
        return {"cam_head": linear, "gradcam_layer": pool, "gradcam_capture": "input"}
    tokens = _vit_token_layer(net)
    if tokens is not None:
        return tokens
    layer = _last_feature_module(net)
    return {} if layer is None else {"gradcam_layer": layer}


def _submodule(net: nn.Module, path: str) -> Optional[nn.Module]:
    try:
        return net.get_submodule(path)
    except AttributeError:
        return None


def _is_global_average_pool(module: Optional[nn.Module]) -> bool:
    from timm.layers import SelectAdaptivePool2d
    from timm.layers.adaptive_avgmax_pool import FastAdaptiveAvgPool

    if not isinstance(module, SelectAdaptivePool2d):
        return False
    pool = module.pool
    if isinstance(pool, nn.AdaptiveAvgPool2d):
        return pool.output_size in (1, (1, 1))
    return isinstance(pool, FastAdaptiveAvgPool) and tuple(pool.dim) == (2, 3)


def _gap_linear_head(net: nn.Module) -> Optional[tuple[str, str]]:
    """(pool path, linear path) when the network's head is exactly global average pooling -> (dropout) -> linear.

    Accepted: a top-level ``global_pool`` followed by the top-level classifier (ResNet, EfficientNet, DenseNet),
    or timm's ``ClassifierHead`` (``head.global_pool`` -> ``head.fc``, RegNet). Heads with layers between the
    pooling and the classifier (MobileNetV3's conv_head, ConvNeXt's norm) are not GAP + linear.
    """
    from timm.layers import ClassifierHead

    classifier = getattr(net, "pretrained_cfg", {}).get("classifier")
    if not isinstance(classifier, str):
        return None  # e.g. distilled models with two heads
    linear = _submodule(net, classifier)
    if not isinstance(linear, nn.Linear) or linear.in_features != getattr(net, "num_features", None):
        return None
    if "." not in classifier and _is_global_average_pool(getattr(net, "global_pool", None)):
        return "global_pool", classifier
    parent, _, leaf = classifier.rpartition(".")
    head = _submodule(net, parent) if parent else None
    if isinstance(head, ClassifierHead) and leaf == "fc" and _is_global_average_pool(head.global_pool):
        return f"{parent}.global_pool", classifier
    return None


def _vit_token_layer(net: nn.Module) -> Optional[dict]:
    """Grad-CAM on the input of the last block's attention (its ``norm1``) of a ViT-like network, on the patch grid."""
    patch_embed = getattr(net, "patch_embed", None)
    blocks = getattr(net, "blocks", None)
    grid = getattr(patch_embed, "grid_size", None)
    prefix = getattr(net, "num_prefix_tokens", None)
    if grid is None or prefix is None or not isinstance(blocks, nn.Sequential) or not len(blocks):
        return None
    if getattr(net, "dynamic_img_size", False) or not hasattr(blocks[-1], "norm1"):
        return None  # a grid that changes with the input size cannot be declared
    return {"gradcam_layer": f"blocks.{len(blocks) - 1}.norm1", "token_grid": tuple(grid), "prefix_tokens": int(prefix)}


def _last_feature_module(net: nn.Module) -> Optional[str]:
    """timm's ``feature_info[-1]['module']`` when it names a submodule with a (B, C, h, w) output."""
    if getattr(net, "output_fmt", "NCHW") != "NCHW":
        return None  # channels-last feature maps (Swin) are not (B, C, h, w)
    info = getattr(net, "feature_info", None)
    try:
        path = info[-1]["module"]
    except (TypeError, IndexError, KeyError):
        return None
    return path if isinstance(path, str) and _submodule(net, path) is not None else None
