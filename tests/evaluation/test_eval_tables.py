"""Markdown and LaTeX rendering of the paper's Table 2 (untargeted) and Table 3 (targeted) layouts."""

import math

import pytest

from gse_explain.evaluation.tables import targeted_table, untargeted_table

GSE = {"n": 100, "asr": 1.0, "acp": 41.66, "anc": 1.664, "l2": 0.8012, "d20": 177.4, "time": 0.1304}
FW = {"n": 100, "asr": 0.946, "acp": 460.04, "anc": 1.99, "l2": 2.014, "d20": 594.0, "time": 0.25}
NAN_ROW = {"n": 0, "asr": 0.0, "acp": math.nan, "anc": math.nan, "l2": math.nan, "d20": math.nan, "time": 4.08}


def _rows(text):
    return [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()]


def test_untargeted_markdown_layout():
    text = untargeted_table({"GSE": GSE, "FWnucl": FW})
    rows = _rows(text)
    assert rows[0] == ["attack", "ASR", "ACP", "ANC", "ℓ2", "d2,0", "time/img (s)"]
    assert set("".join(rows[1])) == {"-"} and len(rows[1]) == 7
    assert rows[2] == ["GSE", "100.0%", "41.7", "1.66", "0.80", "177", "0.13"]
    assert rows[3] == ["FWnucl", "94.6%", "460.0", "1.99", "2.01", "594", "0.25"]
    assert len(rows) == 4


def test_untargeted_sequence_keeps_order_and_nan_is_na():
    text = untargeted_table([("b", NAN_ROW), ("a", GSE)])
    rows = _rows(text)
    assert [r[0] for r in rows[2:]] == ["b", "a"]
    assert rows[2] == ["b", "0.0%", "N/A", "N/A", "N/A", "N/A", "4.08"]
    nan_asr = untargeted_table({"x": {**NAN_ROW, "asr": math.nan, "time": math.nan}})
    assert _rows(nan_asr)[2] == ["x"] + ["N/A"] * 6


def test_targeted_markdown_layout():
    summaries = {"GSE": {"best": GSE, "average": FW, "worst": NAN_ROW}, "StrAttack": {"worst": GSE, "best": GSE, "average": GSE}}
    rows = _rows(targeted_table(summaries))
    assert rows[0] == ["attack", "case", "ASR", "ACP", "ANC", "ℓ2", "d2,0", "time/img (s)"]
    assert len(rows[1]) == 8
    body = rows[2:]
    assert [(r[0], r[1]) for r in body] == [
        ("GSE", "best"), ("GSE", "average"), ("GSE", "worst"),
        ("StrAttack", "best"), ("StrAttack", "average"), ("StrAttack", "worst"),
    ]
    assert body[0][2:] == ["100.0%", "41.7", "1.66", "0.80", "177", "0.13"]
    assert body[1][2:] == ["94.6%", "460.0", "1.99", "2.01", "594", "0.25"]
    assert body[2][2:] == ["0.0%", "N/A", "N/A", "N/A", "N/A", "4.08"]


def test_untargeted_latex():
    text = untargeted_table({"GSE": GSE, "FWnucl": NAN_ROW}, fmt="latex")
    lines = text.splitlines()
    assert lines[0] == r"\begin{tabular}{lrrrrrr}"
    assert lines[1] == r"\toprule"
    assert lines[2] == r"attack & ASR & ACP & ANC & $\ell_2$ & $d_{2,0}$ & time (s) \\"
    assert lines[3] == r"\midrule"
    assert lines[4] == r"GSE & 100.0\% & 41.7 & 1.66 & 0.80 & 177 & 0.13 \\"
    assert lines[5] == r"FWnucl & 0.0\% & N/A & N/A & N/A & N/A & 4.08 \\"
    assert lines[6:] == [r"\bottomrule", r"\end{tabular}"]


def test_targeted_latex():
    text = targeted_table([("GSE", {"best": GSE, "average": GSE, "worst": FW})], fmt="latex")
    lines = text.splitlines()
    assert lines[0] == r"\begin{tabular}{llrrrrrr}"
    assert lines[2].startswith(r"attack & case & ASR")
    assert lines[4:7] == [
        r"GSE & best & 100.0\% & 41.7 & 1.66 & 0.80 & 177 & 0.13 \\",
        r"GSE & average & 100.0\% & 41.7 & 1.66 & 0.80 & 177 & 0.13 \\",
        r"GSE & worst & 94.6\% & 460.0 & 1.99 & 2.01 & 594 & 0.25 \\",
    ]
    assert lines[-2:] == [r"\bottomrule", r"\end{tabular}"]


def test_latex_escapes_special_characters_in_names():
    line = untargeted_table({"gse (imagenet_adv) & #2": GSE}, fmt="latex").splitlines()[4]
    assert line.startswith(r"gse (imagenet\_adv) \& \#2 & 100.0\% &")
    assert line.count(" & ") == 6  # the escaped & does not add a column


def test_bad_format():
    with pytest.raises(ValueError, match="markdown"):
        untargeted_table({"GSE": GSE}, fmt="html")
    with pytest.raises(ValueError, match="latex"):
        targeted_table({"GSE": {"best": GSE, "average": GSE, "worst": GSE}}, fmt="csv")


def test_targeted_missing_case_is_an_error():
    with pytest.raises(KeyError):
        targeted_table({"GSE": {"best": GSE, "average": GSE}})
