"""The paper's figures drawn from result stores.

- :func:`figure_gse_examples` (Fig. 1): GSE adversarial examples in a grid — original, adversarial and
  perturbation per column, labels in the titles.
- :func:`figure_interpretability` (Figs. 2 and 5): IS versus percentile per attack (targeted runs), with
  the per-example table and the curves returned for CSV export.
- :func:`figure_attack_examples` (Figs. 3 and 4): one row per attack on the same image (and target):
  image, adversarial image, perturbation, cluster labels and CAM overlay (perturbed pixels outlined),
  true and predicted labels in the titles.

Every function takes stores (paths or :class:`~gse_explain.evaluation.RunResults`) and an optional model
(default: rebuilt from the store's configuration) and returns the figure with what it plotted. Draw inside
:func:`~gse_explain.plotting.style.paper_style` for the paper's look (the CLI does).
"""

from __future__ import annotations

import textwrap
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from ..analysis import class_activation_maps, interpretability_curves
from ..analysis.runs import iter_row_batches, named_runs, open_run, run_model
from ..data import class_names
from ..distances import changed_pixel_mask
from ..models.inference import predict
from ..plotting import plot_examples, plot_is_curves, show_image, show_perturbation
from ..plotting.style import attack_color, attack_label

__all__ = ["figure_attack_examples", "figure_gse_examples", "figure_interpretability", "pick_examples"]

_KEY = ["example", "offset"]


def _label_names(model, images: torch.Tensor, names: Sequence[str] | None) -> Sequence[str]:
    if names is not None:
        return names
    with torch.no_grad():
        was_training = model.training
        model.eval()
        classes = model(images[:1]).shape[1]
        model.train(was_training)
    return class_names(classes)


def _rows(run, keys: pd.DataFrame | None = None, successful_only: bool = True):
    """(records, clean (N, C, H, W), adversarial (N, C, H, W)) of the stored rows with ‖δ‖ > 0 (the rows the
    analysis layer counts), in store order, restricted to ``keys`` (example, offset) when given."""
    run = open_run(run)
    wanted = None if keys is None else set(map(tuple, keys[_KEY].to_numpy()))
    records, clean, adversarial = [], [], []
    for rows in iter_row_batches(run, successful_only=successful_only):
        keep = np.arange(len(rows.records))
        if wanted is not None:
            keep = keep[[key in wanted for key in map(tuple, rows.records[_KEY].to_numpy())]]
        records.append(rows.records.iloc[keep])
        clean.append(rows.clean[keep])
        adversarial.append(rows.adversarial[keep])
    if not records or not sum(map(len, records)):
        return pd.DataFrame(columns=run.records.columns), None, None
    return pd.concat(records, ignore_index=True), torch.cat(clean), torch.cat(adversarial)


def pick_examples(runs: Mapping, count: int = 1) -> pd.DataFrame:
    """The first ``count`` (example, offset) keys every run attacked successfully; where fewer exist, keys
    attacked by every run (successful or not) fill up. Columns ``example``, ``offset``."""
    runs = {name: open_run(run) for name, run in runs.items()}
    frames = [run.records for run in runs.values()]
    def common(success: bool) -> list[tuple[int, int]]:
        sets = [set(map(tuple, (f[f["success"].astype(bool)] if success else f)[_KEY].to_numpy())) for f in frames]
        order = list(dict.fromkeys(map(tuple, frames[0][_KEY].to_numpy())))
        return [k for k in order if all(k in s for s in sets)]
    chosen = common(True)[:count]
    chosen += [k for k in common(False) if k not in chosen][: count - len(chosen)]
    return pd.DataFrame(chosen, columns=_KEY, dtype=np.int64)


