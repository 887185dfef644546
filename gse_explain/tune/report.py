"""The outcome of a search: the ranked table (``ranking.md``, ``ranking.csv``) and the best trial's preset
file (``preset.json``), all derived from the trial stores, so they are rewritten identically on resume."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..attacks import get_attack
from ..attacks.presets import PresetFile, is_preset_path, load_preset, save_preset
from ..evaluation.config import model_label
from ..io import atomic_write_bytes

if TYPE_CHECKING:  # only for annotations: search imports this module
    from .halving import HalvingResult
    from .search import Plan

__all__ = ["TuneResult", "finish", "preset_values", "ranking_rows"]

_METRIC_COLUMNS = ("asr", "acp", "anc", "l2", "d20")


@dataclass(frozen=True)
class TuneResult:
    """What :func:`~gse_explain.tune.tune` returns.

    Attributes:
        output: the search folder. rows: one dict per trial, ranked (finished trials by objective first,
            then the dropped ones, latest rung first). best: the best row (None if no trial met the constraint).
        preset: the best trial's preset file (None without a best). table: ``ranking.md``'s Markdown.
        seconds: wall time of this call. attack_seconds: attack time of every trial's evaluated images
            (from the stores, so a resumed search counts the earlier work too).
        evaluated_images: images attacked over all trials; full_grid_images: what the whole grid would cost.
    """

    output: Path
    rows: list
    best: dict | None
    preset: PresetFile | None
    table: str
    seconds: float
    attack_seconds: float
    evaluated_images: int
    full_grid_images: int


def preset_values(plan: "Plan", options) -> dict:
    """The option values a trial ran with beyond the attack's defaults: the base run's preset, its options, the
    trial's grid point (later ones override)."""
    base = plan.base
    name = base.resolved_preset
    if name is None:
        values = {}
    elif is_preset_path(name):
        values = load_preset(name).values_for(base.targeted)
    else:
        values = dict(get_attack(base.attack).presets[name][bool(base.targeted)])
    return {**values, **dict(base.options), **dict(options)}


def _status(entry) -> str:
    if entry.outcome == "final":
        return "ranked"
    why = f"ASR {100 * entry.score.metrics.get('asr', math.nan):.0f}%" if entry.outcome == "dropped: constraint" else "rank"
    return f"dropped at rung {entry.rung + 1} ({why})"


def ranking_rows(plan: "Plan", result: "HalvingResult", attack_seconds: dict) -> list[dict]:
    """One row per trial: rank, name, grid values, status, the rung it reached, images, metrics, objective, seconds."""
    rank = {candidate: i + 1 for i, candidate in enumerate(result.ranking)}
    rows = []
    for trial in plan.trials:
        entry = result.last_entry(trial.index)
        metrics = entry.score.metrics if entry else {}
        images = int(metrics.get("images", 0))
        seconds = attack_seconds.get(trial.index, math.nan)
        rows.append({"rank": rank.get(trial.index), "trial": trial.name, **{k: trial.options[k] for k in plan.grid},
                     "status": _status(entry) if entry else "not run", "rung": entry.rung + 1 if entry else 0,
                     "images": images, **{k: metrics.get(k, math.nan) for k in _METRIC_COLUMNS},
                     "objective": entry.score.objective if entry else math.nan, "attack_s": seconds,
                     "s_per_image": seconds / images if images else math.nan})

    def order(row):
        objective = row["objective"] if not math.isnan(row["objective"]) else math.inf
        return (row["rank"] is None, row["rank"] or 0, -row["rung"], objective, row["trial"])

    return sorted(rows, key=order)


_FORMATS = {"acp": ".2f", "objective": ".2f", "anc": ".2f", "l2": ".2f", "d20": ".1f", "attack_s": ".1f", "s_per_image": ".2f"}


