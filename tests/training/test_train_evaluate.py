"""The shared training/evaluation loop: determinism, resume, metrics against direct computation."""

import numpy as np
import pytest
import torch
from torch import nn

from redundancy.data import Dataset, as_dataset
from redundancy.errors import RedundancyError
from redundancy.training import evaluate, train


def _blobs(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = (rng.normal(size=(n, 4)) + 2.0 * np.eye(3, 4)[y]).astype(np.float32)
    return X, y.astype(np.int64)


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 3))


def test_same_seed_same_weights_and_global_rng_untouched():
    X, y = _blobs()
    a, b = _net(), _net()
    torch.manual_seed(123)
    before = torch.get_rng_state()
    train(a, (X, y), epochs=3, batch_size=16, seed=7)
    train(b, (X, y), epochs=3, batch_size=16, seed=7)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    assert torch.equal(torch.get_rng_state(), before)
    c = _net()
    train(c, (X, y), epochs=3, batch_size=16, seed=8)
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


def test_training_learns_and_loss_decreases():
    X, y = _blobs()
    net = _net()
    res = train(net, (X, y), epochs=30, lr=0.01, seed=0)
    assert res.losses[-1] < res.losses[0]
    assert res.steps == 30 * int(np.ceil(len(y) / 64))
    assert evaluate(net, (X, y)).accuracy > 0.8


def test_resume_after_interruption_gives_the_uninterrupted_weights(tmp_path):
    X, y = _blobs()
    full = _net()
    train(full, (X, y), epochs=4, batch_size=16, seed=3)
    part = _net()
    ck = tmp_path / "ck.pt"
    train(part, (X, y), epochs=2, batch_size=16, seed=3, checkpoint=ck)  # "killed" after 2 epochs
    resumed = _net(seed=99)  # a fresh process: different initial weights
    res = train(resumed, (X, y), epochs=4, batch_size=16, seed=3, checkpoint=ck)
    assert res.resumed_from_epoch == 2 and len(res.losses) == 4
    for p, q in zip(full.parameters(), resumed.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_evaluate_matches_direct_computation():
    X, y = _blobs(seed=1)
    net = _net(seed=2)
    r = evaluate(net, (X, y))
    with torch.no_grad():
        net.eval()
        logits = net(torch.from_numpy(X))
    pred = logits.argmax(1).numpy()
    assert r.accuracy == pytest.approx(np.mean(pred == y))
    assert r.loss == pytest.approx(float(nn.functional.cross_entropy(logits.double(), torch.from_numpy(y))), rel=1e-6)
    for c in range(3):
        assert r.per_class_accuracy[c] == pytest.approx(np.mean(pred[y == c] == c))
    assert np.array_equal(r.correct, (pred == y).astype(np.int8))


def test_regression_r2_against_numpy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3)).astype(np.float32)
    t = (X @ np.array([1.0, -2.0, 0.5])).astype(np.float32)
    net = nn.Linear(3, 1)
    ds = as_dataset((X, t))
    assert ds.task == "regression"
    train(net, ds, epochs=200, lr=0.05, seed=0)
    r = evaluate(net, ds)
    with torch.no_grad():
        p = net(torch.from_numpy(X)).numpy().ravel()
    r2 = 1 - np.sum((t - p) ** 2) / np.sum((t - t.mean()) ** 2)
    assert r.r2 == pytest.approx(r2, rel=1e-4) and r.r2 > 0.99


def test_dataset_is_accepted_and_custom_loss_runs():
    X, y = _blobs()
    ds = Dataset("blobs", X[:90], y[:90], X[90:], y[90:], 3)
    net = _net()
    calls = []

    def my_loss(model, xb, yb):
        calls.append(len(xb))
        return nn.functional.cross_entropy(model(xb), yb) + 0.0 * sum(p.sum() for p in model.parameters())

    train(net, ds, epochs=1, batch_size=30, loss=my_loss)
    assert calls == [30, 30, 30]
    assert evaluate(net, ds).n == 30


@pytest.mark.parametrize("kwargs, word", [({"epochs": -1}, "epochs"), ({"epochs": 10 ** 9}, "epochs"),
                                          ({"lr": float("nan")}, "lr"), ({"optimizer": "lbfgs"}, "optimizer"),
                                          ({"device": "tpu:0"}, "device"), ({"batch_size": 0}, "batch_size")])
def test_bad_arguments_are_named(kwargs, word):
    X, y = _blobs()
    with pytest.raises(RedundancyError, match=word):
        train(_net(), (X, y), **kwargs)


def test_bad_data_is_refused():
    with pytest.raises(RedundancyError, match="NaN"):
        as_dataset((np.full((3, 2), np.nan), np.array([0, 1, 0])))
    with pytest.raises(RedundancyError, match="examples"):
        as_dataset((np.zeros((3, 2)), np.array([0, 1])))
    with pytest.raises(RedundancyError, match="data="):
        as_dataset("digits")


def test_step_budget_is_exact():
    X, y = _blobs(n=100)
    res = train(_net(), (X, y), epochs=None, max_steps=7, batch_size=30, seed=0)
    assert res.steps == 7 and res.epochs == 2  # 4 steps per epoch
    with pytest.raises(RedundancyError, match="max_steps"):
        train(_net(), (X, y), epochs=None)
