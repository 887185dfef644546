"""CSV output for analysis tables, written atomically through :func:`gse_explain.io.atomic_write_bytes`.

A file is written to a temporary name beside its destination and then moved into place, so a reader (or
an interrupted notebook) never sees half a file. Existing files are refused unless ``overwrite=True``;
without it, the final step is a hard link, which fails if another process created the file meanwhile.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..io import atomic_write_bytes

__all__ = ["read_csv", "write_csv"]


def write_csv(frame: pd.DataFrame, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``frame`` (without its index) as CSV to ``path``, atomically; floats keep full precision.

    Raises FileExistsError if ``path`` exists, unless ``overwrite=True``.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame must be a pandas DataFrame; got {type(frame).__name__}")
    return atomic_write_bytes(path, frame.to_csv(index=False).encode(), overwrite=overwrite)


def read_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV written by :func:`write_csv` back into a DataFrame."""
    return pd.read_csv(path)
