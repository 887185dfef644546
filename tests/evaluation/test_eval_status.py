"""store_status / python -m gse_explain.status: completeness per batch and shard, and --verify."""

import shutil
from pathlib import Path

import numpy as np

from gse_explain.evaluation.status import store_status
from gse_explain.status import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "stores_v1"


def test_complete_store(tmp_path, capsys):
    copy = tmp_path / "store"
    shutil.copytree(FIXTURES / "pgd0-targeted", copy)
    status = store_status(copy, verify=True)
    assert status.complete and status.stored_batches == [0, 1] and status.missing_batches == [] and status.examples == 2
    assert main([str(copy), "--verify"]) == 0
    assert "pgd0 targeted on resnet20: complete; 2 of 2 batches" in capsys.readouterr().out


def test_missing_batch_and_altered_images(tmp_path, capsys):
    copy = tmp_path / "store"
    shutil.copytree(FIXTURES / "pgd0-targeted", copy)
    (copy / "batches" / "batch-000001.npz").unlink()
    status = store_status(copy)
    assert not status.complete and status.missing_batches == [1]
    assert main([str(copy)]) == 1
    assert "INCOMPLETE; 1 of 2 batches" in capsys.readouterr().out
    assert main([str(tmp_path / "nowhere")]) == 1
    assert "no result store at" in capsys.readouterr().out


def test_verify_reports_a_batch_whose_images_were_altered(tmp_path, shared_data):
    from gse_explain import RunConfig, run

    config = RunConfig(dataset="cifar10_npz", data_root=shared_data / "cifar10" / "cifar10_test_0-499.npz", model="resnet20",
                       weights=shared_data / "models" / "resnet20_cifar10_gse.pt", attack="pgd0",
                       options={"k": 3, "iterations": 3, "n_restarts": 1}, num_images=2, batch_size=1, device="cpu")
    path = tmp_path / "store"
    run(config, path, progress=False)
    batch = path / "batches" / "batch-000001.npz"
    data = dict(np.load(batch))
    data["clean"] = data["clean"] * 0.5
    np.savez_compressed(batch, **data)
    assert store_status(path).complete  # records alone look fine
    status = store_status(path, verify=True)
    assert not status.complete and "batch-000001.npz do not have the SHA-256" in status.problems[0]
