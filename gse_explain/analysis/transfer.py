"""Transferability (the paper's Tab. 8): adversarial examples stored for one (source) model, classified by
other (target) models.

Every model of ``gse_explain`` takes [0, 1] images (its own normalisation inside, e.g. [-1, 1] for the
authors' ResNet20, ImageNet mean/std for the akamaster ResNets), and every store holds its clean and
adversarial images in [0, 1] (the run's ``bounds``), so a stored adversarial image is given to each target
as it is, in that target's own input convention.

Semantics, per (attack, source store, target model), over the store's rows (one per image, or per
image-target pair for a targeted run); ``label`` is the row's label (the dataset's, or the source model's
prediction for datasets without labels):

- ``fooled``: the target's prediction on the adversarial image is not ``label`` (untargeted), or is the
  row's ``target`` (targeted);
- ``asr``: the share of the source's *successful* adversarial examples that fool the target (the headline
  number; 1 on the diagonal, where target = source, up to numerical ties);
- ``asr_all``: the share of *all* the source's rows that fool the target (failed source attacks count as
  not transferred unless the target is fooled anyway);
- ``clean_accuracy``: the share of the rows' clean images the target classifies as ``label``;
- ``asr_clean_correct``: ``asr`` restricted to the rows whose clean image the target classifies correctly
  (transfer proper: the target was right before the perturbation); NaN where there are none.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import pandas as pd
import torch

from ..evaluation.tables import latex_escape
from ..models.inference import check_model, predict
from .runs import check_coverage, column_tensor, open_run

__all__ = ["TRANSFER_COLUMNS", "asr_matrix", "matrix_text", "transfer_matrix", "transfer_rates"]

#: The columns of :func:`transfer_rates` / :func:`transfer_matrix` (after ``attack`` and ``source``).
TRANSFER_COLUMNS = ["target", "targeted", "rows", "successful", "asr", "asr_all", "clean_accuracy", "clean_correct",
                    "asr_clean_correct"]


def _share(hits: np.ndarray, where: np.ndarray) -> float:
    return float(hits[where].mean()) if where.any() else math.nan


def _predictions(run, targets: Mapping[str, object], batch_size: int) -> tuple[dict, dict, pd.DataFrame]:
    """``({target: clean predictions}, {target: adversarial predictions}, records)`` over the store's rows in
    record order; each batch's images are read once and given to every target."""
    clean_out = {name: [] for name in targets}
    adv_out = {name: [] for name in targets}
    frames = []
    for batch in sorted(run.records["batch"].unique()):
        clean, adversarial, _ = run.images(int(batch))
        records = run.records[run.records["batch"] == batch].reset_index(drop=True)
        clean_rows = torch.from_numpy(clean)[column_tensor(records, "image")]
        adversarial = torch.from_numpy(adversarial)
        if adversarial.shape[0] != len(records):
            raise ValueError(f"batch {batch} of {run.store.path} holds {adversarial.shape[0]} adversarial images for "
                             f"{len(records)} records; the store is damaged: rerun that batch")
        for name, model in targets.items():
            clean_out[name].append(predict(model, clean_rows, batch_size).numpy())
            adv_out[name].append(predict(model, adversarial, batch_size).numpy())
        frames.append(records)
    records = pd.concat(frames, ignore_index=True)
    return ({n: np.concatenate(v) for n, v in clean_out.items()}, {n: np.concatenate(v) for n, v in adv_out.items()}, records)


