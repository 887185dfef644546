"""Transferability (Tab. 8): the rates on hand-made stores with target models whose every prediction is known,
the matrices as text and heatmap, and the ``transfer`` study's runs (reused base keys, source runs, errors)."""

import numpy as np
import pytest
import torch
from torch import nn

from gse_explain.analysis.transfer import TRANSFER_COLUMNS, asr_matrix, matrix_text, transfer_matrix, transfer_rates
from gse_explain.evaluation import load_results
from gse_explain.figures import StudyOptions, build_study
from gse_explain.figures.cli import main
from gse_explain.figures.transfer import model_label, transfer_heatmap

NUM_CLASSES = 3


class Constant(nn.Module):
    """Predicts class ``k`` for every image."""

    def __init__(self, k: int):
        super().__init__()
        self.k = k
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return torch.nn.functional.one_hot(torch.full((x.shape[0],), self.k), NUM_CLASSES).float() * self.scale


class Lookup(nn.Module):
    """Knows every stored image: the row's label for a clean image, ``wrong(row)`` for an adversarial one."""

    def __init__(self, store, wrong):
        super().__init__()
        self.table = {}
        run = load_results(store)
        for batch in sorted(run.records["batch"].unique()):
            clean, adversarial, records = run.images(int(batch))
            for row, record in enumerate(records.itertuples()):
                self.table[clean[record.image].tobytes()] = int(record.label)
                self.table[adversarial[row].tobytes()] = wrong(record)

    def forward(self, x):
        classes = [self.table[image.numpy().tobytes()] for image in x.float()]
        return torch.nn.functional.one_hot(torch.tensor(classes), NUM_CLASSES).float()


def test_untargeted_rates_match_the_known_predictions(tmp_path, make_store):
    # labels 0, 1, 2; image 1's attack failed on the source
    store = make_store(tmp_path / "u", "gse", False, failed={(1, -1)})
    lookup = Lookup(store, lambda r: (r.label + 1) % NUM_CLASSES)  # fooled by every adversarial image
    always0 = Constant(0).train()
    table = transfer_rates(store, {"lookup": lookup, "always0": always0}, batch_size=2)
    assert list(table.columns) == TRANSFER_COLUMNS
    row = table.set_index("target").loc["lookup"]
    assert (row["rows"], row["successful"], row["asr"], row["asr_all"], row["clean_accuracy"]) == (3, 2, 1.0, 1.0, 1.0)
    row = table.set_index("target").loc["always0"]
    # always 0: fooled where the label is not 0 (images 1, 2); of the successful images {0, 2}: image 2
    assert row["asr"] == 0.5 and row["asr_all"] == pytest.approx(2 / 3) and row["clean_accuracy"] == pytest.approx(1 / 3)
    assert row["clean_correct"] == 1 and row["asr_clean_correct"] == 0.0  # image 0: right when clean, not fooled
    assert always0.training and always0.scale.requires_grad  # the target's mode and flags are restored


def test_targeted_rates_count_the_target_label(tmp_path, make_store):
    store = make_store(tmp_path / "t", "strattack", True, offsets=(1, 2))
    # both offsets' rows of an image share its adversarial image here: the lookup says label + 1, the offset-1 target
    lookup = Lookup(store, lambda r: (r.label + 1) % NUM_CLASSES)
    always0 = Constant(0)
    table = transfer_rates(store, {"lookup": lookup, "always0": always0}).set_index("target")
    assert table.loc["lookup", "asr"] == 0.5 and table.loc["lookup", "rows"] == 6 and bool(table.loc["lookup", "targeted"])
    assert table.loc["lookup", "clean_accuracy"] == 1.0
    run = load_results(store)
    share = float((run.records["target"] == 0).mean())  # always-0 "hits" the rows whose target is 0
    assert table.loc["always0", "asr"] == pytest.approx(share) and 0 < share < 1


