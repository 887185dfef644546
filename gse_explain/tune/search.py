"""``tune(config, grid, output)``: the paper's grid search (App. D.1) for an attack's options, run as
successive halving over ordinary result stores.

Every trial is one grid point: ``config`` with the point's options, a store under ``<output>/trials/``
filled by :func:`gse_explain.run`. The tuning set (the first ``num_images`` correctly classified images)
is split into batches; rung r attacks the first ``budgets[r]`` batches of every surviving trial (each
batch is one ``run`` of the trial's store with ``shard=(batch, batches)``, so the rungs extend the same
store and nothing is attacked twice). A trial that misses the ASR constraint on the images seen so far
is dropped at once (with ``min_asr=1`` one failure suffices); of the rest ``ceil(n / eta)`` go on by
objective, plus any trial tied with the last of them (``tie_tolerance``, :mod:`.halving`). The search is
resumable (stored batches are not attacked again) and shardable: with ``config.shard = (i, n)`` (or a
launcher's, ``"auto"``), process i attacks the rung's (trial, batch) units u with u % n == i, then waits
for the others' stores before ranking, so n processes share it.

Layout of ``output``: ``search.json`` (the search, created once; another search there is refused),
``trials/tNNN-.../`` (stores), ``ranking.md`` and ``ranking.csv`` (the ranked table), ``preset.json``
(the best trial's preset file; :mod:`gse_explain.attacks.presets`).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from ..attacks import get_attack
from ..evaluation.config import RunConfig
from ..evaluation.launchers import resolve_device, resolve_shard
from ..evaluation.protocol import select_correct
from ..evaluation.rebuild import load_model_and_data
from ..evaluation.results import load_results
from ..evaluation.run import run, store_config
from ..evaluation.store import ResultStore, config_diff
from ..evaluation.summary import summarize
from ..io import create_once, read_json
from .halving import Score, _check_eta, _check_tolerance, rung_budgets, successive_halving
from .objective import Objective, expand_grid, parse_objective, trial_name
from .report import TuneResult, finish

__all__ = ["SEARCH_FORMAT", "SearchMismatchError", "Trial", "TuneError", "tune"]

SEARCH_FORMAT = "gse_explain.tune_search"
_ROWS = ("best", "average", "worst")


class TuneError(RuntimeError):
    """A search cannot go on (e.g. other shards' results did not arrive); the message says what to do."""


class SearchMismatchError(TuneError):
    """The search folder holds another search (other base run, grid, objective, rungs or constraint)."""


@dataclass(frozen=True)
class Trial:
    """One grid point: its index, store name and path, its options and its run configuration."""

    index: int
    name: str
    path: Path
    options: Mapping[str, object]
    config: RunConfig


@dataclass(frozen=True)
class Plan:
    """A checked search: the trials, the rungs (in batches and images) and what is minimised."""

    base: RunConfig
    grid: Mapping[str, list]
    trials: tuple[Trial, ...]
    objective: Objective
    min_asr: float
    eta: float
    tie_tolerance: float
    row: str
    average: str
    tuning_images: int
    batches: tuple[int, ...]  # batches seen at each rung (increasing, the last = all)

    @property
    def rung_images(self) -> list[int]:
        return [min(b * self.base.batch_size, self.tuning_images) for b in self.batches]

    @property
    def total_batches(self) -> int:
        return self.batches[-1]


def tune(config: RunConfig, grid: Mapping[str, Sequence], output, *, objective="acp+anc", min_asr: float = 1.0,
         eta: float = 3, rungs: Sequence[int] | None = None, min_rung: int | None = None, tie_tolerance: float = 1e-6,
         row: str = "average", average: str = "successful", save_preset=None, overwrite: bool = False,
         progress: bool = False, log=None, poll_seconds: float = 10.0, wait_timeout: float | None = None) -> TuneResult:
    """Grid search for ``config.attack``'s options by successive halving (see the module docstring).

    Args:
        config: the base run: model, data, attack, preset (the grid's options override it and its options),
            mode; ``num_images`` is the tuning set size and ``batch_size`` the granularity of the rungs.
        grid: option name -> list of values (:func:`~.objective.grid_range` for ranges); every combination is a trial.
        output: the search folder (created; resumed when it holds this search).
        objective: what is minimised: ``"acp+anc"`` (the paper's), any ``"w*metric + ..."`` or a weights mapping.
        min_asr: the constraint, ASR ≥ min_asr on the tuning set (fraction; 1.0 = the paper's 100 %).
        eta: each rung keeps ``ceil(n / eta)`` of its n trials.
        rungs: image counts per rung (increasing, multiples of ``batch_size``, the last = the tuning set);
            default: from ``eta``, e.g. 10 images in batches of 2 → 2, 4, 10 images.
        min_rung: default rungs: the first rung has at least this many images (rounded up to whole batches),
            e.g. 4 → 4, 10 images; a first rung of 1–2 images ties or ranks by noise. Not with ``rungs``.
        tie_tolerance: a trial below a rung's cut whose objective is within this fraction of the last kept
            trial's is kept too (default 1e-6: exact ties, up to rounding; e.g. 0.02 also keeps near-ties).
        row, average: targeted runs: the summary row ranked (``"best"``, ``"average"`` or ``"worst"``) and how
            the average row averages (``"successful"`` pairs, the paper's, or ``"all"``).
        save_preset: also write the best preset file here (an existing file must hold the same values).
        overwrite: move a different search found in ``output`` aside (``<output>.replaced-<time>``) instead of refusing it.
        progress: show the runs' progress bars. log: where status lines go (default stderr).
        poll_seconds, wait_timeout: sharded searches: how often and how long (None: forever) to wait for
            the other shards' results of a rung.

    Returns:
        :class:`~.report.TuneResult`: the ranked rows, the best trial and its preset file, timings.

    Raises:
        TypeError / ValueError: a bad argument (before any file is written). SearchMismatchError: ``output``
        holds another search. TuneError: a rung's results from other shards did not arrive in time.
    """
    started = time.perf_counter()
    log = sys.stderr if log is None else log
    plan = _plan(config, grid, output, objective, min_asr, eta, (rungs, min_rung, tie_tolerance), row, average)
    manifest = _open_search(Path(output), plan, overwrite)
    shard = resolve_shard(config.shard)
    print(f"tuning {plan.base.attack} on {plan.tuning_images} images: {len(plan.trials)} trials, rungs of "
          f"{plan.rung_images} images, keep 1/{eta:g} per rung (and ties within {tie_tolerance:g}), objective "
          f"{plan.objective}, ASR ≥ {100 * min_asr:g}%"
          f"{f'; shard {shard[0]}/{shard[1]}' if shard[1] > 1 else ''}", file=log)
    evaluator = _Evaluator(plan, shard, progress, log, poll_seconds, wait_timeout)
    result = successive_halving(len(plan.trials), plan.batches, evaluator, eta, plan.tie_tolerance)
    return finish(plan, result, Path(output), manifest, evaluator.attack_seconds, time.perf_counter() - started,
                  save_preset, log)


def _plan(config, grid, output, objective, min_asr, eta, cut, row, average) -> Plan:
    """Check every argument and build the trials (nothing is written; the model and data are loaded once to
    count the tuning set, so their errors come now)."""
    if not isinstance(config, RunConfig):
        raise TypeError(f"tune() takes a RunConfig as its base run; got {type(config).__name__}")
    if config.num_images is None:
        raise ValueError("the base RunConfig needs num_images (the tuning set size, e.g. 10): tuning on a whole dataset "
                         "is what the search avoids")
    objective = parse_objective(objective)
    if isinstance(min_asr, bool) or not isinstance(min_asr, (int, float)) or not 0 < min_asr <= 1:
        raise ValueError(f"min_asr must be a fraction in (0, 1] (1.0 = ASR 100 %); got {min_asr!r}")
    if average not in ("successful", "all"):
        raise ValueError(f"average must be 'successful' (the paper's) or 'all'; got {average!r}")
    if row not in _ROWS:
        raise ValueError(f"row must be one of {', '.join(_ROWS)} (the targeted summary row ranked); got {row!r}")
    rungs, min_rung, tie_tolerance = cut
    _check_eta(eta)
    _check_tolerance(tie_tolerance)
    spec = get_attack(config.attack)
    points = expand_grid(spec.config_class, grid, spec.name)
    device = resolve_device(config.device, config.shard)
    base = config.replace(device=device)
    folder = Path(output) / "trials"
    trials = []
    for index, point in enumerate(points):
        try:
            trial_config = base.replace(options={**base.options, **point})
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"grid point {point}: {exc}") from None
        name = trial_name(index, point)
        trials.append(Trial(index, name, folder / name, dict(point), trial_config))
    tuning_images = _tuning_set_size(base)
    batches = _rung_batches(rungs, min_rung, tuning_images, base.batch_size, eta)
    grid_lists = {name: _axis(points, name) for name in grid}  # the values as checked (ints for int options)
    return Plan(base, grid_lists, tuple(trials), objective, float(min_asr), float(eta), float(tie_tolerance), row, average,
                tuning_images, tuple(batches))


