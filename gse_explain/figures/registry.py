"""The outputs :func:`~gse_explain.figures.render.render_study` can draw, each one registered function.

A figure is a function ``draw(context) -> list[Path]`` that reads the study's loaded runs from a
:class:`FigureContext`, writes its files through the context (:meth:`FigureContext.save` for a matplotlib
figure as PNG + PDF, :meth:`FigureContext.write_csv`, :meth:`FigureContext.write_text`) and returns the
files it wrote. Register it under a name with :func:`register_figure`::

    @register_figure("figure9", "GSE perturbation sizes", order=90)
    def figure9(context):
        fig = ...
        return context.save(fig, "figure9_sizes")

``render_study`` draws the registered figures a study asks for in :func:`list_figures` order. The paper's
own outputs (``figure1`` … ``figure5``, ``tables``) are registered by :mod:`.paper_outputs`, which this
module imports, so they are always in the registry.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, TextIO

from ..analysis.export import write_csv
from ..analysis.runs import run_model
from ..evaluation.results import RunResults, load_results
from ..io import atomic_write_bytes
from ..plotting import save_figure
from .studies import FIGURE2_ATTACKS

__all__ = [
    "FigureContext",
    "FigureSpec",
    "get_figure",
    "list_figures",
    "register_figure",
    "registered_figure",
    "unregister_figure",
]


@dataclass
class FigureContext:
    """Everything a figure's ``draw`` function reads and writes through (one context per ``render_study``).

    Attributes:
        study: the study drawn (``name``, ``runs``, ``main_label``, ``second_label``, ``notes``).
        out_dir: the folder every file is written into.
        runs: ``{run key: RunResults}`` of every run of the study, in ``study.runs`` order.
        main_untargeted, main_targeted: ``{attack: RunResults}`` of the ``main`` group's untargeted /
            targeted runs, in the paper's legend order (:data:`~.studies.FIGURE2_ATTACKS` first, others after).
        second_targeted: ``{attack: RunResults}`` of the ``second`` group's targeted runs (same order).
        table1: ``{(attack, targeted): RunResults}`` of the ``table1`` group, in ``study.runs`` order.
        device: the device saliency maps and CAMs are computed on.
        log: where progress lines and ``skipped: ...`` notes are printed.
        written: every file written through this context so far, in order.
        models: the rebuilt models, keyed by (model, weights, normalization, device), shared by all figures
            so that each model is built once per render.
    """

    study: Any
    out_dir: Path
    runs: dict[str, RunResults] = field(default_factory=dict)
    main_untargeted: dict[str, RunResults] = field(default_factory=dict)
    main_targeted: dict[str, RunResults] = field(default_factory=dict)
    second_targeted: dict[str, RunResults] = field(default_factory=dict)
    table1: dict[tuple[str, bool], RunResults] = field(default_factory=dict)
    device: Any = "cpu"
    log: TextIO = field(default_factory=lambda: sys.stderr)
    written: list[Path] = field(default_factory=list)
    models: dict = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, study, paths: Mapping[str, Any], out_dir, *, device="cpu", log: TextIO | None = None) -> "FigureContext":
        """Open every run of ``study`` from ``paths`` ({run key: store path}) and group them by role."""
        runs = {spec.key: load_results(paths[spec.key]) for spec in study.runs}
        by_group: dict[tuple[str, bool], dict[str, RunResults]] = {}
        for spec in study.runs:
            by_group.setdefault((spec.group, bool(spec.targeted)), {})[spec.attack] = runs[spec.key]
        table1 = {(spec.attack, bool(spec.targeted)): runs[spec.key] for spec in study.runs if spec.group == "table1"}
        return cls(study=study, out_dir=Path(out_dir), runs=runs,
                   main_untargeted=_legend_order(by_group.get(("main", False), {})),
                   main_targeted=_legend_order(by_group.get(("main", True), {})),
                   second_targeted=_legend_order(by_group.get(("second", True), {})),
                   table1=table1, device=device, log=sys.stderr if log is None else log)

    def model_of(self, runs: Mapping[Any, RunResults]):
        """The model the first of ``runs`` attacked, rebuilt from its store's configuration (cached)."""
        if not runs:
            raise ValueError("model_of needs at least one run")
        return run_model(next(iter(runs.values())), None, self.device, self.models)

    def save(self, fig, stem: str) -> list[Path]:
        """Write ``fig`` as ``<out_dir>/<stem>.png`` and ``.pdf`` (replacing old files), close it, return both."""
        import matplotlib.pyplot as plt

        try:
            files = list(save_figure(fig, self.out_dir / stem))
        finally:
            plt.close(fig)  # a figure per study output would otherwise pile up in pyplot's registry
        self.written.extend(files)
        return files

    def write_csv(self, frame, name: str) -> Path:
        """Write the DataFrame ``frame`` to ``<out_dir>/<name>`` (e.g. ``"figure2_is_curves.csv"``), replacing it."""
        path = write_csv(frame, self.out_dir / name, overwrite=True)
        self.written.append(path)
        return path

    def write_text(self, name: str, text: str) -> Path:
        """Write ``text`` (UTF-8) to ``<out_dir>/<name>`` atomically, replacing an old file; return the path."""
        path = atomic_write_bytes(self.out_dir / name, text.encode(), overwrite=True)
        self.written.append(path)
        return path

    def skip(self, reason: str) -> list[Path]:
        """Print ``  skipped: <reason>`` to the log; return no files (``return context.skip(...)``)."""
        print(f"  skipped: {reason}", file=self.log)
        return []


