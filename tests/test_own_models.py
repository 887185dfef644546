"""Bring your own model to the whole pipeline: a timm ResNet-18 (random-init checkpoint saved here) and a
``module:factory`` model through the evaluation CLI on two CIFAR-10 images, then the IS table and CAMs from
the store; the timm model again through run() as an object, and the analysis refusing a different model."""

import json
from pathlib import Path

import pytest
import torch

from gse_explain import RunConfig, load_results, run
from gse_explain.analysis import class_activation_maps, interpretability_table
from gse_explain.analysis.runs import run_model
from gse_explain.evaluate import main as evaluate
from gse_explain.evaluation.rebuild import ModelMismatchError
from gse_explain.models import create_model

FACTORIES = Path(__file__).resolve().parent / "models"
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def timm_checkpoint(tmp_path_factory):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)  # only for this checkpoint's random init
    net = timm.create_model("resnet18", pretrained=False, num_classes=10)
    path = tmp_path_factory.mktemp("timm") / "resnet18_cifar_random.pt"
    torch.save(net.state_dict(), path)
    return path


def _cli(model, output, cifar_npz, *extra):
    # An untrained 10-class net is "correct" on about 10 % of the images: the selection scans until it has 2.
    return ["--dataset", "cifar10_npz", "--data-root", str(cifar_npz), "--model", model, "--num-images", "2",
            "--batch-size", "2", "--attack", "pgd0", "--option", "k=20", "--option", "iterations=20", "--device", "cpu", "--no-progress", "--output", str(output), *extra]


def _analyse(store):
    results = load_results(store)
    assert results.complete and len(results.records) == 2
    table = interpretability_table(store, targets="predicted")  # model rebuilt from the store, its hashes checked
    assert len(table) and table["interpretability_score"].between(0, 1).all()
    clean, _, records = results.images(0)
    model = run_model(results, None, "cpu")
    cams = class_activation_maps(model, torch.from_numpy(clean), torch.tensor(records["label"].to_numpy()[: len(clean)]))
    assert cams.shape == (len(clean), 32, 32) and float(cams.min()) >= 0 and float(cams.max()) <= 1
    return results, model


def test_timm_model_through_the_cli_and_the_analysis(timm_checkpoint, cifar_npz, tmp_path):
    store = tmp_path / "timm"
    assert evaluate(_cli("timm:resnet18", store, cifar_npz, "--weights", str(timm_checkpoint),
                         "--model-option", "num_classes=10")) == 0
    config = json.loads((store / "manifest.json").read_text())["config"]
    assert config["model"] == "timm:resnet18" and config["model_options"] == {"num_classes": 10}
    results, model = _analyse(store)
    assert model.info.cam_head == "fc"  # the CAM head came from timm's metadata


def test_factory_model_through_the_cli_and_the_analysis(cifar_npz, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(FACTORIES))
    store = tmp_path / "factory"
    assert evaluate(_cli("gse_test_factories:build_tiny", store, cifar_npz, "--model-option", "num_classes=10")) == 0
    _analyse(store)  # Grad-CAM finds the layer by probing: the factory declares nothing


def test_timm_object_through_run_and_a_different_model_refused(timm_checkpoint, cifar_npz, tmp_path):
    model = create_model("timm:resnet18", weights=timm_checkpoint, num_classes=10)
    store = tmp_path / "object"
    config = RunConfig(dataset="cifar10_npz", data_root=cifar_npz, model=model, attack="pgd0",
                       options={"k": 20, "iterations": 20}, num_images=2, batch_size=2)
    run(config, store, progress=False)
    assert len(interpretability_table(store, model, targets="predicted"))
    other = create_model("timm:resnet18", weights="random", num_classes=10)
    with pytest.raises(ModelMismatchError, match="state-dict SHA-256"):
        interpretability_table(store, other, targets="predicted")
