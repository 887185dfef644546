"""Store-level analysis: incomplete stores are an error unless allow_incomplete=True (then the tables say what
they cover), empty stores always are, NaN in stored images is named by batch, a moved weights file is passed
as weights=, and valid stores give the same numbers as before the input checks were added."""

import shutil

import pandas as pd
import pytest
import torch

from gse_explain.analysis import (
    aggregate_curves,
    cam_alignment_curves,
    cam_alignment_table,
    interpretability_curves,
    interpretability_table,
    read_csv,
    write_csv,
)
from gse_explain.analysis.runs import iter_row_batches, open_run, run_coverage
from gse_explain.evaluation.store import ResultStore
from gse_explain.io import file_sha256

# IS and CAM alignment of the 3-image patch store (tests/analysis/conftest.py), recorded before the input
# checks were added (rows: image 0, 1, 2 with offset 1, then with offset 2; 5 percentiles / top-q each).
RECORDED_IS = [
    0.6614411994, 0.590520016, 0.560357568, 0.3562762149, 0.0887654596, 0.7940278007, 0.6949464434, 0.6678833445,
    0.430241636, 0.0, 0.5585094562, 0.4875649994, 0.4426025308, 0.2835072234, 0.0, 0.665644555, 0.6519652112,
    0.4985805535, 0.4434744842, 0.268044016, 0.7135522897, 0.6847508143, 0.6517209503, 0.5483774862, 0.4674806411,
    0.7452556509, 0.6334564227, 0.4697826026, 0.416775893, 0.3090235052,
]
RECORDED_CAM_LABEL = [
    0.0, 0.0, 0.3134034652, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.1106471918, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0,
    1.0, 0.0, 0.0, 0.2502913867, 0.8722778168, 1.0, 0.0, 0.0, 0.0, 0.1177740216, 0.4689378716,
]
RECORDED_GRADCAM_TARGET = [
    0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.5662510659, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0,
    0.0819650848, 0.0, 0.0, 0.7497086133, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0,
]


def test_valid_store_gives_the_recorded_numbers(tmp_path, make_patch_store, resnet20):
    path, _, _ = make_patch_store(tmp_path / "patch")
    table = interpretability_table(path)  # model rebuilt from the stored configuration
    assert table["interpretability_score"].tolist() == pytest.approx(RECORDED_IS, abs=1e-7)
    assert not set(table.columns) & {"stored_images", "selected_images"}  # complete store: schema unchanged
    assert table.attrs["coverage"]["patch"]["complete"] is True
    # The CAM numbers were recorded with bilinear upsampling, the default then; bicubic (the paper's) is now.
    cams = cam_alignment_table(path, resnet20, upsample="bilinear")
    assert cams["energy_share"].tolist() == pytest.approx(RECORDED_CAM_LABEL, abs=1e-7)
    assert cam_alignment_table(path, resnet20)["energy_share"].tolist() != pytest.approx(RECORDED_CAM_LABEL, abs=1e-3)
    gradcams = cam_alignment_table(path, resnet20, method="gradcam", cam_class="target", upsample="bilinear")
    assert gradcams["energy_share"].tolist() == pytest.approx(RECORDED_GRADCAM_TARGET, abs=1e-7)


@pytest.fixture
def incomplete_store(tmp_path, make_patch_store):
    """The patch store in batches of one image (3 batch files) with batch 1 removed."""
    path, _, _ = make_patch_store(tmp_path / "partial", batch_size=1)
    ResultStore.open(path).batch_path(1).unlink()
    return path


STORE_FUNCTIONS = [
    pytest.param(lambda run, **kw: interpretability_table(run, **kw), id="interpretability_table"),
    pytest.param(lambda run, **kw: interpretability_curves({"patch": run}, **kw)[1], id="interpretability_curves"),
    pytest.param(lambda run, **kw: cam_alignment_table(run, **kw), id="cam_alignment_table"),
    pytest.param(lambda run, **kw: cam_alignment_curves({"patch": run}, **kw)[1], id="cam_alignment_curves"),
    pytest.param(lambda run, **kw: list(iter_row_batches(open_run(run), successful_only=False, **kw)),
                 id="iter_row_batches"),
]


@pytest.mark.parametrize("analyse", STORE_FUNCTIONS)
def test_incomplete_store_is_an_error_naming_it(analyse, incomplete_store):
    fragment = rf"the store {incomplete_store}.* is incomplete: 1 of its 3 batches are missing \(batch 1\).*allow_incomplete=True"
    with pytest.raises(ValueError, match=fragment):
        analyse(incomplete_store)


def test_iter_row_batches_raises_before_iterating(incomplete_store):
    with pytest.raises(ValueError, match="is incomplete"):
        iter_row_batches(open_run(incomplete_store), successful_only=False)  # no next() needed


@pytest.mark.parametrize("analyse", STORE_FUNCTIONS)
def test_empty_store_is_always_an_error(analyse, tmp_path, make_patch_store):
    path, _, _ = make_patch_store(tmp_path / "empty", batch_size=1)
    for index in range(3):
        ResultStore.open(path).batch_path(index).unlink()
    for allow in (False, True):
        with pytest.raises(ValueError, match=rf"the store {path}.* holds no examples yet"):
            analyse(path, allow_incomplete=allow)


