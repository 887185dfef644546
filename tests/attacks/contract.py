"""The contract every registered attack keeps, as plain reusable checks.

Each ``check_<what>(spec, <fixtures>...)`` takes an :class:`~gse_explain.attacks.AttackSpec` and the pytest
fixtures it names (``resnet20``, ``cifar_correct``, ``counting_model``), and raises AssertionError when the
attack breaks the contract. :data:`CONTRACT_CHECKS` lists them all; :func:`run_check` calls one with its
fixtures from a pytest ``request``, so a test module parametrises over attacks × checks::

    @pytest.mark.parametrize("check", CONTRACT_CHECKS, ids=check_id)
    def test_contract(check, request, one_thread):
        run_check(check, get_attack("my_attack"), request)

The model checks use 2 correctly classified CIFAR-10 images (32×32) on the authors' ResNet20 with the
attack's ``spec.test_options`` (fast options); the error checks use a tiny linear model on 4×4 images, so
``test_options`` must fit 4×4 images (pixel budgets k ≤ 16). Attack-specific behaviour (fooling rates,
budgets, batch equality, deviations from the reference code) belongs in ``test_<attack>.py``.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import inspect
import sys

import pytest
import torch
from torch import nn

from bad_inputs import BAD_CASES, TinyLinear, check_option_type, option_type_cases, run_attack
from gse_explain.attacks import ATTACKS, AttackSpec
from gse_explain.attacks.losses import is_successful
from gse_explain.plotting.style import attack_color, attack_label

__all__ = [
    "CONTRACT_CHECKS", "TinyLinear", "check_id", "run_check", "run_attack",
    "check_declared_in_its_module", "check_uniform_signature", "check_configs_build", "check_plot_style",
    "check_result_passes_inputs_and_model_state", "check_seed_and_generator",
    "check_model_state_restored_when_the_attack_raises", "check_unknown_preset_and_option",
    "check_bad_inputs_raise_clear_errors", "check_wrong_output_shape_is_rejected",
    "check_bad_models_and_arguments", "check_option_types", "check_dtypes_on_resnet20",
]


@contextlib.contextmanager
def _case(description: str):
    """Name the sub-case of a check in its failure message."""
    try:
        yield
    except BaseException as error:  # pytest's "DID NOT RAISE" is not an Exception subclass
        error.add_note(f"contract case: {description}")
        raise


def _module_state(model):
    return [m.training for m in model.modules()], [p.requires_grad for p in model.parameters()]


def _cifar_pair(cifar_correct):
    """Clones of the first 2 correctly classified images ((2, 3, 32, 32) in [0, 1]) and their labels."""
    return cifar_correct[0][:2].clone(), cifar_correct[1][:2].clone()


# ----- declaration -------------------------------------------------------------------------------------


def check_declared_in_its_module(spec: AttackSpec) -> None:
    """Registered under its name, declared as its module's ``SPEC``, with that module's ``*_PRESETS``."""
    assert ATTACKS.get(spec.name) is spec, f"{spec.name!r} is not the registered spec"
    assert spec.function.__name__ == spec.name, "the attack function has the attack's name"
    module = sys.modules[spec.function.__module__]
    assert getattr(module, "SPEC", None) is spec, f"{module.__name__}.SPEC is not this spec"
    presets = [value for key, value in vars(module).items() if key.endswith("_PRESETS")]
    assert len(presets) == 1 and presets[0] is spec.presets, "spec.presets is the module's one *_PRESETS dict"
    assert spec.description.strip() and "\n" not in spec.description


def check_uniform_signature(spec: AttackSpec) -> None:
    """``attack(model, images, labels, *, targeted=False, bounds=(0, 1), preset=None, seed=None,
    generator=None, progress=False, **options)``."""
    parameters = inspect.signature(spec.function).parameters
    assert list(parameters)[:3] == ["model", "images", "labels"]
    expected = dict(targeted=False, bounds=(0.0, 1.0), preset=None, seed=None, generator=None, progress=False)
    for key, value in expected.items():
        assert parameters[key].kind is inspect.Parameter.KEYWORD_ONLY and parameters[key].default == value, key
    assert list(parameters.values())[-1].kind is inspect.Parameter.VAR_KEYWORD


def check_configs_build(spec: AttackSpec) -> None:
    """Every preset in both modes, the defaults, the demo budget and the test options give a config."""
    assert dataclasses.is_dataclass(spec.config_class) and spec.config_class.__dataclass_params__.frozen
    assert type(spec.make_config()) is spec.config_class
    for preset in spec.presets:
        for targeted in (False, True):
            with _case(f"preset {preset!r}, targeted={targeted}"):
                assert type(spec.make_config(preset, targeted)) is spec.config_class
    for options in (spec.demo_budget, spec.test_options):
        assert type(spec.make_config(None, False, **options)) is spec.config_class


def check_plot_style(spec: AttackSpec) -> None:
    """Figures draw the attack in its declared colour, under its declared label (by name or by label)."""
    for name in (spec.name, spec.label, spec.name.upper()):
        assert attack_color(name) == spec.color and attack_label(name) == spec.label, name


# ----- runs on the real model --------------------------------------------------------------------------


def check_result_passes_inputs_and_model_state(spec: AttackSpec, resnet20, cifar_correct, counting_model) -> None:
    """Inputs and the model (mode, flags, weights, no .grad) are untouched; the result's shapes, dtypes,
    devices, box and pass counts are right, in both modes."""
    for targeted in (False, True):
        with _case(f"targeted={targeted}"):
            images, labels = _cifar_pair(cifar_correct)
            if targeted:
                labels = (labels + 1) % 10
            images_before, labels_before = images.clone(), labels.clone()
            model = counting_model(copy.deepcopy(resnet20))
            model.train()
            model.model.model.linear.weight.requires_grad_(False)
            state = _module_state(model)
            tensors = {key: value.clone() for key, value in model.state_dict().items()}

            result = run_attack(spec, model, images, labels, targeted=targeted)

            assert torch.equal(images, images_before) and torch.equal(labels, labels_before)
            assert _module_state(model) == state
            assert all(p.grad is None for p in model.parameters())
            # The model runs in eval mode: no batch-norm statistics change.
            assert all(torch.equal(value, tensors[key]) for key, value in model.state_dict().items())
            adversarials, success = result.adversarials, result.success
            assert adversarials.shape == images.shape and adversarials.dtype == images.dtype
            assert adversarials.device == images.device
            assert success.shape == (2,) and success.dtype == torch.bool and success.device == images.device
            assert adversarials.min() >= 0 and adversarials.max() <= 1
            assert result.gradient_passes == model.seen[True] and result.forward_passes == model.seen[False]
            assert result.model_passes == result.forward_passes + result.gradient_passes == sum(model.seen.values()) > 0
            assert sum(batch for batch, _ in result.model_calls) == result.model_passes
            assert sum(batch for batch, grad in result.model_calls if grad) == result.gradient_passes


def check_seed_and_generator(spec: AttackSpec, resnet20, cifar_correct, counting_model) -> None:
    """Same seed (or a generator seeded alike, which wins over ``seed``): the same model inputs and result;
    another seed changes what a randomized attack sends through the model and nothing for the others."""
    images, labels = _cifar_pair(cifar_correct)

    def run(**kwargs):
        model = counting_model(resnet20, record=True)
        return run_attack(spec, model, images, labels, **kwargs), model.inputs

    def same(inputs, other):
        return len(inputs) == len(other) and all(torch.equal(a, b) for a, b in zip(inputs, other))

    first, inputs = run(seed=1)
    for kwargs in (dict(seed=1), dict(seed=2, generator=torch.Generator().manual_seed(1))):
        with _case(f"rerun with {kwargs}"):
            again, inputs_again = run(**kwargs)
            assert torch.equal(first.adversarials, again.adversarials) and torch.equal(first.success, again.success)
            assert first.model_calls == again.model_calls and same(inputs, inputs_again)
    _, inputs_other = run(seed=2)
    assert same(inputs, inputs_other) == (not spec.randomized), (
        "a randomized attack must use its seed; a deterministic one must ignore it (check spec.randomized)"
    )


# ----- errors, on a tiny model -------------------------------------------------------------------------


def check_model_state_restored_when_the_attack_raises(spec: AttackSpec) -> None:
    model = TinyLinear(fail=True)
    model.train()
    model.bias.requires_grad_(False)
    state = _module_state(model)
    with pytest.raises(RuntimeError, match="model failure"):
        run_attack(spec, model, torch.rand(2, 3, 4, 4), torch.tensor([0, 1]))
    assert _module_state(model) == state


def check_unknown_preset_and_option(spec: AttackSpec) -> None:
    images, labels = torch.rand(2, 3, 4, 4), torch.tensor([0, 1])
    with pytest.raises(ValueError, match=r"preset 'no_such_preset'"):
        run_attack(spec, TinyLinear(), images, labels, preset="no_such_preset")
    with pytest.raises(TypeError, match=r"option\(s\) \['no_such_option'\]"):
        run_attack(spec, TinyLinear(), images, labels, no_such_option=1)


def _bad_inputs():
    """(case, images, labels, bounds, error type, message pattern) that every attack must reject."""
    good = torch.rand(2, 3, 4, 4)
    labels = torch.tensor([0, 1])
    nan = good.clone()
    nan[0, 0, 0, 0] = float("nan")
    return [
        ("shape", good[0], labels, (0, 1), ValueError, r"shape \(B, C, H, W\)"),
        ("empty", good[:0], labels[:0], (0, 1), ValueError, "empty batch"),
        ("dtype", (good * 255).to(torch.uint8), labels, (0, 1), TypeError, "floating-point"),
        ("nan", nan, labels, (0, 1), ValueError, "NaN or inf"),
        ("outside", good * 2 - 1, labels, (0, 1), ValueError, "inside bounds"),
        ("outside narrow", good, labels, (0.2, 0.5), ValueError, "inside bounds"),
        ("bounds", good, labels, (1, 0), ValueError, "lo < hi"),
        ("length", good, torch.tensor([0, 1, 2]), (0, 1), ValueError, "different lengths"),
        ("label dtype", good, labels.float(), (0, 1), TypeError, "integer tensor"),
        ("negative label", good, torch.tensor([0, -1]), (0, 1), ValueError, "≥ 0"),
        ("label range", good, torch.tensor([0, 5]), (0, 1), ValueError, "num_classes = 5"),
    ]


def check_bad_inputs_raise_clear_errors(spec: AttackSpec) -> None:
    for case, images, labels, bounds, error, message in _bad_inputs():
        with _case(case), pytest.raises(error, match=message):
            run_attack(spec, TinyLinear(), images, labels, bounds=bounds)


def check_wrong_output_shape_is_rejected(spec: AttackSpec) -> None:
    for case, out_shape in (("flat", lambda b: (b * 5,)), ("3d", lambda b: (b, 5, 1))):
        with _case(f"{case} logits"), pytest.raises(ValueError, match=r"logits of shape \(B, num_classes\)"):
            run_attack(spec, TinyLinear(out_shape=out_shape), torch.rand(2, 3, 4, 4), torch.tensor([0, 1]))


def check_bad_models_and_arguments(spec: AttackSpec) -> None:
    """Every case of ``bad_inputs.BAD_CASES``: non-finite logits and gradients, target = prediction, seed and
    generator types, a plain function as the model, 16-bit dtypes."""
    for name, case in BAD_CASES.items():
        with _case(name):
            case(spec)


def check_option_types(spec: AttackSpec) -> None:
    """A wrongly typed value for each typed config field is a TypeError naming the option."""
    for name, value in option_type_cases(spec):
        with _case(f"{name}={value!r}"):
            check_option_type(spec, name, value)


def _wide_images(images: torch.Tensor) -> torch.Tensor:
    """float64 copies of [0, 1] images that float32 cannot represent (so a lossy round trip shows)."""
    noise = torch.rand(images.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    return (images.double() + 1e-10 * noise).clamp(0.0, 1.0)


def _as_caller_dtype(reference, reference_images, images):
    """What a run on ``images`` must return when the attack ran on ``reference_images`` (their cast to the
    model's dtype) and returned ``reference``: the caller's values where unchanged, else the cast."""
    return torch.where(reference == reference_images, images, reference.to(images.dtype))


def check_dtypes_on_resnet20(spec: AttackSpec, resnet20, cifar_correct) -> None:
    """float64 and float16 images with the float32 ResNet20 run in float32 and come back in their dtype with
    unchanged entries bit-identical; float64 images with ``model.double()`` run in float64."""
    images, labels = _cifar_pair(cifar_correct)
    double_model = copy.deepcopy(resnet20).double()
    for targeted in (False, True):
        y = (labels + 1) % 10 if targeted else labels
        for dtype, inputs in ((torch.float64, _wide_images(images)), (torch.float16, images.half())):
            with _case(f"{dtype} images, float32 model, targeted={targeted}"):
                reference = run_attack(spec, resnet20, inputs.float(), y, targeted=targeted, seed=1)
                result = run_attack(spec, resnet20, inputs, y, targeted=targeted, seed=1)
                expected = _as_caller_dtype(reference.adversarials, inputs.float(), inputs)
                assert result.adversarials.dtype == dtype and torch.equal(result.adversarials, expected)
                with torch.no_grad():
                    hit = is_successful(resnet20(result.adversarials.float()), y, targeted)
                assert torch.equal(result.success, hit)
        with _case(f"float64 images, model.double(), targeted={targeted}"):
            wide = _wide_images(images)
            result = run_attack(spec, double_model, wide, y, targeted=targeted, seed=1)
            assert result.adversarials.dtype == torch.float64 and result.model_passes > 0
            with torch.no_grad():
                assert torch.equal(result.success, is_successful(double_model(result.adversarials), y, targeted))


CONTRACT_CHECKS = [
    check_declared_in_its_module,
    check_uniform_signature,
    check_configs_build,
    check_plot_style,
    check_result_passes_inputs_and_model_state,
    check_seed_and_generator,
    check_model_state_restored_when_the_attack_raises,
    check_unknown_preset_and_option,
    check_bad_inputs_raise_clear_errors,
    check_wrong_output_shape_is_rejected,
    check_bad_models_and_arguments,
    check_option_types,
    check_dtypes_on_resnet20,
]


def check_id(check) -> str:
    """A short test id for a check ("seed_and_generator")."""
    return check.__name__.removeprefix("check_")


def run_check(check, spec: AttackSpec, request) -> None:
    """Call ``check(spec, ...)`` with the fixtures its other parameters name, from a pytest ``request``."""
    names = list(inspect.signature(check).parameters)[1:]
    check(spec, **{name: request.getfixturevalue(name) for name in names})
