"""Finding a model's layers for class activation maps: the GAP + linear head (CAM), the Grad-CAM layer, and
ViT token reshaping. Used by :mod:`gse_explain.analysis.cam`.

Where the layers come from, in order:

1. the model's metadata, ``model.info`` (a :class:`~gse_explain.models.ModelInfo`, which every model built by
   :func:`~gse_explain.models.create_model` carries): ``cam_head``, ``gradcam_layer`` / ``gradcam_capture``,
   ``token_grid`` / ``prefix_tokens``;
2. for a model that declares nothing: the structure (a CIFAR ResNet, torchvision VGG / ViT, a network with an
   ``AdaptiveAvgPool2d(1)`` module and a linear layer);
3. for Grad-CAM, when that finds nothing either: probing, as torchcam does — one forward pass with a hook on
   every module, keeping the last module that ran once and output a (B, C, h, w) map with h, w > 1.
"""

from __future__ import annotations

import math
from functools import partial

import torch
import torchvision
from torch import nn

from ..models.cifar_resnet import CifarResNet
from ..models.inference import frozen_model, model_device
from ..models.info import ModelInfo
from ..models.normalization import NormalizedModel

__all__ = ["default_gradcam_layer", "find_gap_linear_head", "probe_gradcam_layer", "vit_token_reshape"]

#: What an error says when no Grad-CAM layer can be found.
LAYER_HINT = ("pass target_layer=<module or dotted name> (typically the last convolutional block), e.g. "
              "GradCAM(model, target_layer='layer4') or class_activation_maps(..., method=\"gradcam\", target_layer=...)")


def network_of(model: nn.Module) -> nn.Module:
    """The network inside a NormalizedModel wrapper (the model itself otherwise)."""
    return model.model if isinstance(model, NormalizedModel) else model


def info_of(model: nn.Module) -> ModelInfo | None:
    """The model's declared :class:`ModelInfo` (``model.info``), or None."""
    info = getattr(model, "info", None)
    return info if isinstance(info, ModelInfo) else None


def resolve_layer(model: nn.Module, layer, what: str) -> nn.Module:
    """A submodule of ``model`` given as a module or a dotted name (relative to the wrapped network or the model)."""
    if isinstance(layer, str):
        for root in (network_of(model), model):
            try:
                return root.get_submodule(layer)
            except AttributeError:
                continue
        raise ValueError(f"{what} {layer!r} is not a submodule of the model (names are relative to the network inside the wrapper)")
    if not isinstance(layer, nn.Module):
        raise TypeError(f"{what} must be an nn.Module of the model or its dotted name; got {type(layer).__name__}")
    if not any(module is layer for module in model.modules()):
        raise ValueError(f"{what} {type(layer).__name__} is not a submodule of the model")
    return layer


def _declared_layer(model: nn.Module, info: ModelInfo, field: str) -> nn.Module:
    path = getattr(info, field)
    try:
        return network_of(model).get_submodule(path)
    except AttributeError:
        raise ValueError(f"model.info.{field} = {path!r} (model {info.name!r}) is not a submodule of the network "
                         "inside the wrapper: fix the model's ModelInfo") from None


def _is_global_pool(module: nn.Module) -> bool:
    return isinstance(module, nn.AdaptiveAvgPool2d) and module.output_size in (1, (1, 1))


def find_gap_linear_head(model: nn.Module):
    """``(feature_layer, capture, linear)`` of a model ending in global average pooling + linear, or None.

    From ``model.info`` when it declares ``cam_head`` (the feature layer is its ``gradcam_layer``); otherwise from
    the structure. ``capture`` says whether the class activation features are the layer's ``"output"`` (CIFAR
    ResNet: ``layer3``) or its ``"input"`` (a pooling module such as EfficientNet's, whose input is the last
    feature map). The head is verified numerically when used.
    """
    info = info_of(model)
    if info is not None and info.cam_head is not None:
        feature = _declared_layer(model, info, "gradcam_layer")
        return feature, info.gradcam_capture, _declared_layer(model, info, "cam_head")
    net = network_of(model)
    if isinstance(net, CifarResNet):  # pools with .mean() in forward, so there is no pooling module to hook
        return net.layer3, "output", net.linear
    pools = [m for m in net.modules() if _is_global_pool(m)]
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    if not pools or not linears:
        return None
    return pools[-1], "input", linears[-1]


