"""Interpretability score: the spec's percentile index on hand-made vectors, IS at its extremes and in between."""

import math

import pytest
import torch

from gse_explain.analysis import interpretability_score, saliency_mask, saliency_threshold

# Non-zero entries sorted: s = [-3, -1, 1, 2, 3, 4, 5, 6, 7], n = 9; zeros are not counted.
VALUES = [0.0, -3.0, 5.0, 0.0, 1.0, 2.0, -1.0, 4.0, 0.0, 7.0, 6.0, 3.0]
SALIENCY = torch.tensor(VALUES).view(1, 1, 3, 4)


def test_threshold_follows_the_spec_index_formula():
    # τ_P = s[ceil(P/100 * (n+1)) - 1] with n + 1 = 10: P=50 -> s[4], 55 -> s[5], 60 -> s[5], 70 -> s[6], 80 -> s[7],
    # 90 -> s[8]; P=100 would index s[9] and is clamped to the largest entry.
    tau = saliency_threshold(SALIENCY, [50, 55, 60, 70, 80, 90, 100])
    assert tau.shape == (1, 7)
    assert tau[0].tolist() == [3.0, 4.0, 4.0, 5.0, 6.0, 7.0, 7.0]
    # Exact integer arithmetic: 70 % of 10 is 7 (a float product 0.7 * 10 could round up to index 8).
    assert saliency_threshold(torch.arange(1.0, 10.0).view(1, 1, 1, 9), [70])[0, 0] == 7.0


def test_threshold_per_image_and_all_zero_map():
    second = torch.zeros(1, 1, 3, 4)
    second[0, 0, 0, :3] = torch.tensor([2.0, -1.0, 8.0])  # n = 3: P=50 -> ceil(2) = 2 -> s[1] = 2
    tau = saliency_threshold(torch.cat([SALIENCY, second, torch.zeros(1, 1, 3, 4)]), [50])
    assert tau[0, 0] == 3.0 and tau[1, 0] == 2.0 and math.isnan(tau[2, 0])


def test_mask_is_strictly_above_threshold():
    mask = saliency_mask(SALIENCY, 50)  # τ = 3
    assert mask.view(-1).tolist() == [v > 3 for v in VALUES]


def test_score_is_one_on_mask_zero_outside_and_ratio_in_between():
    inside = torch.zeros_like(SALIENCY)
    inside.view(-1)[[2, 7, 9, 10]] = torch.tensor([0.5, -0.2, 0.1, 0.3])  # entries 5, 4, 7, 6 > τ_50 = 3
    outside = torch.zeros_like(SALIENCY)
    outside.view(-1)[[0, 1, 11]] = torch.tensor([0.4, -0.1, 0.2])  # 0, -3 and 3 (= τ, strict) are outside
    mixed = torch.zeros_like(SALIENCY)
    mixed.view(-1)[2] = 0.3  # inside
    mixed.view(-1)[4] = 0.4  # outside: IS = 0.3 / 0.5
    scores = interpretability_score(SALIENCY.expand(3, -1, -1, -1), torch.cat([inside, outside, mixed]), [50])
    assert scores.dtype == torch.float64 and scores.shape == (3, 1)
    assert scores[:, 0].tolist() == pytest.approx([1.0, 0.0, 0.6], abs=1e-7)  # δ is float32


def test_several_percentiles_at_once_and_degenerate_cases():
    delta = torch.zeros_like(SALIENCY)
    delta.view(-1)[[9, 10, 2]] = torch.tensor([0.3, 0.4, 1.2])  # values 7, 6, 5
    scores = interpretability_score(SALIENCY, delta, [50, 80, 90])[0]
    # P=50 (τ=3): all of δ; P=80 (τ=6): only the entry with 7; P=90 (τ=7): empty mask.
    assert scores.tolist() == pytest.approx([1.0, 0.3 / 1.3, 0.0])
    zero_delta = interpretability_score(SALIENCY, torch.zeros_like(SALIENCY), [50])
    assert math.isnan(zero_delta[0, 0])
    flat_map = interpretability_score(torch.zeros_like(SALIENCY), delta, [50])
    assert flat_map[0, 0] == 0.0


def test_bad_inputs_are_reported():
    with pytest.raises(ValueError, match="same shape"):
        interpretability_score(SALIENCY, torch.zeros(1, 1, 4, 3))
    with pytest.raises(ValueError, match=r"percentiles must lie in \(0, 100\]"):
        saliency_threshold(SALIENCY, [0])
    with pytest.raises(ValueError, match=r"percentiles must lie in \(0, 100\]"):
        interpretability_score(SALIENCY, SALIENCY, [50, 101])
    with pytest.raises(ValueError, match="must not be empty"):
        saliency_threshold(SALIENCY, [])
    with pytest.raises(ValueError, match=r"saliency must have shape \(B, C, H, W\)"):
        saliency_threshold(SALIENCY[0], [50])
