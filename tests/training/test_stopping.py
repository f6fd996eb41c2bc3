"""The one training loop stops on evidence and says whether it converged."""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from redundancy.errors import ConvergenceWarning
from redundancy.training import train
from redundancy.training.diagnostics import has_settled


def _data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2)).astype("float32")  # overlapping classes: the loss has a finite minimum
    return X, (X[:, 0] + 0.3 * X[:, 1] + rng.normal(0, 0.5, n) > 0).astype("int64")


def test_defaults_stop_once_the_loss_settles_and_say_so():
    X, y = _data()
    net = nn.Linear(2, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        res = train(net, (X, y), lr=0.05, seed=0)
    c = res.convergence
    assert c.converged and c.epochs_run == res.epochs < 100 and c.max_epochs == 100
    assert c.history == res.losses
    # the rule fired at the first epoch where it holds, checked against the rule on every prefix
    first = next(t for t in range(1, len(res.losses) + 1) if has_settled(res.losses[:t], tol=1e-4, patience=5,
                                                                            atol=1e-8))
    assert first == res.epochs
    # training accuracy measured by an independent forward pass
    acc = float((net(torch.as_tensor(X)).argmax(1).numpy() == y).mean())
    assert c.train_accuracy == pytest.approx(acc) and acc > 0.75


def test_a_budget_too_small_warns_and_reports_not_converged():
    X, y = _data()
    with pytest.warns(ConvergenceWarning, match=r"fit-me: .*NOT converged after 2/2 epochs.*raise epochs"):
        res = train(nn.Linear(2, 2), (X, y), epochs=2, lr=1e-3, seed=0, desc="fit-me")
    assert res.convergence.converged is False and res.epochs == 2
    assert res.to_dict()["convergence"]["converged"] is False


def test_tol_none_trains_every_epoch_and_matches_the_stopped_run_up_to_its_stop():
    X, y = _data()
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    b.load_state_dict(a.state_dict())
    early = train(a, (X, y), lr=0.05, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        full = train(b, (X, y), epochs=early.epochs + 7, lr=0.05, seed=0, tol=None)
    assert full.epochs == early.epochs + 7
    assert full.losses[:early.epochs] == early.losses  # same seed, same path until the stop


def test_custom_loss_has_no_floor_and_no_accuracy():
    X, y = _data()

    def neg(model, Xb, yb):  # an objective that can go negative (like a negative ELBO)
        return nn.functional.cross_entropy(model(Xb), yb) - 5.0

    res = train(nn.Linear(2, 2), (X, y), loss=neg, lr=0.05, seed=0, epochs=300)
    assert res.convergence.train_accuracy is None and min(res.losses) < 0 and res.convergence.converged
