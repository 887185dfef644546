"""Rebuild the model and dataset of a run from its configuration (a :class:`RunConfig` or a store's JSON).

:func:`~gse_explain.evaluation.run.run` builds them this way before attacking; the analysis layer uses the
same functions to get the model back for saliency maps and class activation maps of a finished run, so
both always agree on which network (weights, input normalisation, constructor options) produced the
stored examples.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import torch

from .config import CIFAR_DATASETS, RunConfig

__all__ = ["CIFAR_DATASETS", "as_run_config", "load_model_and_data", "load_run_dataset", "load_run_model"]


def as_run_config(config: RunConfig | Mapping[str, Any]) -> RunConfig:
    """``config`` itself, or the :class:`RunConfig` of a stored configuration (``RunResults.config``)."""
    return config if isinstance(config, RunConfig) else RunConfig.from_json(config)


def load_run_model(config: RunConfig | Mapping[str, Any], device: str | torch.device = "cpu",
                   weights: str | os.PathLike | None = None):
    """The :class:`~gse_explain.models.NormalizedModel` a run used (eval mode, on ``device``).

    Args:
        config: a :class:`RunConfig` or a stored configuration (``RunResults.config``).
        device: where to put the model.
        weights: use this weights file instead of the configured one (e.g. when the file has moved since
            the run; the store keeps its SHA-256 in ``weights_sha256`` for checking).
    """
    from ..models import create_model, model_info

    config = as_run_config(config)
    weights = config.weights if weights is None else str(weights)
    if weights is None and model_info(config.model).default_weights is None:
        raise ValueError(
            f"model {config.model!r} has no built-in weights: pass --weights PATH (a weights file), "
            "--weights DEFAULT (torchvision models, downloads) or --weights random (an untrained model)"
        )
    model_kwargs: dict[str, Any] = dict(config.model_options)
    if config.normalization is not None:
        model_kwargs["normalization"] = config.normalization
    return create_model(config.model, weights=weights, device=device, **model_kwargs)


def load_run_dataset(config: RunConfig | Mapping[str, Any]):
    """The dataset a run attacked (images (C, H, W) in [0, 1])."""
    from ..data import load_dataset
    from ..models import model_info

    config = as_run_config(config)
    data_kwargs: dict[str, Any] = {}
    if config.dataset not in CIFAR_DATASETS:
        data_kwargs["size"] = config.image_size or tuple(model_info(config.model).input_size[1:])
    if config.dataset == "imagenet_val" and config.index_file:
        data_kwargs["index_file"] = config.index_file
    if config.dataset == "folder" and config.labels_csv:
        data_kwargs["labels_csv"] = config.labels_csv
    if config.dataset == "cifar10":
        data_kwargs["download"] = config.download
    return load_dataset(config.dataset, root=config.data_root, **data_kwargs)


def load_model_and_data(config: RunConfig | Mapping[str, Any], device: str | torch.device = "cpu"):
    """``(model, dataset)`` of a run configuration; the model is checked (and built) first."""
    model = load_run_model(config, device)
    return model, load_run_dataset(config)
