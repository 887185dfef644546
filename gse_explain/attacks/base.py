"""What every attack shares: the result type, input checks, the model guard, the pass counter and the session.

The uniform attack signature (adv-lib style) is::

    attack(model, images, labels, *, targeted=False, bounds=(0.0, 1.0), preset=None,
           seed=None, generator=None, progress=False, **options) -> AttackResult

``images`` are float tensors (B, C, H, W) inside ``bounds``; ``labels`` is an int64 tensor (B,) holding the
*target* class when ``targeted`` and the *true* class otherwise. The model maps images in ``bounds`` to
logits (B, num_classes); input normalisation belongs inside the model (see ``gse_explain.models``).

The model may also be a plain function (images → logits); it then has no device, dtype or mode of its own.

Every attack function builds its config, opens :func:`attack_session` (input checks, seed and generator, the
model's device and dtype, the frozen model, the checked model caller, the canonical images), runs its
algorithm on the canonical images and returns :meth:`AttackSession.result`.

dtypes: the attack runs in the model's floating dtype (its first floating parameter or buffer; a plain
function or a stateless module: the images' dtype), so float64 or float16 images work with a float32 model.
The adversarials come back in the caller's dtype and on the caller's device; entries the attack did not
change are the caller's values, bit-identical. When the caller's dtype is narrower than the model's (float16
images, float32 model), rounding the adversarials may change them, so the success flags of the rows it
changed are re-tested on the returned images (one counted forward pass on those rows). A dtype an operation
does not support raises :class:`UnsupportedDtypeError` naming the dtype and the fix.
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import torch

from ..models.inference import check_model, frozen_model, model_device, model_dtype
from .caller import ModelCaller, UnsupportedDtypeError
from .execution import ExecutionOptions
from .losses import is_successful
from .options import build_config

__all__ = [
    "AttackResult", "AttackSession", "ModelCaller", "UnsupportedDtypeError", "attack_session", "build_config",
    "check_attack_inputs", "check_bounds", "check_seed_and_generator", "frozen_model", "make_generator",
    "model_device",
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
        compile_seconds: wall seconds of the model calls that compiled a graph (``compile=True``; see
            :mod:`~gse_explain.attacks.execution`), part of the attack's wall time; 0 otherwise.
    """

    adversarials: torch.Tensor
    success: torch.Tensor
    forward_passes: int = 0
    gradient_passes: int = 0
    model_calls: list[tuple[int, bool]] = field(default_factory=list)
    compile_seconds: float = 0.0

    @property
    def model_passes(self) -> int:
        """Total number of per-image model evaluations (with or without gradient)."""
        return self.forward_passes + self.gradient_passes


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


def check_seed_and_generator(seed, generator) -> None:
    """TypeError unless ``seed`` is an int or None (bools are rejected) and ``generator`` a
    ``torch.Generator`` or None."""
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise TypeError(f"seed must be an int or None; got {seed!r} ({type(seed).__name__})")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None; got {generator!r} ({type(generator).__name__})")


def make_generator(seed, generator) -> torch.Generator:
    """``generator`` if given (it wins over ``seed``), else a CPU generator seeded with ``seed`` (default 0);
    both checked by :func:`check_seed_and_generator`."""
    check_seed_and_generator(seed, generator)
    return generator if generator is not None else torch.Generator().manual_seed(0 if seed is None else seed)


# RuntimeError messages of torch for an unsupported dtype or a dtype mismatch.
_DTYPE_ERROR = re.compile(r"not implemented for '|scalar type|dtype|should be the same", re.IGNORECASE)

# Widths for "is the caller's dtype at least as precise as the attack's" (16-bit formats are not nested).
_RANK = {torch.float16: 1, torch.bfloat16: 1, torch.float32: 2, torch.float64: 3}


def _exact_cast(source: torch.dtype, target: torch.dtype) -> bool:
    """Whether every ``source`` value is representable in ``target``."""
    return source == target or _RANK.get(target, 0) > _RANK.get(source, 9)


