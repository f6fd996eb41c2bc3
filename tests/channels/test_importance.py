"""The channel importances and the removal route against independent computations."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from redundancy.bayes.prune import InclusionImportance
from redundancy.channels import L1, L2, BatchNormScale, Importance, Taylor, find_groups, masked_forward, prune_units
from redundancy.channels.importance import Activation
from redundancy.pruning import car_scores
from redundancy.pruning.car import CARImportance


def _net(seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 5, 3), nn.BatchNorm2d(5),
                        nn.ReLU(), nn.Flatten(), nn.Linear(5 * 2 * 2, 3))
    for bn in (net[1], net[4]):
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2)
        bn.weight.data.normal_()
        bn.bias.data.normal_()
    return net.eval()


def _xy(n=11, seed=0):
    rng = np.random.default_rng(seed)
    return (torch.as_tensor(rng.normal(size=(n, 2, 6, 6)).astype("float32")),
            torch.as_tensor(rng.integers(0, 3, n)))


def test_every_importance_implements_the_protocol():
    for imp in (L1(), L2(), BatchNormScale(), Taylor(), Activation(), CARImportance(), InclusionImportance({})):
        assert isinstance(imp, Importance)


def test_l1_l2_and_bn_scale_match_a_numpy_loop():
    net = _net()
    X, _ = _xy()
    groups = find_groups(net, X[:1])
    assert [g.layer for g in groups] == ["0", "3"]
    want1, want2, wantbn = [], [], []
    for conv, bn in ((net[0], net[1]), (net[3], net[4])):
        W = conv.weight.detach().double().numpy()
        for r in range(W.shape[0]):
            want1.append(sum(abs(float(v)) for v in W[r].ravel()))
            want2.append(np.sqrt(sum(float(v) ** 2 for v in W[r].ravel())))
            wantbn.append(abs(float(bn.weight[r].detach())))
    assert np.allclose(L1()(net, groups), want1, rtol=1e-12)
    assert np.allclose(L2()(net, groups), want2, rtol=1e-12)
    assert np.allclose(BatchNormScale()(net, groups), wantbn, rtol=1e-12)
    assert np.allclose(L1.of_kernel(net[0].weight), want1[:4], rtol=1e-12)


def test_taylor_matches_per_example_autograd_at_the_batchnorm_outputs():
    net = _net()
    X, y = _xy()
    groups = find_groups(net, X[:1])
    got = Taylor(batch_size=4)(net, groups, X, y)
    want = [np.zeros(4), np.zeros(5)]
    for i in range(len(X)):                      # one example at a time, activations by hand
        a1 = net[:2](X[i:i + 1]).detach().requires_grad_(True)
        a2 = net[3:5](net[2](a1))
        out = net[7](net[6](net[5](a2)))
        loss = nn.functional.cross_entropy(out, y[i:i + 1])
        g1, g2 = torch.autograd.grad(loss, [a1, a2])
        want[0] += (a1 * g1).mean((2, 3)).abs()[0].detach().double().numpy() / len(X)
        want[1] += (a2 * g2).mean((2, 3)).abs()[0].detach().double().numpy() / len(X)
    assert np.allclose(got, np.concatenate(want), rtol=1e-4, atol=1e-9)


def test_activation_matches_the_mean_absolute_batchnorm_output():
    net = _net()
    X, y = _xy()
    with torch.no_grad():
        a1 = net[:2](X).abs().mean((2, 3)).mean(0)
        a2 = net[:5](X).abs().mean((2, 3)).mean(0)
    got = Activation()(net, find_groups(net, X[:1]), X, y)
    assert np.allclose(got, torch.cat([a1, a2]).double().numpy(), rtol=1e-5)


def test_car_importance_is_the_accuracy_drop_of_car_scores():
    net = _net()
    X, y = _xy(40)
    y = net(X).argmax(1)
    groups = find_groups(net, X[:1])
    got = CARImportance("accuracy", n_classes=3)(net, groups, X, y)
    res = car_scores(net, (X.numpy(), y.numpy()), split="train", groups=groups, curves=False)
    assert np.allclose(got, res.car)


def test_removal_equals_a_hand_masked_copy():
    net = _net()
    X, _ = _xy()
    groups = find_groups(net, X[:1])
    removed = [(0, 1), (0, 3), (1, 0), (1, 2), (1, 4)]
    small, diff = prune_units(net, groups, removed, X)
    assert small[0].out_channels == 2 and small[3].in_channels == 2 and small[3].out_channels == 2
    assert small[7].in_features == 2 * 2 * 2
    hand = copy.deepcopy(net)
    with torch.no_grad():                        # zero the BatchNorm outputs of the removed channels
        for g, r in removed:
            bn = hand[1] if g == 0 else hand[4]
            bn.weight[r] = 0.0
            bn.bias[r] = 0.0
        want = hand(X)
        assert torch.allclose(small(X), want, atol=1e-5)
        assert torch.allclose(masked_forward(net, groups, removed, X), want, atol=1e-5)
    assert diff < 1e-5


def test_inclusion_importance_reads_the_scores_of_each_label_layer():
    net = _net()
    X, _ = _xy()
    groups = find_groups(net, X[:1])
    scores = {"0": np.arange(4) / 10, "3": np.arange(5) / 10 + 1}
    assert InclusionImportance(scores)(net, groups).tolist() == pytest.approx(
        [0.0, 0.1, 0.2, 0.3, 1.0, 1.1, 1.2, 1.3, 1.4])
