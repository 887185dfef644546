"""Targeted best/average/worst and untargeted summaries on hand-made record tables (spec §C.5)."""

import math

import pandas as pd
import pytest

from gse_explain.evaluation.summary import summarize, summarize_targeted, summarize_untargeted

METRICS = ["acp", "anc", "l2", "d20"]

# (example, target, success, acp, anc, l2, d20, time): 3 images × 3 targets.
# Image 10: all targets succeed; its minima come from different targets (acp from t=2, anc from t=1/3,
#           l2/d20 from t=3); maxima likewise (acp from t=3, anc/l2/d20 from t=2).
# Image 20: target 2 fails (GSE returns the clean image: zeros); minima acp from t=3, anc/l2 from t=1, d20 t=3.
# Image 30: every target fails; one failure has a non-zero perturbation (as FWnucl's failures do).
ROWS = [
    (10, 1, True, 5, 1, 0.5, 50, 1.0),
    (10, 2, True, 3, 2, 0.9, 60, 2.0),
    (10, 3, True, 8, 1, 0.4, 40, 3.0),
    (20, 1, True, 10, 3, 1.0, 100, 4.0),
    (20, 2, False, 0, 0, 0.0, 0, 5.0),
    (20, 3, True, 6, 4, 1.2, 90, 6.0),
    (30, 1, False, 20, 2, 2.0, 200, 7.0),
    (30, 2, False, 0, 0, 0.0, 0, 8.0),
    (30, 3, False, 0, 0, 0.0, 0, 9.0),
]


def _records(order=None):
    frame = pd.DataFrame(ROWS, columns=["example", "target", "success", *METRICS, "time"])
    return frame if order is None else frame.iloc[order].reset_index(drop=True)


def _check_row(row, expected):
    assert set(row) == {"n", "asr", *METRICS, "time"}
    for key, value in expected.items():
        if isinstance(value, float) and math.isnan(value):
            assert math.isnan(row[key]), key
        else:
            assert row[key] == pytest.approx(value), key


def _expected_targeted(average="successful"):
    # best: image 10 → acp 3, anc 1, l2 0.4, d20 40; image 20 → acp 6, anc 3, l2 1.0, d20 90
    best = {"n": 2, "asr": 2 / 3, "acp": (3 + 6) / 2, "anc": (1 + 3) / 2, "l2": (0.4 + 1.0) / 2, "d20": (40 + 90) / 2}
    # worst: only image 10 (all targets succeeded) → acp 8, anc 2, l2 0.9, d20 60
    worst = {"n": 1, "asr": 1 / 3, "acp": 8, "anc": 2, "l2": 0.9, "d20": 60}
    if average == "successful":  # the 5 successful pairs
        avg = {"n": 5, "asr": 5 / 9, "acp": 32 / 5, "anc": 11 / 5, "l2": 4.0 / 5, "d20": 340 / 5}
    else:  # all 9 pairs, failures included
        avg = {"n": 9, "asr": 5 / 9, "acp": 52 / 9, "anc": 13 / 9, "l2": 6.0 / 9, "d20": 540 / 9}
    time = sum(range(1, 10)) / 9  # per pair, over all pairs
    return {case: {**row, "time": time} for case, row in (("best", best), ("average", avg), ("worst", worst))}


@pytest.mark.parametrize("average", ["successful", "all"])
@pytest.mark.parametrize("order", [None, [8, 3, 0, 5, 1, 7, 2, 6, 4]])
def test_targeted_best_average_worst(average, order):
    summary = summarize_targeted(_records(order), average=average)
    assert list(summary) == ["best", "average", "worst"]
    expected = _expected_targeted(average)
    for case in ("best", "average", "worst"):
        _check_row(summary[case], expected[case])


def test_targeted_asr_computed_directly_from_success_flags():
    records = _records()
    summary = summarize_targeted(records)
    per_image = records.groupby("example")["success"]
    assert summary["best"]["asr"] == pytest.approx(per_image.any().mean())
    assert summary["worst"]["asr"] == pytest.approx(per_image.all().mean())
    assert summary["average"]["asr"] == pytest.approx(records["success"].mean())
    # with every pair successful all three ASRs are 100 % and "all" equals "successful"
    ok = records[records["example"] == 10]
    both = [summarize_targeted(ok, average=a) for a in ("successful", "all")]
    assert both[0] == both[1]
    assert [both[0][c]["asr"] for c in ("best", "average", "worst")] == [1.0, 1.0, 1.0]


def test_targeted_no_image_with_all_targets_successful_gives_nan_worst():
    records = _records()
    records = records[records["example"] != 10]
    summary = summarize_targeted(records)
    _check_row(summary["worst"], {"n": 0, "asr": 0.0, "acp": math.nan, "anc": math.nan, "l2": math.nan, "d20": math.nan})
    _check_row(summary["best"], {"n": 1, "asr": 0.5, "acp": 6, "anc": 3, "l2": 1.0, "d20": 90})


def test_targeted_custom_image_key_and_dispatch():
    records = _records().rename(columns={"example": "image"})
    expected = _expected_targeted("all")
    summary = summarize_targeted(records, average="all", image_key="image")
    for case in expected:
        _check_row(summary[case], expected[case])
    via_dispatch = summarize(_records(), targeted=True, average="all")
    for case in expected:
        _check_row(via_dispatch[case], expected[case])


def test_targeted_empty_records():
    empty = _records().iloc[:0]
    summary = summarize_targeted(empty)
    for case in ("best", "average", "worst"):
        assert summary[case]["n"] == 0
        assert all(math.isnan(summary[case][k]) for k in ("asr", *METRICS, "time"))


def test_untargeted_asr_and_means_over_successes():
    records = pd.DataFrame(
        {
            "example": [0, 1, 2, 3],
            "success": [True, True, False, True],
            "acp": [10, 20, 1000, 30],
            "anc": [1, 2, 9, 3],
            "l2": [0.5, 1.0, 9.0, 1.5],
            "d20": [100, 200, 625, 300],
            "time": [0.1, 0.2, 0.3, 0.6],
        }
    )
    expected = {"n": 4, "asr": 0.75, "acp": 20.0, "anc": 2.0, "l2": 1.0, "d20": 200.0, "time": 0.3}
    _check_row(summarize_untargeted(records), expected)
    _check_row(summarize(records, targeted=False), expected)
    # no success: metrics N/A, ASR 0
    failed = records.assign(success=False)
    _check_row(summarize_untargeted(failed), {"n": 4, "asr": 0.0, "acp": math.nan, "d20": math.nan, "time": 0.3})
    empty = summarize_untargeted(records.iloc[:0])
    assert empty["n"] == 0 and math.isnan(empty["asr"]) and math.isnan(empty["acp"])


@pytest.mark.parametrize("column", ["success", "time", "acp", "d20"])
def test_missing_columns_are_named(column):
    with pytest.raises(ValueError, match=column):
        summarize_untargeted(_records().drop(columns=column))
    with pytest.raises(ValueError, match=column):
        summarize_targeted(_records().drop(columns=column))


def test_targeted_missing_image_key_and_bad_average():
    with pytest.raises(ValueError, match="example"):
        summarize_targeted(_records().drop(columns="example"))
    with pytest.raises(ValueError, match="average"):
        summarize_targeted(_records(), average="mean")
    with pytest.raises(ValueError, match="average"):
        summarize(_records(), targeted=True, average="failures")
