"""Execution options of a study (``reproduce(execution=...)``, ``--compile`` / ``--fold-batchnorm``)."""

import importlib

import pytest

from gse_explain.attacks.execution import ExecutionOptions
from gse_explain.evaluation.store import config_diff
from gse_explain.figures import cli
from gse_explain.figures.studies import RunSpec, Study

reproduce_module = importlib.import_module("gse_explain.figures.reproduce")


def _spec(attack: str, targeted: bool) -> RunSpec:
    return RunSpec.make("main", attack, targeted, "efficientnet_lite0", num_images=1, dataset="skimage", image_size=32,
                        offsets=(1,) if targeted else None, options={})


def test_runs_get_the_execution_options_and_reuse_stores_made_without(tmp_path, monkeypatch, make_store):
    study = Study("toy", "toy study", (_spec("gse", False), _spec("gse", True)), "toy", figures=("figure1",))
    seen = []

    def fake_run(config, path, **kwargs):
        seen.append((config.attack, config.targeted, config.fold_batchnorm, config.compile))
        make_store(path, config.attack, config.targeted, images=1)

    monkeypatch.setattr("gse_explain.figures.runner.run", fake_run)
    monkeypatch.setattr(reproduce_module, "render_study", lambda *a, **k: [])
    monkeypatch.setattr(reproduce_module, "_EarlyFigures", _NoEarlyFigures)
    folded = ExecutionOptions(fold_batchnorm=True)
    reproduce_module.reproduce(study, tmp_path / "runs", tmp_path / "out", progress=False, plan=False, execution=folded)
    assert seen == [("gse", False, True, False), ("gse", True, True, False)]


def test_rounding_only_options_do_not_block_a_resume():
    plain = _spec("gse", False).config
    fast = plain.replace(compile=True, fold_batchnorm=True, channels_last=True)
    assert config_diff(plain.to_json(), fast.to_json()) == []
    assert config_diff(plain.to_json(), plain.replace(amp="bf16").to_json()) != []  # amp is compared


def test_amp_is_refused_before_anything_runs(tmp_path):
    study = Study("toy", "toy study", (_spec("gse", False),), "toy")
    with pytest.raises(ValueError, match="amp changes the stored numbers"):
        reproduce_module.reproduce(study, tmp_path / "runs", tmp_path / "out", plan=False,
                                   execution=ExecutionOptions(amp="bf16"))
    assert not (tmp_path / "runs" / study.runs[0].key).exists()


def test_cli_flags_reach_reproduce(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(cli, "reproduce", lambda *a, **k: calls.append(k["execution"]))
    code = cli.main(["demo", "--runs", str(tmp_path / "r"), "--out", str(tmp_path / "o"), "--compile", "--fold-batchnorm"])
    assert code == 0 and calls == [ExecutionOptions(compile=True, fold_batchnorm=True)]


class _NoEarlyFigures:
    """Stands in for reproduce's early-figure hook: draws nothing."""

    def __init__(self, *args):
        self.waiting, self.drawn, self.written = {}, set(), []

    def __call__(self, spec, path):
        pass
