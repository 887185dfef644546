"""--shard auto: rank and world size from torchrun or a SLURM array; a real torchrun run fills one store."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gse_explain import RunConfig, load_results, run
from gse_explain.evaluation.launchers import launcher_shard, resolve_device, resolve_shard

COMPARED = ["batch", "image", "example", "label", "target", "offset", "success", "acp", "anc", "l2", "d20", "model_passes"]
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("environ, expected", [
    ({}, (0, 1)),
    ({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}, (3, 4)),
    ({"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "8", "SLURM_ARRAY_TASK_MIN": "0"}, (5, 8)),
    ({"SLURM_ARRAY_TASK_ID": "12", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "10"}, (2, 3)),
    ({"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2"}, (1, 2)),
    ({"RANK": "1", "WORLD_SIZE": "2", "SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "5"}, (1, 2)),  # torchrun first
])
def test_auto_shard_from_the_launcher(environ, expected):
    assert resolve_shard("auto", environ) == expected


def test_explicit_shard_wins_and_a_mismatch_is_an_error():
    assert resolve_shard((1, 2), {}) == (1, 2)
    assert resolve_shard((1, 2), {"RANK": "1", "WORLD_SIZE": "2"}) == (1, 2)
    with pytest.raises(ValueError, match=r"shard 0/2 was given, but torchrun \(RANK/WORLD_SIZE\) says this process is 1/2"):
        resolve_shard((0, 2), {"RANK": "1", "WORLD_SIZE": "2"})
    with pytest.raises(ValueError, match=r"SLURM array .* says this process is 3/4"):
        resolve_shard((0, 1), {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4"})


@pytest.mark.parametrize("environ, fragment", [
    ({"RANK": "one", "WORLD_SIZE": "2"}, "RANK='one' is not an integer"),
    ({"SLURM_ARRAY_TASK_ID": "9", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "0"}, "outside 0..3"),
])
def test_bad_launcher_variables_are_named(environ, fragment):
    with pytest.raises(ValueError, match=fragment):
        launcher_shard(environ)


def test_device_auto_without_cuda_is_the_cpu(monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert resolve_device("auto", "auto", {"LOCAL_RANK": "1"}) == "cpu"
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    monkeypatch.setattr("torch.cuda.device_count", lambda: 2)
    assert resolve_device("auto", "auto", {"LOCAL_RANK": "1"}) == "cuda:1"
    assert resolve_device("cpu", "auto", {"LOCAL_RANK": "1"}) == "cpu"


def test_config_and_cli_accept_auto():
    assert RunConfig().shard == "auto" and RunConfig(shard="auto").to_json()["shard"] == "auto"
    assert RunConfig.from_json(RunConfig(shard="1/3").to_json()).shard == (1, 3)


@pytest.fixture(scope="module")
def tiny(shared_data):
    return dict(npz=shared_data / "cifar10" / "cifar10_test_0-499.npz", weights=shared_data / "models" / "resnet20_cifar10_gse.pt")


def _argv(tiny, output):
    return ["-m", "gse_explain.evaluate", "--dataset", "cifar10_npz", "--data-root", str(tiny["npz"]), "--model", "resnet20",
            "--weights", str(tiny["weights"]), "--num-images", "6", "--batch-size", "2", "--option", "iterations=20",
            "--option", "search_steps=2", "--device", "cpu", "--no-progress", "--shard", "auto", "--output", str(output)]


@pytest.mark.slow
def test_torchrun_two_processes_fill_one_store_like_a_single_process(tiny, tmp_path, one_thread):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun is not installed beside this Python")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_"))}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    single = tmp_path / "single"
    subprocess.run([sys.executable, *_argv(tiny, single)], env=env, check=True, capture_output=True, timeout=300)
    shared = tmp_path / "shared"
    done = subprocess.run([str(torchrun), "--standalone", "--nproc-per-node", "2", *_argv(tiny, shared)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    shards = load_results(shared).store.shard_infos()
    assert sorted(shards) == ["shard-0-of-2", "shard-1-of-2"]
    assert shards["shard-0-of-2"]["batches_written"] == [0, 2] and shards["shard-1-of-2"]["batches_written"] == [1]
    together, alone = load_results(shared), load_results(single)
    assert together.complete and together.records[COMPARED].equals(alone.records[COMPARED])
