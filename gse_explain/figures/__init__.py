"""The paper's figures and tables, regenerated from result stores: ``python -m gse_explain.figures [STUDY]``.

Studies (:mod:`.studies`): ``demo`` (offline EfficientNet-Lite0 on scikit-image photos, the default),
``cifar10``, ``imagenet``, ``nips2017``. The CLI runs the study's attacks into result stores when they are
missing (:mod:`.runner`), then draws Figures 1–5 and Tables 1–4 (:mod:`.render`). The figure builders
(:mod:`.paper_figures`) and table builders (:mod:`.paper_tables`) also work on their own, on any stores.
"""

from .paper_figures import figure_attack_examples, figure_gse_examples, figure_interpretability, pick_examples
from .paper_tables import paper_tables
from .render import FIGURES, render_study
from .runner import StudyRunError, ensure_runs, run_status
from .studies import FIGURE2_ATTACKS, STUDIES, RunSpec, Study, build_study

__all__ = [
    "FIGURE2_ATTACKS",
    "FIGURES",
    "STUDIES",
    "RunSpec",
    "Study",
    "StudyRunError",
    "build_study",
    "ensure_runs",
    "figure_attack_examples",
    "figure_gse_examples",
    "figure_interpretability",
    "paper_tables",
    "pick_examples",
    "render_study",
    "run_status",
]
