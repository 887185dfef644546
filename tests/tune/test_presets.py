"""Preset JSON files: round trip (written, then accepted as preset=PATH by build_config, Attack, RunConfig and
--preset), the store records the file's hash and refuses a changed file, and bad files give clear errors."""

import json

import pytest

from gse_explain import Attack, RunConfig, run
from gse_explain.attacks import get_attack
from gse_explain.attacks.presets import PresetError, load_preset, save_preset
from gse_explain.evaluate import main as evaluate_main
from gse_explain.evaluation.store import StoreMismatchError

TUNED = {"untargeted": {"mu": 1.0, "step_size": 0.01, "k_hat": 20, "q": 0.5}}
TINY = {"iterations": 3, "search_steps": 1}


def _write(path, document):
    path.write_text(json.dumps(document))
    return path


def test_round_trip_build_config_and_attack_class(tmp_path, resnet20):
    preset = save_preset(tmp_path / "tuned.json", "gse", TUNED, {"model": "resnet20", "objective": "acp + anc"})
    assert preset.values[False] == TUNED["untargeted"] and True not in preset.values
    assert load_preset(tmp_path / "tuned.json").sha256 == preset.sha256
    config = get_attack("gse").make_config(str(tmp_path / "tuned.json"), False, iterations=7)
    assert (config.step_size, config.k_hat, config.q, config.iterations) == (0.01, 20, 0.5, 7)
    assert get_attack("gse").make_config(tmp_path / "tuned.json").k_hat == 20  # a Path works too
    attack = Attack("gse", resnet20, preset=str(tmp_path / "tuned.json"), **TINY)
    assert attack.config.q == 0.5 and attack.config.iterations == 3
    both = save_preset(tmp_path / "both.json", "gse", {"q": 0.75}, {})  # one set for both modes
    assert both.values[False] == both.values[True] == {"q": 0.75}
    with pytest.raises(FileExistsError, match="already exists"):
        save_preset(tmp_path / "tuned.json", "gse", TUNED)


def _run_config(cifar_npz, resnet20_weights, preset, **changes):
    return RunConfig(dataset="cifar10_npz", data_root=str(cifar_npz), model="resnet20", weights=str(resnet20_weights),
                     preset=preset, options=TINY, num_images=2, batch_size=2, device="cpu", **changes)


def test_run_config_records_the_file_hash_and_refuses_a_changed_file(tmp_path, cifar_npz, resnet20_weights):
    path = save_preset(tmp_path / "tuned.json", "gse", TUNED, {"model": "resnet20"}).path
    config = _run_config(cifar_npz, resnet20_weights, path)
    manifest = config.to_json()
    assert manifest["preset"] == path and manifest["preset_values"] == TUNED["untargeted"]
    assert manifest["preset_sha256"] == load_preset(path).sha256
    results = run(config, tmp_path / "store", progress=False)
    assert results.config["preset_sha256"] == manifest["preset_sha256"] and len(results.records) == 2
    run(_run_config(cifar_npz, resnet20_weights, path), tmp_path / "store", progress=False)  # same file: resumes (complete)
    save_preset(path, "gse", {"untargeted": {**TUNED["untargeted"], "q": 0.9}}, {"model": "resnet20"}, overwrite=True)
    with pytest.raises(StoreMismatchError, match=r"preset_sha256: stored '[0-9a-f]{64}', requested") as info:
        run(_run_config(cifar_npz, resnet20_weights, path), tmp_path / "store", progress=False)
    assert "preset_values" in str(info.value) and "'q': 0.5" in str(info.value)


def test_named_presets_keep_their_manifest_form(cifar_npz, resnet20_weights):
    manifest = _run_config(cifar_npz, resnet20_weights, "cifar10").to_json()
    assert manifest["preset"] == "cifar10" and "preset_sha256" not in manifest and "preset_values" not in manifest
    assert _run_config(cifar_npz, resnet20_weights, "auto").to_json()["preset"] == "cifar10"
    assert RunConfig.from_json(manifest).preset == "cifar10"


BAD_FILES = [
    ("not json", "{nope", PresetError, r"is not valid JSON"),
    ("unknown key", {"attack": "gse", "values": {"q": 0.5}, "note": 1}, PresetError, r"unknown key\(s\) \['note'\]"),
    ("no values", {"attack": "gse"}, PresetError, r"lacks the key 'values'"),
    ("no attack name", {"attack": 3, "values": {"q": 0.5}}, PresetError, r"'attack' must be an attack name"),
    ("mixed modes", {"attack": "gse", "values": {"untargeted": {"q": 0.5}, "q": 0.5}}, PresetError,
     r"mixes per-mode entries \['untargeted'\] with options \['q'\]"),
    ("empty mode", {"attack": "gse", "values": {"untargeted": {}}}, PresetError, r"'values'\['untargeted'\] must be a non-empty"),
    ("other format", {"format": "x", "attack": "gse", "values": {"q": 0.5}}, PresetError, r"not a gse_explain preset file"),
    ("unknown option", {"attack": "gse", "values": {"qq": 0.5}}, TypeError, r"unknown GSE option\(s\) \['qq'\] in preset file .*bad.json"),
    ("wrong type", {"attack": "gse", "values": {"k_hat": 2.5}}, TypeError,
     r"GSE option 'k_hat' in preset file .*bad.json must be an int; got 2.5"),
    ("out of range", {"attack": "gse", "values": {"q": 2.0}}, ValueError, r"q must be in \(0, 1\]"),
    ("other attack", {"attack": "pgd0", "values": {"k": 10}}, ValueError, r"is for attack 'pgd0', not GSE"),
    ("missing mode", {"attack": "gse", "values": {"untargeted": {"q": 0.5}}}, PresetError,
     r"has no targeted values \(it has: untargeted\)"),
]


@pytest.mark.parametrize("document, error, pattern", [case[1:] for case in BAD_FILES], ids=[case[0] for case in BAD_FILES])
def test_bad_preset_files_give_clear_errors(tmp_path, document, error, pattern):
    path = tmp_path / "bad.json"
    path.write_text(document) if isinstance(document, str) else _write(path, document)
    with pytest.raises(error, match=pattern):
        get_attack("gse").make_config(str(path), targeted=True)


def test_missing_file_and_names_without_json(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"preset file .*missing.json not found"):
        get_attack("gse").make_config(str(tmp_path / "missing.json"))
    with pytest.raises(ValueError, match=r"unknown GSE preset 'tuned'; choose one of .*a preset JSON file \(PATH.json\)"):
        get_attack("gse").make_config("tuned")
    with pytest.raises(PresetError, match="end in .json"):
        save_preset(tmp_path / "tuned.txt", "gse", TUNED)


def test_run_config_and_cli_name_the_preset_in_errors(tmp_path, cifar_npz, resnet20_weights, capsys):
    path = _write(tmp_path / "bad.json", {"attack": "gse", "values": {"untargeted": {"k_hat": "ten"}}})
    with pytest.raises(TypeError, match=r"RunConfig.preset: GSE option 'k_hat' in preset file .*bad.json must be an int"):
        _run_config(cifar_npz, resnet20_weights, str(path))
    with pytest.raises(SystemExit, match=r"error: --preset: GSE option 'k_hat' in preset file .*bad.json must be an int"):
        evaluate_main(["--dataset", "cifar10_npz", "--data-root", str(cifar_npz), "--model", "resnet20", "--weights",
                       str(resnet20_weights), "--preset", str(path), "--output", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()
