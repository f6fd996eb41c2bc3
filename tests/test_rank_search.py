"""RENE rank search: Figure 3 schedule, planted TT/CP/Tucker ranks (data-free and with data), result counts."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from redundancy.counts import count_macs
from redundancy.errors import RedundancyError
from redundancy.lowrank.mixed import MixedRankLayer, rank_penalty
from redundancy.lowrank.schedule import coarse_to_fine, contract, default_plan, grid
from redundancy.lowrank.search import search_ranks

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
SPATIAL = {1: (10,), 2: (5, 5), 3: (3, 3, 3)}


def _plant(conv, rank, method, rng, noise=0.01):
    """Set conv's kernel to an exact TT (= tied Tucker-2) or CP3 kernel of ``rank`` plus 1 % noise."""
    co, ci, k = conv.out_channels, conv.in_channels, conv.kernel_size
    s = math.prod(k)
    a, b = rng.normal(size=(co, rank)), rng.normal(size=(rank, ci))
    if method == "cp":
        w = np.einsum("ta,sa,ac->tcs", a, rng.normal(size=(s, rank)), b)
    else:
        w = np.einsum("ta,asb,bc->tcs", a, rng.normal(size=(rank, s, rank)), b)
    w = w / w.std() * np.sqrt(2.0 / (ci * s))
    w = w + noise * w.std() * rng.normal(size=w.shape)
    with torch.no_grad():
        conv.weight.copy_(torch.as_tensor(w.reshape(co, ci, *k)))


def planted_net(d, ranks, method="tt", width=32, seed=0):
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    layers = []
    for r in ranks:
        conv = CONV[d](width, width, 3, padding=1).double()
        _plant(conv, r, method, rng)
        layers += [conv, nn.ReLU()]
    net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(width * math.prod(SPATIAL[d]), 5).double())
    return net


# ------------------------------------------------------------------ the schedule (paper's Figure 3)

def test_figure3_schedule():
    assert grid(100, 800, 100) == (100, 200, 300, 400, 500, 600, 700, 800)
    cands, step = contract(200, 100, 10)
    assert (cands[0], cands[-1], step, len(cands)) == (150, 250, 10, 11)
    cands, step = contract(240, 10, 10)
    assert cands == tuple(range(235, 246)) and step == 1
    assert contract(241, 1, 10) is None
    picks = iter([200, 240, 238])
    traj = coarse_to_fine(100, 800, 100, 10, lambda c: next(picks))
    assert [(c[0], c[-1], s) for c, s, _ in traj] == [(100, 800, 100), (150, 250, 10), (235, 245, 1)]
    assert default_plan(64) == (tuple(range(1, 65, 8)), 8, 8)
    with pytest.raises(RedundancyError, match="at most 64"):
        grid(1, 1000, 1)


def test_rank_penalty_matches_formula():
    torch.manual_seed(0)
    layers = [MixedRankLayer(nn.Conv2d(4, 6, 3).double(), "tt", c) for c in ((1, 2, 3), (2, 5))]
    with torch.no_grad():
        layers[0].alpha.copy_(torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64))
        layers[1].alpha.copy_(torch.tensor([1.5, 0.1], dtype=torch.float64))
    want = 0.0
    for alpha, cands in (([0.3, -1.0, 2.0], (1, 2, 3)), ([1.5, 0.1], (2, 5))):
        p = np.exp(alpha) / np.exp(alpha).sum()
        want += (float(np.dot(p, cands)) / max(cands)) ** 0.8
    assert abs(float(rank_penalty(layers).detach()) - 0.4 * want) < 1e-12
    # the mixed layer computes one conv with W_mix = sum_r p_r W_r (independent: mix the chain outputs)
    m = layers[1]
    x = torch.randn(2, 4, 7, 7, dtype=torch.float64)
    p = torch.softmax(m.alpha, 0)
    ref = sum(p[i] * nn.functional.conv2d(x, m.candidate_kernel(i)) for i in range(2)) + m.layer.bias[:, None, None]
    assert float((m(x) - ref).abs().max().detach()) < 1e-10


