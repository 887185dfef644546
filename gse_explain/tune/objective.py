"""What a search minimises and over what: the objective (a weighted sum of summary metrics), the grid of
option values (lists or ranges) and the trials it expands to.

Objective strings read like the paper's "ACP + ANC": terms ``[WEIGHT*]METRIC`` joined by ``+`` or ``-``,
e.g. ``"acp+anc"``, ``"acp + 10*anc"``, ``"d20 + 0.5*l2"``. Metrics are the summary's means over successful
examples (:mod:`gse_explain.evaluation.summary`): ``acp``, ``anc``, ``l2`` ([-1, 1] scale), ``d20`` and
``time`` (seconds per image). Lower is better.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import numbers
import re
import typing
from typing import Mapping, Sequence

__all__ = ["METRICS", "Objective", "expand_grid", "grid_range", "parse_grid_values", "parse_objective", "trial_name"]

METRICS = ("acp", "anc", "l2", "d20", "time")
_TERM = re.compile(r"\s*([+-]?)\s*(?:(\d+(?:\.\d*)?(?:e[+-]?\d+)?|\.\d+(?:e[+-]?\d+)?)\s*\*\s*)?([a-z0-9_]+)\s*", re.I)


@dataclasses.dataclass(frozen=True)
class Objective:
    """``sum(weights[m] * summary[m])``, minimised; ``weights`` maps metric names (:data:`METRICS`) to floats."""

    weights: Mapping[str, float]

    def __post_init__(self) -> None:
        if not isinstance(self.weights, Mapping) or not self.weights:
            raise ValueError(f"an objective needs at least one metric weight, e.g. {{'acp': 1, 'anc': 1}}; got {self.weights!r}")
        for name, weight in self.weights.items():
            if name not in METRICS:
                raise ValueError(f"objective metric {name!r} is unknown; choose from {', '.join(METRICS)}")
            if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not math.isfinite(weight):
                raise TypeError(f"objective weight of {name!r} must be a finite number; got {weight!r}")
        object.__setattr__(self, "weights", {k: float(v) for k, v in self.weights.items()})

    def __call__(self, summary: Mapping[str, float]) -> float:
        """The objective of one summary row (NaN when a metric is NaN, e.g. no successful example)."""
        return float(sum(w * float(summary[m]) for m, w in self.weights.items()))

    def __str__(self) -> str:
        parts = []
        for i, (name, weight) in enumerate(self.weights.items()):
            sign = "-" if weight < 0 else ("+" if i else "")
            size = abs(weight)
            parts.append(f"{sign} {name}" if size == 1 else f"{sign} {size:g}*{name}")
        return " ".join(parts).strip()


def parse_objective(objective: str | Mapping[str, float] | Objective) -> Objective:
    """An :class:`Objective` from a string (``"acp+anc"``), a weights mapping or an Objective."""
    if isinstance(objective, Objective):
        return objective
    if isinstance(objective, Mapping):
        return Objective(dict(objective))
    if not isinstance(objective, str) or not objective.strip():
        raise TypeError(f"objective must be a string like 'acp+anc' or a mapping of metric weights; got {objective!r}")
    weights: dict[str, float] = {}
    position, text = 0, objective.strip()
    while position < len(text):
        match = _TERM.match(text, position)
        if not match or match.end() == position or (position and not match.group(1)):
            raise ValueError(f"cannot read objective {objective!r} at {text[position:]!r}: write terms [WEIGHT*]METRIC joined "
                             f"by + or -, e.g. 'acp+anc' or 'acp + 10*anc' (metrics: {', '.join(METRICS)})")
        sign = -1.0 if match.group(1) == "-" else 1.0
        name = match.group(3).lower()
        weights[name] = weights.get(name, 0.0) + sign * float(match.group(2) or 1.0)
        position = match.end()
    return Objective(weights)


def grid_range(start: float, stop: float, num: int, *, log: bool = False) -> list[float]:
    """``num`` values from ``start`` to ``stop`` inclusive, evenly spaced (or geometrically with ``log``)."""
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        raise ValueError(f"a range needs a number of values ≥ 1; got {num!r}")
    if log and (start <= 0 or stop <= 0):
        raise ValueError(f"a log range needs positive ends; got {start}, {stop}")
    if num == 1:
        return [float(start)]
    if log:
        ratio = (stop / start) ** (1.0 / (num - 1))
        return [float(start * ratio**i) for i in range(num)]
    return [float(start + (stop - start) * i / (num - 1)) for i in range(num)]


def parse_grid_values(text: str) -> list:
    """Values of one ``--grid NAME=VALUES`` argument: ``"0.1,0.25,0.5"``, ``"lin(10,50,3)"`` or ``"log(0.01,1,3)"``."""
    import ast

    text = text.strip()
    call = re.fullmatch(r"(lin|log)\(([^)]*)\)", text)
    if call:
        try:
            start, stop, num = (ast.literal_eval(part.strip()) for part in call.group(2).split(","))
        except (ValueError, SyntaxError, TypeError):
            raise ValueError(f"a range is {call.group(1)}(START,STOP,NUM), e.g. {call.group(1)}(0.1,1,3); got {text!r}") from None
        return grid_range(start, stop, num, log=call.group(1) == "log")
    values = []
    for part in text.split(","):
        if not part.strip():
            raise ValueError(f"empty value in {text!r}: separate values by single commas, e.g. 0.1,0.25,0.5")
        try:
            values.append(ast.literal_eval(part.strip()))
        except (ValueError, SyntaxError):
            values.append(part.strip())
    return values


def _coerce(value, hint):
    """Range values for an int option become ints (a float grid for ``k_hat`` would fail the type check)."""
    if hint is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if hint is int and isinstance(value, float):
        return int(round(value))
    return value


def expand_grid(config_class, grid: Mapping[str, Sequence], attack: str) -> list[dict]:
    """Every combination of ``grid``'s values (the first option varies slowest), as option dicts.

    Raises:
        ValueError / TypeError: an option that is not a field of ``config_class``, an empty or repeated value list.
    """
    if not isinstance(grid, Mapping) or not grid:
        raise ValueError("the grid is empty: give at least one option and its values, e.g. {'q': [0.1, 0.25, 0.5]}")
    hints = typing.get_type_hints(config_class)
    names = [f.name for f in dataclasses.fields(config_class)]
    axes = []
    for name, values in grid.items():
        if name not in names:
            raise ValueError(f"grid option {name!r} is not an option of {attack}; options: {', '.join(names)}")
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not len(values):
            raise TypeError(f"grid option {name!r} needs a non-empty list of values; got {values!r}")
        values = [_coerce(v, hints.get(name)) for v in values]
        repeated = sorted({repr(v) for v in values if values.count(v) > 1})
        if repeated:
            raise ValueError(f"grid option {name!r} repeats the value(s) {', '.join(repeated)}: every trial would run twice")
        axes.append([(name, v) for v in values])
    return [dict(point) for point in itertools.product(*axes)]


def trial_name(index: int, options: Mapping) -> str:
    """A store folder name for a trial: ``t003-q0.25-k_hat30`` (index first, so names stay unique and ordered)."""
    parts = [f"{k}{v:g}" if isinstance(v, float) else f"{k}{v}" for k, v in options.items()]
    slug = re.sub(r"[^A-Za-z0-9_.+-]", "_", "-".join(parts))[:80]
    return f"t{index:03d}-{slug}"
