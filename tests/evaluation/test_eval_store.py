"""The result store: round trip, resume, configuration checks, corruption handling and atomic writes."""

import json
import os
import stat

import numpy as np
import pandas as pd
import pytest
import torch

from gse_explain.evaluation import store as store_module
from gse_explain.evaluation.store import ResultStore, StoreError, StoreMismatchError, load_results

CONFIG = {"dataset": "toy", "model": "toy", "attack": "gse", "targeted": True, "mode": "targeted", "batch_size": 2,
          "options": {"iterations": 5}, "offsets": (1, 2), "seed": 0, "bounds": [0.0, 1.0], "data_root": "/data/a"}


def _batch(batch_index, num_images=2, offsets=(1, 2), seed=0):
    """A targeted batch as attack_batch lays it out: rows offset-major, sparse perturbations, awkward floats."""
    gen = torch.Generator().manual_seed(seed + batch_index)
    clean = torch.rand(num_images, 3, 8, 8, generator=gen)
    rows = num_images * len(offsets)
    image = np.tile(np.arange(num_images), len(offsets))
    adversarial = clean[image].clone()
    for row in range(rows):
        h, w = divmod(3 * row + batch_index, 8)
        adversarial[row, :, h, w] = torch.rand(3, generator=gen)
    adversarial[0, 1, 7, 7] = 1.0  # an exact bound value
    clean[0, 2, 7, 7] = 0.0
    adversarial[0, 2, 7, 7] = -0.0  # same value, different bits: must survive bit-exactly
    labels = np.arange(num_images) % 10
    records = {
        "image": image.astype(np.int64),
        "label": np.tile(labels, len(offsets)).astype(np.int64),
        "target": np.concatenate([(labels + o) % 10 for o in offsets]).astype(np.int64),
        "offset": np.repeat(offsets, num_images).astype(np.int64),
        "success": np.arange(rows) % 3 != 2,
        "time": np.full(rows, 1 / 3 + batch_index),  # not representable in 10 decimals
        "model_passes": np.full(rows, 2.0),  # integral floats stay floats
        "acp": np.arange(rows, dtype=np.int64),
        "anc": np.ones(rows, dtype=np.int64),
        "l2": np.sqrt(np.arange(rows) + 0.1) * np.pi,
        "d20": np.arange(rows, dtype=np.int64) * 7,
    }
    return records, clean, adversarial


def _bits(array):
    return np.ascontiguousarray(array, dtype=np.float32).view(np.uint32)


def test_round_trip_records_and_bit_exact_images(tmp_path):
    path = tmp_path / "run"
    store = ResultStore.create(path, CONFIG, versions={"torch": torch.__version__})
    assert (path / "manifest.json").is_file() and (path / "batches").is_dir() and (path / "shards").is_dir()
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format"] == store_module.FORMAT and manifest["config"]["offsets"] == [1, 2]
    assert manifest["versions"] == {"torch": torch.__version__}
    store.write_selection({"positions": [0, 1, 3, 4, 5], "examples": [10, 11, 13, 14, 15], "labels": [0, 1, 0, 1, 0],
                           "scanned": 6, "correct": 5})
    written = {}
    for index, size in ((0, 2), (1, 2), (2, 1)):
        written[index] = _batch(index, num_images=size)
        store.write_batch(index, *written[index])
    assert store.completed_batches() == [0, 1, 2]

    results = load_results(path)
    assert results.config == json.loads(json.dumps(CONFIG))
    assert results.expected_batches == 3 and results.complete
    records = results.records
    assert list(records.columns[:3]) == ["batch", "image", "example"]
    assert len(records) == 4 + 4 + 2
    for index, (expected, clean, adversarial) in written.items():
        part = records[records["batch"] == index].reset_index(drop=True)
        stored = part.drop(columns=["batch", "example"])
        pd.testing.assert_frame_equal(stored, pd.DataFrame(expected), check_exact=True)
        assert part["success"].dtype == bool and part["model_passes"].dtype == np.float64
        assert (part["time"].to_numpy() == expected["time"]).all()  # exact, not rounded
        # example = selection.examples[batch * batch_size + image]
        assert part["example"].tolist() == [[10, 11, 13, 14, 15][2 * index + i] for i in expected["image"]]
        clean_back, adv_back, rec_back = results.images(index)
        assert np.array_equal(_bits(clean_back), _bits(clean.numpy()))
        assert np.array_equal(_bits(adv_back), _bits(adversarial.numpy()))
        assert adv_back.shape == tuple(adversarial.shape)
        pd.testing.assert_frame_equal(rec_back, pd.DataFrame(expected), check_exact=True)
    # -0.0 over a clean 0.0 keeps its sign bit
    assert np.signbit(results.images(0)[1][0, 2, 7, 7])