def test_matrix_text_and_heatmap(tmp_path, make_store):
    stores = {attack: {"m0": make_store(tmp_path / f"{attack}0", attack, False),
                       "m1": make_store(tmp_path / f"{attack}1", attack, False, failed={(0, -1)})}
              for attack in ("gse", "pgd0")}
    targets = {"m0": Constant(0), "m1": Constant(1)}
    table = transfer_matrix(stores, targets)
    assert list(table.columns[:2]) == ["attack", "source"] and len(table) == 2 * 2 * 2
    matrix = asr_matrix(table, "gse")
    assert list(matrix.index) == ["m0", "m1"] and list(matrix.columns) == ["m0", "m1"]
    assert matrix.loc["m0", "m0"] == pytest.approx(2 / 3) and matrix.loc["m1", "m1"] == 0.5  # m1 source: images 1, 2 succeed
    markdown = matrix_text(table)
    assert "| attack | source / target | m0 | m1 |" in markdown and "| gse | m0 | 66.7% | 66.7% |" in markdown
    assert "66.7\\%" in matrix_text(table, "latex") and "\\toprule" in matrix_text(table, "latex")
    fig, axes = transfer_heatmap(table)
    assert len(axes) == 2 and axes[0].get_title() == "GSE"
    annotations = sorted(t.get_text() for t in axes[0].texts)
    assert annotations == ["100", "50", "67", "67"] and matrix.loc["m1", "m0"] == 1.0  # always-0 fools images 1 and 2
    with pytest.raises(ValueError, match="no rows for attack 'fwnucl'"):
        asr_matrix(table, "fwnucl")


def test_transfer_needs_targets_and_complete_stores(tmp_path, make_store):
    store = make_store(tmp_path / "u", "gse", False)
    with pytest.raises(ValueError, match="at least one model"):
        transfer_rates(store, {})
    with pytest.raises(TypeError, match="model must be"):
        transfer_rates(store, {"x": 3})
    (tmp_path / "u" / "batches" / "batch-000001.npz").unlink()  # image 2's batch
    with pytest.raises(ValueError, match="is incomplete"):
        transfer_rates(store, {"a": Constant(0)})
    assert transfer_rates(store, {"a": Constant(0)}, allow_incomplete=True)["rows"].iloc[0] == 2

def test_transfer_study_reuses_the_base_keys(shared_data):
    npz = shared_data / "cifar10" / "cifar10_test_0-499.npz"
    weights = shared_data / "models" / "resnet20_cifar10_gse.pt"
    base = build_study("cifar10", StudyOptions(data_root=str(npz), weights=str(weights), attacks=["gse", "pgd0"]))
    study = build_study("transfer", StudyOptions(on="cifar10", data_root=str(npz), weights=str(weights), attacks=["gse", "pgd0"]))
    assert study.runs_name == "cifar10" and study.figures == ("transfer",)
    main_keys = {r.key for r in study.runs if r.group == "main"}
    assert main_keys == {r.key for r in base.group("main", targeted=False)}
    assert [r.config for r in study.runs if r.group == "main"] == [r.config for r in base.group("main", targeted=False)]
    sources = {(r.model, r.tag) for r in study.runs if r.group == "source"}
    assert sources == {("resnet20", "resnet20_cifar10_akamaster"), ("resnet56", "resnet56_cifar10_akamaster")}
    assert all(not r.targeted and r.num_images == 50 for r in study.runs)
    assert "source-resnet56-pgd0-untargeted-resnet56_cifar10_akamaster" in {r.key for r in study.runs}
    assert model_label("resnet56", str(shared_data / "models" / "resnet56_cifar10_akamaster.th")) == "resnet56 (resnet56_cifar10_akamaster)"
    demo = build_study("transfer", StudyOptions(attacks=["pgd0"]))
    assert [(r.group, r.model) for r in demo.runs] == [("main", "efficientnet_lite0"), ("source", "efficientnet_lite1")]
    assert demo.runs_name == "demo" and np.all([r.options == {"n_restarts": 1} for r in demo.runs])


def test_transfer_cli_errors(tmp_path, capsys):
    out = ["--runs", str(tmp_path / "r"), "--out", str(tmp_path / "o"), "--dry-run"]
    assert main(["transfer", "--transfer-models", "resnet20=/nonexistent/w.th", *out]) == 1
    assert "the weights file /nonexistent/w.th does not exist" in capsys.readouterr().err
    assert main(["transfer", "--transfer-models", "efficientnet_lite0", *out]) == 1
    assert "two transfer models share a name" in capsys.readouterr().err
    assert main(["demo", "--transfer-models", "efficientnet_lite1", *out]) == 1
    assert "--transfer-models applies only to the transfer study" in capsys.readouterr().err
    assert main(["transfer", "--on", "cifar10", *out]) == 1
    assert "needs --data-root" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
