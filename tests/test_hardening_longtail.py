"""Issue 12 for ``redundancy.longtail``: bad arguments get a RedundancyError naming them, extreme scores
give finite bins, absurd sizes are refused, and the caller's model is not changed."""

import numpy as np
import pytest
import torch
from torch import nn

from redundancy.bayes.prune import prune_by_magnitude
from redundancy.errors import RedundancyError
from redundancy.longtail import draw_runs, example_loss, make_models, mismatch_report
from redundancy.longtail.compressions import compression_suite, quantize_dynamic_int8, weight_sparsity
from redundancy.longtail.mismatch import as_scores, bin_edges
from redundancy.zoo.small import mlp_classifier as lt_mlp
from redundancy.zoo.small import two_conv_cnn as lt_cnn


def _data(n=30, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype("float32")
    return X, (X[:, 0] > 0).astype("int64")


# ----------------------------------------------------------------------------------- bin_edges
@pytest.mark.parametrize("score,bins,match", [(None, 5, "score"), (np.array([1.0, np.nan]), 5, "score"),
                                              (np.zeros((2, 2)), 5, "score"), (np.arange(4.0), 0, "bins"),
                                              (np.arange(4.0), "uniform:0", "bins"),
                                              (np.arange(4.0), "uniform:100000", "bins"),
                                              (np.arange(4.0), "uniform:\u00b2", "bins"),
                                              (np.arange(4.0), "uniform:" + "9" * 5000, "bins"),
                                              (np.arange(4.0), [2.0, 1.0], "bins"), (np.arange(4.0), 10 ** 400, "bins"),
                                              (np.arange(4.0), True, "bins")])
def test_bin_edges_refuses(score, bins, match):
    with pytest.raises(RedundancyError, match=match):
        bin_edges(score, bins)


@pytest.mark.parametrize("score", [np.array([-1e308, 1e308, 0.0]), np.full(4, 1.7976931348623157e308),
                                   np.full(4, -1.7976931348623157e308), np.array([0.0, 5e-324]), np.full(3, 2.0)])
@pytest.mark.parametrize("bins", [3, "uniform:4"])
def test_bin_edges_extreme_scores_are_finite_and_increasing(score, bins):
    e = bin_edges(score, bins)
    assert np.isfinite(e).all() and (np.diff(e) > 0).all()
    which = np.clip(np.searchsorted(e, score, side="right") - 1, 0, len(e) - 2)
    assert ((e[which] <= score) | (which == 0)).all()  # every score lies in (or at the low end of) its bin


def test_bin_edges_uniform_matches_linspace_and_constant_score():
    s = np.array([0.0, 1.0, 4.0])
    np.testing.assert_array_equal(bin_edges(s, "uniform:4"), np.linspace(0.0, 4.0, 5))
    np.testing.assert_array_equal(bin_edges(np.full(3, 2.0), 5), [2.0, 3.0])


def test_mismatch_report_extreme_scores_give_finite_bin_means():
    X, y = _data(40)
    ref, cmp = nn.Linear(4, 2), nn.Linear(4, 2)
    scores = np.where(np.arange(40) % 2 == 0, 1.7e308, 1.6e308)
    rep = mismatch_report(ref, {"c": cmp}, (X, y), scores=scores, n_permutations=10)
    means = [b["mean_score"] for b in rep.bins]
    assert np.isfinite(means).all() and min(means) >= 1.6e308 * (1 - 1e-12)


def test_mismatch_report_bounds_permutation_work():
    X, y = _data(10)
    Xt, yt = _data(2001, seed=1)  # 10**6 shuffles x 2001 examples: above the 2 * 10**9 draws allowed
    with pytest.raises(RedundancyError, match="random draws"):
        mismatch_report(nn.Linear(4, 2), nn.Linear(4, 2), (X, y, Xt, yt), scores=np.arange(2001.0),
                        n_permutations=10 ** 6)


def test_as_scores_refuses():
    with pytest.raises(RedundancyError, match="scores"):
        as_scores(-10 ** 400, 3, "test")
    with pytest.raises(RedundancyError, match="n"):
        as_scores(np.zeros(3), float("nan"), "test")
    with pytest.raises(RedundancyError, match="split"):
        as_scores(np.zeros(3), 3, 0.5)
    assert list(as_scores([1, 2, 3], 3, "train")) == ["score"]


# ----------------------------------------------------------------------------------- subsample
@pytest.mark.parametrize("kw,match", [(dict(n_train=1, n_models=2), "n_train"),
                                      (dict(n_train=10, n_models=0), "n_models"),
                                      (dict(n_train=10, n_models=float("inf")), "n_models"),
                                      (dict(n_train=10, n_models=2, subset_ratio=1.0), "subset_ratio"),
                                      (dict(n_train=10, n_models=2, subset_ratio=0.01), "subset_ratio"),
                                      (dict(n_train=10, n_models=2, seed=-1), "seed"),
                                      (dict(n_train=10 ** 8, n_models=100), "limit")])
def test_draw_runs_refuses(kw, match):
    with pytest.raises(RedundancyError, match=match):
        draw_runs(**kw)


def test_draw_runs_subsets_are_sorted_distinct_and_prefix_stable():
    sub, init, order = draw_runs(20, 5, 0.5, seed=7)
    assert sub.shape == (5, 10) and all(len(set(r)) == 10 and (np.diff(r) > 0).all() for r in sub)
    np.testing.assert_array_equal(draw_runs(20, 3, 0.5, seed=7)[0], sub[:3])


def test_make_models_refuses_and_wraps_factory_errors():
    with pytest.raises(RedundancyError, match="make_model"):
        make_models(None, [0])
    with pytest.raises(RedundancyError, match="seeds"):
        make_models(lambda: nn.Linear(2, 1), None)
    with pytest.raises(RedundancyError, match=r"seeds\[1\]"):
        make_models(lambda: nn.Linear(2, 1), [0, -1])
    with pytest.raises(RedundancyError, match="ZeroDivisionError"):
        make_models(lambda: 1 / 0, [0])
    with pytest.raises(RedundancyError, match="torch.nn.Module"):
        make_models(lambda: 3, [0])
    shared = nn.Linear(2, 1)
    with pytest.raises(RedundancyError, match="same model"):
        make_models(lambda: shared, [0, 1])
    state = torch.random.get_rng_state()
    a, b = make_models(lambda: nn.Linear(2, 1), [4, 4])
    assert torch.equal(a.weight, b.weight) and torch.equal(state, torch.random.get_rng_state())


# ----------------------------------------------------------------------------------- example_loss
def test_example_loss_refuses_models_that_do_not_fit():
    X, y = _data()
    with pytest.raises(RedundancyError, match="example_loss|model failed"):
        example_loss(nn.Conv2d(1, 2, 3), (X, y))
    with pytest.raises(RedundancyError, match="outputs"):
        example_loss(nn.Linear(4, 1), (X, y))
    with pytest.raises(RedundancyError, match="model"):
        example_loss("net", (X, y))
    with pytest.raises(RedundancyError, match="split"):
        example_loss(nn.Linear(4, 2), (X, y), split="val")
    bad = nn.Linear(4, 2)
    with torch.no_grad():
        bad.weight.fill_(float("inf"))
    with pytest.raises(RedundancyError, match="NaN or inf"):
        example_loss(bad, (X, y))


class _Counting(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 2)
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x):
        self.calls += 1
        return self.lin(x)


