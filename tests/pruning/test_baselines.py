"""The baseline criteria of redundancy.pruning.baselines: options checked, non-finite weights refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from redundancy.errors import RedundancyError
from redundancy.pruning.baselines import activation_scores, l1_scores, l2_scores, random_scores, taylor_scores


def _net(bn: bool = False):
    torch.manual_seed(0)
    mid = [nn.BatchNorm1d(4)] if bn else []
    return nn.Sequential(nn.Linear(3, 4), *mid, nn.ReLU(), nn.Linear(4, 2))


def _xy(n=24):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 3)).astype("float32")
    return X, (X[:, 0] > 0).astype(int)


@pytest.mark.parametrize("fn", [l1_scores, l2_scores, random_scores, activation_scores, taylor_scores])
def test_baseline_shortcuts_refuse_unknown_options_and_accept_known_ones(fn):
    net, data = _net().eval(), _xy()
    with pytest.raises(RedundancyError, match="bogus"):
        fn(net, data, bogus=1)
    with pytest.raises(RedundancyError, match="model"):
        fn("net", data)
    assert len(fn(net, data, seed=1, split="test", max_examples=10).score) == 4


def test_baseline_scores_refuse_non_finite_weights_instead_of_zeroing_them():
    net = _net().eval()
    with torch.no_grad():
        net[0].weight[1, 0] = float("nan")
    with pytest.raises(RedundancyError, match="not finite"):
        l1_scores(net, _xy())
