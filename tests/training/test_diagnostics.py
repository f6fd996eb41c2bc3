"""The stopping rule, convergence records and decision verdicts, against hand computations."""

import math
import warnings

import numpy as np
import pytest

from redundancy.errors import ConvergenceWarning, DecisionWarning, RedundancyError, RedundancyWarning
from redundancy.training.diagnostics import (assess_convergence, chance_level, check_decision, has_settled,
                                             warn_unconverged)


def _settled_by_hand(h, tol, patience):
    best = [min(h[: i + 1]) for i in range(len(h))]
    if len(h) <= patience:
        return False
    b0, b1 = best[-patience - 1], best[-1]
    return (b0 - b1) / max(abs(b0), 1e-12) < tol


@pytest.mark.parametrize("seed", range(20))
def test_stopping_rule_matches_a_hand_loop(seed):
    rng = np.random.default_rng(seed)
    h = list(np.cumsum(rng.exponential(size=12)[::-1]) + rng.normal(0, 0.01, 12))[::-1]
    for tol in (1e-4, 1e-2, 0.2):
        for p in (1, 3, 5):
            assert has_settled(h, tol=tol, patience=p) == _settled_by_hand(h, tol, p)


def test_geometric_decay_is_not_settled_until_it_is():
    h = [0.5 ** k for k in range(30)] + [0.5 ** 29] * 5
    assert not has_settled(h[:10], tol=1e-3, patience=3)
    assert has_settled(h, tol=1e-3, patience=3)
    c = assess_convergence(h, max_epochs=100, tol=1e-3, patience=3)
    assert c.converged and c.epochs_run == 35 and c.rel_change == 0.0
    assert "converged after 35/100" in c.summary()


def test_unconverged_warns_with_the_method_and_suggestion():
    c = assess_convergence([3.0, 2.0, 1.0], max_epochs=3, patience=2)
    assert not c.converged and math.isclose(c.rel_change, (3.0 - 1.0) / 3.0)
    with pytest.warns(ConvergenceWarning, match=r"fit_x: .*NOT converged after 3/3.*raise max_epochs"):
        warn_unconverged("fit_x", c, "raise max_epochs")
    assert issubclass(ConvergenceWarning, RedundancyWarning) and issubclass(RedundancyWarning, UserWarning)


def test_chance_level_is_the_majority_rate():
    assert chance_level(np.array([1, 1, 1, 0])) == 0.75
    with pytest.raises(RedundancyError):
        chance_level(np.array([]))


@pytest.mark.parametrize("metric,orig,dec,ft,chance,budget,expected", [
    ("accuracy", 0.87, 0.10, None, 0.10, None, "near_chance"),
    ("accuracy", 0.83, 0.065, 0.07, 0.10, 0.05, "near_chance"),
    ("accuracy", 0.90, 0.80, None, 0.10, 0.05, "over_budget"),
    ("accuracy", 0.90, 0.50, 0.88, 0.10, 0.05, "ok"),
    ("accuracy", 0.095, 0.09, None, 0.10, None, "reference_near_chance"),
    ("loss", 0.40, 5.08, None, math.log(10), 0.1, "near_chance"),
    ("loss", 0.40, 0.60, None, math.log(10), 0.1, "over_budget"),
    ("loss", 0.40, 0.45, None, math.log(10), 0.1, "ok"),
    ("accuracy", 0.857, 0.198, None, 0.10, None, "large_drop"),  # the unbudgeted car_prune case of issue 24
    ("accuracy", 0.857, 0.60, None, 0.10, None, "ok"),
])
def test_verdicts(metric, orig, dec, ft, chance, budget, expected):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        v = check_decision(metric=metric, original=orig, decided=dec, finetuned=ft, chance=chance, budget=budget)
    assert v.verdict == expected
    assert (expected != "ok") == any(issubclass(w.category, DecisionWarning) for w in rec)
    assert v.to_dict()["verdict"] == expected
