"""The adv-lib adapters (``adv_lib:fmn``, ``adv_lib:sigma_zero``, ``adv_lib:vfga``): lazy registration and its
error without adv-lib (always run), and with adv-lib installed (``make install-adv-lib``): the attack
contract, the box map, the global RNG fork, σ-zero's untargeted-only refusal and a stored run."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch

from contract import CONTRACT_CHECKS, check_id, run_check
from bad_inputs import BAD_CASES, TinyLinear, tiny_batch
from gse_explain.attacks import ATTACKS, get_attack, unregister_attack
from gse_explain.attacks.external.adv_lib_fmn import FMNConfig
from gse_explain.attacks.external.adv_lib_sigma_zero import SigmaZeroConfig
from gse_explain.attacks.external.adv_lib_vfga import VFGAConfig
from gse_explain.attacks.registry import LAZY_ATTACKS
from gse_explain.evaluation import RunConfig
from gse_explain.figures.cli import _attack_list, _attack_option

NAMES = ("adv_lib:fmn", "adv_lib:sigma_zero", "adv_lib:vfga")
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def registry_restored():
    """The adapters' registration is undone after the test (other tests iterate over ATTACKS)."""
    before = {name for name in NAMES if name in ATTACKS}
    yield
    for name in NAMES:
        if name in ATTACKS and name not in before:
            unregister_attack(name)


# ----- without adv-lib --------------------------------------------------------------------------------


def test_missing_adv_lib_is_an_import_error_naming_the_install_command(monkeypatch, registry_restored):
    for name in NAMES:
        ATTACKS.pop(name, None)
    monkeypatch.setitem(sys.modules, "adv_lib", None)  # `import adv_lib` now raises ImportError
    monkeypatch.setitem(sys.modules, "adv_lib.attacks", None)
    for name in NAMES:
        with pytest.raises(ImportError, match=r"adv-lib==0\.2\.8.*`make install-adv-lib`"):
            get_attack(name)
        assert name not in ATTACKS  # nothing half-registered
    with pytest.raises(ImportError, match="make install-adv-lib"):
        RunConfig(attack="adv_lib:fmn")


def test_unknown_names_list_the_optional_extras(registry_restored):
    with pytest.raises(ValueError, match=r"unknown attack 'adv_lib:nope'; available: .*gse.*; optional extras "
                                         r"\(registered on first use\): .*adv_lib:fmn"):
        get_attack("adv_lib:nope")
    with pytest.raises(ValueError, match=r"RunConfig.attack: unknown attack 'fgsm'; available: "):
        RunConfig(attack="fgsm")
    assert set(NAMES) <= set(LAZY_ATTACKS)


def test_the_figures_cli_accepts_adapter_names_and_their_options():
    assert _attack_list("gse,pgd0,adv_lib:fmn") == ["gse", "pgd0", "adv_lib:fmn"]
    assert _attack_option("adv_lib:fmn:steps=50") == ("adv_lib:fmn", "steps", 50)
    assert _attack_option("strattack:max_iter=100") == ("strattack", "max_iter", 100)
    for bad in ("adv_lib:nope", "fmn"):
        with pytest.raises(Exception, match="--attacks takes names"):
            _attack_list(bad)


@pytest.mark.parametrize("config_class, options, message", [
    (FMNConfig, dict(norm=3), "norm must be 0, 1, 2 or math.inf"),
    (FMNConfig, dict(steps=0), "steps must be an integer ≥ 1"),
    (FMNConfig, dict(gamma_init=1.5), r"gamma_init must be in \(0, 1\)"),
    (SigmaZeroConfig, dict(tau_0=2.0), r"tau_0 must be in \[0, 1\]"),
    (SigmaZeroConfig, dict(sigma=0.0), "sigma must be > 0"),
    (VFGAConfig, dict(n_samples=0), "n_samples must be an integer ≥ 1"),
])
def test_configs_check_their_values_without_adv_lib(config_class, options, message):
    with pytest.raises(ValueError, match=message):
        config_class(**options)
    assert FMNConfig(norm=math.inf).norm == math.inf and FMNConfig().steps == 1000


# ----- with adv-lib ------------------------------------------------------------------------------------

# σ-zero is untargeted only: the checks that run targeted calls are replaced by the untargeted bad cases.
_TARGETED_CHECKS = {"result_passes_inputs_and_model_state", "bad_models_and_arguments", "dtypes_on_resnet20"}
_TARGETED_CASES = {"nonfinite_logits_on_later_calls", "target_is_the_prediction", "plain_function_model"}


@pytest.fixture
def adapter(request, registry_restored):
    pytest.importorskip("adv_lib.attacks", reason="adv-lib not installed (make install-adv-lib)")
    return get_attack(request.param)


@pytest.mark.parametrize("adapter", NAMES, indirect=True)
@pytest.mark.parametrize("check", CONTRACT_CHECKS, ids=check_id)
def test_contract(check, adapter, request):
    if adapter.name == "adv_lib:sigma_zero" and check_id(check) in _TARGETED_CHECKS:
        pytest.skip("σ-zero is untargeted only (test_sigma_zero_untargeted_contract covers the rest)")
    run_check(check, adapter, request)