def transfer_rates(run, targets: Mapping[str, object], *, batch_size: int = 128, allow_incomplete: bool = False) -> pd.DataFrame:
    """How the adversarial examples of one store fool each target model (see the module docstring).

    Args:
        run: a result store path or :class:`~gse_explain.evaluation.results.RunResults` (the source's run).
        targets: ``{name: model}``, each model taking (B, C, H, W) images in [0, 1] (the stores' box) and
            returning (B, K) logits over the store's classes; models are put in eval mode only while they
            predict (their mode and ``requires_grad`` flags are restored).
        batch_size: images per model call.
        allow_incomplete: evaluate a store that misses batches (ValueError otherwise).

    Returns:
        One row per target, columns :data:`TRANSFER_COLUMNS`: ``rows`` and ``successful`` are counts,
        ``clean_correct`` the rows whose clean image the target gets right; the rates are shares in [0, 1].
    """
    run = open_run(run)
    if not targets:
        raise ValueError("targets must name at least one model: {name: model}")
    for model in targets.values():
        check_model(model)
    check_coverage(run, allow_incomplete)
    targeted = bool(run.config.get("targeted"))
    clean_pred, adv_pred, records = _predictions(run, targets, batch_size)
    label = records["label"].to_numpy(dtype=np.int64)
    success = records["success"].to_numpy(dtype=bool)
    everything = np.ones(len(records), dtype=bool)
    rows = []
    for name in targets:
        goal = records["target"].to_numpy(dtype=np.int64) if targeted else label
        fooled = adv_pred[name] == goal if targeted else adv_pred[name] != goal
        correct = clean_pred[name] == label
        rows.append({"target": name, "targeted": targeted, "rows": len(records), "successful": int(success.sum()),
                     "asr": _share(fooled, success), "asr_all": _share(fooled, everything),
                     "clean_accuracy": _share(correct, everything), "clean_correct": int((correct & success).sum()),
                     "asr_clean_correct": _share(fooled, success & correct)})
    return pd.DataFrame(rows, columns=TRANSFER_COLUMNS)


def transfer_matrix(sources: Mapping[str, Mapping[str, object]], targets: Mapping[str, object], *, batch_size: int = 128,
                    allow_incomplete: bool = False) -> pd.DataFrame:
    """:func:`transfer_rates` of every source store on every target.

    Args:
        sources: ``{attack: {source model name: store}}``: each attack's runs, one per source model (a
            source named like a target is the diagonal).
        targets: ``{target model name: model}`` (see :func:`transfer_rates`).

    Returns:
        Long format: columns ``attack``, ``source`` then :data:`TRANSFER_COLUMNS`, one row per (attack,
        source, target), in the order given. :func:`asr_matrix` pivots one attack into a matrix.
    """
    if not sources:
        raise ValueError("sources must hold at least one attack: {attack: {source model: store}}")
    frames = []
    for attack, runs in sources.items():
        if not runs:
            raise ValueError(f"sources[{attack!r}] holds no stores; give {{source model: store}}")
        for source, run in runs.items():
            frame = transfer_rates(run, targets, batch_size=batch_size, allow_incomplete=allow_incomplete)
            frame.insert(0, "source", source)
            frame.insert(0, "attack", attack)
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def asr_matrix(table: pd.DataFrame, attack: str, value: str = "asr") -> pd.DataFrame:
    """One attack's ``value`` (default ``asr``) as a (source × target) matrix, rows and columns in table order."""
    if value not in TRANSFER_COLUMNS[2:]:
        raise ValueError(f"value must be one of {TRANSFER_COLUMNS[2:]}; got {value!r}")
    part = table[table["attack"] == attack]
    if part.empty:
        raise ValueError(f"no rows for attack {attack!r}; the table holds {sorted(table['attack'].unique())}")
    matrix = part.pivot(index="source", columns="target", values=value)
    return matrix.loc[list(dict.fromkeys(part["source"])), list(dict.fromkeys(part["target"]))]


def _percent(value: float) -> str:
    return "N/A" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


def matrix_text(table: pd.DataFrame, fmt: str = "markdown", value: str = "asr") -> str:
    """Every attack's (source × target) ``value`` matrix as one Markdown or LaTeX (booktabs) table: one row per
    (attack, source), one column per target, shares as percentages."""
    if fmt not in ("markdown", "latex"):
        raise ValueError(f"fmt must be 'markdown' or 'latex'; got {fmt!r}")
    targets = list(dict.fromkeys(table["target"]))
    header = ["attack", "source / target", *targets]
    rows = []
    for attack in dict.fromkeys(table["attack"]):
        matrix = asr_matrix(table, attack, value)
        rows += [[attack, source, *(_percent(matrix.loc[source, t]) if t in matrix.columns else "" for t in targets)]
                 for source in matrix.index]
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    lines = [r"\begin{tabular}{ll" + "r" * len(targets) + "}", r"\toprule",
             " & ".join(latex_escape(h) for h in header) + r" \\", r"\midrule"]
    lines += [" & ".join(latex_escape(c) for c in r) + r" \\" for r in rows]
    return "\n".join(lines + [r"\bottomrule", r"\end{tabular}"])
