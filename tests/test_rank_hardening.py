"""Bad input to the rank-search API gets a RedundancyError naming the argument (issue 12)."""

import numpy as np
import pytest
import torch
from torch import nn

import redundancy.rank_search.search as search_mod
from redundancy.errors import RedundancyError
from redundancy.rank_search.finish import distillation_loss, finetune
from redundancy.rank_search.relaxation import MixedRankLayer, expected_reconstruction_error, rank_penalty, reconstruction_error
from redundancy.rank_search.schedule import default_plan
from redundancy.rank_search import decompose_at, max_search_rank
from redundancy.plotting.ranks import pareto_front


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv1d(2, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 6, 3))


def test_max_search_rank_refuses_what_it_cannot_search():
    with pytest.raises(RedundancyError, match="layer"):
        max_search_rank({1, 2}, "tt")
    with pytest.raises(RedundancyError, match="groups"):
        max_search_rank(nn.Conv2d(4, 4, 3, groups=4), "tt")
    with pytest.raises(RedundancyError, match="method"):
        max_search_rank(nn.Conv2d(4, 4, 3), "svd")
    # bisection = the linear scan of the break-even rank (independent: count the chain by hand)
    conv = nn.Conv2d(6, 10, 3)
    dense = sum(p.numel() for p in conv.parameters())
    want = max(r for r in range(1, 11) if r * 6 + r * r * 9 + r * 10 + 10 <= dense)
    assert max_search_rank(conv, "tt") == want


def test_decompose_at_validates_and_leaves_the_model_alone():
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(RedundancyError, match="ranks"):
        decompose_at(net, 1)
    with pytest.raises(RedundancyError, match="not a submodule"):
        decompose_at(net, {"nope": 1})
    with pytest.raises(RedundancyError, match=r"ranks\['0'\]"):
        decompose_at(net, {"0": 0})
    with pytest.raises(RedundancyError, match="takes ranks 1..2"):
        decompose_at(net, {"0": 50})
    with pytest.raises(RedundancyError, match="method"):
        decompose_at(net, {"0": 1}, method="svd")
    with pytest.raises(RedundancyError, match="cannot be searched"):
        decompose_at(nn.Sequential(nn.Conv2d(4, 4, 3, groups=2)), {"0": 1})
    bad = _net()
    with torch.no_grad():
        bad[0].weight[0, 0, 0] = float("nan")
    with pytest.raises(RedundancyError, match="NaN"):
        decompose_at(bad, {"0": 1})
    out = decompose_at(net, {"0": 2, "3": 2})
    assert out(torch.randn(2, 2, 8)).shape == (2, 3)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_internal_helpers_are_private():
    import redundancy.rank_search as rank_search
    import redundancy.rank_search.candidates as candidates

    assert set(rank_search.__all__) == {"search_ranks", "max_search_rank", "decompose_at", "finetune"}
    assert not hasattr(search_mod, "__all__") and not hasattr(candidates, "__all__")
    assert hasattr(candidates, "_layer_positions") and hasattr(candidates, "_replace_layers")


def test_mixed_functions_refuse_non_layers():
    m = MixedRankLayer(nn.Conv2d(3, 4, 3), "tt", [1, 2])
    for fn in (rank_penalty, reconstruction_error, expected_reconstruction_error):
        with pytest.raises(RedundancyError, match="layers"):
            fn(1)
        with pytest.raises(RedundancyError, match="layers"):
            fn([])
        with pytest.raises(RedundancyError, match=r"layers\[1\]"):
            fn([m, nn.Linear(2, 2)])
    with pytest.raises(RedundancyError, match="gamma"):
        rank_penalty([m], gamma=-1.0)
    with pytest.raises(RedundancyError, match="beta"):
        rank_penalty([m], beta=float("nan"))


def test_default_plan_and_pareto_front_bounds():
    with pytest.raises(RedundancyError, match="n_coarse"):
        default_plan(10, n_coarse=0)
    with pytest.raises(RedundancyError, match="max_rank"):
        default_plan(0)
    with pytest.raises(RedundancyError, match="x"):
        pareto_front(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(RedundancyError, match="y"):
        pareto_front([0.1, 0.2], [0.5, float("nan")])
    with pytest.raises(RedundancyError, match="one y per x"):
        pareto_front([0.1, 0.2], [0.5])
    assert pareto_front([0.3], [0.2]).tolist() == [0]
    # ties: equal points are both on the front, a same-x point with lower y is not
    assert pareto_front([0.1, 0.1, 0.1, 0.2], [0.5, 0.5, 0.4, 0.6]).tolist() == [0, 1, 3]


def test_finetune_refuses_bad_input_and_keeps_both_models():
    net = _net()
    comp = decompose_at(net, {"0": 1})
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2, 8)).astype("float32")
    y = (X[:, 0, 0] > 0).astype("int64")
    with pytest.raises(RedundancyError, match="original"):
        finetune(comp, np.float64("nan"), (X, y))
    with pytest.raises(RedundancyError, match="lam"):
        finetune(comp, net, (X, y), lam=float("inf"))
    with pytest.raises(RedundancyError, match="layers"):
        finetune(comp, net, (X, y), layers=[3])
    with pytest.raises(RedundancyError, match="layers"):
        distillation_loss(comp, net, layers=10 ** 50)
    with pytest.raises(RedundancyError, match="compressed"):
        distillation_loss("net", net)
    with pytest.raises(RedundancyError, match="classification"):
        finetune(comp, net, (X, X[:, 0, 0].astype("float64")))
    state = {k: v.clone() for k, v in comp.state_dict().items()}
    with pytest.raises(RedundancyError, match="finetune"):       # the model's own forward fails
        finetune(comp, net, (X[:, :, :5], y))
    assert all(torch.equal(state[k], v) for k, v in comp.state_dict().items())
    net.train()
    flags = [p.requires_grad for p in net.parameters()]
    before = {k: v.clone() for k, v in net.state_dict().items()}
    finetune(comp, net, (X, y), epochs=1)
    assert net.training and [p.requires_grad for p in net.parameters()] == flags
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


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
