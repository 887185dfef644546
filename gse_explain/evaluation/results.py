"""Reading a result store: :func:`load_results` gives a :class:`RunResults` (configuration, records, images).

Every read checks what the store's files prove about themselves (:class:`~.store.StoreIntegrityError`
otherwise): each batch file holds its own batch index and the dataset indices of its images, which must be
the examples ``selection.json`` assigns to that slot, and the SHA-256 of its clean images, checked whenever
the images are read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .config import RunConfig
from .store import ResultStore, StoreIntegrityError
from .summary import summarize

__all__ = ["RunResults", "load_results"]


@dataclass
class RunResults:
    """A loaded run: its configuration, the attacked selection and one record row per example.

    ``records`` columns: ``batch``, ``image``, ``example`` (dataset index), ``label``, ``target``, ``offset``,
    ``success``, ``acp``, ``anc``, ``l2`` ([-1, 1] scale), ``d20``, ``time`` (s, amortised), ``model_passes``.
    """

    store: ResultStore
    config: dict
    records: pd.DataFrame
    expected_batches: int | None

    @property
    def complete(self) -> bool:
        if self.expected_batches is None or "batch" not in self.records.columns:
            return False  # nothing stored yet
        return self.records["batch"].nunique() == self.expected_batches

    def images(self, batch: int) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
        """(clean (N_img,C,H,W), adversarial (rows,C,H,W), records) of one batch, images in the box of the run."""
        data = self.store.read_batch(batch, images=True)
        return data["clean"], data["adversarial"], data["records"]

    @property
    def run_config(self) -> RunConfig:
        """The run's :class:`RunConfig` (parsed from the manifest)."""
        return self.store.run_config

    def summary(self, average: str = "successful") -> dict:
        return summarize(self.records, bool(self.config.get("targeted")), average)


def load_results(path: str | os.PathLike) -> RunResults:
    """Load every batch of the store at ``path`` (all shards) into one :class:`RunResults`, checking that each
    batch file is in its own slot and holds the examples selected for it."""
    store = ResultStore.open(path)
    batches = store.completed_batches()
    frames = []
    expected = store.expected_batches()
    selected = np.asarray(store.read_selection()["examples"], dtype=np.int64) if expected is not None else None
    for index in batches:
        batch = store.read_batch(index)
        frame = batch["records"]
        if selected is not None:
            _check_examples(store, index, frame, batch["meta"], selected)
        frame.insert(0, "batch", index)
        frames.append(frame)
    records = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if selected is not None and frames:
        positions = records["batch"].to_numpy() * store.batch_size() + records["image"].to_numpy()
        records.insert(2, "example", selected[positions])
    return RunResults(store, store.config, records, expected)


def _check_examples(store: ResultStore, index: int, records: pd.DataFrame, meta: dict | None, selected: np.ndarray) -> None:
    """The batch's image rows exist in its slot, and (if recorded) its example ids are the slot's selection."""
    size = store.batch_size()
    slot = selected[index * size : (index + 1) * size]
    path = store.batch_path(index)
    rows = records["image"].to_numpy() if "image" in records.columns else np.zeros(0, dtype=np.int64)
    if index * size >= len(selected) or (len(rows) and (rows.min() < 0 or rows.max() >= len(slot))):
        raise StoreIntegrityError(f"batch file {path} has image rows outside batch {index}'s {len(slot)} selected examples "
                                  f"(of {len(selected)} in {store.path / 'selection.json'}); delete it and resume the run")
    examples = None if meta is None else meta.get("examples")
    if examples is not None and list(examples) != slot.tolist():
        raise StoreIntegrityError(f"batch file {path} holds examples {list(examples)[:6]}…, but {store.path / 'selection.json'} "
                                  f"assigns {slot.tolist()[:6]}… to batch {index}: it comes from another run or slot; "
                                  "delete it and resume the run to recompute it")
