"""One look for every figure: fonts, sizes and a fixed colour per attack.

``paper_style()`` is a context manager applying the rcParams (serif fonts sized for a one-column paper
figure, Type-42 fonts in PDFs so they stay editable, light grids); ``attack_color(name)`` and
``attack_label(name)`` give every attack the same colour and display name in every figure, whatever
order or subset of attacks a figure shows.
"""

from __future__ import annotations

import contextlib

import matplotlib as mpl

__all__ = ["ATTACK_COLORS", "ATTACK_LABELS", "PAPER_RC", "attack_color", "attack_label", "paper_style"]

#: Colour per registered attack (colour-blind-safe Okabe–Ito palette; GSE gets the strongest colour).
ATTACK_COLORS = {
    "gse": "#D55E00",
    "strattack": "#0072B2",
    "fwnucl": "#009E73",
    "pgd0": "#CC79A7",
    "sparse_rs": "#E69F00",
    "homotopy": "#56B4E9",
    "sapf": "#7F7F7F",
}
#: Display names (as the paper writes them).
ATTACK_LABELS = {
    "gse": "GSE",
    "strattack": "StrAttack",
    "fwnucl": "FWnucl",
    "pgd0": "PGD0",
    "sparse_rs": "Sparse-RS",
    "homotopy": "Homotopy",
    "sapf": "SAPF",
}
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


def _key(name: str) -> str:
    return str(name).lower().replace("-", "_").replace(" ", "_")


def attack_color(name: str) -> str:
    """The colour of attack ``name`` (registry name or display name, any case); unknown names get a stable
    colour derived from the name."""
    key = _key(name)
    if key in ATTACK_COLORS:
        return ATTACK_COLORS[key]
    for attack, label in ATTACK_LABELS.items():
        if _key(label) == key:
            return ATTACK_COLORS[attack]
    return _FALLBACK[sum(map(ord, key)) % len(_FALLBACK)]


def attack_label(name: str) -> str:
    """The display name of attack ``name`` ("sparse_rs" → "Sparse-RS"); unknown names are returned as given."""
    return ATTACK_LABELS.get(_key(name), str(name))


@contextlib.contextmanager
def paper_style(**overrides):
    """Apply :data:`PAPER_RC` (plus ``overrides``) inside a ``with`` block; rcParams are restored after."""
    with mpl.rc_context({**PAPER_RC, **overrides}):
        yield
