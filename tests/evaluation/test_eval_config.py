"""RunConfig: validation on construction (a message naming the field), the JSON form and schema-1 configs."""

import json
from pathlib import Path

import pytest

from gse_explain import RunConfig
from gse_explain.evaluation.config import CONFIG_SCHEMA, parse_shard
from gse_explain.evaluation.store import config_diff

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "stores_v1"


@pytest.mark.parametrize("fields, error, fragment", [
    (dict(dataset="mnist"), ValueError, "RunConfig.dataset: unknown dataset 'mnist'"),
    (dict(model="resnet18"), ValueError, "RunConfig.model: unknown model 'resnet18'"),
    (dict(attack="fgsm"), ValueError, "RunConfig.attack: unknown attack 'fgsm'; available: fwnucl, gse"),
    (dict(preset="cifar100"), ValueError, "RunConfig.preset 'cifar100' is not a preset of gse"),
    (dict(options={"no_such_option": 1}), TypeError, r"RunConfig.options: unknown GSE option\(s\) \['no_such_option'\]"),
    (dict(options={"iterations": object()}), TypeError, r"RunConfig.options\['iterations'\] must be a number"),
    (dict(options=[("iterations", 3)]), TypeError, "RunConfig.options must be a mapping"),
    (dict(model_options={1: 2}), TypeError, "RunConfig.model_options keys must be option names"),
    (dict(offsets=(1, 2)), ValueError, "RunConfig.offsets only apply to targeted runs"),
    (dict(targeted=True, offsets=(1, 1)), ValueError, r"RunConfig.offsets repeats \[1\]"),
    (dict(targeted=True, offsets=()), ValueError, "RunConfig.offsets is empty"),
    (dict(targeted=True, offsets=(0, 2)), ValueError, "RunConfig.offsets must be positive"),
    (dict(targeted=True, offsets="12"), TypeError, "RunConfig.offsets must be a sequence of ints"),
    (dict(targeted=True, offsets=(1.0,)), TypeError, "RunConfig.offsets must be a sequence of ints"),
    (dict(targeted="yes"), TypeError, "RunConfig.targeted must be a bool"),
    (dict(num_images=0), ValueError, "RunConfig.num_images must be an int ≥ 1"),
    (dict(num_images=2.5), ValueError, "RunConfig.num_images must be an int ≥ 1"),
    (dict(batch_size=0), ValueError, "RunConfig.batch_size must be an int ≥ 1"),
    (dict(batch_size=True), ValueError, "RunConfig.batch_size must be an int ≥ 1"),
    (dict(seed="0"), TypeError, "RunConfig.seed must be an int"),
    (dict(seed=1.5), TypeError, "RunConfig.seed must be an int"),
    (dict(image_size=-3), ValueError, "RunConfig.image_size must be a positive int"),
    (dict(data_root=3), TypeError, "RunConfig.data_root must be a path"),
    (dict(weights=1), TypeError, "RunConfig.weights must be a weights file path"),
    (dict(normalization="zscore"), ValueError, "RunConfig.normalization must be 'unit', 'imagenet' or None"),
    (dict(download="no"), TypeError, "RunConfig.download must be a bool"),
    (dict(device=""), TypeError, "RunConfig.device must be a device string"),
    (dict(shard="1/1"), ValueError, r"shard i/n needs n ≥ 1 and 0 ≤ i < n; got 1/1"),
    (dict(shard="first"), ValueError, "shard must look like 'i/n'"),
    (dict(shard=(0.0, 2)), TypeError, "shard must be a pair"),
])
def test_invalid_fields_are_named(fields, error, fragment):
    with pytest.raises(error, match=fragment):
        RunConfig(**fields)


def test_frozen_and_options_read_only():
    config = RunConfig(options={"iterations": 5})
    with pytest.raises(Exception):
        config.attack = "pgd0"
    with pytest.raises(TypeError):
        config.options["iterations"] = 6
    assert config.replace(attack="pgd0", options={}).attack == "pgd0"


def test_paths_absolute_and_preset_resolved(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = RunConfig(dataset="cifar10_npz", data_root="data.npz", model="resnet20", weights="w.pt")
    assert config.data_root == str(tmp_path / "data.npz") and config.weights == str(tmp_path / "w.pt")
    assert config.resolved_preset == "cifar10"
    assert RunConfig().resolved_preset == "imagenet"  # skimage photos: the ImageNet setting
    assert RunConfig(attack="gse", preset="none").preset is None
    assert RunConfig(model="resnet20", weights="random").weights == "random"


def test_json_round_trip_keeps_everything():
    config = RunConfig(dataset="cifar10_npz", data_root="/data/x.npz", model="resnet20", weights="DEFAULT",
                       model_options={"num_classes": 10}, attack="pgd0", options={"k": 5}, targeted=True, offsets=(1, 3),
                       num_images=7, batch_size=3, seed=11, device="cpu", shard="1/2")
    data = config.to_json()
    assert data["schema"] == CONFIG_SCHEMA and data["mode"] == "targeted" and data["preset"] == "cifar10"
    assert data["offsets"] == [1, 3] and data["shard"] == [1, 2] and data["model_options"] == {"num_classes": 10}
    json.dumps(data)  # the manifest form is plain JSON
    again = RunConfig.from_json(json.loads(json.dumps(data)))
    assert again.to_json() == data and again.shard == (1, 2) and again.offsets == (1, 3)


def test_unknown_keys_in_a_stored_config_are_refused():
    with pytest.raises(ValueError, match=r"unknown run configuration keys \['colour'\]"):
        RunConfig.from_json({**RunConfig().to_json(), "colour": "red"})


@pytest.mark.parametrize("store", ["gse-untargeted", "pgd0-targeted"])
def test_schema1_configs_parse_and_compare_equal(store):
    stored = json.loads((FIXTURES / store / "manifest.json").read_text())["config"]
    assert "schema" not in stored and "model_options" not in stored  # written before RunConfig existed
    config = RunConfig.from_json(stored)
    assert config.attack == stored["attack"] and config.targeted == stored["targeted"]
    requested = {**config.to_json(), "weights_sha256": stored["weights_sha256"]}
    assert config_diff(stored, requested) == []  # a resumed run with the same settings matches the old store
    assert config_diff(stored, {**requested, "model_options": {"depth": 3}}) == [
        "model_options: stored {}, requested {'depth': 3}"]


def test_parse_shard():
    assert parse_shard("2/3") == (2, 3) and parse_shard((0, 1)) == (0, 1)


def test_stored_config_of_an_unregistered_attack_is_readable_without_attack_checks():
    stored = {**RunConfig(model="resnet20", weights="random").to_json(), "attack": "my_private_attack", "options": {"x": 1}}
    with pytest.raises(ValueError, match="RunConfig.attack: unknown attack 'my_private_attack'"):
        RunConfig.from_json(stored)
    config = RunConfig.from_json(stored, check_attack=False)
    assert config.attack == "my_private_attack" and config.model == "resnet20" and dict(config.options) == {"x": 1}
    with pytest.raises(ValueError, match="RunConfig.batch_size"):  # everything else is still checked
        RunConfig.from_json({**stored, "batch_size": 0}, check_attack=False)
