"""Targeted runs attack all offsets of a batch in one call (attacks with independent rows), identical to one call
per offset; the execution fields of RunConfig round-trip, old stores still resume, and amp is compared and checked."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from gse_explain import RunConfig, run
from gse_explain.attacks import get_attack
from gse_explain.evaluation.protocol import attack_batch, load_images, select_correct
from gse_explain.evaluation.results import load_results
from gse_explain.evaluation.store import StoreMismatchError, config_diff

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "stores_v1"
TINY = dict(iterations=8, search_steps=2)
run_module = __import__("sys").modules["gse_explain.evaluation.run"]


@pytest.fixture(scope="module")
def two_correct(resnet20, cifar_dataset):
    selection = select_correct(resnet20, cifar_dataset, 2)
    return load_images(cifar_dataset, selection.positions), torch.as_tensor(selection.labels)


def test_gse_targets_in_one_call_equal_one_call_per_offset(resnet20, two_correct):
    images, labels = two_correct
    assert get_attack("gse").independent_rows
    batched_info, single_info = {}, {}
    batched, adv_batched = attack_batch(resnet20, images, labels, targeted=True, offsets=(1, 2), options=TINY, info=batched_info)
    single, adv_single = attack_batch(resnet20, images, labels, targeted=True, offsets=(1, 2), options=TINY,
                                      max_call_elements=1, info=single_info)  # one offset per call, as before
    assert batched_info["attack_calls"] == 1 and single_info["attack_calls"] == 2
    assert torch.equal(adv_batched, adv_single)  # bit-identical adversarials, same (offset-major) row order
    for name in set(batched) - {"time", "model_passes"}:
        np.testing.assert_array_equal(batched[name], single[name], err_msg=name)
    assert list(batched["offset"]) == [1, 1, 2, 2] and batched["success"].any()
    # passes are amortised over each call's rows: the totals agree
    assert batched["model_passes"].sum() == pytest.approx(single["model_passes"].sum())
    assert batched_info["compile_seconds"] == 0.0


def test_attacks_with_coupled_rows_keep_one_call_per_offset(resnet20, two_correct):
    images, labels = two_correct
    assert not get_attack("pgd0").independent_rows  # randomized: one stream per call
    info = {}
    records, _ = attack_batch(resnet20, images, labels, attack="pgd0", targeted=True, offsets=(1, 2),
                              options=dict(k=3, iterations=2, n_restarts=1), info=info)
    assert info["attack_calls"] == 2 and len(records["offset"]) == 4


def test_run_config_execution_fields_round_trip():
    config = RunConfig(model="resnet20", weights="random", compile=True, amp="bf16", channels_last=True)
    data = config.to_json()
    assert (data["compile"], data["amp"], data["channels_last"]) == (True, "bf16", True)
    again = RunConfig.from_json(data)
    assert again.to_json() == data and again.amp == "bf16" and again.compile and again.channels_last
    assert config_diff(data, {**data, "compile": False, "channels_last": False}) == []  # how it runs: not compared
    assert config_diff(data, {**data, "amp": None}) == ["amp: stored 'bf16', requested None"]
    with pytest.raises(ValueError, match="RunConfig.amp must be None, 'bf16' or 'fp16'; got 'fp32'"):
        RunConfig(amp="fp32")
    with pytest.raises(TypeError, match="RunConfig.channels_last must be True or False"):
        RunConfig(channels_last="yes")


def test_old_store_resumes_with_execution_options_but_not_with_amp(tmp_path, monkeypatch):
    copy = tmp_path / "old"
    shutil.copytree(FIXTURES / "gse-untargeted", copy)
    stored = load_results(copy).run_config
    assert stored.amp is None and not stored.compile  # keys the store never recorded take their defaults
    monkeypatch.setattr(run_module, "load_model_and_data", lambda *a, **k: pytest.fail("model was rebuilt"))
    again = run(stored.replace(compile=True, channels_last=True), copy, progress=False)
    assert again.complete and len(again.records) == 2
    with pytest.raises(StoreMismatchError, match="amp: stored None, requested 'bf16'"):
        run(stored.replace(amp="bf16"), copy, progress=False)


def test_amp_the_model_cannot_run_is_refused_before_the_store(shared_data, tmp_path):
    config = RunConfig(dataset="cifar10_npz", data_root=shared_data / "cifar10" / "cifar10_test_0-499.npz",
                       model="resnet20", weights=shared_data / "models" / "resnet20_cifar10_gse.pt", num_images=1,
                       device="cpu", amp="fp16")
    with pytest.raises(ValueError, match="amp='fp16' needs a CUDA model; on CPU use amp='bf16'"):
        run(config, tmp_path / "store", progress=False)
    assert not (tmp_path / "store").exists()
