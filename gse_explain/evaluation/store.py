"""The result store: a folder holding one evaluation run, written batch by batch, read by one loader.

Layout::

    <store>/manifest.json            format tag, run configuration, library versions, creation time
    <store>/selection.json           the attacked examples (dataset positions, indices, labels)
    <store>/batches/batch-000012.npz one file per batch: per-example records, clean and adversarial images
    <store>/shards/shard-0-of-2.json progress and timings of each process that wrote batches

Every file is written atomically (temporary file + rename), so an interrupted run leaves only complete
batches; a resumed run skips them. Shards (independent processes, ``--shard i/n``) write disjoint batch
files into the same folder. The manifest is created once (first writer wins, others check it matches),
and a store is never overwritten silently: a different configuration raises :class:`StoreMismatchError`
unless ``overwrite=True``, which first renames the old folder aside.

Adversarial images are stored sparsely as the entries that differ from the clean image, so they are
reconstructed bit-exactly at a fraction of the size for sparse attacks.
"""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..io import array_sha256, atomic_write_bytes, create_once as _create_once, json_bytes as _json_bytes, read_json, remove_stale_temporaries
from .config import COMPARED_WHEN_RECORDED, NOT_COMPARED, SCHEMA1_DEFAULTS, RunConfig

__all__ = [
    "FORMAT", "FORMAT_VERSION", "ResultStore", "RunResults", "StoreError", "StoreIntegrityError", "StoreMismatchError", "config_diff",
    "load_results",
]

FORMAT = "gse_explain.result_store"
#: Version 2 records a :class:`~gse_explain.evaluation.config.RunConfig` (its ``to_json`` form, schema 2);
#: version-1 stores (argparse-keyed configurations) are read unchanged.
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
_BATCH_KEYS = ("clean", "adv_index", "adv_values", "records_json")


class StoreError(RuntimeError):
    """A store is missing, corrupted or not a gse_explain result store."""


class StoreMismatchError(StoreError):
    """A store exists with a different configuration than the run asks for."""


class StoreIntegrityError(StoreError):
    """A store's files do not prove what they should hold: a batch file in another batch's slot, batch images
    that are not the recorded ones, or examples that are not the selected ones."""


def _read_json(path: Path) -> Any:
    try:
        return read_json(path)
    except (OSError, json.JSONDecodeError) as exc:
        raise StoreError(f"cannot read {path}: {exc}; the store is corrupted (restore the file or start a new store)") from exc


def batch_meta(index: int, clean: np.ndarray, examples=None) -> dict:
    """What a batch file records to prove its content: batch index, example ids and the clean images' SHA-256."""
    return {"batch": int(index), "examples": None if examples is None else [int(e) for e in examples],
            "clean_sha256": array_sha256([np.asarray(clean, dtype=np.float32)])}


def _records_from_json(text: str) -> pd.DataFrame:
    """The records DataFrame of a batch file (``orient="split"`` JSON, with ``dtypes`` when written by this module)."""
    payload = json.loads(text)
    frame = pd.DataFrame(payload["data"], columns=payload["columns"])
    return frame.astype(payload["dtypes"]) if "dtypes" in payload else frame


def config_diff(old: dict, new: dict) -> list[str]:
    """Lines naming each configuration entry that differs (entries in :data:`NOT_COMPARED` are ignored)."""
    keys = (set(old) | set(new)) - NOT_COMPARED
    keys -= {k for k in COMPARED_WHEN_RECORDED if k not in old or k not in new}

    def value(config: dict, key: str):
        return config.get(key, SCHEMA1_DEFAULTS.get(key))  # keys added since schema 1 take their old meaning

    return [f"{k}: stored {value(old, k)!r}, requested {value(new, k)!r}{_WHY.get(k, '')}" for k in sorted(keys)
            if value(old, k) != value(new, k)]


#: What a difference in a recorded fact means, for the mismatch message.
_WHY = {
    "weights_sha256": " (the weights file's content is not the one the store was made with: pass the original file)",
    "model_sha256": " (the model's parameters are not the ones the store was made with)",
    "dataset_identity": " (the data at data_root is not the dataset the store was made from)",
}


