"""``reproduce(study, runs_dir, out_dir)``: the Python API under ``python -m gse_explain.figures``.

Prints the plan and its time estimate (:mod:`.plan`), runs whatever the study's stores lack
(:func:`.runner.ensure_runs`) — GSE's main runs first, and Figure 1 is drawn the moment they exist — then
draws the other figures and tables (:func:`.render.render_study`) and writes ``manifest.json`` beside them: the command, every run with its
store, budget, image counts and attack seconds (read from the store), the machine and the time spent.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import torch

from .. import __version__
from ..attacks.execution import ExecutionOptions
from ..evaluation.store import ResultStore
from ..io import atomic_write_bytes, check_writable_folder
from .plan import print_plan
from .render import render_study, wanted_figures
from .runner import ensure_runs, run_status
from .studies import Study

__all__ = ["StudyOutputs", "reproduce"]


@dataclass(frozen=True)
class StudyOutputs:
    """What :func:`reproduce` made: ``stores`` ({run key: store folder}), ``files`` written, the ``manifest``."""

    stores: dict
    files: list
    manifest: dict


def _attack_seconds(path: Path) -> float:
    """Seconds spent attacking for the store at ``path``, summed over the processes (shards) that wrote it."""
    infos = ResultStore(path).shard_infos()
    return round(sum(float(info.get("attack_seconds", 0.0)) for info in infos.values()), 1)


def _run_entry(spec, path: Path) -> dict:
    return {"key": spec.key, "store": str(path), "group": spec.group, "attack": spec.attack, "mode": spec.mode,
            "model": spec.model, "num_images": spec.num_images, "offsets": list(spec.offsets) if spec.offsets else None,
            "options": spec.options, "batch_size": spec.batch_size, "attack_seconds": _attack_seconds(path)}


#: Figures drawn as soon as their runs exist (before the other attacks run): {figure: (group, attack)}.
EARLY_FIGURES = {"figure1": ("main", "gse")}


def running_order(study: Study):
    """The study's runs in the order they run: the early figures' runs (GSE's) first, the rest as declared."""
    early = [r for r in study.runs if any((r.group, r.attack) == need for need in EARLY_FIGURES.values())]
    return early + [r for r in study.runs if r not in early]


class _EarlyFigures:
    """Draws each early figure the moment the last of its runs is complete (``on_complete`` of ensure_runs)."""

    def __init__(self, study: Study, names: list[str], out_dir: Path, device, progress: bool, log, start: float):
        self.study, self.out_dir, self.device, self.progress, self.log, self.start = study, out_dir, device, progress, log, start
        self.waiting = {name: [r for r in study.runs if (r.group, r.attack) == EARLY_FIGURES[name]]
                        for name in names if name in EARLY_FIGURES}
        self.waiting = {name: runs for name, runs in self.waiting.items() if runs}
        self.paths: dict[str, Path] = {}
        self.drawn: list[str] = []
        self.written: list[Path] = []

    def __call__(self, spec, path: Path) -> None:
        self.paths[spec.key] = path
        for name, runs in list(self.waiting.items()):
            if all(r.key in self.paths for r in runs):
                del self.waiting[name]
                part = replace(self.study, runs=tuple(runs))
                files = render_study(part, self.paths, self.out_dir, only=[name], device=self.device,
                                     progress=self.progress, log=self.log)
                self.drawn.append(name)
                self.written.extend(files)
                png = [f for f in files if f.suffix == ".png"]
                print(f"{name} written after {time.perf_counter() - self.start:.0f} s: {png[0] if png else files}"
                      " (the other attacks run now)", file=self.log, flush=True)


def reproduce(study: Study, runs_dir: str | Path, out_dir: str | Path, *, rerun: bool = False, only: Sequence[str] | None = None,
              device: str = "cpu", progress: bool = True, log=None, command: Sequence[str] | None = None,
              plan: bool = True, execution: ExecutionOptions | None = None) -> StudyOutputs:
    """Make ``study``'s stores complete in ``runs_dir`` and draw its outputs into ``out_dir``.

    Prints the plan first (every run's budget in model passes and an estimate of its time, see
    :mod:`.plan`), runs GSE's main runs first and draws Figure 1 as soon as they exist, then the other runs,
    then every other figure and table.

    Args:
        study: from :func:`~gse_explain.figures.studies.build_study`.
        runs_dir: one result store per run (``<runs_dir>/<run key>``); complete stores are reused.
        out_dir: figures (PNG + PDF), tables (``.md`` + ``.tex``), CSVs and ``manifest.json``.
        rerun: move existing stores aside (``<store>.replaced-<time>``) and recompute them.
        only: draw only these figures (registry names); device: for saliency maps and CAMs.
        command: recorded in the manifest (default: this process's command line).
        plan: print the plan with its time estimate (calibrates one pass of each model still to run).
        execution: how the runs' model passes execute (``compile``, ``fold_batchnorm``, ``channels_last``: they
            change results only by rounding, so stores made without them are reused and resumed; ``amp`` is
            refused here because it changes the stored numbers: set it per run in a RunConfig instead).

    Raises:
        NotADirectoryError / PermissionError: ``runs_dir`` or ``out_dir`` is a file or not writable (checked
            before anything runs).
        StudyRunError: a store holds other settings or a run failed (the message names the fix).
        StoreError, ValueError, FileNotFoundError, ImportError: a store or its model cannot be read.
    """
    log = sys.stderr if log is None else log
    runs_dir = check_writable_folder(runs_dir, "the runs folder (--runs)")
    out_dir = check_writable_folder(out_dir, "the figures folder (--out)")
    names = wanted_figures(study, only, log)  # a typo in only= fails before anything runs
    start = time.perf_counter()
    order = _with_execution(running_order(study), execution)
    estimates = _print_plan(order, runs_dir, rerun, log) if plan else None
    early = _EarlyFigures(study, names, out_dir, device, progress, log, start)
    if estimates and early.waiting:
        first = len([r for r in order if r.key in {s.key for runs in early.waiting.values() for s in runs}])
        known = [e for e in estimates[:first] if e is not None]
        print(f"Figure 1 comes after the first {first} run(s), in about {sum(known):.0f} s", file=log, flush=True)
    stores = ensure_runs(order, runs_dir, rerun=rerun, progress=progress, log=log, on_complete=early)
    stores = {spec.key: stores[spec.key] for spec in study.runs}
    attack_seconds = time.perf_counter() - start
    rest = [name for name in names if name not in early.drawn]
    written = list(early.written)
    if rest:
        written += render_study(study, stores, out_dir, only=rest, device=device, progress=progress, log=log)
    manifest = _manifest(study, stores, written, out_dir, command, attack_seconds, time.perf_counter() - start - attack_seconds,
                         estimates)
    atomic_write_bytes(out_dir / "manifest.json", json.dumps(manifest, indent=2).encode(), overwrite=True)
    print(f"wrote {len(written)} files to {out_dir} (attacks {attack_seconds:.0f} s, drawing "
          f"{manifest['seconds']['drawing']:.0f} s)", file=log)
    return StudyOutputs(stores, list(written), manifest)


def _with_execution(order, execution: ExecutionOptions | None):
    if execution is None:
        return order
    if execution.amp is not None:
        raise ValueError("amp changes the stored numbers, so a study does not take it; run with amp through a RunConfig")
    return [spec.with_config(compile=execution.compile, fold_batchnorm=execution.fold_batchnorm,
                             channels_last=execution.channels_last) for spec in order]


def _print_plan(order, runs_dir: Path, rerun: bool, log) -> list | None:
    states = [run_status(spec, runs_dir / spec.key).state for spec in order]
    if "mismatch" in states and not rerun:
        return None  # ensure_runs refuses these stores, naming them and the fix, before anything runs
    return print_plan(order, [rerun or state != "complete" for state in states], log)


def _manifest(study, stores, written, out_dir: Path, command, attack_seconds: float, drawing_seconds: float, estimates) -> dict:
    return {
        "study": study.name,
        "description": study.description,
        "notes": list(study.notes),
        "command": list(command) if command is not None else ["python", "-m", "gse_explain.figures", *sys.argv[1:]],
        "runs": [_run_entry(spec, stores[spec.key]) for spec in study.runs],
        "outputs": sorted(str(Path(p).relative_to(out_dir)) for p in written),
        # this invocation's time (attacks includes Figure 1, drawn between the runs); each run's own attack
        # time (from its store, whenever it ran) is in "runs"
        "seconds": {"attacks": round(attack_seconds, 1), "drawing": round(drawing_seconds, 1),
                    "estimated_attacks": None if estimates is None else round(sum(e for e in estimates if e), 1)},
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "torch_threads": torch.get_num_threads(),
                    "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "versions": {"gse_explain": __version__, "torch": torch.__version__, "python": platform.python_version()},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
