"""The scoreboard channel scores (participation redundancy, L1, Taylor): bad arguments, overflow, model state."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from redundancy.errors import RedundancyError
from redundancy.scoreboard.channel_scores import l1_importance, participation_redundancy, taylor_importance


def _net(bn: bool = False):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), *([nn.BatchNorm1d(4)] if bn else []), nn.ReLU(), nn.Linear(4, 2))


def _xy(n=16):
    X = np.random.default_rng(0).normal(size=(n, 3)).astype("float32")
    return X, (X[:, 0] > 0).astype(int)


_GOOD = pd.DataFrame({"a": [0.1, 0.5, 0.9], "b": [0.2, 0.4, np.nan]})


@pytest.mark.parametrize("bad", [{1, 2}, [], None, "abc", [1.0, float("inf")], [[np.nan]]])
def test_participation_redundancy_refuses_non_arrays(bad):
    with pytest.raises(RedundancyError, match="importance"):
        participation_redundancy(bad)


def test_participation_redundancy_does_not_overflow():
    # by hand: a = (1, 1, 0): (sum a)^2 / (K sum a^2) = 4 / 6
    assert participation_redundancy([1e300, 1e300, 0.0]) == pytest.approx(1 - 4 / 6)
    assert participation_redundancy([1e-300, 1e-300, 0.0]) == pytest.approx(1 - 4 / 6)
    assert participation_redundancy(5.0) == 0.0 and participation_redundancy([0.0, 0.0]) == 1.0


@pytest.mark.parametrize("layers", [1, ["nope"], [0], "2x", []])
def test_l1_importance_refuses_layers_that_are_not_kernels(layers):
    with pytest.raises(RedundancyError, match="layers"):
        l1_importance(_net(), layers)


def test_l1_importance_refuses_non_finite_weights_and_takes_one_name():
    net = _net()
    assert np.allclose(l1_importance(net, "0")["0"], net[0].weight.detach().abs().sum(1).numpy())
    with torch.no_grad():
        net[0].weight[0, 0] = float("nan")
    with pytest.raises(RedundancyError, match="not finite"):
        l1_importance(net, ["0"])


@pytest.mark.parametrize("kw, name", [({"layers": 1}, "layers"), ({"layers": ["x"]}, "layers"),
                                      ({"seed": -1}, "seed"), ({"n_examples": 0}, "n_examples"),
                                      ({"batch_size": 10 ** 12}, "batch_size"), ({"progress": "x"}, "progress"),
                                      ({"model": nn.ReLU()}, "model"), ({"device": "abc"}, "device")])
def test_taylor_importance_names_the_bad_argument(kw, name):
    args = {"model": _net(), "data": _xy(), "layers": ["0"], **kw}
    with pytest.raises(RedundancyError, match=name):
        taylor_importance(**args)


def test_taylor_importance_leaves_the_model_as_it_was_and_wraps_forward_errors():
    net = _net(bn=True).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    t = taylor_importance(net, _xy(), ["0"])
    assert t["0"].shape == (4,) and net.training and all(m.training for m in net)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(p.grad is None for p in net.parameters())
    X = np.zeros((4, 5), "float32")  # the model expects 3 features
    with pytest.raises(RedundancyError, match="taylor_importance failed"):
        taylor_importance(_net(), (X, np.array([0, 1, 0, 1])), ["0"])
