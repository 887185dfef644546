"""Input normalisation as part of the model.

Every model in ``gse_explain`` takes images as float tensors in [0, 1]; the
per-channel affine map a network was trained with is applied inside the model
by :class:`NormalizedModel`. Attacks, perturbation budgets and the
explainability layer therefore all work in the same [0, 1] pixel space, no
matter whether the underlying weights expect ImageNet statistics or [-1, 1].
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import torch
from torch import nn

from .info import ModelInfo

Stats = Tuple[Tuple[float, ...], Tuple[float, ...]]

#: Maps [0, 1] to [-1, 1] (``(x - 0.5) / 0.5``). The GSE paper feeds every
#: model, including torchvision's ImageNet models, inputs in this range.
UNIT_RANGE: Stats = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))

#: The ImageNet channel statistics torchvision's pretrained models expect.
IMAGENET_STATS: Stats = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

#: No normalisation: the wrapped model sees the [0, 1] input unchanged.
IDENTITY_STATS: Stats = ((0.0,), (1.0,))

NormalizationSpec = Union[str, None, Tuple[Sequence[float], Sequence[float]]]

_NAMED_STATS = {"unit": UNIT_RANGE, "imagenet": IMAGENET_STATS}


def resolve_normalization(spec: NormalizationSpec, arg: str = "normalization") -> Stats:
    """Turn a normalisation spec into ``(mean, std)`` tuples.

    Args:
        spec: ``"unit"`` ([0, 1] -> [-1, 1]), ``"imagenet"`` (ImageNet
            mean/std), ``None`` (identity), or an explicit ``(mean, std)``
            pair of per-channel sequences.
        arg: name of the caller's argument, used in error messages.

    Returns:
        ``(mean, std)`` as tuples of floats.
    """
    if spec is None:
        return IDENTITY_STATS
    if isinstance(spec, str):
        key = spec.lower()
        if key not in _NAMED_STATS:
            raise ValueError(
                f"{arg}={spec!r} is not a known normalisation: expected one of "
                f"{sorted(_NAMED_STATS)}, None, or a (mean, std) pair of per-channel sequences"
            )
        return _NAMED_STATS[key]
    try:
        mean, std = spec
        mean_t = tuple(float(m) for m in mean)
        std_t = tuple(float(s) for s in std)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{arg}={spec!r} is not a valid normalisation: expected 'unit', 'imagenet', "
            f"None, or a (mean, std) pair of per-channel sequences such as ((0.5,)*3, (0.5,)*3)"
        ) from exc
    return mean_t, std_t


def _channel_buffer(values: Sequence[float], arg: str) -> torch.Tensor:
    try:
        t = torch.as_tensor([float(v) for v in values], dtype=torch.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{arg} must be a sequence of per-channel floats, got {values!r}") from exc
    if t.ndim != 1 or t.numel() == 0:
        raise ValueError(f"{arg} must be a non-empty sequence of per-channel floats, got {values!r}")
    return t.view(1, -1, 1, 1)


class NormalizedModel(nn.Module):
    """A classifier that takes [0, 1] images and normalises them internally.

    ``forward(x) = model((x - mean) / std)``.

    Args:
        model: the wrapped network; it receives normalised inputs.
        mean: per-channel means (length C, or 1 to broadcast over channels).
        std: per-channel standard deviations, all > 0, same length as ``mean``.
        info: optional :class:`~gse_explain.models.ModelInfo` describing the
            model (what :func:`~gse_explain.models.create_model` attaches).

    Attributes:
        model: the wrapped network (layer paths in ``info`` are relative to it).
        mean, std: buffers of shape (1, C, 1, 1), moved with ``.to(device)``.
        info: the :class:`ModelInfo` (input size, normalisation, CAM layers),
            or None for a model that declares nothing. Not part of the state_dict.
    """

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float],
                 info: Optional[ModelInfo] = None):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if info is not None and not isinstance(info, ModelInfo):
            raise TypeError(f"info must be a ModelInfo or None, got {type(info).__name__}")
        mean_t = _channel_buffer(mean, "mean")
        std_t = _channel_buffer(std, "std")
        if mean_t.shape != std_t.shape:
            raise ValueError(
                f"mean and std must have the same number of channels, got {mean_t.shape[1]} and {std_t.shape[1]}"
            )
        if not bool((std_t > 0).all()):
            raise ValueError(f"std must be strictly positive in every channel, got {tuple(std)}")
        self.model = model
        self.register_buffer("mean", mean_t)
        self.register_buffer("std", std_t)
        self.info = info

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x of shape (B, C, H, W), float in [0, 1]. Returns the model's logits."""
        if x.ndim != 4:
            raise ValueError(f"x must have shape (B, C, H, W), got {tuple(x.shape)}")
        channels = self.mean.shape[1]
        if channels != 1 and x.shape[1] != channels:
            raise ValueError(
                f"x has {x.shape[1]} channels but the normalisation has {channels}: "
                f"pass images shaped (B, {channels}, H, W)"
            )
        # Out-of-place arithmetic: the caller's tensor (often an attack's
        # iterate with requires_grad) must not be modified.
        return self.model((x - self.mean) / self.std)

    def extra_repr(self) -> str:
        mean = tuple(round(v, 4) for v in self.mean.flatten().tolist())
        std = tuple(round(v, 4) for v in self.std.flatten().tolist())
        return f"mean={mean}, std={std}"


def wrap_model(
    module: nn.Module,
    mean: Optional[Sequence[float]] = None,
    std: Optional[Sequence[float]] = None,
    info: Optional[ModelInfo] = None,
) -> NormalizedModel:
    """Wrap any user network so it takes [0, 1] images.

    Args:
        module: a classifier mapping (B, C, H, W) to logits (B, K).
        mean, std: per-channel statistics the module expects. Both ``None``
            means the module already takes [0, 1] inputs (identity wrapper);
            a module that already is a :class:`NormalizedModel` is then
            returned unchanged (with ``info`` attached when given).
        info: optional :class:`ModelInfo` for the wrapper's ``info``.

    Returns:
        A :class:`NormalizedModel` in eval mode (``requires_grad`` untouched).
    """
    if (mean is None) != (std is None):
        raise ValueError(
            "mean and std must be given together: pass both (per-channel sequences) or neither (identity)"
        )
    if mean is None:
        if isinstance(module, NormalizedModel):
            if info is not None:
                module.info = info
            return module.eval()
        mean, std = IDENTITY_STATS
    return NormalizedModel(module, mean, std, info).eval()
