"""What every attack shares: the result type, input checks, the model guard, the pass counter and the session.

The uniform attack signature (adv-lib style) is::

    attack(model, images, labels, *, targeted=False, bounds=(0.0, 1.0), preset=None,
           seed=None, generator=None, progress=False, **options) -> AttackResult

``images`` are float tensors (B, C, H, W) inside ``bounds``; ``labels`` is an int64 tensor (B,) holding the
*target* class when ``targeted`` and the *true* class otherwise. The model maps images in ``bounds`` to
logits (B, num_classes); input normalisation belongs inside the model (see ``gse_explain.models``).

Every attack function builds its config, opens :func:`attack_session` (input checks, the model's device,
the frozen model, the pass counter, the canonical images), runs its algorithm on the canonical images and
returns :meth:`AttackSession.result`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import torch
from torch import nn

from ..models.inference import frozen_model, model_device
from .losses import is_successful

__all__ = [
    "AttackResult", "AttackSession", "ModelCaller", "attack_session", "build_config", "check_attack_inputs",
    "check_bounds", "frozen_model", "model_device",
]


@dataclass
class AttackResult:
    """Outcome of one attack call on a batch.

    Attributes:
        adversarials: (B, C, H, W) images inside the attack's bounds, on the device of the input images.
            Pixels the attack did not change are bit-identical to the input.
        success: (B,) bool; True where the model's argmax on ``adversarials`` is the target (targeted)
            or differs from the true label (untargeted).
        forward_passes: number of images sent through the model without a backward pass.
        gradient_passes: number of images sent through the model with a backward pass.
        model_calls: one ``(batch_size, with_gradient)`` pair per batched model call, in call order, so
            the cost of the model alone can be replayed (see ``bench/``).
    """

    adversarials: torch.Tensor
    success: torch.Tensor
    forward_passes: int = 0
    gradient_passes: int = 0
    model_calls: list[tuple[int, bool]] = field(default_factory=list)

    @property
    def model_passes(self) -> int:
        """Total number of per-image model evaluations (with or without gradient)."""
        return self.forward_passes + self.gradient_passes


def build_config(config_class, presets: dict, attack_name: str, preset: str | None, targeted: bool, options: dict):
    """An attack's frozen config dataclass from a preset and option overrides (shared by every ``*_config``).

    ``presets`` maps a preset name to ``{False: untargeted values, True: targeted values}``. An unknown preset
    raises ValueError, an unknown option TypeError (like an unexpected keyword argument), both listing the
    valid choices; the dataclass itself validates the values.
    """
    values: dict = {}
    if preset is not None:
        if preset not in presets:
            raise ValueError(f"unknown {attack_name} preset {preset!r}; choose one of {sorted(presets)} or None")
        values.update(presets[preset][bool(targeted)])
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"unknown {attack_name} option(s) {unknown}; valid options: {sorted(known)}")
    values.update(options)
    return config_class(**values)


def check_bounds(bounds: Sequence[float]) -> tuple[float, float]:
    """Validate a box ``(lo, hi)`` with finite lo < hi and return it as floats."""
    try:
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"bounds must be a pair (lo, hi) of numbers; got {bounds!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"bounds must satisfy -inf < lo < hi < inf; got {bounds!r}")
    return lo, hi


def check_attack_inputs(
    images: torch.Tensor, labels: torch.Tensor, bounds: Sequence[float]
) -> tuple[float, float]:
    """Raise a clear error for inputs no attack can work with; return the validated bounds.

    Checked: tensor types, shape (B, C, H, W) with B ≥ 1, floating dtype, finite values, values inside
    ``bounds`` (with a tolerance of 1e-6 of the box width), labels of shape (B,) and integer dtype,
    non-negative labels. Labels above the model's class count are checked on the first model call.
    """
    lo, hi = check_bounds(bounds)
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor of shape (B, C, H, W); got {type(images).__name__}")
    if images.dim() != 4:
        raise ValueError(f"images must have shape (B, C, H, W); got shape {tuple(images.shape)}")
    if images.shape[0] == 0:
        raise ValueError("images is an empty batch (B = 0); pass at least one image")
    if not images.is_floating_point():
        raise TypeError(
            f"images must be a floating-point tensor with values in {(lo, hi)}; got dtype {images.dtype} "
            "(convert uint8 images with images.float() / 255)"
        )
    if not torch.isfinite(images).all():
        raise ValueError("images contain NaN or inf values")
    tolerance = 1e-6 * (hi - lo)
    below, above = images.min().item(), images.max().item()
    if below < lo - tolerance or above > hi + tolerance:
        raise ValueError(
            f"images must lie inside bounds {(lo, hi)}; found values in [{below:.4g}, {above:.4g}] "
            "(pass matching bounds=..., or rescale the images and put the normalisation in the model)"
        )
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"labels must be a torch.Tensor of shape (B,); got {type(labels).__name__}")
    if labels.dim() != 1:
        raise ValueError(f"labels must have shape (B,); got shape {tuple(labels.shape)}")
    if labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"labels and images have different lengths: {labels.shape[0]} labels for {images.shape[0]} images"
        )
    if labels.is_floating_point() or labels.dtype == torch.bool or labels.is_complex():
        raise TypeError(f"labels must be an integer tensor (e.g. torch.long); got dtype {labels.dtype}")
    if labels.min().item() < 0:
        raise ValueError(f"labels must be class indices ≥ 0; got minimum {labels.min().item()}")
    return lo, hi


class ModelCaller:
    """Calls the model for an attack, in the attack's canonical box [-1, 1].

    Attacks whose hyperparameters are defined on the paper's [-1, 1] scale work in coordinates
    ``u = (x - mid) / half`` (mid, half = centre and half-width of ``bounds``); this caller maps ``u`` back
    to the model's box, checks the model's output once, and counts passes. With bounds (-1, 1) the map is
    the identity and is skipped.
    """

    def __init__(self, model: nn.Module, bounds: tuple[float, float], num_labels_max: int):
        self.model = model
        lo, hi = bounds
        self.mid = (lo + hi) / 2.0
        self.half = (hi - lo) / 2.0
        self.identity = lo == -1.0 and hi == 1.0
        self.num_labels_max = num_labels_max
        self.forward_passes = 0
        self.gradient_passes = 0
        self.calls: list[tuple[int, bool]] = []
        self.num_classes: int | None = None

    def to_canonical(self, images: torch.Tensor) -> torch.Tensor:
        return images if self.identity else (images - self.mid) / self.half

    def from_canonical(self, original: torch.Tensor, canonical_adv: torch.Tensor, canonical: torch.Tensor,
                       bounds: tuple[float, float]) -> torch.Tensor:
        """Map canonical adversarials back; entries the attack left unchanged stay bit-identical."""
        if self.identity:
            return canonical_adv
        mapped = (canonical_adv * self.half + self.mid).clamp(*bounds)
        return torch.where(canonical_adv == canonical, original, mapped)

    def _check_output(self, logits: torch.Tensor, batch: int) -> None:
        if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != batch:
            shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise ValueError(
                f"the model must return logits of shape (B, num_classes) = ({batch}, K); got {shape}"
            )
        if self.num_classes is None:
            self.num_classes = logits.shape[1]
            if self.num_labels_max >= self.num_classes:
                raise ValueError(
                    f"labels must be < num_classes = {self.num_classes} (the model's output size); "
                    f"got label {self.num_labels_max}"
                )

    def logits(self, canonical: torch.Tensor) -> torch.Tensor:
        """Logits for canonical images, without gradient."""
        with torch.no_grad():
            out = self.model(canonical if self.identity else canonical * self.half + self.mid)
        self._check_output(out, canonical.shape[0])
        self.forward_passes += canonical.shape[0]
        self.calls.append((canonical.shape[0], False))
        return out

    def logits_and_grad(self, canonical: torch.Tensor, loss_fn) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and ∂(Σ_b loss_fn(logits)_b)/∂canonical for canonical images (B, C, H, W)."""
        with torch.enable_grad():
            inputs = canonical.detach().requires_grad_(True)
            out = self.model(inputs if self.identity else inputs * self.half + self.mid)
            self._check_output(out, canonical.shape[0])
            (grad,) = torch.autograd.grad(loss_fn(out).sum(), inputs)
        self.gradient_passes += canonical.shape[0]
        self.calls.append((canonical.shape[0], True))
        return out.detach(), grad