def test_sparse_encoding_stores_only_changed_entries(tmp_path):
    store = ResultStore.create(tmp_path / "run", CONFIG)
    records, clean, adversarial = _batch(0)
    store.write_batch(0, records, clean, adversarial)
    with np.load(store.batch_path(0)) as data:
        changed = int((_bits(adversarial.numpy()) != _bits(clean.numpy()[records["image"]])).sum())
        assert data["adv_values"].size == data["adv_index"].size == changed
        assert changed == 3 * 4 + 2 + 1  # 3 channels per row, 2 extra in row 0, the zeroed clean entry in row 2
        assert data["clean"].shape == (2, 3, 8, 8)


def test_resume_same_config(tmp_path):
    path = tmp_path / "run"
    store = ResultStore.create(path, CONFIG)
    store.write_batch(1, *_batch(1))
    manifest = (path / "manifest.json").read_bytes()
    # same config (where data lives and the shard may differ; tuples compare as their JSON lists)
    again = ResultStore.create(path, {**CONFIG, "data_root": "/elsewhere", "shard": [1, 2], "offsets": [1, 2]})
    assert again.completed_batches() == [1]
    assert (path / "manifest.json").read_bytes() == manifest
    assert again.read_batch(1)["records"]["acp"].tolist() == [0, 1, 2, 3]
    store.write_shard_info((1, 2), {"batches_written": [1]})
    assert again.shard_infos() == {"shard-1-of-2": {"batches_written": [1]}}


def test_different_config_raises_naming_keys_and_overwrite_moves_aside(tmp_path):
    path = tmp_path / "run"
    ResultStore.create(path, CONFIG).write_batch(0, *_batch(0))
    changed = {**CONFIG, "seed": 1, "options": {"iterations": 6}}
    with pytest.raises(StoreMismatchError) as info:
        ResultStore.create(path, changed)
    message = str(info.value)
    assert "seed" in message and "options" in message and "--overwrite" in message
    assert "dataset" not in message and "data_root" not in message
    assert isinstance(info.value, StoreError)

    for round_ in range(2):  # twice within the same second: two distinct backups
        store = ResultStore.create(path, changed if round_ == 0 else CONFIG, overwrite=True)
        assert store.completed_batches() == []
    backups = sorted(p for p in tmp_path.iterdir() if p.name.startswith("run.replaced-"))
    assert len(backups) == 2
    old = [b for b in backups if json.loads((b / "manifest.json").read_text())["config"]["seed"] == 0
           and (b / "batches" / "batch-000000.npz").exists()]
    assert len(old) == 1  # the original data is still on disk
    assert load_results(old[0]).records["acp"].tolist() == [0, 1, 2, 3]
    assert json.loads((path / "manifest.json").read_text())["config"]["seed"] == 0


def test_selection_mismatch(tmp_path):
    store = ResultStore.create(tmp_path / "run", CONFIG)
    selection = {"positions": [0, 1], "examples": [0, 1], "labels": [3, 8], "scanned": 2, "correct": 2}
    assert store.write_selection(selection) == selection
    assert store.write_selection(dict(selection)) == selection
    assert store.read_selection() == selection
    with pytest.raises(StoreMismatchError, match="selection.json"):
        store.write_selection({**selection, "labels": [3, 9]})


