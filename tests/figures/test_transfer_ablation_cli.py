"""``python -m gse_explain.figures transfer|ablation --on cifar10`` end to end on real CIFAR-10 images and the real
ResNet20s, with tiny budgets: the outputs exist and hold the stores' numbers; a redraw reruns nothing."""

import csv

import pytest

from gse_explain.evaluation import load_results
from gse_explain.figures import runner
from gse_explain.figures.cli import main


@pytest.fixture(scope="module")
def cifar(shared_data):
    return ["--on", "cifar10", "--data-root", str(shared_data / "cifar10" / "cifar10_test_0-499.npz"),
            "--weights", str(shared_data / "models" / "resnet20_cifar10_gse.pt"), "--num-images", "2", "--batch-size", "2",
            "--no-progress"]


def test_transfer_on_cifar10(cifar, shared_data, tmp_path, monkeypatch):
    runs, out = tmp_path / "runs", tmp_path / "out"
    akamaster = shared_data / "models" / "resnet20_cifar10_akamaster.th"
    argv = ["transfer", *cifar, "--attacks", "pgd0", "--transfer-models", f"resnet20={akamaster}", "--runs", str(runs), "--out", str(out)]
    assert main(argv) == 0
    assert {p.name for p in runs.iterdir()} == {"main-resnet20-pgd0-untargeted",
                                                "source-resnet20-pgd0-untargeted-resnet20_cifar10_akamaster"}
    assert {"transfer_asr.csv", "transfer_asr.md", "transfer_asr.tex", "transfer_asr_heatmap.png", "transfer_asr_heatmap.pdf",
            "manifest.json"} <= {p.name for p in out.iterdir()}
    rows = list(csv.DictReader((out / "transfer_asr.csv").open()))
    assert [(r["source"], r["target"]) for r in rows] == [
        ("resnet20 (resnet20_cifar10_gse)", "resnet20 (resnet20_cifar10_gse)"),
        ("resnet20 (resnet20_cifar10_gse)", "resnet20 (resnet20_cifar10_akamaster)"),
        ("resnet20 (resnet20_cifar10_akamaster)", "resnet20 (resnet20_cifar10_gse)"),
        ("resnet20 (resnet20_cifar10_akamaster)", "resnet20 (resnet20_cifar10_akamaster)")]
    source = load_results(runs / "main-resnet20-pgd0-untargeted")
    assert int(rows[0]["successful"]) == int(source.records["success"].sum())
    assert float(rows[0]["asr"]) == 1.0 and float(rows[3]["asr"]) == 1.0  # each model on its own examples
    assert float(rows[0]["clean_accuracy"]) == 1.0  # the source attacked images it classifies correctly
    assert "source / target" in (out / "transfer_asr.md").read_text()
    monkeypatch.setattr(runner, "run", lambda *a, **k: pytest.fail("a complete store was recomputed"))
    assert main([*argv, "--only", "transfer"]) == 0


def test_ablation_on_cifar10(cifar, tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "out"
    argv = ["ablation", *cifar, "--k-hats", "5,30", "--option", "gse:iterations=20", "--option", "gse:search_steps=2",
            "--runs", str(runs), "--out", str(out)]
    assert main(argv) == 0
    # k̂ = 30 is the cifar10 preset's: that run is the cifar10 study's own GSE run (same key and options)
    assert {p.name for p in runs.iterdir()} == {"ablation-resnet20-gse-untargeted-khat5", "main-resnet20-gse-untargeted"}
    rows = list(csv.DictReader((out / "ablation_khat.csv").open()))
    assert [int(r["k_hat"]) for r in rows] == [5, 30] and all(int(r["examples"]) == 2 for r in rows)
    summary = load_results(runs / "main-resnet20-gse-untargeted").summary()
    assert float(rows[1]["acp"]) == pytest.approx(summary["acp"])
    markdown = (out / "ablation_khat.md").read_text()
    assert "| k̂ = 5 |" in markdown and "| k̂ | ASR |" in markdown and "Paper Tab. 9" in markdown
    assert "$\\hat{k}$ = 30" in (out / "ablation_khat.tex").read_text()
    assert {"ablation_khat.png", "ablation_khat.pdf"} <= {p.name for p in out.iterdir()}
