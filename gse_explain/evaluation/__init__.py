"""Evaluation: per-example metrics, the paper's protocol, summaries/tables and the result store."""

from .metrics import METRICS, example_metrics
from .protocol import (
    CIFAR10_TARGET_OFFSETS,
    IMAGENET_TARGET_OFFSETS,
    Selection,
    attack_batch,
    default_target_offsets,
    predict,
    select_correct,
)
from .rebuild import load_model_and_data, load_run_dataset, load_run_model
from .store import ResultStore, RunResults, StoreError, StoreMismatchError, load_results
from .summary import summarize, summarize_targeted, summarize_untargeted
from .tables import targeted_table, untargeted_table

__all__ = [
    "CIFAR10_TARGET_OFFSETS",
    "IMAGENET_TARGET_OFFSETS",
    "METRICS",
    "ResultStore",
    "RunResults",
    "Selection",
    "StoreError",
    "StoreMismatchError",
    "attack_batch",
    "default_target_offsets",
    "example_metrics",
    "load_model_and_data",
    "load_results",
    "load_run_dataset",
    "load_run_model",
    "predict",
    "select_correct",
    "summarize",
    "summarize_targeted",
    "summarize_untargeted",
    "targeted_table",
    "untargeted_table",
]
