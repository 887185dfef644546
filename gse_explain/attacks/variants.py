"""The ``variant`` option of the baselines: the corrected attack (default) or the GSE authors' port.

The GSE paper's comparison rows were made with the authors' ports of the baselines (attacks.py), which
deviate from the original attacks in documented ways (spec §B: StrAttack's batch-mean loss, retrain step and
stale best tracking, Homotopy's t_prev and prox, SAPF's SLIC on a uint8 cast, Sparse-RS's black-only colours,
FWnucl's LMO rule, PGD0's projection). Every such baseline has the config field ``variant``:

- ``"corrected"`` (the default): the attack as its paper / original code defines it, the project's version;
- ``"reference"``: follows the port where the spec documents a deviation, so the paper's comparison can be
  reproduced as published. Each attack module lists exactly what its reference variant changes.

A run records the resolved variant in its store manifest (``attack_variant``); stores made before the option
existed read as ``"corrected"`` (that is what they ran).
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

__all__ = ["CORRECTED", "REFERENCE", "VARIANTS", "check_variant", "has_variant", "resolved_variant", "run_variant"]

CORRECTED = "corrected"
REFERENCE = "reference"
VARIANTS = (CORRECTED, REFERENCE)


def check_variant(value, attack: str) -> None:
    """ValueError naming the choices unless ``value`` is ``"corrected"`` or ``"reference"``."""
    if value not in VARIANTS:
        raise ValueError(
            f"{attack} option error: variant must be one of {', '.join(repr(v) for v in VARIANTS)} "
            f"('corrected': the original attack, the default; 'reference': the GSE authors' port, spec §B); got {value!r}"
        )


def has_variant(config_class) -> bool:
    """Whether an attack's config dataclass has the ``variant`` field."""
    return dataclasses.is_dataclass(config_class) and "variant" in {f.name for f in dataclasses.fields(config_class)}


def resolved_variant(attack: str, preset: str | None, targeted: bool, options: Mapping) -> str | None:
    """The variant a run of ``attack`` with this preset and options uses: ``"corrected"`` / ``"reference"``,
    or None for attacks without the option (GSE, user attacks) and attacks not registered in this process
    (then the explicit option, if any, is all that is known)."""
    from .registry import get_attack

    try:
        spec = get_attack(attack)
    except ValueError:
        value = options.get("variant")
        return value if value in VARIANTS else None
    if not has_variant(spec.config_class):
        return None
    try:
        return spec.make_config(preset, targeted, **options).variant
    except (TypeError, ValueError):  # invalid options (a stored run read without checks): the explicit value
        value = options.get("variant", CORRECTED)
        return value if value in VARIANTS else None


def run_variant(config) -> str | None:
    """:func:`resolved_variant` of a run configuration (an object with ``attack``, ``preset``,
    ``resolved_preset``, ``targeted`` and ``options``, e.g. :class:`~gse_explain.evaluation.RunConfig`);
    None where it cannot be resolved (e.g. a stored run whose attack or preset file is not available here)."""
    try:
        preset = config.resolved_preset
    except (TypeError, ValueError, OSError):
        preset = config.preset
    try:
        return resolved_variant(config.attack, preset, config.targeted, dict(config.options))
    except (TypeError, ValueError, OSError):
        return None
