"""RENE rank search: Figure 3 schedule, planted TT/CP/Tucker ranks (data-free and with data), result counts."""

import numpy as np
import pytest
import torch
from torch import nn

from redundancy.counts import count_macs
from redundancy.errors import RedundancyError
from redundancy.rank_search.relaxation import MixedRankLayer, expected_reconstruction_error, rank_penalty, reconstruction_error
from redundancy.rank_search.schedule import coarse_to_fine, contract, default_plan, grid
from redundancy.rank_search.search import search_ranks
import redundancy.rank_search.search as search_mod
from redundancy.rank_search.finish import distillation_loss, finetune
from redundancy.rank_search.schedule import default_plan
from redundancy.rank_search import decompose_at, max_search_rank
from redundancy.plotting.ranks import pareto_front

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
SPATIAL = {1: 6, 2: 4, 3: 2}           # input length / side of each planted net
WIDTH, PLANTED, CANDIDATES = 24, (2, 5), (1, 7, 3, 3)   # stage 1: {1, 4, 7} at step 3, stage 2: step 1
FAST = dict(iters=25, warmup=5)


def _kernel(rank, method, co, ci, s, rng):
    """An exact TT (= tied Tucker-2) or CP3 kernel of ``rank``, He-scaled, as ``(C_out, C_in, S)``."""
    a, b = rng.normal(size=(co, rank)), rng.normal(size=(rank, ci))
    if method == "cp":
        w = np.einsum("ta,sa,ac->tcs", a, rng.normal(size=(s, rank)), b)
    else:
        w = np.einsum("ta,asb,bc->tcs", a, rng.normal(size=(rank, s, rank)), b)
    return w / w.std() * np.sqrt(2.0 / (ci * s))


def planted_net(d, ranks=PLANTED, method="tt", width=WIDTH, seed=0, data=False, n=300, noise=0.01):
    """Convs ``0`` and ``2`` with exact kernels of ``ranks``, plus ``noise`` relative Gaussian noise.

    With ``data``, also ``(X, y)``: ``y`` are the predictions of the *noise-free* planted network,
    whose readout is centred on ``X`` (balanced classes) and scaled to logits of standard deviation
    10, so that the held-out cross-entropy depends on each layer's rank (below the planted rank it
    rises several-fold) but not on how much of the noise a larger rank fits.
    """
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    layers, k = [], (3,) * d
    for r in ranks:
        conv = CONV[d](width, width, 3, padding=1).double()
        with torch.no_grad():
            conv.weight.copy_(torch.as_tensor(_kernel(r, method, width, width, 3 ** d, rng).reshape(width, width, *k)))
        layers += [conv, nn.ReLU()]
    net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(width * SPATIAL[d] ** d, 5).double())
    X = y = None
    if data:
        X = torch.as_tensor(rng.normal(size=(n, width) + (SPATIAL[d],) * d))
        with torch.no_grad():
            net[-1].bias.zero_()
            net[-1].weight.mul_(10 / net(X).std())
            net[-1].bias.copy_(-net(X).mean(0))
            y = net(X).argmax(1)
    for i in range(0, 2 * len(ranks), 2):
        w = net[i].weight.detach()
        with torch.no_grad():
            w.add_(noise * w.std() * torch.as_tensor(rng.normal(size=tuple(w.shape))))
    return net, ((X.float().numpy(), y.numpy()) if data else None)


_SEARCHES = {}


def planted_search(d, method, mode, seed=0, warm_start=None):
    """One search per (d, method, mode, seed, warm_start), shared by the tests of this module."""
    key = (d, method, mode, seed, warm_start)
    if key not in _SEARCHES:
        net, data = planted_net(d, method="cp" if method == "cp" else "tt", seed=seed, data=mode == "data")
        kw = dict(data=data, val_fraction=0.2) if data else dict(input_shape=(WIDTH,) + (SPATIAL[d],) * d)
        _SEARCHES[key] = search_ranks(net, CANDIDATES, method=method, layers=["0", "2"], seed=seed,
                                      warm_start=warm_start, **kw, **FAST)
    return _SEARCHES[key]


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


def test_reconstruction_errors_and_their_gradients():
    """Both errors against numpy; the Jensen bound's factor gradient is p_r times candidate r's own."""
    torch.manual_seed(1)
    layer = MixedRankLayer(nn.Conv2d(5, 6, 3).double(), "cp", (1, 2, 4))
    with torch.no_grad():
        layer.alpha.copy_(torch.tensor([0.2, -0.4, 1.1], dtype=torch.float64))
        for f in layer.factors:
            f.add_(0.05 * torch.randn_like(f))
    w = layer.target.numpy()
    ks = layer.candidate_kernels().detach().numpy()
    p = np.exp([0.2, -0.4, 1.1]) / np.exp([0.2, -0.4, 1.1]).sum()
    errs = np.array([((w - k) ** 2).sum() for k in ks])
    mix = ((w - np.tensordot(p, ks, 1)) ** 2).sum()
    assert float(reconstruction_error([layer]).detach()) == pytest.approx(mix, rel=1e-12)
    assert float(expected_reconstruction_error([layer]).detach()) == pytest.approx(float(p @ errs), rel=1e-12)
    assert float(p @ errs) >= mix                      # Jensen
    # gradient in the factors: sum_r p_r d e_r (autograd of each candidate's own error, separately)
    g = torch.autograd.grad(expected_reconstruction_error([layer]), list(layer.factors))
    for j, f in enumerate(layer.factors):
        for i in range(3):
            e_i = ((layer.target - layer.candidate_kernels()[i]) ** 2).sum()
            gi = torch.autograd.grad(e_i, f)[0][i]
            assert torch.allclose(g[j][i], p[i] * gi, atol=1e-10)


