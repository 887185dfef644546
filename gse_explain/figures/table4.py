"""What Table 4's times are measured on: each attack's budget, its model passes, and the paper's ordering.

A time per image means little without the work behind it: an attack whose schedule was cut runs faster
because it does less. :func:`budget_caption` states every attack's budget and passes for the caption, and
:func:`budget_table` adds, per attack of the paper's Table 4 (GSE, StrAttack, FWnucl), the measured seconds
per model pass and the time that gives at the paper's own budget (measured s/pass × the paper budget's
passes; for GSE, which stops early, its cap: an upper bound): the same images, the same per-pass cost,
the paper's amount of work per attack.
"""

from __future__ import annotations

from typing import Mapping

from ..evaluation.tables import latex_escape
from ..plotting.style import attack_label
from .plan import pass_budget

__all__ = ["PAPER_TABLE4_ATTACKS", "budget_caption", "budget_note", "budget_table", "footing_note", "with_projection"]

#: The attacks of the paper's Table 4, in its row order.
PAPER_TABLE4_ATTACKS = ("gse", "strattack", "fwnucl")


def _options(run) -> dict:
    return dict(run.config.get("options") or {})


def _attack(run, name: str) -> str:
    return run.config.get("attack", name)


def _measured(run) -> tuple[float, float] | None:
    """(mean model passes per image, mean seconds per image) of a run's stored rows."""
    records = run.records
    if records.empty or "model_passes" not in records:
        return None
    return float(records["model_passes"].mean()), float(records["time"].mean())


def budget_caption(untargeted: Mapping, targeted: Mapping | None = None) -> str:
    """``"Budgets ...: GSE search_steps=5 (≤ 1001 passes/image; used U 312, T 480); ..."`` for the main
    model's ``{attack: RunResults}`` (untargeted and targeted runs of an attack share its budget)."""
    targeted = targeted or {}
    parts = []
    for name in dict.fromkeys([*untargeted, *targeted]):
        runs = [("U", untargeted.get(name)), ("T", targeted.get(name))]
        runs = [(mode, run) for mode, run in runs if run is not None]
        first = runs[0][1]
        attack = _attack(first, name)
        options = ", ".join(f"{k}={v}" for k, v in sorted(_options(first).items())) or "paper preset"
        budget = pass_budget(attack, bool(first.config.get("targeted")), first.config.get("preset"), _options(first))
        passes = budget.describe().replace(" passes/image", "").split(" (")[0] if budget is not None else "?"
        used = [f"{mode} {m[0]:.0f}" for mode, run in runs if (m := _measured(run))]
        parts.append(f"{attack_label(name)} {options} ({passes}; used {', '.join(used) or '-'})")
    return ("Budgets (model passes per image, a pass being one image through the model with or without gradient; "
            "used = mean over the stored examples): " + "; ".join(parts) + ".")


def _paper_passes(attack: str, run) -> tuple[float, str] | None:
    """Model passes per image at the paper's budget and how they are known: exact for the fixed schedules;
    for GSE, whose images leave each λ search step when fooled, the budget's cap (an upper bound: later
    search steps with a larger λ may fail and run all their iterations, so the passes used at a cut budget
    do not scale to the paper's); "measured" when the run used the paper's budget itself."""
    budget = pass_budget(attack, bool(run.config.get("targeted")), run.config.get("preset"), {})
    if budget is None:
        return None
    measured = _measured(run)
    if not budget.fixed and not _options(run) and measured is not None:
        return measured[0], "measured"  # the run itself used the paper's budget: its passes are the answer
    return float(budget.total), "exact" if budget.fixed else "cap"


def budget_table(untargeted: Mapping, fmt: str = "markdown") -> str | None:
    """Per attack of the paper's Table 4 present in ``untargeted`` ({attack: RunResults}): passes used, seconds
    per pass, the paper budget's passes and the projected seconds per image there (None: no such attack)."""
    header = ["attack", "passes/image used", "ms per pass", "passes at paper budget", "projected s/image at paper budget"]
    rows = []
    for name, run in untargeted.items():
        attack = _attack(run, name)
        measured = _measured(run)
        if attack not in PAPER_TABLE4_ATTACKS or measured is None or measured[0] <= 0:
            continue
        passes, seconds = measured
        paper = _paper_passes(attack, run)
        if paper is None:
            continue
        per_pass = seconds / passes
        bound = "≤ " if paper[1] == "cap" else ""
        rows.append([attack_label(name), f"{passes:.0f}", f"{per_pass * 1000:.3g}", f"{bound}{paper[0]:.0f} ({paper[1]})",
                     f"{bound}{per_pass * paper[0]:.3g}"])
    if not rows:
        return None
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    body = [" & ".join(latex_escape(c) for c in header) + r" \\", r"\midrule"]
    body += [" & ".join(latex_escape(c) for c in r) + r" \\" for r in rows]
    return "\\begin{tabular}{l" + "r" * (len(header) - 1) + "}\n\\toprule\n" + "\n".join(body) + "\n\\bottomrule\n\\end{tabular}"


def budget_note(untargeted: Mapping, targeted: Mapping | None = None) -> str:
    """Table 4's caption addition: :func:`budget_caption` and :func:`footing_note`."""
    return budget_caption(untargeted, targeted) + " " + footing_note(untargeted)


def with_projection(body: str, untargeted: Mapping, fmt: str) -> str:
    """Table 4's body ``body`` followed by :func:`budget_table` where the paper's Table 4 attacks ran."""
    extra = budget_table(untargeted, fmt)
    return body if extra is None else body + "\n\n" + extra


def footing_note(untargeted: Mapping) -> str:
    """The sentence under Table 4 saying what its times compare and where the paper's ordering is."""
    return ("Each time is for the work in these budgets (see 'used'): an attack that needs fewer model passes on the "
            "same images is faster here for that reason, and a cut schedule is faster for doing less, so the times "
            "alone do not give the paper's comparison at its budgets. The second table does: each attack's measured "
            "seconds per pass × the passes its paper budget takes (the paper's Tab. 4 order: GSE < FWnucl < StrAttack).")
