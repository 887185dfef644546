"""On-disk cache of a store's explanation maps, so that redrawing a table or figure does not recompute them.

One file per (store, method, settings, rows), ``<cache dir>/<method>-<digest>.npz``, holding the maps of the
counted rows in store order, the rows' (batch, image, class) and the full key as JSON. The key is

    {store: SHA-256 of the store's manifest, selection and batch files, model: SHA-256 of its state dict,
     method, settings, version, and what selects the rows and classes (e.g. targets="stored")}

so any change of the store (a rerun, a resumed batch), the model, the method's settings or implementation
version makes the lookup miss and the maps are recomputed and the file replaced (written atomically). The
default cache folder is ``<store>/explanations/`` (moved aside together with the store on ``--rerun``);
``cache=False`` turns caching off, ``cache=PATH`` puts the files in another folder. A store folder that cannot
be written means no caching (a warning says so). Callables passed as ``saliency=`` are never cached.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from ...io import atomic_write_bytes, file_sha256, state_dict_sha256
from .registry import Explanation

__all__ = ["MapCache", "store_content_sha256"]

_FORMAT = 1
_STORE_HASHES: dict = {}


def store_content_sha256(path) -> str:
    """SHA-256 over a store's manifest, selection and batch files (memoised per file sizes and mtimes)."""
    path = Path(path)
    files = [path / "manifest.json", path / "selection.json", *sorted((path / "batches").glob("batch-*.npz"))]
    files = [f for f in files if f.exists()]
    stamp = tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    key = (str(path.resolve()), stamp)
    if key not in _STORE_HASHES:
        digest = hashlib.sha256()
        for f in files:
            digest.update(f"{f.name}:{file_sha256(f)}\n".encode())
        _STORE_HASHES[key] = digest.hexdigest()
    return _STORE_HASHES[key]


def _model_sha256(model) -> str:
    if isinstance(model, torch.nn.Module):
        return state_dict_sha256(model)
    return f"function:{getattr(model, '__module__', '')}.{getattr(model, '__qualname__', type(model).__name__)}"


class MapCache:
    """The cache file of one store and method; :meth:`load` → maps or None, :meth:`save` writes them."""

    def __init__(self, path: Path, key: dict):
        self.path = path
        self.key = key
        self.key_json = json.dumps(key, sort_keys=True)

    @classmethod
    def for_run(cls, run, model, explanation: Explanation, cache, rows: dict) -> "MapCache | None":
        """The cache of ``run``'s maps for ``explanation`` (None when caching is off or impossible).

        ``cache``: True (``<store>/explanations``), False/None (off) or a folder; ``rows``: what selects the rows
        and their classes (JSON-serialisable, part of the key).
        """
        if cache is False or cache is None or not explanation.cacheable:
            return None
        if cache is True:
            folder = Path(run.store.path) / "explanations"
        elif isinstance(cache, (str, os.PathLike)):
            folder = Path(cache)
        else:
            raise TypeError(f"cache must be True, False or a folder path; got {type(cache).__name__}")
        key = {"format": _FORMAT, "store": store_content_sha256(run.store.path), "model": _model_sha256(model),
               **explanation.key(), "rows": rows}
        settings = hashlib.sha256(json.dumps({k: v for k, v in key.items() if k not in ("store", "model")},
                                             sort_keys=True).encode()).hexdigest()[:16]
        # The store's identity is in the name too when the folder is shared by several stores.
        owner = "" if cache is True else hashlib.sha256(str(Path(run.store.path).resolve()).encode()).hexdigest()[:8] + "-"
        safe = "".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in explanation.name)
        return cls(folder / f"{owner}{safe}-{settings}.npz", key)

    def load(self):
        """``(maps (N, C, H, W) float32 tensor, identity (N, 3) int64 array)`` when the file holds this key, else None."""
        try:
            with np.load(self.path) as data:
                if bytes(data["key_json"]).decode() != self.key_json:
                    return None
                return torch.from_numpy(data["maps"].copy()), data["identity"].copy()
        except (OSError, KeyError, ValueError, EOFError):
            return None  # absent, unreadable or foreign: recompute

    def save(self, maps: torch.Tensor, identity: np.ndarray) -> Path | None:
        """Write the maps atomically (replacing an older file); None, with a warning, when that is impossible."""
        buffer = io.BytesIO()
        np.savez(buffer, maps=maps.detach().cpu().numpy(), identity=np.asarray(identity, dtype=np.int64),
                 key_json=np.frombuffer(self.key_json.encode(), dtype=np.uint8))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return atomic_write_bytes(self.path, buffer.getvalue(), overwrite=True)
        except OSError as exc:
            warnings.warn(f"explanation maps not cached: cannot write {self.path} ({exc}); pass cache=<folder> "
                          "or cache=False", RuntimeWarning, stacklevel=3)
            return None
