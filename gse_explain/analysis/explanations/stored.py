"""A stored run's explanation maps, batch by batch, through the cache (:mod:`.cache`).

Maps are computed on each row's **clean** image (as the paper's ASM) for the class the caller chooses per row
(``classes_of(rows)``), ``batch_size`` rows per model call, stored batch by stored batch as the ASM always
was, so ``saliency="asm"`` gives the IS numbers of before bit for bit. Stochastic methods seed each row from
(``seed``, its dataset example, its class) (:func:`~.compute.row_seeds`), so the same image and class get the
same map in every attack's store.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import torch

from ..runs import RowBatch, column_tensor, iter_row_batches
from .cache import MapCache
from .compute import explain, row_seeds
from .registry import Explanation, resolve_explanation

__all__ = ["stored_maps"]


def stored_maps(run, model, saliency, *, classes_of: Callable[[RowBatch], torch.Tensor], rows_key: dict,
                successful_only: bool, allow_incomplete: bool, settings=None, batch_size: int = 64, seed: int = 0,
                cache=True) -> Iterator[tuple[RowBatch, torch.Tensor, torch.Tensor]]:
    """``(rows, classes, maps)`` per stored batch: the counted rows (see :func:`~gse_explain.analysis.runs.iter_row_batches`),
    their explained classes and their (rows, C, H, W) maps (float32 on the CPU for cached methods).

    ``rows_key`` says what selects the rows and classes (e.g. ``{"targets": "stored"}``) and is part of the cache
    key together with ``successful_only`` and ``seed``. The cache file is written when the iteration completes.
    """
    method = saliency if isinstance(saliency, Explanation) else resolve_explanation(saliency, settings)
    key = {**rows_key, "successful_only": bool(successful_only), "seed": int(seed) if method.stochastic else None,
           "allow_incomplete": bool(allow_incomplete)}
    batches = iter_row_batches(run, successful_only=successful_only, allow_incomplete=allow_incomplete)
    store_cache = MapCache.for_run(run, model, method, cache, key)
    cached = store_cache.load() if store_cache is not None else None
    maps_out, identity_out, stale, offset = [], [], cached is None, 0
    for rows in batches:
        classes = classes_of(rows)
        identity = np.stack([rows.records["batch"].to_numpy(np.int64), rows.records["image"].to_numpy(np.int64),
                             classes.numpy()], axis=1)
        count = len(rows.records)
        maps = None
        if cached is not None and np.array_equal(cached[1][offset : offset + count], identity):
            maps = cached[0][offset : offset + count]
        if maps is None:
            stale = True
            examples = column_tensor(rows.records, "example") if "example" in rows.records.columns else column_tensor(rows.records, "image")
            maps = explain(method, model, rows.clean, classes, labels=column_tensor(rows.records, "label"),
                           batch_size=batch_size, seeds=row_seeds(seed, examples, classes))
        offset += count
        if store_cache is not None:
            maps_out.append(maps.detach().cpu())
            identity_out.append(identity)
        yield rows, classes, maps
    if store_cache is not None and maps_out and (stale or offset != len(cached[1])):
        store_cache.save(torch.cat(maps_out), np.concatenate(identity_out))