# ------------------------------------------------------------------ planted ranks

@pytest.mark.parametrize("d", [1, 2, 3])
def test_planted_tt_ranks_data_free(d):
    net = planted_net(d, (3, 8))
    res = search_ranks(net, (1, 13, 4, 4), method="tt", layers=["0", "2"], input_shape=(32, *SPATIAL[d]), iters=60, warmup=10)
    assert res.mode == "data-free"
    assert res.ranks == {"0": 3, "2": 8}, res.trajectory
    assert [t["step"] for t in res.trajectory] == [4, 4, 1, 1]


@pytest.mark.parametrize("method", ["cp", "tucker"])
def test_planted_cp_and_tucker_ranks_data_free(method):
    net = planted_net(2, (3, 8), method="cp" if method == "cp" else "tt")
    res = search_ranks(net, (1, 13, 4, 4), method=method, layers=["0", "2"], input_shape=(32, 5, 5), iters=60, warmup=10)
    assert res.ranks == {"0": 3, "2": 8}, res.trajectory


def test_planted_tt_ranks_with_data():
    net = planted_net(1, (3, 8))
    X = torch.randn(500, 32, 10, dtype=torch.float64)
    with torch.no_grad():
        out = net(X)
        net[-1].weight.mul_(20 / out.std())
        net[-1].bias.zero_()
        y = net(X).argmax(1)
    res = search_ranks(net, (1, 13, 4, 4), data=(X.float().numpy(), y.numpy()), method="tt", layers=["0", "2"], iters=60, warmup=10)
    assert res.mode == "data"
    assert res.ranks == {"0": 3, "2": 8}, res.trajectory


# ------------------------------------------------------------------ the result

def test_result_counts_table_and_compressed_model():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, groups=8), nn.ReLU(),
                        nn.Conv2d(8, 12, 3, stride=2, dilation=1), nn.Flatten(), nn.Linear(48, 4))
    res = search_ranks(net, [1, 2, 4], input_shape=(3, 7, 7), iters=3, warmup=1)
    assert set(res.ranks) == {"0", "4", "6"}
    assert res.skipped[0]["name"] == "2" and "groups=8" in res.skipped[0]["reason"]
    assert res.params_decomposed == sum(p.numel() for p in res.model.parameters())
    assert res.params_dense == sum(p.numel() for p in net.parameters())
    assert res.macs_dense == sum(count_macs(net, (3, 7, 7)).values())
    assert res.macs_decomposed == sum(count_macs(res.model, (3, 7, 7)).values())
    dense_other = res.params_dense - sum(r.params_dense for r in res.layers)
    assert res.params_decomposed == dense_other + sum(r.params_decomposed for r in res.layers)
    for row in res.layers:
        chain = res.model.get_submodule(row.name)
        assert row.params_decomposed == sum(p.numel() for p in chain.parameters())
        assert row.redundancy == pytest.approx(max(0.0, 1 - row.params_decomposed / row.params_dense))
        assert abs(sum(row.probs) - 1) < 1e-9 and row.rank_low <= row.rank_high
    table = res.layer_table()
    assert {"layer", "redundancy", "rank", "expected_rank"} <= set(table.columns)
    assert table["redundancy"].between(0, 1).all() and set(table["layer"]) == {"0", "4", "6"}
    assert res.to_dict()["layers"][0]["name"] == "0" and "RankSearchResult" in repr(res)
    assert res.model(torch.randn(2, 3, 7, 7)).shape == (2, 4)


def test_bad_input():
    net = nn.Sequential(nn.Conv2d(3, 4, 3))
    with pytest.raises(RedundancyError, match="input_shape"):
        search_ranks(net)
    with pytest.raises(RedundancyError, match="method"):
        search_ranks(net, method="svd", input_shape=(3, 5, 5))
    with pytest.raises(RedundancyError, match="no rank"):
        search_ranks(net, [100], input_shape=(3, 5, 5))
    with pytest.raises(RedundancyError, match="not a submodule"):
        search_ranks(net, layers=["nope"], input_shape=(3, 5, 5))
