"""Reading weight files: plain state_dicts and training checkpoints."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any, Dict, Mapping, Union

import torch
from torch import nn

PathLike = Union[str, os.PathLike]

# Keys under which training scripts commonly nest the weights.
_NESTED_KEYS = ("state_dict", "model", "model_state_dict", "net")


def load_weights_file(path: PathLike, *, hint: str = "pass weights=PATH") -> Any:
    """Load a ``.pt`` / ``.pth`` / ``.th`` (or ``.safetensors``) file onto the CPU.

    Tries the safe ``weights_only=True`` unpickler first and falls back to the
    full unpickler only for legacy checkpoints that store other Python objects
    (such files execute code when loaded: only load files you trust).

    Raises:
        FileNotFoundError: the file does not exist (message names it).
        ValueError: the file exists but is not a readable torch file.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"weights file '{p}' not found: {hint} pointing to an existing file")
    if p.suffix == ".safetensors":
        return _load_safetensors(p)
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        pass  # legacy pickle with non-tensor objects: retry below
    except Exception as exc:  # garbage bytes surface as many exception types
        raise ValueError(f"weights file '{p}' is corrupted or not a torch checkpoint ({exc})") from exc
    try:
        return torch.load(p, map_location="cpu", weights_only=False)
    except Exception as exc:  # any unpickling failure means an unreadable file
        raise ValueError(f"weights file '{p}' is corrupted or not a torch checkpoint ({exc})") from exc


def _load_safetensors(path: Path) -> Dict[str, torch.Tensor]:
    try:
        from safetensors.torch import load_file
    except ImportError as exc:
        raise ImportError(f"reading '{path}' needs the 'safetensors' package: pip install safetensors") from exc
    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # the library raises its own error types for bad headers
        raise ValueError(f"weights file '{path}' is corrupted or not a safetensors file ({exc})") from exc


def extract_state_dict(obj: Any, path: PathLike) -> Dict[str, torch.Tensor]:
    """Find the tensor state_dict inside a loaded file.

    Accepts a plain state_dict, a checkpoint dict with the weights under
    ``state_dict`` / ``model`` / ``model_state_dict`` / ``net``, a whole
    pickled ``nn.Module``, and the state_dict of a :class:`NormalizedModel`
    (``model.*`` keys plus ``mean`` / ``std``). A ``module.`` prefix left by
    ``nn.DataParallel`` is removed.

    Returns:
        The state_dict, keys as the bare network names them.
    """
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, Mapping):
        for key in _NESTED_KEYS:
            inner = obj.get(key)
            if isinstance(inner, nn.Module):
                inner = inner.state_dict()
            if isinstance(inner, Mapping) and inner and all(torch.is_tensor(v) for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not obj or not all(
        isinstance(k, str) and torch.is_tensor(v) for k, v in obj.items()
    ):
        raise ValueError(
            f"weights file '{path}' holds no state_dict: expected a dict of tensors or a checkpoint "
            f"dict with one under one of {list(_NESTED_KEYS)}, got {type(obj).__name__}"
        )
    sd = dict(obj)
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    if {"mean", "std"} <= set(sd) and all(k.startswith("model.") for k in sd if k not in ("mean", "std")):
        sd = {k[len("model."):]: v for k, v in sd.items() if k not in ("mean", "std")}
    return sd


def load_strict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], path: PathLike, what: str) -> None:
    """``load_state_dict(strict=True)`` with an error that names file and architecture."""
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        expected = model.state_dict()
        missing = sorted(set(expected) - set(state_dict))
        unexpected = sorted(set(state_dict) - set(expected))
        details = []
        if missing:
            details.append(f"{len(missing)} missing keys (e.g. {missing[:3]})")
        if unexpected:
            details.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]})")
        if not details:
            shapes = [f"{k}: file {tuple(v.shape)} vs model {tuple(expected[k].shape)}"
                      for k, v in state_dict.items() if k in expected and v.shape != expected[k].shape]
            details.append(f"tensor shapes differ ({'; '.join(shapes[:3]) or exc})")
        raise ValueError(
            f"weights file '{path}' does not match {what}: {'; '.join(details)}. "
            f"Check that the file was trained for this architecture and pick the matching model name "
            f"(and model options such as num_classes)."
        ) from exc


def load_weights_into(model: nn.Module, path: PathLike, what: str, *, hint: str = "pass weights=PATH") -> None:
    """Read ``path`` (see :func:`load_weights_file`, :func:`extract_state_dict`) into ``model``, strictly."""
    state_dict = extract_state_dict(load_weights_file(path, hint=hint), path)
    load_strict(model, state_dict, path, what)