@pytest.mark.parametrize("adapter", ["adv_lib:sigma_zero"], indirect=True)
def test_sigma_zero_untargeted_contract(adapter, resnet20, cifar_correct):
    for name, case in BAD_CASES.items():
        if name not in _TARGETED_CASES:
            case(adapter)
    images, labels = cifar_correct[0][:2], cifar_correct[1][:2]
    with pytest.raises(ValueError, match=r"untargeted only.*adv_lib:fmn for targeted"):
        adapter.function(resnet20, images, (labels + 1) % 10, targeted=True, steps=3)
    result = adapter.function(resnet20, images, labels, steps=20)
    assert result.gradient_passes == 2 * 20 and result.forward_passes == 2


@pytest.mark.parametrize("adapter", ["adv_lib:fmn"], indirect=True)
def test_fmn_l0_fools_resnet20_with_few_pixels_and_maps_any_box(adapter, resnet20, cifar_correct):
    images, labels = cifar_correct[0][:2], cifar_correct[1][:2]
    result = adapter.function(resnet20, images, labels, steps=30)
    changed = (result.adversarials != images).flatten(1).sum(dim=1)
    assert result.success.all() and (changed > 0).all() and (changed <= 20).all(), changed
    assert result.gradient_passes == 2 * 30 and result.forward_passes == 2  # + the success test
    # The same attack on [-1, 1] images of a model taking [-1, 1]: the same adversarials, mapped.
    wide = images * 2 - 1
    mapped = adapter.function(lambda x: resnet20((x + 1) / 2), wide, labels, bounds=(-1, 1), steps=30)
    assert torch.equal(mapped.success, result.success)
    assert torch.equal(mapped.adversarials != wide, result.adversarials != images)  # same entries changed
    assert torch.allclose((mapped.adversarials + 1) / 2, result.adversarials, atol=1e-6)


@pytest.mark.parametrize("adapter", ["adv_lib:vfga"], indirect=True)
def test_vfga_draws_from_a_forked_global_rng(adapter, resnet20, cifar_correct):
    images, labels = cifar_correct[0][:2], cifar_correct[1][:2]
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = adapter.function(resnet20, images, labels, seed=5, max_iter=5, n_samples=3)
    assert torch.equal(torch.rand(3), expected_next)  # the caller's global stream is where it was
    again = adapter.function(resnet20, images, labels, generator=torch.Generator().manual_seed(5), seed=9,
                             max_iter=5, n_samples=3)
    assert torch.equal(first.adversarials, again.adversarials)  # seeded from the attack's generator


@pytest.mark.parametrize("adapter", ["adv_lib:fmn"], indirect=True)
def test_a_stored_run_of_fmn(adapter, shared_data, tmp_path):
    from gse_explain import load_results, run

    config = RunConfig(dataset="cifar10_npz", data_root=shared_data / "cifar10" / "cifar10_test_0-499.npz",
                       model="resnet20", weights=shared_data / "models" / "resnet20_cifar10_gse.pt",
                       attack="adv_lib:fmn", options={"steps": 20}, num_images=2, batch_size=2, device="cpu")
    assert config.resolved_preset == "cifar10"
    run(config, tmp_path / "store", progress=False)
    results = load_results(tmp_path / "store")
    assert results.complete and results.run_config.attack == "adv_lib:fmn" and len(results.records) == 2
    summary = results.summary()
    assert summary["n"] == 2 and summary["asr"] == 1.0 and 0 < summary["acp"] <= 20  # pixels, 20 steps
    assert np.all(results.records["acp"].to_numpy() > 0)
    assert torch.get_default_dtype() == torch.float32


def test_tiny_linear_model_runs_every_adapter(registry_restored):
    pytest.importorskip("adv_lib.attacks", reason="adv-lib not installed (make install-adv-lib)")
    model = TinyLinear()
    images, labels = tiny_batch(model)
    for name in NAMES:
        result = get_attack(name).function(model, images, labels, **get_attack(name).test_options)
        assert result.adversarials.shape == images.shape and result.model_passes > 0, name


@pytest.mark.parametrize("adapter", ["adv_lib:fmn"], indirect=True)
def test_fmn_survives_a_batch_whose_l0_radius_is_zero_everywhere(adapter):
    """adv-lib 0.2.8's ℓ0 projection fails on topk(k=0) when every image is adversarial at once (here: every
    image misclassified already); the adapter's guard returns them unchanged, successful."""
    from adv_lib.attacks import fast_minimum_norm

    model = TinyLinear()
    images, predicted = tiny_batch(model)
    wrong = (predicted + 1) % 5
    original = fast_minimum_norm.l0_projection_
    with pytest.raises(RuntimeError, match="out of bounds"):  # the bug, without the guard
        fast_minimum_norm.fmn(model, images, wrong, norm=0, steps=3)
    result = adapter.function(model, images, wrong, steps=3)
    assert result.success.all() and torch.equal(result.adversarials, images)
    assert fast_minimum_norm.l0_projection_ is original  # the guard is undone after the call
