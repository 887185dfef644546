"""What the paper-extra options do to a study's runs: --baseline-variant reference (which runs get
variant="reference"), --table1-targeted-images (Table 1's targeted runs and columns) and --examples."""

import dataclasses

import pytest

from gse_explain.attacks import get_attack
from gse_explain.figures import StudyOptions, build_study, paper_tables
from gse_explain.figures.cli import main
from gse_explain.figures.studies import TABLE1_ATTACKS, variant_attacks


def _has_variant(attack: str) -> bool:
    return "variant" in {f.name for f in dataclasses.fields(get_attack(attack).config_class)}


def test_reference_variant_goes_to_every_baseline_with_the_option():
    corrected = build_study("demo", StudyOptions(table1_images=1))
    study = build_study("demo", StudyOptions(table1_images=1, baseline_variant="reference",
                                             attack_options={"pgd0": {"variant": "corrected"}}))
    assert len(study.runs) == len(corrected.runs)
    with_option = {r.attack for r in study.runs if _has_variant(r.attack)}
    assert with_option >= {"fwnucl", "homotopy"} and "gse" not in with_option
    for plain, run in zip(corrected.runs, study.runs):
        if run.attack == "pgd0":  # an explicit variant is kept, the run is not retagged
            assert run.options["variant"] == "corrected" and run.tag == ""
        elif run.attack in with_option:
            assert run.options == {**plain.options, "variant": "reference"} and run.key == plain.key + "-reference"
        else:
            assert run == plain
    assert variant_attacks([r.attack for r in study.runs]) == sorted(with_option, key=[r.attack for r in study.runs].index)
    assert "variant='reference'" in study.description and "fwnucl" in study.description.split("spec §B")[1]
    assert build_study("demo", StudyOptions(baseline_variant="corrected")).runs == build_study("demo").runs
    with pytest.raises(ValueError, match="none of this study's attacks \\(gse\\) has a reference variant"):
        build_study("demo", StudyOptions(attacks=["gse"], table1_images=0, baseline_variant="reference"))


def test_reference_variant_reaches_the_plan(tmp_path, capsys):
    argv = ["demo", "--attacks", "fwnucl", "--baseline-variant", "reference", "--table1-images", "0", "--runs",
            str(tmp_path / "r"), "--out", str(tmp_path / "o"), "--dry-run"]
    assert main(argv) == 0
    plan = capsys.readouterr().err
    assert "fwnucl" in plan and "[reference]" in plan and "variant=reference" in plan and "as the GSE authors' ports" in plan


def test_table1_targeted_runs_and_columns(toy_runs):
    study = build_study("demo", StudyOptions(table1_targeted_images=1))
    targeted = study.group("table1", targeted=True)
    assert [r.attack for r in targeted] == list(TABLE1_ATTACKS)
    assert all(r.num_images == 1 and r.batch_size == 1 and r.offsets == (857,) and r.model == "efficientnet_lite0" for r in targeted)
    untargeted = {r.attack: r for r in study.group("table1", targeted=False)}
    assert all(r.options == untargeted[r.attack].options for r in targeted)  # the same budgets as the U columns
    assert [r.key for r in targeted] == [f"table1-efficientnet_lite0-{a}-targeted" for a in TABLE1_ATTACKS]
    assert not build_study("demo").group("table1", targeted=True)
    # the runs' columns: Table 1 puts each attack's targeted average case beside its untargeted row
    table1 = {("gse", False): toy_runs["untargeted"]["gse"], ("gse", True): toy_runs["targeted"]["gse"],
              ("strattack", False): toy_runs["untargeted"]["strattack"]}
    markdown = paper_tables({}, {}, table1=table1)["table1"]["markdown"]
    gse = next(line for line in markdown.splitlines() if line.startswith("| GSE"))
    assert "N/A" not in gse and gse.count("100.0%") == 2
    assert "N/A" in next(line for line in markdown.splitlines() if line.startswith("| StrAttack"))


def test_examples_reach_the_study(capsys, tmp_path):
    assert build_study("demo", StudyOptions(examples=3)).examples == 3
    assert build_study("demo").examples == 1
    assert main(["demo", "--examples", "0", "--dry-run"]) == 1
    assert "--examples must be ≥ 1" in capsys.readouterr().err
    assert main(["demo", "--table1-targeted-images", "-1", "--dry-run"]) == 1
    assert "--table1-targeted-images must be ≥ 0" in capsys.readouterr().err