def figure_gse_examples(runs, model=None, *, max_examples: int = 6, names: Sequence[str] | None = None,
                        device="cpu", panel_size: float = 1.6):
    """Figure 1: successful GSE examples, one per column: original (true label), adversarial (predicted
    label) and the perturbation (mid-grey = unchanged; its few coloured regions are the groups).

    Args:
        runs: one GSE store/run or several (e.g. untargeted and targeted); examples are taken in order,
            at most one per image.
        model: the attacked model (default: rebuilt from the first store), used for the predicted labels.
        max_examples: number of columns.
        names: class names (default: CIFAR-10 / ImageNet names by the model's class count).

    Returns:
        ``(fig, axes)`` with ``axes`` of shape (3, columns).
    """
    if max_examples < 1:
        raise ValueError(f"max_examples must be ≥ 1; got {max_examples}")
    named = named_runs(runs)
    records, clean, adversarial, seen = [], [], [], set()
    for run in named.values():
        batch_records, batch_clean, batch_adv = _rows(run)
        for index, record in batch_records.iterrows():
            if int(record["example"]) in seen or len(records) >= max_examples:
                continue
            seen.add(int(record["example"]))
            records.append(record)
            clean.append(batch_clean[index])
            adversarial.append(batch_adv[index])
    if not records:
        raise ValueError(f"no successful example with a non-zero perturbation in {[str(r.store.path) for r in named.values()]}")
    model = run_model(next(iter(named.values())), model, device)
    clean, adversarial = torch.stack(clean), torch.stack(adversarial)
    predicted = predict(model, adversarial)
    names = _label_names(model, clean, names)
    columns = len(records)
    fig, axes = plt.subplots(3, columns, figsize=(panel_size * max(columns, 2), panel_size * 3.3), squeeze=False,
                             layout="constrained")
    for column, record in enumerate(records):
        show_image(clean[column], axes[0, column], _short(names[int(record["label"])]))
        show_image(adversarial[column], axes[1, column], _short(names[int(predicted[column])]))
        show_perturbation(adversarial[column] - clean[column], axes[2, column], f"{int(record['acp'])} pixels")
    for row, label in enumerate(("original", "GSE adversarial", "perturbation")):
        axes[row, 0].set_ylabel(label)
    return fig, axes


def _short(name: str, width: int = 18) -> str:
    name = name.split(",")[0]
    return name if len(name) <= width else name[: width - 1] + "…"


def _wrap(*parts: str, width: int = 17) -> str:
    """``parts`` joined into a title of lines of at most ``width`` characters: on one line if they fit, else
    one part per line (each wrapped), so that a title stays inside its panel (1.6 in at 8 pt holds about
    25 characters; the margin keeps neighbours' titles apart)."""
    parts = [p for p in parts if p]
    joined = " ".join(parts)
    if len(joined) <= width:
        return joined
    return "\n".join(textwrap.fill(p, width, break_long_words=True, break_on_hyphens=False) for p in parts)


def figure_interpretability(runs, model=None, *, title: str | None = None, ax=None, device="cpu", **curve_options):
    """Figures 2 and 5: IS versus percentile for targeted runs ``{attack: store}``, with a 95 % band.

    Attacks without a single perturbed example (δ = 0 everywhere: every pair failed) have no curve; the
    figure names them in its lower right corner.

    Returns:
        ``(fig, ax, table, curves)``: the per-example IS table and the plotted curves (write both with
        :func:`~gse_explain.analysis.write_csv`).
    """
    named = named_runs(runs)
    table, curves = interpretability_curves(named, model, device=device, **curve_options)
    fig, ax = plot_is_curves(curves, ax, title=title)
    absent = [attack_label(name) for name in named if name not in set(curves["attack"])]
    if absent:  # e.g. an attack that failed on every pair returns δ = 0, which has no score
        ax.text(0.98, 0.98, "no perturbed examples: " + ", ".join(absent), transform=ax.transAxes, ha="right",
                va="top", fontsize=7, color="0.3")  # top right: the legend sits lower left, the curves below 1
    return fig, ax, table, curves


