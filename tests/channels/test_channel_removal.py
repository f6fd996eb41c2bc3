"""prune_units (the one removal route): bad arguments are named, the model is left as it was."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from redundancy.errors import RedundancyError
from redundancy.channels import find_groups, prune_units


def _net(bn: bool = False):
    torch.manual_seed(0)
    mid = [nn.BatchNorm1d(4)] if bn else []
    return nn.Sequential(nn.Linear(3, 4), *mid, nn.ReLU(), nn.Linear(4, 2))


def _state(net):
    return {k: v.clone() for k, v in net.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("kw, name", [({"atol": -1.0}, "atol"), ({"atol": float("nan")}, "atol"),
                                      ({"check": "yes"}, "check"), ({"example": "x"}, "example"),
                                      ({"removed": [(0, r) for r in range(4)]}, "keep at least one")])
def test_prune_units_names_the_bad_argument(kw, name):
    net = _net().eval()
    args = {"model": net, "groups": find_groups(net, torch.zeros(1, 3)), "removed": [(0, 1)],
            "example": torch.zeros(2, 3), **kw}
    with pytest.raises(RedundancyError, match=name):
        prune_units(**args)


def test_prune_units_leaves_each_submodule_flag_and_state_as_it_was():
    net = _net(bn=True).train()
    net[2].eval()  # a mixed model: only the ReLU in eval mode
    before, X = _state(net), torch.randn(8, 3)
    small, diff = prune_units(net, find_groups(net, X[:1]), [(0, 2)], X)
    assert small[0].out_features == 3 and diff < 1e-5
    assert [m.training for m in net] == [True, True, False, True] and _same(before, _state(net))
