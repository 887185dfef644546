"""IS of stored runs: a hand-made store with a linear model whose saliency map is known, aggregation by hand,
CSV export."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from gse_explain.analysis import aggregate_curves, interpretability_curves, interpretability_table, read_csv, write_csv
from gse_explain.evaluation.store import ResultStore, load_results

# Linear model on 1×2×2 images with K = 3: for y = 0 and t ∈ {1, 2}, ASM = W[t] ⊙ |W[0]| = [4, 3, 2, 1].
# Non-zero entries sorted: s = [1, 2, 3, 4], n = 4. P = 20: s[ceil(1) - 1] = 1, mask = entries 0..2.
# P = 50: s[ceil(2.5) - 1] = 3, mask = entry 0.
WEIGHT = torch.tensor([[1.0, 1.0, 1.0, 1.0], [4.0, 3.0, 2.0, 1.0], [4.0, 3.0, 2.0, 1.0]])
PERCENTILES = [20, 50]
CONFIG = {"dataset": "toy", "model": "toy", "attack": "toy_attack", "targeted": True, "mode": "targeted",
          "batch_size": 2, "bounds": [0.0, 1.0], "offsets": [1, 2], "seed": 0}

# (batch, image, offset, success, δ, IS_20, IS_50)
ROWS = [
    (0, 0, 1, True, [0.3, 0.0, 0.4, 0.0], 1.0, 0.6),   # A
    (0, 1, 1, True, [0.0, 0.0, 0.0, 0.5], 0.0, 0.0),   # B
    (0, 0, 2, True, [0.3, 0.0, 0.0, 0.4], 0.6, 0.6),   # C
    (0, 1, 2, False, [0.5, 0.0, 0.0, 0.0], 1.0, 1.0),  # E: unsuccessful, counted by default
    (1, 0, 1, True, [0.0, 0.0, 0.0, 0.0], None, None),  # D: δ = 0, never counted
    (1, 0, 2, True, [0.0, 0.4, 0.0, 0.3], 0.8, 0.0),   # F
]


def _write_store(path, config=CONFIG):
    store = ResultStore.create(path, config)
    store.write_selection({"positions": [0, 1, 2], "examples": [10, 11, 12], "labels": [0, 0, 0], "scanned": 3, "correct": 3})
    for batch in (0, 1):
        rows = [r for r in ROWS if r[0] == batch]
        images = 2 if batch == 0 else 1
        clean = torch.full((images, 1, 2, 2), 0.5)
        delta = torch.tensor([r[4] for r in rows]).view(-1, 1, 2, 2)
        image = np.array([r[1] for r in rows], dtype=np.int64)
        offset = np.array([r[2] for r in rows], dtype=np.int64)
        records = {
            "image": image, "label": np.zeros(len(rows), dtype=np.int64),
            "target": offset if config["targeted"] else np.full(len(rows), -1),
            "offset": offset if config["targeted"] else np.full(len(rows), -1),
            "success": np.array([r[3] for r in rows]), "acp": (delta != 0).flatten(1).sum(1).numpy(),
            "l2": (2 * delta).flatten(1).norm(dim=1).double().numpy(),
        }
        store.write_batch(batch, records, clean, clean[torch.from_numpy(image)] + delta)
    return path


@pytest.fixture
def toy_store(tmp_path):
    return _write_store(tmp_path / "toy")


@pytest.fixture
def toy_model(make_linear_model):
    return make_linear_model(WEIGHT)


def test_table_has_one_row_per_counted_example_and_percentile(toy_store, toy_model):
    table = interpretability_table(toy_store, toy_model, percentiles=PERCENTILES)
    counted = [r for r in ROWS if r[5] is not None]
    assert len(table) == len(counted) * len(PERCENTILES)
    assert list(table.columns) == ["attack", "batch", "image", "example", "label", "target", "offset", "success", "l2",
                                   "percentile", "interpretability_score"]
    assert (table["attack"] == "toy_attack").all()
    expected = [score for r in counted for score in (r[5], r[6])]
    assert table["interpretability_score"].to_numpy() == pytest.approx(expected, abs=1e-6)
    assert table["percentile"].tolist() == PERCENTILES * len(counted)
    assert table["example"].tolist() == [10, 10, 11, 11, 10, 10, 11, 11, 12, 12]
    only_successful = interpretability_table(load_results(toy_store), toy_model, percentiles=PERCENTILES,
                                             successful_only=True, attack="named")
    assert len(only_successful) == 4 * 2 and only_successful["success"].all() and (only_successful["attack"] == "named").all()


def test_curves_mean_and_t_band_by_hand(toy_store, toy_model, tmp_path):
    other = _write_store(tmp_path / "other")
    table, curves = interpretability_curves({"GSE": toy_store, "other": other}, toy_model, percentiles=PERCENTILES,
                                            successful_only=True)
    assert curves["attack"].tolist() == ["GSE", "GSE", "other", "other"]
    gse50 = curves[(curves["attack"] == "GSE") & (curves["percentile"] == 50)].iloc[0]
    # Successful rows A, B, C, F: IS_50 = [0.6, 0, 0.6, 0]: mean 0.3, sample variance 0.36 / 3 = 0.12,
    # half width t_{0.975, 3} · sqrt(0.12) / sqrt(4) with t_{0.975, 3} = 3.182446305284263.
    half = 3.182446305284263 * math.sqrt(0.12) / 2
    assert gse50["n"] == 4 and gse50["mean"] == pytest.approx(0.3, abs=1e-6)
    assert gse50["std"] == pytest.approx(math.sqrt(0.12), abs=1e-6)
    assert (gse50["band_low"], gse50["band_high"]) == pytest.approx((0.3 - half, 0.3 + half), abs=1e-6)
    gse20 = curves[(curves["attack"] == "GSE") & (curves["percentile"] == 20)].iloc[0]
    assert gse20["mean"] == pytest.approx((1.0 + 0.0 + 0.6 + 0.8) / 4, abs=1e-6)
    assert gse20["level"] == 0.95 and gse20["band"] == "t"
    # All rows with δ ≠ 0 (the default, as the reference code): A, B, C, E, F.
    _, everything = interpretability_curves({"GSE": toy_store}, toy_model, percentiles=PERCENTILES)
    assert everything.loc[everything["percentile"] == 50, "mean"].item() == pytest.approx(2.2 / 5, abs=1e-6)
    assert everything.loc[everything["percentile"] == 50, "n"].item() == 5


def test_by_image_averages_each_image_first(toy_store, toy_model):
    table = interpretability_table(toy_store, toy_model, percentiles=[50])
    curves = aggregate_curves(table, by_image=True)
    # IS_50 per image: batch 0 image 0 (A, C) 0.6; batch 0 image 1 (B, E) 0.5; batch 1 image 0 (F) 0.
    assert curves["n"].item() == 3 and curves["mean"].item() == pytest.approx(1.1 / 3, abs=1e-6)


def test_bootstrap_band_is_seeded(toy_store, toy_model):
    table = interpretability_table(toy_store, toy_model, percentiles=PERCENTILES)
    first = aggregate_curves(table, band="bootstrap", seed=3, n_boot=500)
    again = aggregate_curves(table, band="bootstrap", seed=3, n_boot=500)
    pd.testing.assert_frame_equal(first, again)
    assert (first["band_low"] <= first["mean"]).all() and (first["mean"] <= first["band_high"]).all()
    with pytest.raises(ValueError, match="band method 'normal' is not known"):
        aggregate_curves(table, band="normal")
    with pytest.raises(ValueError, match=r"level must be in \(0, 1\)"):
        aggregate_curves(table, level=95)


def test_untargeted_run_needs_predicted_targets(tmp_path, toy_model):
    path = _write_store(tmp_path / "untargeted", {**CONFIG, "targeted": False, "mode": "untargeted"})
    with pytest.raises(ValueError, match="untargeted.*targets='predicted'"):
        interpretability_table(path, toy_model, percentiles=PERCENTILES)
    table = interpretability_table(path, toy_model, percentiles=PERCENTILES, targets="predicted")
    assert len(table) == 5 * 2 and table["target"].between(0, 2).all()
    with pytest.raises(ValueError, match="targets must be one of"):
        interpretability_table(path, toy_model, targets="mine")


def test_csv_round_trip_and_no_silent_overwrite(toy_store, toy_model, tmp_path):
    table, curves = interpretability_curves([toy_store], toy_model, percentiles=PERCENTILES)
    path = write_csv(table, tmp_path / "out" / "is.csv")
    pd.testing.assert_frame_equal(read_csv(path), table)
    write_csv(curves, tmp_path / "curves.csv")
    pd.testing.assert_frame_equal(read_csv(tmp_path / "curves.csv"), curves)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_csv(curves, path)
    pd.testing.assert_frame_equal(read_csv(path), table)  # untouched
    write_csv(curves, path, overwrite=True)
    pd.testing.assert_frame_equal(read_csv(path), curves)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["is.csv"]  # no temporary files left


def test_store_errors_are_clear(tmp_path, toy_model):
    with pytest.raises(Exception, match="no result store"):
        interpretability_table(tmp_path / "missing", toy_model)
    with pytest.raises(TypeError, match="result store path or a RunResults"):
        interpretability_table(42, toy_model)
