"""Aggregate per-example records into the paper's table rows (spec §C.5).

Untargeted: ASR = successes / attacked images; metrics are means over successful examples.

Targeted (one row per (image, target) pair):
- **best**: per image, the minimum over its *successful* targets, separately for each metric; images with
  at least one success; ASR = share of images with at least one success.
- **average**: ASR = share of successful pairs; metrics are means over successful pairs (the paper's
  definition), or over all pairs with ``average="all"`` (what the reference code computes).
- **worst**: per image, the maximum over *all* targets, separately for each metric; only images whose
  targets all succeeded; ASR = share of such images.
ASR is computed directly from the success flags (the reference writer misaligns it, spec §C.5).
"""

from __future__ import annotations

import math

import pandas as pd

from .metrics import METRICS

__all__ = ["summarize", "summarize_targeted", "summarize_untargeted"]

_METRIC_NAMES = list(METRICS)


def _require(records: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in records.columns]
    if missing:
        raise ValueError(f"records lack the column(s) {missing}; expected per-example records from the protocol")


def _means(frame: pd.DataFrame) -> dict[str, float]:
    return {m: (float(frame[m].mean()) if len(frame) else math.nan) for m in _METRIC_NAMES}


def summarize_untargeted(records: pd.DataFrame) -> dict[str, float]:
    """One table row: ``n``, ``asr`` (fraction), the metric means over successes, ``time`` (s/image)."""
    _require(records, ["success", "time", *_METRIC_NAMES])
    successful = records[records["success"].astype(bool)]
    n = len(records)
    return {
        "n": n,
        "asr": float(records["success"].mean()) if n else math.nan,
        **_means(successful),
        "time": float(records["time"].mean()) if n else math.nan,
    }


def summarize_targeted(records: pd.DataFrame, average: str = "successful", image_key: str = "example") -> dict[str, dict[str, float]]:
    """Rows ``{"best": ..., "average": ..., "worst": ...}``, each with ``n``, ``asr``, metrics and ``time``.

    ``n`` counts the images (best/worst) or pairs (average) the metric means are taken over.
    """
    if average not in ("successful", "all"):
        raise ValueError(f"average must be 'successful' (paper) or 'all' (reference code); got {average!r}")
    _require(records, [image_key, "success", "time", *_METRIC_NAMES])
    success = records["success"].astype(bool)
    per_image_any = success.groupby(records[image_key]).any()
    per_image_all = success.groupby(records[image_key]).all()
    time_per_pair = float(records["time"].mean()) if len(records) else math.nan

    best_rows = records[success].groupby(image_key)[_METRIC_NAMES].min()
    worst_images = per_image_all[per_image_all].index
    worst_rows = records[records[image_key].isin(worst_images)].groupby(image_key)[_METRIC_NAMES].max()
    average_rows = records[success] if average == "successful" else records

    def row(asr: float, frame: pd.DataFrame) -> dict[str, float]:
        return {"n": len(frame), "asr": asr, **_means(frame), "time": time_per_pair}

    empty = not len(records)
    return {
        "best": row(math.nan if empty else float(per_image_any.mean()), best_rows),
        "average": row(math.nan if empty else float(success.mean()), average_rows),
        "worst": row(math.nan if empty else float(per_image_all.mean()), worst_rows),
    }


def summarize(records: pd.DataFrame, targeted: bool, average: str = "successful") -> dict:
    """:func:`summarize_targeted` or :func:`summarize_untargeted`, by mode."""
    return summarize_targeted(records, average) if targeted else summarize_untargeted(records)

