"""What a model declares about itself: :class:`ModelInfo`.

Like timm's pretrained configs, the metadata says what the rest of the
package needs to know without guessing from the architecture's class:
the input size and normalisation, and where the class activation maps are
taken (the final linear layer of a global-average-pooling head for CAM, the
feature layer for Grad-CAM, and how a token layer is laid on a grid).
Layer paths are dotted names relative to the network inside the
:class:`~gse_explain.models.NormalizedModel` wrapper (``model.model``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Tuple

#: ``ModelInfo.gradcam_capture`` values: the layer's output, or its first positional input.
CAPTURES = ("output", "input")


@dataclass(frozen=True)
class ModelInfo:
    """What is known about a model (frozen).

    Attributes:
        name: the name :func:`~gse_explain.models.create_model` builds it by.
        input_size: (C, H, W) in pixels the model is meant for; None when undeclared.
        num_classes: number of output logits; None when undeclared.
        description: one line for humans.
        default_weights: what ``weights=None`` loads (a path), or None when
            ``weights=None`` means a random initialisation (or, for a
            ``package.module:factory`` model, whatever the factory returns).
        mean, std: per-channel normalisation applied inside the wrapper to
            [0, 1] images; None means undeclared (identity for factories).
            On ``model.info`` of a built model these are the statistics in use.
        cam_head: dotted path of the final ``nn.Linear`` when the network ends
            in global average pooling + that layer (the original CAM applies);
            None otherwise.
        gradcam_layer: dotted path of the layer whose activation is the
            feature map for Grad-CAM and, with ``cam_head``, for CAM.
        gradcam_capture: ``"output"`` (the layer's output is the map) or
            ``"input"`` (its first input is, e.g. a global pooling module).
        token_grid: (h, w) when ``gradcam_layer`` yields tokens (B, N, D)
            rather than a map: the patch tokens are laid on this grid.
        prefix_tokens: how many leading tokens (class / distillation /
            register tokens) precede the patch tokens and are dropped.
    """

    name: str
    input_size: Optional[Tuple[int, int, int]] = None
    num_classes: Optional[int] = None
    description: str = ""
    default_weights: Optional[str] = None
    mean: Optional[Tuple[float, ...]] = None
    std: Optional[Tuple[float, ...]] = None
    cam_head: Optional[str] = None
    gradcam_layer: Optional[str] = None
    gradcam_capture: str = "output"
    token_grid: Optional[Tuple[int, int]] = None
    prefix_tokens: int = 0

    def __post_init__(self) -> None:
        for field, value in self._normalised_fields().items():
            object.__setattr__(self, field, value)

    def _normalised_fields(self) -> dict:
        """Validated, tuple-converted values of the fields that need it (ValueError naming the field)."""
        out: dict = {}
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"ModelInfo.name must be a non-empty string, got {self.name!r}")
        out["input_size"] = _int_tuple(self.input_size, 3, "input_size", "(C, H, W)")
        out["token_grid"] = _int_tuple(self.token_grid, 2, "token_grid", "(h, w)")
        if (self.mean is None) != (self.std is None):
            raise ValueError("ModelInfo.mean and ModelInfo.std must be given together (or both None)")
        for field in ("mean", "std"):
            value = getattr(self, field)
            out[field] = None if value is None else _float_tuple(value, field)
        if self.std is not None and not all(s > 0 for s in out["std"]):
            raise ValueError(f"ModelInfo.std must be strictly positive, got {self.std!r}")
        if self.num_classes is not None:
            out["num_classes"] = int(self.num_classes)
        for field in ("cam_head", "gradcam_layer"):
            value = getattr(self, field)
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"ModelInfo.{field} must be a dotted module path (str) or None, got {value!r}")
        if self.gradcam_capture not in CAPTURES:
            raise ValueError(f"ModelInfo.gradcam_capture must be one of {CAPTURES}, got {self.gradcam_capture!r}")
        if self.cam_head is not None and self.gradcam_layer is None:
            raise ValueError("ModelInfo.cam_head needs gradcam_layer: the feature map the linear head pools")
        if not isinstance(self.prefix_tokens, int) or self.prefix_tokens < 0:
            raise ValueError(f"ModelInfo.prefix_tokens must be an int >= 0, got {self.prefix_tokens!r}")
        return out

    @property
    def normalization(self) -> Optional[Tuple[Tuple[float, ...], Tuple[float, ...]]]:
        """``(mean, std)``, or None when undeclared."""
        return None if self.mean is None else (self.mean, self.std)  # type: ignore[return-value]

    def replace(self, **changes: Any) -> "ModelInfo":
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)


def _int_tuple(value, length: int, field: str, form: str):
    if value is None:
        return None
    try:
        out = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        out = ()
    if len(out) != length or any(v <= 0 for v in out):
        raise ValueError(f"ModelInfo.{field} must be {form}, {length} positive ints, got {value!r}")
    return out


def _float_tuple(value, field: str) -> Tuple[float, ...]:
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        out = ()
    if not out:
        raise ValueError(f"ModelInfo.{field} must be a non-empty sequence of per-channel floats, got {value!r}")
    return out


def as_model_info(declared: Any, name: str, where: str) -> ModelInfo:
    """``declared`` (a :class:`ModelInfo` or a mapping of its fields) as a ModelInfo named ``name``.

    ``where`` names the declaration in error messages.
    """
    if isinstance(declared, ModelInfo):
        return declared.replace(name=name)
    if isinstance(declared, Mapping):
        fields = {f.name for f in dataclasses.fields(ModelInfo)}
        unknown = sorted(set(declared) - fields)
        if unknown:
            raise ValueError(f"{where} has unknown ModelInfo fields {unknown}: known fields are {sorted(fields)}")
        return ModelInfo(**{**dict(declared), "name": name})
    raise TypeError(f"{where} must be a ModelInfo or a dict of its fields, got {type(declared).__name__}")


def declare_model_info(**fields: Any):
    """Decorator for a ``package.module:factory`` function: attach its :class:`ModelInfo` fields.

    >>> @declare_model_info(input_size=(3, 32, 32), num_classes=10, mean=(0.5,) * 3, std=(0.5,) * 3,
    ...                     cam_head="fc", gradcam_layer="features")
    ... def build(num_classes=10): ...

    It sets ``factory.gse_model_info`` (a dict of the fields; the name is
    filled in by ``create_model``). Setting that attribute by hand, to a
    :class:`ModelInfo` or a dict, does the same.
    """
    as_model_info(fields, "declare_model_info()", "declare_model_info()")  # validate now, at import time

    def attach(factory):
        factory.gse_model_info = dict(fields)
        return factory

    return attach
