"""Layer-wise distillation fine-tuning of a rank-searched network."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from redundancy.errors import RedundancyError
from redundancy.rank_search.finish import distillation_loss, finetune
from redundancy.rank_search.search import search_ranks
from redundancy.training import evaluate
import redundancy.rank_search.search as search_mod
from redundancy.rank_search.relaxation import MixedRankLayer, expected_reconstruction_error, rank_penalty, reconstruction_error
from redundancy.rank_search.schedule import default_plan
from redundancy.rank_search import decompose_at, max_search_rank
from redundancy.plotting.ranks import pareto_front


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv1d(2, 8, 3, padding=1), nn.ReLU(), nn.Conv1d(8, 8, 3), nn.ReLU(), nn.Flatten(),
                        nn.Linear(8 * 10, 3))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 2, 12)).astype("float32")
    y = (X[:, 0, :6].sum(1) > X[:, 1, 6:].sum(1)).astype("int64") + (X[:, 0, 0] > 1).astype("int64")
    res = search_ranks(net, [1, 2], data=(X, y), iters=3, warmup=1, layers=["0", "2"])
    return net, res.model, X, y


def _setup(setup):
    """A fresh copy of the compressed model for each test (fine-tuning changes it in place)."""
    net, comp, X, y = setup
    return net, copy.deepcopy(comp), X, y


def test_loss_equals_the_formula_by_hand(setup):
    net, comp, X, y = _setup(setup)
    loss, close = distillation_loss(comp, net, lam=0.5)
    xb, yb = torch.as_tensor(X[:16]), torch.as_tensor(y[:16])
    value = float(loss(comp, xb, yb).detach())
    close()
    # by hand, layer by layer (no hooks): outputs of conv 0 and conv 2 in both nets
    with torch.no_grad():
        o0 = net[0](xb); o2 = net[2](torch.relu(o0))
        d0 = comp[0](xb); d2 = comp[2](torch.relu(d0))
        ce = nn.functional.cross_entropy(comp(xb), yb)
        w_terms = 0.0
        for i in (0, 2):
            c = comp[i]
            w_hat = torch.einsum("ta,asb,bc->tcs", c.restore.weight[:, :, 0], c.core.weight.permute(0, 2, 1),
                                 c.reduce.weight[:, :, 0])
            w_terms += float(((net[i].weight - w_hat) ** 2).sum()) / net[i].weight.numel()
        o_terms = float(((o0 - d0) ** 2).sum()) / o0.numel() + float(((o2 - d2) ** 2).sum()) / o2.numel()
    assert value == pytest.approx(float(ce) + 0.5 * (w_terms + o_terms), rel=1e-5)


def test_finetune_lowers_the_loss_and_keeps_the_teacher(setup):
    net, comp, X, y = _setup(setup)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    acc0 = evaluate(comp, (X, y), split="train").accuracy
    res = finetune(comp, net, (X, y), epochs=8, lr=5e-3, seed=0)
    assert res.losses[-1] < res.losses[0]
    assert evaluate(comp, (X, y), split="train").accuracy >= acc0
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    # hooks removed: calling the models after fine-tuning leaves nothing registered
    assert not any(m._forward_hooks for m in net.modules()) and not any(m._forward_hooks for m in comp.modules())


def test_finetune_bad_input(setup):
    net, comp, X, y = _setup(setup)
    with pytest.raises(RedundancyError, match="no CompressedLayer"):
        finetune(net, net, (X, y))
    with pytest.raises(RedundancyError, match="lam"):
        finetune(comp, net, (X, y), lam=-1.0)


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv1d(2, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 6, 3))


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
