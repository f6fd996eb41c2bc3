"""masked_forward: bad arguments are named, the masks match a hand-zeroed copy, the model is left as it was."""

from __future__ import annotations

from collections import OrderedDict
import numpy as np
import pytest
import torch
from torch import nn
from redundancy.errors import RedundancyError
from redundancy.channels import find_groups, masked_forward


def _net(bn: bool = False):
    torch.manual_seed(0)
    mid = [nn.BatchNorm1d(4)] if bn else []
    return nn.Sequential(nn.Linear(3, 4), *mid, nn.ReLU(), nn.Linear(4, 2))


def _state(net):
    return {k: v.clone() for k, v in net.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("kw, name", [({"groups": 1}, "groups"), ({"groups": []}, "groups"),
                                      ({"removed": None}, "removed"), ({"removed": [(5, 0)]}, "removed"),
                                      ({"removed": [(0, 9)]}, "removed"), ({"removed": [("a", 1)]}, "removed"),
                                      ({"removed": [(0, 1, 2)]}, "removed"), ({"X": np.zeros((2, 3))}, "X"),
                                      ({"model": 3}, "model")])
def test_masked_forward_names_the_bad_argument(kw, name):
    net = _net().eval()
    args = {"model": net, "groups": find_groups(net, torch.zeros(1, 3)), "removed": [(0, 1)],
            "X": torch.zeros(2, 3), **kw}
    with pytest.raises(RedundancyError, match=name):
        masked_forward(**args)


def test_masked_forward_refuses_groups_of_another_model_and_matches_a_hand_zeroed_copy():
    net = _net().eval()
    other = nn.Sequential(OrderedDict(fc=nn.Linear(3, 4), act=nn.ReLU(), out=nn.Linear(4, 2))).eval()
    with pytest.raises(RedundancyError, match="groups"):
        masked_forward(net, find_groups(other, torch.zeros(1, 3)), [], torch.zeros(2, 3))
    X = torch.randn(6, 3)
    hand = _net().eval()
    with torch.no_grad():  # independent: zero rows 1 and 3 of the first layer by hand
        hand[0].weight[[1, 3]] = 0
        hand[0].bias[[1, 3]] = 0
    out = masked_forward(net, find_groups(net, X[:1]), [(0, 1), (0, 3)], X)
    torch.testing.assert_close(out, hand(X).detach())


def test_masked_forward_keeps_batchnorm_statistics_and_refuses_non_finite_output():
    net = _net(bn=True).train()
    before = _state(net)
    groups = find_groups(net, torch.zeros(2, 3))
    masked_forward(net, groups, [(0, 0)], torch.randn(8, 3) + 5.0)
    assert _same(before, _state(net))
    with torch.no_grad():
        net[3].weight[0, 0] = float("inf")
    with pytest.raises(RedundancyError, match="NaN or inf"):
        masked_forward(net.eval(), groups, [], torch.ones(2, 3))
