"""Cluster labelling of perturbations against a hand-made mask."""

import numpy as np
import pytest
import torch

from gse_explain.analysis import cluster_table, perturbation_clusters
from gse_explain.distances import anc

# 5 × 6 mask; diagonal neighbours are separate clusters under 4-connectivity.
#   row 0: X X . . . .
#   row 1: X . . . X .
#   row 2: . X . . X X
#   row 3: . . . . . .
#   row 4: . . X . . X
MASK = np.zeros((5, 6), dtype=bool)
for r, c in [(0, 0), (0, 1), (1, 0), (2, 1), (1, 4), (2, 4), (2, 5), (4, 2), (4, 5)]:
    MASK[r, c] = True


def _delta():
    delta = torch.zeros(2, 2, 5, 6)  # example 1 has no perturbation
    rows, cols = np.nonzero(MASK)
    for r, c in zip(rows, cols):
        delta[0, 0, r, c] = 1.0
    delta[0, 1, 0, 0] = 2.0  # pixel (0, 0): energy 1 + 4 = 5
    delta[0, 1, 4, 5] = -3.0  # pixel (4, 5): energy 1 + 9 = 10
    return delta


def test_labels_follow_four_connectivity():
    labels, table = perturbation_clusters(_delta())
    assert labels.shape == (2, 5, 6) and labels.dtype == np.int32
    assert (labels[1] == 0).all()
    # scipy labels in raster order: {(0,0),(0,1),(1,0)}, {(1,4),(2,4),(2,5)}, {(2,1)}, {(4,2)}, {(4,5)}
    groups = [[(0, 0), (0, 1), (1, 0)], [(1, 4), (2, 4), (2, 5)], [(2, 1)], [(4, 2)], [(4, 5)]]
    for number, pixels in enumerate(groups, start=1):
        assert sorted(zip(*np.nonzero(labels[0] == number))) == pixels
    assert (labels[0] > 0).sum() == MASK.sum()
    assert table["example"].tolist() == [0] * 5  # example 1 contributes no rows
    assert len(table) == int(anc(_delta())[0])  # the same count as ANC


def test_sizes_centroids_boxes_and_energy_by_hand():
    _, table = perturbation_clusters(_delta())
    assert table["size"].tolist() == [3, 3, 1, 1, 1]
    assert table["centroid_row"].tolist() == pytest.approx([1 / 3, 5 / 3, 2, 4, 4])
    assert table["centroid_col"].tolist() == pytest.approx([1 / 3, 13 / 3, 1, 2, 5])
    boxes = table[["bbox_top", "bbox_left", "bbox_bottom", "bbox_right"]].values.tolist()
    assert boxes == [[0, 0, 2, 2], [1, 4, 3, 6], [2, 1, 3, 2], [4, 2, 5, 3], [4, 5, 5, 6]]
    # Energies: cluster 1 = 5 + 1 + 1, cluster 2 = 3, singles 1, 1, 10; total 22.
    assert table["energy"].tolist() == pytest.approx([7, 3, 1, 1, 10])
    assert table["energy_share"].tolist() == pytest.approx([7 / 22, 3 / 22, 1 / 22, 1 / 22, 10 / 22])
    assert table["energy_share"].sum() == pytest.approx(1.0)


def test_bad_inputs_are_reported():
    with pytest.raises(ValueError, match=r"delta must have shape \(B, C, H, W\)"):
        perturbation_clusters(torch.zeros(5, 6))
    with pytest.raises(ValueError, match=r"labels must have shape \(B, H, W\) = \(2, 5, 6\)"):
        cluster_table(np.zeros((2, 6, 5), dtype=np.int32), _delta())
