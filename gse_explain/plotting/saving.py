"""Saving figures: PNG and PDF side by side, each written atomically."""

from __future__ import annotations

import io
import os
from pathlib import Path

from ..io import atomic_write_bytes

__all__ = ["save_figure"]

_SUFFIXES = (".png", ".pdf")


def save_figure(fig, path: str | os.PathLike, *, dpi: int = 200, overwrite: bool = True) -> tuple[Path, Path]:
    """Write ``fig`` as ``<path>.png`` and ``<path>.pdf`` (a ``.png``/``.pdf`` suffix on ``path`` is replaced).

    Each file is rendered in memory and moved into place atomically. Figures are regenerable, so existing
    files are replaced by default; ``overwrite=False`` raises FileExistsError instead (checked for both
    files before either is written).

    Returns:
        ``(png_path, pdf_path)``.
    """
    path = Path(path)
    stem = path.with_suffix("") if path.suffix.lower() in _SUFFIXES else path
    targets = [stem.with_name(stem.name + suffix) for suffix in _SUFFIXES]
    if not overwrite:
        existing = [str(t) for t in targets if t.exists()]
        if existing:
            raise FileExistsError(f"{', '.join(existing)} already exist; pass overwrite=True to replace them")
    for target in targets:
        buffer = io.BytesIO()
        fig.savefig(buffer, format=target.suffix[1:], dpi=dpi, bbox_inches="tight")
        atomic_write_bytes(target, buffer.getvalue(), overwrite=overwrite)
    return targets[0], targets[1]
