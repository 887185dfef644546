"""Mean and confidence band of per-example values, per group (attack × percentile, attack × top-q, ...).

Two bands are offered:

- ``"t"`` (default): Student-t interval of the mean, mean ± t_{(1+level)/2, n−1} · s/√n with s the sample
  standard deviation (ddof = 1). Needs n ≥ 2 (NaN band otherwise).
- ``"bootstrap"``: percentile bootstrap of the mean with ``n_boot`` resamples drawn by
  ``numpy.random.default_rng(seed)``; the generator is re-seeded for every group, so a group's band does
  not depend on which other groups are aggregated with it.

NaN values (e.g. the IS of a zero perturbation) are left out and not counted in ``n``.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["BAND_METHODS", "mean_band", "summarize_groups"]

BAND_METHODS = ("t", "bootstrap")


def _check_band(level: float, method: str, n_boot: int) -> None:
    if method not in BAND_METHODS:
        raise ValueError(f"band method {method!r} is not known: choose one of {BAND_METHODS}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), e.g. 0.95 for a 95 % band; got {level!r}")
    if method == "bootstrap" and n_boot < 1:
        raise ValueError(f"n_boot must be ≥ 1; got {n_boot}")


def mean_band(values, *, level: float = 0.95, method: str = "t", n_boot: int = 2000, seed: int = 0) -> dict:
    """Mean of ``values`` with a confidence band.

    Returns:
        ``{"n", "mean", "std", "band_low", "band_high"}`` (std with ddof = 1; NaN where undefined).
    """
    _check_band(level, method, n_boot)
    array = np.asarray(values, dtype=np.float64).ravel()
    array = array[~np.isnan(array)]
    n = int(array.size)
    nan = float("nan")
    if n == 0:
        return {"n": 0, "mean": nan, "std": nan, "band_low": nan, "band_high": nan}
    mean = float(array.mean())
    std = float(array.std(ddof=1)) if n > 1 else nan
    if n < 2:
        low = high = nan
    elif method == "t":
        half = float(stats.t.ppf((1 + level) / 2, n - 1)) * std / math.sqrt(n)
        low, high = mean - half, mean + half
    else:
        rng = np.random.default_rng(seed)
        means = array[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
        low, high = (float(q) for q in np.quantile(means, [(1 - level) / 2, (1 + level) / 2]))
    return {"n": n, "mean": mean, "std": std, "band_low": low, "band_high": high}


def summarize_groups(
    frame: pd.DataFrame,
    by: Sequence[str],
    value: str,
    *,
    level: float = 0.95,
    method: str = "t",
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per group of ``frame`` (grouped by the columns ``by``) with the :func:`mean_band` of ``value``.

    Returns:
        DataFrame with the ``by`` columns, ``n``, ``mean``, ``std``, ``band_low``, ``band_high``, ``level`` and
        ``band`` (the method), sorted by the ``by`` columns (groups keep the order of first appearance for
        the first column, so attacks stay in the order given).
    """
    _check_band(level, method, n_boot)
    by = list(by)
    missing = [c for c in [*by, value] if c not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks the columns {missing}; it has {list(frame.columns)}")
    rows = []
    for key, group in frame.groupby(by, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key)), **mean_band(group[value], level=level, method=method, n_boot=n_boot, seed=seed)})
    columns = [*by, "n", "mean", "std", "band_low", "band_high"]
    out = pd.DataFrame(rows, columns=columns)
    out["level"] = level
    out["band"] = method
    if len(by) > 1:
        order = {k: i for i, k in enumerate(out[by[0]].drop_duplicates())}
        out = out.sort_values(by, key=lambda c: c.map(order) if c.name == by[0] else c, kind="stable")
    return out.reset_index(drop=True)
