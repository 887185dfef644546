"""Explanation methods for scoring perturbations: a registry (:mod:`.registry`), the ASM and captum's
attributions (:mod:`.gradients`), the CAM family as explanations (:mod:`.cams`), batched computation
(:mod:`.compute`) and the on-disk cache of a store's maps (:mod:`.cache`)."""

from . import gradients  # noqa: F401  (registers the ASM and the captum methods)
from .cams import CAM_METHODS, TORCHCAM_METHODS, class_activation_maps, torchcam_raw_maps
from .compute import explain, row_seeds
from .gradients import CAPTUM_METHODS
from .registry import (
    EXPLANATIONS,
    Explanation,
    ExplanationSpec,
    get_explanation,
    list_explanations,
    register_explanation,
    resolve_explanation,
    seeded_rngs,
    unregister_explanation,
)

__all__ = ["CAM_METHODS", "CAPTUM_METHODS", "TORCHCAM_METHODS", "class_activation_maps", "torchcam_raw_maps", "EXPLANATIONS", "Explanation", "ExplanationSpec", "explain", "get_explanation",
           "list_explanations", "register_explanation", "resolve_explanation", "row_seeds", "seeded_rngs",
           "unregister_explanation"]
