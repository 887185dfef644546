"""Preset JSON files: an attack's tuned settings in a file, accepted wherever a preset name is
(``preset=PATH`` in the attack functions, :class:`~gse_explain.attacks.wrapper.Attack`, ``RunConfig``, and
``--preset PATH`` on the command lines). ``python -m gse_explain.tune`` writes them.

Format (``format`` and ``format_version`` may be left out of a hand-written file)::

    {
      "format": "gse_explain.attack_preset", "format_version": 1,
      "attack": "gse",
      "values": {"untargeted": {"mu": 1.0, "k_hat": 30}, "targeted": {"mu": 1.0, "k_hat": 50}},
      "provenance": {"model": "resnet20", "data": "cifar10_npz ...", "objective": "acp + anc", "date": "..."}
    }

``values`` is either per mode (``untargeted`` and/or ``targeted``, each a mapping of option names to
values) or one mapping of options used for both modes. ``provenance`` is free-form JSON (recorded, not
interpreted). A string is read as a preset file when it ends in ``.json``; any ``os.PathLike`` is a file.
Option names and value types are checked against the attack's config class by
:func:`~gse_explain.attacks.options.build_config`, which names the file in its errors.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..io import atomic_write_bytes, json_bytes

__all__ = ["PRESET_FORMAT", "PRESET_FORMAT_VERSION", "PresetError", "PresetFile", "is_preset_path", "load_preset", "save_preset"]

PRESET_FORMAT = "gse_explain.attack_preset"
PRESET_FORMAT_VERSION = 1
_KEYS = {"format", "format_version", "attack", "values", "provenance"}
_MODES = {"untargeted": False, "targeted": True}


class PresetError(ValueError):
    """A preset file is malformed (not JSON, unknown keys, wrong structure, values of the wrong kind)."""


@dataclass(frozen=True)
class PresetFile:
    """A loaded preset file.

    Attributes:
        path: the absolute path it was read from. sha256: the SHA-256 of its bytes.
        attack: the attack it is for (registry name or label as written in the file).
        values: ``{False: untargeted options, True: targeted options}``; a mode the file has no values for is absent.
        provenance: the file's free-form provenance mapping.
    """

    path: str
    sha256: str
    attack: str
    values: Mapping[bool, Mapping[str, Any]]
    provenance: Mapping[str, Any]

    def values_for(self, targeted: bool) -> dict:
        """The options of one mode; PresetError naming the file if it has none for that mode."""
        if bool(targeted) not in self.values:
            have = ", ".join(name for name, flag in _MODES.items() if flag in self.values)
            mode = "targeted" if targeted else "untargeted"
            raise PresetError(f"preset file {self.path} has no {mode} values (it has: {have}); add a {mode!r} entry to its "
                              "'values', or use it for the mode it was made for")
        return dict(self.values[bool(targeted)])


def is_preset_path(preset) -> bool:
    """Whether ``preset`` names a preset file: any ``os.PathLike``, or a string ending in ``.json``."""
    return isinstance(preset, os.PathLike) or (isinstance(preset, str) and preset.lower().endswith(".json"))


def _fail(path, message: str):
    raise PresetError(f"preset file {path}: {message}")


def _check_options(path, where: str, options) -> dict:
    if not isinstance(options, Mapping) or not options:
        _fail(path, f"{where} must be a non-empty mapping of option names to values; got {options!r}")
    for key, value in options.items():
        if not _json_scalar_or_list(value):
            _fail(path, f"{where}[{key!r}] must be a number, string, bool, null or a list of them; got {value!r}")
    return dict(options)


def _json_scalar_or_list(value) -> bool:
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, list) and all(_json_scalar_or_list(v) for v in value)


def _parse_values(path, values) -> dict[bool, dict]:
    """``{False: ..., True: ...}`` from the file's ``values`` (per mode, or one set for both)."""
    if not isinstance(values, Mapping) or not values:
        _fail(path, f"'values' must be a non-empty mapping (options, or 'untargeted'/'targeted' mappings); got {values!r}")
    per_mode = set(values) & set(_MODES)
    if not per_mode:
        options = _check_options(path, "'values'", values)
        return {False: options, True: options}
    if per_mode != set(values):
        _fail(path, f"'values' mixes per-mode entries {sorted(per_mode)} with options {sorted(set(values) - per_mode)}; "
              "put every option inside 'untargeted' / 'targeted', or give one mapping of options for both modes")
    return {_MODES[mode]: _check_options(path, f"'values'[{mode!r}]", values[mode]) for mode in sorted(per_mode)}


