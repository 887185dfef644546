"""The paper's figures and tables, regenerated from result stores: ``python -m gse_explain.figures [STUDY]``.

- Studies (:mod:`.studies`, registered with :func:`register_study`): ``demo`` (offline EfficientNet-Lite0 on
  scikit-image photos, the default), ``cifar10``, ``imagenet``, ``nips2017``. A study is the runs it needs
  (each a :class:`~gse_explain.evaluation.config.RunConfig`) plus the figures it draws.
- Figures (:mod:`.registry`): one function each, registered by name; :func:`render_study` draws a study's.
- :func:`reproduce` (the API under the CLI): runs the study's missing or incomplete stores with
  :func:`gse_explain.run` (:mod:`.runner`), draws every figure and writes the manifest.
- The figure builders (:mod:`.paper_figures`) and table builders (:mod:`.paper_tables`) also work on
  their own, on any stores.
"""

from .paper_figures import figure_attack_examples, figure_gse_examples, figure_interpretability, pick_examples
from .paper_tables import paper_tables
from .registry import FigureContext, FigureSpec, get_figure, list_figures, register_figure, registered_figure, unregister_figure
from .render import FIGURES, render_study
from .reproduce import StudyOutputs, reproduce
from .runner import StudyRunError, ensure_runs, run_status
from .studies import FIGURE2_ATTACKS, STUDIES, RunSpec, Study, StudyOptions, build_study, describe, register_study
from . import transfer  # noqa: E402,F401  (registers the transfer study and figure)
from . import ablation  # noqa: E402,F401  (registers the ablation study and figure)
from . import explain  # noqa: E402,F401  (registers the explain study and figure)

__all__ = [
    "FIGURE2_ATTACKS",
    "FIGURES",
    "FigureContext",
    "FigureSpec",
    "STUDIES",
    "RunSpec",
    "Study",
    "StudyOptions",
    "StudyOutputs",
    "StudyRunError",
    "build_study",
    "describe",
    "ensure_runs",
    "figure_attack_examples",
    "figure_gse_examples",
    "figure_interpretability",
    "get_figure",
    "list_figures",
    "paper_tables",
    "pick_examples",
    "register_figure",
    "register_study",
    "registered_figure",
    "render_study",
    "reproduce",
    "run_status",
    "unregister_figure",
]
