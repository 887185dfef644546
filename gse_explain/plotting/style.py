"""One look for every figure: fonts, sizes and a fixed colour per attack.

``paper_style()`` is a context manager applying the rcParams (serif fonts sized for a one-column paper
figure, Type-42 fonts in PDFs so they stay editable, light grids); ``attack_color(name)`` and
``attack_label(name)`` give every attack the same colour and display name in every figure, whatever
order or subset of attacks a figure shows. Both come from the attack's registry entry
(``AttackSpec.color`` / ``AttackSpec.label``, declared in the attack's module), so a newly registered
attack is styled without touching this module.
"""

from __future__ import annotations

import contextlib

import matplotlib as mpl

from ..attacks.registry import ATTACKS, AttackSpec, lookup_key

__all__ = ["PAPER_RC", "attack_color", "attack_label", "paper_style"]

#: Colours of names no registered attack matches (picked by the name's characters, so stable across runs).
_FALLBACK = ("#000000", "#882255", "#44AA99", "#999933", "#AA4499", "#332288")

PAPER_RC = {
    "font.family": "serif",
    "font.serif": ["DejaVu Serif", "Times New Roman", "Times"],
    "mathtext.fontset": "dejavuserif",
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.grid": False,
    "grid.alpha": 0.3,
    "lines.linewidth": 1.5,
    "lines.markersize": 4,
    "savefig.dpi": 200,
    "pdf.fonttype": 42,  # TrueType in PDFs: text stays selectable and editable
    "ps.fonttype": 42,
}


def _registered_spec(name: str) -> AttackSpec | None:
    """The registered attack whose name or display label matches ``name`` (case, '-', '_' and spaces
    ignored), or None."""
    key = lookup_key(name)
    for spec in ATTACKS.values():
        if key in (lookup_key(spec.name), lookup_key(spec.label)):
            return spec
    return None


def attack_color(name: str) -> str:
    """The '#RRGGBB' colour of attack ``name`` (registry name or display label, any case: its
    ``AttackSpec.color``); unknown names get a stable colour derived from the name."""
    spec = _registered_spec(name)
    if spec is not None:
        return spec.color
    return _FALLBACK[sum(map(ord, lookup_key(name))) % len(_FALLBACK)]


def attack_label(name: str) -> str:
    """The display name of attack ``name`` ("sparse_rs" → "Sparse-RS": its ``AttackSpec.label``); unknown
    names are returned as given."""
    spec = _registered_spec(name)
    return spec.label if spec is not None else str(name)


@contextlib.contextmanager
def paper_style(**overrides):
    """Apply :data:`PAPER_RC` (plus ``overrides``) inside a ``with`` block; rcParams are restored after."""
    with mpl.rc_context({**PAPER_RC, **overrides}):
        yield