# ------------------------------------------------------------------ planted ranks

PLANTED_CASES = [(1, "tt"), (2, "tt"), (3, "tt"), (2, "cp"), (2, "tucker")]


@pytest.mark.parametrize("mode", ["data-free", "data"])
@pytest.mark.parametrize("d,method", PLANTED_CASES)
def test_planted_ranks_are_found(d, method, mode):
    """Planted ranks (2, 5) + 1 % noise: the schedule {1, 4, 7}/3 -> [r̄ ± 2]/1 returns them exactly."""
    res = planted_search(d, method, mode)
    assert res.mode == mode
    assert res.ranks == {"0": PLANTED[0], "2": PLANTED[1]}, [(t["layer"], t["r_bar"], t["probs"]) for t in res.trajectory]
    assert [t["step"] for t in res.trajectory] == [3, 3, 1, 1]
    # the final distribution is concentrated on the planted rank (no hedging between ranks)
    for row, r in zip(res.layers, PLANTED):
        assert row.probs[row.candidates.index(r)] > 0.5 and row.rank_low <= r <= row.rank_high


def test_no_collapse_to_rank_one_with_data():
    """The with-data collapse (issue 13): the rank-1 candidate loses its mass at the first stage.

    With the mixture error as factor objective, a rank-1 and a rank-4 kernel co-adapted to an exact
    mixture and ``p(1)`` grew to ~0.5 on a planted rank-2 layer (argmax 1). With the Jensen bound
    every candidate stays an approximation on its own, and ``p(1)`` goes to ~0.
    """
    res = planted_search(2, "tt", "data", warm_start=0.0)   # the paper's uniform start
    assert res.settings["warm_start"] == 0.0 and res.ranks == {"0": PLANTED[0], "2": PLANTED[1]}
    first = [t for t in res.trajectory if t["stage"] == 0]
    assert all(t["probs"][0] < 0.05 for t in first), first
    # the chosen decompositions are the planted kernels up to the noise, and the held-out loss of the
    # compressed net stays far below chance (log 5 = 1.61)
    assert all(row.rel_error < 0.05 for row in res.layers)
    assert res.val_loss_compressed < 0.5 and res.val_loss_dense < 0.5
    assert planted_search(2, "tt", "data-free").val_loss_dense is None
    # the default start: leaning to the dense end with data, uniform without
    assert planted_search(2, "tt", "data").settings["warm_start"] == 3.0
    assert planted_search(2, "tt", "data-free").settings["warm_start"] == 0.0


# ------------------------------------------------------------------ the result

def test_result_counts_table_and_compressed_model():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, groups=8), nn.ReLU(),
                        nn.Conv2d(8, 12, 3, stride=2, dilation=1), nn.Flatten(), nn.Linear(48, 4))
    res = search_ranks(net, [1, 2, 4], input_shape=(4, 7, 7), iters=3, warmup=1)
    assert set(res.ranks) == {"0", "4", "6"}
    assert res.skipped[0]["name"] == "2" and "groups=8" in res.skipped[0]["reason"]
    assert res.params_decomposed == sum(p.numel() for p in res.model.parameters())
    assert res.params_dense == sum(p.numel() for p in net.parameters())
    assert res.macs_dense == sum(count_macs(net, (4, 7, 7)).values())
    assert res.macs_decomposed == sum(count_macs(res.model, (4, 7, 7)).values())
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
    assert res.model(torch.randn(2, 4, 7, 7)).shape == (2, 4)


def test_bad_input():
    net = nn.Sequential(nn.Conv2d(4, 4, 3))
    with pytest.raises(RedundancyError, match="input_shape"):
        search_ranks(net)
    with pytest.raises(RedundancyError, match="method"):
        search_ranks(net, method="svd", input_shape=(4, 5, 5))
    with pytest.raises(RedundancyError, match="no rank"):
        search_ranks(net, [100], input_shape=(4, 5, 5))
    with pytest.raises(RedundancyError, match="not a submodule"):
        search_ranks(net, layers=["nope"], input_shape=(4, 5, 5))
    # data-free, a conv with <= 3 input or output channels is kept dense: nothing left to search
    with pytest.raises(RedundancyError, match="kept dense: 3 input"):
        search_ranks(nn.Sequential(nn.Conv2d(3, 4, 3)), input_shape=(3, 5, 5))


def test_a_bare_linear_model_is_searched_as_its_own_layer():
    # used to raise AttributeError: 'Linear' object has no attribute 'factors'
    from redundancy.rank_search import search_ranks

    res = search_ranks(nn.Linear(4, 2), [1, 2], input_shape=(4,), iters=2, warmup=1)
    assert res.ranks == {"": 1}
    assert res.model(torch.zeros(3, 4)).shape == (3, 2)


@pytest.mark.parametrize("shape", [(5,), (3, 7)])
def test_search_refuses_an_input_shape_that_does_not_fit(shape):
    from redundancy.rank_search import search_ranks

    with pytest.raises(RedundancyError, match="input_shape"):
        search_ranks(nn.Linear(4, 2), [1, 2], input_shape=shape, iters=2)


def test_search_refuses_a_meta_device_model():
    from redundancy.rank_search import search_ranks

    with pytest.raises(RedundancyError, match="meta"):
        search_ranks(nn.Linear(4, 2, device="meta"), [1, 2], input_shape=(4,))