@dataclass
class AttackSession:
    """One attack call's inputs on the model's device, its pass counter and its result builder.

    Attributes:
        bounds: the validated box (lo, hi).
        x: the images on the model's device in the attack's dtype (:attr:`dtype`), contiguous (B, C, H, W).
        labels: (B,) int64 labels on the model's device.
        caller: the :class:`ModelCaller` that counts this call's passes.
        canonical: ``caller.to_canonical(x)``, the images in the attack's [-1, 1] coordinates.
        targeted: the attack mode (for :meth:`is_successful`).
        input_device: the device of the images passed in; the result goes back there.
        original: the images as passed in (their dtype), on the model's device.
        generator: the attack's random stream (:func:`make_generator` of the call's seed and generator).
    """

    bounds: tuple[float, float]
    x: torch.Tensor
    labels: torch.Tensor
    caller: ModelCaller
    canonical: torch.Tensor
    targeted: bool
    input_device: torch.device
    original: torch.Tensor | None = None
    generator: torch.Generator | None = None

    @property
    def device(self) -> torch.device:
        """The device the attack runs on (the model's)."""
        return self.x.device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype the attack runs in (the model's)."""
        return self.x.dtype

    def is_successful(self, canonical_images: torch.Tensor) -> torch.Tensor:
        """(B,) success flags of canonical images (B, C, H, W), from one counted forward pass."""
        return is_successful(self.caller.logits(canonical_images), self.labels, self.targeted)

    def result(self, adv_canonical: torch.Tensor, success: torch.Tensor | None = None, **extras) -> AttackResult:
        """The :class:`AttackResult` for canonical adversarials (B, C, H, W), on the input's device and in
        the input's dtype.

        ``success`` (B,) bool as the attack found it; None tests the returned images with one forward pass
        (call this inside the session then). ``extras`` become attributes of the result (tensors moved to
        the input's device), e.g. Sparse-RS's ``queries``.
        """
        original = self.x if self.original is None else self.original
        adversarials = self.caller.from_canonical(original, adv_canonical, self.canonical, self.bounds)
        if success is None:
            success = self.is_successful(self.caller.to_canonical(adversarials.to(self.dtype)))
        elif not _exact_cast(self.dtype, adversarials.dtype):
            success = self._retest_rounded(adversarials, adv_canonical, success)
        result = AttackResult(
            adversarials=adversarials.to(self.input_device),
            success=success.to(self.input_device),
            forward_passes=self.caller.forward_passes,
            gradient_passes=self.caller.gradient_passes,
            model_calls=self.caller.calls,
            compile_seconds=self.caller.compile_seconds,
        )
        for name, value in extras.items():
            setattr(result, name, value.to(self.input_device) if isinstance(value, torch.Tensor) else value)
        return result

    def _retest_rounded(self, adversarials, adv_canonical, success) -> torch.Tensor:
        """Success flags where rounding to the caller's (narrower) dtype changed the adversarials: those rows
        are re-tested on the returned images (one counted forward pass on them)."""
        found = self.caller.from_canonical(self.x, adv_canonical, self.canonical, self.bounds)
        returned = adversarials.to(self.dtype)
        rows = torch.nonzero((returned != found).flatten(1).any(dim=1)).flatten()
        if rows.numel() == 0:
            return success
        success = success.clone()
        logits = self.caller.logits(self.caller.to_canonical(returned[rows]))
        success[rows] = is_successful(logits, self.labels[rows], self.targeted)
        return success


def _attack_dtype(model, images: torch.Tensor) -> torch.dtype:
    """The dtype the attack runs in: the model's floating dtype, or the images' for a parameter-free model."""
    dtype = model_dtype(model, images.dtype)
    if dtype not in _RANK:
        raise UnsupportedDtypeError(f"the model computes in {dtype}; attacks need float16, bfloat16, float32 or "
                                    "float64 (use model.float())")
    return dtype


def _dtype_error(error: RuntimeError, dtype: torch.dtype, images: torch.Tensor, device, stateless: bool):
    source = "the images' dtype (the model has no parameters)" if stateless else "the model's dtype"
    fix = ("pass float32 images (images.float()) and a model computing in float32" if stateless
           else "use model.float() (float32), or model.double() with float64 images")
    return UnsupportedDtypeError(
        f"the attack cannot run in {dtype} ({source}; images are {images.dtype}) on {device}: {error}. Fix: {fix}"
    )


@contextlib.contextmanager
def attack_session(
    model, images: torch.Tensor, labels: torch.Tensor, bounds: Sequence[float], targeted: bool, *,
    seed: int | None = None, generator: torch.Generator | None = None, execution: ExecutionOptions | None = None,
) -> Iterator[AttackSession]:
    """Check the inputs, move them to the model's device and dtype and run the body with the model frozen.

    Raises the errors of :func:`check_attack_inputs` and :func:`check_seed_and_generator` before the model
    is touched; inside, the model is in eval mode with parameter gradients off (:func:`frozen_model`,
    restored also when the attack raises), every model call is checked (:class:`ModelCaller`), and a
    RuntimeError of torch about the dtype becomes :class:`UnsupportedDtypeError`. ``execution`` says how the
    model runs (compile, amp, channels-last; None: the enclosing :func:`~gse_explain.attacks.execution.execution`
    block's options); an ``amp`` the model cannot run is a ValueError before the attack starts.
    """
    check_model(model)
    random = make_generator(seed, generator)
    bounds = check_attack_inputs(images, labels, bounds)
    device = model_device(model, images.device)
    dtype = _attack_dtype(model, images)
    # A fixed memory layout: conv kernels round differently per layout, and thresholds amplify that.
    original = images.detach().to(device).contiguous()
    x = original.to(dtype)
    y = labels.detach().to(device=device, dtype=torch.long)
    with frozen_model(model):
        caller = ModelCaller(model, bounds, int(y.max().item()), batch_size=x.shape[0], execution=execution)
        canonical = caller.to_canonical(x)
        if targeted:
            caller.check_targets_first(y, canonical)
        session = AttackSession(bounds, x, y, caller, canonical, bool(targeted), images.device, original, random)
        try:
            yield session
        except RuntimeError as error:
            if not _DTYPE_ERROR.search(str(error)):
                raise
            stateless = model_dtype(model, None) is None
            raise _dtype_error(error, dtype, images, device, stateless) from error
