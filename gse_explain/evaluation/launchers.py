"""Which part of a run this process does, read from the launcher that started it: torchrun or a SLURM array.

``shard="auto"`` (``--shard auto``) takes the process's rank and the number of processes from

- torchrun (``torchrun --nproc-per-node N ...``, also multi-node): ``RANK`` and ``WORLD_SIZE``, with
  ``LOCAL_RANK`` choosing the GPU (``cuda:LOCAL_RANK``) when CUDA is available and the device is ``"auto"``;
- a SLURM job array (``sbatch --array=0-7``): ``SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN`` of
  ``SLURM_ARRAY_TASK_COUNT``;
- neither: the whole run, ``(0, 1)``.

An explicit ``(i, n)`` is used as given, but if a launcher's variables are set and say otherwise, that is
an error: two processes would otherwise attack the same batches while others are never done.
"""

from __future__ import annotations

import os
from typing import Mapping

import torch

__all__ = ["launcher_shard", "resolve_device", "resolve_shard"]


def _int(environ: Mapping[str, str], name: str) -> int:
    try:
        return int(environ[name])
    except ValueError:
        raise ValueError(f"environment variable {name}={environ[name]!r} is not an integer") from None


def launcher_shard(environ: Mapping[str, str] | None = None) -> tuple[tuple[int, int], str] | None:
    """``((index, count), launcher name)`` from torchrun's or SLURM's variables, or None if neither is set."""
    environ = os.environ if environ is None else environ
    if "WORLD_SIZE" in environ and "RANK" in environ:
        return (_int(environ, "RANK"), _int(environ, "WORLD_SIZE")), "torchrun (RANK/WORLD_SIZE)"
    if "SLURM_ARRAY_TASK_ID" in environ and "SLURM_ARRAY_TASK_COUNT" in environ:
        first = _int(environ, "SLURM_ARRAY_TASK_MIN") if "SLURM_ARRAY_TASK_MIN" in environ else 0
        index, count = _int(environ, "SLURM_ARRAY_TASK_ID") - first, _int(environ, "SLURM_ARRAY_TASK_COUNT")
        if not 0 <= index < count:
            raise ValueError(f"SLURM array task {index + first} is outside {first}..{first + count - 1}: use a contiguous "
                             "array (--array=0-N) so that tasks map to shards 0..N")
        return (index, count), "a SLURM array (SLURM_ARRAY_TASK_ID/COUNT/MIN)"
    return None


def resolve_shard(shard, environ: Mapping[str, str] | None = None) -> tuple[int, int]:
    """The ``(index, count)`` this process runs for ``shard`` (``"auto"`` or a pair); see the module docstring."""
    found = launcher_shard(environ)
    if shard == "auto":
        return found[0] if found else (0, 1)
    shard = (int(shard[0]), int(shard[1]))
    if found and found[0] != shard:
        raise ValueError(f"shard {shard[0]}/{shard[1]} was given, but {found[1]} says this process is "
                         f"{found[0][0]}/{found[0][1]}: pass --shard auto (RunConfig(shard='auto')), or the matching i/n")
    return shard


def resolve_device(device: str, shard="auto", environ: Mapping[str, str] | None = None) -> str:
    """``"auto"`` → ``cuda:LOCAL_RANK`` under torchrun with CUDA, else ``"cuda"`` if available, else ``"cpu"``."""
    environ = os.environ if environ is None else environ
    if device != "auto":
        return device
    if not torch.cuda.is_available():
        return "cpu"
    if "LOCAL_RANK" in environ:
        return f"cuda:{_int(environ, 'LOCAL_RANK') % max(torch.cuda.device_count(), 1)}"
    return "cuda"
