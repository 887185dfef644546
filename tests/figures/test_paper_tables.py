"""Tables 1-4 from hand-made stores: the numbers are the stores' summaries, in Markdown and booktabs LaTeX."""

from gse_explain.evaluation import load_results
from gse_explain.figures import paper_tables


def _cells(markdown: str, first: str) -> list[str]:
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r} in\n{markdown}")


def test_tables_2_3_4_from_stores(toy_runs):
    tables = paper_tables(toy_runs["untargeted"], toy_runs["targeted"], second_targeted={"gse": toy_runs["targeted"]["gse"]},
                          main_label="toy", second_label="toy2")
    assert set(tables) == {"table2", "table3", "table4"}
    gse = load_results(toy_runs["untargeted"]["gse"]).summary()
    row = _cells(tables["table2"]["markdown"], "GSE")
    assert row[1:5] == ["100.0%", f"{gse['acp']:.1f}", f"{gse['anc']:.2f}", f"{gse['l2']:.2f}"] and gse["acp"] == 4.0
    assert "3 images" in tables["table2"]["markdown"]
    # StrAttack failed one of its 6 targeted pairs: average ASR 5/6, worst case 2 of 3 images
    markdown = tables["table3"]["markdown"]
    rows = [l for l in markdown.splitlines() if l.startswith("| StrAttack")]
    assert [r.split("|")[3].strip() for r in rows] == ["100.0%", "83.3%", "66.7%"]
    assert "3 images × 2 targets" in markdown
    # time per image: gse 0.5 s, others 2 s (hand-made), one column per setting
    header = [c.strip() for c in tables["table4"]["markdown"].splitlines()[2].strip("|").split("|")]
    assert header == ["attack", "U toy (s)", "T toy (s)", "T toy2 (s)"]
    assert _cells(tables["table4"]["markdown"], "GSE")[1:] == ["0.5", "0.5", "0.5"]
    assert _cells(tables["table4"]["markdown"], "PGD0")[1:] == ["2", "2", "N/A"]
    latex = tables["table3"]["latex"]
    assert "\\toprule" in latex and "\\bottomrule" in latex and "\\caption{" in latex and "83.3\\%" in latex
    assert "\\begin{tabular}{llrrrrrr}" in latex


def test_table1_side_by_side(toy_runs):
    table1 = {("gse", False): toy_runs["untargeted"]["gse"], ("pgd0", False): toy_runs["untargeted"]["pgd0"],
              ("gse", True): toy_runs["targeted"]["gse"]}
    tables = paper_tables({}, {}, table1=table1)
    markdown = tables["table1"]["markdown"]
    assert _cells(markdown, "attack")[1] == "U: ASR" and _cells(markdown, "attack")[7] == "T: ASR"
    gse, pgd0 = _cells(markdown, "GSE"), _cells(markdown, "PGD0")
    assert gse[2] == "4.0" and gse[8] == "4.0"  # untargeted and targeted-average ACP
    assert pgd0[2] == "36.0" and pgd0[7:] == ["N/A"] * 6  # no targeted PGD0 run
