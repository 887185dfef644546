"""bench/reference_variants.py: the run plan (slow attacks image by image) and widening a store to more images."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from gse_explain import RunConfig, load_results, run

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "reference_variants.py"
_spec = importlib.util.spec_from_file_location("bench_reference_variants", SCRIPT)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

COMPARED = ["batch", "image", "example", "label", "success", "acp", "anc", "l2", "d20", "model_passes"]


def _args(*extra):
    return bench.parse_args(["--data", "d.npz", "--weights", "w.pt", *extra])


def test_slow_attacks_run_one_image_per_call_and_fast_ones_their_shard():
    plan = bench.configs(_args("--images", "16", "--batch-size", "4", "--shards", "3/4", "--slow-images", "3",
                               "--attacks", "pgd0", "sapf", "--variants", "reference"))
    assert [(a, v) for a, v, _ in plan] == [("pgd0", "reference")] + [("sapf", "reference")] * 3
    fast, *slow = [c for _, _, c in plan]
    assert (fast.num_images, fast.batch_size, tuple(fast.shard)) == (16, 4, (3, 4))
    assert [(c.num_images, c.batch_size, tuple(c.shard)) for c in slow] == [(16, 1, (i, 16)) for i in range(3)]
    assert all(dict(c.options) == {"variant": "reference"} for c in slow)
    both = bench.configs(_args("--attacks", "gse", "homotopy", "--slow-images", "1"))
    assert [(a, v) for a, v, _ in both] == [("gse", None), ("homotopy", "corrected"), ("homotopy", "reference")]
    assert dict(both[1][2].options) == {}  # the corrected runs leave variant at its default


def test_more_slow_images_than_images_is_refused():
    with pytest.raises(SystemExit, match="--slow-images must be in 0..--images"):
        bench.configs(_args("--images", "4", "--slow-images", "5"))


def test_widen_store_leaves_other_batch_sizes_and_counts_alone(tmp_path):
    store = tmp_path / "s"
    store.mkdir()
    manifest = {"format": "gse_explain.result_store", "config": {"num_images": 6, "batch_size": 4}}
    (store / "manifest.json").write_text(json.dumps(manifest))
    assert bench.widen_store(store, 16, 4) is None  # 6 images in batches of 4: the last batch would change
    assert bench.widen_store(store, 16, 1) is None  # another batch size
    assert bench.widen_store(store, 4, 4) is None  # not fewer
    assert bench.widen_store(tmp_path / "missing", 16, 1) is None
    assert json.loads((store / "manifest.json").read_text()) == manifest


@pytest.mark.usefixtures("one_thread")
def test_widened_store_keeps_its_batch_and_matches_a_fresh_larger_run(shared_data, tmp_path):
    common = dict(dataset="cifar10_npz", data_root=shared_data / "cifar10" / "cifar10_test_0-499.npz", model="resnet20",
                  weights=shared_data / "models" / "resnet20_cifar10_gse.pt", attack="gse", targeted=False, seed=0,
                  options={"iterations": 10, "search_steps": 1}, batch_size=1, device="cpu")
    small, fresh = tmp_path / "small", tmp_path / "fresh"
    run(RunConfig(num_images=1, **common), small, progress=False)
    batch0 = (small / "batches" / "batch-000000.npz").read_bytes()
    assert bench.widen_store(small, 2, 1) == 1
    manifest = json.loads((small / "manifest.json").read_text())
    assert manifest["config"]["num_images"] == 2 and manifest["widened_from"][0]["num_images"] == 1
    assert not (small / "selection.json").exists()
    widened = run(RunConfig(num_images=2, shard="1/2", **common), small, progress=False)  # only the new image
    assert (small / "batches" / "batch-000000.npz").read_bytes() == batch0  # kept, not recomputed
    reference = run(RunConfig(num_images=2, **common), fresh, progress=False)
    assert widened.complete and len(widened.records) == 2
    assert widened.records[COMPARED].equals(reference.records[COMPARED])
    for batch in (0, 1):
        assert np.array_equal(widened.images(batch)[1], reference.images(batch)[1])
    assert load_results(small).store.read_selection() == reference.store.read_selection()
