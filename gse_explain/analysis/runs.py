"""Reading stored runs for analysis: the run, its model, and its (clean, adversarial) rows batch by batch."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..evaluation.rebuild import load_run_model
from ..evaluation.store import RunResults, load_results

#: Record columns copied into every analysis table (when the run has them).
RECORD_COLUMNS = ["batch", "image", "example", "label", "target", "offset", "success", "l2"]


def open_run(run) -> RunResults:
    """A :class:`RunResults` from itself or from a store path."""
    if isinstance(run, RunResults):
        return run
    if isinstance(run, (str, os.PathLike)):
        return load_results(run)
    raise TypeError(f"run must be a result store path or a RunResults (from load_results); got {type(run).__name__}")


def run_label(run: RunResults) -> str:
    """Default name of a run in tables and plots: its attack name."""
    return str(run.config.get("attack", run.store.path.name))


def named_runs(runs) -> dict[str, RunResults]:
    """``{name: RunResults}`` from a mapping name → run, or a sequence of runs (named by their attack)."""
    if isinstance(runs, Mapping):
        items = [(str(name), open_run(run)) for name, run in runs.items()]
    elif isinstance(runs, (str, os.PathLike, RunResults)):
        items = [(None, open_run(runs))]
    else:
        items = [(None, open_run(run)) for run in runs]
    out: dict[str, RunResults] = {}
    for name, run in items:
        name = run_label(run) if name is None else name
        if name in out:
            raise ValueError(f"two runs are named {name!r}: pass a mapping {{name: store}} to name them apart")
        out[name] = run
    if not out:
        raise ValueError("no runs given")
    return out


def run_model(run: RunResults, model: nn.Module | None, device, cache: dict | None = None, *,
              weights: str | os.PathLike | None = None) -> nn.Module:
    """``model`` if given, else the run's own model rebuilt from its configuration (cached per model/weights).

    The rebuilt model's weights file must have the SHA-256 recorded in the store's manifest
    (:class:`~gse_explain.evaluation.rebuild.WeightsMismatchError` otherwise); ``weights`` points to the file
    when it has moved since the run, and is accepted when its hash matches.
    """
    if model is not None:
        return model
    config = run.run_config  # a StoreError names the manifest if the stored configuration is not valid here
    path = str(weights) if weights is not None else config.weights
    key = (config.model, path, config.normalization, tuple(sorted(config.model_options.items())), str(device))
    if cache is not None and key in cache:
        return cache[key]
    built = load_run_model(config, device, weights=weights, expected_sha256=run.config.get("weights_sha256"))
    if cache is not None:
        cache[key] = built
    return built


@dataclass
class RowBatch:
    """Stored rows of one batch: ``records`` (one row per example) and its clean/adversarial images (rows, C, H, W)."""

    records: pd.DataFrame
    clean: torch.Tensor
    adversarial: torch.Tensor
    clean_images: torch.Tensor  # (N_img, C, H, W): the batch's distinct clean images, indexed by records.image

    @property
    def delta(self) -> torch.Tensor:
        return self.adversarial - self.clean


def iter_row_batches(run: RunResults, *, successful_only: bool) -> Iterator[RowBatch]:
    """Rows with a non-zero perturbation (and, if asked, a successful attack), one stored batch at a time."""
    if run.records.empty:
        raise ValueError(f"the store {run.store.path} holds no examples yet")
    for batch in sorted(run.records["batch"].unique()):
        clean, adversarial, batch_records = run.images(int(batch))
        records = run.records[run.records["batch"] == batch].reset_index(drop=True)
        if len(records) != len(batch_records) or not np.array_equal(records["image"], batch_records["image"]):
            raise ValueError(f"batch {batch} of {run.store.path} changed since it was loaded; load the store again")
        clean_images = torch.from_numpy(clean)
        clean_rows = clean_images[column_tensor(records, "image")]
        adversarial = torch.from_numpy(adversarial)
        keep = (adversarial - clean_rows).flatten(1).ne(0).any(dim=1).numpy()  # ‖δ‖₂ > 0
        if successful_only:
            keep &= records["success"].to_numpy(dtype=bool)
        if not keep.any():
            continue
        index = torch.from_numpy(np.flatnonzero(keep))
        yield RowBatch(records[keep].reset_index(drop=True), clean_rows[index], adversarial[index], clean_images)


def column_tensor(records: pd.DataFrame, column: str) -> torch.Tensor:
    """An integer record column as an int64 tensor (a copy: pandas' arrays may be read-only)."""
    return torch.tensor(records[column].to_numpy(dtype=np.int64))


def base_columns(records: pd.DataFrame, name: str) -> pd.DataFrame:
    """The ``attack`` column plus the record columns every analysis table carries."""
    out = records[[c for c in RECORD_COLUMNS if c in records.columns]].copy()
    out.insert(0, "attack", name)
    return out


def long_format(base: pd.DataFrame, key: str, keys, value: str, matrix: np.ndarray) -> pd.DataFrame:
    """Tidy rows: each row of ``base`` repeated once per entry of ``keys`` (example-major), with ``matrix`` (rows, len(keys))."""
    matrix = np.asarray(matrix, dtype=np.float64)
    out = base.loc[base.index.repeat(len(keys))].reset_index(drop=True)
    out[key] = np.tile(np.asarray(keys), len(base))
    out[value] = matrix.reshape(-1)
    return out
