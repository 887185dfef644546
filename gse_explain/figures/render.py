"""Draw a study's figures and tables from its (complete) stores into one folder.

:func:`render_study` draws the registered figures (:mod:`.registry`) the study asks for, in drawing order.
The paper's outputs (:mod:`.paper_outputs`) write, into ``out_dir`` (each figure as PNG and PDF, written
atomically; they are regenerated from the stores, so existing files are replaced):

- ``figure1_gse_examples``: GSE adversarial examples (Fig. 1);
- ``figure2_interpretability`` + ``figure2_is_curves.csv`` / ``figure2_is_per_example.csv`` (Fig. 2);
- ``figure3_untargeted_examples``, ``figure4_targeted_examples`` (Figs. 3 and 4);
- ``figure5_interpretability_second_model`` + its two CSVs (Fig. 5, when the study has a second model);
- ``table1`` … ``table4`` as ``.md`` and ``.tex``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Mapping, Sequence, TextIO

import matplotlib

from ..plotting.style import paper_style
from .registry import FigureContext, FigureSpec, get_figure, list_figures

__all__ = ["FIGURES", "render_study", "wanted_figures"]

#: The names registered when this module was imported (the paper's outputs); use :func:`list_figures` for
#: the registry as it is now.
FIGURES = list_figures()


def wanted_figures(study, only: Sequence[str] | None = None, log: TextIO | None = None) -> list[str]:
    """The registered figures ``study`` asks for (``study.figures``; absent or None: all), restricted to
    ``only`` (None or empty: no restriction), in drawing order."""
    log = sys.stderr if log is None else log
    registered = list_figures()
    for source, names in (("only", only), (f"study {study.name!r} figures", getattr(study, "figures", None))):
        unknown = [name for name in names or () if name not in registered]
        if unknown:
            raise ValueError(f"{source} names unknown figures {unknown}; registered: {', '.join(registered)}")
    asked = getattr(study, "figures", None)
    chosen = [name for name in registered if asked is None or name in asked]
    if only:
        for name in only:
            if name not in chosen:  # registered, but this study does not draw it
                print(f"skipping {name}: not one of study {study.name!r}'s figures ({', '.join(chosen)})", file=log)
        chosen = [name for name in chosen if name in only]
    return chosen


def _draw(spec: FigureSpec, context: FigureContext) -> list[Path]:
    start = time.perf_counter()
    print(f"drawing {spec.name}: {spec.description} ...", file=context.log, flush=True)
    files = spec.draw(context)
    if not isinstance(files, (list, tuple)) or not all(isinstance(f, Path) for f in files):
        raise TypeError(f"figure {spec.name!r} must return the list of Paths it wrote; got {files!r}")
    print(f"  {spec.name} done in {time.perf_counter() - start:.1f} s", file=context.log, flush=True)
    return list(files)


def render_study(study, paths: Mapping[str, Path], out_dir: Path, *, only: Sequence[str] | None = None,
                 device="cpu", progress: bool = True, log=None) -> list[Path]:
    """Draw the figures of ``study`` (``study.figures``; absent or None: every registered figure), or of
    those only the ones in ``only``, from the stores ``paths`` ({run key: store path}) into ``out_dir``.

    Args:
        study: a :class:`~.studies.Study` (``name``, ``runs``, ``main_label``, ``second_label``, ``notes``
            and optionally ``figures``).
        only: figure names (see :func:`~.registry.list_figures`); ValueError for names not registered.
        device: where saliency maps and CAMs are computed.
        progress: accepted for the CLI; the per-figure lines below are printed either way.
        log: stream for ``drawing NAME: ...`` / ``NAME done in X s`` / ``skipped: ...`` lines (stderr).

    Returns:
        The files written, in drawing order.
    """
    log = sys.stderr if log is None else log
    names = wanted_figures(study, only, log)  # before loading: a typo in only= fails fast
    backend = matplotlib.get_backend().lower()
    if backend not in ("agg", "pdf", "svg") and "inline" not in backend:
        import matplotlib.pyplot as plt

        plt.switch_backend("Agg")  # the CLI needs no window
    context = FigureContext.load(study, paths, out_dir, device=device, log=log)
    written: list[Path] = []
    with paper_style():
        for name in names:
            written.extend(_draw(get_figure(name), context))
    return written