def figure_attack_examples(runs, model=None, *, num_examples: int = 1, names: Sequence[str] | None = None,
                           device="cpu", panel_size: float = 1.6):
    """Figures 3 (untargeted) and 4 (targeted): the same image (and target) attacked by every run.

    Rows: one block per example (image, or image-target pair), one row per attack in it; columns: original (true label), adversarial (predicted label), perturbation,
    cluster labels (4-connected) and the CAM of the clean image for its true label with the perturbed
    pixels outlined in white. Titles are wrapped to their panel; the perturbation panel states its display
    scale ("δ ×k", see :func:`~gse_explain.plotting.show_perturbation`).

    Args:
        runs: ``{attack name: store}`` or stores named by their attack; all on the same model and data.
        num_examples: images (or image-target pairs) per attack, picked by :func:`pick_examples`.

    Returns:
        ``(fig, axes, keys)``: axes (rows, 5) and the (example, offset) keys shown.
    """
    named = named_runs(runs)
    keys = pick_examples(named, num_examples)
    if keys.empty:
        raise ValueError("the runs share no attacked example; they must come from the same model and images")
    model = run_model(next(iter(named.values())), model, device)
    stored = {name: _rows(run, keys, successful_only=False) for name, run in named.items()}
    rows = []  # one block per example, one row per attack in it
    for _, key in keys.iterrows():
        for name, (records, clean, adversarial) in stored.items():
            match = records.index[(records["example"] == key["example"]) & (records["offset"] == key["offset"])]
            if len(match):
                rows.append((name, records.loc[match[0]], clean[match[0]], adversarial[match[0]]))
    if not rows:
        raise ValueError("none of the chosen examples has a non-zero perturbation in any run")
    clean = torch.stack([r[2] for r in rows])
    adversarial = torch.stack([r[3] for r in rows])
    labels = torch.tensor([int(r[1]["label"]) for r in rows])
    cams = class_activation_maps(model, clean, labels)
    predicted = predict(model, adversarial)
    names = _label_names(model, clean, names)
    fig, grid = plt.subplots(len(rows), 5, figsize=(panel_size * 5, panel_size * 1.25 * len(rows)), squeeze=False,
                             layout="constrained")
    fig, axes = plot_examples(clean, adversarial, cams, panels=("original", "adversarial", "perturbation", "clusters", "cam"),
                              row_labels=[attack_label(r[0]) for r in rows], axes=grid)
    for index, (name, record, x, x_adv) in enumerate(rows):
        _titles(axes[index], record, names, int(predicted[index]), first=index == 0)
        mask = changed_pixel_mask((x_adv - x)[None])[0].numpy().astype(float)
        if mask.any():
            axes[index, 4].contour(mask, levels=[0.5], colors="white", linewidths=0.6)
        axes[index, 0].yaxis.label.set_color(attack_color(name))
    absent = [attack_label(name) for name in named if name not in {r[0] for r in rows}]
    if absent:  # an attack that failed returns δ = 0: nothing to show, but say so
        fig.supxlabel("not shown (δ = 0, the attack failed on these examples): " + ", ".join(absent), fontsize=8)
    return fig, axes, keys


def _titles(row_axes, record, names: Sequence[str], predicted: int, first: bool) -> None:
    """Titles of one row of Figures 3/4, wrapped to their panel: true class, prediction (and whether the
    attack failed), δ's pixel count (and target); column names on the first row only."""
    target = int(record["target"])
    goal = f"(target {_short(names[target], 14)})" if target >= 0 else ""
    verdict = "" if bool(record["success"]) else "(failed)"
    texts = [_wrap(f"true: {_short(names[int(record['label'])])}"), _wrap(f"pred: {_short(names[predicted])}", verdict),
             _wrap(f"δ: {int(record['acp'])} px", goal),  # the stored ACP: the changed-pixel count
             "clusters" if first else "", "CAM (true class)" if first else ""]
    for ax, text in zip(row_axes, texts):
        ax.set_title(text, fontsize=8)