def test_example_loss_restores_the_model_and_matches_log_softmax():
    X, y = _data(50)
    m = _Counting().train()
    loss = example_loss(m, (X, y), split="train")
    assert float(m.calls) == 0 and m.training
    from redundancy.data import as_dataset

    ds = as_dataset((X, y))
    with torch.no_grad():
        z = m.lin(torch.as_tensor(ds.X_train)).double().numpy()
    ref = np.log(np.exp(z).sum(1)) - z[np.arange(len(ds.y_train)), ds.y_train]
    np.testing.assert_allclose(loss, ref, rtol=1e-10)


# ----------------------------------------------------------------------------------- compressions, nets
def test_weight_sparsity_and_suite_refuse():
    with pytest.raises(RedundancyError, match="model"):
        weight_sparsity({1, 2})
    with torch.device("meta"):
        meta = nn.Linear(3, 3)
    with pytest.raises(RedundancyError, match="meta"):
        weight_sparsity(meta)
    with pytest.raises(RedundancyError, match="meta"):
        quantize_dynamic_int8(meta)
    net = nn.Sequential(nn.Conv1d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2))
    for kw, match in [(dict(ranks=("a",)), "ranks"), (dict(ranks=(0.0,)), "ranks"),
                      (dict(amounts=(1.0,)), "amounts"),
                      (dict(amounts=(0.5,) * 40), "amounts"), (dict(seed=-1), "seed")]:
        with pytest.raises(RedundancyError, match=match):
            compression_suite(net, **kw)
    from redundancy.longtail.compressions import quantize_static_int8

    for X, match in [(1 + 1j, "calibration_X"), (np.ones(3), "calibration_X"), (np.full((2, 2, 8), 1e300),
                                                                                 "float32"),
                     (np.ones((2, 2, 5)), "static int8")]:
        with pytest.raises(RedundancyError, match=match):
            quantize_static_int8(net, X)
    with pytest.raises(RedundancyError, match="backend"):
        quantize_static_int8(net, np.ones((2, 2, 6)), backend=np.array(["x86"]))
    assert weight_sparsity(nn.ReLU()) == 0.0
    lin = nn.Linear(4, 5)
    with torch.no_grad():
        lin.weight[:2] = 0
    assert weight_sparsity(nn.Sequential(lin, nn.Linear(5, 5, bias=False))) == pytest.approx(8 / 45)


def test_longtail_nets_bound_the_parameter_count():
    with pytest.raises(RedundancyError, match="parameters"):
        lt_mlp((1, 6, 2), hidden=(10 ** 6, 10 ** 6))
    with pytest.raises(RedundancyError, match="parameters"):
        lt_cnn((1, 10 ** 4, 10 ** 4), 10, width=4096)
    assert sum(p.numel() for p in lt_cnn((3, 8, 8), 10, 4).parameters()) == (27 + 1) * 4 + (36 + 1) * 8 + (128 + 1) * 10


def test_prune_by_magnitude_refuses():
    net = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    with pytest.raises(RedundancyError, match="counts"):
        prune_by_magnitude(net, np.zeros((0, 3)), (4,))
    with pytest.raises(RedundancyError, match="input_shape"):
        prune_by_magnitude(net, {"0": 3}, (6,))
    with pytest.raises(RedundancyError, match="nope"):
        prune_by_magnitude(net, {"nope": 3}, (4,))
    with pytest.raises(RedundancyError, match="counts"):
        prune_by_magnitude(net, {"0": 7}, (4,))
    with pytest.raises(RedundancyError, match="not prunable"):
        prune_by_magnitude(net, {"2": 1}, (4,))  # the output layer: its nodes are the classes
