"""gse_explain.Attack: the class API equals one call of the functional API, for every registered attack."""

import pytest
import torch

from gse_explain import Attack
from gse_explain.attacks import get_attack, list_attacks


@pytest.mark.parametrize("name", list_attacks())
@pytest.mark.parametrize("targeted", [False, True], ids=["untargeted", "targeted"])
def test_class_call_equals_the_function(name, targeted, resnet20, cifar_correct, one_thread):
    images, labels = cifar_correct[0][:2], cifar_correct[1][:2]
    if targeted:
        labels = (labels + 1) % 10
    spec = get_attack(name)
    attack = Attack(name, resnet20, targeted=targeted, seed=3, **spec.test_options)
    adversarials = attack(images, labels)
    expected = spec.function(resnet20, images, labels, targeted=targeted, seed=3, **spec.test_options)
    assert torch.equal(adversarials, expected.adversarials)
    assert torch.equal(attack.last_result.success, expected.success)
    assert attack.last_result.model_calls == expected.model_calls
    assert name in repr(attack)


def test_options_and_arguments_are_checked_at_construction(resnet20):
    with pytest.raises(ValueError, match="unknown attack 'fgsm'"):
        Attack("fgsm", resnet20)
    with pytest.raises(TypeError, match=r"unknown GSE option\(s\) \['iters'\]"):
        Attack("gse", resnet20, iters=3)
    with pytest.raises(ValueError, match="preset 'mnist'"):
        Attack("gse", resnet20, preset="mnist")
    with pytest.raises(TypeError, match="seed must be an int or None"):
        Attack("pgd0", resnet20, seed="1")
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        Attack("pgd0", resnet20, generator=1)


def test_successive_calls_continue_one_seeded_stream(resnet20, cifar_correct, one_thread):
    images, labels = cifar_correct[0][:2], cifar_correct[1][:2]
    options = get_attack("sparse_rs").test_options
    first, again = Attack("sparse_rs", resnet20, seed=5, **options), Attack("sparse_rs", resnet20, seed=5, **options)
    runs = [first(images, labels) for _ in range(2)]
    assert all(torch.equal(a, again(images, labels)) for a in runs)  # a fresh Attack repeats the sequence
