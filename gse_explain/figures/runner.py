"""Make sure a study's result stores exist: complete stores are reused as they are, missing or incomplete
ones are (re)run with :func:`gse_explain.run`, and ``rerun`` moves existing stores aside (nothing is deleted).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ..evaluation.run import RunError, run, store_config
from ..evaluation.store import ResultStore, StoreError, StoreMismatchError, config_diff
from .studies import RunSpec

__all__ = ["RunStatus", "StudyRunError", "ensure_runs", "run_status"]


class StudyRunError(RuntimeError):
    """A study's run could not be made or read; the message says which and how to fix it."""


@dataclass(frozen=True)
class RunStatus:
    spec: RunSpec
    path: Path
    state: str  # "complete", "incomplete", "missing", "mismatch"
    detail: str = ""


def run_status(spec: RunSpec, path: Path) -> RunStatus:
    """Whether the store for ``spec`` at ``path`` is complete, incomplete, missing or made with another configuration."""
    if not (path / "manifest.json").exists():
        if path.exists() and any(path.iterdir()):
            return RunStatus(spec, path, "mismatch", f"{path} exists but holds no manifest.json (not a result store)")
        return RunStatus(spec, path, "missing")
    try:
        store = ResultStore.open(path)
        diff = config_diff(store.config, store_config(spec.config))
        if diff:
            return RunStatus(spec, path, "mismatch", "; ".join(diff))
        expected = store.expected_batches()
        done = len(store.completed_batches())
    except StoreError as exc:
        return RunStatus(spec, path, "mismatch", str(exc))
    if expected is not None and done == expected:
        return RunStatus(spec, path, "complete")
    return RunStatus(spec, path, "incomplete", f"{done} of {expected if expected is not None else '?'} batches stored")


def ensure_runs(specs: Sequence[RunSpec], runs_dir: Path, *, rerun: bool = False, progress: bool = True, log=None,
                on_complete: Callable[[RunSpec, Path], None] | None = None) -> dict[str, Path]:
    """Run every spec whose store is not complete, in the order given; return ``{spec.key: store path}``.

    Args:
        specs: the runs, in running order.
        runs_dir: folder holding one store per run (``<runs_dir>/<spec.key>``).
        rerun: move every existing store aside (``<name>.replaced-<time>``) and recompute it.
        progress: show the attacks' progress bars.
        log: where progress lines go (default: stderr).
        on_complete: called ``(spec, path)`` for every store that is complete, already (before the first run)
            or just made (right after its run), e.g. to draw a figure as soon as its runs exist.

    Raises:
        StudyRunError: a store holds another configuration (with the differences and the fix), or a run failed.
    """
    log = sys.stderr if log is None else log
    paths = {}
    statuses = [run_status(spec, Path(runs_dir) / spec.key) for spec in specs]
    mismatched = [s for s in statuses if s.state == "mismatch"]
    if mismatched and not rerun:
        lines = "\n".join(f"  {s.path}: {s.detail}" for s in mismatched)
        raise StudyRunError(
            f"{len(mismatched)} store(s) in {runs_dir} were made with other settings than requested:\n{lines}\n"
            "pass --rerun to move them aside and recompute, use another --runs folder, or repeat the options they were made with"
        )
    todo = [s for s in statuses if rerun or s.state != "complete"]
    if statuses and not todo:
        print(f"all {len(statuses)} runs in {runs_dir} are complete: drawing only (pass --rerun to recompute)", file=log)
    for status in statuses:
        if on_complete is not None and status not in todo:
            on_complete(status.spec, status.path)
    for number, status in enumerate(todo, 1):
        spec, path = status.spec, status.path
        if rerun and path.exists():
            moved = ResultStore(path).move_aside()
            print(f"--rerun: moved {path} aside to {moved}", file=log)
        state = "resuming" if status.state == "incomplete" and not rerun else "running"
        print(f"[{number}/{len(todo)}] {state} {spec.describe()}", file=log, flush=True)
        start = time.perf_counter()
        try:
            run(spec.config, path, progress=progress, log=log)
        except (StoreError, RunError, ValueError, TypeError, FileNotFoundError) as exc:
            raise StudyRunError(f"run {spec.key} failed: {exc}") from None
        print(f"[{number}/{len(todo)}] done in {time.perf_counter() - start:.0f} s: {path}", file=log, flush=True)
        if on_complete is not None:
            on_complete(spec, path)
    for status in statuses:
        paths[status.spec.key] = status.path
    return paths
