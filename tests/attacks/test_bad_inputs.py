"""Every registered attack × every bad model or argument of ``bad_inputs.py``, one test each, and every
wrongly typed option of every attack's config. (``test_attack_contract.py`` runs the same cases as contract
checks, which also cover attacks registered by other tests.)"""

import math

import pytest
import torch

from bad_inputs import BAD_CASES, check_option_type, option_type_cases
from gse_explain.attacks import get_attack, list_attacks
from gse_explain.attacks.options import build_config, check_option_types

OPTION_CASES = [(name, field, value) for name in list_attacks() for field, value in option_type_cases(get_attack(name))]


@pytest.mark.parametrize("case", list(BAD_CASES))
@pytest.mark.parametrize("name", list_attacks())
def test_bad_model_or_argument(name, case, one_thread):
    BAD_CASES[case](get_attack(name))


@pytest.mark.parametrize("name, field, value", OPTION_CASES,
                         ids=[f"{name}-{field}-{value!r}" for name, field, value in OPTION_CASES])
def test_wrongly_typed_option_is_a_type_error(name, field, value):
    check_option_type(get_attack(name), field, value)


def test_there_are_enough_cases():
    assert len(list_attacks()) * len(BAD_CASES) + len(OPTION_CASES) >= 40
    assert {field for name, field, _ in OPTION_CASES if name == "gse"} >= {"iterations", "step_size", "k_hat"}


def test_option_type_messages():
    gse = get_attack("gse")
    with pytest.raises(TypeError, match=r"^GSE option 'iterations' must be an int; got 5.5 \(float\)$"):
        gse.make_config(iterations=5.5)
    with pytest.raises(TypeError, match=r"GSE option 'iterations' must be an int; got '5' \(str\)"):
        gse.make_config(iterations="5")
    with pytest.raises(TypeError, match=r"GSE option 'mu' must be a float; got True \(bool\)"):
        gse.make_config(mu=True)
    with pytest.raises(TypeError, match=r"FWnucl option 'patch_size' must be an int or None; got 2.0"):
        get_attack("fwnucl").make_config(patch_size=2.0)
    with pytest.raises(TypeError, match=r"StrAttack option 'retrain' must be a bool; got 1 \(int\)"):
        get_attack("strattack").make_config(retrain=1)
    with pytest.raises(TypeError, match=r"Sparse-RS option 'loss' must be a str; got 3"):
        get_attack("sparse_rs").make_config(loss=3)
    with pytest.raises(TypeError, match=r"Homotopy option 'iter_inc' must be a tuple \(or list\) of ints"):
        get_attack("homotopy").make_config(iter_inc=(100, 200.5))
    with pytest.raises(TypeError, match=r"SAPF option 'rhos' must be a tuple"):
        get_attack("sapf").make_config(rhos=(1.0, "2", 3.0, 4.0))


def test_valid_values_of_other_python_types_are_accepted():
    gse = get_attack("gse")
    assert gse.make_config(mu=1, step_size=1).mu == 1  # an int for a float field
    assert gse.make_config(iterations=torch.tensor(3).item()).iterations == 3
    homotopy = get_attack("homotopy").make_config(iter_inc=[100, 200])  # a list for a tuple field
    assert homotopy.iter_inc == (100, 200)
    assert get_attack("fwnucl").make_config(patch_size=None).patch_size is None
    # Ranges stay the configs' own checks (ValueError naming the option).
    with pytest.raises(ValueError, match="iterations must be ≥ 1"):
        gse.make_config(iterations=0)
    with pytest.raises(ValueError, match="eta_delta, eta_g and eta_min must be > 0"):
        get_attack("sapf").make_config(eta_g=0.0)


def test_preset_values_are_type_checked():
    from gse_explain.attacks.gse import GSEConfig

    presets = {"bad": {False: dict(iterations=2.5), True: {}}}
    with pytest.raises(TypeError, match=r"GSE option 'iterations' in preset 'bad' must be an int; got 2.5"):
        build_config(GSEConfig, presets, "GSE", "bad", False, {})
    check_option_types(GSEConfig, dict(q=0.5, kappa=0, no_such_field="ignored"), "GSE")
    with pytest.raises(TypeError, match="must be a float; got nan"):
        check_option_types(GSEConfig, dict(q=math.nan), "GSE")
