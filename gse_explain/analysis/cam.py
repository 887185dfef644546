"""Class activation maps: the original CAM (Zhou et al. 2016) and Grad-CAM (Selvaraju et al. 2017).

Both are computed on a *target layer* whose activation A (B, K, h, w) is captured by a forward hook that
exists only while a map is being computed (or inside a ``with extractor:`` block): it is removed in all
cases, also when the model raises, so an extractor never leaves hooks on a model used elsewhere (e.g. by
an attack). Grad-CAM needs ∂score/∂A; it is obtained with ``torch.autograd.grad`` on the captured
activation rather than with a module backward hook, which PyTorch rejects after in-place operations such
as torchvision's ``ReLU(inplace=True)``.

- :class:`ClassActivationMap`: for models ending in global average pooling + one linear layer (CIFAR
  ResNets, torchvision ResNet-50, EfficientNet-Lite, timm ResNets/EfficientNets): CAM_b = Σ_k W[c_b, k] · A_k,
  without the bias (as in the paper's code). The feature layer and the linear layer come from the model's
  metadata (``model.info.gradcam_layer`` / ``cam_head``, see :class:`~gse_explain.models.ModelInfo`) or, for a
  model that declares nothing, are found from its structure, through the
  :class:`~gse_explain.models.NormalizedModel` wrapper; the head is checked numerically on every call
  (logits = W · mean_hw(A) + b).
- :class:`GradCAM`: our own implementation of Grad-CAM, ReLU(Σ_k α_k A_k) with α_k the spatial mean of
  ∂Z_c/∂A_k, for any layer. Default layer: ``model.info.gradcam_layer`` (with ``token_grid`` for token layers:
  torchvision ViT ``encoder.layers[-1].ln_1``, the input of the last attention block, since the final block's
  output tokens other than the class token get no gradient; VGG ``features``; the CAM feature layer of GAP
  models); for undeclared models the same layers recognised by class, else the layer found by probing (the
  last module whose output is a (B, C, h, w) map with h, w > 1, see :func:`probe_gradcam_layer`).

Post-processing (both): the raw (B, h, w) map is upsampled **bicubically**, as the paper (spec §C.8;
``align_corners=False``; or bilinearly with ``interpolation="bilinear"``, this package's default before
the CAM family was added) to the input's H × W, then min–max normalised **per image** to [0, 1] and clamped
(bicubic overshoot). A constant map becomes all zeros. The GSE code normalises over the
whole batch (spec §C.8 [oddity]), which makes one image's map depend on the others; per-image is used here.

Classes: the paper uses the *true* label of the clean image; any class per image may be passed.

:func:`~gse_explain.analysis.class_activation_maps` (in :mod:`.explanations.cams`) chooses among these and
torchcam's CAM family.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..models.inference import frozen_model, model_device
from ._inputs import check_logits, check_model_values, class_vector, image_batch, map_batch
from .cam_layers import (
    default_gradcam_layer,
    find_gap_linear_head,
    info_of,
    network_of,
    probe_gradcam_layer,
    resolve_layer,
    vit_token_reshape,
)

__all__ = [
    "CAMExtractor",
    "ClassActivationMap",
    "GradCAM",
    "find_gap_linear_head",
    "default_gradcam_layer",
    "probe_gradcam_layer",
    "upsample_and_normalize",
    "vit_token_reshape",
]

INTERPOLATIONS = ("bicubic", "bilinear")
#: The paper's upsampling (spec §C.8).
DEFAULT_INTERPOLATION = "bicubic"


class CAMExtractor:
    """Base class: owns the hook on the target layer and the post-processing; subclasses build raw maps.

    Use it directly (hooks live only during each call) or as a context manager (hooks live for the block,
    and are removed on exit even after an error)::

        with GradCAM(model) as cam:
            maps = cam(images, labels)          # (B, H, W) in [0, 1]

    Args:
        model: classifier taking [0, 1] images (B, C, H, W) and returning logits (B, K). Run in eval mode
            without parameter gradients; its mode and ``requires_grad`` flags are restored.
        target_layer: module (or dotted name relative to the wrapped network) whose activation is used.
        capture: ``"output"`` (the layer's output) or ``"input"`` (its first positional input).
        reshape: maps the captured tensor to (B, K, h, w) (e.g. :func:`vit_token_reshape`); None for a
            tensor that already has that shape.
        interpolation: ``"bicubic"`` (default, the paper's) or ``"bilinear"`` upsampling to the input size.
    """

    needs_gradient = False

    def __init__(self, model: nn.Module, target_layer, *, capture: str = "output",
                 reshape: Callable[[torch.Tensor], torch.Tensor] | None = None, interpolation: str = DEFAULT_INTERPOLATION):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
        if capture not in ("output", "input"):
            raise ValueError(f"capture must be 'output' or 'input'; got {capture!r}")
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}; got {interpolation!r}")
        self.model = model
        self.target_layer = resolve_layer(model, target_layer, "target_layer")
        self.capture = capture
        self.reshape = reshape
        self.interpolation = interpolation
        self._handles: list = []
        self._activation: torch.Tensor | None = None
        self._calls = 0

    # -- hook lifecycle -----------------------------------------------------------------------------
    @property
    def hooks_registered(self) -> bool:
        return bool(self._handles)

    def _save(self, tensor) -> None:
        self._calls += 1
        self._activation = tensor

    def register_hooks(self) -> None:
        if self._handles:
            return
        if self.capture == "output":
            handle = self.target_layer.register_forward_hook(lambda module, args, output: self._save(output))
        else:
            handle = self.target_layer.register_forward_pre_hook(lambda module, args: self._save(args[0]))
        self._handles.append(handle)

    def remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._activation = None

    def __enter__(self) -> "CAMExtractor":
        self.register_hooks()
        return self

    def __exit__(self, *exc) -> None:
        self.remove_hooks()

    @contextlib.contextmanager
    def _hooked(self) -> Iterator[None]:
        owned = not self._handles  # inside a ``with`` block the block owns the hooks
        self.register_hooks()
        try:
            yield
        finally:
            self._activation = None  # never keep a batch's activations (and graph) alive
            if owned:
                self.remove_hooks()

    # -- computation --------------------------------------------------------------------------------
    def _build(self, activation: torch.Tensor, captured: torch.Tensor, logits: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def raw_maps(self, images: torch.Tensor, classes) -> torch.Tensor:
        """Un-normalised maps at the layer's resolution: (B, h, w) float on the images' device.

        ``images`` must be finite float (B, C, H, W) (channels-last, NaN/inf: ValueError); a model producing
        NaN/inf logits, activations or gradients is a ValueError naming the rows.
        """
        return self._raw(image_batch(images, model=self.model), classes)

    def _raw(self, images: torch.Tensor, classes) -> torch.Tensor:
        classes = class_vector(classes, images.shape[0], "classes")
        device = model_device(self.model, images.device)
        grad_mode = torch.enable_grad() if self.needs_gradient else torch.no_grad()
        with frozen_model(self.model), self._hooked(), grad_mode:
            # With frozen parameters, a grad-requiring input is what puts the activation on the graph.
            inputs = images.detach().to(device).clone().requires_grad_(self.needs_gradient)
            self._calls, self._activation = 0, None
            logits = self.model(inputs)
            check_logits(logits, images.shape[0])
            classes = class_vector(classes, images.shape[0], "classes", logits.shape[1]).to(device)
            captured, activation = self._captured(images.shape[0])
            check_model_values(activation, f"activations at the target layer {type(self.target_layer).__name__}")
            maps = self._build(activation, captured, logits, classes).detach().float()
        check_model_values(maps, "class activation maps")
        return maps.to(images.device)

    def _captured(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(the hooked tensor, its (B, K, h, w) activation) of the forward pass that just ran."""
        if self._calls != 1:
            raise ValueError(
                f"target layer {type(self.target_layer).__name__} ran {self._calls} times in one forward pass; "
                "choose a layer that runs exactly once"
            )
        captured = self._activation
        activation = self.reshape(captured) if self.reshape is not None else captured
        if not isinstance(activation, torch.Tensor) or activation.dim() != 4 or activation.shape[0] != batch:
            shape = tuple(activation.shape) if isinstance(activation, torch.Tensor) else type(activation).__name__
            raise ValueError(
                f"the target layer's activation must be (B, K, h, w) = ({batch}, K, h, w); got {shape} "
                "(pass reshape=... for token layouts, e.g. vit_token_reshape)"
            )
        return captured, activation

    def __call__(self, images: torch.Tensor, classes) -> torch.Tensor:
        """(B, H, W) maps in [0, 1] at the input's size, one per image for ``classes`` (an int or B ints).

        Input checks and errors: see :meth:`raw_maps`.
        """
        images = image_batch(images, model=self.model)
        return upsample_and_normalize(self._raw(images, classes), images.shape[-2:], self.interpolation)


class ClassActivationMap(CAMExtractor):
    """Original CAM, Σ_k W[c, k] A_k (no bias), for models ending in global average pooling + linear.

    Args:
        model: see :class:`CAMExtractor`.
        feature_layer, linear: override the automatically found feature layer (its output is used) and
            final linear layer; give both or neither.
        interpolation: ``"bicubic"`` (default) or ``"bilinear"``.

    Raises:
        ValueError: the model has no such head (use :class:`GradCAM` with a ``target_layer``).
    """

    def __init__(self, model: nn.Module, feature_layer=None, linear=None, *, interpolation: str = DEFAULT_INTERPOLATION):
        if (feature_layer is None) != (linear is None):
            raise ValueError("pass both feature_layer and linear, or neither (both are then found automatically)")
        if feature_layer is None:
            head = find_gap_linear_head(model)
            if head is None:
                raise ValueError(
                    f"{type(network_of(model)).__name__} does not end in global average pooling + a linear layer (none is "
                    "declared in model.info.cam_head or found), so the original CAM does not apply; use GradCAM(model) "
                    "(declared, default or probed layer; or target_layer=...) or pass feature_layer= and linear= explicitly"
                )
            feature_layer, capture, linear = head
        else:
            capture = "output"
        linear = resolve_layer(model, linear, "linear")
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear must be an nn.Linear; got {type(linear).__name__}")
        super().__init__(model, feature_layer, capture=capture, interpolation=interpolation)
        self.linear = linear

    def _build(self, activation, captured, logits, classes):
        weight = self.linear.weight
        if weight.shape[1] != activation.shape[1]:
            raise ValueError(
                f"the linear layer takes {weight.shape[1]} features but the feature map has {activation.shape[1]} "
                "channels: the model does not end in global average pooling + this linear layer"
            )
        pooled_logits = activation.mean(dim=(2, 3)) @ weight.t()
        if self.linear.bias is not None:
            pooled_logits = pooled_logits + self.linear.bias
        tolerance = 1e-4 * (1.0 + logits.abs().max())
        if pooled_logits.shape != logits.shape or (pooled_logits - logits).abs().max() > tolerance:
            raise ValueError(
                "the logits are not linear(global_average_pool(feature map)) for the chosen layers, so the original "
                "CAM does not apply; use GradCAM(model, target_layer=...) or pass the right feature_layer and linear"
            )
        return torch.einsum("bk,bkhw->bhw", weight[classes], activation)


class GradCAM(CAMExtractor):
    """Grad-CAM: ReLU(Σ_k α_k A_k), α_k = mean over (h, w) of ∂Z_c/∂A_k (Selvaraju et al.; our implementation).

    Args:
        model: see :class:`CAMExtractor`.
        target_layer: module or dotted name; default: :func:`default_gradcam_layer` (``model.info.gradcam_layer``
            with its token reshape; for undeclared models VGG ``features``, ViT ``encoder.layers[-1].ln_1``, the
            last feature map of GAP models), else the layer :func:`probe_gradcam_layer` finds.
        reshape: for a custom token layer, e.g. :func:`vit_token_reshape` (set automatically for declared ones).
        capture, interpolation: see :class:`CAMExtractor`.
        input_size: (C, H, W) of the zero image used for probing; default ``model.info.input_size``, else
            (C, 224, 224). Only used when probing.

    Attributes:
        probed_layer: dotted name of the probed layer, or None when the layer was given or declared.

    Raises:
        ValueError: no ``target_layer``, nothing declared or recognised, and probing finds no feature map.
    """

    needs_gradient = True

    def __init__(self, model: nn.Module, target_layer=None, *, reshape=None, capture: str = "output",
                 interpolation: str = DEFAULT_INTERPOLATION, input_size=None):
        self.probed_layer = None
        if target_layer is None:
            default = default_gradcam_layer(model)
            if default is None:
                self.probed_layer, target_layer = probe_gradcam_layer(model, _probe_size(model, input_size))
                default = (target_layer, "output", None)
            target_layer, capture, default_reshape = default
            reshape = default_reshape if reshape is None else reshape
        super().__init__(model, target_layer, capture=capture, reshape=reshape, interpolation=interpolation)

    def _build(self, activation, captured, logits, classes):
        score = logits.gather(1, classes[:, None]).sum()  # per-sample: row b depends on input b only
        (grad,) = torch.autograd.grad(score, captured)
        grad = self.reshape(grad) if self.reshape is not None else grad
        check_model_values(grad, "gradients ∂Z_c/∂A at the target layer")
        weights = grad.mean(dim=(2, 3))
        return F.relu(torch.einsum("bk,bkhw->bhw", weights, activation))


def _probe_size(model: nn.Module, input_size) -> tuple[int, ...]:
    if input_size is not None:
        return tuple(int(v) for v in input_size)
    info = info_of(model)
    if info is not None and info.input_size is not None:
        return tuple(info.input_size)
    mean = getattr(model, "mean", None)
    channels = mean.shape[1] if isinstance(mean, torch.Tensor) and mean.dim() == 4 and mean.shape[1] > 1 else 3
    return (channels, 224, 224)


def upsample_and_normalize(maps: torch.Tensor, size, interpolation: str = DEFAULT_INTERPOLATION) -> torch.Tensor:
    """(B, h, w) raw maps → (B, H, W) in [0, 1]: upsample, then per-image min–max (constant maps → 0), clamp.

    ``maps`` must be finite float (B, h, w) maps; ``size`` is (H, W), two positive ints.
    """
    maps = map_batch(maps, "maps")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}; got {interpolation!r}")
    size = _output_size(size)
    up = F.interpolate(maps[:, None].float(), size=size, mode=interpolation, align_corners=False)[:, 0]
    low = up.amin(dim=(1, 2), keepdim=True)
    span = up.amax(dim=(1, 2), keepdim=True) - low
    normalized = torch.where(span > 0, (up - low) / span.clamp_min(torch.finfo(up.dtype).tiny), torch.zeros_like(up))
    return normalized.clamp(0.0, 1.0)


def _output_size(size) -> tuple[int, int]:
    try:
        values = tuple(size)
        ok = len(values) == 2 and all(int(v) == v and int(v) > 0 for v in values)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"size must be the output (H, W), two positive ints; got {size!r}")
    return int(values[0]), int(values[1])
