"""``reproduce(study, runs_dir, out_dir)``: the Python API under ``python -m gse_explain.figures``.

Runs whatever the study's stores lack (:func:`.runner.ensure_runs`), draws its figures and tables
(:func:`.render.render_study`) and writes ``manifest.json`` beside them: the command, every run with its
store, budget, image counts and attack seconds (read from the store), the machine and the time spent.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from .. import __version__
from ..evaluation.store import ResultStore
from ..io import atomic_write_bytes, check_writable_folder
from .render import render_study
from .runner import ensure_runs
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


def reproduce(study: Study, runs_dir: str | Path, out_dir: str | Path, *, rerun: bool = False, only: Sequence[str] | None = None,
              device: str = "cpu", progress: bool = True, log=None, command: Sequence[str] | None = None) -> StudyOutputs:
    """Make ``study``'s stores complete in ``runs_dir`` and draw its outputs into ``out_dir``.

    Args:
        study: from :func:`~gse_explain.figures.studies.build_study`.
        runs_dir: one result store per run (``<runs_dir>/<run key>``); complete stores are reused.
        out_dir: figures (PNG + PDF), tables (``.md`` + ``.tex``), CSVs and ``manifest.json``.
        rerun: move existing stores aside (``<store>.replaced-<time>``) and recompute them.
        only: draw only these figures (registry names); device: for saliency maps and CAMs.
        command: recorded in the manifest (default: this process's command line).

    Raises:
        NotADirectoryError / PermissionError: ``runs_dir`` or ``out_dir`` is a file or not writable (checked
            before anything runs).
        StudyRunError: a store holds other settings or a run failed (the message names the fix).
        StoreError, ValueError, FileNotFoundError, ImportError: a store or its model cannot be read.
    """
    log = sys.stderr if log is None else log
    runs_dir = check_writable_folder(runs_dir, "the runs folder (--runs)")
    out_dir = check_writable_folder(out_dir, "the figures folder (--out)")
    start = time.perf_counter()
    stores = ensure_runs(study.runs, runs_dir, rerun=rerun, progress=progress, log=log)
    attack_seconds = time.perf_counter() - start
    written = render_study(study, stores, out_dir, only=only, device=device, progress=progress, log=log)
    manifest = {
        "study": study.name,
        "description": study.description,
        "notes": list(study.notes),
        "command": list(command) if command is not None else ["python", "-m", "gse_explain.figures", *sys.argv[1:]],
        "runs": [_run_entry(spec, stores[spec.key]) for spec in study.runs],
        "outputs": sorted(str(Path(p).relative_to(out_dir)) for p in written),
        # this invocation's time; each run's own attack time (from its store, whenever it ran) is in "runs"
        "seconds": {"attacks": round(attack_seconds, 1), "drawing": round(time.perf_counter() - start - attack_seconds, 1)},
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "torch_threads": torch.get_num_threads(),
                    "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "versions": {"gse_explain": __version__, "torch": torch.__version__, "python": platform.python_version()},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    atomic_write_bytes(out_dir / "manifest.json", json.dumps(manifest, indent=2).encode(), overwrite=True)
    print(f"wrote {len(written)} files to {out_dir} (attacks {attack_seconds:.0f} s, drawing "
          f"{manifest['seconds']['drawing']:.0f} s)", file=log)
    return StudyOutputs(stores, list(written), manifest)
