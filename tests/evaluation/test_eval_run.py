"""gse_explain.run(): the one driver under the CLI, the figures and the notebooks (real ResNet20, CIFAR-10)."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import gse_explain
from gse_explain import RunConfig, load_results, run
from gse_explain.evaluation import rebuild
from gse_explain.evaluation.protocol import attack_batch, load_images
from gse_explain.evaluation.store import FORMAT_VERSION, StoreError, StoreMismatchError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "stores_v1"
COMPARED = ["batch", "image", "example", "label", "target", "offset", "success", "acp", "anc", "l2", "d20", "model_passes"]
run_module = __import__("sys").modules["gse_explain.evaluation.run"]

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def config(shared_data):
    return RunConfig(dataset="cifar10_npz", data_root=shared_data / "cifar10" / "cifar10_test_0-499.npz", model="resnet20",
                     weights=shared_data / "models" / "resnet20_cifar10_gse.pt", attack="gse",
                     options={"iterations": 20, "search_steps": 2}, targeted=True, offsets=(1, 4), num_images=3,
                     batch_size=2, device="cpu")


@pytest.fixture(scope="module")
def store(config, tmp_path_factory):
    path = tmp_path_factory.mktemp("run") / "store"
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        results = run(config, path, progress=False)
    finally:
        torch.set_num_threads(previous)
    return path, results


def test_records_are_the_protocol_applied_batch_by_batch(store, config, cifar_dataset, resnet20):
    path, results = store
    assert results.complete and len(results.records) == 3 * 2 and results.store.manifest["format_version"] == FORMAT_VERSION
    assert results.run_config.to_json() == config.replace(shard=(0, 1)).to_json()  # the shard this process ran
    selection = results.store.read_selection()
    for batch in (0, 1):
        positions = selection["positions"][batch * 2 : (batch + 1) * 2]
        labels = torch.tensor(selection["labels"][batch * 2 : (batch + 1) * 2])
        records, adversarials = attack_batch(resnet20, load_images(cifar_dataset, positions), labels, attack="gse",
                                             targeted=True, offsets=(1, 4), preset="cifar10", options=dict(config.options),
                                             seed=0, batch_index=batch)
        stored = results.records[results.records["batch"] == batch]
        for column in ("image", "label", "target", "success", "acp", "anc", "l2", "d20"):
            np.testing.assert_array_equal(stored[column].to_numpy(), records[column], err_msg=column)
        clean, adversarial, _ = results.images(batch)
        assert np.array_equal(adversarial, adversarials.numpy())


def test_complete_store_is_not_recomputed(store, config, monkeypatch, capsys):
    path, results = store
    monkeypatch.setattr(run_module, "load_model_and_data", lambda *a, **k: pytest.fail("model was rebuilt"))
    again = run(config, path, progress=False)
    assert "is complete; nothing to attack" in capsys.readouterr().err
    assert again.records[COMPARED].equals(results.records[COMPARED])


def test_missing_batch_is_recomputed_identically(store, config, tmp_path):
    path, results = store
    copy = tmp_path / "store"
    shutil.copytree(path, copy)
    (copy / "batches" / "batch-000001.npz").unlink()
    again = run(config, copy, progress=False)
    assert again.records[COMPARED].equals(results.records[COMPARED])


def test_other_settings_are_refused_or_moved_aside(store, config, tmp_path):
    path, _ = store
    copy = tmp_path / "store"
    shutil.copytree(path, copy)
    other = config.replace(seed=1)
    with pytest.raises(StoreMismatchError, match=r"seed: stored 0, requested 1"):
        run(other, copy, progress=False)
    moved_config = config.replace(num_images=1)
    results = run(moved_config, copy, progress=False, overwrite=True)
    assert results.complete and len(results.records) == 2
    assert [p.name for p in tmp_path.iterdir() if ".replaced-" in p.name]


@pytest.mark.parametrize("change, error, fragment", [
    (dict(weights="/nonexistent/weights.pt"), FileNotFoundError, "weights.pt"),
    (dict(offsets=(1, 10)), ValueError, r"target offsets \[10\] are outside 1..9"),
    (dict(model="resnet32"), ValueError, "holds a CIFAR ResNet20, not ResNet32"),
])
def test_bad_model_or_data_leave_no_store(config, tmp_path, change, error, fragment):
    output = tmp_path / "store"
    with pytest.raises(error, match=fragment):
        run(config.replace(**change), output, progress=False)
    assert not output.exists()


def test_run_takes_only_a_run_config(tmp_path):
    with pytest.raises(TypeError, match="run\\(\\) takes a RunConfig; got dict"):
        run({"attack": "gse"}, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_output_that_is_a_file_is_refused(config, tmp_path):
    output = tmp_path / "file"
    output.write_text("mine")
    with pytest.raises(StoreError, match="exists and is not a folder"):
        run(config, output, progress=False)
    assert output.read_text() == "mine"


def test_public_surface():
    for name in ("run", "RunConfig", "RunResults", "load_results", "get_attack", "list_attacks", "create_model"):
        assert hasattr(gse_explain, name), name


@pytest.mark.parametrize("name, rows, targeted", [("gse-untargeted", 2, False), ("pgd0-targeted", 4, True)])
def test_stores_written_before_run_config_still_load(name, rows, targeted, tmp_path, monkeypatch):
    copy = tmp_path / name
    shutil.copytree(FIXTURES / name, copy)
    before = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    results = load_results(copy)
    assert results.store.manifest["format_version"] == 1 and results.complete and len(results.records) == rows
    assert results.run_config.targeted == targeted and results.run_config.model == "resnet20"
    assert results.summary()  # tables can be made
    clean, adversarial, records = results.images(0)
    assert clean.shape[1:] == (3, 32, 32) and adversarial.shape[0] == len(records)
    # the same settings given again are recognised as this (complete) store: nothing is recomputed
    monkeypatch.setattr(run_module, "load_model_and_data", lambda *a, **k: pytest.fail("model was rebuilt"))
    again = run(results.run_config, copy, progress=False)
    assert again.records[COMPARED].equals(results.records[COMPARED])
    assert before == {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}  # nothing rewritten


def test_model_options_reach_the_constructor(config, monkeypatch):
    seen = {}

    def fake_create(name, weights=None, device="cpu", **kwargs):
        seen.update(kwargs)
        raise RuntimeError("stop here")

    monkeypatch.setattr("gse_explain.models.create_model", fake_create)
    with pytest.raises(RuntimeError, match="stop here"):
        rebuild.load_run_model(config.replace(model_options={"width": 2}, normalization="unit"))
    assert seen == {"width": 2, "normalization": "unit"}


def test_rebuilt_model_checks_the_weights_hash(store, tmp_path):
    from gse_explain.analysis.runs import run_model
    from gse_explain.evaluation.rebuild import WeightsMismatchError

    path, results = store
    weights = Path(results.run_config.weights)
    assert run_model(results, None, "cpu") is not None  # the recorded file: accepted
    moved = tmp_path / "moved.pt"
    shutil.copyfile(weights, moved)
    assert run_model(results, None, "cpu", weights=moved) is not None  # moved but identical: accepted
    changed = tmp_path / "changed.pt"
    state = torch.load(weights, map_location="cpu")
    state["linear.bias"] = state["linear.bias"] + 1.0
    torch.save(state, changed)
    with pytest.raises(WeightsMismatchError, match=r"changed.pt has SHA-256 .* but the run was made with"):
        run_model(results, None, "cpu", weights=changed)
    with pytest.raises(FileNotFoundError, match=r"missing.pt of the run is missing"):
        run_model(results, None, "cpu", weights=tmp_path / "missing.pt")
