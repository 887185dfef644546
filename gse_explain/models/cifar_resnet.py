"""CIFAR-10 ResNets (He et al. 2016, section 4.2) with "option A" shortcuts.

Parameter names match both checkpoints the project uses: the GSE authors'
``resnet20_cifar10_gse.pt`` (plain state_dict, inputs in [-1, 1]) and the
akamaster "Proper ResNet for CIFAR-10" ``.th`` files (``{"state_dict",
"best_prec1"}`` with a ``module.`` prefix, ImageNet mean/std inputs).
"""

from __future__ import annotations

import re
import warnings
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from ._checkpoint import PathLike, extract_state_dict, load_strict, load_weights_file
from .normalization import NormalizationSpec, NormalizedModel, resolve_normalization

CIFAR_DEPTHS = (20, 32, 44, 56, 110)
CIFAR_INPUT_SIZE = (3, 32, 32)


class _ShortcutA(nn.Module):
    """Parameter-free shortcut: stride-2 subsampling plus zero channel padding.

    Having no parameters is what makes the checkpoints' key sets line up, so
    this must not become a 1x1 convolution ("option B").
    """

    def __init__(self, planes: int):
        super().__init__()
        self.pad = planes // 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus shortcut, then ReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if stride != 1 or in_planes != planes:
            self.shortcut: nn.Module = _ShortcutA(planes)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet of depth 6n+2 for 32x32 inputs.

    Args:
        depth: 20, 32, 44, 56, 110 or any 6n+2 with n >= 1.
        num_classes: size of the linear head (10 for CIFAR-10).

    ``forward`` takes *normalised* images (B, 3, 32, 32) and returns logits
    (B, num_classes); wrap it in :class:`NormalizedModel` for [0, 1] inputs.
    ``features(x)`` returns the last conv feature map (B, 64, 8, 8) before
    global average pooling; ``linear`` is the head, so a class activation map
    is ``linear.weight[c] @ features(x)``.
    """

    def __init__(self, depth: int = 20, num_classes: int = 10):
        super().__init__()
        if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6 != 0:
            raise ValueError(f"depth={depth!r} is not a CIFAR ResNet depth: expected 6n+2 (e.g. {CIFAR_DEPTHS})")
        n = (depth - 2) // 6
        self.depth = depth
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = self._make_stage(16, 16, n, stride=1)
        self.layer2 = self._make_stage(16, 32, n, stride=2)
        self.layer3 = self._make_stage(32, 64, n, stride=2)
        self.linear = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    @staticmethod
    def _make_stage(in_planes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers = [BasicBlock(in_planes, planes, stride)]
        layers += [BasicBlock(planes, planes, 1) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised images -> (B, 64, H/4, W/4) map after ``layer3``."""
        out = F.relu(self.bn1(self.conv1(x)))
        return self.layer3(self.layer2(self.layer1(out)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.features(x).mean(dim=(2, 3))
        return self.linear(pooled)


def _depth_of_state_dict(state_dict) -> Optional[int]:
    """The 6n+2 depth a CIFAR ResNet state_dict was saved from, if recognisable."""
    blocks = {int(m.group(1)) for k in state_dict if (m := re.match(r"layer1\.(\d+)\.", k))}
    return 6 * (max(blocks) + 1) + 2 if blocks else None


def detect_checkpoint_format(obj: object) -> str:
    """Which family a loaded CIFAR checkpoint comes from.

    ``"akamaster"``: a ``{"state_dict", "best_prec1"}`` training checkpoint,
    or a nested state_dict saved from ``nn.DataParallel`` (``module.`` keys),
    which is how those files are written. ``"gse"``: anything else, e.g. the
    GSE authors' plain state_dict.
    """
    if isinstance(obj, dict):
        if "best_prec1" in obj:
            return "akamaster"
        inner = obj.get("state_dict")
        if isinstance(inner, dict) and inner and all(str(k).startswith("module.") for k in inner):
            return "akamaster"
    return "gse"


# Input convention each known checkpoint family was trained with.
_FORMAT_NORMALIZATION = {"gse": "unit", "akamaster": "imagenet"}


def cifar_resnet(
    depth: int,
    weights: Union[PathLike, str, None] = None,
    *,
    normalization: Union[NormalizationSpec, str] = "auto",
    num_classes: int = 10,
) -> NormalizedModel:
    """Build a CIFAR ResNet taking [0, 1] images of shape (B, 3, 32, 32).

    Args:
        depth: 6n+2 (20, 32, 44, 56, ...).
        weights: path to a checkpoint (GSE plain state_dict or akamaster
            ``.th``), ``"random"`` for an explicitly random network, or
            ``None`` (random as well, with a warning since CIFAR ResNets have
            no downloadable default weights).
        normalization: ``"auto"`` (from the file: GSE -> ``"unit"``,
            akamaster -> ``"imagenet"``; random -> ``"unit"``), or an explicit
            ``"unit"`` / ``"imagenet"`` / ``None`` / ``(mean, std)``.
        num_classes: head size; must match the checkpoint.

    Returns:
        :class:`NormalizedModel` in eval mode; ``.model`` is the
        :class:`CifarResNet`.
    """
    net = CifarResNet(depth, num_classes)
    fmt = None
    if weights is None or (isinstance(weights, str) and weights.lower() == "random"):
        if weights is None:
            warnings.warn(
                f"resnet{depth} is randomly initialised: pass weights=PATH to a CIFAR-10 checkpoint "
                "(or weights='random' to silence this warning)",
                UserWarning,
                stacklevel=3,
            )
    elif isinstance(weights, str) and weights.upper() == "DEFAULT":
        raise ValueError(
            f"resnet{depth} has no downloadable DEFAULT weights: pass weights=PATH to a checkpoint "
            "such as resnet20_cifar10_gse.pt or an akamaster resnet*.th file"
        )
    else:
        obj = load_weights_file(weights, hint=f"pass weights=PATH for resnet{depth}")
        state_dict = extract_state_dict(obj, weights)
        fmt = detect_checkpoint_format(obj)
        found = _depth_of_state_dict(state_dict)
        what = f"a CIFAR ResNet{depth} with {num_classes} classes"
        if found is not None and found != depth:
            raise ValueError(
                f"weights file '{weights}' holds a CIFAR ResNet{found}, not ResNet{depth}: "
                f"use create_model('resnet{found}', weights=...) or pass depth={found}"
            )
        load_strict(net, state_dict, weights, what)

    if isinstance(normalization, str) and normalization.lower() == "auto":
        normalization = _FORMAT_NORMALIZATION.get(fmt, "unit")
    mean, std = resolve_normalization(normalization)
    return NormalizedModel(net, mean, std).eval()
