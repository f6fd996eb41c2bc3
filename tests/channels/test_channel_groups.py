"""find_groups: bad arguments get a one-line RedundancyError naming them; tracing leaves the model as it was."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from redundancy.errors import RedundancyError, UnsupportedLayerError
from redundancy.channels import find_groups


def _net(bn: bool = False):
    torch.manual_seed(0)
    mid = [nn.BatchNorm1d(4)] if bn else []
    return nn.Sequential(nn.Linear(3, 4), *mid, nn.ReLU(), nn.Linear(4, 2))


def _state(net):
    return {k: v.clone() for k, v in net.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("kw, name", [({"model": "net"}, "model"), ({"example": [[1.0, 2.0, 3.0]]}, "example"),
                                      ({"example": torch.full((1, 3), float("nan"))}, "example"),
                                      ({"layers": 3}, "layers"), ({"layers": ["nope"]}, "layers"),
                                      ({"layers": [0]}, "layers")])
def test_find_groups_names_the_bad_argument(kw, name):
    args = {"model": _net().eval(), "example": torch.zeros(1, 3), **kw}
    with pytest.raises(RedundancyError, match=name):
        find_groups(**args)


def test_find_groups_tracing_failure_is_one_line_and_train_mode_state_is_kept():
    with pytest.raises(UnsupportedLayerError) as err:
        find_groups(_net().eval(), torch.zeros(1, 5))  # wrong width: the trace fails inside torch
    assert "\n" not in str(err.value) and "trace" in str(err.value)
    net = _net(bn=True).train()
    before = _state(net)
    groups = find_groups(net, torch.randn(4, 3) + 3.0)  # a training-mode trace would move the BN statistics
    assert _same(before, _state(net)) and net.training and [g.layer for g in groups] == ["0"]
