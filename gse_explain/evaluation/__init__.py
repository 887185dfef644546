"""Evaluation: per-example metrics, the paper's protocol, the run configuration and driver (:func:`run`),
summaries/tables and the result store."""

from .config import RunConfig
from .metrics import METRICS, example_metrics
from .protocol import (
    CIFAR10_TARGET_OFFSETS,
    IMAGENET_TARGET_OFFSETS,
    Selection,
    attack_batch,
    default_target_offsets,
    select_correct,
)
from ..models.inference import predict
from .rebuild import load_model_and_data, load_run_dataset, load_run_model
from .run import RunError, run, store_config
from .results import RunResults, load_results
from .store import ResultStore, StoreError, StoreIntegrityError, StoreMismatchError
from .summary import summarize, summarize_targeted, summarize_untargeted
from .tables import attack_variant, run_report, targeted_table, untargeted_table

__all__ = [
    "CIFAR10_TARGET_OFFSETS",
    "IMAGENET_TARGET_OFFSETS",
    "METRICS",
    "ResultStore",
    "RunConfig",
    "RunError",
    "RunResults",
    "Selection",
    "StoreError",
    "StoreIntegrityError",
    "StoreMismatchError",
    "attack_batch",
    "attack_variant",
    "default_target_offsets",
    "example_metrics",
    "load_model_and_data",
    "load_results",
    "load_run_dataset",
    "load_run_model",
    "predict",
    "run",
    "run_report",
    "select_correct",
    "summarize",
    "summarize_targeted",
    "store_config",
    "summarize_untargeted",
    "targeted_table",
    "untargeted_table",
]