def load_preset(path: str | os.PathLike) -> PresetFile:
    """Read and check the structure of a preset file (option names and types are checked by the attack's
    config in :func:`~gse_explain.attacks.options.build_config`).

    Raises:
        FileNotFoundError: no file at ``path``. PresetError: not JSON, unknown keys, wrong structure.
    """
    p = Path(path).expanduser().resolve()
    if not p.is_file():
        raise FileNotFoundError(f"preset file {p} not found: pass preset=PATH to a preset JSON file (python -m gse_explain.tune "
                                "writes one), or a preset name")
    raw = p.read_bytes()
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PresetError(f"preset file {p} is not valid JSON ({exc})") from None
    if not isinstance(data, Mapping):
        _fail(p, f"must hold a JSON object with keys 'attack' and 'values'; got {type(data).__name__}")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        _fail(p, f"unknown key(s) {unknown}; a preset file has {sorted(_KEYS)}")
    if data.get("format", PRESET_FORMAT) != PRESET_FORMAT:
        _fail(p, f"'format' is {data['format']!r}, not {PRESET_FORMAT!r}: it is not a gse_explain preset file")
    if data.get("format_version", PRESET_FORMAT_VERSION) != PRESET_FORMAT_VERSION:
        _fail(p, f"'format_version' {data['format_version']!r} is not supported (this version reads {PRESET_FORMAT_VERSION})")
    for key in ("attack", "values"):
        if key not in data:
            _fail(p, f"lacks the key {key!r}")
    if not isinstance(data["attack"], str) or not data["attack"]:
        _fail(p, f"'attack' must be an attack name such as 'gse'; got {data['attack']!r}")
    provenance = data.get("provenance", {})
    if not isinstance(provenance, Mapping):
        _fail(p, f"'provenance' must be a mapping (model, data, objective, date, ...); got {provenance!r}")
    return PresetFile(str(p), hashlib.sha256(raw).hexdigest(), data["attack"], _parse_values(p, data["values"]), dict(provenance))


def save_preset(path: str | os.PathLike, attack: str, values: Mapping, provenance: Mapping | None = None, *,
                overwrite: bool = False) -> PresetFile:
    """Write a preset file atomically and return it as loaded back.

    Args:
        path: where to write (``.json``); an existing file is refused unless ``overwrite``.
        attack: the attack's registry name.
        values: ``{"untargeted": {...}, "targeted": {...}}`` (either or both) or one options mapping for both.
        provenance: JSON-serialisable facts about how the values were found (model, data, objective, date, ...).

    Raises:
        PresetError: a malformed ``values``/``provenance`` (checked before anything is written).
        FileExistsError: ``path`` exists and not ``overwrite``.
    """
    p = Path(path)
    if not p.name.lower().endswith(".json"):
        raise PresetError(f"preset file names end in .json (that is how preset=PATH tells a file from a preset name); got {p}")
    document = {"format": PRESET_FORMAT, "format_version": PRESET_FORMAT_VERSION, "attack": attack,
                "values": _plain(values), "provenance": _plain(provenance or {})}
    if not isinstance(attack, str) or not attack:
        _fail(p, f"'attack' must be an attack name; got {attack!r}")
    _parse_values(p, document["values"])  # the same checks as on reading, before the file exists
    try:
        data = json_bytes(document)
    except (TypeError, ValueError) as exc:
        raise PresetError(f"preset file {p}: provenance is not JSON-serialisable ({exc})") from None
    atomic_write_bytes(p, data, overwrite=overwrite)
    return load_preset(p)


def _plain(obj):
    """Mappings as dicts and tuples as lists (the JSON form), recursively."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj
