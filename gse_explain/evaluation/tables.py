"""Render summaries as the paper's tables: Table 2 (untargeted) and Table 3 (targeted) layouts.

Both Markdown (printed by the CLI, pasted into READMEs) and LaTeX (booktabs) come from the same rows.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

__all__ = ["untargeted_table", "targeted_table"]

_HEADER = ["ASR", "ACP", "ANC", "ℓ2", "d2,0", "time/img (s)"]
_LATEX_HEADER = [r"ASR", r"ACP", r"ANC", r"$\ell_2$", r"$d_{2,0}$", r"time (s)"]


def _cells(row: Mapping[str, float]) -> list[str]:
    def fmt(value: float, spec: str) -> str:
        return "N/A" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)

    return [
        "N/A" if math.isnan(row["asr"]) else f"{100 * row['asr']:.1f}%",
        fmt(row["acp"], ".1f"),
        fmt(row["anc"], ".2f"),
        fmt(row["l2"], ".2f"),
        fmt(row["d20"], ".0f"),
        fmt(row["time"], ".3g"),
    ]


def _render(header: list[str], rows: list[list[str]], fmt: str) -> str:
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    if fmt == "latex":
        escape = lambda s: "".join("\\" + ch if ch in "%&_#" else ch for ch in s)  # noqa: E731  (e.g. "imagenet_adv")
        lines = [r"\begin{tabular}{" + "l" * (len(header) - 6) + "r" * 6 + "}", r"\toprule", " & ".join(header) + r" \\", r"\midrule"]
        lines += [" & ".join(escape(c) for c in r) + r" \\" for r in rows]
        lines += [r"\bottomrule", r"\end{tabular}"]
        return "\n".join(lines)
    raise ValueError(f"fmt must be 'markdown' or 'latex'; got {fmt!r}")


def untargeted_table(summaries: Mapping[str, Mapping[str, float]] | Sequence[tuple[str, Mapping[str, float]]], fmt: str = "markdown") -> str:
    """Table 2 layout: one row per attack with ASR, ACP, ANC, ℓ2 ([-1, 1] scale), d2,0 and time."""
    items = list(summaries.items()) if isinstance(summaries, Mapping) else list(summaries)
    header = ["attack", *(_LATEX_HEADER if fmt == "latex" else _HEADER)]
    return _render(header, [[name, *_cells(row)] for name, row in items], fmt)


def targeted_table(summaries: Mapping[str, Mapping[str, Mapping[str, float]]] | Sequence[tuple[str, Mapping]], fmt: str = "markdown") -> str:
    """Table 3 layout: per attack, the best / average / worst case rows."""
    items = list(summaries.items()) if isinstance(summaries, Mapping) else list(summaries)
    header = ["attack", "case", *(_LATEX_HEADER if fmt == "latex" else _HEADER)]
    rows = [[name, case, *_cells(cases[case])] for name, cases in items for case in ("best", "average", "worst")]
    return _render(header, rows, fmt)
