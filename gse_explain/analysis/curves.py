"""Interpretability-score curves of stored runs (the paper's Fig. 2): IS_P per example, then per attack.

Which rows count (spec §C.7): every stored (image, target) row with ‖δ‖₂ > 0, **including unsuccessful
ones**, as the reference code does (``successful_only=False``, the default here so that numbers compare
with the paper); ``successful_only=True`` keeps successful rows only. Rows with δ = 0 have no IS (0/0).
The reference code also skips offsets of batches without any success; that is an artefact of its batching
and is not reproduced (each row stands on its own).

ASM is computed on the **clean** image with the row's true label y and target t, per sample
(:func:`~gse_explain.analysis.adversarial_saliency_map`).

Other explanations (``saliency=``): any registered method (:mod:`gse_explain.analysis.explanations`: the ASM,
captum's attributions, the CAM family) or a callable ``(model, images, classes) -> map``, computed on the
clean image for the same class t (the stored target, or the adversarial prediction with
``targets="predicted"``), ``saliency_settings=`` overriding the method's defaults, ``saliency_seed=`` for the noise
methods; the IS is then ‖B_P ⊙ δ‖₂ / ‖δ‖₂ with B_P the entries above that map's P-th percentile. Maps are
cached on disk per (store, model, method, settings) (``cache=``; see :mod:`.explanations.cache`).

Untargeted runs have no target, and the paper only evaluates targeted runs. ``targets="stored"`` (default)
therefore requires a targeted run and raises for an untargeted one; ``targets="predicted"`` uses the class
the model predicts for the adversarial image as t (for a failed untargeted row that is the true label).
"""

from __future__ import annotations

import pandas as pd
import torch

from ..models.inference import predict
from ._inputs import percentile_list
from .runs import (
    base_columns,
    carry_coverage,
    check_coverage,
    column_tensor,
    long_format,
    named_runs,
    open_run,
    run_label,
    run_model,
    weights_for,
    with_coverage,
)
from .aggregate import summarize_groups
from .explanations.registry import resolve_explanation
from .explanations.stored import stored_maps
from .interpretability import DEFAULT_PERCENTILES, interpretability_score

__all__ = ["TARGET_SOURCES", "aggregate_curves", "interpretability_curves", "interpretability_table"]

TARGET_SOURCES = ("stored", "predicted")


def _row_targets(run, rows, model, targets: str) -> torch.Tensor:
    if targets == "predicted":
        return predict(model, rows.adversarial)
    return column_tensor(rows.records, "target")


def interpretability_table(
    run,
    model=None,
    *,
    percentiles=DEFAULT_PERCENTILES,
    successful_only: bool = False,
    targets: str = "stored",
    sign_condition: bool = False,
    attack: str | None = None,
    device="cpu",
    batch_size: int = 64,
    weights=None,
    allow_incomplete: bool = False,
    saliency="asm", saliency_settings=None, saliency_seed: int = 0, cache=True,
) -> pd.DataFrame:
    """IS of every counted row of one stored run, in tidy (long) form.

    Args:
        run: a result store path or a :class:`~gse_explain.evaluation.RunResults`.
        model: the classifier the run attacked (taking the stored images, [0, 1] for CLI runs); None
            rebuilds it from the run's configuration (weights file checked against the stored SHA-256).
        percentiles: P values in (0, 100] (default 50, 60, 70, 80, 90).
        successful_only: keep only successful rows (default False: all rows with ‖δ‖₂ > 0, as the paper).
        targets: ``"stored"`` (the run's targets; targeted runs only) or ``"predicted"`` (argmax f(x_adv)).
        sign_condition: apply Papernot's sign condition to the ASM (off, as in the paper); ``saliency="asm"`` only.
        attack: name in the ``attack`` column (default: the run's attack name).
        device: where a rebuilt model runs (a given model stays where it is).
        batch_size: rows per model call of the explanation (noise methods: one row and its noisy copies per call).
        weights: path of the run's weights file when it has moved since the run (accepted when its SHA-256
            matches the store's); only with ``model=None``.
        allow_incomplete: analyse a store whose run has not written all its batches (an error otherwise);
            see :mod:`gse_explain.analysis.runs` for what the table then records.
        saliency: ``"asm"`` (default, the paper's), another registered method name (see
            :func:`~gse_explain.analysis.list_explanations`) or a callable ``(model, images, classes) -> map``.
        saliency_settings: overrides of the method's settings (e.g. ``{"steps": 16}``); saliency_seed: for noise methods.
        cache: True (``<store>/explanations/``), False, or a folder for the maps (see :mod:`.explanations.cache`).

    Returns:
        One row per (example row, percentile): ``attack``, ``batch``, ``image``, ``example``, ``label``,
        ``target`` (the t used), ``offset``, ``success``, ``l2`` (stored, [-1, 1] scale), ``percentile``,
        ``interpretability_score`` (in [0, 1]); for an incomplete store also ``stored_images`` and
        ``selected_images``. ``attrs["coverage"]`` = ``{attack name: coverage}`` (always).
    """
    run, values = open_run(run), percentile_list(percentiles)
    _check_targets(run, targets)
    name = run_label(run) if attack is None else attack
    coverage = check_coverage(run, allow_incomplete)
    method = _method(saliency, saliency_settings, sign_condition)
    model = run_model(run, model, device, weights=weights_for(weights, name, model))
    parts = []
    maps = stored_maps(run, model, method, classes_of=lambda rows: _row_targets(run, rows, model, targets),
                       rows_key={"targets": targets}, successful_only=successful_only, allow_incomplete=allow_incomplete,
                       batch_size=batch_size, seed=saliency_seed, cache=cache)
    for rows, row_targets, saliency_maps in maps:
        scores = interpretability_score(saliency_maps, rows.delta, values)
        base = base_columns(rows.records, name)
        base["target"] = row_targets.numpy()
        parts.append(long_format(base, "percentile", values, "interpretability_score", scores.cpu().numpy()))
    empty = pd.DataFrame(columns=[*base_columns(run.records.head(0), name).columns, "percentile", "interpretability_score"])
    return with_coverage(pd.concat(parts, ignore_index=True) if parts else empty, {name: coverage})


