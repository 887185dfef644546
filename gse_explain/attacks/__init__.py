"""Attacks, one module each, all with the uniform signature of :mod:`gse_explain.attacks.base`.

Select attacks by name with :func:`get_attack`; :data:`ATTACKS` lists what is registered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .base import AttackResult, check_attack_inputs, frozen_model
from .gse import GSE_PRESETS, GSEConfig, gse, gse_config
from .pgd0 import PGD0_PRESETS, PGD0Config, pgd0, pgd0_config
from .sparse_rs import SPARSE_RS_PRESETS, SparseRSConfig, sparse_rs, sparse_rs_config
from .strattack import STRATTACK_PRESETS, StrAttackConfig, strattack, strattack_config
from .fwnucl import FWNUCL_PRESETS, FWnuclConfig, fwnucl, fwnucl_config
from .homotopy import HOMOTOPY_PRESETS, HomotopyConfig, homotopy, homotopy_config
from .sapf import SAPF_PRESETS, SAPFConfig, sapf, sapf_config

__all__ = [
    "ATTACKS",
    "AttackResult",
    "AttackSpec",
    "GSEConfig",
    "GSE_PRESETS",
    "check_attack_inputs",
    "frozen_model",
    "get_attack",
    "gse",
    "gse_config",
    "list_attacks",
    "register_attack",
    "PGD0_PRESETS",
    "PGD0Config",
    "pgd0",
    "pgd0_config",
    "SPARSE_RS_PRESETS",
    "SparseRSConfig",
    "sparse_rs",
    "sparse_rs_config",
    "STRATTACK_PRESETS",
    "StrAttackConfig",
    "strattack",
    "strattack_config",
    "FWNUCL_PRESETS",
    "FWnuclConfig",
    "fwnucl",
    "fwnucl_config",
    "HOMOTOPY_PRESETS",
    "HomotopyConfig",
    "homotopy",
    "homotopy_config",
    "SAPF_PRESETS",
    "SAPFConfig",
    "sapf",
    "sapf_config",
]


@dataclass(frozen=True)
class AttackSpec:
    """A registered attack: its function, preset names (paper settings), a one-line description and
    ``make_config(preset, targeted, **options)``, which validates options without running the attack."""

    name: str
    function: Callable[..., AttackResult]
    presets: tuple[str, ...]
    description: str
    make_config: Callable[..., object]


ATTACKS: dict[str, AttackSpec] = {}


def register_attack(
    name: str,
    function: Callable[..., AttackResult],
    presets: tuple[str, ...],
    description: str,
    make_config: Callable[..., object],
) -> None:
    """Make an attack selectable by ``name`` (CLI ``--attack`` and :func:`get_attack`)."""
    if name in ATTACKS:
        raise ValueError(f"an attack named {name!r} is already registered")
    ATTACKS[name] = AttackSpec(name, function, tuple(presets), description, make_config)


def get_attack(name: str) -> AttackSpec:
    """The :class:`AttackSpec` registered as ``name``; a ValueError lists the known names otherwise."""
    try:
        return ATTACKS[name]
    except KeyError:
        raise ValueError(f"unknown attack {name!r}; available: {', '.join(sorted(ATTACKS))}") from None


def list_attacks() -> list[str]:
    return sorted(ATTACKS)


register_attack(
    "gse", gse, tuple(GSE_PRESETS), "GSE: group-wise sparse attack (1/2-quasinorm prox + projected Nesterov)", gse_config
)
register_attack(
    "strattack", strattack, tuple(STRATTACK_PRESETS),
    "StrAttack: ADMM with group-lasso (2x2 / 8x8 groups), binary search over c, refinement on the support",
    strattack_config,
)
register_attack(
    "fwnucl", fwnucl, tuple(FWNUCL_PRESETS),
    "FWnucl: Frank-Wolfe over the nuclear group-norm ball with golden-section line search", fwnucl_config,
)
register_attack(
    "pgd0", pgd0, tuple(PGD0_PRESETS),
    "PGD0: l0 PGD over k pixels with Croce-Hein box projection and random restarts", pgd0_config,
)
register_attack(
    "sparse_rs", sparse_rs, tuple(SPARSE_RS_PRESETS),
    "Sparse-RS: black-box random search over k pixels with colour-cube corners (forward passes only)",
    sparse_rs_config,
)
register_attack(
    "homotopy", homotopy, tuple(HOMOTOPY_PRESETS),
    "Homotopy-Attack: group-wise (SLIC) l0 + l_inf homotopy with nmAPG, one image at a time", homotopy_config,
)
register_attack(
    "sapf", sapf, tuple(SAPF_PRESETS),
    "SAPF: perturbation factorisation delta*G with lp-box ADMM, cardinality k and SLIC group sparsity", sapf_config,
)
