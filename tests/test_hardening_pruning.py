"""Issue 12 for redundancy.pruning: bad arguments get a one-line RedundancyError naming them, nothing
overflows to NaN/inf, and the functions that run a forward leave the caller's model as it was."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from redundancy.errors import RedundancyError, UnsupportedLayerError
from redundancy.channels import find_groups, masked_forward, prune_units
from redundancy.pruning import car_prune, car_scores, finetuned_curve, layer_redundancy
from redundancy.pruning.baselines import activation_scores, l1_scores, l2_scores, random_scores, taylor_scores


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


# ----------------------------------------------------------------------------------- find_groups
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


# ----------------------------------------------------------------------------------- masked_forward / prune_units
@pytest.mark.parametrize("kw, name", [({"groups": 1}, "groups"), ({"groups": []}, "groups"),
                                      ({"removed": None}, "removed"), ({"removed": [(5, 0)]}, "removed"),
                                      ({"removed": [(0, 9)]}, "removed"), ({"removed": [("a", 1)]}, "removed"),
                                      ({"removed": [(0, 1, 2)]}, "removed"), ({"X": np.zeros((2, 3))}, "X"),
                                      ({"model": 3}, "model")])
def test_masked_forward_names_the_bad_argument(kw, name):
    net = _net().eval()
    args = {"model": net, "groups": find_groups(net, torch.zeros(1, 3)), "removed": [(0, 1)],
            "X": torch.zeros(2, 3), **kw}
    with pytest.raises(RedundancyError, match=name):
        masked_forward(**args)


def test_masked_forward_refuses_groups_of_another_model_and_matches_a_hand_zeroed_copy():
    net = _net().eval()
    other = nn.Sequential(OrderedDict(fc=nn.Linear(3, 4), act=nn.ReLU(), out=nn.Linear(4, 2))).eval()
    with pytest.raises(RedundancyError, match="groups"):
        masked_forward(net, find_groups(other, torch.zeros(1, 3)), [], torch.zeros(2, 3))
    X = torch.randn(6, 3)
    hand = _net().eval()
    with torch.no_grad():  # independent: zero rows 1 and 3 of the first layer by hand
        hand[0].weight[[1, 3]] = 0
        hand[0].bias[[1, 3]] = 0
    out = masked_forward(net, find_groups(net, X[:1]), [(0, 1), (0, 3)], X)
    torch.testing.assert_close(out, hand(X).detach())


def test_masked_forward_keeps_batchnorm_statistics_and_refuses_non_finite_output():
    net = _net(bn=True).train()
    before = _state(net)
    groups = find_groups(net, torch.zeros(2, 3))
    masked_forward(net, groups, [(0, 0)], torch.randn(8, 3) + 5.0)
    assert _same(before, _state(net))
    with torch.no_grad():
        net[3].weight[0, 0] = float("inf")
    with pytest.raises(RedundancyError, match="NaN or inf"):
        masked_forward(net.eval(), groups, [], torch.ones(2, 3))


@pytest.mark.parametrize("kw, name", [({"atol": -1.0}, "atol"), ({"atol": float("nan")}, "atol"),
                                      ({"check": "yes"}, "check"), ({"example": "x"}, "example"),
                                      ({"removed": [(0, r) for r in range(4)]}, "keep at least one")])
def test_prune_units_names_the_bad_argument(kw, name):
    net = _net().eval()
    args = {"model": net, "groups": find_groups(net, torch.zeros(1, 3)), "removed": [(0, 1)],
            "example": torch.zeros(2, 3), **kw}
    with pytest.raises(RedundancyError, match=name):
        prune_units(**args)


def test_prune_units_leaves_each_submodule_flag_and_state_as_it_was():
    net = _net(bn=True).train()
    net[2].eval()  # a mixed model: only the ReLU in eval mode
    before, X = _state(net), torch.randn(8, 3)
    small, diff = prune_units(net, find_groups(net, X[:1]), [(0, 2)], X)
    assert small[0].out_features == 3 and diff < 1e-5
    assert [m.training for m in net] == [True, True, False, True] and _same(before, _state(net))


# ----------------------------------------------------------------------------------- layer_redundancy
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


# ----------------------------------------------------------------------------------- the shortcuts
@pytest.mark.parametrize("fn", [l1_scores, l2_scores, random_scores, activation_scores, taylor_scores])
def test_baseline_shortcuts_refuse_unknown_options_and_accept_known_ones(fn):
    net, data = _net().eval(), _xy()
    with pytest.raises(RedundancyError, match="bogus"):
        fn(net, data, bogus=1)
    with pytest.raises(RedundancyError, match="model"):
        fn("net", data)
    assert len(fn(net, data, seed=1, split="test", max_examples=10).score) == 4


def test_baseline_scores_refuse_non_finite_weights_instead_of_zeroing_them():
    net = _net().eval()
    with torch.no_grad():
        net[0].weight[1, 0] = float("nan")
    with pytest.raises(RedundancyError, match="not finite"):
        l1_scores(net, _xy())


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


def test_simple_cnn_refuses_absurd_sizes_before_allocating():
    from redundancy.counts import parameter_count
    from redundancy.pruning.models import MAX_CNN_PARAMS, simple_cnn

    for kw, name in (({"in_channels": 2 ** 64}, "in_channels"), ({"widths": (10 ** 7,)}, "widths"),
                     ({"kernel_size": 1000}, "kernel_size"), ({"seed": 2 ** 64}, "seed"),
                     ({"widths": (50_000, 50_000)}, "parameters")):
        with pytest.raises(RedundancyError, match=name):
            simple_cnn(**kw)
    assert parameter_count(simple_cnn(in_channels=3, widths=(5, 7), num_classes=4, kernel_size=2)) < MAX_CNN_PARAMS
