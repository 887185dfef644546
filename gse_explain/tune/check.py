"""Check presets on images the search did not see: run each preset on the same base run and table them."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Iterable, Mapping

from ..evaluation.config import RunConfig
from ..evaluation.run import run
from ..evaluation.summary import summarize
from ..evaluation.tables import targeted_table, untargeted_table

__all__ = ["compare_presets"]


def compare_presets(config: RunConfig, presets: Mapping[str, object], output, *, exclude_examples: Iterable[int] = (),
                    average: str = "successful", progress: bool = False, log=None) -> tuple[str, dict]:
    """Run ``config`` once per preset (name or preset file) into ``output/<label>`` and table the results.

    Args:
        config: the check run (its ``preset`` is replaced by each of ``presets``).
        presets: label -> preset name or preset file, e.g. ``{"paper": "cifar10", "tuned": "presets/x.json"}``.
        output: folder of the check stores (each resumable like any run).
        exclude_examples: dataset indices left out of the summaries (e.g. the tuning set, when the check run
            selects from the same images).

    Returns:
        ``(markdown table, {label: summary})``, the table in the paper's Table 2 (untargeted) or Table 3 layout.
    """
    if not isinstance(config, RunConfig):
        raise TypeError(f"compare_presets() takes a RunConfig; got {type(config).__name__}")
    if not isinstance(presets, Mapping) or not presets:
        raise ValueError("presets must map labels to preset names or files, e.g. {'paper': 'cifar10', 'tuned': 'x.json'}")
    configs = {label: config.replace(preset=str(preset) if isinstance(preset, Path) else preset) for label, preset in presets.items()}
    excluded = {int(e) for e in exclude_examples}
    summaries = {}
    for label, preset_config in configs.items():
        folder = Path(output) / re.sub(r"[^A-Za-z0-9_.+-]", "_", label)
        records = run(preset_config, folder, progress=progress, log=sys.stderr if log is None else log).records
        records = records[~records["example"].isin(excluded)]
        summaries[label] = summarize(records, config.targeted, average)
    table = targeted_table(summaries) if config.targeted else untargeted_table(summaries)
    return table, summaries
