"""Bring your own model: run() with an nn.Module, a store that records its class and state-dict hash, and an
analysis that asks for the model again and refuses a different one."""

import copy
import json

import pytest
import torch

from gse_explain import RunConfig, load_results, run
from gse_explain.analysis import interpretability_table
from gse_explain.evaluation.rebuild import ModelMismatchError, ModelRequiredError
from gse_explain.evaluation.store import StoreMismatchError
from gse_explain.io import state_dict_sha256

pytestmark = pytest.mark.usefixtures("one_thread")


def _config(model, cifar_npz, **changes):
    fields = dict(dataset="cifar10_npz", data_root=cifar_npz, model=model, attack="gse", targeted=True, offsets=(1,),
                  options={"iterations": 20, "search_steps": 2}, num_images=2, batch_size=2, device="cpu")
    return RunConfig(**{**fields, **changes})


@pytest.fixture(scope="module")
def object_store(resnet20, cifar_npz, tmp_path_factory):
    model = copy.deepcopy(resnet20)
    path = tmp_path_factory.mktemp("object") / "store"
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run(_config(model, cifar_npz), path, progress=False)
    finally:
        torch.set_num_threads(previous)
    return model, path


def test_the_store_records_class_and_state_dict_hash(object_store):
    model, path = object_store
    config = json.loads((path / "manifest.json").read_text())["config"]
    assert config["model"] == "object:gse_explain.models.normalization.NormalizedModel"
    assert config["model_sha256"] == state_dict_sha256(model)
    results = load_results(path)
    assert results.complete and len(results.records) == 2 and results.run_config.model.startswith("object:")


def test_analysis_asks_for_the_model_and_checks_its_hash(object_store):
    model, path = object_store
    with pytest.raises(ModelRequiredError, match=r"made with a model object .*NormalizedModel.*pass the same model again"):
        interpretability_table(path)
    table = interpretability_table(path, model)
    assert len(table) and table["interpretability_score"].between(0, 1).all()
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.model.linear.bias.add_(0.01)
    with pytest.raises(ModelMismatchError, match=r"state-dict SHA-256 .* attacked a model with"):
        interpretability_table(path, other)


def test_resuming_with_another_model_object_is_refused(object_store, cifar_npz):
    model, path = object_store
    assert run(_config(model, cifar_npz), path, progress=False).complete  # the same object: complete, reused
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.model.linear.bias.add_(0.01)
    with pytest.raises(StoreMismatchError, match="model_sha256: stored"):
        run(_config(other, cifar_npz), path, progress=False)


def test_named_runs_record_the_built_models_hash_too(resnet20, resnet20_weights, cifar_npz, tmp_path):
    path = tmp_path / "named"
    run(_config("resnet20", cifar_npz, weights=resnet20_weights), path, progress=False)
    recorded = json.loads((path / "manifest.json").read_text())["config"]["model_sha256"]
    assert recorded == state_dict_sha256(resnet20)
    interpretability_table(path, resnet20)  # the same network passed in: accepted


def test_name_only_settings_are_refused_with_an_object(resnet20, cifar_npz):
    with pytest.raises(ValueError, match="model is a model object: weights, normalization and model_options apply only"):
        _config(resnet20, cifar_npz, weights="random")
