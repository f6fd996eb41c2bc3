"""train_ensemble (vmapped) against the same models trained one by one with train()."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from redundancy.errors import ConvergenceWarning, RedundancyError
from redundancy.training import has_settled, train, train_ensemble


def _data(n=90, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = (rng.normal(size=(n, 1, 6)) + np.eye(3, 6)[y][:, None]).astype(np.float32)
    return X, y.astype(np.int64)


def _cnn(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16, 3))


@pytest.mark.parametrize("optimizer,batch_size", [("adam", 16), ("sgd", 25)])
def test_vmapped_equals_sequential(optimizer, batch_size):
    X, y = _data()
    rng = np.random.default_rng(1)
    T, m = 5, 63  # 63 = 0.7 * 90; the last batch is smaller than batch_size
    sub = np.stack([rng.choice(90, m, replace=False) for _ in range(T)])
    seeds = [11, 12, 13, 14, 15]
    models = [_cnn(100 + t) for t in range(T)]
    refs = [copy.deepcopy(mo) for mo in models]
    kw = dict(epochs=4, batch_size=batch_size, lr=0.02, optimizer=optimizer, weight_decay=1e-3)
    res = train_ensemble(models, (X, y), sub, seeds=seeds, **kw)
    seq_losses = []
    for t in range(T):
        r = train(refs[t], (X[sub[t]], y[sub[t]]), seed=seeds[t], **kw)
        seq_losses.append(r.losses)
        for (n, p), (n2, q) in zip(models[t].named_parameters(), refs[t].named_parameters()):
            assert n == n2
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(res.losses, np.array(seq_losses), rtol=1e-5)
    assert res.losses.shape == (T, 4) and res.steps == 4 * int(np.ceil(m / batch_size))
    # and the models really differ from one another (different subsets/seeds)
    assert not torch.allclose(models[0][0].weight, models[1][0].weight)


def test_regression_matches_sequential():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 3)).astype(np.float32)
    y = (X @ np.array([1.0, -2.0, 0.5])).astype(np.float32)
    sub = np.stack([rng.choice(40, 28, replace=False) for _ in range(3)])
    models = [nn.Linear(3, 1) for _ in range(3)]
    refs = copy.deepcopy(models)
    train_ensemble(models, (X, y), sub, seeds=[0, 1, 2], epochs=3, batch_size=8, lr=0.05)
    for t in range(3):
        train(refs[t], (X[sub[t]], y[sub[t]]), seed=t, epochs=3, batch_size=8, lr=0.05)
        torch.testing.assert_close(models[t].weight, refs[t].weight, rtol=1e-5, atol=1e-6)


def test_refuses_bad_input():
    X, y = _data()
    sub = np.stack([np.arange(10), np.arange(10)])
    with pytest.raises(RedundancyError, match="BatchNorm"):
        train_ensemble([nn.Sequential(nn.Flatten(), nn.BatchNorm1d(6))] * 2, (X, y), sub, seeds=[0, 1])
    with pytest.raises(RedundancyError, match="subsets"):
        train_ensemble([_cnn(0), _cnn(1)], (X, y), [np.arange(10), np.arange(9)], seeds=[0, 1])
    with pytest.raises(RedundancyError, match="subsets"):
        train_ensemble([_cnn(0), _cnn(1)], (X, y), sub + 100, seeds=[0, 1])
    with pytest.raises(RedundancyError, match="seeds"):
        train_ensemble([_cnn(0), _cnn(1)], (X, y), sub, seeds=[0])
    with pytest.raises(RedundancyError, match="architecture"):
        train_ensemble([_cnn(0), nn.Sequential(nn.Flatten(), nn.Linear(6, 3))], (X, y), sub, seeds=[0, 1])


def test_same_per_model_correctness_on_digits_cnn():
    from redundancy.data import load_digits_data
    from redundancy.longtail.subsample import draw_runs, make_models
    from redundancy.zoo.small import two_conv_cnn
    from redundancy.training import evaluate

    ds = load_digits_data(seed=0).subsample(300, seed=0)
    sub, init, order = draw_runs(300, 3, 0.7, seed=0)
    models = make_models(lambda: two_conv_cnn((1, 8, 8), 10, width=4), init)
    refs = copy.deepcopy(models)
    train_ensemble(models, ds, sub, seeds=order, epochs=2, lr=3e-3)
    for t in range(3):
        train(refs[t], (ds.X_train[sub[t]], ds.y_train[sub[t]]), seed=order[t], epochs=2, lr=3e-3)
        for p, q in zip(models[t].parameters(), refs[t].parameters()):
            torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-4)
        for split in ("train", "test"):
            np.testing.assert_array_equal(evaluate(models[t], ds, split=split).correct,
                                          evaluate(refs[t], ds, split=split).correct)


def _stop_case():
    """Member 0: a clean separable subset (reaches 100 % quickly); member 1: its subset holds ten
    examples twice with opposite labels, so it can never reach 100 % and never stops early."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(50, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    X[40:] = X[30:40]
    y[40:] = 1 - y[30:40]
    sub = np.stack([np.arange(40), np.arange(10, 50)])
    return X, y, sub


