"""Reading stored runs for analysis: the run, its model, and its (clean, adversarial) rows batch by batch.

Incomplete stores. A store whose run has not written every batch yet (``RunResults.complete`` is False)
is an error for every function that reads its rows (:func:`iter_row_batches` and the store-level tables
built on it), naming the store and the missing batches, because statistics over part of a run look like
statistics over all of it. ``allow_incomplete=True`` analyses the stored batches; the tables then say
what they cover:

- ``table.attrs["coverage"]``: ``{run name: coverage dict}`` (:func:`run_coverage`: ``store``,
  ``complete``, ``batches``, ``of_batches``, ``missing_batches``, ``images``, ``of_images``), on every
  store-level table, complete or not (pandas drops ``attrs`` in CSV files and most operations);
- the columns ``stored_images`` and ``selected_images`` (the run's clean images in stored batches, and
  the images its selection holds), in every table with at least one incomplete run, so that a CSV
  written from part of a run says so. Tables of complete stores have no such columns.

A store without any stored example is always an error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..evaluation.rebuild import check_model, load_run_model
from ..evaluation.store import RunResults, load_results
from ._inputs import nonfinite_rows, rows_text

#: Record columns copied into every analysis table (when the run has them).
RECORD_COLUMNS = ["batch", "image", "example", "label", "target", "offset", "success", "l2"]
#: Columns that tables of incomplete runs carry (see the module docstring).
COVERAGE_COLUMNS = ("stored_images", "selected_images")


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
    when it has moved since the run, and is accepted when its hash matches. A ``model`` passed in must be the
    one the run attacked: its state-dict SHA-256 is checked against the manifest's ``model_sha256`` where the
    store records one (:class:`~gse_explain.evaluation.rebuild.ModelMismatchError`). A run made with a model
    object needs ``model`` (:class:`~gse_explain.evaluation.rebuild.ModelRequiredError` otherwise).
    """
    if model is not None:
        check_model(model, run.config.get("model_sha256"), f"the run in {run.store.path}")
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


def run_coverage(run: RunResults) -> dict:
    """What part of its run a store holds: ``{"store", "complete", "batches", "of_batches", "missing_batches",
    "images", "of_images"}`` (``of_*`` None when the store has no selection yet)."""
    records = run.records
    present = sorted(int(b) for b in records["batch"].unique()) if "batch" in records.columns else []
    images = int(records[["batch", "image"]].drop_duplicates().shape[0]) if present and "image" in records.columns else 0
    expected = run.expected_batches
    selected = len(run.store.read_selection()["positions"]) if expected is not None else None
    missing = sorted(set(range(expected)) - set(present)) if expected is not None else None
    return {"store": str(run.store.path), "complete": bool(run.complete), "batches": len(present), "of_batches": expected,
            "missing_batches": missing, "images": images, "of_images": selected}


def check_coverage(run: RunResults, allow_incomplete: bool = False) -> dict:
    """:func:`run_coverage` of a store with examples; ValueError for an empty store, and for an incomplete
    one unless ``allow_incomplete``."""
    if run.records.empty:
        raise ValueError(f"the store {run.store.path} holds no examples yet: there is nothing to analyse")
    coverage = run_coverage(run)
    if coverage["complete"] or allow_incomplete:
        return coverage
    if coverage["of_batches"] is None:
        what = "has stored batches but no selection.json, so how many batches the run has is unknown"
    else:
        missing = coverage["missing_batches"]
        shown = ", ".join(map(str, missing[:10])) + (", …" if len(missing) > 10 else "")
        what = (f"is incomplete: {len(missing)} of its {coverage['of_batches']} batches are missing (batch {shown}); "
                f"it holds {coverage['images']} of {coverage['of_images']} selected images")
    raise ValueError(
        f"the store {run.store.path} {what}. Finish the run first (running it again resumes it), or pass "
        "allow_incomplete=True to analyse the stored batches only (the tables then record their coverage)"
    )