def _legend_order(runs: dict) -> dict:
    order = {attack: i for i, attack in enumerate(FIGURE2_ATTACKS)}
    return dict(sorted(runs.items(), key=lambda item: order.get(item[0], len(order))))


Draw = Callable[[FigureContext], "list[Path]"]


@dataclass(frozen=True)
class FigureSpec:
    """One registered output: ``name`` (as in ``--only``), a one-line ``description`` (printed while
    drawing), the ``draw`` function and its ``order`` (smaller is drawn first)."""

    name: str
    description: str
    draw: Draw
    order: float


_REGISTRY: dict[str, FigureSpec] = {}


def _add(name: str, description: str, draw: Draw, order: float | None) -> FigureSpec:
    if not name or not isinstance(name, str) or "," in name:
        raise ValueError(f"a figure name must be a non-empty string without commas; got {name!r}")
    if name in _REGISTRY:
        raise ValueError(f"a figure named {name!r} is already registered; unregister_figure({name!r}) first")
    if not callable(draw):
        raise TypeError(f"draw must be a function draw(context) -> list[Path]; got {type(draw).__name__}")
    if order is None:  # after every registered figure
        order = max((spec.order for spec in _REGISTRY.values()), default=0) + 10
    spec = FigureSpec(name, description, draw, float(order))
    _REGISTRY[name] = spec
    return spec


def register_figure(name: str, description: str, *, order: float | None = None) -> Callable[[Draw], Draw]:
    """Decorator registering ``draw(context) -> list[Path]`` as the figure ``name``.

    Args:
        name: the figure's name (unique; what ``only=`` and a study's ``figures`` refer to).
        description: one line, printed as ``drawing NAME: DESCRIPTION ...``.
        order: drawing position; figures are drawn by increasing order, ties by registration. Default:
            10 after the last registered figure.

    Raises:
        ValueError: ``name`` is already registered.
    """
    def decorator(draw: Draw) -> Draw:
        _add(name, description, draw, order)
        return draw

    return decorator


def get_figure(name: str) -> FigureSpec:
    """The registered figure ``name``; KeyError naming the registered ones otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no figure named {name!r}; registered: {', '.join(list_figures())}") from None


def list_figures() -> tuple[str, ...]:
    """The registered figures' names in drawing order."""
    position = {name: i for i, name in enumerate(_REGISTRY)}  # registration order breaks ties
    return tuple(sorted(_REGISTRY, key=lambda name: (_REGISTRY[name].order, position[name])))


def unregister_figure(name: str) -> FigureSpec:
    """Remove the figure ``name`` from the registry and return it (KeyError if it is not registered)."""
    spec = get_figure(name)
    del _REGISTRY[name]
    return spec


@contextlib.contextmanager
def registered_figure(name: str, description: str, draw: Draw, *, order: float | None = None) -> Iterator[FigureSpec]:
    """Register ``draw`` as ``name`` for the ``with`` block only (for tests and one-off renders)."""
    spec = _add(name, description, draw, order)
    try:
        yield spec
    finally:
        if _REGISTRY.get(name) is spec:
            del _REGISTRY[name]


# The paper's outputs register themselves on import; importing them here (after everything they use from
# this module is defined) makes list_figures() hold them whichever module of the package is imported first.
from . import paper_outputs  # noqa: E402,F401
