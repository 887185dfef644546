"""Bad models and arguments every attack must refuse (or handle), as named cases.

:data:`BAD_CASES` maps a case id to ``case(spec)``: it runs the attack of ``spec`` (with its fast
``test_options``) on 4×4 images and a tiny model, and raises AssertionError when the attack does not
behave as the case says. :func:`option_type_cases` lists, for one attack, a wrongly typed value for each
typed field of its config. ``contract.py`` runs all of them as contract checks (so a toy attack registered
in a test is covered too); ``test_bad_inputs.py`` runs each as its own test over every registered attack.
"""

from __future__ import annotations

import math
import types
import typing

import pytest
import torch
from torch import nn

from gse_explain.attacks import AttackSpec
from gse_explain.attacks.base import UnsupportedDtypeError
from gse_explain.models.inference import NonFiniteGradientError, NonFiniteLogitsError

__all__ = ["BAD_CASES", "BadLogits", "NaNGradient", "TinyLinear", "option_type_cases", "run_attack", "tiny_batch"]


class TinyLinear(nn.Module):
    """A linear classifier of (B, 3, 4, 4) images into 5 classes; ``fail`` makes every call raise, and
    ``out_shape(B)`` reshapes the logits into a wrong shape."""

    def __init__(self, fail: bool = False, out_shape=None):
        super().__init__()
        self.fc = nn.Linear(3 * 4 * 4, 5)
        self.bias = nn.Parameter(torch.zeros(5))
        self.fail = fail
        self.out_shape = out_shape

    def forward(self, x):
        if self.fail:
            raise RuntimeError("model failure")
        z = self.fc(x.flatten(1)) + self.bias
        return z if self.out_shape is None else z.reshape(self.out_shape(x.shape[0]))


class BadLogits(TinyLinear):
    """TinyLinear whose logits are ``value`` (NaN, inf) after its first ``good_calls`` calls: for every row,
    or with ``like`` (1, 3, 4, 4) only for rows of which at least half the entries are ``like``'s."""

    def __init__(self, value: float = math.nan, like: torch.Tensor | None = None, good_calls: int = 0):
        super().__init__()
        self.value, self.like, self.good_calls, self.calls = value, like, good_calls, 0

    def forward(self, x):
        z = super().forward(x)
        self.calls += 1
        if self.calls <= self.good_calls:
            return z
        rows = torch.ones(x.shape[0], dtype=torch.bool)
        if self.like is not None:
            rows = ((x - self.like).abs() < 1e-6).flatten(1).float().mean(dim=1) >= 0.5
        return torch.where(rows[:, None], torch.full_like(z, self.value), z)


class _NaNBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * math.nan


class NaNGradient(TinyLinear):
    """TinyLinear with finite logits whose input gradient is NaN."""

    def forward(self, x):
        return super().forward(_NaNBackward.apply(x))


def run_attack(spec: AttackSpec, model, images, labels, **kwargs):
    """``spec.function`` with its fast ``test_options`` (``kwargs`` override them)."""
    return spec.function(model, images, labels, **{**spec.test_options, **kwargs})


def tiny_batch(model=None, seed: int = 0):
    """(images (2, 3, 4, 4) in [0, 1] float32, the model's predictions on them (2,)) for ``model``."""
    images = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(seed))
    model = model if model is not None else TinyLinear()
    with torch.no_grad():
        return images, model(images).argmax(dim=1)


def _raises(spec, error, message, model, images, labels, **kwargs):
    with pytest.raises(error, match=message):
        run_attack(spec, model, images, labels, **kwargs)


# ----- model outputs ------------------------------------------------------------------------------------


def _nan_logits(spec):
    model = BadLogits(math.nan)
    images, _ = tiny_batch()
    _raises(spec, NonFiniteLogitsError, r"NaN or inf logits for (2 image\(s\) \(rows 0, 1|1 image\(s\) \(rows 0)\)", model, images,
            torch.tensor([0, 1]))


def _inf_logits_named_rows(spec):
    images, _ = tiny_batch()
    model = BadLogits(math.inf, like=images[1:])
    labels = tiny_batch(model)[1]
    _raises(spec, NonFiniteLogitsError, r"for 1 image\(s\) \(rows 1\) of the images passed to the attack",
            model, images, labels)


def _nan_logits_on_later_calls(spec):
    """Logits finite on the first call (the clean images or the first iterate), NaN or -inf afterwards."""
    for value, targeted in ((-math.inf, False), (math.nan, True)):
        # Fixed weights: with some random ones Sparse-RS's first (random) candidate already fools the model on
        # every row, it never calls again, and the test would depend on how much of the global RNG ran before.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = BadLogits(value, good_calls=1)
        images, labels = tiny_batch(model)
        model.calls = 0
        labels = (labels + 1) % 5 if targeted else labels
        _raises(spec, NonFiniteLogitsError, "NaN or inf logits", model, images, labels, targeted=targeted)


def _nan_gradient(spec):
    model = NaNGradient()
    images, labels = tiny_batch(model)
    uses_gradients = run_attack(spec, TinyLinear(), images, labels).gradient_passes > 0
    if uses_gradients:
        _raises(spec, NonFiniteGradientError, "gradient with respect to the model's input is NaN or inf", model,
                images, labels)
    else:
        run_attack(spec, model, images, labels)  # a forward-only attack never sees the gradient


# ----- targets, seeds, generators, models ---------------------------------------------------------------


