"""Perturbation measures (gse_explain.distances) and per-example metrics (evaluation.metrics) on hand-made deltas."""

import math

import numpy as np
import pytest
import torch

from gse_explain import distances
from gse_explain.evaluation.metrics import METRICS, example_metrics


def _delta(*pixels, size=32, channels=3, channel=0, value=0.5):
    """(1, C, size, size) perturbation with ``value`` in one channel at each (h, w) of ``pixels``."""
    delta = torch.zeros(1, channels, size, size)
    for h, w in pixels:
        delta[0, channel, h, w] = value
    return delta


# -- ACP -------------------------------------------------------------------------------------------------------
def test_acp_counts_pixels_with_any_channel_changed():
    delta = torch.zeros(2, 3, 8, 8)
    delta[0, 0, 1, 1] = 0.1  # one pixel, one channel
    delta[0, :, 2, 3] = -0.2  # one pixel, all three channels: still one pixel
    delta[0, 2, 5, 5] = 1e-30  # tiny but non-zero: counted (no threshold)
    # second example: all pixels, different channels
    delta[1, 0, :4] = 1.0
    delta[1, 1, 4:] = 1.0
    assert distances.acp(delta).tolist() == [3, 64]
    assert distances.acp(delta).dtype == torch.int64
    mask = distances.changed_pixel_mask(delta)
    assert mask.shape == (2, 8, 8) and mask.dtype == torch.bool
    assert mask[0].nonzero().tolist() == [[1, 1], [2, 3], [5, 5]]


def test_acp_zero_perturbation():
    assert distances.acp(torch.zeros(3, 3, 32, 32)).tolist() == [0, 0, 0]


def test_measures_reject_wrong_shapes():
    with pytest.raises(ValueError, match="B, C, H, W"):
        distances.acp(torch.zeros(3, 32, 32))
    with pytest.raises(ValueError, match="B, C, H, W"):
        distances.l2(np.zeros((1, 3, 4, 4)))
    with pytest.raises(ValueError, match="patch_size"):
        distances.d20(torch.zeros(1, 3, 4, 4), patch_size=8)


# -- ANC -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "pixels, expected",
    [
        ([], 0),  # all-zero perturbation: no cluster
        ([(5, 5)], 1),
        ([(5, 5), (6, 6)], 2),  # diagonal neighbours are not 4-connected
        ([(5, 5), (6, 4)], 2),  # anti-diagonal
        ([(5, 5), (5, 6)], 1),  # horizontal neighbours
        ([(5, 5), (6, 5)], 1),  # vertical neighbours
        ([(2, 2), (3, 2), (4, 2), (4, 3), (4, 4)], 1),  # L-shape
        ([(0, 0), (0, 31), (31, 0), (31, 31)], 4),  # corners, no wrap-around
        ([(10, 10), (10, 12)], 2),  # gap of one pixel
    ],
)
def test_anc_four_connectivity(pixels, expected):
    assert distances.anc(_delta(*pixels)).tolist() == [expected]


def test_anc_ring_and_channels():
    # a ring (hollow square) is one cluster; pixels changed in different channels still connect
    delta = torch.zeros(1, 3, 16, 16)
    for i in range(3, 8):
        delta[0, 0, 3, i] = delta[0, 1, 7, i] = delta[0, 2, i, 3] = delta[0, 0, i, 7] = 0.3
    assert distances.anc(delta).tolist() == [1]
    assert distances.acp(delta).tolist() == [16]
    labels, count = distances.cluster_labels(distances.changed_pixel_mask(delta)[0])
    assert count == 1 and labels.dtype == np.int32 and labels[5, 5] == 0 and labels[3, 3] == 1


def test_cluster_labels_numbers_each_cluster():
    mask = np.zeros((4, 4), dtype=bool)
    mask[0, 0] = mask[1, 1] = mask[3, 2] = mask[3, 3] = True
    labels, count = distances.cluster_labels(mask)
    assert count == 3
    assert sorted(np.unique(labels).tolist()) == [0, 1, 2, 3]
    assert labels[3, 2] == labels[3, 3] != labels[0, 0] != labels[1, 1]
    with pytest.raises(ValueError, match="H, W"):
        distances.cluster_labels(np.zeros((1, 4, 4), dtype=bool))


# -- d2,0 ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "pixels, expected",
    [
        ([], 0),
        ([(16, 16)], 64),  # interior pixel: in 8×8 patches
        ([(0, 0)], 1),  # corner: only the top-left patch
        ([(31, 31)], 1),
        ([(0, 16)], 8),  # top edge: 1 row of patch positions × 8 columns
        ([(7, 7)], 64),  # the first pixel (from the corner) that lies in 8 × 8 patch positions
        ([(3, 5)], 4 * 6),  # rows 0..3, columns 0..5
        ([(16, 16), (16, 17)], 8 * 9),  # overlapping patches counted once
        ([(0, 0), (31, 31)], 2),
    ],
)
def test_d20_counts_overlapping_patches(pixels, expected):
    assert distances.d20(_delta(*pixels)).tolist() == [expected]


