"""The contract every registered attack keeps (the uniform signature of :mod:`gse_explain.attacks.base`).

Every check of :mod:`contract` runs on every attack of ``list_attacks()``, with the attack's own fast
``spec.test_options`` and ``spec.randomized`` (well under a second per run on one CPU thread).
Attack-specific behaviour is tested in ``test_<attack>.py``; registering a new attack is tested in
``test_register_new_attack.py``.
"""

import importlib

import matplotlib.colors as mcolors
import pytest

from contract import CONTRACT_CHECKS, check_id, run_check
from gse_explain.attacks import ATTACKS, get_attack, list_attacks

# The modules that declare the project's attacks (each ends with ``SPEC = register_attack(AttackSpec(...))``).
ATTACK_MODULES = ("gse", "strattack", "fwnucl", "pgd0", "sparse_rs", "homotopy", "sapf")


@pytest.mark.parametrize("check", CONTRACT_CHECKS, ids=check_id)
@pytest.mark.parametrize("name", list_attacks())
def test_contract(name, check, request, one_thread):
    run_check(check, get_attack(name), request)


def test_each_attack_module_declares_the_registered_spec():
    assert sorted(ATTACK_MODULES) == list_attacks() == sorted(ATTACKS)
    for module_name in ATTACK_MODULES:
        module = importlib.import_module(f"gse_explain.attacks.{module_name}")
        assert module.SPEC is get_attack(module_name) is ATTACKS[module_name]


def test_every_spec_has_a_label_a_distinct_colour_and_test_options():
    specs = [get_attack(name) for name in list_attacks()]
    assert all(spec.label and spec.description for spec in specs)
    assert len({spec.label.lower() for spec in specs}) == len(specs)
    colours = [mcolors.to_hex(spec.color) for spec in specs]
    assert len(set(colours)) == len(colours)
    assert all(spec.test_options for spec in specs)  # the contract runs must be cut down
    # Today's randomized / sequential attacks (the contract's seed check and bench/ rely on these flags).
    assert {s.name for s in specs if s.randomized} == {"pgd0", "sparse_rs"}
    assert {s.name for s in specs if s.sequential} == {"homotopy", "sapf"}


def test_unknown_names_are_rejected():
    with pytest.raises(ValueError, match=r"unknown attack 'no_such_attack'; available: fwnucl, gse"):
        get_attack("no_such_attack")
