"""rank_rule on grouped convs: ranks are picked per group's block, compress accepts them and the
chain is exact per block (checked against the original layer's output)."""

import numpy as np
import pytest
import torch
from torch import nn

from redundancy.lowrank.compression import compress
from redundancy.lowrank.ranks import rank_rule


@pytest.mark.parametrize("rule,params", [("fraction", {"fraction": 0.5}), ("energy", {"energy": 0.9}),
                                         ("evbmf", {})])
def test_rank_rules_on_grouped_conv(rule, params):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1, groups=4), nn.ReLU(),
                        nn.Conv2d(32, 32, 3, padding=1, groups=32))
    r = rank_rule(rule, **params)
    res = compress(net, r)
    ranks = res.ranks["0"]
    assert all(1 <= a <= 8 for a in ranks)             # per block (8 out x 8 in channels)
    sel = r.selections["0"]
    assert sel.shape[:2] == (8, 8) and sel.details["groups"] == 4
    assert [s.name for s in res.skipped] == ["2"]   # depthwise: nothing to compress, with the reason


def test_energy_rule_takes_the_largest_group_rank_and_stays_exact():
    """Group 0 has planted rank 2, group 1 planted rank 5 (both channel modes); energy 0.999
    must keep 5 for both groups and the chain must reproduce a rank-5-per-group kernel exactly."""
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 16, 3, padding=1, groups=2, bias=False)
    rng = np.random.default_rng(0)
    blocks = []
    for r in (2, 5):
        core = rng.normal(size=(r, r, 3, 3))
        u, v = rng.normal(size=(8, r)), rng.normal(size=(8, r))
        blocks.append(np.einsum("abxy,ia,jb->ijxy", core, u, v))
    with torch.no_grad():
        conv.weight.copy_(torch.as_tensor(np.concatenate(blocks), dtype=torch.float32))
    rule = rank_rule("energy", energy=0.999999)
    res = compress(nn.Sequential(conv), rule)
    assert res.ranks["0"] == (5, 5)
    assert rule.selections["0"].details["per_group"][0].ranks == (2, 2)
    x = torch.randn(2, 16, 6, 6)
    assert torch.allclose(res.model(x), conv(x), atol=1e-4, rtol=1e-4)


def test_fraction_rule_regnet_like_grouped_conv():
    net = nn.Sequential(nn.Conv2d(48, 48, 3, padding=1, groups=6, bias=False))   # group width 8, as regnet_y_400mf
    res = compress(net, rank_rule("fraction", fraction=0.25))
    assert res.params_after < res.params_before
