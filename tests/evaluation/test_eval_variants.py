"""The baselines' ``variant`` in the store and the tables: the manifest records the resolved variant (also the
default), stores made before it was recorded read, resume and compare as "corrected", and every table labels
reference-port rows."""

import numpy as np
import pytest
import torch

from gse_explain.evaluation import RunConfig, attack_variant, load_results, run_report
from gse_explain.evaluation.metrics import example_metrics
from gse_explain.evaluation.store import ResultStore, StoreMismatchError, config_diff
from gse_explain.evaluation.tables import comparison_table, timing_table, untargeted_table, variant_label
from gse_explain.figures.paper_tables import paper_tables

BASE = dict(dataset="cifar10_npz", model="resnet20", weights="random", attack="strattack")


def test_manifest_records_the_resolved_variant_also_by_default():
    config = RunConfig(**BASE)
    assert config.to_json()["attack_variant"] == "corrected"
    reference = config.replace(options={"variant": "reference"})
    assert reference.to_json()["attack_variant"] == "reference"
    assert "attack_variant" not in config.replace(attack="gse").to_json()  # GSE has no variants
    again = RunConfig.from_json(reference.to_json())  # the recorded key is derived: dropped on reading
    assert again.to_json() == reference.to_json()


def test_bad_variant_in_a_run_config_names_the_choices():
    with pytest.raises(ValueError, match="RunConfig.options: .*variant must be one of 'corrected', 'reference'"):
        RunConfig(**BASE, options={"variant": "paper"})


def test_stores_without_the_key_resume_as_corrected(tmp_path):
    new = RunConfig(**BASE).to_json()
    old = {k: v for k, v in new.items() if k != "attack_variant"}  # a store made before the option existed
    assert config_diff(old, new) == []
    reference = RunConfig(**BASE, options={"variant": "reference"}).to_json()
    assert any(line.startswith("attack_variant: stored 'corrected', requested 'reference'") for line in config_diff(old, reference))
    ResultStore.create(tmp_path / "old", old)
    ResultStore.create(tmp_path / "old", new)  # resuming with today's default: the same run
    with pytest.raises(StoreMismatchError, match="attack_variant"):
        ResultStore.create(tmp_path / "old", {**new, "attack_variant": "reference"})
    assert attack_variant(old) == "corrected" and attack_variant(tmp_path / "old") == "corrected"


def test_attack_variant_reads_the_manifest_then_the_option():
    assert attack_variant({"attack": "strattack", "attack_variant": "reference"}) == "reference"
    assert attack_variant({"attack": "sapf", "options": {"variant": "reference"}}) == "reference"
    assert attack_variant({"attack": "pgd0", "options": {}}) == "corrected"
    assert attack_variant({"attack": "gse"}) is None and attack_variant({"attack": "not_registered"}) is None
    assert variant_label("StrAttack", "reference") == "StrAttack (reference port)"
    assert variant_label("StrAttack", "corrected") == "StrAttack" and variant_label("GSE", None) == "GSE"


def _store(path, attack: str, variant: str | None) -> str:
    """A complete one-batch untargeted store of 2 toy images (3×8×8) with one changed 2×2 block each."""
    config = {"dataset": "toy", "model": "toy", "attack": attack, "targeted": False, "mode": "untargeted",
              "batch_size": 2, "bounds": [0.0, 1.0], "offsets": None, "seed": 0, "options": {}}
    if variant is not None:
        config["attack_variant"] = variant
    store = ResultStore.create(path, config)
    clean = torch.full((2, 3, 8, 8), 0.5)
    adversarial = clean.clone()
    adversarial[:, :, 2:4, 2:4] = 0.9
    store.write_selection({"positions": [0, 1], "examples": [10, 11], "labels": [0, 1], "scanned": 2, "correct": 2})
    records = {"image": np.arange(2), "label": np.arange(2), "target": np.full(2, -1), "offset": np.full(2, -1),
               "success": np.ones(2, dtype=bool), "time": np.full(2, 1.5), "model_passes": np.full(2, 10.0),
               **example_metrics(clean, adversarial, (0.0, 1.0))}
    store.write_batch(0, records, clean, adversarial)
    return str(path)


def test_run_report_and_paper_tables_label_reference_rows(tmp_path):
    ref = _store(tmp_path / "str-ref", "strattack", "reference")
    cor = _store(tmp_path / "fw", "fwnucl", "corrected")
    gse = _store(tmp_path / "gse", "gse", None)
    report = run_report(load_results(ref))
    assert "| strattack (reference port) |" in report and "baseline variant: reference" in report
    assert "baseline variant: corrected" in run_report(load_results(cor))
    assert "baseline variant" not in run_report(load_results(gse))

    tables = paper_tables({"gse": gse, "strattack": ref, "fwnucl": cor}, {})
    table2 = tables["table2"]["markdown"]
    rows = [line.split("|")[1].strip() for line in table2.splitlines() if line.startswith("| ")][1:]
    assert rows == ["GSE", "StrAttack (reference port)", "FWnucl"]
    assert "Rows marked (reference port) ran the GSE authors' ports" in table2
    assert "StrAttack (reference port)" in tables["table2"]["latex"] and "StrAttack (reference port)" in tables["table4"]["markdown"]
    corrected_only = paper_tables({"gse": gse, "fwnucl": cor}, {})["table2"]["markdown"]
    assert "Baselines: corrected variants" in corrected_only and "reference port)" not in corrected_only
    table1 = paper_tables({}, {}, table1={("strattack", False): ref})["table1"]["markdown"]
    assert "| StrAttack (reference port) |" in table1


def test_table_functions_take_variants():
    row = {"asr": 1.0, "acp": 4.0, "anc": 1.0, "l2": 0.5, "d20": 3.0, "time": 1.0}
    variants = {"SAPF": "reference", "GSE": None}
    assert "| SAPF (reference port) |" in untargeted_table({"SAPF": row, "GSE": row}, variants=variants)
    assert "| SAPF (reference port) |" in comparison_table({"SAPF": row}, {}, variants=variants)
    assert "| SAPF (reference port) |" in timing_table({"SAPF": {"U": 1.0}}, variants=variants)
    assert "| SAPF |" in untargeted_table({"SAPF": row})  # no variants given: names unchanged
