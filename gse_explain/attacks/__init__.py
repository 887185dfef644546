"""Attacks, one module each, all with the uniform signature of :mod:`gse_explain.attacks.base`.

Each attack module declares its own :class:`AttackSpec` and registers it on import (its ``SPEC``); this
package only imports the modules. Select attacks by name with :func:`get_attack`; :func:`list_attacks`
and :data:`ATTACKS` list what is registered. To add an attack: write its module ending in
``SPEC = register_attack(AttackSpec(...))``, add one import line below, and add its tests
(``tests/attacks/contract.py`` checks the uniform contract on every registered attack).
"""

from __future__ import annotations

from .base import AttackResult, check_attack_inputs, frozen_model
from .registry import ATTACKS, AttackSpec, get_attack, list_attacks, register_attack, registered, unregister_attack

# One line per attack; importing the module registers it (the order is the order of ATTACKS).
from .gse import GSE_PRESETS, GSEConfig, gse, gse_config
from .strattack import STRATTACK_PRESETS, StrAttackConfig, strattack, strattack_config
from .fwnucl import FWNUCL_PRESETS, FWnuclConfig, fwnucl, fwnucl_config
from .pgd0 import PGD0_PRESETS, PGD0Config, pgd0, pgd0_config
from .sparse_rs import SPARSE_RS_PRESETS, SparseRSConfig, sparse_rs, sparse_rs_config
from .homotopy import HOMOTOPY_PRESETS, HomotopyConfig, homotopy, homotopy_config
from .sapf import SAPF_PRESETS, SAPFConfig, sapf, sapf_config

__all__ = [
    "ATTACKS",
    "AttackResult",
    "AttackSpec",
    "check_attack_inputs",
    "frozen_model",
    "get_attack",
    "list_attacks",
    "register_attack",
    "registered",
    "unregister_attack",
    "GSEConfig",
    "GSE_PRESETS",
    "gse",
    "gse_config",
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
