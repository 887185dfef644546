"""Per-example evaluation metrics (spec §C.4): the one place records get their numbers from.

The measures themselves are defined in :mod:`gse_explain.distances`; this module applies them to
(clean, adversarial) pairs and fixes the reporting conventions:
- ``acp``: changed pixels; ``anc``: 4-connected clusters of changed pixels; ``d20``: non-zero 8×8 patches.
- ``l2``: Euclidean norm of the perturbation on the **[-1, 1] scale** (the paper's convention, twice the
  [0, 1] value), whatever box the attack ran in.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import distances

__all__ = ["METRICS", "example_metrics"]

#: Metric columns in table order, with the unit/scale they are reported in.
METRICS: dict[str, str] = {
    "acp": "changed pixels",
    "anc": "4-connected clusters",
    "l2": "ℓ2 norm on the [-1, 1] scale",
    "d20": "non-zero 8×8 patches",
}


def example_metrics(
    clean: torch.Tensor, adversarial: torch.Tensor, bounds: tuple[float, float], patch_size: int = 8
) -> dict[str, np.ndarray]:
    """Metrics for each pair of (B, C, H, W) clean and adversarial images in box ``bounds``.

    Returns a dict of (B,) numpy arrays keyed by :data:`METRICS` (int64 counts, float64 ℓ2).
    """
    if clean.shape != adversarial.shape:
        raise ValueError(f"clean and adversarial shapes differ: {tuple(clean.shape)} vs {tuple(adversarial.shape)}")
    delta = adversarial.detach().cpu() - clean.detach().cpu()
    return {
        "acp": distances.acp(delta).numpy(),
        "anc": distances.anc(delta).numpy(),
        "l2": distances.l2(delta, scale=distances.l2_scale_to_unit_box(bounds)).numpy(),
        "d20": distances.d20(delta, patch_size).numpy(),
    }
