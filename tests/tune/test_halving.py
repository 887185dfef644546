"""Successive halving on toy objectives (no attacks), and the objective / grid parsing it ranks by."""

import math

import pytest

from gse_explain.attacks.gse import GSEConfig
from gse_explain.tune import Score, expand_grid, grid_range, parse_grid_values, parse_objective, rung_budgets, successive_halving
from gse_explain.tune.objective import trial_name


def test_rung_budgets_are_geometric_and_end_at_the_total():
    assert rung_budgets(5, 3) == [1, 2, 5]
    assert rung_budgets(27, 3) == [1, 3, 9, 27]
    assert rung_budgets(10, 2) == [1, 2, 5, 10]
    assert rung_budgets(1, 3) == [1]
    assert rung_budgets(2, 1.5) == [1, 2]
    with pytest.raises(ValueError, match="eta"):
        rung_budgets(5, 1)
    with pytest.raises(ValueError, match="total budget"):
        rung_budgets(0, 3)


def _toy(true_values, infeasible_from):
    """evaluate() of a toy search: candidate c scores true_values[c] + 1/budget noise (alternating sign), and is
    infeasible from the budget in ``infeasible_from`` on. Records every (candidate, budget) call."""
    calls = []

    def evaluate(candidates, budget):
        calls.extend((c, budget) for c in candidates)
        return [Score(true_values[c] + (-1) ** c / budget, budget < infeasible_from.get(c, math.inf), {"b": budget})
                for c in candidates]

    return evaluate, calls


def test_halving_finds_the_best_feasible_candidate_and_drops_the_rest_early():
    # 9 candidates; the best true value (candidate 4) is infeasible from budget 3 on, so the best feasible is 7.
    true_values = [5.0, 3.0, 8.0, 6.0, 0.5, 4.0, 7.0, 1.0, 9.0]
    evaluate, calls = _toy(true_values, infeasible_from={4: 3})
    result = successive_halving(9, [1, 3, 9], evaluate, eta=3)
    assert result.best == 7
    rung0 = [e for e in result.history if e.rung == 0]
    assert len(rung0) == 9 and sum(e.outcome == "promoted" for e in rung0) == 3  # ceil(9 / 3)
    promoted = sorted(e.candidate for e in rung0 if e.outcome == "promoted")
    assert promoted == [1, 4, 7]  # the three lowest objectives at budget 1: 7 (1 - 1), 4 (0.5 + 1), 1 (3 - 1)
    assert result.last_entry(4).outcome == "dropped: constraint" and result.last_entry(4).rung == 1
    assert result.last_entry(8).outcome == "dropped: rank" and result.last_entry(8).rung == 0
    # Rung 2 keeps ceil(3 / 3) = 1 of the rung's 3 entrants; it is evaluated on the full budget and ranked.
    assert [e.candidate for e in result.history if e.rung == 2] == [7]
    assert result.ranking == (7,) and result.last_entry(7).outcome == "final"
    # The cost: 9 + 3 + 1 evaluations instead of 9 full ones, and the budget-weighted cost 9 + 9 + 9 = 27 < 81.
    assert len(calls) == 13 and sum(b for _, b in calls) == 27


def test_halving_with_every_candidate_infeasible_has_no_best():
    evaluate, calls = _toy([1.0, 2.0, 3.0], infeasible_from={0: 1, 1: 1, 2: 2})
    result = successive_halving(3, [1, 2, 4], evaluate, eta=2)
    assert result.best is None and result.ranking == ()
    assert calls == [(0, 1), (1, 1), (2, 1), (2, 2)]  # stops once nobody is left


def test_halving_keeps_ties_in_candidate_order_and_ranks_nan_last():
    def evaluate(candidates, budget):
        values = {0: math.nan, 1: 2.0, 2: 2.0, 3: 1.0}
        return [Score(values[c], True) for c in candidates]

    result = successive_halving(4, [1], evaluate, eta=2)
    assert result.ranking == (3, 1, 2, 0)


def test_halving_rejects_bad_arguments():
    evaluate, _ = _toy([1.0, 2.0], {})
    with pytest.raises(ValueError, match="increasing"):
        successive_halving(2, [2, 2], evaluate)
    with pytest.raises(ValueError, match="at least one candidate"):
        successive_halving(0, [1], evaluate)
    with pytest.raises(ValueError, match="returned 1 scores for 2 candidates"):
        successive_halving(2, [1], lambda c, b: [Score(0.0, True)])


def test_objective_strings_weights_and_errors():
    assert parse_objective("acp+anc").weights == {"acp": 1.0, "anc": 1.0}
    objective = parse_objective("acp + 10*anc - 0.5*l2")
    assert objective.weights == {"acp": 1.0, "anc": 10.0, "l2": -0.5}
    assert objective({"acp": 40.0, "anc": 1.5, "l2": 2.0}) == pytest.approx(54.0)
    assert str(parse_objective("acp+anc")) == "acp + anc"
    assert parse_objective({"d20": 2}).weights == {"d20": 2.0}
    with pytest.raises(ValueError, match="objective metric 'asp' is unknown; choose from acp, anc, l2, d20, time"):
        parse_objective("asp+anc")
    with pytest.raises(ValueError, match="cannot read objective 'acp anc'"):
        parse_objective("acp anc")
    with pytest.raises(TypeError, match="objective must be a string"):
        parse_objective("")


