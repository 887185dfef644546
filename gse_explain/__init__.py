"""gse_explain: group-wise sparse and explainable adversarial attacks.

Layers, bottom to top (each imports only from the layers before it):

- ``io``: atomic file writes and SHA-256 hashes (one place for both); ``distances``: ACP, ANC, ℓ2, d2,0.
- ``data``: dataset registry (CIFAR-10, ``.npz``, NIPS-2017, ImageNet val, folders, scikit-image photos).
- ``models``: model registry (:func:`create_model`), normalisation wrappers, ``models.inference``
  (``predict``, ``frozen_model``, ``model_device``, used by every layer above).
- ``attacks``: one module per attack, each declaring its ``AttackSpec``; :func:`get_attack`, :func:`list_attacks`,
  :class:`Attack` (a class API for torchattacks-style code).
- ``evaluation``: metrics, protocol (image selection, targets), :class:`RunConfig`, :func:`run` (the one
  driver), the result store (:func:`load_results`), summaries and tables.
- ``analysis``: adversarial saliency maps, interpretability scores and curves, CAMs, clusters, alignment,
  reading stored runs (``analysis.runs``).
- ``plotting``: draws the tables it is given (never computes them), style, saving (PNG + PDF).
- ``figures``: figure and study registries; ``python -m gse_explain.figures`` reproduces the paper.
- CLIs: ``python -m gse_explain.evaluate`` (argument parsing over :func:`run`), ``python -m gse_explain.figures``;
  ``tune`` (``gse_explain.tune(...)``, ``python -m gse_explain.tune``): grid search for an attack's options.

Input contract: images are float tensors (B, C, H, W) in [0, 1] (or the ``bounds`` an attack is given);
models carry their own input normalisation.
"""

__version__ = "0.1.0"

from .attacks import AttackResult, AttackSpec, get_attack, gse, list_attacks  # noqa: E402
from .attacks.wrapper import Attack  # noqa: E402
from .evaluation.config import RunConfig  # noqa: E402
from .evaluation.run import RunError, run  # noqa: E402
from .evaluation.results import RunResults, load_results  # noqa: E402
from .models import create_model  # noqa: E402
from . import tune  # noqa: E402  (the package, callable as the tune() function)

__all__ = [
    "Attack", "AttackResult", "AttackSpec", "RunConfig", "RunError", "RunResults", "__version__", "create_model", "get_attack", "gse",
    "list_attacks", "load_results", "run", "tune",
]
