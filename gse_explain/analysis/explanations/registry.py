"""The explanation registry: every saliency / attribution method the store-level analysis can score against.

An explanation method maps images and one class per image to an attribution map of the images' shape::

    method(model, images (B, C, H, W) in [0, 1], classes (B,) ints, **settings) -> (B, C, H, W)  (or (B, H, W))

Larger values mark entries that matter more for ``classes`` (signed methods: entries whose increase raises
the class's logit). A (B, H, W) or (B, 1, H, W) map (a CAM, an occlusion map) is a per-pixel map and is
**broadcast to every channel**, so that the interpretability score (IS, computed over all C·H·W entries as
for the ASM) counts each pixel's channels together; per-channel maps are scored as they are, no channel is
reduced. Where a per-pixel map is needed (CAM alignment), a per-channel map is reduced by **summing its
channels** (signed); a broadcast map is unchanged by that up to the factor C.

Adding a method is one function and its test::

    @register_explanation("my_method", defaults={"steps": 10}, description="what it computes")
    def my_method(model, images, classes, *, steps, batch_size):
        ...
        return attributions                    # (B, C, H, W) tensor

The function receives its settings (``defaults`` overridden by the caller's ``settings=``) as keyword
arguments, plus any of ``labels`` (the true classes, (B,)) and ``batch_size`` (the images per model call
the caller asked for) that its signature names. :func:`~gse_explain.analysis.explanations.explain` calls it
on chunks of at most ``batch_size`` rows, with the model in eval mode, parameter gradients off and autograd
on. Methods declared ``stochastic=True`` (they draw random numbers, as captum's NoiseTunnel and GradientShap
do from the *global* torch and numpy generators) are called one row at a time inside forked, seeded random
states (:func:`seeded_rngs`), so their maps depend on the row's seed only, never on the batch size or on
what ran before, and the caller's global random state is left exactly as it was.

Any callable ``(model, images, classes) -> map`` can also be passed directly as ``saliency=`` (not cached:
its identity cannot be hashed).
"""

from __future__ import annotations

import contextlib
import inspect
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import torch

__all__ = ["EXPLANATIONS", "Explanation", "ExplanationSpec", "get_explanation", "list_explanations",
           "register_explanation", "resolve_explanation", "seeded_rngs", "unregister_explanation"]

#: Keyword arguments a method may ask for besides its settings.
EXTRAS = ("labels", "batch_size")


@dataclass(frozen=True)
class ExplanationSpec:
    """A registered method: ``name``, ``function``, its settings' ``defaults``, a one-line ``description``,
    whether it is ``stochastic`` (computed row by row under seeded RNGs) and its ``version`` (part of the cache
    key: bump it when the implementation changes so that cached maps are recomputed)."""

    name: str
    function: Callable
    defaults: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    stochastic: bool = False
    version: int = 1

    @property
    def extras(self) -> tuple[str, ...]:
        parameters = inspect.signature(self.function).parameters
        return tuple(name for name in EXTRAS if name in parameters)


EXPLANATIONS: dict[str, ExplanationSpec] = {}


def register_explanation(name: str, *, defaults: Mapping[str, Any] | None = None, description: str = "",
                         stochastic: bool = False, version: int = 1):
    """Decorator registering ``function(model, images, classes, **settings)`` as explanation ``name``.

    ``defaults`` must be JSON-serialisable (they are part of the cache key). ValueError for a name already
    registered or settings the function does not accept.
    """
    defaults = dict(defaults or {})

    def decorate(function: Callable) -> Callable:
        if not isinstance(name, str) or not name or "," in name:
            raise ValueError(f"an explanation name must be a non-empty string without commas; got {name!r}")
        if name in EXPLANATIONS:
            raise ValueError(f"an explanation named {name!r} is already registered; unregister_explanation({name!r}) first")
        parameters = inspect.signature(function).parameters
        takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
        missing = [key for key in defaults if key not in parameters and not takes_any]
        if missing:
            raise ValueError(f"explanation {name!r}: the function does not accept the settings {missing}")
        json.dumps(defaults)  # TypeError now rather than when a cache key is made
        EXPLANATIONS[name] = ExplanationSpec(name, function, defaults, description, stochastic, version)
        return function

    return decorate


