"""The rank search's budget, its verdict and the data-free protection of few-channel layers (issue 24)."""

import json
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from redundancy.data import load_digits_data
from redundancy.errors import ConvergenceWarning, DecisionWarning
from redundancy.rank_search import search_ranks
from redundancy.training import evaluate, train


@pytest.fixture(scope="module")
def digits():
    ds = load_digits_data(seed=0)
    return ds.X_train[:400], ds.y_train[:400], ds.X_test[:200], ds.y_test[:200]


@pytest.fixture(scope="module")
def net(digits):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                        nn.Flatten(), nn.Linear(512, 10))
    train(net, digits, epochs=15, lr=3e-3, seed=0, warn=False)
    return net.eval()


def _acc(model, data):
    return evaluate(model, data).accuracy


def test_data_free_search_keeps_a_one_channel_stem_dense(net):
    res = search_ranks(net, input_shape=(1, 8, 8), iters=5, warmup=1)
    assert "0" not in res.ranks and isinstance(res.model[0], nn.Conv2d)
    assert torch.equal(res.model[0].weight, net[0].weight)
    (skip,) = [s for s in res.skipped if s["name"] == "0"]
    assert "1 input" in skip["reason"] and "<= 3" in skip["reason"]
    assert res.verdict.verdict == "not_applicable" and "data-free" in res.verdict.reason


def test_rank_one_everywhere_collapses_and_warns_without_budget(net, digits):
    with pytest.warns(DecisionWarning):
        res = search_ranks(net, [1], data=digits, iters=3, warmup=1, max_accuracy_drop=None)
    assert res.verdict.verdict in ("near_chance", "over_budget") or res.verdict.decided < 0.5
    assert res.verdict.decided == pytest.approx(_acc(res.model, digits))


def test_budget_backs_off_to_the_costliest_layers_dense(net, digits):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DecisionWarning)
        res = search_ranks(net, [1], data=digits, iters=3, warmup=1, max_accuracy_drop=0.05)
    base, after = _acc(net, digits), _acc(res.model, digits)  # independent evaluation
    assert base - after <= 0.05 + 1e-12
    assert res.verdict.verdict == "ok" and res.verdict.budget == 0.05
    assert res.verdict.original == pytest.approx(base) and res.verdict.decided == pytest.approx(after)
    assert res.verdict.chance == pytest.approx(np.bincount(digits[3]).max() / len(digits[3]))
    dense = [s["name"] for s in res.skipped if "kept dense by the budget" in s["reason"]]
    assert dense and all(isinstance(res.model.get_submodule(n), (nn.Conv2d, nn.Linear)) for n in dense)
    assert set(dense).isdisjoint(res.ranks)
    assert res.params_decomposed == sum(p.numel() for p in res.model.parameters())


def test_loss_budget_is_enforced(net, digits):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DecisionWarning)
        res = search_ranks(net, [1, 2], data=digits, iters=3, warmup=1, max_accuracy_drop=None,
                           max_loss_increase=0.02)
    ce = lambda m: evaluate(m, digits).loss  # noqa: E731
    assert ce(res.model) - ce(net) <= 0.02 + 1e-6


def test_tiny_finetune_reports_unconverged(net, digits):
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        res = search_ranks(net, [2, 4], data=digits, iters=3, warmup=1, max_accuracy_drop=None, finetune_epochs=1)
    assert res.convergence is not None and not res.convergence.converged
    assert res.verdict.finetuned == pytest.approx(_acc(res.model, digits))
    assert json.loads(res.to_json())["convergence"]["converged"] is False


def test_ranks_cli_default_budget_keeps_accuracy_or_warns(tmp_path, capsys):
    """The issue's case (small_cnn on digits, warm start on, default budget), with a short search."""
    from redundancy.cli import main

    code = main(["ranks", "small_cnn", "--data", "digits", "--method", "tt", "--train-epochs", "3",
                 "--iters", "10", "--warmup", "2", "--out", str(tmp_path / "r"), "--no-progress"])
    assert code == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[1].startswith("verdict: ")
    summary = json.loads((tmp_path / "r" / "ranks.json").read_text())["summary"]
    drop = summary["accuracy_original"] - summary["accuracy_compressed"]
    assert drop <= 0.05 + 1e-9 or "redundancy ranks: warning" in err
    if summary["params_kept"] >= 1.0:  # nothing compressed: said on stderr
        assert "no layer could be compressed" in err