def _mlp(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))


def test_members_stop_on_their_own_rule_and_stay_frozen():
    X, y, sub = _stop_case()
    kw = dict(batch_size=16, lr=0.05, seeds=[5, 6])
    models = [_mlp(0), _mlp(1)]
    init = copy.deepcopy(models)
    with pytest.warns(ConvergenceWarning, match="1 of 2 models hit the cap epochs=30"):
        res = train_ensemble(models, (X, y), sub, epochs=30, tol=0.0, target_accuracy=1.0, **kw)
    assert res.converged.tolist() == [True, False]
    assert res.epochs_run[0] < 30 and res.epochs_run[1] == 30 and res.epochs == 30
    assert res.train_accuracy[0] == 1.0 and res.train_accuracy[1] <= 0.75
    assert (res.losses[0, res.epochs_run[0]:] == res.losses[0, res.epochs_run[0] - 1]).all()
    assert len(res.to_pandas()) == res.epochs_run.sum()
    assert not res.convergence.converged and res.convergence.epochs_run == 30
    assert res.member(0).converged and res.member(0).epochs_run == res.epochs_run[0]
    # the member whose rule never fires: the same weights as training every member to the cap
    free = copy.deepcopy(init)
    with pytest.warns(ConvergenceWarning):
        train_ensemble(free, (X, y), sub, epochs=30, tol=0.0, **kw)
    for p, q in zip(models[1].parameters(), free[1].parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    # the frozen member: its weights are those of training it alone for the epochs it ran
    alone = [copy.deepcopy(init[0])]
    with pytest.warns(ConvergenceWarning):
        train_ensemble(alone, (X, y), sub[:1], epochs=int(res.epochs_run[0]), tol=0.0, batch_size=16, lr=0.05,
                       seeds=[5])
    for p, q in zip(models[0].parameters(), alone[0].parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_loss_rule_stops_a_settled_member():
    X, y, sub = _stop_case()
    models = [_mlp(0), _mlp(1)]
    # weight decay bounds the loss away from 0, so both losses level off
    res = train_ensemble(models, (X, y), sub, seeds=[5, 6], epochs=400, batch_size=40, lr=0.05, weight_decay=0.05,
                         tol=1e-3, patience=5)
    assert res.converged.all() and res.epochs < 400
    for t in range(2):
        h = res.losses[t, : res.epochs_run[t]]
        assert has_settled(h, tol=1e-3, patience=5) and not has_settled(h[:-1], tol=1e-3, patience=5)
    with pytest.raises(RedundancyError, match="target_accuracy"):
        train_ensemble(models, (X, y), sub, seeds=[0, 1], target_accuracy=1.5)