def test_non_store_folder_and_non_folder(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.png").write_bytes(b"not a store")
    with pytest.raises(StoreError, match="not a gse_explain result store"):
        ResultStore.create(folder, CONFIG)
    assert sorted(p.name for p in folder.iterdir()) == ["cat.png"]
    with pytest.raises(StoreError, match="manifest.json is missing"):
        load_results(folder)
    file = tmp_path / "file.txt"
    file.write_text("x")
    with pytest.raises(StoreError, match="not a folder"):
        ResultStore.create(file, CONFIG)
    # an existing empty folder is fine
    (tmp_path / "empty").mkdir()
    ResultStore.create(tmp_path / "empty", CONFIG)


def test_half_created_store_of_a_concurrent_writer_is_accepted(tmp_path):
    # another process has made the folders and is writing its manifest (temporary file) right now
    path = tmp_path / "run"
    (path / "batches").mkdir(parents=True)
    (path / "shards").mkdir()
    (path / ".manifest.json.abc123.tmp").write_text("{")
    store = ResultStore.create(path, CONFIG)
    assert store.config["seed"] == 0


def test_missing_folder(tmp_path):
    with pytest.raises(StoreError, match="does not exist") as info:
        load_results(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(info.value)
    with pytest.raises(StoreError, match="does not exist"):
        ResultStore.open(tmp_path / "nowhere")


def test_foreign_and_corrupt_manifest(tmp_path):
    path = tmp_path / "run"
    ResultStore.create(path, CONFIG)
    manifest = json.loads((path / "manifest.json").read_text())
    (path / "manifest.json").write_text(json.dumps({**manifest, "format": "someone.elses"}))
    for action in (lambda: load_results(path), lambda: ResultStore.create(path, CONFIG)):
        with pytest.raises(StoreError, match="format tag"):
            action()
    (path / "manifest.json").write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(StoreError, match="version 99"):
        load_results(path)
    (path / "manifest.json").write_text('{"format": "gse_explain.result_store", "config": {')
    for action in (lambda: load_results(path), lambda: ResultStore.create(path, CONFIG)):
        with pytest.raises(StoreError, match="corrupted") as info:
            action()
        assert "manifest.json" in str(info.value)


def _store_with_three_batches(path):
    store = ResultStore.create(path, CONFIG)
    for index in range(3):
        store.write_batch(index, *_batch(index))
    return store


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "flip", "npy", "foreign_npz"])
def test_damaged_batch_files(tmp_path, damage):
    store = _store_with_three_batches(tmp_path / "run")
    bad = store.batch_path(1)
    data = bad.read_bytes()
    if damage == "truncate":
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        bad.write_bytes(os.urandom(len(data)))
    elif damage == "empty":
        bad.write_bytes(b"")
    elif damage == "flip":  # corrupt the middle of the compressed clean images
        with np.load(bad) as archive:
            assert "clean" in archive.files
        middle = bytearray(data)
        for i in range(200, 400):
            middle[i] ^= 0xFF
        bad.write_bytes(bytes(middle))
    elif damage == "npy":
        np.save(bad.with_suffix(".tmp.npy"), np.zeros(3))
        os.replace(bad.with_suffix(".tmp.npy"), bad)
    else:
        with open(bad, "wb") as handle:
            np.savez(handle, something=np.zeros(3))

    if damage != "flip":  # a flip in image data may only show when the images are read
        with pytest.raises(StoreError) as info:
            store.read_batch(1)
        assert "batch-000001.npz" in str(info.value)
    with pytest.raises(StoreError, match="batch-000001.npz"):
        store.read_batch(1, images=True)
    other = store.read_batch(2, images=True)
    assert other["adversarial"].shape == (4, 3, 8, 8)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_check_batches_moves_unreadable_files_aside(tmp_path, damage):
    store = _store_with_three_batches(tmp_path / "run")
    bad = store.batch_path(1)
    data = bad.read_bytes()
    bad.write_bytes({"truncate": data[:-40], "garbage": b"\x00garbage" * 50, "empty": b""}[damage])
    with pytest.raises(StoreError, match="batch-000001.npz"):
        load_results(store.path)
    assert store.check_batches() == [1]
    assert store.completed_batches() == [0, 2]
    corrupt = bad.with_name("batch-000001.npz.corrupt")
    assert corrupt.exists() and not bad.exists()
    assert corrupt.read_bytes() == {"truncate": data[:-40], "garbage": b"\x00garbage" * 50, "empty": b""}[damage]
    assert sorted(load_results(store.path).records["batch"].unique()) == [0, 2]
    assert store.check_batches() == []
    # recomputing the batch makes the store whole again
    store.write_batch(1, *_batch(1))
    assert store.completed_batches() == [0, 1, 2]
    assert not load_results(store.path).complete  # no selection recorded: the expected count is unknown


