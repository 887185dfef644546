"""The evaluation protocol (spec §C.1–§C.3, §C.6): which images are attacked, with which targets, and the
per-example records each attack call produces.

- Only correctly classified images are attacked (for datasets without labels, the model's prediction is the
  label, so every image counts).
- Untargeted: one attack call per batch. Targeted: target = (y + offset) mod K for each label offset;
  CIFAR-10 uses every wrong label (offsets 1…9), ImageNet the paper's 10 fixed offsets. An attack whose rows
  are independent (``AttackSpec.independent_rows``, e.g. GSE) gets all offsets of a batch in one call of
  B images × T targets (in chunks of at most ``max_call_elements`` image values), which gives the same
  examples as one call per offset; the others get one call per offset.
- Time is measured around each attack call and amortised over its rows (seconds per example), without the
  one-off ``torch.compile`` time (reported apart, see :func:`attack_batch`'s ``info``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from ..attacks import get_attack
from ..attacks.execution import ExecutionOptions, current_execution, run_with
from ..attacks.base import check_attack_inputs
from ..models.inference import NonFiniteLogitsError, frozen_model, model_device, predict
from ..io import array_sha256
from .metrics import example_metrics

__all__ = [
    "CIFAR10_TARGET_OFFSETS",
    "IMAGENET_TARGET_OFFSETS",
    "Selection",
    "attack_batch",
    "call_seed",
    "dataset_identity",
    "default_target_offsets",
    "predict",
    "select_correct",
]

CIFAR10_TARGET_OFFSETS: tuple[int, ...] = tuple(range(1, 10))
IMAGENET_TARGET_OFFSETS: tuple[int, ...] = (857, 477, 974, 591, 150, 547, 261, 86, 151, 610)


def default_target_offsets(num_classes: int) -> tuple[int, ...]:
    """The paper's label offsets: every wrong label for ≤ 10 classes, the fixed ImageNet list for 1000."""
    if num_classes == 1000:
        return IMAGENET_TARGET_OFFSETS
    if 2 <= num_classes <= 10:
        return tuple(range(1, num_classes))
    raise ValueError(
        f"no default target offsets for {num_classes} classes; pass offsets explicitly (integers in 1..{num_classes - 1})"
    )


def call_seed(seed: int, batch_index: int, offset_index: int) -> int:
    """Independent, reproducible seed for one attack call, whatever shard or order runs it."""
    return int(np.random.SeedSequence([seed, batch_index, offset_index]).generate_state(1)[0])


@dataclass(frozen=True)
class Selection:
    """The examples a run attacks: positions into the dataset, their dataset indices and labels."""

    positions: np.ndarray  # int64, positions in the dataset object
    examples: np.ndarray  # int64, the dataset's own example indices (e.g. CIFAR-10 test index)
    labels: np.ndarray  # int64, true labels (or the model's predictions where labels are unknown)
    scanned: int  # images classified to find them
    correct: int  # how many of the scanned images were correctly classified

    def to_json(self) -> dict:
        return {
            "positions": self.positions.tolist(),
            "examples": self.examples.tolist(),
            "labels": self.labels.tolist(),
            "scanned": self.scanned,
            "correct": self.correct,
        }

    @classmethod
    def from_json(cls, data: dict) -> "Selection":
        return cls(
            positions=np.asarray(data["positions"], dtype=np.int64),
            examples=np.asarray(data["examples"], dtype=np.int64),
            labels=np.asarray(data["labels"], dtype=np.int64),
            scanned=int(data["scanned"]),
            correct=int(data["correct"]),
        )


def select_correct(model: nn.Module, dataset: Dataset, num_images: int | None, batch_size: int = 64) -> Selection:
    """The first ``num_images`` correctly classified images of ``dataset``, in dataset order.

    ``num_images=None`` takes all correctly classified images. Items with label -1 (unknown) take the
    model's prediction as their label.
    """
    if num_images is not None and num_images < 1:
        raise ValueError(f"num_images must be ≥ 1 (or None for all); got {num_images}")
    index = np.asarray(getattr(dataset, "index", np.arange(len(dataset))), dtype=np.int64)
    positions, labels = [], []
    scanned = 0
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    for images, true in loader:
        try:
            predicted = predict(model, images, batch_size).numpy()
        except NonFiniteLogitsError as exc:
            raise NonFiniteLogitsError(f"selecting correctly classified images (dataset positions {scanned}…"
                                       f"{scanned + len(true) - 1}): {exc}") from None
        true = np.asarray(true, dtype=np.int64)
        label = np.where(true < 0, predicted, true)
        for offset in np.flatnonzero(predicted == label):
            positions.append(scanned + offset)
            labels.append(label[offset])
        scanned += len(true)
        if num_images is not None and len(positions) >= num_images:
            break
    correct = len(positions)
    if num_images is not None:
        positions, labels = positions[:num_images], labels[:num_images]
    positions = np.asarray(positions, dtype=np.int64)
    return Selection(positions, index[positions], np.asarray(labels, dtype=np.int64), scanned, correct)