def _target_is_the_prediction(spec):
    model = TinyLinear()
    images, predicted = tiny_batch(model)
    targets = torch.stack([(predicted[0] + 1) % 5, predicted[1]])
    _raises(spec, ValueError, r"target equals the model's prediction for images \[1\]: the image is already "
            "classified as the target; choose a different target class", model, images, targets, targeted=True)
    _raises(spec, ValueError, r"prediction for images \[0, 1\]", model, images, predicted, targeted=True)


def _seed_types(spec):
    images, labels = tiny_batch()
    for seed in ("1", 1.5, True, 1.0):
        _raises(spec, TypeError, r"seed must be an int or None; got", TinyLinear(), images, labels, seed=seed)


def _generator_types(spec):
    images, labels = tiny_batch()
    for generator in (3, "gen", torch.zeros(1)):
        _raises(spec, TypeError, "generator must be a torch.Generator or None", TinyLinear(), images, labels,
                generator=generator)


def _plain_function_model(spec):
    linear = nn.Linear(3 * 4 * 4, 5)
    images, labels = tiny_batch(lambda x: linear(x.flatten(1)))
    for targeted, y in ((False, labels), (True, (labels + 1) % 5)):
        result = run_attack(spec, lambda x: linear(x.flatten(1)), images, y, targeted=targeted)
        assert result.adversarials.shape == images.shape and result.adversarials.dtype == images.dtype
        assert result.success.shape == (2,) and result.model_passes > 0
    assert linear.weight.grad is None and linear.weight.requires_grad
    _raises(spec, TypeError, "model must be an nn.Module or a function", "resnet20", images, labels)


# ----- dtypes -------------------------------------------------------------------------------------------


def _float16_images_stateless_function(spec):
    linear = nn.Linear(3 * 4 * 4, 5)  # float32 weights; a function has no dtype, so the images' dtype is used
    images, labels = tiny_batch(lambda x: linear(x.flatten(1)))
    _raises(spec, UnsupportedDtypeError, r"cannot run in torch.float16 .*Fix: pass float32 images \(images.float\(\)\)",
            lambda x: linear(x.flatten(1)), images.half(), labels)


def _half_model(spec):
    """A float16 / bfloat16 model with images of its dtype: works (CPU supports it here) or says why."""
    for dtype in (torch.float16, torch.bfloat16):
        model = TinyLinear()
        images, labels = tiny_batch(model)
        model.to(dtype)
        try:
            result = run_attack(spec, model, images.to(dtype), labels)
        except UnsupportedDtypeError as error:
            assert str(dtype) in str(error) and "model.float()" in str(error)
            continue
        assert result.adversarials.dtype == dtype and result.success.dtype == torch.bool


def _narrow_images_wide_model(spec):
    """bfloat16 images, float32 model: the attack runs in float32; unchanged entries are the caller's."""
    model = TinyLinear()
    images, labels = tiny_batch(model)
    narrow = images.to(torch.bfloat16)
    reference = run_attack(spec, model, narrow.float(), labels)
    result = run_attack(spec, model, narrow, labels)
    expected = torch.where(reference.adversarials == narrow.float(), narrow, reference.adversarials.to(torch.bfloat16))
    assert result.adversarials.dtype == torch.bfloat16 and torch.equal(result.adversarials, expected)
    same = (result.adversarials.float() == reference.adversarials).flatten(1).all(dim=1)
    assert torch.equal(result.success[same], reference.success[same])


BAD_CASES = {
    "nan_logits": _nan_logits,
    "inf_logits_named_rows": _inf_logits_named_rows,
    "nonfinite_logits_on_later_calls": _nan_logits_on_later_calls,
    "nan_gradient": _nan_gradient,
    "target_is_the_prediction": _target_is_the_prediction,
    "seed_types": _seed_types,
    "generator_types": _generator_types,
    "plain_function_model": _plain_function_model,
    "float16_images_stateless_function": _float16_images_stateless_function,
    "half_and_bfloat16_model": _half_model,
    "bfloat16_images_float32_model": _narrow_images_wide_model,
}


# ----- option types -------------------------------------------------------------------------------------

_WRONG = {int: (5.5, "5", True), float: ("0.5", True, math.nan), bool: (1, "yes", None), str: (3, None)}


def _wrong_values(hint) -> tuple:
    """Values that do not have the type ``hint`` (a config field annotation)."""
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    args = set(typing.get_args(hint)) if union else {hint}
    if typing.get_origin(hint) is tuple:
        return ("not a tuple", ("x",) * 4)
    values = []
    for kind, wrong in _WRONG.items():
        if kind in args:
            values += [value for value in wrong if not (value is None and type(None) in args)
                       and not (kind is float and isinstance(value, int) and int in args)]
    return tuple(values)


def option_type_cases(spec: AttackSpec) -> list[tuple[str, object]]:
    """(field, wrongly typed value) for every typed field of the attack's config."""
    hints = typing.get_type_hints(spec.config_class)
    return [(name, value) for name, hint in hints.items() for value in _wrong_values(hint)]


def check_option_type(spec: AttackSpec, name: str, value) -> None:
    """The attack refuses ``name=value`` with a TypeError naming the option, before touching the model."""
    images, labels = torch.rand(2, 3, 4, 4), torch.tensor([0, 1])
    _raises(spec, TypeError, rf"{spec.label} option '{name}' must be .*; got", TinyLinear(fail=True), images, labels,
            **{name: value})
