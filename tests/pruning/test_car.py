"""CAR scores: batched masks against an independent one-model-per-filter loop, planted structure,
class-wise CAR, RAR, and the physically pruned model against the masked one."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from redundancy import zoo
from redundancy.counts import count_macs, parameter_count
from redundancy.errors import RedundancyError
from redundancy.channels import find_groups, masked_forward, prune_units
from redundancy.pruning import car_scores
from redundancy.training import evaluate
from redundancy.pruning import car_scores, layer_redundancy


def _randomize_bn(model, gen):
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen, dtype=m.running_mean.dtype))
            m.running_var.copy_(0.5 + torch.rand(n, generator=gen, dtype=m.running_var.dtype))
            m.weight.data.copy_(torch.randn(n, generator=gen, dtype=m.weight.dtype))
            m.bias.data.copy_(torch.randn(n, generator=gen, dtype=m.bias.dtype))
    return model


def _cnn(seed, dtype=torch.float64):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 5, 3, padding=1), nn.BatchNorm2d(5), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(5, 6, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 16, 4))
    return _randomize_bn(net, torch.Generator().manual_seed(seed)).to(dtype).eval()


def _data(net, seed, n=80, shape=(1, 8, 8), n_classes=4, noise=0.3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, *shape))
    with torch.no_grad():
        y = net(torch.as_tensor(X, dtype=next(net.parameters()).dtype)).argmax(1).numpy()
    flip = rng.random(n) < noise
    y[flip] = rng.integers(0, n_classes, flip.sum())
    return X, y


def _zeroed(net, names, ch):
    """An independent removal: zero the filter (weights and bias) of each conv in ``names`` and the
    scale and shift of the BatchNorm right after it, so that channel ``ch`` outputs exactly 0."""
    m = copy.deepcopy(net)
    mods = dict(m.named_modules())
    with torch.no_grad():
        for name in names:
            mods[name].weight[ch] = 0
            if mods[name].bias is not None:
                mods[name].bias[ch] = 0
    return m


@pytest.mark.parametrize("seed", [0, 1])
def test_batched_car_equals_one_model_per_filter_loop(seed):
    net = _cnn(seed)
    X, y = _data(net, seed)
    ds = (X, y)
    res = car_scores(net, ds, batch_masks=4, batch_size=40)  # several passes and chunks
    res_loss = car_scores(net, ds, metric="loss", batch_masks=7, curves=False)
    base = evaluate(net, ds)
    table = res.channel_table()
    for layer, members in (("0", ["0", "1"]), ("4", ["4"])):
        for ch in range(net[int(layer)].out_channels):
            ev = evaluate(_zeroed(net, members, ch), ds)
            row = table[(table.layer == layer) & (table.channel == ch)]
            assert len(row) == 1
            assert row.importance.item() == base.accuracy - ev.accuracy  # exactly the same number
            lrow = res_loss.channel_table()
            lval = lrow[(lrow.layer == layer) & (lrow.channel == ch)].importance.item()
            assert lval == pytest.approx(ev.loss - base.loss, abs=1e-10)


def test_batched_car_float32_and_batch_shapes_agree():
    net = _cnn(5, torch.float32)
    X, y = _data(net, 5)
    a = car_scores(net, (X, y), batch_masks=1, curves=False).car
    b = car_scores(net, (X, y), batch_masks=16, curves=False).car
    c = car_scores(net, (X, y), batch_masks=5, curves=False, replay=False).car
    assert np.array_equal(a, c)
    base = evaluate(net, (X, y)).accuracy
    loop = [base - evaluate(_zeroed(net, ["0", "1"], ch), (X, y)).accuracy for ch in range(5)]
    assert np.array_equal(a, b)
    np.testing.assert_array_equal(a[:5], np.array(loop))


def test_residual_group_is_scored_as_one_unit():
    net = _randomize_bn(zoo.resnet20(blocks_per_stage=1, widths=(4, 8), in_channels=1, num_classes=3),
                        torch.Generator().manual_seed(3)).double().eval()
    X, y = _data(net, 3, n=60, n_classes=3)
    res = car_scores(net, (X, y), curves=False)
    lt = res.layer_table()
    stream = lt[lt.layer == "0.0"].iloc[0]
    assert set(stream.members.split(",")) == {"0.0", "1.0.conv2"}
    base = evaluate(net, (X, y)).accuracy
    table = res.channel_table()
    for ch in range(4):  # the residual stream: stem conv + BN and the block's conv2 + BN together
        ev = evaluate(_zeroed(net, ["0.0", "0.1", "1.0.conv2", "1.0.bn2"], ch), (X, y)).accuracy
        assert table[(table.layer == "0.0") & (table.channel == ch)].importance.item() == base - ev


def _planted():
    """Conv1d(1 -> 4, k=1), mean pool, Linear(4 -> 2): channels 0 and 1 identical (x), channel 2 a
    random filter the classifier ignores, channel 3 an all-zero filter; logit difference 2(a0 + a1)."""
    net = nn.Sequential(nn.Conv1d(1, 4, 1), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(4, 2)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([1.0, 1.0, 0.7, 0.0]).reshape(4, 1, 1))
        net[0].bias.copy_(torch.tensor([0.0, 0.0, 0.3, 0.0]))
        net[3].weight.copy_(torch.tensor([[-1.0, -1.0, 0.0, 2.0], [1.0, 1.0, 0.0, -3.0]]))
        net[3].bias.zero_()
    rng = np.random.default_rng(0)
    s = rng.choice([-1.0, 1.0], 200) * rng.uniform(0.2, 1.0, 200)
    X = s[:, None, None] + 0.1 * rng.normal(size=(200, 1, 5))
    X -= X.mean(axis=2, keepdims=True) - s[:, None, None]
    return net.eval(), X, (s > 0).astype(np.int64)


def test_planted_dead_channels_have_car_exactly_zero():
    net, X, y = _planted()
    for metric in ("accuracy", "loss"):
        res = car_scores(net, (X, y), metric=metric)
        assert res.car[2] == 0.0 and res.car[3] == 0.0  # ignored channel, all-zero filter
    loss = car_scores(net, (X, y), metric="loss")
    assert loss.car[0] > 1e-3 and loss.car[0] == pytest.approx(loss.car[1], abs=1e-12)
    acc = car_scores(net, (X, y))
    assert acc.base == 1.0 and acc.car[0] == 0.0  # its twin still carries the sign
    order, q = loss.curves["0"]
    assert list(order) == [2, 3, 0, 1]  # the dead ones go first; removing them costs nothing
    assert q[1] == q[0] and q[2] == q[0] and q[3] < q[2] and q[4] < q[3]


def test_classwise_car_finds_the_channel_that_carries_one_class():
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(3), 40)
    X = 0.1 * rng.normal(size=(120, 3, 6))
    X[np.arange(120), y] += 1.0
    net = nn.Sequential(nn.Conv1d(3, 3, 1), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(3, 3)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(3).reshape(3, 3, 1)); net[0].bias.zero_()
        net[3].weight.copy_(torch.eye(3)); net[3].bias.zero_()
    res = car_scores(net.eval(), (X, y), classwise=True)
    assert res.base == 1.0
    for ch in range(3):
        row = res.classwise[ch]
        assert row[ch] > 0.5
        assert np.all(np.delete(row, ch) == 0.0)
    assert list(res.most_affected_class) == [0, 1, 2]
    assert {"most_affected_class", "least_affected_class"} <= set(res.channel_table().columns)


def test_rar_r2_matches_independent_regression_evaluation():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 1)).double().eval()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 3))
    with torch.no_grad():
        y = net(torch.as_tensor(X)).numpy().ravel() + 0.05 * rng.normal(size=90)
    res = car_scores(net, (X, y))
    assert res.metric == "r2" and res.task == "regression"
    base = evaluate(net, (X, y)).r2
    for ch in range(5):
        assert res.car[ch] == pytest.approx(base - evaluate(_zeroed(net, ["0"], ch), (X, y)).r2, abs=1e-10)
    custom = car_scores(net, (X, y), metric=lambda out, t: -float(((out.ravel() - t) ** 2).mean()), curves=False)
    mse = car_scores(net, (X, y), metric="loss", curves=False)
    np.testing.assert_allclose(custom.car, mse.car, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_physically_pruned_model_equals_masked_model(seed):
    for net, shape in ((_cnn(seed), (1, 8, 8)),
                       (_randomize_bn(zoo.resnet20(blocks_per_stage=1, widths=(4, 8), in_channels=1),
                                      torch.Generator().manual_seed(seed)).double().eval(), (1, 8, 8))):
        X = torch.as_tensor(np.random.default_rng(seed).normal(size=(16, *shape)))
        groups = find_groups(net, X[:1])
        rng = np.random.default_rng(seed)
        removed = [(g.index, int(r)) for g in groups for r in rng.choice(g.size, g.size // 2, replace=False)]
        pruned, diff = prune_units(net, groups, removed, X)
        with torch.no_grad():
            np.testing.assert_allclose(pruned(X).numpy(), masked_forward(net, groups, removed, X).numpy(),
                                       atol=1e-6)
        assert parameter_count(pruned) < parameter_count(net)
        assert sum(count_macs(pruned, shape).values()) < sum(count_macs(net, shape).values())
        assert all(isinstance(m, nn.Module) for m in pruned.modules())


def test_curves_and_layer_table_follow_the_scoreboard_interface():
    net = _cnn(0)
    X, y = _data(net, 0)
    res = car_scores(net, (X, y), seed=4)
    lt = res.layer_table()
    assert list(lt.layer) == ["0", "4"]
    assert ((lt.redundancy >= 0) & (lt.redundancy <= 1)).all()
    for layer, (order, q) in res.curves.items():
        assert q[0] == res.base and len(q) == len(order) + 1
    ct = res.channel_table()
    assert {"layer", "channel", "importance"} <= set(ct.columns) and len(ct) == 11
    assert res.to_dict()["car"] == list(res.car)
    again = car_scores(net, (X, y), seed=4)
    np.testing.assert_array_equal(again.car, res.car)


def test_bad_input_is_refused_by_name():
    net = _cnn(0)
    X, y = _data(net, 0)
    with pytest.raises(RedundancyError, match="layers"):
        car_scores(net, (X, y), layers=["7"])  # the classifier
    with pytest.raises(RedundancyError, match="metric"):
        car_scores(net, (X, y), metric="r2")
    with pytest.raises(RedundancyError, match="batch_masks"):
        car_scores(net, (X, y), batch_masks=0)
    with pytest.raises(RedundancyError, match="classwise"):
        car_scores(net, (X, y.astype(float)), classwise=True)
    groups = find_groups(net, torch.as_tensor(X[:1]))
    with pytest.raises(RedundancyError, match="keep at least one"):
        prune_units(net, groups, [(1, r) for r in range(6)], torch.as_tensor(X[:2]))


def _net(bn: bool = False):
    torch.manual_seed(0)
    mid = [nn.BatchNorm1d(4)] if bn else []
    return nn.Sequential(nn.Linear(3, 4), *mid, nn.ReLU(), nn.Linear(4, 2))


def _xy(n=24):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 3)).astype("float32")
    return X, (X[:, 0] > 0).astype(int)


def _state(net):
    return {k: v.clone() for k, v in net.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("q", [None, "abc", [[1.0, 0.0]], [], [1.0, float("nan")], [0.5, float("inf")]])
def test_layer_redundancy_refuses_what_is_not_a_finite_curve(q):
    with pytest.raises(RedundancyError, match="q"):
        layer_redundancy(q)


def test_layer_redundancy_is_scale_free_at_the_float_limits():
    q = np.array([0.9, 0.9, 0.9, 0.1])  # by hand: u = (0, 1, 1, 1) against kept 0..3 -> (0.5 + 1 + 1) / 3
    assert layer_redundancy(q) == pytest.approx(2.5 / 3)
    big = np.array([1e308, 1e308, 1e308, -1e308])  # q0 - qC overflows without rescaling
    assert layer_redundancy(big) == pytest.approx(2.5 / 3)
    assert layer_redundancy([0.0]) == 1.0 and layer_redundancy(np.zeros(4)) == 1.0


def test_car_scores_checks_groups_and_removed_and_restores_train_mode():
    net, data = _net(bn=True).train(), _xy()
    before = _state(net)
    res = car_scores(net, data, curves=False)
    assert net.training and all(m.training for m in net) and _same(before, _state(net)) and len(res.car) == 4
    with pytest.raises(RedundancyError, match="groups"):
        car_scores(net, data, groups=[3])
    with pytest.raises(RedundancyError, match="removed"):
        car_scores(net, data, removed=[(0, 99)])
    with pytest.raises(RedundancyError, match="metric"):
        car_scores(net, data, metric=np.array([1.0]))