def test_d20_all_changed_and_other_sizes():
    assert distances.d20(torch.ones(2, 3, 32, 32)).tolist() == [625, 625]  # (32 - 7)²
    assert distances.d20(torch.ones(1, 1, 224, 224)).tolist() == [217 * 217]
    assert distances.d20(torch.ones(1, 3, 32, 32), patch_size=1).tolist() == [1024]
    assert distances.d20(_delta((16, 16)), patch_size=4).tolist() == [16]
    # a non-square image: (H - 7)(W - 7)
    assert distances.d20(torch.ones(1, 3, 10, 20)).tolist() == [3 * 13]


def test_d20_brute_force_on_random_sparse_masks():
    gen = torch.Generator().manual_seed(0)
    delta = torch.zeros(3, 3, 16, 16)
    delta[torch.rand(3, 3, 16, 16, generator=gen) < 0.01] = 0.5
    mask = distances.changed_pixel_mask(delta)
    expected = [sum(bool(m[i : i + 8, j : j + 8].any()) for i in range(9) for j in range(9)) for m in mask]
    assert distances.d20(delta).tolist() == expected


# -- ℓ2 --------------------------------------------------------------------------------------------------------
def test_l2_norm_and_scale():
    delta = torch.zeros(2, 3, 4, 4)
    delta[0, 0, 0, 0], delta[0, 2, 3, 3] = 0.3, -0.4  # norm 0.5
    delta[1] = 0.25  # 48 entries of 0.25: norm sqrt(48)/4
    values = distances.l2(delta)
    assert values.dtype == torch.float64
    assert values.tolist() == pytest.approx([0.5, math.sqrt(48) / 4], rel=1e-7)
    assert distances.l2(delta, scale=2.0).tolist() == pytest.approx([1.0, math.sqrt(48) / 2], rel=1e-7)


@pytest.mark.parametrize(
    "bounds, factor", [((0.0, 1.0), 2.0), ((-1.0, 1.0), 1.0), ((0.0, 255.0), 2.0 / 255.0), ((-0.5, 0.5), 2.0)]
)
def test_l2_scale_to_unit_box(bounds, factor):
    assert distances.l2_scale_to_unit_box(bounds) == pytest.approx(factor)


# -- example_metrics -------------------------------------------------------------------------------------------
def test_example_metrics_on_handmade_pairs():
    clean = torch.full((3, 3, 32, 32), 0.5)
    adv = clean.clone()
    adv[0, 0, 16, 16] = 0.8  # one interior pixel, 0.3 on [0, 1] → 0.6 on [-1, 1]
    adv[1, :, 0, 0] = 0.0  # corner pixel, three channels of -0.5 each
    adv[1, 1, 0, 1] = 1.0  # its right neighbour: same cluster
    adv[1, 2, 5, 5] = 0.25  # separate cluster
    metrics = example_metrics(clean, adv, bounds=(0.0, 1.0))
    assert list(metrics) == list(METRICS) == ["acp", "anc", "l2", "d20"]
    assert metrics["acp"].tolist() == [1, 3, 0]
    assert metrics["anc"].tolist() == [1, 2, 0]
    # example 1: the 6 × 6 patch positions over (5, 5) already include the two over (0, 0) and (0, 1)
    assert metrics["d20"].tolist() == [64, 36, 0]
    assert metrics["l2"].dtype == np.float64 and metrics["acp"].dtype == np.int64
    l2_01 = [0.3, math.sqrt(3 * 0.25 + 0.25 + 0.0625), 0.0]
    assert metrics["l2"] == pytest.approx([2 * v for v in l2_01], rel=1e-6)
    # the same pair in the [-1, 1] box gives the same ℓ2 (already on that scale)
    unit = example_metrics(clean * 2 - 1, adv * 2 - 1, bounds=(-1.0, 1.0))
    assert unit["l2"] == pytest.approx(metrics["l2"], rel=1e-6)
    assert unit["acp"].tolist() == metrics["acp"].tolist()


def test_example_metrics_d20_overlap_counted_once():
    # pixels (0,0), (0,1) and (5,5): patch positions covering any of them; count by brute force
    clean = torch.zeros(1, 3, 32, 32)
    adv = clean.clone()
    adv[0, 0, 0, 0] = adv[0, 0, 0, 1] = adv[0, 0, 5, 5] = 1.0
    brute = sum(
        any(i <= h < i + 8 and j <= w < j + 8 for h, w in [(0, 0), (0, 1), (5, 5)]) for i in range(25) for j in range(25)
    )
    assert brute == 36
    assert example_metrics(clean, adv, (0.0, 1.0))["d20"].tolist() == [brute]


def test_example_metrics_shape_mismatch():
    with pytest.raises(ValueError, match="shapes differ"):
        example_metrics(torch.zeros(2, 3, 8, 8), torch.zeros(1, 3, 8, 8), (0.0, 1.0))
