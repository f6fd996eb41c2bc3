"""Greedy CAR pruning and the baselines: planted structure, independent score computations, the
shared pruning path (targets, floors, fine-tuning, smaller models)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from redundancy.errors import RedundancyError
from redundancy.channels import find_groups, masked_forward
from redundancy.pruning import car_prune, car_scores, finetuned_curve, prune
from redundancy.pruning.baselines import activation_scores, l1_scores, l2_scores, random_scores, taylor_scores

from tests.pruning.test_car import _cnn, _data, _planted
from redundancy.pruning import car_prune, finetuned_curve


def test_greedy_prunes_dead_channels_first_then_the_twin_becomes_important():
    net, X, y = _planted()
    res = car_prune(net, (X, y), max_accuracy_drop=None, target=3, metric="loss", split="test")
    assert [u for u in res.removed[:2]] == [("0", 2), ("0", 3)]  # ignored channel, zero filter
    assert res.removed[2] in {("0", 0), ("0", 1)}
    h = res.history
    assert h[0]["scores"][("0", 2)] == 0.0 and h[0]["scores"][("0", 3)] == 0.0
    assert res.model[0].out_channels == 1 and res.channels_after == {"0": 1}
    # accuracy: the twins are each free (CAR 0) until one is gone; then the other's CAR rises
    acc = car_prune(net, (X, y), max_accuracy_drop=None, target=2, split="test")
    first = acc.removed[0]
    twin = ("0", 1 - first[1])
    assert first[1] in (0, 1) and acc.history[0]["scores"][twin] == 0.0
    assert acc.history[1]["scores"][twin] >= 0.4
    assert twin not in acc.removed
    # without recomputation the ranking is fixed: both twins can go (CAR 0 each), losing the class signal
    once = car_prune(net, (X, y), max_accuracy_drop=None, target=3, recompute=False, split="test")
    assert {("0", 0), ("0", 1)} <= set(once.removed) and once.quality_after_mask < acc.quality_after_mask


def test_pruned_model_matches_mask_and_shrinks():
    net = _cnn(3, torch.float32)
    X, y = _data(net, 3, n=120)
    res = car_prune(net, (X, y), max_accuracy_drop=None, target=0.5, per_step=3)
    assert res.channels_after == {"0": 2, "4": 3}  # round(0.5 * 11) = 6 of 11, at most per_step a step
    assert all(len(h["removed"]) <= 3 for h in res.history)
    assert res.params_after < res.params_before and res.macs_after < res.macs_before
    assert res.max_abs_diff <= 1e-5
    groups = find_groups(net, torch.as_tensor(X[:1], dtype=torch.float32))
    gi = {g.layer: g.index for g in groups}
    removed = [(gi[layer], groups[gi[layer]].channels.index(ch)) for layer, ch in res.removed]
    Xt = torch.as_tensor(X[:20], dtype=torch.float32)
    with torch.no_grad():
        np.testing.assert_allclose(res.model(Xt).numpy(), masked_forward(net, groups, removed, Xt).numpy(), atol=1e-5)
    assert isinstance(res.to_dict()["removed"], list) and len(res.to_pandas()) == 2


def test_l1_l2_activation_taylor_against_independent_computations():
    net = _cnn(1)
    X, y = _data(net, 1, n=40)
    w0, w4 = net[0].weight.detach(), net[4].weight.detach()
    l1 = l1_scores(net, (X, y)).score
    np.testing.assert_allclose(l1, np.r_[w0.abs().sum((1, 2, 3)).numpy(), w4.abs().sum((1, 2, 3)).numpy()])
    l2 = l2_scores(net, (X, y)).score
    np.testing.assert_allclose(l2, np.r_[w0.pow(2).sum((1, 2, 3)).sqrt().numpy(), w4.pow(2).sum((1, 2, 3)).sqrt().numpy()])
    # activations and gradients read by hand at the BatchNorm output (layer 0) and the conv output (layer 4)
    Xt = torch.as_tensor(X.astype(np.float32)).double()  # as_dataset stores inputs as float32
    a1 = net[1](net[0](Xt))
    a4_in = net[3](net[2](a1))
    a4 = net[4](a4_in)
    out = net[7](net[6](net[5](a4)))
    loss = nn.functional.cross_entropy(out, torch.as_tensor(y), reduction="sum")
    g1, g4 = torch.autograd.grad(loss, [a1, a4])
    act = np.r_[a1.abs().mean((0, 2, 3)).detach().numpy(), a4.abs().mean((0, 2, 3)).detach().numpy()]
    tay = np.r_[(a1 * g1).mean((2, 3)).abs().mean(0).detach().numpy(), (a4 * g4).mean((2, 3)).abs().mean(0).detach().numpy()]
    np.testing.assert_allclose(activation_scores(net, (X, y)).score, act, rtol=1e-10)
    np.testing.assert_allclose(taylor_scores(net, (X, y)).score, tay, rtol=1e-8)
    r1, r2 = random_scores(net, (X, y), seed=3).score, random_scores(net, (X, y), seed=3).score
    assert np.array_equal(r1, r2) and not np.array_equal(r1, random_scores(net, (X, y), seed=4).score)


def test_baseline_pruning_removes_the_lowest_scores_per_layer():
    net = _cnn(2, torch.float32)
    X, y = _data(net, 2, n=60)
    res = prune(net, (X, y), max_accuracy_drop=None, criterion="l1", target=0.5, scope="layer")
    s = l1_scores(net, (X, y)).channel_table()
    for layer, k in (("0", 2), ("4", 3)):
        sub = s[s.layer == layer].sort_values(["importance", "channel"])
        assert {c for lay, c in res.removed if lay == layer} == set(sub.channel[:k])
    assert res.channels_after == {"0": 3, "4": 3}


def test_quality_floor_and_finetuning():
    net = _cnn(4, torch.float32)
    X, y = _data(net, 4, n=100, noise=0.0)
    base = car_scores(net, (X, y), split="train", curves=False).base
    res = prune(net, (X, y), max_accuracy_drop=None, criterion="car", target=None, min_quality=base - 0.05)
    assert res.quality_after_mask >= base - 0.05 and len(res.removed) >= 1
    for crit in ("l2", "taylor"):
        r = prune(net, (X, y), max_accuracy_drop=None, criterion=crit, target=None, min_quality=base - 0.05)
        assert r.quality_after_mask >= base - 0.05
    ft = prune(net, (X, y), max_accuracy_drop=None, criterion="random", target=0.5, finetune_epochs=2, seed=1)
    assert ft.test_finetuned is not None and 0 <= ft.test_finetuned <= 1
    assert ft.removed == prune(net, (X, y), max_accuracy_drop=None, criterion="random", target=0.5, seed=1).removed
    kept, q = finetuned_curve(net, (X, y), "0", fractions=(0.4,), finetune_epochs=1)
    assert kept.tolist() == [1.0, 0.6] and q[0] == ft.test_before and 0 <= q[1] <= 1


def test_prune_refuses_bad_targets():
    net = _cnn(0, torch.float32)
    X, y = _data(net, 0, n=30)
    with pytest.raises(RedundancyError, match="target"):
        prune(net, (X, y), target=1.5)
    with pytest.raises(RedundancyError, match="target"):
        prune(net, (X, y), target=20)
    with pytest.raises(RedundancyError, match="criterion"):
        prune(net, (X, y), criterion="magic")
    with pytest.raises(RedundancyError, match="min_quality"):
        prune(net, (X, y), target=None)


def _net(bn: bool = False):
    torch.manual_seed(0)
    mid = [nn.BatchNorm1d(4)] if bn else []
    return nn.Sequential(nn.Linear(3, 4), *mid, nn.ReLU(), nn.Linear(4, 2))


def _xy(n=24):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 3)).astype("float32")
    return X, (X[:, 0] > 0).astype(int)


def test_car_prune_and_finetuned_curve_refuse_bad_options():
    net, data = _net().eval(), _xy()
    with pytest.raises(RedundancyError, match="bogus_option"):
        car_prune(net, data, bogus_option=1)
    with pytest.raises(RedundancyError, match="criterion"):
        car_prune(net, data, criterion="l1")  # car_prune is CAR; prune(criterion=...) for the rest
    for kw, name in (({"fractions": 1.5}, "fractions"), ({"fractions": (0.5, 1.0)}, "fractions"),
                     ({"fractions": ()}, "fractions"), ({"layer": 3}, "layer"), ({"criterion": "x"}, "criterion"),
                     ({"finetune_epochs": -1}, "finetune_epochs"), ({"layers": ["0"]}, "layers")):
        with pytest.raises(RedundancyError, match=name):
            finetuned_curve(net, data, **{"layer": "0", **kw})
    kept, q = finetuned_curve(net, data, "0", fractions=(0.5,), finetune_epochs=0, criterion="l1")
    assert kept.tolist() == [1.0, 0.5] and np.isfinite(q).all()
