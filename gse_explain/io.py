"""Files written so that nothing is ever half-written or silently replaced, and the hashes that prove content.

- :func:`atomic_write_bytes`: write to a temporary file beside the destination, ``fsync``, then move it into
  place, so a reader (or an interrupted run) sees the old file or the complete new one, never a part.
  ``overwrite=False`` refuses an existing file, and its final step is a hard link, which also fails if
  another process created the file meanwhile.
- :func:`create_once`: create a JSON file unless it exists (first writer wins, race-free across processes).
- :func:`file_sha256`, :func:`array_sha256`, :func:`state_dict_sha256`: SHA-256 hex digests of a file, of
  arrays (dtype, shape and bytes) and of a model's parameters and buffers.
- :func:`remove_stale_temporaries`: delete what killed writers left behind (``.<name>.*.tmp``).
- :func:`check_writable_folder`: fail early, naming the path, where output could not be written.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np

__all__ = [
    "array_sha256",
    "atomic_write_bytes",
    "check_writable_folder",
    "create_once",
    "file_sha256",
    "json_bytes",
    "read_json",
    "remove_stale_temporaries",
    "state_dict_sha256",
]


def _file_mode() -> int:
    """Permissions of an ordinary new file (0o666 minus the umask); mkstemp alone would give 0o600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _write_temp(path: Path, data: bytes) -> str:
    """Write ``data`` durably to a new temporary file beside ``path`` (ordinary permissions); return its name."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, _file_mode())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (parent folders are created); return the path.

    Raises:
        FileExistsError: ``path`` exists (or appears meanwhile) and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _write_temp(path, data)
    try:
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def json_bytes(obj: Any) -> bytes:
    """``obj`` as indented, key-sorted JSON (the form every manifest is written in)."""
    return json.dumps(obj, indent=2, sort_keys=True).encode()


def read_json(path: str | os.PathLike) -> Any:
    """The JSON content of ``path`` (OSError / json.JSONDecodeError propagate)."""
    return json.loads(Path(path).read_text())


def create_once(path: str | os.PathLike, obj: Any) -> Any:
    """Create JSON file ``path`` holding ``obj`` unless it exists; return the content that is there now.

    The content is serialised first (an error leaves nothing behind), then hard-linked into place, which
    fails if another process created the file first: then that process's content is returned.
    """
    path = Path(path)
    tmp = _write_temp(path, json_bytes(obj))
    try:
        os.link(tmp, path)
        return obj
    except FileExistsError:
        return read_json(path)
    finally:
        os.unlink(tmp)


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of the file at ``path`` (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def array_sha256(arrays: Iterable[np.ndarray]) -> str:
    """SHA-256 over arrays' dtypes, shapes and C-order bytes (equal digests ⇔ bit-identical arrays)."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def state_dict_sha256(model) -> str:
    """SHA-256 of a module's state dict: every parameter's and buffer's name, dtype, shape and values (CPU)."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        if tensor.dtype in (torch.bfloat16, torch.float8_e4m3fn, torch.float8_e5m2):  # numpy lacks these dtypes
            tensor = tensor.view(torch.int16 if tensor.dtype == torch.bfloat16 else torch.int8)
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def remove_stale_temporaries(folder: str | os.PathLike, older_than: float = 3600.0) -> list[Path]:
    """Delete ``.*.tmp`` files in ``folder`` older than ``older_than`` seconds (left by killed writers).

    Recent ones are kept: they may belong to a writer that is still running (another shard).
    """
    removed = []
    now = time.time()
    for entry in Path(folder).glob(".*.tmp"):
        try:
            if now - entry.stat().st_mtime > older_than:
                entry.unlink()
                removed.append(entry)
        except FileNotFoundError:  # another process removed or renamed it first
            continue
    return removed


def check_writable_folder(path: str | os.PathLike, what: str = "folder") -> Path:
    """``path`` if it is (or can be created as) a writable folder; nothing is created.

    Raises:
        NotADirectoryError: ``path`` (or a parent) exists and is a file.
        PermissionError: the folder, or the nearest existing parent it would be created in, is not writable.
    """
    path = Path(path)
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise NotADirectoryError(f"{what} {path}: {existing} is a file, not a folder; choose another path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"{what} {path}: {existing} is not writable; choose a folder you can write to")
    return path