def with_coverage(table: pd.DataFrame, coverage: Mapping[str, dict]) -> pd.DataFrame:
    """``table`` (with an ``attack`` column) with ``attrs["coverage"]`` and, when a run is incomplete, the
    :data:`COVERAGE_COLUMNS` per attack (see the module docstring)."""
    if any(not c["complete"] for c in coverage.values()):
        for column, key in zip(COVERAGE_COLUMNS, ("images", "of_images")):
            table[column] = table["attack"].map({name: c[key] for name, c in coverage.items()})
    table.attrs["coverage"] = {name: dict(c) for name, c in coverage.items()}
    return table


def carry_coverage(table: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """``summary`` (one row per attack and x, aggregated from ``table``) with ``table``'s coverage columns
    (per attack) and ``attrs["coverage"]``."""
    if all(column in table.columns for column in COVERAGE_COLUMNS):
        per_attack = table.groupby("attack", sort=False)[list(COVERAGE_COLUMNS)].first()
        for column in COVERAGE_COLUMNS:
            summary[column] = summary["attack"].map(per_attack[column])
    if "coverage" in table.attrs:
        summary.attrs["coverage"] = {name: dict(c) for name, c in table.attrs["coverage"].items()}
    return summary


def weights_for(weights, name: str, model) -> str | os.PathLike | None:
    """The weights path for run ``name``: ``weights`` itself, or its entry when it is a mapping ``{name: path}``."""
    if weights is None:
        return None
    if model is not None:
        raise ValueError("pass either model= (used as it is) or weights= (to rebuild the run's model), not both")
    if isinstance(weights, Mapping):
        return weights.get(name)
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(f"weights must be a path or a mapping {{run name: path}}; got {type(weights).__name__}")
    return weights


def iter_row_batches(run: RunResults, *, successful_only: bool, allow_incomplete: bool = False) -> Iterator[RowBatch]:
    """Rows with a non-zero perturbation (and, if asked, a successful attack), one stored batch at a time.

    The store must hold examples, and all of its run's batches unless ``allow_incomplete`` (see the module
    docstring); this is checked at the call, before the first batch is read.
    """
    check_coverage(run, allow_incomplete)
    return _row_batches(run, successful_only)


def _row_batches(run: RunResults, successful_only: bool) -> Iterator[RowBatch]:
    for batch in sorted(run.records["batch"].unique()):
        clean, adversarial, batch_records = run.images(int(batch))
        records = run.records[run.records["batch"] == batch].reset_index(drop=True)
        if len(records) != len(batch_records) or not np.array_equal(records["image"], batch_records["image"]):
            raise ValueError(f"batch {batch} of {run.store.path} changed since it was loaded; load the store again")
        clean_images = torch.from_numpy(clean)
        clean_rows = clean_images[column_tensor(records, "image")]
        adversarial = torch.from_numpy(adversarial)
        _check_stored_finite(run, int(batch), clean_images, adversarial, records)
        keep = (adversarial - clean_rows).flatten(1).ne(0).any(dim=1).numpy()  # ‖δ‖₂ > 0
        if successful_only:
            keep &= records["success"].to_numpy(dtype=bool)
        if not keep.any():
            continue
        index = torch.from_numpy(np.flatnonzero(keep))
        yield RowBatch(records[keep].reset_index(drop=True), clean_rows[index], adversarial[index], clean_images)


def _check_stored_finite(run, batch: int, clean: torch.Tensor, adversarial: torch.Tensor, records) -> None:
    for what, images, examples in (("clean", clean, None), ("adversarial", adversarial, records)):
        rows = nonfinite_rows(images)
        if rows:
            where = f"rows {rows_text(rows)}"
            if examples is not None and "example" in examples.columns:
                where += f" (examples {examples['example'].to_numpy()[rows][:10].tolist()})"
            raise ValueError(f"batch {batch} of the store {run.store.path} holds NaN or inf {what} images at {where}; "
                             "the attack that wrote them failed: rerun those batches (delete the batch file and resume)")


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
