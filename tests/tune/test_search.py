"""A tiny end-to-end search on real CIFAR-10 images and the authors' ResNet20 (2 configurations × 2 images, a
few iterations): trials are stores, the search resumes and refuses another search, a trial that misses the
ASR constraint is dropped on the first image, the preset it writes runs, and shards share a search."""

import io
import os

import pytest

from gse_explain import RunConfig, load_results, run
from gse_explain.attacks.presets import load_preset
from gse_explain.tune import SearchMismatchError, TuneError, compare_presets, tune
from gse_explain.tune.cli import main as tune_main

# step_size 1e-6 cannot fool the model in 4 iterations (ASR 0 %); 0.05 fools both images.
GRID = {"step_size": [1e-6, 0.05]}
BUDGET = {"iterations": 4, "search_steps": 1, "k_hat": 2}


@pytest.fixture
def base(cifar_npz, resnet20_weights):
    return RunConfig(dataset="cifar10_npz", data_root=str(cifar_npz), model="resnet20", weights=str(resnet20_weights),
                     options=BUDGET, num_images=2, batch_size=1, device="cpu")


def test_search_ranks_drops_resumes_and_writes_a_usable_preset(tmp_path, base):
    log = io.StringIO()
    result = tune(base, GRID, tmp_path / "search", eta=2, log=log, save_preset=tmp_path / "best.json")
    rows = {row["trial"]: row for row in result.rows}
    weak, strong = rows["t000-step_size1e-06"], rows["t001-step_size0.05"]
    assert weak["status"] == "dropped at rung 1 (ASR 0%)" and weak["images"] == 1 and weak["rank"] is None
    assert strong["status"] == "ranked" and strong["rank"] == 1 and strong["images"] == 2 and strong["asr"] == 1.0
    assert strong["objective"] == pytest.approx(strong["acp"] + strong["anc"])
    assert result.best["trial"] == strong["trial"] and result.evaluated_images == 3 and result.full_grid_images == 4
    # Every trial is an ordinary store: the dropped one holds only its first batch.
    assert load_results(tmp_path / "search" / "trials" / weak["trial"]).records["batch"].tolist() == [0]
    assert len(load_results(tmp_path / "search" / "trials" / strong["trial"]).records) == 2
    for name in ("search.json", "ranking.md", "ranking.csv", "preset.json"):
        assert (tmp_path / "search" / name).is_file()
    assert "| 1 | t001-step_size0.05 | 0.05 | ranked |" in result.table
    # The preset: the base's auto preset (cifar10), its options and the grid point; usable as preset=PATH.
    preset = load_preset(tmp_path / "best.json")
    assert preset.values[False] == {"mu": 1.0, "step_size": 0.05, "k_hat": 2, "q": 0.25, "iterations": 4, "search_steps": 1}
    assert preset.provenance["objective"] == "acp + anc" and preset.provenance["data"]["examples"] == [0, 1]
    check = run(base.replace(preset=str(tmp_path / "best.json"), options={}), tmp_path / "check", progress=False)
    assert check.records["acp"].tolist() == load_results(tmp_path / "search" / "trials" / strong["trial"]).records["acp"].tolist()
    # Resume: nothing is attacked again; the CLI on the same folder prints the same ranking.
    again = tune(base, GRID, tmp_path / "search", eta=2, log=(log := io.StringIO()))
    assert "0 batch runs to do here" in log.getvalue() and "1 batch runs" not in log.getvalue()
    assert [r["trial"] for r in again.rows] == [r["trial"] for r in result.rows]
    with pytest.raises(SearchMismatchError, match=r"holds another search:\n  grid: stored"):
        tune(base, {"step_size": [0.05]}, tmp_path / "search", eta=2, log=io.StringIO())
    with pytest.raises(ValueError, match="rungs .* not multiples of batch_size 2"):
        tune(base.replace(batch_size=2, num_images=4), GRID, tmp_path / "other", rungs=[3, 4], log=io.StringIO())
    assert not (tmp_path / "other").exists()


