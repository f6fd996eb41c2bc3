"""Pruning to an accuracy budget, and the verdict on the model it hands back (issue 24)."""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from redundancy.data import load_digits_data
from redundancy.errors import ConvergenceWarning, DecisionWarning
from redundancy.pruning import car_prune, prune
from redundancy.training import evaluate, train


@pytest.fixture(scope="module")
def digits():
    ds = load_digits_data(seed=0)
    return ds.X_train[:400], ds.y_train[:400], ds.X_test[:200], ds.y_test[:200]


@pytest.fixture(scope="module")
def net3(digits):
    """A trained 3-conv net (the issue's case: greedy CAR to half its channels takes it near chance)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(8, 10))
    train(net, digits, epochs=40, lr=1e-2, seed=0, warn=False)
    return net.eval()


def _acc(model, data):
    return evaluate(model, data).accuracy


def test_budget_stops_before_chance_and_says_the_target_is_not_met(net3, digits):
    base = _acc(net3, digits)
    with pytest.warns(DecisionWarning, match="cannot be met within max_accuracy_drop=0.05"):
        res = car_prune(net3, digits, target=0.5, per_step=2, max_accuracy_drop=0.05)
    after = _acc(res.model, digits)  # independent evaluation of the model handed back
    assert base - after <= 0.05 + 1e-12 and not res.target_met
    assert res.verdict.verdict == "ok" and "cannot be met" in res.verdict.reason
    assert res.verdict.original == pytest.approx(base) and res.verdict.decided == pytest.approx(after)
    assert res.verdict.chance == pytest.approx(np.bincount(digits[3]).max() / len(digits[3]))
    assert res.verdict.budget == 0.05 and res.max_accuracy_drop == 0.05


def test_without_budget_a_collapse_warns_near_chance(net3, digits):
    with pytest.warns(DecisionWarning, match="near chance"):
        res = car_prune(net3, digits, target=0.85, per_step=4, max_accuracy_drop=None)
    assert res.verdict.verdict == "near_chance" and res.target_met
    assert res.verdict.decided == pytest.approx(_acc(res.model, digits))
    assert res.verdict.decided - res.verdict.chance <= 0.1 * (res.verdict.original - res.verdict.chance)


def test_ranked_baseline_keeps_the_budget_too(net3, digits):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DecisionWarning)
        res = prune(net3, digits, criterion="l1", target=0.5, max_accuracy_drop=0.1)
    assert _acc(net3, digits) - _acc(res.model, digits) <= 0.1 + 1e-12


def test_tiny_finetune_reports_unconverged(net3, digits):
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        res = car_prune(net3, digits, target=2, max_accuracy_drop=None, finetune_epochs=1)
    assert res.convergence is not None and not res.convergence.converged and res.convergence.epochs_run == 1
    assert res.verdict.finetuned == pytest.approx(_acc(res.model, digits))
    assert res.to_dict()["verdict"]["finetuned"] == res.verdict.finetuned


def test_bad_budget_is_refused(net3, digits):
    from redundancy.errors import RedundancyError

    with pytest.raises(RedundancyError, match="max_accuracy_drop"):
        car_prune(net3, digits, max_accuracy_drop=1.5)


def test_prune_cli_prints_the_verdict_first_and_warns_on_stderr(capsys):
    from redundancy.cli import main

    code = main(["prune", "cnn", "--data", "digits", "--model-arg", "widths=[4,8]", "--epochs", "1",
                 "--max-examples", "100", "--target", "0.8", "--max-accuracy-drop", "-1", "--no-progress"])
    assert code == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[1].startswith("verdict: ")
    verdict = out.splitlines()[1].split(":")[1].strip()
    assert (verdict == "ok") == ("redundancy prune: warning: verdict" not in err)
