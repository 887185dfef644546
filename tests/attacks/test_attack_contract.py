"""The contract every registered attack keeps (the uniform signature of :mod:`gse_explain.attacks.base`).

Each test runs over ``list_attacks()``. The model tests use 2 correctly classified CIFAR-10 images on the
authors' ResNet20 with each attack's options shrunk (``FAST``: well under a second per run on one CPU
thread); the error tests use a tiny linear model on 4×4 images. Attack-specific behaviour (fooling rates, budgets,
k-pixel limits, batch equality, deviations from the reference code) is tested in ``test_<attack>.py``.
"""

import copy
import inspect
import sys

import pytest
import torch
from torch import nn

from gse_explain.attacks import ATTACKS, get_attack, list_attacks

# Small options per attack: few iterations / search steps / queries (k ≤ 16 so 4×4 images fit too).
FAST = {
    "gse": dict(iterations=5, search_steps=1),
    "pgd0": dict(k=3, iterations=3, n_restarts=1),
    "sparse_rs": dict(k=3, n_queries=5, n_restarts=1),
    "strattack": dict(search_steps=1, max_iter=3, retrain_steps=1, retrain_iter=3),
    "fwnucl": dict(iterations=2, line_search_steps=3),
    "homotopy": dict(max_passes=20, post_iterations=5),
    "sapf": dict(search_steps=1, iterations=1, iterations_delta=2, iterations_g=2, iterations_finetune=1),
}

RANDOM = {"pgd0", "sparse_rs"}  # draw from ``generator`` / ``seed``; every other attack is deterministic

ALL = pytest.mark.parametrize("name", list_attacks())


class _Linear(nn.Module):
    def __init__(self, fail=False, out_shape=None):
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


def _run(name, model, images, labels, **kwargs):
    return get_attack(name).function(model, images, labels, **{**FAST[name], **kwargs})


def _state(model):
    return [m.training for m in model.modules()], [p.requires_grad for p in model.parameters()]


def test_every_attack_has_fast_options_and_unknown_names_are_rejected():
    assert set(FAST) == set(list_attacks()) and RANDOM <= set(FAST)
    with pytest.raises(ValueError, match="unknown attack 'no_such_attack'"):
        get_attack("no_such_attack")


@ALL
def test_registry_and_uniform_signature(name):
    spec = get_attack(name)
    assert ATTACKS[name] is spec and spec.name == name and spec.function.__name__ == name and spec.description
    module = sys.modules[spec.function.__module__]
    presets = [value for key, value in vars(module).items() if key.endswith("_PRESETS")]
    assert len(presets) == 1 and set(spec.presets) == set(presets[0])
    default = spec.make_config(None)
    for preset in spec.presets:
        for targeted in (False, True):
            assert type(spec.make_config(preset, targeted)) is type(default)
    parameters = inspect.signature(spec.function).parameters
    assert list(parameters)[:3] == ["model", "images", "labels"]
    expected = dict(targeted=False, bounds=(0.0, 1.0), preset=None, seed=None, generator=None, progress=False)
    for key, value in expected.items():
        assert parameters[key].kind is inspect.Parameter.KEYWORD_ONLY and parameters[key].default == value
    assert list(parameters.values())[-1].kind is inspect.Parameter.VAR_KEYWORD


@ALL
@pytest.mark.parametrize("targeted", [False, True], ids=["untargeted", "targeted"])
def test_result_passes_inputs_and_model_state(name, targeted, resnet20, cifar_correct, counting_model, one_thread):
    images, labels = cifar_correct[0][:2].clone(), cifar_correct[1][:2].clone()
    if targeted:
        labels = (labels + 1) % 10
    images_before, labels_before = images.clone(), labels.clone()
    model = counting_model(copy.deepcopy(resnet20))
    model.train()
    model.model.model.linear.weight.requires_grad_(False)
    state = _state(model)
    tensors = {key: value.clone() for key, value in model.state_dict().items()}

    result = _run(name, model, images, labels, targeted=targeted)

    assert torch.equal(images, images_before) and torch.equal(labels, labels_before)
    assert _state(model) == state
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(value, tensors[key]) for key, value in model.state_dict().items())  # eval: no BN update
    adversarials, success = result.adversarials, result.success
    assert adversarials.shape == images.shape and adversarials.dtype == images.dtype
    assert adversarials.device == images.device
    assert success.shape == (2,) and success.dtype == torch.bool and success.device == images.device
    assert adversarials.min() >= 0 and adversarials.max() <= 1
    assert result.gradient_passes == model.seen[True] and result.forward_passes == model.seen[False]
    assert result.model_passes == result.forward_passes + result.gradient_passes == sum(model.seen.values()) > 0
    assert sum(batch for batch, _ in result.model_calls) == result.model_passes
    assert sum(batch for batch, grad in result.model_calls if grad) == result.gradient_passes


@ALL
def test_seed_and_generator(name, resnet20, cifar_correct, counting_model, one_thread):
    """Same seed (or a generator seeded alike, which wins over ``seed``): the same model inputs and result;
    another seed changes what a random attack sends through the model and nothing for the others."""
    images, labels = cifar_correct[0][:2], cifar_correct[1][:2]

    def run(**kwargs):
        model = counting_model(resnet20, record=True)
        result = _run(name, model, images, labels, **kwargs)
        return result, model.inputs

    def same(inputs, other):
        return len(inputs) == len(other) and all(torch.equal(a, b) for a, b in zip(inputs, other))

    first, inputs = run(seed=1)
    for kwargs in (dict(seed=1), dict(seed=2, generator=torch.Generator().manual_seed(1))):
        again, inputs_again = run(**kwargs)
        assert torch.equal(first.adversarials, again.adversarials) and torch.equal(first.success, again.success)
        assert first.model_calls == again.model_calls and same(inputs, inputs_again)
    _, inputs_other = run(seed=2)
    assert same(inputs, inputs_other) == (name not in RANDOM)


@ALL
def test_model_state_restored_when_the_attack_raises(name):
    model = _Linear(fail=True)
    model.train()
    model.bias.requires_grad_(False)
    state = _state(model)
    with pytest.raises(RuntimeError, match="model failure"):
        _run(name, model, torch.rand(2, 3, 4, 4), torch.tensor([0, 1]))
    assert _state(model) == state


@ALL
def test_unknown_preset_and_option(name):
    images, labels = torch.rand(2, 3, 4, 4), torch.tensor([0, 1])
    with pytest.raises(ValueError, match=r"preset 'no_such_preset'"):
        _run(name, _Linear(), images, labels, preset="no_such_preset")
    with pytest.raises(TypeError, match=r"option\(s\) \['no_such_option'\]"):
        _run(name, _Linear(), images, labels, no_such_option=1)


def _bad_inputs():
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


@ALL
@pytest.mark.parametrize("case", _bad_inputs(), ids=lambda c: c[0])
def test_bad_inputs_raise_clear_errors(name, case):
    _, images, labels, bounds, error, message = case
    with pytest.raises(error, match=message):
        _run(name, _Linear(), images, labels, bounds=bounds)


@ALL
@pytest.mark.parametrize("out_shape", [lambda b: (b * 5,), lambda b: (b, 5, 1)], ids=["flat", "3d"])
def test_model_with_wrong_output_shape_is_rejected(name, out_shape):
    with pytest.raises(ValueError, match=r"logits of shape \(B, num_classes\)"):
        _run(name, _Linear(out_shape=out_shape), torch.rand(2, 3, 4, 4), torch.tensor([0, 1]))