def test_explicit_rungs_min_rung_and_tie_tolerance_are_part_of_the_search(tmp_path, base):
    # One rung of both images (instead of the default 1, 2): the weak trial is attacked on both before it is dropped.
    result = tune(base, GRID, tmp_path / "search", eta=2, rungs=[2], log=io.StringIO())
    rows = {row["trial"]: row for row in result.rows}
    assert rows["t000-step_size1e-06"]["images"] == 2 and rows["t000-step_size1e-06"]["status"] == "dropped at rung 1 (ASR 0%)"
    assert result.evaluated_images == 4 and "rungs [2] images (keep 1/2 and ties within 1e-06)" in result.table
    # min_rung=2 gives the same rungs (and the default tolerance): the same search, resumed with nothing to do.
    tune(base, GRID, tmp_path / "search", eta=2, min_rung=2, log=(log := io.StringIO()))
    assert "rungs of [2] images" in log.getvalue() and "0 batch runs to do here" in log.getvalue()
    with pytest.raises(SearchMismatchError, match="tie_tolerance: stored 1e-06, requested 0.1"):
        tune(base, GRID, tmp_path / "search", eta=2, rungs=[2], tie_tolerance=0.1, log=io.StringIO())
    with pytest.raises(ValueError, match=r"give rungs \(\[1, 2\]\) or min_rung \(1\), not both"):
        tune(base, GRID, tmp_path / "other", rungs=[1, 2], min_rung=1, log=io.StringIO())
    with pytest.raises(ValueError, match="tie_tolerance"):
        tune(base, GRID, tmp_path / "other", tie_tolerance=-1, log=io.StringIO())
    assert not (tmp_path / "other").exists()


def test_cli_and_compare_presets(tmp_path, base, cifar_npz, resnet20_weights, capsys):
    argv = ["--dataset", "cifar10_npz", "--data-root", str(cifar_npz), "--model", "resnet20", "--weights", str(resnet20_weights),
            "--device", "cpu", "--num-images", "2", "--batch-size", "1", "--grid", "step_size=1e-6", "--option", "iterations=4",
            "--option", "search_steps=1", "--output", str(tmp_path / "cli"), "--no-progress"]
    assert tune_main(argv) == 1  # no trial meets ASR 100 %: exit status 1, no preset
    assert "dropped at rung 1 (ASR 0%)" in capsys.readouterr().out and not (tmp_path / "cli" / "preset.json").exists()
    with pytest.raises(SystemExit, match="error: grid option 'qq' is not an option of gse"):
        tune_main(argv[:-5] + ["--grid", "qq=1", "--output", str(tmp_path / "cli2")])
    table, summaries = compare_presets(base.replace(options=BUDGET), {"paper": "cifar10", "defaults": None}, tmp_path / "cmp",
                                       exclude_examples=[0], log=io.StringIO())
    assert set(summaries) == {"paper", "defaults"} and summaries["paper"]["n"] == 1  # example 0 left out
    assert table.splitlines()[2].startswith("| paper |")


def test_shards_share_a_search(tmp_path, base, monkeypatch):
    def shard(i):
        return tune(base.replace(shard=(i, 2)), GRID, tmp_path / "search", eta=2, log=io.StringIO(), wait_timeout=0)

    with pytest.raises(TuneError, match="belong to other shards"):
        shard(1)  # rung 1: its unit (trial 1, batch 0) is done, trial 0's belongs to shard 0
    with pytest.raises(TuneError, match="belong to other shards"):
        shard(0)  # rung 1 complete; rung 2: trial 1 batch 1 is shard 1's
    monkeypatch.setenv("RANK", "1")  # the last one as torchrun would start it: shard "auto" from RANK/WORLD_SIZE
    monkeypatch.setenv("WORLD_SIZE", "2")
    result = tune(base, GRID, tmp_path / "search", eta=2, log=io.StringIO(), wait_timeout=0)
    assert result.best["trial"] == "t001-step_size0.05" and result.evaluated_images == 3
    assert os.environ["RANK"] == "1" and os.environ["WORLD_SIZE"] == "2"  # hidden only while a trial batch ran