def _method(saliency, settings, sign_condition: bool):
    """The resolved explanation; ``sign_condition`` is the ASM's setting of that name."""
    if sign_condition:
        if saliency != "asm":
            raise ValueError(f"sign_condition=True is a setting of the ASM; saliency={saliency!r} does not have it")
        settings = {**(settings or {}), "sign_condition": True}
    return resolve_explanation(saliency, settings)


def _check_targets(run, targets: str) -> None:
    if targets not in TARGET_SOURCES:
        raise ValueError(f"targets must be one of {TARGET_SOURCES}; got {targets!r}")
    if targets == "stored" and not run.config.get("targeted"):
        raise ValueError(
            f"the run in {run.store.path} is untargeted, so its rows have no target class; the paper computes IS on "
            "targeted runs only. Pass targets='predicted' to use the adversarial image's predicted class instead"
        )


def aggregate_curves(
    table: pd.DataFrame,
    *,
    x: str = "percentile",
    value: str = "interpretability_score",
    level: float = 0.95,
    band: str = "t",
    n_boot: int = 2000,
    seed: int = 0,
    by_image: bool = False,
) -> pd.DataFrame:
    """Mean curve and confidence band per attack from a tidy table (e.g. :func:`interpretability_table`).

    The rows of one image (its targets) are not independent samples. ``by_image=False`` (default) treats
    every row as one sample, as the paper's mean does; ``by_image=True`` first averages each image's rows
    (per attack, batch, image and x), so ``n`` counts images and the band reflects image-to-image spread.

    Returns:
        One row per (attack, x): ``attack``, ``x``, ``n`` (rows), ``mean``, ``std``, ``band_low``,
        ``band_high``, ``level``, ``band`` (``"t"``: Student-t interval of the mean; ``"bootstrap"``:
        percentile bootstrap with ``n_boot`` resamples and ``seed``; see :mod:`.aggregate`). A table of
        incomplete runs passes its ``stored_images`` / ``selected_images`` columns (also read back from a
        CSV) and its ``attrs["coverage"]`` on (see :mod:`gse_explain.analysis.runs`).
    """
    source = table
    if by_image:
        table = table.groupby(["attack", "batch", "image", x], sort=False, as_index=False)[value].mean()
    curves = summarize_groups(table, ["attack", x], value, level=level, method=band, n_boot=n_boot, seed=seed)
    return carry_coverage(source, curves)


def interpretability_curves(
    runs,
    model=None,
    *,
    percentiles=DEFAULT_PERCENTILES,
    successful_only: bool = False,
    targets: str = "stored",
    sign_condition: bool = False,
    level: float = 0.95,
    band: str = "t",
    n_boot: int = 2000,
    seed: int = 0,
    device="cpu",
    batch_size: int = 64,
    by_image: bool = False,
    weights=None,
    allow_incomplete: bool = False,
    saliency="asm",
    saliency_settings=None,
    saliency_seed: int = 0,
    cache=True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """IS curves of several stored runs (one per attack): ``(per_example_table, curves)``.

    Args:
        runs: a mapping ``{attack name: store path or RunResults}`` or a sequence of them (named by their
            attack); a single run is accepted too.
        model: the model all runs attacked, or None to rebuild each run's own model from its configuration.
        weights: with ``model=None``, the weights file of runs whose file has moved: one path for every run,
            or a mapping ``{run name: path}`` (runs left out use their stored path).
        allow_incomplete: analyse stores whose run has not written all its batches (an error otherwise; all
            stores are checked before any is analysed); both tables then carry ``stored_images`` and
            ``selected_images`` columns (see :mod:`gse_explain.analysis.runs`).
        saliency, saliency_settings, saliency_seed, cache: the explanation (default ``"asm"``), see :func:`interpretability_table`.
        Other arguments: see :func:`interpretability_table` and :func:`aggregate_curves`.

    Returns:
        The concatenated :func:`interpretability_table` of all runs and its :func:`aggregate_curves`, each
        with ``attrs["coverage"]`` = ``{run name: coverage}``. Write either with
        :func:`~gse_explain.analysis.write_csv`.
    """
    named = named_runs(runs)
    coverage = {name: check_coverage(run, allow_incomplete) for name, run in named.items()}
    _method(saliency, saliency_settings, sign_condition)  # a bad method or setting fails before any map is computed
    models: dict = {}
    tables = [
        interpretability_table(run, run_model(run, model, device, models, weights=weights_for(weights, name, model)),
                               percentiles=percentiles, successful_only=successful_only, targets=targets,
                               sign_condition=sign_condition, attack=name, batch_size=batch_size,
                               allow_incomplete=allow_incomplete, saliency=saliency, saliency_settings=saliency_settings,
                               saliency_seed=saliency_seed, cache=cache)
        for name, run in named.items()
    ]
    table = with_coverage(pd.concat(tables, ignore_index=True), coverage)
    return table, aggregate_curves(table, level=level, band=band, n_boot=n_boot, seed=seed, by_image=by_image)