def _axis(points: list[dict], name: str) -> list:
    values: list = []
    for point in points:
        if point[name] not in values:
            values.append(point[name])
    return values


def _tuning_set_size(config: RunConfig) -> int:
    """How many images the tuning set has (the first ``num_images`` correctly classified ones)."""
    model, dataset = load_model_and_data(config, config.device)
    selection = select_correct(model, dataset, config.num_images, config.batch_size)
    if len(selection.positions) == 0:
        raise ValueError(f"none of the {selection.scanned} scanned images is classified correctly: nothing to tune on")
    return len(selection.positions)


def _rung_batches(rungs, min_rung, tuning_images: int, batch_size: int, eta) -> list[int]:
    """Batches per rung from image counts (checked), or the default geometric rungs (first ≥ ``min_rung`` images)."""
    total = -(-tuning_images // batch_size)
    if rungs is not None and min_rung is not None:
        raise ValueError(f"give rungs ({rungs}) or min_rung ({min_rung}), not both: min_rung only shapes the default rungs")
    if rungs is None:
        if min_rung is not None and (isinstance(min_rung, bool) or not isinstance(min_rung, int) or min_rung < 1):
            raise ValueError(f"min_rung must be an image count ≥ 1; got {min_rung!r}")
        return rung_budgets(total, eta, min(total, -(-(min_rung or 1) // batch_size)))
    rungs = list(rungs)
    if not rungs or any(isinstance(r, bool) or not isinstance(r, int) for r in rungs):
        raise TypeError(f"rungs must be a list of image counts (ints); got {rungs!r}")
    if any(b <= a for a, b in zip(rungs, rungs[1:])) or rungs[0] < 1 or rungs[-1] != tuning_images:
        raise ValueError(f"rungs must increase from ≥ 1 to the tuning set size {tuning_images}; got {rungs}")
    uneven = [r for r in rungs[:-1] if r % batch_size]
    if uneven:
        raise ValueError(f"rungs {uneven} are not multiples of batch_size {batch_size} (rungs add whole batches): choose "
                         f"multiples of {batch_size} or a smaller batch_size")
    return [-(-r // batch_size) for r in rungs]


def _search_document(plan: Plan) -> dict:
    return {"format": SEARCH_FORMAT, "format_version": 1, "base": store_config(plan.base), "grid": dict(plan.grid),
            "objective": dict(plan.objective.weights), "min_asr": plan.min_asr, "eta": plan.eta,
            "tie_tolerance": plan.tie_tolerance, "row": plan.row, "average": plan.average,
            "tuning_images": plan.tuning_images, "rungs": plan.rung_images,
            "trials": [{"name": t.name, "options": dict(t.options)} for t in plan.trials]}


def _search_diff(old: dict, new: dict) -> list[str]:
    lines = [f"base run: {line}" for line in config_diff(old.get("base", {}), new["base"])]
    for key in sorted((set(old) | set(new)) - {"base", "created"}):
        if old.get(key) == new.get(key):
            continue
        if key == "trials":  # follows from the grid; the names say enough
            lines.append(f"trials: stored {[t['name'] for t in old.get(key) or []]}, requested {[t['name'] for t in new[key]]}")
        else:
            lines.append(f"{key}: stored {old.get(key)!r}, requested {new.get(key)!r}")
    return lines


def _open_search(output: Path, plan: Plan, overwrite: bool) -> dict:
    """Create ``search.json`` once, or check that the one there describes this search."""
    import json

    document = json.loads(json.dumps(_search_document(plan)))
    path = output / "search.json"
    if path.exists():
        diff = _search_diff(read_json(path), document)
        if diff and not overwrite:
            raise SearchMismatchError(f"{output} holds another search:\n  " + "\n  ".join(diff) +
                                      "\nchoose another output folder, or pass overwrite=True (--overwrite) to move it aside")
        if diff:
            ResultStore(output).move_aside()  # renames the folder; nothing is deleted
    elif output.exists() and any(output.iterdir()):
        raise TuneError(f"{output} is a non-empty folder without search.json: choose an empty or new output folder")
    output.mkdir(parents=True, exist_ok=True)
    written = create_once(path, {**document, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    if _search_diff(written, document):
        raise SearchMismatchError(f"{path} was just created by another process for another search")
    return written


class _Evaluator:
    """``evaluate(trials, batches)`` for :func:`successive_halving`: attack this shard's missing units of the
    rung, wait for the other shards', and score every trial on its first ``batches`` batches."""

    def __init__(self, plan: Plan, shard, progress, log, poll_seconds, wait_timeout):
        self.plan, self.shard, self.progress, self.log = plan, shard, progress, log
        self.poll_seconds, self.wait_timeout = poll_seconds, wait_timeout
        self.attack_seconds: dict[int, float] = {}
        self._manifests: dict[int, dict] = {}

    def __call__(self, candidates: list[int], budget: int) -> list[Score]:
        rung = self.plan.batches.index(budget)
        units = [(c, b) for c in candidates for b in range(budget)]
        mine = [u for k, u in enumerate(units) if k % self.shard[1] == self.shard[0]]
        todo = [u for u in mine if u[1] not in self._stored(u[0])]
        print(f"rung {rung + 1}/{len(self.plan.batches)}: {len(candidates)} trials × {self.plan.rung_images[rung]} images; "
              f"{len(todo)} batch runs to do here", file=self.log)
        for candidate, batch in todo:
            trial = self.plan.trials[candidate]
            with _launcher_hidden():
                run(trial.config.replace(shard=(batch, self.plan.total_batches)), trial.path, progress=self.progress,
                    log=_Quiet(self.log))
        self._wait_for(units)
        scores = [self._score(c, budget) for c in candidates]
        kept = [c for c, s in zip(candidates, scores) if s.feasible]
        print(f"  {len(candidates) - len(kept)} miss ASR ≥ {100 * self.plan.min_asr:g}%; best so far: "
              f"{_describe(self.plan, candidates, scores)}", file=self.log)
        return scores

    def _stored(self, candidate: int) -> set[int]:
        """The trial's stored batches (empty if its store does not exist yet, or holds another run: then
        ``run`` raises the mismatch with its message)."""
        trial = self.plan.trials[candidate]
        if not (trial.path / "manifest.json").exists():
            return set()
        if candidate not in self._manifests:
            self._manifests[candidate] = store_config(trial.config)
        if config_diff(ResultStore(trial.path).config, self._manifests[candidate]):
            return set()
        return set(ResultStore(trial.path).completed_batches())

    def _wait_for(self, units) -> None:
        waited = 0.0
        while True:
            missing = [(c, b) for c, b in units if b not in self._stored(c)]
            if not missing:
                return
            if self.shard[1] == 1 or (self.wait_timeout is not None and waited >= self.wait_timeout):
                names = ", ".join(f"{self.plan.trials[c].name} batch {b}" for c, b in missing[:4])
                raise TuneError(f"{len(missing)} batch runs of this rung are not stored yet ({names}, ...): they belong to "
                                "other shards; run the other shards (same command, their --shard), then rerun this one")
            print(f"  waiting for {len(missing)} batch runs of other shards ...", file=self.log)
            time.sleep(self.poll_seconds)
            waited += self.poll_seconds

    def _score(self, candidate: int, budget: int) -> Score:
        trial = self.plan.trials[candidate]
        records = load_results(trial.path).records
        records = records[records["batch"] < budget]
        self.attack_seconds[candidate] = float(records["time"].sum())
        return score_records(records, self.plan, bool(trial.config.targeted))


def score_records(records, plan: Plan, targeted: bool) -> Score:
    """A trial's :class:`Score` from its records so far: the objective of its summary row, and whether its
    failures still allow ASR ≥ ``min_asr`` on the whole tuning set (so the drop is exact, not a guess)."""
    summary = summarize(records, targeted, plan.average)
    row = summary[plan.row] if targeted else summary
    per_pair = targeted and plan.row == "average"
    seen = len(records) if per_pair or not targeted else records["example"].nunique()
    failures = int(round((1.0 - row["asr"]) * seen)) if seen else 0
    per_image = len(records) / max(1, records["example"].nunique()) if per_pair else 1.0
    allowed = math.floor((1.0 - plan.min_asr) * plan.tuning_images * per_image + 1e-9)
    metrics = {k: float(row[k]) for k in ("asr", "acp", "anc", "l2", "d20", "time")}
    metrics["images"] = float(records["example"].nunique())
    return Score(objective=plan.objective(row), feasible=failures <= allowed, metrics=metrics)


def _describe(plan: Plan, candidates, scores) -> str:
    feasible = [(s.objective, c) for c, s in zip(candidates, scores) if s.feasible and not math.isnan(s.objective)]
    if not feasible:
        return "none"
    value, best = min(feasible)
    return f"{plan.trials[best].name} ({plan.objective} = {value:.3g})"


_LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN")


@contextlib.contextmanager
def _launcher_hidden():
    """Hide torchrun's / SLURM's shard variables while one trial batch runs: the search took its shard from
    them already, and ``run`` would refuse the batch's own explicit shard (batch, batches) as a contradiction."""
    saved = {name: os.environ.pop(name) for name in _LAUNCHER_VARIABLES if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


class _Quiet:
    """A log for the trial runs: their per-batch plan lines are dropped (the search prints its own), their
    warnings (a batch file set aside, a stale temporary removed) go on to ``log``."""

    def __init__(self, log):
        self.log = log

    def write(self, text: str) -> int:
        if text.startswith(("warning", "removed")):  # print() writes the line and its end separately
            self.log.write(text.rstrip("\n") + "\n")
        return len(text)

    def flush(self) -> None:
        pass
