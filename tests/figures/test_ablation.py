"""The k̂ ablation (Tab. 9): its table's rows from hand-made GSE stores, the plot, and the study's runs."""

import pytest

from gse_explain.evaluation import load_results
from gse_explain.evaluation.store import ResultStore
from gse_explain.figures import StudyOptions, build_study
from gse_explain.figures.ablation import CIFAR10_K_HATS, DEMO_K_HATS, ablation_plot, ablation_table
from gse_explain.figures.cli import main


def _gse_store(tmp_path, make_store, monkeypatch, k_hat=None, preset=None, **kwargs):
    """A hand-made GSE store whose manifest records ``options={"k_hat": k_hat}`` (or none) and ``preset``."""
    create = ResultStore.create.__func__
    extra = {"options": {} if k_hat is None else {"k_hat": k_hat}, "preset": preset}
    with monkeypatch.context() as patch:
        patch.setattr(ResultStore, "create", classmethod(lambda cls, path, config: create(cls, path, {**config, **extra})))
        return make_store(tmp_path / f"gse-{k_hat}-{preset}", "gse", False, **kwargs)


def test_ablation_table_has_one_row_per_k_hat(tmp_path, make_store, monkeypatch):
    runs = [_gse_store(tmp_path, make_store, monkeypatch, 50), _gse_store(tmp_path, make_store, monkeypatch, 10, failed={(1, -1)}),
            _gse_store(tmp_path, make_store, monkeypatch, None, preset="cifar10")]  # the cifar10 preset: k̂ = 30
    table = ablation_table(runs)
    assert list(table.columns) == ["k_hat", "examples", "asr", "acp", "anc", "l2", "d20", "time"]
    assert table["k_hat"].tolist() == [10, 30, 50] and table["examples"].tolist() == [3, 3, 3]
    assert table["asr"].tolist() == pytest.approx([2 / 3, 1.0, 1.0])
    summary = load_results(runs[0]).summary()
    row = table.set_index("k_hat").loc[50]
    assert (row["acp"], row["anc"], row["d20"], row["time"]) == (summary["acp"], summary["anc"], summary["d20"], 0.5)
    assert row["acp"] == 4.0  # one 2×2 cluster
    fig, axes = ablation_plot(table)
    assert [ax.get_title() for ax in axes] == ["ACP", "ANC", "$\\ell_2$", "$d_{2,0}$"]
    assert axes[1].lines[0].get_xdata().tolist() == [10, 30, 50]


def test_ablation_table_refuses_duplicates_and_other_attacks(tmp_path, make_store, monkeypatch):
    with pytest.raises(ValueError, match="two runs have k_hat=10"):
        ablation_table([_gse_store(tmp_path, make_store, monkeypatch, 10), _gse_store(tmp_path / "b", make_store, monkeypatch, 10)])
    with pytest.raises(ValueError, match="reads GSE runs.*'pgd0'"):
        ablation_table([make_store(tmp_path / "p", "pgd0", False)])


def test_ablation_study_runs(shared_data):
    npz, weights = shared_data / "cifar10" / "cifar10_test_0-499.npz", shared_data / "models" / "resnet20_cifar10_gse.pt"
    study = build_study("ablation", StudyOptions(on="cifar10", data_root=str(npz), weights=str(weights)))
    assert study.runs_name == "cifar10" and study.figures == ("ablation",)
    assert [r.options.get("k_hat") for r in study.runs] == [k if k != 30 else None for k in CIFAR10_K_HATS]
    reused = [r for r in study.runs if r.group == "main"]
    base = build_study("cifar10", StudyOptions(data_root=str(npz), weights=str(weights), attacks=["gse"]))
    assert [r.key for r in reused] == ["main-resnet20-gse-untargeted"] and reused[0].config == base.runs[0].config
    assert {r.key for r in study.runs if r.group == "ablation"} >= {"ablation-resnet20-gse-untargeted-khat10"}
    demo = build_study("ablation", StudyOptions(k_hats=[20, 50]))
    assert [(r.group, r.tag, r.num_images) for r in demo.runs] == [("ablation", "khat20", 2), ("ablation", "khat50", 2)]
    assert len(build_study("ablation").runs) == len(DEMO_K_HATS)
    with pytest.raises(ValueError, match="--k-hats, not --option gse:k_hat"):
        build_study("ablation", StudyOptions(attack_options={"gse": {"k_hat": 5}}))
    with pytest.raises(ValueError, match="runs GSE only"):
        build_study("ablation", StudyOptions(attacks=["pgd0"]))


@pytest.mark.parametrize("argv, message", [
    (["ablation", "--k-hats", "10,10"], "--k-hats must be distinct integers ≥ 0"),
    (["ablation", "--k-hats", "-5"], "--k-hats must be distinct integers ≥ 0"),
    (["cifar10", "--k-hats", "10,20"], "--k-hats applies only to the ablation study, not to 'cifar10'"),
    (["demo", "--on", "cifar10"], "--on applies only to the explain, transfer and ablation studies"),
    (["ablation", "--on", "cifar10"], "needs --data-root"),
])
def test_ablation_cli_errors(argv, message, tmp_path, capsys):
    assert main([*argv, "--runs", str(tmp_path / "r"), "--out", str(tmp_path / "o"), "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bad_k_hats_text_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["ablation", "--k-hats", "ten"])
    assert exit_info.value.code == 2 and "comma-separated integers" in capsys.readouterr().err
