"""Finding a model's layers for class activation maps: the GAP + linear head (CAM), default Grad-CAM layers,
and ViT token reshaping. Used by :mod:`gse_explain.analysis.cam`."""

from __future__ import annotations

import math

import torch
import torchvision
from torch import nn

from ..models.cifar_resnet import CifarResNet
from ..models.normalization import NormalizedModel

__all__ = ["default_gradcam_layer", "find_gap_linear_head", "vit_token_reshape"]


def network_of(model: nn.Module) -> nn.Module:
    """The network inside a NormalizedModel wrapper (the model itself otherwise)."""
    return model.model if isinstance(model, NormalizedModel) else model


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


def _is_global_pool(module: nn.Module) -> bool:
    return isinstance(module, nn.AdaptiveAvgPool2d) and module.output_size in (1, (1, 1))


def find_gap_linear_head(model: nn.Module):
    """``(feature_layer, capture, linear)`` of a model ending in global average pooling + linear, or None.

    ``capture`` says whether the class activation features are the layer's ``"output"`` (CIFAR ResNet:
    ``layer3``) or its ``"input"`` (the ``AdaptiveAvgPool2d(1)`` module of torchvision ResNets and
    EfficientNet, whose input is the last feature map). The head is verified numerically when used.
    """
    net = network_of(model)
    if isinstance(net, CifarResNet):  # pools with .mean() in forward, so there is no pooling module to hook
        return net.layer3, "output", net.linear
    pools = [m for m in net.modules() if _is_global_pool(m)]
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    if not pools or not linears:
        return None
    return pools[-1], "input", linears[-1]


def vit_token_reshape(tokens: torch.Tensor, grid: tuple[int, int] | None = None) -> torch.Tensor:
    """ViT tokens (B, 1 + h·w, D) → feature map (B, D, h, w): drop the class token (first), lay the rest on the grid.

    ``grid`` defaults to the square root of the number of patch tokens (196 → 14 × 14 for ViT-B/16 at 224).
    """
    if tokens.dim() != 3:
        raise ValueError(f"ViT tokens must have shape (B, 1 + h*w, D); got {tuple(tokens.shape)}")
    patches = tokens[:, 1:, :]
    count = patches.shape[1]
    if grid is None:
        side = math.isqrt(count)
        if side * side != count:
            raise ValueError(f"{count} patch tokens (after the class token) do not form a square grid; pass grid=(h, w)")
        grid = (side, side)
    if grid[0] * grid[1] != count:
        raise ValueError(f"grid {grid} does not hold the {count} patch tokens")
    return patches.reshape(tokens.shape[0], grid[0], grid[1], tokens.shape[2]).permute(0, 3, 1, 2)


def default_gradcam_layer(model: nn.Module):
    """``(layer, capture, reshape)`` Grad-CAM uses when no layer is given, or None for unknown architectures."""
    net = network_of(model)
    if isinstance(net, torchvision.models.VGG):
        return net.features, "output", None
    if isinstance(net, torchvision.models.VisionTransformer):
        return net.encoder.layers[-1].ln_1, "output", vit_token_reshape
    head = find_gap_linear_head(model)
    if head is not None:
        return head[0], head[1], None
    return None
