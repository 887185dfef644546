"""gse_explain: group-wise sparse and explainable adversarial attacks.

Layers, bottom to top: ``data`` → ``models`` → ``attacks`` → ``evaluation`` (metrics, protocol, result
store) → CLI (``python -m gse_explain.evaluate``). Perturbation measures live in ``distances``.

Input contract: images are float tensors (B, C, H, W) in [0, 1] (or the ``bounds`` an attack is given);
models carry their own input normalisation.
"""

__version__ = "0.1.0"

from .attacks import AttackResult, get_attack, gse, list_attacks  # noqa: E402
from .evaluation.store import load_results  # noqa: E402

__all__ = ["AttackResult", "__version__", "get_attack", "gse", "list_attacks", "load_results"]