def _cell(key: str, value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if key == "asr":
        return f"{100 * value:.0f}%"
    if key in _FORMATS:
        return format(value, _FORMATS[key])
    return f"{value:g}" if isinstance(value, float) else str(value)


def ranking_markdown(plan: "Plan", rows: list[dict], seconds: float, attack_seconds: float, evaluated: int) -> str:
    """The ranked table with a header naming the search (objective, constraint, rungs, cost)."""
    full = len(plan.trials) * plan.tuning_images
    lines = [
        f"Search: {plan.base.attack} on {model_label(plan.base.model)}, {plan.base.dataset}, {plan.base.mode}; tuning set "
        f"{plan.tuning_images} images; {len(plan.trials)} trials; rungs {plan.rung_images} images (keep 1/{plan.eta:g} "
        f"and ties within {plan.tie_tolerance:g}); "
        f"objective {plan.objective} (lower is better) subject to ASR ≥ {100 * plan.min_asr:g}%.",
        f"Cost: {evaluated} image attacks of the full grid's {full} ({evaluated / full:.0%}), {attack_seconds:.1f} s of "
        f"attack time; this call {seconds:.1f} s wall.", "",
    ]
    keys = list(rows[0]) if rows else []
    names = {"asr": "ASR", "acp": "ACP", "anc": "ANC", "l2": "ℓ2", "d20": "d2,0", "attack_s": "attack s", "s_per_image": "s/image"}
    lines.append("| " + " | ".join(names.get(k, k) for k in keys) + " |")
    lines.append("|" + "---|" * len(keys))
    lines += ["| " + " | ".join(_cell(k, row[k]) for k in keys) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _write_preset(plan: "Plan", best: dict, output: Path, manifest: dict, save_to, log) -> PresetFile:
    trial = next(t for t in plan.trials if t.name == best["trial"])
    base = plan.base
    mode = "targeted" if base.targeted else "untargeted"
    provenance = {
        "model": model_label(base.model), "weights": base.weights, "weights_sha256": manifest["base"].get("weights_sha256"),
        "data": {"dataset": base.dataset, "data_root": base.data_root, "image_size": base.image_size,
                 "tuning_images": plan.tuning_images, "examples": _examples(trial.path)},
        "mode": mode, "objective": str(plan.objective), "constraint": f"ASR >= {100 * plan.min_asr:g}%",
        "grid": dict(plan.grid), "rungs": plan.rung_images, "eta": plan.eta,
        "tie_tolerance": plan.tie_tolerance, "trial": trial.name,
        "score": {k: best[k] for k in (*_METRIC_COLUMNS, "objective")}, "search": str(output.resolve()),
        "date": manifest.get("created"),
    }
    values = {mode: preset_values(plan, trial.options)}
    preset = save_preset(output / "preset.json", base.attack, values, provenance, overwrite=True)
    get_attack(base.attack).make_config(preset.path, base.targeted)  # the file is usable as written
    if save_to is not None:
        save_to = Path(save_to)
        if save_to.exists():
            existing = load_preset(save_to)
            if existing.attack != base.attack or dict(existing.values) != dict(preset.values):
                raise FileExistsError(f"{save_to} exists with other values than the best trial's: choose another path or "
                                      "delete it")
        else:
            save_preset(save_to, base.attack, values, provenance)
        print(f"preset written to {save_to}", file=log)
    return preset


def _examples(store: Path) -> list[int]:
    from ..evaluation.store import ResultStore

    return [int(e) for e in ResultStore(store).read_selection()["examples"]]


def finish(plan: "Plan", result: "HalvingResult", output: Path, manifest: dict, attack_seconds: dict, seconds: float,
           save_to, log) -> TuneResult:
    """Write ``ranking.md``, ``ranking.csv`` and (with a best trial) ``preset.json``; return the :class:`TuneResult`."""
    rows = ranking_rows(plan, result, attack_seconds)
    evaluated = sum(r["images"] for r in rows)
    total_attack = float(sum(v for v in attack_seconds.values() if not math.isnan(v)))
    table = ranking_markdown(plan, rows, seconds, total_attack, evaluated)
    atomic_write_bytes(output / "ranking.md", table.encode(), overwrite=True)
    buffer = io.StringIO()
    pd.DataFrame(rows).to_csv(buffer, index=False)
    atomic_write_bytes(output / "ranking.csv", buffer.getvalue().encode(), overwrite=True)
    best = rows[0] if rows and rows[0]["rank"] == 1 else None
    preset = _write_preset(plan, best, output, manifest, save_to, log) if best else None
    if best:
        print(f"best: {best['trial']} ({plan.objective} = {best['objective']:.3g}); preset {preset.path}", file=log)
    else:
        print(f"no trial reached ASR ≥ {100 * plan.min_asr:g}% on the tuning set: widen the grid (or the budget)", file=log)
    return TuneResult(output, rows, best, preset, table, seconds, total_attack, evaluated, len(plan.trials) * plan.tuning_images)
