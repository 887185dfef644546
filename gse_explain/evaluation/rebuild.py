"""Rebuild the model and dataset of a run from its configuration (a :class:`RunConfig` or a store's JSON).

:func:`~gse_explain.evaluation.run.run` builds them this way before attacking; the analysis layer uses the
same functions to get the model back for saliency maps and class activation maps of a finished run, so
both always agree on which network (weights, input normalisation, constructor options) produced the
stored examples.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import torch

from .config import CIFAR_DATASETS, OBJECT_PREFIX, RunConfig

__all__ = [
    "CIFAR_DATASETS", "ModelMismatchError", "ModelRequiredError", "WeightsMismatchError", "as_run_config", "check_model",
    "check_weights", "load_model_and_data", "load_run_dataset",
    "load_run_model",
]


def as_run_config(config: RunConfig | Mapping[str, Any]) -> RunConfig:
    """``config`` itself, or the :class:`RunConfig` of a stored configuration (``RunResults.config``)."""
    return config if isinstance(config, RunConfig) else RunConfig.from_json(config, check_attack=False)


class WeightsMismatchError(ValueError):
    """A weights file's content differs from the one a stored run was made with (SHA-256)."""


class ModelMismatchError(ValueError):
    """A model passed for a stored run is not the one the run attacked (state-dict SHA-256)."""


class ModelRequiredError(ValueError):
    """A stored run was made with a model object, which cannot be rebuilt by name: pass it again."""


def check_model(model, expected_sha256: str | None, where: str = "the run") -> None:
    """Raise :class:`ModelMismatchError` unless ``model``'s state dict has the recorded SHA-256 (None passes)."""
    from ..io import state_dict_sha256

    if expected_sha256 is None or not hasattr(model, "state_dict"):
        return
    actual = state_dict_sha256(model)
    if actual != expected_sha256:
        raise ModelMismatchError(
            f"the model passed has state-dict SHA-256 {actual}, but {where} attacked a model with {expected_sha256}: "
            "it is another model (other weights, wrapper or dtype). Pass the model the run was made with, or leave "
            "model=None to rebuild it from the store")


def check_weights(path: str | os.PathLike, expected_sha256: str | None, where: str = "the run") -> None:
    """Raise :class:`WeightsMismatchError` (naming the file and the fix) if ``path``'s SHA-256 is not the
    recorded one; FileNotFoundError if it is missing. ``expected_sha256=None`` (nothing recorded) passes."""
    from ..io import file_sha256

    if expected_sha256 is None:
        return
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} of {where} is missing: pass weights=PATH (--weights) to the file "
                                f"with SHA-256 {expected_sha256}")
    actual = file_sha256(path)
    if actual != expected_sha256:
        raise WeightsMismatchError(
            f"weights file {path} has SHA-256 {actual}, but {where} was made with {expected_sha256}: the file was "
            "replaced or retrained since. Pass weights=PATH (--weights) to the original file (it is accepted when its "
            "hash matches), or re-run the attacks with the new weights into a new store")


def load_run_model(config: RunConfig | Mapping[str, Any], device: str | torch.device = "cpu",
                   weights: str | os.PathLike | None = None, *, expected_sha256: str | None = None):
    """The :class:`~gse_explain.models.NormalizedModel` a run used (eval mode, on ``device``).

    Args:
        config: a :class:`RunConfig` or a stored configuration (``RunResults.config``; its
            ``weights_sha256`` is checked unless ``expected_sha256`` is given).
        device: where to put the model.
        weights: use this weights file instead of the configured one (e.g. when the file has moved since
            the run); it is accepted only if its SHA-256 is the recorded one.
        expected_sha256: the SHA-256 the weights file must have (None with a RunConfig: not checked).

    Raises:
        WeightsMismatchError: the weights file's content is not the recorded one.
    """
    from ..models import create_model, model_info

    if expected_sha256 is None and isinstance(config, Mapping):
        expected_sha256 = config.get("weights_sha256")
    config = as_run_config(config)
    if not isinstance(config.model, str):
        return config.model  # a model object is used as it is
    if config.model.startswith(OBJECT_PREFIX):
        raise ModelRequiredError(
            f"the run was made with a model object ({config.model[len(OBJECT_PREFIX):]}), which cannot be rebuilt from the "
            "store: pass the same model again (model=...; its state-dict SHA-256 is checked)")
    weights = config.weights if weights is None else str(weights)
    if weights is not None and weights not in ("DEFAULT", "random"):
        check_weights(weights, expected_sha256)
    is_factory = ":" in config.model and not config.model.startswith("timm:")  # the factory's own network is valid
    if weights is None and not is_factory and model_info(config.model).default_weights is None:
        hint = ("a local weights file or --weights random (nothing is downloaded)" if config.model.startswith("timm:") else
                "--weights PATH (a weights file), --weights DEFAULT (torchvision models, downloads) or --weights random "
                "(an untrained model)")
        raise ValueError(f"model {config.model!r} has no built-in weights: pass {hint}")
    model_kwargs: dict[str, Any] = dict(config.model_options)
    if config.normalization is not None:
        model_kwargs["normalization"] = config.normalization
    return create_model(config.model, weights=weights, device=device, **model_kwargs)


def load_run_dataset(config: RunConfig | Mapping[str, Any]):
    """The dataset a run attacked (images (C, H, W) in [0, 1])."""
    from ..data import load_dataset

    config = as_run_config(config)
    data_kwargs: dict[str, Any] = {}
    if config.dataset not in CIFAR_DATASETS:
        data_kwargs["size"] = config.image_size or _input_size(config)
    if config.dataset == "imagenet_val" and config.index_file:
        data_kwargs["index_file"] = config.index_file
    if config.dataset == "folder" and config.labels_csv:
        data_kwargs["labels_csv"] = config.labels_csv
    if config.dataset == "cifar10":
        data_kwargs["download"] = config.download
    return load_dataset(config.dataset, root=config.data_root, **data_kwargs)


def _input_size(config: RunConfig) -> tuple[int, int]:
    """(H, W) images are resized to: the model's declared input size."""
    from ..models import model_info

    if isinstance(config.model, str):
        size = model_info(config.model).input_size
        if size:
            return tuple(size[1:])
        raise ValueError(f"RunConfig.image_size is needed: model {config.model!r} declares no input size, and dataset "
                         f"{config.dataset!r} resizes its images")
    info = getattr(config.model, "info", None)
    if info is not None and getattr(info, "input_size", None):
        return tuple(info.input_size[1:])
    raise ValueError("RunConfig.image_size is needed: the model object declares no input size (model.info.input_size), "
                     f"and dataset {config.dataset!r} resizes its images")


def load_model_and_data(config: RunConfig | Mapping[str, Any], device: str | torch.device = "cpu"):
    """``(model, dataset)`` of a run configuration; the model is checked (and built) first."""
    model = load_run_model(config, device)
    return model, load_run_dataset(config)
