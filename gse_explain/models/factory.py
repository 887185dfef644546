"""Your own model by import path: ``create_model("package.module:factory", weights=FILE | None, **model_options)``.

``factory(**model_options)`` must return an ``nn.Module`` mapping images to logits. Its :class:`ModelInfo`
(input size, normalisation, CAM layers) is what the factory declares in an attribute ``gse_model_info``
(a :class:`ModelInfo` or a dict of its fields, e.g. set with :func:`~gse_explain.models.declare_model_info`);
a factory that declares nothing gets identity normalisation (the network sees the [0, 1] images) and
no CAM layers (Grad-CAM then finds its layer by probing). ``weights=FILE`` is loaded strictly into the
returned network; ``weights=None`` / ``"random"`` keep what the factory returned.
"""

from __future__ import annotations

import difflib
import importlib
import math
import re
from typing import Any, Callable

from torch import nn

from ._checkpoint import extract_state_dict, load_strict, load_weights_file
from .info import ModelInfo, as_model_info
from .normalization import IDENTITY_STATS, NormalizedModel, resolve_normalization

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_FACTORY_NAME = re.compile(rf"^{_IDENT}(\.{_IDENT})*:{_IDENT}(\.{_IDENT})*$")
#: The attribute a factory declares its ModelInfo in.
INFO_ATTRIBUTE = "gse_model_info"
_UNSET = object()


def is_factory_name(name: str) -> bool:
    """Whether ``name`` has the ``package.module:attribute`` form (syntax only)."""
    return isinstance(name, str) and bool(_FACTORY_NAME.match(name))


def check_factory_syntax(name: str) -> None:
    if not is_factory_name(name):
        raise ValueError(
            f"model name {name!r} is malformed: a factory is named 'package.module:function' (dotted Python "
            "identifiers, one colon), e.g. 'mypackage.nets:build_net'")


def resolve_factory(name: str) -> Callable[..., Any]:
    """Import ``package.module`` and return its ``factory`` attribute (which must be callable).

    Raises:
        ValueError: malformed name.
        ModuleNotFoundError: the module (or one it imports) is not importable.
        ImportError: importing the module raised another error.
        AttributeError: the module has no such attribute.
        TypeError: the attribute is not callable.
    """
    check_factory_syntax(name)
    module_name, attribute = name.split(":")
    module = _import(module_name, name)
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            close = difflib.get_close_matches(part, [a for a in dir(target) if not a.startswith("_")], n=5)
            hint = f": did you mean {', '.join(close)}?" if close else ""
            raise AttributeError(
                f"model {name!r}: {getattr(target, '__name__', module_name)!r} has no attribute {part!r}{hint}")
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"model {name!r}: {attribute} is not a callable factory (it is {type(target).__name__} {target!r:.40})")
    return target


def _import(module_name: str, name: str):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            hint = ("check the spelling, install the package, or put its folder on the Python path "
                    "(PYTHONPATH, or run from the folder that contains it)")
        else:
            hint = f"module {module_name!r} imports {exc.name!r}, which is not installed"
        raise ModuleNotFoundError(f"model {name!r}: cannot import module {module_name!r} ({exc}): {hint}",
                                  name=exc.name) from exc
    except Exception as exc:  # a module that fails while importing: report it with the model name
        raise ImportError(f"model {name!r}: importing module {module_name!r} failed: {type(exc).__name__}: {exc}") from exc


def declared_info(name: str, factory: Callable[..., Any]) -> ModelInfo:
    """The ModelInfo ``factory`` declares (``factory.gse_model_info``), named ``name``; defaults when undeclared."""
    declared = getattr(factory, INFO_ATTRIBUTE, None)
    if declared is None:
        return ModelInfo(name, description=f"factory {name}")
    info = as_model_info(declared, name, f"{name}.{INFO_ATTRIBUTE}")
    return info if info.description else info.replace(description=f"factory {name}")


def build_factory(name: str, weights, *, normalization: Any = _UNSET, **model_options: Any) -> NormalizedModel:
    """``factory(**model_options)`` wrapped in a :class:`NormalizedModel` whose ``info`` the factory declared.

    Args:
        name: ``package.module:factory``.
        weights: a local weights file loaded strictly into the network, or ``None`` / ``"random"`` (the network as
            the factory returned it). ``"DEFAULT"`` is an error.
        normalization: overrides the declared mean/std (``"imagenet"``, ``"unit"``, ``None``, ``(mean, std)``).
        **model_options: the factory's keyword arguments.
    """
    factory = resolve_factory(name)
    if isinstance(weights, str) and weights.upper() == "DEFAULT":
        raise ValueError(f"model {name!r} has no DEFAULT weights: pass weights=PATH to a local weights file, or "
                         "weights=None to use the network as the factory returns it")
    info = declared_info(name, factory)
    net = factory(**model_options)
    if not isinstance(net, nn.Module):
        raise TypeError(f"model {name!r}: the factory returned {type(net).__module__}.{type(net).__qualname__} "
                        f"({net!r:.80}), not a torch.nn.Module")
    if weights is not None and not (isinstance(weights, str) and weights.lower() == "random"):
        state = extract_state_dict(load_weights_file(weights, hint=f"pass weights=PATH for {name}"), weights)
        target = net.model if isinstance(net, NormalizedModel) else net
        options = f" built with {model_options}" if model_options else ""
        load_strict(target, state, weights, f"the network of {name}{options}")
    return _wrap(net, info, normalization)


def _wrap(net: nn.Module, info: ModelInfo, normalization: Any) -> NormalizedModel:
    """Normalisation: ``normalization=`` if given, else a NormalizedModel's own, else the declared one, else identity."""
    if normalization is not _UNSET:
        mean, std = resolve_normalization(normalization)
    elif isinstance(net, NormalizedModel):
        mean, std = tuple(net.mean.flatten().tolist()), tuple(net.std.flatten().tolist())
        if info.normalization is not None and not _same_stats(info.normalization, (mean, std)):
            raise ValueError(f"model {info.name!r}: the factory returns a NormalizedModel with mean={mean}, std={std} "
                             f"but declares mean={info.mean}, std={info.std}: declare one normalisation")
    else:
        mean, std = info.normalization or IDENTITY_STATS
    info = info.replace(mean=mean, std=std)
    inner = net.model if isinstance(net, NormalizedModel) else net
    return NormalizedModel(inner, mean, std, info).eval()


def _same_stats(a, b) -> bool:
    return all(len(x) == len(y) and all(math.isclose(u, v, rel_tol=1e-6) for u, v in zip(x, y)) for x, y in zip(a, b))
