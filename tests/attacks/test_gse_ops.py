"""GSE's elementary operations against their definitions (spec §A.4, §A.5, §A.7)."""

import math

import pytest
import torch

from gse_explain.attacks.gse_ops import adjust_lambda, half_threshold, half_threshold_level, largest_nonzero_lambda

# 1-D Gaussian weights for size 5, σ 1.5 (spec §A.7), offsets 0, ±1, ±2.
W0, W1, W2 = 0.2921, 0.2339, 0.1201


@pytest.mark.parametrize("tau", [0.05, 0.3, 1.0, 2.5])
def test_half_threshold_is_argmin_of_quadratic_plus_half_quasinorm(tau):
    v = torch.linspace(-3.0, 3.0, 241, dtype=torch.float64)
    grid = torch.linspace(-4.0, 4.0, 160001, dtype=torch.float64)  # step 5e-5
    objective = (grid[None, :] - v[:, None]) ** 2 + tau * grid.abs().sqrt()[None, :]
    numerical = grid[objective.argmin(dim=1)]
    closed = half_threshold(v, torch.tensor(tau, dtype=torch.float64))
    # Exactly at the threshold both 0 and (2/3)p are minimisers; skip that knife edge.
    away_from_jump = (v.abs() - half_threshold_level(torch.tensor(tau))).abs() > 1e-3
    assert torch.allclose(closed[away_from_jump], numerical[away_from_jump], atol=1e-4)


def test_half_threshold_edge_cases():
    v = torch.tensor([-2.0, -0.1, 0.0, 0.1, 2.0])
    assert torch.equal(half_threshold(v, 0.0), v)  # τ = 0 is the identity
    tau = torch.tensor(1.0)
    p = half_threshold_level(tau)
    below = half_threshold(torch.tensor([p.item() * 0.999, -p.item()]), tau)
    assert torch.equal(below, torch.zeros(2))
    above = half_threshold(torch.tensor([p.item() * 1.0001]), tau)
    assert above.item() == pytest.approx(2.0 / 3.0 * p.item(), rel=1e-2)  # the jump from 0 to (2/3)p
    huge = half_threshold(torch.tensor([0.0, 1e-30, 1e30]), torch.tensor([1e-12, 5.0, 5.0]))
    assert torch.isfinite(huge).all()
    tau_map = torch.tensor([0.0, 10.0])  # per-entry τ broadcasts
    assert torch.equal(half_threshold(torch.tensor([0.5, 0.5]), tau_map), torch.tensor([0.5, 0.0]))


def test_largest_nonzero_lambda_matches_reference_bisection():
    """The closed form equals the reference's bracketing + 50-step bisection (spec §A.5)."""
    torch.manual_seed(0)
    sigma = 0.005
    grads = torch.randn(3, 3, 8, 8, dtype=torch.float64) * torch.tensor([0.01, 1.0, 30.0], dtype=torch.float64).view(3, 1, 1, 1)
    closed = largest_nonzero_lambda(grads, sigma)
    for b in range(3):
        def all_zero(lam):
            return bool((half_threshold(sigma * grads[b], torch.tensor(sigma * lam, dtype=torch.float64)) == 0).all())
        lower, upper = 0.0, 0.001
        while not all_zero(upper):
            upper *= 2
        for _ in range(50):
            mid = (lower + upper) / 2
            lower, upper = (lower, mid) if all_zero(mid) else (mid, upper)
        assert closed[b].item() == pytest.approx((lower + upper) / 2, rel=1e-6)
        assert all_zero(closed[b].item() * (1 + 1e-9)) and not all_zero(closed[b].item() * 0.999)


def test_adjust_lambda_on_hand_made_mask():
    lam = torch.ones(1, 1, 9, 9)
    delta = torch.zeros(1, 3, 9, 9)
    delta[0, 1, 4, 4] = 0.3  # one perturbed pixel (one channel suffices)
    new = adjust_lambda(lam, delta, q=0.25)
    expected_divisor = {(4, 4): 1 + W0 * W0, (4, 5): 1 + W0 * W1, (3, 3): 1 + W1 * W1, (2, 6): 1 + W2 * W2,
                        (4, 6): 1 + W0 * W2, (4, 7): 0.25, (0, 0): 0.25, (1, 4): 0.25}
    for (h, w), divisor in expected_divisor.items():
        assert new[0, 0, h, w].item() == pytest.approx(1.0 / divisor, rel=2e-3), (h, w)
    # λ shrinks (by at most ½) exactly inside Chebyshev distance 2 and grows by 1/q elsewhere.
    near = torch.zeros(9, 9, dtype=torch.bool)
    near[2:7, 2:7] = True
    assert (new[0, 0][near] < 1).all() and (new[0, 0][near] >= 0.5).all()
    assert torch.all(new[0, 0][~near] == 4.0)


def test_adjust_lambda_uses_reflect_padding_and_is_per_image():
    lam = torch.full((2, 1, 6, 6), 2.0)
    delta = torch.zeros(2, 1, 6, 6)
    delta[0, 0, 0, 1] = -1.0  # next to the left border: reflect padding mirrors it onto column -1
    new = adjust_lambda(lam, delta, q=0.5)
    assert new[0, 0, 0, 0].item() == pytest.approx(2.0 / (1 + W0 * (W1 + W1)), rel=2e-3)
    assert torch.all(new[1] == 4.0)  # the second image has no perturbation: λ / q everywhere
    assert math.isclose(new[0, 0, 5, 5].item(), 4.0)