def test_atomic_writes_leave_no_temporary_files(tmp_path, monkeypatch):
    path = tmp_path / "run"
    store = ResultStore.create(path, CONFIG)
    store.write_selection({"positions": [0], "examples": [0], "labels": [0], "scanned": 1, "correct": 1})
    for index in range(2):
        store.write_batch(index, *_batch(index))
    store.write_shard_info((0, 1), {"a": 1})
    everything = [p.name for p in path.rglob("*")]
    assert not [n for n in everything if n.endswith(".tmp") or n.startswith(".")], everything
    # written files are readable like ordinary files (mkstemp alone makes them private)
    umask = os.umask(0)
    os.umask(umask)
    for name in ("manifest.json", "selection.json", "batches/batch-000000.npz", "shards/shard-0-of-1.json"):
        assert stat.S_IMODE((path / name).stat().st_mode) == 0o666 & ~umask, name

    # a failing rename keeps the old file and removes the temporary one
    before = store.batch_path(0).read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(store_module.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        store.write_batch(0, *_batch(5))
    monkeypatch.undo()
    assert store.batch_path(0).read_bytes() == before
    assert not [p for p in path.rglob("*") if p.name.endswith(".tmp")]

    # a selection that cannot be serialised leaves nothing behind either
    (path / "sub").mkdir()
    with pytest.raises(TypeError):
        ResultStore(path / "sub").write_selection({"positions": object()})
    assert not list((path / "sub").iterdir())


def test_empty_store_loads(tmp_path):
    path = tmp_path / "run"
    ResultStore.create(path, CONFIG).write_selection(
        {"positions": [0, 1, 2], "examples": [5, 6, 7], "labels": [0, 0, 0], "scanned": 3, "correct": 3})
    results = load_results(path)
    assert results.records.empty and results.expected_batches == 2
    assert not results.complete


def test_any_byte_corruption_gives_store_error_or_readable_batch(tmp_path):
    # whatever three bytes are damaged, reading either works or raises StoreError naming the file
    # (zip CRC errors, zlib stream errors, "unsupported compression method" from a damaged header, ...)
    store = ResultStore.create(tmp_path / "run", CONFIG)
    store.write_batch(0, *_batch(0))
    data = store.batch_path(0).read_bytes()
    causes = set()
    for start in range(0, len(data) - 3, 4):
        damaged = bytearray(data)
        for i in range(start, start + 3):
            damaged[i] ^= 0x5A
        store.batch_path(0).write_bytes(bytes(damaged))
        try:
            store.read_batch(0, images=True)
        except StoreError as exc:
            assert "batch-000000.npz" in str(exc)
            causes.add(type(exc.__cause__).__name__)
    assert {"BadZipFile", "error"} <= causes  # zipfile and zlib errors both occur and are both translated