@dataclass
class AttackSession:
    """One attack call's inputs on the model's device, its pass counter and its result builder.

    Attributes:
        bounds: the validated box (lo, hi).
        x: the images on the model's device, contiguous (B, C, H, W).
        labels: (B,) int64 labels on the model's device.
        caller: the :class:`ModelCaller` that counts this call's passes.
        canonical: ``caller.to_canonical(x)``, the images in the attack's [-1, 1] coordinates.
        targeted: the attack mode (for :meth:`is_successful`).
        input_device: the device of the images passed in; the result goes back there.
    """

    bounds: tuple[float, float]
    x: torch.Tensor
    labels: torch.Tensor
    caller: ModelCaller
    canonical: torch.Tensor
    targeted: bool
    input_device: torch.device

    @property
    def device(self) -> torch.device:
        """The device the attack runs on (the model's)."""
        return self.x.device

    def is_successful(self, canonical_images: torch.Tensor) -> torch.Tensor:
        """(B,) success flags of canonical images (B, C, H, W), from one counted forward pass."""
        return is_successful(self.caller.logits(canonical_images), self.labels, self.targeted)

    def result(self, adv_canonical: torch.Tensor, success: torch.Tensor | None = None, **extras) -> AttackResult:
        """The :class:`AttackResult` for canonical adversarials (B, C, H, W), on the input's device.

        ``success`` (B,) bool as the attack found it; None tests the returned images with one forward pass
        (call this inside the session then). ``extras`` become attributes of the result (tensors moved to
        the input's device), e.g. Sparse-RS's ``queries``.
        """
        adversarials = self.caller.from_canonical(self.x, adv_canonical, self.canonical, self.bounds)
        if success is None:
            success = self.is_successful(self.caller.to_canonical(adversarials))
        result = AttackResult(
            adversarials=adversarials.to(self.input_device),
            success=success.to(self.input_device),
            forward_passes=self.caller.forward_passes,
            gradient_passes=self.caller.gradient_passes,
            model_calls=self.caller.calls,
        )
        for name, value in extras.items():
            setattr(result, name, value.to(self.input_device) if isinstance(value, torch.Tensor) else value)
        return result


@contextlib.contextmanager
def attack_session(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, bounds: Sequence[float], targeted: bool
) -> Iterator[AttackSession]:
    """Check the inputs, move them to the model's device and run the body with the model frozen.

    Raises the errors of :func:`check_attack_inputs` before the model is touched; inside, the model is in
    eval mode with parameter gradients off (:func:`frozen_model`, restored also when the attack raises).
    """
    bounds = check_attack_inputs(images, labels, bounds)
    device = model_device(model, images.device)
    # A fixed memory layout: conv kernels round differently per layout, and thresholds amplify that.
    x = images.detach().to(device).contiguous()
    y = labels.detach().to(device=device, dtype=torch.long)
    with frozen_model(model):
        caller = ModelCaller(model, bounds, int(y.max().item()))
        yield AttackSession(bounds, x, y, caller, caller.to_canonical(x), bool(targeted), images.device)
