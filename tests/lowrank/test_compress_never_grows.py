"""compress() does not swap a layer for a larger chain unless asked (issue 24): an energy-0.9
rule on a small depthwise / 1x1-heavy net."""

import torch
from torch import nn

from redundancy.counts import parameter_count
from redundancy.lowrank.compression import compress
from redundancy.lowrank.ranks import rank_rule


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.ReLU(),   # depthwise
                         nn.Conv2d(16, 24, 1), nn.ReLU(),                          # 1x1
                         nn.Conv2d(24, 24, 3, padding=1, groups=24), nn.ReLU(),
                         nn.Conv2d(24, 32, 1))


def test_energy_rule_on_a_pointwise_heavy_net_never_grows_the_model():
    net = _net()
    res = compress(net, ranks=rank_rule("energy", energy=0.9))
    assert res.params_after <= res.params_before == parameter_count(net)
    assert all(r.params_after <= r.params_before for r in res.layers)
    larger = [s for s in res.skipped if "would have" in s.reason]
    assert len(larger) == res.n_larger_skipped > 0
    assert all("allow_larger=True" in s.reason for s in larger)
    assert f"{res.n_larger_skipped} because the chain would be larger" in repr(res)
    assert res.to_dict()["n_larger_skipped"] == res.n_larger_skipped
    # asked for: the larger chains are used, and the model grows
    grown = compress(net, ranks=rank_rule("energy", energy=0.9), allow_larger=True)
    assert grown.n_larger_skipped == 0 and grown.params_after > res.params_after
    assert len(grown.layers) == len(res.layers) + res.n_larger_skipped
    x = torch.randn(2, 3, 8, 8)
    assert res.model(x).shape == net(x).shape
