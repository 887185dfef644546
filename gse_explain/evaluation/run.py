"""``run(config, output)``: the one driver that selects images, attacks them batch by batch and fills a store.

Every entry point that evaluates goes through here: ``python -m gse_explain.evaluate`` (argument parsing
only), the figures' studies, the benchmarks and the notebooks. What it guarantees:

- The configuration, model and data are checked before the store folder is created, so a mistake leaves
  nothing behind that would block the corrected run.
- A store with the same configuration is resumed: its complete batches are kept, unreadable ones are set
  aside and recomputed; a store with another configuration is refused (:class:`StoreMismatchError`) unless
  ``overwrite=True``, which moves it aside (nothing is deleted).
- ``config.shard = (i, n)`` attacks only batches b with b % n == i, so n processes fill one store together.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..attacks.execution import check_amp
from ..io import array_sha256, file_sha256, state_dict_sha256
from ..models.inference import model_device, model_dtype
from .config import RunConfig, model_label
from .launchers import resolve_device, resolve_shard
from .protocol import Selection, attack_batch, dataset_identity, default_target_offsets, load_images, select_correct
from .rebuild import load_model_and_data
from .results import RunResults, load_results
from .store import ResultStore, StoreError, StoreIntegrityError

__all__ = ["RunError", "RunInterrupted", "resolve_device", "run", "store_config", "verify_stored_batches"]


class RunError(RuntimeError):
    """A run cannot proceed (e.g. no image is classified correctly); the message says why and what to do."""


class RunInterrupted(RunError):
    """The process was asked to stop (SIGTERM, e.g. a cluster's preemption): finished batches are kept."""


@contextlib.contextmanager
def _sigterm_raises():
    """Turn SIGTERM into :class:`RunInterrupted` while a run attacks (main thread, default handler only), so
    the shard's progress file records the interruption before the process ends."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def stop(signum, frame):
        raise RunInterrupted("stopped by SIGTERM; the finished batches are stored: run the same command to resume")

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def store_config(config: RunConfig) -> dict:
    """What the store's manifest records for ``config``: its JSON form plus the weights file's SHA-256.

    The weights path may move between runs (it is not compared on resume); the content may not. A model
    passed as an object is identified by the SHA-256 of its state dict (``model_sha256``), which :func:`run`
    also records for models built by name once they are built.
    """
    out = config.to_json()
    weights = config.weights
    has_file = weights is not None and weights not in ("DEFAULT", "random") and Path(weights).is_file()
    out["weights_sha256"] = file_sha256(weights) if has_file else None
    if not isinstance(config.model, str):  # a model object: its content is all that identifies it
        out["model_sha256"] = state_dict_sha256(config.model)
    return out


def _versions() -> dict:
    import platform

    import torchvision

    from .. import __version__

    return {"gse_explain": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "numpy": np.__version__}


def _open_store(output: Path, manifest_config: dict, overwrite: bool, log) -> ResultStore:
    """Create the store or resume the matching one; unreadable batch files are set aside for recomputation."""
    store = ResultStore.create(output, manifest_config, overwrite=overwrite, versions=_versions())
    for stale in store.remove_stale_temporaries():
        print(f"removed {stale}, left by an interrupted writer", file=log)
    for bad in store.check_batches():
        print(f"warning: batch {bad} in {output} was unreadable; moved aside and will be recomputed", file=log)
    return store


def _is_complete(store: ResultStore) -> bool:
    expected = store.expected_batches()
    return expected is not None and expected == len(store.completed_batches())


def run(config: RunConfig, output: str | Path, *, progress: bool = True, overwrite: bool = False, log=None) -> RunResults:
    """Run (or resume) the evaluation ``config`` into the result store ``output``; return its results.

    Args:
        config: the run (validated on construction).
        output: the store folder; created if missing, resumed if it holds this configuration.
        progress: show progress bars (batches and the attack's own).
        overwrite: if ``output`` holds a store with another configuration, move it aside and start anew.
        log: where status lines go (default: stderr).

    Returns:
        :class:`RunResults` of the store (this shard's batches and any others already there).

    Raises:
        TypeError / ValueError: ``config`` is not a RunConfig, or its model or data cannot be built.
        FileNotFoundError: a data root or weights file is missing.
        StoreMismatchError: ``output`` holds another configuration (and not ``overwrite``).
        StoreError: ``output`` is not a store, or is corrupted. RunError: nothing to attack.
    """
    if not isinstance(config, RunConfig):
        raise TypeError(f"run() takes a RunConfig; got {type(config).__name__} (build one with gse_explain.RunConfig(...))")
    log = sys.stderr if log is None else log
    output = Path(output)
    shard = resolve_shard(config.shard)  # before anything is created: a launcher mismatch is an error
    config = config.replace(shard=shard, device=resolve_device(config.device, config.shard))
    manifest_config = store_config(config)
    if (output / "manifest.json").exists():  # resume, or only report a complete run
        store = _open_store(output, manifest_config, overwrite, log)
        if _is_complete(store):
            print(f"{output} is complete; nothing to attack", file=log)
            return load_results(output)
    model, dataset = load_model_and_data(config, config.device)  # before any store is created
    check_amp(config.amp, model_device(model, torch.device("cpu")), model_dtype(model, torch.float32))
    offsets = _target_offsets(config, dataset)
    manifest_config["dataset_identity"] = dataset_identity(dataset)
    manifest_config["model_sha256"] = state_dict_sha256(model)
    store = _open_store(output, manifest_config, overwrite, log)  # (again): now the data's identity is compared too
    selection = select_correct(model, dataset, config.num_images, config.batch_size)
    store.write_selection(selection.to_json())
    if len(selection.positions) == 0:
        raise RunError(f"none of the {selection.scanned} images is classified correctly by {model_label(config.model)}; nothing to attack")
    verify_stored_batches(store, dataset, selection)
    todo = _pending_batches(store, selection, config)
    _report_plan(config, selection, offsets, todo, log)
    with _sigterm_raises():
        _attack_batches(store, model, dataset, selection, todo, config, offsets, progress)
    return load_results(output)


def _target_offsets(config: RunConfig, dataset) -> tuple[int, ...] | None:
    """The label offsets of a targeted run, checked against the dataset's class count (None untargeted)."""
    if not config.targeted:
        return None
    num_classes = int(getattr(dataset, "num_classes", 1000))
    if config.offsets is None:
        return tuple(default_target_offsets(num_classes))
    outside = [o for o in config.offsets if not 0 < o < num_classes]
    if outside:
        raise ValueError(f"target offsets {outside} are outside 1..{num_classes - 1}: with {num_classes} classes they map a "
                         f"label onto itself or repeat another offset's target; give offsets in 1..{num_classes - 1}")
    return config.offsets


def verify_stored_batches(store: ResultStore, dataset, selection: Selection) -> None:
    """Check every stored batch against the data as it is now: its examples are the ones selected for its slot
    and its clean images are bit-identical to what ``dataset`` yields for them (SHA-256). Batch files written
    before batch files recorded this (store format 1) are skipped.

    Raises:
        StoreIntegrityError: naming the batch file and the fix.
    """
    size = store.batch_size()
    for index in store.completed_batches():
        meta = store.read_batch(index)["meta"]
        if meta is None:
            continue
        positions = selection.positions[index * size : (index + 1) * size]
        path = store.batch_path(index)
        if meta.get("examples") is not None and meta["examples"] != selection.examples[index * size : (index + 1) * size].tolist():
            raise StoreIntegrityError(f"batch file {path} holds other examples than the ones selected for batch {index}: it "
                                      "belongs to another run or slot; delete it and resume the run to recompute it")
        images = load_images(dataset, positions).numpy().astype(np.float32)
        if array_sha256([images]) != meta.get("clean_sha256"):
            raise StoreIntegrityError(
                f"batch file {path} was computed on other images than the data now gives for its examples "
                f"({store.run_config.dataset} at {store.run_config.data_root}): the data changed since the run. Restore "
                "the original data, or start a new store (another output folder, or overwrite to move this one aside)")


def _shard_batches(selection: Selection, config: RunConfig) -> list[int]:
    """The batches this shard attacks (b % n == i), in order."""
    index, count = config.shard
    return [b for b in range(-(-len(selection.positions) // config.batch_size)) if b % count == index]


def _pending_batches(store: ResultStore, selection: Selection, config: RunConfig) -> list[int]:
    """This shard's batches that are not stored yet, in order."""
    stored = set(store.completed_batches())
    return [b for b in _shard_batches(selection, config) if b not in stored]


def _report_plan(config: RunConfig, selection: Selection, offsets, todo: Sequence[int], log) -> None:
    index, count = config.shard
    mine = len(_shard_batches(selection, config))
    options = f", {dict(config.options)}" if config.options else ""
    print(f"{config.attack} ({config.resolved_preset or 'default options'}{options}) on {model_label(config.model)}, {config.dataset}: "
          f"{len(selection.positions)} correctly classified of {selection.scanned} scanned; "
          f"{config.mode}{' offsets ' + str(list(offsets)) if offsets else ''}; shard {index}/{count}: "
          f"{mine - len(todo)} of {mine} batches already stored{_execution_note(config)}", file=log)


def _execution_note(config: RunConfig) -> str:
    """How the model passes run, for the plan line ('' with the defaults)."""
    parts = config.execution.labels()
    return f"; model passes: {', '.join(parts)}" if parts else ""


def _attack_batches(store, model, dataset, selection: Selection, todo, config: RunConfig, offsets, progress: bool) -> None:
    """Attack and store each batch of ``todo``; the shard's progress file is updated after every batch, and on
    an interruption (Ctrl-C, SIGTERM) the seconds spent on the unfinished batch are recorded as lost. With
    ``compile`` its ``compile_seconds`` (part of ``attack_seconds``) is the one-off ``torch.compile`` time."""
    shard = tuple(config.shard)
    info = {"started": _now(), "attack_seconds": 0.0, "batches_written": []}
    previous = store.shard_infos().get(f"shard-{shard[0]}-of-{shard[1]}")
    if previous:
        info = {**previous, "resumed": _now()}
    num_classes = getattr(dataset, "num_classes", None)
    current, start = None, 0.0
    try:
        for batch in tqdm(todo, desc="batches", disable=not progress):
            current, start = batch, time.perf_counter()
            _attack_one_batch(store, model, dataset, selection, batch, config, offsets, progress, num_classes, info)
            info["attack_seconds"] += time.perf_counter() - start
            current = None
            info["batches_written"] = sorted(set(info["batches_written"]) | {batch})
            info["updated"] = _now()
            store.write_shard_info(shard, info)
    except BaseException as exc:  # record the lost work (if a batch was under way), then let it through
        info["lost_seconds"] = info.get("lost_seconds", 0.0) + (time.perf_counter() - start if current is not None else 0.0)
        info["interrupted"] = {"batch": current, "at": _now(), "by": type(exc).__name__}
        store.write_shard_info(shard, info)
        raise


def _attack_one_batch(store, model, dataset, selection: Selection, batch: int, config: RunConfig, offsets, progress: bool,
                      num_classes, info: dict) -> None:
    """Attack one batch and store it; ``info`` (the shard's progress record) gains the calls' compile seconds."""
    size = config.batch_size
    positions = selection.positions[batch * size : (batch + 1) * size]
    images = load_images(dataset, positions)
    labels = torch.as_tensor(selection.labels[batch * size : (batch + 1) * size])
    records, adversarials = attack_batch(
        model, images, labels, attack=config.attack, targeted=config.targeted, offsets=offsets,
        bounds=config.bounds, preset=config.resolved_preset, options=dict(config.options),
        seed=config.seed, batch_index=batch, num_classes=num_classes, progress=progress,
        execution_options=config.execution, info=info,
    )
    store.write_batch(batch, records, images, adversarials, examples=selection.examples[batch * size : (batch + 1) * size])


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
