"""Successive halving over a fixed list of candidates, with a constraint checked at every rung.

Rung r evaluates the surviving candidates with budget ``budgets[r]`` (for the tuner: the number of tuning
batches seen so far). A candidate whose score says it can no longer meet the constraint is dropped at once
(for ASR = 100 % one failure on the first images is enough: it cannot be undone by more images); of the
rest, the best ``ceil(n / eta)`` by objective go on, where n is the number of candidates that entered the
rung, and so does every candidate tied with the last of them: objective within ``tie_tolerance`` (relative)
of the last kept one's. Small rungs tie often (ACP is a mean of whole pixel counts over a few images, ANC
is often 1 on every image), and dropping part of a tie by candidate order would let the grid's order decide;
keeping the tie costs extra evaluations on the next rung instead. After the last rung the feasible
candidates are ranked by objective; ties there keep the candidates' order.

The algorithm only sees scores, so it is tested on toy objectives; :mod:`.search` supplies scores from runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

__all__ = ["HalvingResult", "RungEntry", "Score", "rung_budgets", "successive_halving"]


@dataclass(frozen=True)
class Score:
    """One candidate's result at one rung: ``objective`` (lower is better; NaN ranks last), ``feasible``
    (it can still meet the constraint) and any metrics to report."""

    objective: float
    feasible: bool
    metrics: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RungEntry:
    """What happened to ``candidate`` at rung ``rung`` (budget ``budget``): ``outcome`` is ``"promoted"``,
    ``"promoted: tie"`` (beyond ``ceil(n / eta)``, tied with the last of them), ``"dropped: constraint"``,
    ``"dropped: rank"``, ``"final"`` (finished the last rung, feasible)."""

    candidate: int
    rung: int
    budget: int
    score: Score
    outcome: str


@dataclass(frozen=True)
class HalvingResult:
    """``history``: every evaluation in order; ``ranking``: the candidates that finished, best first."""

    history: tuple[RungEntry, ...]
    ranking: tuple[int, ...]

    @property
    def best(self) -> int | None:
        return self.ranking[0] if self.ranking else None

    def last_entry(self, candidate: int) -> RungEntry | None:
        """The candidate's latest evaluation (None if it was never evaluated)."""
        entries = [e for e in self.history if e.candidate == candidate]
        return entries[-1] if entries else None


def rung_budgets(total: int, eta: float, minimum: int = 1) -> list[int]:
    """Budgets ``minimum`` ≤ b_0 < … < b_last = ``total``, each about ``eta`` times the one before
    (e.g. 5, 3 → [1, 2, 5]; with minimum 2 → [2, 5]; a minimum ≥ total gives [total], one rung)."""
    if isinstance(total, bool) or not isinstance(total, int) or total < 1:
        raise ValueError(f"the total budget must be an int ≥ 1; got {total!r}")
    if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 1:
        raise ValueError(f"the minimum budget (first rung) must be an int ≥ 1; got {minimum!r}")
    _check_eta(eta)
    budgets = [total]
    while budgets[0] > minimum:
        smaller = max(minimum, int(round(budgets[0] / eta)))
        if smaller >= budgets[0]:
            smaller = budgets[0] - 1
        budgets.insert(0, smaller)
    return budgets


def _check_eta(eta) -> None:
    if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not eta > 1:
        raise ValueError(f"eta (1/eta of the candidates go on at each rung) must be a number > 1; got {eta!r}")


def _sort_key(scores: Mapping[int, Score]):
    def key(candidate: int):
        value = scores[candidate].objective
        return (math.isnan(value), value if not math.isnan(value) else 0.0, candidate)

    return key


def _check_tolerance(tie_tolerance) -> None:
    if (isinstance(tie_tolerance, bool) or not isinstance(tie_tolerance, (int, float)) or math.isnan(tie_tolerance)
            or not 0 <= tie_tolerance < 1):
        raise ValueError(f"tie_tolerance (relative objective difference counted as a tie at a rung's cut) must be a "
                         f"number in [0, 1); got {tie_tolerance!r}")


def _cut(ranked: list[int], scores: Mapping[int, Score], count: int, tie_tolerance: float) -> tuple[list[int], list[int]]:
    """The first ``count`` of ``ranked`` (best first), then the ones tied with the last of them: objective
    ≤ last + tie_tolerance·|last| (NaN never ties). Returns ``(kept by rank, kept as ties)``."""
    kept = ranked[:count]
    if not kept or count >= len(ranked):
        return kept, []
    last = scores[kept[-1]].objective
    if math.isnan(last):
        return kept, []
    limit = last + tie_tolerance * abs(last)
    ties = [c for c in ranked[count:] if not math.isnan(scores[c].objective) and scores[c].objective <= limit]
    return kept, ties


def successive_halving(num_candidates: int, budgets: Sequence[int],
                       evaluate: Callable[[list[int], int], Sequence[Score]], eta: float = 3,
                       tie_tolerance: float = 1e-6) -> HalvingResult:
    """Run successive halving.

    Args:
        num_candidates: candidates are 0 … num_candidates - 1.
        budgets: increasing budgets, one per rung (:func:`rung_budgets`).
        evaluate: ``evaluate(candidates, budget)`` returns one :class:`Score` per candidate (same order).
        eta: keep ``ceil(n / eta)`` of the n candidates that entered a rung (more when the cut splits a tie).
        tie_tolerance: relative objective difference, in [0, 1), within which a candidate below the cut counts
            as tied with the last kept one and is kept too (default 1e-6: equal values up to rounding).
    """
    if isinstance(num_candidates, bool) or not isinstance(num_candidates, int) or num_candidates < 1:
        raise ValueError(f"successive halving needs at least one candidate; got {num_candidates!r}")
    budgets = list(budgets)
    if not budgets or any(b <= a for a, b in zip(budgets, budgets[1:])) or budgets[0] < 1:
        raise ValueError(f"budgets must be increasing positive numbers, one per rung; got {budgets}")
    _check_eta(eta)
    _check_tolerance(tie_tolerance)
    history: list[RungEntry] = []
    survivors = list(range(num_candidates))
    for rung, budget in enumerate(budgets):
        scores = list(evaluate(list(survivors), budget))
        if len(scores) != len(survivors):
            raise ValueError(f"evaluate returned {len(scores)} scores for {len(survivors)} candidates")
        by_candidate = dict(zip(survivors, scores))
        ranked = sorted((c for c in survivors if by_candidate[c].feasible), key=_sort_key(by_candidate))
        last = rung == len(budgets) - 1
        by_rank, ties = (ranked, []) if last else _cut(ranked, by_candidate, math.ceil(len(survivors) / eta), tie_tolerance)
        kept = by_rank + ties
        for candidate in survivors:
            score = by_candidate[candidate]
            outcome = ("dropped: constraint" if not score.feasible else "final" if last else
                       "promoted" if candidate in by_rank else "promoted: tie" if candidate in ties else "dropped: rank")
            history.append(RungEntry(candidate, rung, budget, score, outcome))
        survivors = kept
        if not survivors:
            break
    return HalvingResult(tuple(history), tuple(survivors))  # empty if every candidate was dropped
