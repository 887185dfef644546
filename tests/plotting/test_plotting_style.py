"""One colour and one display name per attack, everywhere, read from the registry; the paper style restores
rcParams."""

import matplotlib as mpl
import matplotlib.colors as mcolors

from gse_explain.attacks import get_attack, list_attacks
from gse_explain.plotting.style import attack_color, attack_label, paper_style

# Today's colours and labels (the figures of the paper draft use them).
EXPECTED = {
    "gse": ("#D55E00", "GSE"),
    "strattack": ("#0072B2", "StrAttack"),
    "fwnucl": ("#009E73", "FWnucl"),
    "pgd0": ("#CC79A7", "PGD0"),
    "sparse_rs": ("#E69F00", "Sparse-RS"),
    "homotopy": ("#56B4E9", "Homotopy"),
    "sapf": ("#7F7F7F", "SAPF"),
}


def test_every_registered_attack_has_its_own_colour_from_its_spec():
    for attack in list_attacks():
        spec = get_attack(attack)
        assert attack_color(attack) == spec.color and attack_label(attack) == spec.label
    colours = [mcolors.to_hex(attack_color(a)) for a in list_attacks()]
    assert len(set(colours)) == len(colours)
    assert {a: (attack_color(a), attack_label(a)) for a in EXPECTED} == EXPECTED


def test_names_and_labels_map_to_the_same_colour():
    assert attack_label("sparse_rs") == "Sparse-RS" and attack_label("gse") == "GSE"
    assert attack_label("Sparse-RS") == attack_label("sparse rs") == "Sparse-RS"
    for attack in list_attacks():
        assert attack_color(attack_label(attack)) == attack_color(attack) == attack_color(attack.upper())
    assert attack_color("my_attack") == attack_color("my_attack")  # unknown names: stable colour
    assert attack_color("my_attack").startswith("#")
    assert attack_label("my_attack") == "my_attack"


def test_paper_style_is_scoped():
    before = dict(mpl.rcParams)
    with paper_style(**{"font.size": 11}):
        assert mpl.rcParams["font.family"] == ["serif"] and mpl.rcParams["font.size"] == 11
        assert mpl.rcParams["pdf.fonttype"] == 42
    assert mpl.rcParams["font.size"] == before["font.size"] and mpl.rcParams["pdf.fonttype"] == before["pdf.fonttype"]