def _is_store_skeleton(entry: Path) -> bool:
    """Whether ``entry`` is what a concurrently starting writer creates before its manifest appears."""
    return (entry.name in ("batches", "shards") and entry.is_dir()) or (
        entry.name.startswith(".manifest.json.") and entry.name.endswith(".tmp")
    )


class ResultStore:
    """Read/write access to one store folder (see the module docstring for the layout)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._manifest: dict | None = None

    # -- creation and opening ---------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike, config: dict, *, overwrite: bool = False, versions: dict | None = None) -> "ResultStore":
        """Create a store for ``config`` or resume the matching one at ``path``.

        Raises :class:`StoreMismatchError` if a store with another configuration is there (unless
        ``overwrite``: the old folder is then renamed to ``<name>.replaced-<timestamp>``, nothing deleted),
        and :class:`StoreError` if ``path`` is a non-empty folder that is not a store.
        """
        store = cls(path)
        config = json.loads(json.dumps(config))  # normalise tuples etc. to their JSON form
        if store.path.exists():
            if not store.path.is_dir():
                raise StoreError(f"output path {store.path} exists and is not a folder; choose another --output")
            manifest_path = store.path / "manifest.json"
            if manifest_path.exists():
                old = store.manifest["config"]
                diff = config_diff(old, config)
                if not diff:
                    return store
                if not overwrite:
                    raise StoreMismatchError(
                        f"a result store with a different configuration exists at {store.path}:\n  "
                        + "\n  ".join(diff)
                        + "\nchoose another --output folder, or pass --overwrite to move the old store aside"
                    )
                store.move_aside()
            elif any(not _is_store_skeleton(entry) for entry in store.path.iterdir()):
                raise StoreError(
                    f"{store.path} is a non-empty folder without manifest.json, so it is not a gse_explain result "
                    "store; choose an empty or new --output folder"
                )
        try:
            store.path.mkdir(parents=True, exist_ok=True)
            (store.path / "batches").mkdir(exist_ok=True)
            (store.path / "shards").mkdir(exist_ok=True)
        except OSError as exc:  # read-only folder, a file where a folder should be, a full disk
            raise StoreError(f"cannot create the result store at {store.path}: {exc.strerror or exc}; choose a writable "
                             "--output folder") from None
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "config": config,
            "versions": versions or {},
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        try:
            written = _create_once(store.path / "manifest.json", manifest)
        except OSError as exc:
            raise StoreError(f"cannot write {store.path / 'manifest.json'}: {exc.strerror or exc}; choose a writable "
                             "--output folder") from None
        diff = config_diff(written["config"], config)
        if diff:  # another process created it concurrently with another configuration
            raise StoreMismatchError(f"store {store.path} was just created with another configuration:\n  " + "\n  ".join(diff))
        store._manifest = None
        return store

    @classmethod
    def open(cls, path: str | os.PathLike) -> "ResultStore":
        """Open an existing store for reading; raises :class:`StoreError` naming what is wrong."""
        store = cls(path)
        if not store.path.is_dir():
            raise StoreError(f"no result store at {store.path}: the folder does not exist (run `python -m gse_explain.evaluate --output {store.path}` first)")
        store.manifest  # validates
        return store

    def remove_stale_temporaries(self, older_than: float = 3600.0) -> list[Path]:
        """Delete temporary files that killed writers left in the store (older than ``older_than`` seconds;
        younger ones may belong to a shard that is writing now); return what was removed."""
        removed: list[Path] = []
        for folder in (self.path, self.path / "batches", self.path / "shards"):
            if folder.is_dir():
                removed += remove_stale_temporaries(folder, older_than)
        return removed

    def move_aside(self) -> Path:
        """Rename the store folder to ``<name>.replaced-<timestamp>`` (nothing is deleted); return the new path."""
        target = self.path.with_name(f"{self.path.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
        suffix = 1
        while target.exists():  # several replacements within one second
            target = target.with_name(f"{self.path.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}-{suffix}")
            suffix += 1
        os.replace(self.path, target)
        self._manifest = None
        return target

    @property
    def manifest(self) -> dict:
        if self._manifest is None:
            path = self.path / "manifest.json"
            if not path.exists():
                raise StoreError(f"{self.path} is not a gse_explain result store: manifest.json is missing")
            manifest = _read_json(path)
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                raise StoreError(f"{path} is not a gse_explain result store manifest (format tag {FORMAT!r} missing)")
            if manifest.get("format_version") not in READABLE_VERSIONS:
                raise StoreError(f"{path} has store format version {manifest.get('format_version')}; this library reads "
                                 f"versions {', '.join(map(str, READABLE_VERSIONS))} (upgrade gse_explain to read it)")
            self._manifest = manifest
        return self._manifest

    @property
    def config(self) -> dict:
        """The stored configuration as JSON (``RunConfig.to_json`` form, or a version-1 store's dict)."""
        return self.manifest["config"]

    @property
    def run_config(self) -> RunConfig:
        """The stored configuration as a :class:`RunConfig` (version-1 stores included). The attack's name and
        options are not re-checked: reading a store never needs the attack that made it."""
        try:
            return RunConfig.from_json(self.config, check_attack=False)
        except (TypeError, ValueError) as exc:
            raise StoreError(f"the configuration in {self.path / 'manifest.json'} is not valid here: {exc}") from None

    # -- selection, batches, shards ---------------------------------------------------------------
    def write_selection(self, selection: dict) -> dict:
        """Record the attacked examples once; later writers must agree (else the data or model changed)."""
        stored = _create_once(self.path / "selection.json", selection)
        if stored != json.loads(json.dumps(selection)):
            raise StoreMismatchError(
                f"the examples selected now differ from those recorded in {self.path / 'selection.json'}: "
                "the data or the model changed since the store was created; use a new --output folder"
            )
        return stored

    def read_selection(self) -> dict:
        path = self.path / "selection.json"
        if not path.exists():
            raise StoreError(f"{path} is missing: the run never got past selecting its examples")
        return _read_json(path)

    def batch_size(self) -> int:
        """Images per batch: batch b holds the selected examples b·size … (b+1)·size − 1."""
        size = self.config.get("batch_size")
        if not isinstance(size, int) or size < 1:
            raise StoreError(
                f"{self.path / 'manifest.json'} has no valid 'batch_size' in its configuration, so its batches "
                "cannot be matched to the selected examples; create stores with a 'batch_size' entry"
            )
        return size

    def expected_batches(self) -> int | None:
        """How many batch files a complete run has, or None before the examples are selected."""
        if not (self.path / "selection.json").exists():
            return None
        return -(-len(self.read_selection()["positions"]) // self.batch_size())

    def batch_path(self, index: int) -> Path:
        return self.path / "batches" / f"batch-{index:06d}.npz"

    def completed_batches(self) -> list[int]:
        """Indices of the batch files present (complete by construction of the atomic writes)."""
        return sorted(int(p.stem.split("-")[1]) for p in (self.path / "batches").glob("batch-*.npz"))

    def check_batches(self) -> list[int]:
        """Move unreadable batch files aside (``.corrupt``) so a resumed run recomputes them; return their indices.

        A readable file that does not prove its content (:class:`StoreIntegrityError`, e.g. in another batch's
        slot) is not moved: the error is raised, since recomputing would hide the problem.
        """
        bad = []
        for index in self.completed_batches():
            try:
                self.read_batch(index)
            except StoreIntegrityError:
                raise
            except StoreError:
                path = self.batch_path(index)
                os.replace(path, path.with_name(path.name + ".corrupt"))
                bad.append(index)
        return bad

    def write_batch(self, index: int, records: dict[str, np.ndarray], clean: torch.Tensor, adversarial: torch.Tensor,
                    *, examples=None) -> None:
        """Store one batch: ``records`` (columns with one row per example, including ``image``, the row of
        ``clean`` each example comes from), ``clean`` (N_img, C, H, W) and ``adversarial`` (rows, C, H, W).

        The file also records what proves its content (``meta_json``): its batch index, the dataset indices of
        its images (``examples``, (N_img,) ints; None if unknown) and the SHA-256 of ``clean`` as stored.
        """
        clean_np = clean.detach().cpu().numpy().astype(np.float32)
        adv_np = adversarial.detach().cpu().numpy().astype(np.float32)
        image_rows = np.asarray(records["image"], dtype=np.int64)
        # Compare bit patterns, so that e.g. -0.0 over 0.0 is stored and the reconstruction is bit-exact.
        changed = adv_np.view(np.uint32) != clean_np[image_rows].view(np.uint32)
        buffer = io.BytesIO()
        frame = pd.DataFrame(records)
        # Python's json writes floats with round-trip precision (pandas' to_json keeps only 10 decimals) and
        # the dtypes are kept (pandas' read_json turns an all-integral float column into int64).
        records_json = json.dumps({**frame.to_dict(orient="split"), "dtypes": {c: str(t) for c, t in frame.dtypes.items()}})
        np.savez_compressed(
            buffer,
            clean=clean_np,
            adv_index=np.flatnonzero(changed).astype(np.int64),
            adv_values=adv_np[changed],
            adv_shape=np.asarray(adv_np.shape, dtype=np.int64),
            records_json=np.frombuffer(records_json.encode(), dtype=np.uint8),
            meta_json=np.frombuffer(json.dumps(batch_meta(index, clean_np, examples)).encode(), dtype=np.uint8),
        )
        atomic_write_bytes(self.batch_path(index), buffer.getvalue(), overwrite=True)

    def read_batch(self, index: int, images: bool = False) -> dict:
        """``{"records": DataFrame, "clean": array, "adversarial": array}`` (images only when asked)."""
        path = self.batch_path(index)
        try:
            data = np.load(path)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise StoreError(f"batch file {path} is not an .npz archive: it is corrupted or foreign; delete it and resume the run to recompute it")
            with data:
                missing = [k for k in _BATCH_KEYS if k not in data.files]
                if missing:
                    raise StoreError(f"batch file {path} lacks {missing}: it is corrupted or foreign; delete it and resume the run to recompute it")
                records = _records_from_json(bytes(data["records_json"]).decode())
                meta = json.loads(bytes(data["meta_json"]).decode()) if "meta_json" in data.files else None
                out: dict = {"records": records, "meta": meta}
                if meta is not None and meta.get("batch") != index:
                    raise StoreIntegrityError(
                        f"batch file {path} holds batch {meta.get('batch')}, not batch {index}: it was copied or moved into "
                        f"another batch's slot; move it back to {self.batch_path(meta.get('batch', 0)).name} or delete it "
                        "and resume the run to recompute it")
                if images:
                    clean = data["clean"]
                    if meta is not None and array_sha256([clean]) != meta.get("clean_sha256"):
                        raise StoreIntegrityError(
                            f"the clean images in batch file {path} do not have the SHA-256 the file records: the file "
                            "was altered after it was written; delete it and resume the run to recompute it")
                    adversarial = clean[records["image"].to_numpy()].copy()
                    adversarial.reshape(-1)[data["adv_index"]] = data["adv_values"]
                    out.update(clean=clean, adversarial=adversarial)
                return out
        except StoreError:
            raise
        except (OSError, ValueError, zipfile.BadZipFile, zlib.error, KeyError, EOFError, TypeError, NotImplementedError) as exc:
            raise StoreError(f"cannot read batch file {path}: {exc}; delete it and resume the run to recompute it") from exc

    def write_shard_info(self, shard: tuple[int, int], info: dict) -> None:
        atomic_write_bytes(self.path / "shards" / f"shard-{shard[0]}-of-{shard[1]}.json", _json_bytes(info), overwrite=True)

    def shard_infos(self) -> dict[str, dict]:
        return {p.stem: _read_json(p) for p in sorted((self.path / "shards").glob("shard-*.json"))}


def __getattr__(name: str):
    # RunResults and load_results live in .results (they read stores; this module writes them).
    if name in ("RunResults", "load_results"):
        from . import results

        return getattr(results, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