def test_allow_incomplete_tables_record_their_coverage(incomplete_store, tmp_path, make_patch_store, resnet20):
    table = interpretability_table(incomplete_store, resnet20, allow_incomplete=True)
    assert set(table["image"]) == {0} and sorted(set(table["batch"])) == [0, 2]  # batch 1 (image 1) is missing
    assert (table["stored_images"] == 2).all() and (table["selected_images"] == 3).all()
    coverage = table.attrs["coverage"]["patch"]
    assert coverage == {"store": str(incomplete_store), "complete": False, "batches": 2, "of_batches": 3,
                        "missing_batches": [1], "images": 2, "of_images": 3}
    # the stored rows have the numbers of the same rows of the complete store
    full_path, _, _ = make_patch_store(tmp_path / "full", batch_size=1)
    full = interpretability_table(full_path, resnet20)
    same = full[full["batch"] != 1].reset_index(drop=True)
    assert table["interpretability_score"].tolist() == pytest.approx(same["interpretability_score"].tolist(), abs=1e-6)
    pd.testing.assert_frame_equal(table.drop(columns=["stored_images", "selected_images"]), same)


def test_allow_incomplete_curves_carry_coverage_columns_also_through_csv(incomplete_store, tmp_path, make_patch_store,
                                                                         resnet20):
    full_path, _, _ = make_patch_store(tmp_path / "full", batch_size=1)
    runs = {"partial": incomplete_store, "full": full_path}
    table, curves = interpretability_curves(runs, resnet20, percentiles=[50], allow_incomplete=True)
    assert list(curves.columns[-2:]) == ["stored_images", "selected_images"]
    assert curves.set_index("attack")["stored_images"].to_dict() == {"partial": 2, "full": 3}
    assert curves.set_index("attack")["n"].to_dict() == {"partial": 4, "full": 6}
    assert curves.attrs["coverage"]["partial"]["missing_batches"] == [1]
    write_csv(table, tmp_path / "per_example.csv")
    again = aggregate_curves(read_csv(tmp_path / "per_example.csv"))
    pd.testing.assert_frame_equal(again, curves, check_dtype=False)
    _, summary = cam_alignment_curves(runs, resnet20, top_percents=[20], allow_incomplete=True)
    assert list(summary.columns[-3:]) == ["chance", "stored_images", "selected_images"]
    assert summary.set_index("attack")["selected_images"].to_dict() == {"partial": 3, "full": 3}
    # complete stores only: no coverage columns even with allow_incomplete=True
    _, complete = interpretability_curves({"full": full_path}, resnet20, percentiles=[50], allow_incomplete=True)
    assert "stored_images" not in complete.columns and complete.attrs["coverage"]["full"]["complete"]


def test_curves_check_every_store_before_analysing_any(incomplete_store, tmp_path, make_patch_store):
    full_path, _, _ = make_patch_store(tmp_path / "full", batch_size=1)
    with pytest.raises(ValueError, match="partial.* is incomplete"):
        interpretability_curves({"full": full_path, "partial": incomplete_store}, model=_FailingModel())


class _FailingModel(torch.nn.Module):
    def forward(self, x):
        raise AssertionError("the complete store was analysed before the incomplete one was reported")


def test_nan_in_stored_images_names_the_batch(tmp_path, make_patch_store, resnet20):
    path, _, _ = make_patch_store(tmp_path / "nan", batch_size=1)
    store = ResultStore.open(path)
    batch = store.read_batch(2, images=True)
    adversarial = torch.from_numpy(batch["adversarial"]).clone()
    adversarial[1, 0, 0, 0] = float("nan")
    try:
        store.write_batch(2, {k: batch["records"][k].to_numpy() for k in batch["records"].columns},
                          torch.from_numpy(batch["clean"]), adversarial)
    except ValueError:
        pytest.skip("the store refuses to write NaN images itself")
    with pytest.raises(ValueError, match=rf"batch 2 of the store {path}.* holds NaN or inf adversarial images at rows \[1\]"):
        interpretability_table(path, resnet20)


def test_moved_weights_file_is_passed_as_weights(tmp_path, make_patch_store, resnet20_weights, resnet20):
    moved = tmp_path / "moved" / "resnet20.pt"
    path, _, _ = make_patch_store(tmp_path / "patch", weights=tmp_path / "gone.pt",
                                  extra_config={"weights_sha256": file_sha256(resnet20_weights)})
    with pytest.raises(FileNotFoundError, match="gone.pt.*pass weights=PATH"):
        interpretability_table(path)
    moved.parent.mkdir()
    shutil.copyfile(resnet20_weights, moved)
    table = interpretability_table(path, weights=moved)
    assert table["interpretability_score"].tolist() == pytest.approx(RECORDED_IS, abs=1e-7)
    _, curves = interpretability_curves({"patch": path}, weights={"patch": moved}, percentiles=[50])
    assert curves["mean"].item() == pytest.approx(sum(RECORDED_IS[0::5]) / 6, abs=1e-7)
    _, summary = cam_alignment_curves({"patch": path}, weights=moved, top_percents=[30], upsample="bilinear")
    assert summary["mean"].item() == pytest.approx(sum(RECORDED_CAM_LABEL[2::5]) / 6, abs=1e-7)
    assert cam_alignment_table(path, weights=moved, upsample="bilinear")["energy_share"].tolist() == pytest.approx(RECORDED_CAM_LABEL, abs=1e-7)
    with pytest.raises(ValueError, match="either model= .* or weights="):
        interpretability_table(path, resnet20, weights=moved)
    with pytest.raises(TypeError, match=r"weights must be a path or a mapping"):
        cam_alignment_table(path, weights=42)


def test_run_coverage_of_a_complete_store(tmp_path, make_patch_store):
    path, _, _ = make_patch_store(tmp_path / "patch", batch_size=2)
    assert run_coverage(open_run(path)) == {"store": str(path), "complete": True, "batches": 2, "of_batches": 2,
                                            "missing_batches": [], "images": 3, "of_images": 3}