def dataset_identity(dataset: Dataset) -> dict:
    """What identifies a dataset cheaply: its name, length, class count and a SHA-256 of its example indices.

    Recorded in a store's manifest and compared on resume; the attacked images themselves are proven by
    each batch file's image hash.
    """
    index = np.asarray(getattr(dataset, "index", np.arange(len(dataset))), dtype=np.int64)
    return {"name": str(getattr(dataset, "name", type(dataset).__name__)), "items": int(len(dataset)),
            "num_classes": getattr(dataset, "num_classes", None), "index_sha256": array_sha256([index])}


def load_images(dataset: Dataset, positions: Sequence[int]) -> torch.Tensor:
    """Stack the images at ``positions`` of ``dataset`` into a (B, C, H, W) tensor."""
    subset = Subset(dataset, [int(p) for p in positions])
    return torch.stack([subset[i][0] for i in range(len(subset))])


#: Image values (rows × C × H × W) per attack call when target offsets are batched: every CIFAR-10 offset of a
#: batch of 16 (144 rows) in one call; ImageNet-size images stay one offset per call (memory).
MAX_CALL_ELEMENTS = 2**19


def offsets_per_call(spec, image_values: int, images: int, max_call_elements: int = MAX_CALL_ELEMENTS) -> int:
    """Target offsets one attack call takes for a batch of ``images`` images of ``image_values`` values each: as
    many as keep the call within ``max_call_elements`` values for an attack with independent rows (at least
    one), one otherwise."""
    return max(1, max_call_elements // image_values // images) if spec.independent_rows else 1


def attack_batch(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    attack: str = "gse",
    targeted: bool = False,
    offsets: Sequence[int] | None = None,
    targets: torch.Tensor | None = None,
    bounds: tuple[float, float] = (0.0, 1.0),
    preset: str | None = None,
    options: dict | None = None,
    seed: int = 0,
    batch_index: int = 0,
    num_classes: int | None = None,
    progress: bool = False,
    execution_options: ExecutionOptions | None = None,
    max_call_elements: int = MAX_CALL_ELEMENTS,
    info: dict | None = None,
) -> tuple[dict[str, np.ndarray], torch.Tensor]:
    """Attack one batch as the protocol prescribes and measure every resulting example.

    Args:
        images: (B, C, H, W) clean images in ``bounds``; labels: (B,) true labels.
        targeted: attack every target; targets come from ``targets`` ((B,) explicit classes, which must
            differ from ``labels``) or from ``offsets`` (default: the paper's offsets for ``num_classes``).
        num_classes: needed for offsets; read from the model's output when None.
        progress: forward to the attack's own progress bar.
        execution_options: how the model passes run (:mod:`gse_explain.attacks.execution`; None: the enclosing
            ``execution(...)`` block's).
        max_call_elements: attacks with independent rows get several offsets per call, as many as keep the
            call's images within this many values (at least one offset per call).
        info: if a dict, ``info["compile_seconds"]`` is increased by the calls' compile time and
            ``info["attack_calls"]`` by their number.

    Returns:
        ``(records, adversarials)``: records is a dict of equally long numpy columns, one row per
        (image, target) example — ``image`` (row in ``images``), ``label``, ``target`` (-1 untargeted),
        ``offset`` (-1 for untargeted or explicit targets), ``success``, the :data:`METRICS` columns,
        ``time`` (seconds, amortised over the call's rows, compile time excluded) and ``model_passes`` (per
        example, amortised); adversarials is the (rows, C, H, W) tensor in the same row order (offset-major).
    """
    check_attack_inputs(images, labels, bounds)
    spec = get_attack(attack)
    calls = _planned_calls(model, images, labels, targeted, offsets, targets, num_classes)
    per_call = offsets_per_call(spec, images[0].numel(), images.shape[0], max_call_elements)
    columns: dict[str, list] = {}
    adversarials = []
    with run_with(execution_options or current_execution()):
        for first in range(0, len(calls), per_call):
            generator = torch.Generator().manual_seed(call_seed(seed, batch_index, first))
            run = dict(targeted=targeted, bounds=bounds, preset=preset, generator=generator, progress=progress, **(options or {}))
            adversarial = _attack_offsets(spec, model, images, labels, calls[first : first + per_call], run, columns, info)
            adversarials.append(adversarial)
    records = {k: np.concatenate(v) for k, v in columns.items()}
    records["success"] = records["success"].astype(bool)
    for key in ("image", "label", "target", "offset"):
        records[key] = records[key].astype(np.int64)
    return records, torch.cat(adversarials)


def _attack_offsets(spec, model, images, labels, group, run: dict, columns: dict, info) -> torch.Tensor:
    """One attack call on the batch repeated once per ``(offset, labels or targets)`` of ``group``; appends the
    rows' record columns to ``columns`` and returns the (rows, C, H, W) adversarials on the CPU."""
    goal = torch.cat([g for _, g in group])
    start = time.perf_counter()
    result = spec.function(model, images.repeat(len(group), 1, 1, 1), goal, **run)
    elapsed = time.perf_counter() - start - result.compile_seconds
    if info is not None:
        info["compile_seconds"] = info.get("compile_seconds", 0.0) + result.compile_seconds
        info["attack_calls"] = info.get("attack_calls", 0) + 1
    rows, batch = goal.shape[0], images.shape[0]
    for k, (offset, target) in enumerate(group):
        part = slice(k * batch, (k + 1) * batch)
        values = _call_columns(images, labels, target, offset, run["targeted"], result.success[part],
                               result.adversarials[part], elapsed / rows, result.model_passes / rows, run["bounds"])
        for name, column in values.items():
            columns.setdefault(name, []).append(column)
    return result.adversarials.detach().cpu()


def _planned_calls(model, images, labels, targeted, offsets, targets, num_classes) -> list[tuple[int, torch.Tensor]]:
    """``(offset, labels or targets)`` per attack call: one untargeted call, one call with explicit targets,
    or one call per label offset (target = (label + offset) mod K)."""
    if not targeted:
        if targets is not None or offsets is not None:
            raise ValueError("targets/offsets are only used with targeted=True")
        return [(-1, labels)]
    if targets is not None:
        if targets.shape != labels.shape:
            raise ValueError(f"targets must have the shape of labels {tuple(labels.shape)}; got {tuple(targets.shape)}")
        if (targets == labels).any():
            bad = int(torch.nonzero(targets == labels)[0, 0])
            raise ValueError(
                f"targeted attack: target equals the true label for image {bad} (class {int(labels[bad])}); "
                "a target must be a different class"
            )
        return [(-1, targets)]
    if num_classes is None:
        with frozen_model(model), torch.no_grad():
            num_classes = model(images[:1].to(model_device(model, images.device))).shape[1]
    if offsets is None:
        offsets = default_target_offsets(num_classes)
    offsets = [int(offset) for offset in offsets]
    for offset in offsets:
        if not 0 < offset % num_classes:
            raise ValueError(f"target offset {offset} maps labels onto themselves; offsets must not be multiples of {num_classes}")
    repeated = sorted({o % num_classes for o in offsets if [p % num_classes for p in offsets].count(o % num_classes) > 1})
    if repeated:
        raise ValueError(f"target offsets {offsets} give the same target twice (offsets ≡ {repeated} mod {num_classes}): "
                         "every (image, target) pair would be attacked and counted twice")
    return [(offset, (labels + offset) % num_classes) for offset in offsets]


def _call_columns(images, labels, goal, offset, targeted, success, adversarials, seconds, passes, bounds) -> dict[str, np.ndarray]:
    """The record columns of one target's rows (one per image of the batch); ``seconds`` and ``passes`` per example."""
    batch = images.shape[0]
    return {
        "image": np.arange(batch),
        "label": labels.cpu().numpy(),
        "target": goal.cpu().numpy() if targeted else np.full(batch, -1),
        "offset": np.full(batch, offset),
        "success": success.cpu().numpy(),
        "time": np.full(batch, seconds),
        "model_passes": np.full(batch, passes),
        **example_metrics(images, adversarials, bounds),
    }
