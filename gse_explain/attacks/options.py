"""Attack options: the config dataclass of an attack from a preset and overrides, with every value's type
checked against the dataclass's field annotations *before* the dataclass is built.

The check runs first because ``__post_init__`` methods convert some values (``tuple(int(v) ...)``) and
compare others (``iterations >= 1`` is True for 5.5 and for True), so a wrongly typed value would otherwise
be accepted silently or fail late. Ranges stay the config's own ``__post_init__`` checks.

Type rules (from ``typing.get_type_hints``, so ``from __future__ import annotations`` is fine):
``int`` accepts integers but not bools or floats (5.5, 5.0 and "5" are rejected); ``float`` accepts ints and
floats but not bools, strings or NaN; ``bool`` only ``True``/``False``; ``str`` only strings; ``X | None``
also None; ``Literal[...]`` one of its values; ``tuple[X, ...]`` / ``tuple[X, Y]`` a tuple or list whose
elements have the element types (the length is left to ``__post_init__``). Other annotations are not checked.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing

__all__ = ["build_config", "check_option_types", "describe_type"]

_NONE = type(None)


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_float(value) -> bool:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return not (isinstance(value, float) and math.isnan(value))


def _matches(value, hint) -> bool:
    """Whether ``value`` has the type ``hint`` (an evaluated annotation) under the rules of this module."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is typing.Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in args)
    if origin is typing.Literal:
        return any(value == arg and type(value) is type(arg) for arg in args)
    if origin is tuple:
        if not isinstance(value, (tuple, list)):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(item, args[0]) for item in value)
        allowed = args or (typing.Any,)
        return all(any(_matches(item, arg) for arg in allowed) for item in value)
    if hint is int:
        return _is_int(value)
    if hint is float:
        return _is_float(value)
    if hint is bool:
        return isinstance(value, bool)
    if hint is _NONE:
        return value is None
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # an annotation this module does not interpret


def describe_type(hint) -> str:
    """'an int', 'a float', 'an int or None', "one of 'exact', 'reference'", 'a tuple of floats'."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe_type(arg) for arg in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(arg) for arg in args)
    if origin is tuple:
        inner = args[0] if args else typing.Any
        name = getattr(inner, "__name__", str(inner))
        return f"a tuple (or list) of {name}s"
    if hint is _NONE:
        return "None"
    name = getattr(hint, "__name__", str(hint))
    return f"an {name}" if name[:1] in "aeiou" else f"a {name}"


def check_option_types(config_class, values: dict, attack_name: str, where: str = "") -> None:
    """TypeError naming the first option of ``values`` whose type does not match ``config_class``'s field
    annotation, e.g. "GSE option 'iterations' must be an int; got 5.5 (float)". ``where`` (e.g.
    " in preset 'cifar10'") is added after the option's name. Names that are not fields are not checked here."""
    hints = typing.get_type_hints(config_class)
    for name, value in values.items():
        if name in hints and not _matches(value, hints[name]):
            raise TypeError(
                f"{attack_name} option {name!r}{where} must be {describe_type(hints[name])}; "
                f"got {value!r} ({type(value).__name__})"
            )


def build_config(config_class, presets: dict, attack_name: str, preset: str | None, targeted: bool, options: dict):
    """An attack's frozen config dataclass from a preset and option overrides (shared by every ``*_config``).

    ``presets`` maps a preset name to ``{False: untargeted values, True: targeted values}``. ``preset`` is one
    of its names, None, or a preset JSON file (an ``os.PathLike`` or a string ending in ``.json``; see
    :mod:`.presets`), which must be for this attack. An unknown preset raises ValueError, an unknown option
    TypeError (like an unexpected keyword argument), both listing the valid choices; a value of the wrong
    type TypeError naming the option (:func:`check_option_types`, for the preset's values and the options);
    the dataclass itself validates the ranges. Errors about a file's values name the file.
    """
    values: dict = {}
    known = {f.name for f in dataclasses.fields(config_class)}
    if preset is not None:
        preset_values, where = _preset_values(config_class, presets, attack_name, preset, targeted)
        unknown = sorted(set(preset_values) - known)
        if unknown:
            raise TypeError(f"unknown {attack_name} option(s) {unknown}{where}; valid options: {sorted(known)}")
        check_option_types(config_class, preset_values, attack_name, where)
        values.update(preset_values)
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"unknown {attack_name} option(s) {unknown}; valid options: {sorted(known)}")
    check_option_types(config_class, options, attack_name)
    values.update(options)
    return config_class(**values)


def _same_attack(a: str, b: str) -> bool:
    """Whether two attack names/labels match ("Sparse-RS" ~ "sparse_rs"), as the registry's lookup does."""
    def key(name: str) -> str:
        return str(name).lower().replace("-", "_").replace(" ", "_")

    return key(a) == key(b)


def _preset_values(config_class, presets: dict, attack_name: str, preset, targeted: bool) -> tuple[dict, str]:
    """The option values of a named preset or a preset file for one mode, and where they come from (for errors)."""
    from .presets import is_preset_path, load_preset

    if isinstance(preset, str) and preset in presets:
        return dict(presets[preset][bool(targeted)]), f" in preset {preset!r}"
    if not is_preset_path(preset):
        raise ValueError(f"unknown {attack_name} preset {preset!r}; choose one of {sorted(presets)}, a preset JSON file "
                         "(PATH.json) or None")
    loaded = load_preset(preset)
    if not _same_attack(loaded.attack, attack_name) and not _same_attack(loaded.attack, config_class.__name__.removesuffix("Config")):
        raise ValueError(f"preset file {loaded.path} is for attack {loaded.attack!r}, not {attack_name}: pass it to that "
                         "attack, or use a preset made for this one")
    return loaded.values_for(targeted), f" in preset file {loaded.path}"