def vit_token_reshape(tokens: torch.Tensor, grid: tuple[int, int] | None = None, prefix_tokens: int = 1) -> torch.Tensor:
    """ViT tokens (B, prefix + h·w, D) → feature map (B, D, h, w): drop the ``prefix_tokens`` leading (class,
    distillation, register) tokens, lay the rest on the grid.

    ``grid`` defaults to the square root of the number of patch tokens (196 → 14 × 14 for ViT-B/16 at 224).
    """
    if tokens.dim() != 3:
        raise ValueError(f"ViT tokens must have shape (B, {prefix_tokens} + h*w, D); got {tuple(tokens.shape)}")
    patches = tokens[:, prefix_tokens:, :]
    count = patches.shape[1]
    if grid is None:
        side = math.isqrt(count)
        if side * side != count:
            raise ValueError(f"{count} patch tokens (after {prefix_tokens} prefix token(s)) do not form a square grid; "
                             "pass grid=(h, w)")
        grid = (side, side)
    if grid[0] * grid[1] != count:
        raise ValueError(f"grid {tuple(grid)} does not hold the {count} patch tokens (after {prefix_tokens} prefix token(s))")
    return patches.reshape(tokens.shape[0], grid[0], grid[1], tokens.shape[2]).permute(0, 3, 1, 2)


def token_reshape_of(info: ModelInfo):
    """The reshape for ``info``'s token layer (None for a layer that outputs a map)."""
    if info.token_grid is None:
        return None
    return partial(vit_token_reshape, grid=tuple(info.token_grid), prefix_tokens=info.prefix_tokens)


def default_gradcam_layer(model: nn.Module):
    """``(layer, capture, reshape)`` Grad-CAM uses when no layer is given, or None when nothing is declared or
    recognised (then :func:`probe_gradcam_layer`)."""
    info = info_of(model)
    if info is not None and info.gradcam_layer is not None:
        return _declared_layer(model, info, "gradcam_layer"), info.gradcam_capture, token_reshape_of(info)
    net = network_of(model)
    if isinstance(net, torchvision.models.VGG):
        return net.features, "output", None
    if isinstance(net, torchvision.models.VisionTransformer):
        return net.encoder.layers[-1].ln_1, "output", vit_token_reshape
    head = find_gap_linear_head(model)
    if head is not None:
        return head[0], head[1], None
    return None


def _is_feature_map(output, batch: int) -> bool:
    return (isinstance(output, torch.Tensor) and output.dim() == 4 and output.shape[0] == batch
            and output.shape[2] > 1 and output.shape[3] > 1)


def probe_gradcam_layer(model: nn.Module, input_size) -> tuple[str, nn.Module]:
    """``(dotted name, module)``: the last module of the network that ran exactly once and output a (B, C, h, w)
    map with h, w > 1, found with one forward pass on a zero image of ``input_size`` (C, H, W).

    Raises:
        ValueError: the forward pass failed, or no module outputs such a map (the message says to pass
            ``target_layer=``).
    """
    net = network_of(model)
    names = {module: name for name, module in net.named_modules() if module is not net}
    calls: dict[nn.Module, int] = {}
    finished: dict[nn.Module, int] = {}  # module -> when its (last) call completed, for map outputs

    def record(module, args, output):
        calls[module] = calls.get(module, 0) + 1
        if _is_feature_map(output, 1):
            finished[module] = sum(calls.values())  # grows by one with every completed call
        else:
            finished.pop(module, None)

    handles = [module.register_forward_hook(record) for module in names]
    sample = torch.zeros((1, *tuple(input_size)), device=model_device(model, torch.device("cpu")))
    try:
        with frozen_model(model), torch.no_grad():
            model(sample)
    except Exception as exc:  # any failure of a user model on the probe input
        raise ValueError(f"could not probe {type(net).__name__} for a Grad-CAM layer: a forward pass on a zero image "
                         f"{tuple(sample.shape)} failed ({type(exc).__name__}: {exc}); pass input_size=(C, H, W) or "
                         f"{LAYER_HINT}") from exc
    finally:
        for handle in handles:
            handle.remove()
    candidates = [m for m in finished if calls[m] == 1]
    if not candidates:
        raise ValueError(f"no Grad-CAM layer found for {type(net).__name__}: it declares none (model.info.gradcam_layer) "
                         f"and no module outputs a (B, C, h, w) feature map with h, w > 1 exactly once; {LAYER_HINT}")
    best = max(candidates, key=finished.__getitem__)
    return names[best], best