def test_grid_values_ranges_and_expansion():
    assert parse_grid_values("0.1,0.25,0.5") == [0.1, 0.25, 0.5]
    assert parse_grid_values("lin(10,50,3)") == [10.0, 30.0, 50.0]
    assert parse_grid_values("log(0.01,1,3)") == pytest.approx([0.01, 0.1, 1.0])
    assert grid_range(1, 2, 1) == [1.0]
    with pytest.raises(ValueError, match="a range is lin"):
        parse_grid_values("lin(1,2)")
    points = expand_grid(GSEConfig, {"q": [0.1, 0.5], "k_hat": [10.0, 30.0]}, "gse")
    assert points == [{"q": 0.1, "k_hat": 10}, {"q": 0.1, "k_hat": 30}, {"q": 0.5, "k_hat": 10}, {"q": 0.5, "k_hat": 30}]
    assert all(type(p["k_hat"]) is int for p in points)  # a range's floats become ints for an int option
    assert trial_name(3, points[1]) == "t003-q0.1-k_hat30"
    with pytest.raises(ValueError, match="grid option 'qq' is not an option of gse"):
        expand_grid(GSEConfig, {"qq": [1]}, "gse")
    with pytest.raises(ValueError, match="repeats the value"):
        expand_grid(GSEConfig, {"q": [0.1, 0.1]}, "gse")
    with pytest.raises(TypeError, match="non-empty list"):
        expand_grid(GSEConfig, {"q": []}, "gse")


def _fixed(values):
    """evaluate() that scores candidate c as values[c] at every budget (all feasible); records the calls."""
    calls = []

    def evaluate(candidates, budget):
        calls.append((budget, list(candidates)))
        return [Score(values[c], True) for c in candidates]

    return evaluate, calls


def test_ties_at_the_cut_are_kept_not_dropped_by_candidate_order():
    # 9 candidates, eta 3: the cut keeps 3; candidates 1, 2, 3, 8 tie at 2.0 for the third place.
    values = [3.0, 2.0, 2.0, 2.0, 5.0, 1.0, 9.0, 0.5, 2.0]
    evaluate, calls = _fixed(values)
    result = successive_halving(9, [1, 3], evaluate, eta=3)
    outcomes = {e.candidate: e.outcome for e in result.history if e.rung == 0}
    assert [c for c, o in outcomes.items() if o == "promoted"] == [1, 5, 7]
    assert sorted(c for c, o in outcomes.items() if o == "promoted: tie") == [2, 3, 8]
    assert outcomes[0] == outcomes[4] == outcomes[6] == "dropped: rank"
    assert calls[1] == (3, [7, 5, 1, 2, 3, 8])  # the next rung sees the whole tie, best first
    assert result.ranking == (7, 5, 1, 2, 3, 8)


def test_tie_tolerance_is_relative_and_nan_never_ties():
    # eta 2 keeps ceil(6 / 2) = 3: 0.5, 1.0 and 10.0 (the last kept); 10.05 is 0.5 % above it, 10.2 is 2 %.
    values = [10.0, 10.05, 10.2, math.nan, 1.0, 0.5]
    for tolerance, expected in ((0.0, (5, 4, 0)), (0.004, (5, 4, 0)), (0.006, (5, 4, 0, 1)), (0.03, (5, 4, 0, 1, 2)),
                                (0.99, (5, 4, 0, 1, 2))):
        result = successive_halving(6, [1, 2], _fixed(values)[0], eta=2, tie_tolerance=tolerance)
        assert result.ranking == expected, tolerance
    assert result.last_entry(3).outcome == "dropped: rank"  # NaN ranks last and never ties
    all_nan = [math.nan] * 4  # the cut lands among NaN objectives: no tie, the strict count
    assert len(successive_halving(4, [1, 2], _fixed(all_nan)[0], eta=2).ranking) == 2
    for bad in (-0.1, 1.0, math.nan, True, "0.1"):
        with pytest.raises(ValueError, match=r"tie_tolerance .* must be a number in \[0, 1\)"):
            successive_halving(2, [1], _fixed([1.0, 2.0])[0], tie_tolerance=bad)


def test_without_ties_the_cut_is_the_strict_ceil_n_over_eta():
    # Distinct objectives: every rung keeps exactly the best ceil(n / eta), as before ties were kept.
    import random

    rng = random.Random(0)
    for trial in range(20):
        n, eta = rng.randint(2, 30), rng.choice([2, 3, 4, 2.5])
        values = rng.sample(range(1000), n)
        evaluate, calls = _fixed([float(v) for v in values])
        result = successive_halving(n, [1, 2, 4], evaluate, eta=eta)
        survivors = list(range(n))
        for budget, seen in calls:
            assert sorted(seen) == sorted(survivors)
            survivors = sorted(seen, key=lambda c: values[c])[: math.ceil(len(seen) / eta)] if budget < 4 else seen
        assert result.ranking == tuple(sorted(survivors, key=lambda c: values[c]))
        assert not any(e.outcome == "promoted: tie" for e in result.history)


def test_rung_budgets_with_a_minimum_first_rung():
    assert rung_budgets(5, 3, minimum=2) == [2, 5]  # 10 images in batches of 2, first rung >= 4 images: 4, 10
    assert rung_budgets(27, 3, minimum=3) == [3, 9, 27]
    assert rung_budgets(10, 2, minimum=3) == [3, 5, 10]
    assert rung_budgets(5, 3, minimum=5) == rung_budgets(5, 3, minimum=9) == [5]
    with pytest.raises(ValueError, match="minimum budget .* must be an int ≥ 1; got 0"):
        rung_budgets(5, 3, minimum=0)
