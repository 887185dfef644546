"""Tune an attack for a new model (the paper's App. D.1): grid search by successive halving over ordinary
result stores, a ranked table and a preset file that ``preset=PATH`` / ``--preset PATH`` accept.

    from gse_explain import RunConfig, tune
    result = tune(RunConfig(dataset="cifar10_npz", data_root=..., model="resnet20", weights=..., num_images=10,
                            batch_size=2),
                  {"q": [0.1, 0.25, 0.5], "k_hat": [10, 30, 50]}, "runs/tune-cifar10")
    result.best, result.preset.path          # then RunConfig(..., preset=result.preset.path)

Command line: ``python -m gse_explain.tune --grid q=0.1,0.25,0.5 --grid k_hat=lin(10,50,3) ...``.
"""

import sys
import types

from .check import compare_presets
from .halving import HalvingResult, RungEntry, Score, rung_budgets, successive_halving
from .objective import METRICS, Objective, expand_grid, grid_range, parse_grid_values, parse_objective
from .report import TuneResult
from .search import SearchMismatchError, TuneError, tune

__all__ = [
    "METRICS", "HalvingResult", "Objective", "RungEntry", "Score", "SearchMismatchError", "TuneError", "TuneResult",
    "compare_presets", "expand_grid", "grid_range", "parse_grid_values", "parse_objective", "rung_budgets",
    "successive_halving", "tune",
]


class _CallableModule(types.ModuleType):
    """``gse_explain.tune`` is this package and, called, the :func:`tune` function (``gse_explain.tune(...)``)."""

    def __call__(self, *args, **kwargs) -> TuneResult:
        return tune(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
