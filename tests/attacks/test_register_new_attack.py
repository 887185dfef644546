"""Adding an attack is one module with its ``AttackSpec``: a toy attack declared entirely in this file is
picked up by the registry, the contract checks, the plot style and the figures CLI, and is gone again
after ``registered(...)``. The registry's own validation is tested at the end."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from contract import CONTRACT_CHECKS, check_id, run_check
from gse_explain.attacks import (
    ATTACKS, AttackResult, AttackSpec, get_attack, list_attacks, register_attack, registered, unregister_attack,
)
from gse_explain.attacks.base import attack_session
from gse_explain.plotting.style import attack_color, attack_label

TOY = "toy_sign_step"


# ----- the toy attack, written like the real ones (see gse_explain/attacks/pgd0.py) ---------------------


@dataclass(frozen=True)
class ToySignStepConfig:
    """Toy hyperparameters ([-1, 1] scale).

    Attributes:
        step_size: size ε of the single signed-gradient step, > 0.
    """

    step_size: float = 0.1

    def __post_init__(self) -> None:
        if not self.step_size > 0:
            raise ValueError(f"ToySignStep option error: step_size must be > 0; got {self.step_size!r}")


TOY_SIGN_STEP_PRESETS = {
    "cifar10": {False: dict(step_size=16 / 255), True: dict(step_size=32 / 255)},
}


def toy_sign_step(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    targeted: bool = False,
    bounds: tuple[float, float] = (0.0, 1.0),
    preset: str | None = None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
    **options,
) -> AttackResult:
    """One step x ± ε·sign(∇ CE) on (B, C, H, W) images in ``bounds``: descend CE(target) when targeted,
    ascend CE(label) otherwise. Deterministic; one gradient pass plus one forward pass for ``success``."""
    del progress  # one step needs no progress bar
    config = SPEC.make_config(preset, targeted, **options)
    # seed and generator go to the session, which checks their types (the toy is deterministic).
    with attack_session(model, images, labels, bounds, targeted, seed=seed, generator=generator) as session:
        _, grad = session.caller.logits_and_grad(
            session.canonical, lambda logits: F.cross_entropy(logits, session.labels, reduction="none")
        )
        direction = -grad.sign() if targeted else grad.sign()
        return session.result((session.canonical + config.step_size * direction).clamp(-1.0, 1.0))


# Declared as a real attack module would, but registered only inside the ``toy`` fixture.
SPEC = AttackSpec(
    name=TOY,
    function=toy_sign_step,
    config_class=ToySignStepConfig,
    presets=TOY_SIGN_STEP_PRESETS,
    description="Toy: one signed-gradient step of the cross-entropy (a registry test double)",
    label="ToySignStep",
    color="#117733",
    demo_budget=dict(step_size=0.05),
    test_options=dict(step_size=0.2),
)


@pytest.fixture
def toy():
    with registered(SPEC) as spec:
        yield spec
    assert TOY not in ATTACKS


# ----- the toy is picked up everywhere ------------------------------------------------------------------


def test_toy_is_listed_while_registered(toy):
    assert TOY in list_attacks() and get_attack(TOY) is toy is SPEC
    assert list_attacks() == sorted(list_attacks())


@pytest.mark.parametrize("check", CONTRACT_CHECKS, ids=check_id)
def test_toy_keeps_the_attack_contract(check, toy, request, one_thread):
    run_check(check, toy, request)


def test_plot_style_uses_the_declared_colour_and_label(toy):
    for name in (TOY, "ToySignStep", "toy-sign-step", "TOY SIGN STEP"):
        assert attack_color(name) == "#117733" and attack_label(name) == "ToySignStep"


def test_make_config_validates_options(toy):
    spec = get_attack(TOY)
    assert spec.make_config() == ToySignStepConfig()
    assert spec.make_config("cifar10", True).step_size == 32 / 255
    assert spec.make_config("cifar10", False, step_size=0.5).step_size == 0.5
    with pytest.raises(ValueError, match=r"unknown ToySignStep preset 'imagenet'"):
        spec.make_config("imagenet")
    with pytest.raises(TypeError, match=r"unknown ToySignStep option\(s\) \['k'\]; valid options: \['step_size'\]"):
        spec.make_config(k=3)
    with pytest.raises(ValueError, match="step_size must be > 0"):
        spec.make_config(step_size=-1.0)


def test_figures_demo_dry_run_lists_the_toy_with_its_budget(toy, capsys):
    from gse_explain.figures import cli

    cli.main(["demo", "--attacks", TOY, "--dry-run", "--no-second"])
    err = capsys.readouterr().err
    assert TOY in err and "step_size=0.05" in err


def test_toy_is_gone_outside_the_fixture():
    assert TOY not in list_attacks() and TOY not in ATTACKS
    with pytest.raises(ValueError, match=f"unknown attack '{TOY}'"):
        get_attack(TOY)
    assert attack_label(TOY) == TOY  # unknown again: the name itself
    with registered(SPEC):
        assert get_attack(TOY) is SPEC
    assert TOY not in ATTACKS


# ----- the registry's rules -----------------------------------------------------------------------------


def _spec(**changes) -> AttackSpec:
    return dataclasses.replace(SPEC, **changes)


_MUTABLE_CONFIG = dataclass(type("MutableConfig", (), {"__annotations__": {"step_size": float}}))

# (field, invalid value, error type, message): each error names the field.
INVALID_FIELDS = [
    ("name", "", ValueError, "name must be a non-empty identifier"),
    ("name", "toy-attack", ValueError, "name must be a non-empty identifier"),
    ("name", 3, ValueError, "name must be a non-empty identifier"),
    ("function", "toy", TypeError, "function must be callable"),
    ("config_class", dict, TypeError, "config_class must be a frozen dataclass"),
    ("config_class", _MUTABLE_CONFIG, TypeError, "config_class must be a frozen dataclass"),
    ("presets", ("cifar10",), TypeError, "presets must map preset names"),
    ("presets", {"cifar10": {False: {}}}, ValueError, r"presets\['cifar10'\] must be \{False"),
    ("presets", {"cifar10": {False: {}, True: {"k": 1}}}, TypeError, r"unknown option\(s\) \['k'\]"),
    ("description", "", ValueError, "description must be a non-empty one-line string"),
    ("description", "two\nlines", ValueError, "description must be a non-empty one-line string"),
    ("label", None, ValueError, "label must be a non-empty one-line string"),
    ("color", "green", ValueError, "color must be a '#RRGGBB' hex string"),
    ("color", "#12345", ValueError, "color must be a '#RRGGBB' hex string"),
    ("demo_budget", [("step_size", 1)], TypeError, "demo_budget must be a dict of options"),
    ("test_options", {"steps": 1}, TypeError, r"test_options has unknown option\(s\) \['steps'\]"),
    ("test_options", {"step_size": "0.2"}, TypeError,
     r"AttackSpec 'toy_sign_step': option 'step_size' in test_options must be a float; got '0.2' \(str\)"),
    ("demo_budget", {"step_size": True}, TypeError, "option 'step_size' in demo_budget must be a float"),
    ("presets", {"cifar10": {False: {}, True: {"step_size": "1"}}}, TypeError,
     r"option 'step_size' in presets\['cifar10'\]\[True\] must be a float"),
    ("randomized", 1, TypeError, "randomized must be a bool"),
    ("sequential", "no", TypeError, "sequential must be a bool"),
]


@pytest.mark.parametrize("field, value, error, message", INVALID_FIELDS,
                         ids=[f"{row[0]}-{index}" for index, row in enumerate(INVALID_FIELDS)])
def test_invalid_specs_name_the_field(field, value, error, message):
    with pytest.raises(error, match=message):
        _spec(**{field: value})


def test_option_dicts_are_copied():
    budget = dict(step_size=0.05)
    spec = _spec(demo_budget=budget)
    budget["step_size"] = 1.0
    assert spec.demo_budget == {"step_size": 0.05}


def test_register_rejects_taken_names_and_ambiguous_labels_or_colours():
    with registered(SPEC):
        with pytest.raises(ValueError, match=f"an attack named '{TOY}' is already registered"):
            register_attack(_spec())
        with pytest.raises(ValueError, match="matches attack 'gse'"):
            register_attack(_spec(name="toy2", label="GSE", color="#112233"))
        with pytest.raises(ValueError, match="matches attack 'sparse_rs'"):
            register_attack(_spec(name="sparse_RS", label="Other", color="#112233"))
        with pytest.raises(ValueError, match="is the color of attack 'toy_sign_step'"):
            register_attack(_spec(name="toy2", label="Toy2", color="#117733"))
    with pytest.raises(TypeError, match="register_attack takes an AttackSpec"):
        register_attack("toy")  # the old form register_attack(name, function, presets, ...) is gone
    assert TOY not in ATTACKS and "toy2" not in ATTACKS


def test_replace_and_unregister():
    with registered(SPEC):
        replacement = _spec(description="a replacement")
        with registered(replacement, replace=True):
            assert get_attack(TOY) is replacement
        assert get_attack(TOY) is SPEC  # the replaced spec is back
        assert unregister_attack(TOY) is SPEC and TOY not in ATTACKS
    assert TOY not in ATTACKS  # already unregistered inside: leaving the block changes nothing
    with pytest.raises(ValueError, match=f"unknown attack '{TOY}'"):
        unregister_attack(TOY)
