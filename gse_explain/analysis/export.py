"""Atomic file output for analysis results (CSV tables here; figures reuse :func:`write_bytes_atomically`).

A file is written to a temporary name beside its destination and then moved into place, so a reader (or
an interrupted notebook) never sees half a file. Existing files are refused unless ``overwrite=True``;
without it, the final step is a hard link, which fails if another process created the file meanwhile.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd

__all__ = ["read_csv", "write_bytes_atomically", "write_csv"]


def write_bytes_atomically(path: str | os.PathLike, data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically; raise FileExistsError if it exists and ``overwrite`` is False."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp gives 0o600; results are meant to be shared
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
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


def write_csv(frame: pd.DataFrame, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``frame`` (without its index) as CSV to ``path``, atomically; floats keep full precision.

    Raises FileExistsError if ``path`` exists, unless ``overwrite=True``.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame must be a pandas DataFrame; got {type(frame).__name__}")
    return write_bytes_atomically(path, frame.to_csv(index=False).encode(), overwrite=overwrite)


def read_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV written by :func:`write_csv` back into a DataFrame."""
    return pd.read_csv(path)
