"""A store proves what it holds: batch files carry their slot, example ids and image hash; resuming checks
them against the data as it is now; a killed run resumes to the records of an uninterrupted one."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from gse_explain import RunConfig, load_results, run
from gse_explain.evaluation.store import StoreIntegrityError, StoreMismatchError

COMPARED = ["batch", "image", "example", "label", "target", "offset", "success", "acp", "anc", "l2", "d20", "model_passes"]
REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("one_thread")


def _config(data_root, weights, **changes):
    fields = dict(dataset="cifar10_npz", data_root=data_root, model="resnet20", weights=weights, attack="gse",
                  options={"iterations": 20, "search_steps": 2}, num_images=6, batch_size=2, device="cpu")
    return RunConfig(**{**fields, **changes})


@pytest.fixture(scope="module")
def npz_copy(cifar_npz, tmp_path_factory):
    """The first 100 shared CIFAR-10 test images as an .npz of our own (so tests can alter a copy)."""
    data = dict(np.load(cifar_npz))
    path = tmp_path_factory.mktemp("data") / "cifar100.npz"
    np.savez(path, x=data["x"][:100], y=data["y"][:100], index=data["index"][:100])
    return path


@pytest.fixture(scope="module")
def reference(npz_copy, resnet20_weights, tmp_path_factory):
    path = tmp_path_factory.mktemp("integrity") / "store"
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        results = run(_config(npz_copy, resnet20_weights), path, progress=False)
    finally:
        torch.set_num_threads(previous)
    return path, results


def _copy(path, tmp_path, name="store"):
    target = tmp_path / name
    shutil.copytree(path, target)
    return target


def _files(path):
    return {p: p.read_bytes() for p in Path(path).rglob("*") if p.is_file()}


def test_batch_files_record_slot_examples_and_image_hash(reference):
    path, results = reference
    selection = results.store.read_selection()
    for index in range(3):
        meta = results.store.read_batch(index)["meta"]
        assert meta["batch"] == index and meta["examples"] == selection["examples"][2 * index : 2 * index + 2]
        assert len(meta["clean_sha256"]) == 64
    identity = results.store.manifest["config"]["dataset_identity"]
    assert identity["items"] == 100 and identity["num_classes"] == 10 and len(identity["index_sha256"]) == 64


def test_slot_swap_is_refused_on_read_and_on_resume(reference, npz_copy, resnet20_weights, tmp_path):
    copy = _copy(reference[0], tmp_path)
    first, second = copy / "batches" / "batch-000000.npz", copy / "batches" / "batch-000001.npz"
    a, b = first.read_bytes(), second.read_bytes()
    first.write_bytes(b)
    second.write_bytes(a)
    before = _files(copy)
    with pytest.raises(StoreIntegrityError, match=r"batch-000000.npz holds batch 1, not batch 0: .*another batch's slot"):
        load_results(copy)
    (copy / "batches" / "batch-000002.npz").unlink()  # incomplete, so that run() resumes
    before = _files(copy)
    with pytest.raises(StoreIntegrityError, match="holds batch 1, not batch 0"):
        run(_config(npz_copy, resnet20_weights), copy, progress=False)
    assert _files(copy) == before  # refused, nothing moved or rewritten


def test_other_images_are_refused_on_resume(reference, npz_copy, resnet20_weights, tmp_path):
    copy = _copy(reference[0], tmp_path)
    (copy / "batches" / "batch-000002.npz").unlink()
    data = dict(np.load(npz_copy))
    first = int(load_results(reference[0]).store.read_selection()["positions"][0])
    data["x"][first, 0, 0, 0] ^= 1  # one value of one attacked image changes by 1/255
    altered = tmp_path / "altered.npz"
    np.savez(altered, **data)
    before = _files(copy)
    with pytest.raises(StoreIntegrityError, match=r"batch-000000.npz was computed on other images than the data now gives"):
        run(_config(altered, resnet20_weights), copy, progress=False)
    assert _files(copy) == before


def test_other_dataset_is_refused_on_resume(reference, npz_copy, resnet20_weights, tmp_path):
    copy = _copy(reference[0], tmp_path)
    (copy / "batches" / "batch-000002.npz").unlink()
    data = dict(np.load(npz_copy))
    smaller = tmp_path / "smaller.npz"
    np.savez(smaller, x=data["x"][:50], y=data["y"][:50], index=data["index"][:50])
    with pytest.raises(StoreMismatchError, match=r"dataset_identity: stored .*'items': 100.*'items': 50"):
        run(_config(smaller, resnet20_weights), copy, progress=False)


def test_altered_image_bytes_in_a_batch_file_are_refused(reference, tmp_path):
    copy = _copy(reference[0], tmp_path)
    path = copy / "batches" / "batch-000001.npz"
    data = dict(np.load(path))
    data["clean"] = data["clean"].copy()
    data["clean"][0, 0, 0, 0] = 0.5
    np.savez_compressed(path, **data)
    results = load_results(copy)  # records alone read fine ...
    with pytest.raises(StoreIntegrityError, match=r"batch-000001.npz do not have the SHA-256 the file records"):
        results.images(1)  # ... the images are checked whenever they are read


def test_stale_temporaries_are_removed_on_resume(reference, npz_copy, resnet20_weights, tmp_path):
    copy = _copy(reference[0], tmp_path)
    (copy / "batches" / "batch-000002.npz").unlink()
    stale, fresh = copy / "batches" / ".batch-000002.npz.abc.tmp", copy / "batches" / ".batch-000009.npz.def.tmp"
    stale.write_bytes(b"half a file")
    fresh.write_bytes(b"a shard writing now")
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    run(_config(npz_copy, resnet20_weights), copy, progress=False)
    assert not stale.exists() and fresh.exists()


SLOW_OPTIONS = {"iterations": 100, "search_steps": 4}  # about a second per batch: time to interrupt mid-run


@pytest.fixture(scope="module")
def slow_reference(npz_copy, resnet20_weights, tmp_path_factory):
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run(_config(npz_copy, resnet20_weights, options=SLOW_OPTIONS), tmp_path_factory.mktemp("slow") / "store",
                   progress=False)
    finally:
        torch.set_num_threads(previous)


def _launch(npz, weights, output):
    code = ("import torch; torch.set_num_threads(1);"
            "from gse_explain import RunConfig, run;"
            f"run(RunConfig(dataset='cifar10_npz', data_root={str(npz)!r}, model='resnet20', weights={str(weights)!r}, "
            f"attack='gse', options={SLOW_OPTIONS!r}, num_images=6, batch_size=2, device='cpu'), "
            f"{str(output)!r}, progress=False)")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_run_resumes_to_the_uninterrupted_records(slow_reference, npz_copy, resnet20_weights, tmp_path, sig):
    output = tmp_path / "store"
    process = _launch(npz_copy, resnet20_weights, output)
    deadline = time.time() + 120
    while not (output / "batches" / "batch-000000.npz").exists():
        assert process.poll() is None and time.time() < deadline, process.stderr.read().decode()
        time.sleep(0.05)
    process.send_signal(sig)
    process.wait(timeout=60)
    done = sorted(p.name for p in (output / "batches").glob("batch-*.npz"))
    assert 1 <= len(done) < 3, "the run was not interrupted mid-way"
    if sig == signal.SIGTERM:
        info = load_results(output).store.shard_infos()["shard-0-of-1"]
        assert info["interrupted"]["by"] == "RunInterrupted" and info["lost_seconds"] >= 0
        assert info["batches_written"] == list(range(len(done)))
    resumed = run(_config(npz_copy, resnet20_weights, options=SLOW_OPTIONS), output, progress=False)
    assert resumed.complete
    assert resumed.records[COMPARED].equals(slow_reference.records[COMPARED])


def test_other_weights_are_refused_on_resume(reference, npz_copy, resnet20_weights, tmp_path):
    copy = _copy(reference[0], tmp_path)
    (copy / "batches" / "batch-000002.npz").unlink()
    state = torch.load(resnet20_weights, map_location="cpu")
    state["linear.bias"] = state["linear.bias"] + 0.5
    other = tmp_path / "retrained.pt"
    torch.save(state, other)
    before = _files(copy)
    with pytest.raises(StoreMismatchError, match=r"weights_sha256: stored .*the weights file's content is not the one"):
        run(_config(npz_copy, other), copy, progress=False)
    assert _files(copy) == before
    moved = tmp_path / "moved.pt"  # the same content at another path: accepted, the run resumes
    shutil.copyfile(resnet20_weights, moved)
    assert run(_config(npz_copy, moved), copy, progress=False).complete