def unregister_explanation(name: str) -> ExplanationSpec:
    """Remove ``name`` from the registry (tests, notebooks) and return its spec."""
    spec = get_explanation(name)
    del EXPLANATIONS[name]
    return spec


def list_explanations() -> tuple[str, ...]:
    """The registered methods' names, in registration order."""
    return tuple(EXPLANATIONS)


def get_explanation(name: str) -> ExplanationSpec:
    """The registered method ``name``; ValueError naming the registered ones otherwise."""
    try:
        return EXPLANATIONS[name]
    except KeyError:
        raise ValueError(f"unknown explanation method {name!r}; registered: {', '.join(EXPLANATIONS)} "
                         "(or pass a callable (model, images, classes) -> map)") from None


@dataclass(frozen=True)
class Explanation:
    """A method resolved for one use: ``name``, ``function``, the effective ``settings``, ``stochastic``,
    ``extras`` (see the module docstring), ``version`` and whether its maps may be cached (``cacheable``)."""

    name: str
    function: Callable
    settings: dict
    stochastic: bool = False
    extras: tuple[str, ...] = ()
    version: int = 1
    cacheable: bool = True

    def key(self) -> dict:
        """What identifies its maps besides the data: name, settings and version (JSON-serialisable)."""
        return {"method": self.name, "settings": self.settings, "version": self.version}


def resolve_explanation(saliency, settings: Mapping[str, Any] | None = None) -> Explanation:
    """An :class:`Explanation` from a registered name (with ``settings`` overriding its defaults) or a callable.

    Raises:
        ValueError: unknown name, or settings the method does not have (the message lists them); settings for
            a callable.
        TypeError: ``saliency`` is neither a string nor callable, or ``settings`` is not a mapping.
    """
    if settings is not None and not isinstance(settings, Mapping):
        raise TypeError(f"explanation settings must be a mapping {{name: value}}; got {type(settings).__name__}")
    if isinstance(saliency, str):
        spec = get_explanation(saliency)
        unknown = sorted(set(settings or {}) - set(spec.defaults))
        if unknown:
            known = ", ".join(f"{k}={v!r}" for k, v in spec.defaults.items()) or "none"
            raise ValueError(f"explanation {spec.name!r} has no settings {unknown}; its settings (defaults): {known}")
        merged = {**spec.defaults, **dict(settings or {})}
        json.dumps(merged)
        return Explanation(spec.name, spec.function, merged, spec.stochastic, spec.extras, spec.version)
    if callable(saliency):
        if settings:
            raise ValueError("settings= is for registered methods; bind a callable's own settings with functools.partial")
        name = getattr(saliency, "__name__", type(saliency).__name__)
        return Explanation(str(name), saliency, {}, cacheable=False)
    raise TypeError(f"saliency must be a registered method name ({', '.join(EXPLANATIONS)}) or a callable "
                    f"(model, images, classes) -> map; got {type(saliency).__name__}")


@contextlib.contextmanager
def seeded_rngs(seed: int, device: torch.device | None = None) -> Iterator[None]:
    """Seed torch's and numpy's *global* generators with ``seed`` for the block, then put back exactly the
    state they had (torch: :func:`torch.random.fork_rng`, including ``device``'s CUDA generator; numpy: its
    saved state). For library code that draws from the global generators (captum's NoiseTunnel, GradientShap)."""
    devices = [device.index or 0] if device is not None and device.type == "cuda" else []
    state = np.random.get_state()
    with torch.random.fork_rng(devices=devices, enabled=True):
        # Only the generators the block may draw from: torch.manual_seed would also reseed every CUDA device.
        torch.random.default_generator.manual_seed(seed)
        if devices:
            with torch.cuda.device(devices[0]):
                torch.cuda.manual_seed(seed)
        np.random.seed(seed % 2**32)
        try:
            yield
        finally:
            np.random.set_state(state)
