"""One colour and one display name per attack, everywhere; the paper style restores rcParams."""

import matplotlib as mpl
import matplotlib.colors as mcolors

from gse_explain.attacks import list_attacks
from gse_explain.plotting.style import ATTACK_COLORS, attack_color, attack_label, paper_style


def test_every_registered_attack_has_its_own_colour():
    assert set(list_attacks()) <= set(ATTACK_COLORS)
    colours = [mcolors.to_hex(attack_color(a)) for a in list_attacks()]
    assert len(set(colours)) == len(colours)


def test_names_and_labels_map_to_the_same_colour():
    assert attack_label("sparse_rs") == "Sparse-RS" and attack_label("gse") == "GSE"
    for attack in list_attacks():
        assert attack_color(attack_label(attack)) == attack_color(attack) == attack_color(attack.upper())
    assert attack_color("my_attack") == attack_color("my_attack")  # unknown names: stable colour
    assert attack_label("my_attack") == "my_attack"


def test_paper_style_is_scoped():
    before = dict(mpl.rcParams)
    with paper_style(**{"font.size": 11}):
        assert mpl.rcParams["font.family"] == ["serif"] and mpl.rcParams["font.size"] == 11
        assert mpl.rcParams["pdf.fonttype"] == 42
    assert mpl.rcParams["font.size"] == before["font.size"] and mpl.rcParams["pdf.fonttype"] == before["pdf.fonttype"]
