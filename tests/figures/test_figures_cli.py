"""``python -m gse_explain.figures``: a tiny cifar10 study on the authors' ResNet20 and real CIFAR-10 images
(GSE and PGD0 with small budgets), redrawing from existing stores, --rerun, and clear errors."""

import json
import re
import shutil

import pytest

from gse_explain.figures import runner
from gse_explain.figures.cli import main

EXPECTED = {"figure1_gse_examples", "figure2_interpretability", "figure3_untargeted_examples", "figure4_targeted_examples"}


@pytest.fixture(scope="module")
def paths(shared_data):
    return {"npz": shared_data / "cifar10" / "cifar10_test_0-499.npz",
            "weights": shared_data / "models" / "resnet20_cifar10_gse.pt",
            "resnet56": shared_data / "models" / "resnet56_cifar10_akamaster.th"}


def _fails(capsys, pattern, argv):
    """The CLI returns 1 and prints one ``error: ...`` message matching ``pattern`` (no traceback)."""
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert re.search(pattern, err), err
    assert "Traceback" not in err


def _argv(paths, runs, out, *extra, attacks="gse,pgd0"):
    gse = ["--option", "gse:iterations=30", "--option", "gse:search_steps=3"] if "gse" in attacks else []
    return ["cifar10", "--data-root", str(paths["npz"]), "--weights", str(paths["weights"]), "--runs", str(runs), "--out", str(out),
            "--attacks", attacks, "--num-images", "3", "--targeted-images", "2", "--offsets", "1,2", "--table1-images", "0",
            "--batch-size", "2", *gse, "--no-progress", *extra]


@pytest.fixture(scope="module")
def study(paths, tmp_path_factory):
    """One tiny cifar10 study, computed once: (runs folder, figures folder)."""
    root = tmp_path_factory.mktemp("study")
    runs, out = root / "runs", root / "figures"
    assert main(_argv(paths, runs, out, "--second-weights", str(paths["resnet56"]))) == 0
    return runs, out


def test_study_writes_every_figure_table_and_csv(study):
    runs, out = study
    files = {p.name for p in out.iterdir()}
    for stem in EXPECTED | {"figure5_interpretability_second_model"}:
        assert {stem + ".png", stem + ".pdf"} <= files
    assert {"figure2_is_curves.csv", "figure2_is_per_example.csv", "figure5_is_curves.csv", "table2.md", "table2.tex",
            "table3.md", "table3.tex", "table4.md", "table4.tex", "manifest.json"} <= files
    assert "table1.md" not in files  # --table1-images 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert {r["key"] for r in manifest["runs"]} == {p.name for p in runs.iterdir()}
    gse = next(r for r in manifest["runs"] if r["key"] == "main-resnet20-gse-targeted")
    assert gse["options"] == {"iterations": 30, "search_steps": 3} and gse["offsets"] == [1, 2] and gse["num_images"] == 2
    assert gse["attack_seconds"] > 0
    # the budget is in the store's own manifest too
    store_manifest = json.loads((runs / "main-resnet20-gse-targeted" / "manifest.json").read_text())
    assert store_manifest["config"]["options"] == {"iterations": 30, "search_steps": 3}
    table3 = (out / "table3.md").read_text()
    assert "| GSE | best | 100.0% |" in table3 and "2 images × 2 targets" in table3
    curves = (out / "figure2_is_curves.csv").read_text().splitlines()
    assert curves[0].startswith("attack,percentile,n,mean") and len(curves) == 1 + 2 * 5


def test_rerunning_only_redraws(study, paths, monkeypatch, capsys):
    runs, out = study
    def no_attacks(*args, **kwargs):
        raise AssertionError("the study recomputed a complete store")
    monkeypatch.setattr(runner, "run", no_attacks)
    before = {p.name: p.stat().st_mtime_ns for p in runs.rglob("*") if p.is_file()}
    (out / "figure3_untargeted_examples.png").unlink()
    assert main(_argv(paths, runs, out, "--second-weights", str(paths["resnet56"]), "--only", "figure3,tables")) == 0
    assert (out / "figure3_untargeted_examples.png").exists()
    assert "are complete: drawing only" in capsys.readouterr().err
    assert before == {p.name: p.stat().st_mtime_ns for p in runs.rglob("*") if p.is_file()}


def test_rerun_moves_stores_aside(study, paths, tmp_path):
    runs, _ = study
    copy = tmp_path / "runs"
    shutil.copytree(runs, copy)
    argv = _argv(paths, copy, tmp_path / "fig", "--only", "tables", "--rerun", attacks="pgd0")
    assert main(argv) == 0
    aside = [p.name for p in copy.iterdir() if ".replaced-" in p.name]
    assert sorted(n.split(".replaced-")[0] for n in aside) == ["main-resnet20-pgd0-targeted", "main-resnet20-pgd0-untargeted"]
    assert (copy / "main-resnet20-pgd0-targeted" / "manifest.json").exists()


def test_changed_settings_name_the_store_and_the_fix(study, paths, tmp_path, capsys):
    runs, _ = study
    _fails(capsys, r"(?s)main-resnet20-gse-untargeted: num_images: stored 3, requested 4.*--rerun", [*_argv(paths, runs, tmp_path / "fig"), "--num-images", "4"])


def test_corrupted_store_is_named(study, paths, tmp_path, capsys):
    runs, _ = study
    copy = tmp_path / "runs"
    shutil.copytree(runs, copy)
    (copy / "main-resnet20-pgd0-untargeted" / "manifest.json").write_text("{ not json")
    _fails(capsys, r"(?s)main-resnet20-pgd0-untargeted.*corrupted.*--rerun", _argv(paths, copy, tmp_path / "fig"))
    shutil.rmtree(copy)
    shutil.copytree(runs, copy)
    batch = copy / "main-resnet20-gse-targeted" / "batches" / "batch-000000.npz"
    batch.write_bytes(b"garbage")
    _fails(capsys, r"cannot read batch file .*batch-000000.npz.*delete it and resume", _argv(paths, copy, tmp_path / "fig", "--only", "tables"))


def test_missing_data_and_weights_are_explained(paths, tmp_path, capsys):
    _fails(capsys, "needs --data-root: a CIFAR-10 folder", ["cifar10", "--weights", str(paths["weights"]), "--runs", str(tmp_path)])
    _fails(capsys, "needs --weights: the authors' ResNet20 weights", ["cifar10", "--data-root", str(paths["npz"]), "--runs", str(tmp_path)])
    _fails(capsys, "--data-root .*nowhere.npz does not exist", ["cifar10", "--data-root", str(tmp_path / "nowhere.npz"), "--weights", str(paths["weights"])])
    _fails(capsys, "needs --data-root: the NIPS-2017 folder", ["nips2017"])
    with pytest.raises(SystemExit):
        main(["demo", "--option", "nosuchattack:k=1"])
    assert not any(tmp_path.iterdir())  # nothing was created


def test_demo_dry_run_prints_budgets(capsys):
    assert main(["--dry-run"]) == 0
    err = capsys.readouterr().err
    assert "study demo" in err and "efficientnet_lite1" in err
    assert "strattack targeted   efficientnet_lite0 on skimage: 1 image × 1 target, batch 4; max_iter=50" in err
    assert "table1 sapf" in err
