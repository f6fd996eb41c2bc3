"""Issue 12 for redundancy.scoreboard: bad arguments get a one-line RedundancyError naming them, no
NaN/inf result at extreme (legal) inputs, and the Taylor score leaves the caller's model as it was."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

from redundancy.analysis.report import analyze
from redundancy.errors import RedundancyError
from redundancy.scoreboard import scoreboard
from redundancy.scoreboard.channel_scores import l1_importance, participation_redundancy, taylor_importance
from redundancy.scoreboard.correlation import consensus, correlation_matrix, rank_normalise, reference_table
from redundancy.scoreboard.figures import MAX_PIXELS, draw_bars, draw_heatmap, draw_matrix, png_base64
from redundancy.scoreboard.html import headline
from redundancy.scoreboard.kernel_scores import full_rank, report_scores, spectrum_scores


def _net(bn: bool = False):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), *([nn.BatchNorm1d(4)] if bn else []), nn.ReLU(), nn.Linear(4, 2))


def _xy(n=16):
    X = np.random.default_rng(0).normal(size=(n, 3)).astype("float32")
    return X, (X[:, 0] > 0).astype(int)


# ----------------------------------------------------------------------------------- channel scores
@pytest.mark.parametrize("bad", [{1, 2}, [], None, "abc", [1.0, float("inf")], [[np.nan]]])
def test_participation_redundancy_refuses_non_arrays(bad):
    with pytest.raises(RedundancyError, match="importance"):
        participation_redundancy(bad)


def test_participation_redundancy_does_not_overflow():
    # by hand: a = (1, 1, 0): (sum a)^2 / (K sum a^2) = 4 / 6
    assert participation_redundancy([1e300, 1e300, 0.0]) == pytest.approx(1 - 4 / 6)
    assert participation_redundancy([1e-300, 1e-300, 0.0]) == pytest.approx(1 - 4 / 6)
    assert participation_redundancy(5.0) == 0.0 and participation_redundancy([0.0, 0.0]) == 1.0


@pytest.mark.parametrize("layers", [1, ["nope"], [0], "2x", []])
def test_l1_importance_refuses_layers_that_are_not_kernels(layers):
    with pytest.raises(RedundancyError, match="layers"):
        l1_importance(_net(), layers)


def test_l1_importance_refuses_non_finite_weights_and_takes_one_name():
    net = _net()
    assert np.allclose(l1_importance(net, "0")["0"], net[0].weight.detach().abs().sum(1).numpy())
    with torch.no_grad():
        net[0].weight[0, 0] = float("nan")
    with pytest.raises(RedundancyError, match="not finite"):
        l1_importance(net, ["0"])


@pytest.mark.parametrize("kw, name", [({"layers": 1}, "layers"), ({"layers": ["x"]}, "layers"),
                                      ({"seed": -1}, "seed"), ({"n_examples": 0}, "n_examples"),
                                      ({"batch_size": 10 ** 12}, "batch_size"), ({"progress": "x"}, "progress"),
                                      ({"model": nn.ReLU()}, "model"), ({"device": "abc"}, "device")])
def test_taylor_importance_names_the_bad_argument(kw, name):
    args = {"model": _net(), "data": _xy(), "layers": ["0"], **kw}
    with pytest.raises(RedundancyError, match=name):
        taylor_importance(**args)


def test_taylor_importance_leaves_the_model_as_it_was_and_wraps_forward_errors():
    net = _net(bn=True).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    t = taylor_importance(net, _xy(), ["0"])
    assert t["0"].shape == (4,) and net.training and all(m.training for m in net)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(p.grad is None for p in net.parameters())
    X = np.zeros((4, 5), "float32")  # the model expects 3 features
    with pytest.raises(RedundancyError, match="taylor_importance failed"):
        taylor_importance(_net(), (X, np.array([0, 1, 0, 1])), ["0"])


# ----------------------------------------------------------------------------------- correlation
_GOOD = pd.DataFrame({"a": [0.1, 0.5, 0.9], "b": [0.2, 0.4, np.nan]})


@pytest.mark.parametrize("fn", [rank_normalise, correlation_matrix, consensus, lambda f: reference_table(f, "a")])
@pytest.mark.parametrize("frame", [None, np.zeros((3, 2)), pd.DataFrame({"a": ["x", "y"]}),
                                   pd.DataFrame({"a": [1.0, np.inf]}),
                                   pd.DataFrame([[1.0, 2.0]], columns=["a", "a"])])
def test_correlation_functions_refuse_frames_that_are_not_scores(fn, frame):
    with pytest.raises(RedundancyError, match="frame"):
        fn(frame)


def test_correlation_method_reference_and_overflow():
    with pytest.raises(RedundancyError, match="method"):
        correlation_matrix(_GOOD, "pearson")
    with pytest.raises(RedundancyError, match="reference"):
        reference_table(_GOOD, "nope")
    with pytest.raises(RedundancyError, match="reference"):
        reference_table(_GOOD, ["a"])
    big = pd.DataFrame({"a": [1e308, -1e308, 1e308], "b": [1e308, 1e308, np.nan]})
    c = consensus(big)  # by hand: row means 1e308, 0, 1e308
    assert np.allclose(c["consensus"].to_numpy() / 1e308, [1.0, 0.0, 1.0])
    assert np.allclose(c["spread"].to_numpy() / 1e308, [0.0, 1.0, 0.0]) and (c["n_scores"] == [2, 2, 1]).all()
    assert consensus(pd.DataFrame(index=[0, 1]))["n_scores"].tolist() == [0, 0]


# ----------------------------------------------------------------------------------- figures
def _ax():
    return Figure().subplots()


def test_draw_functions_name_the_bad_argument():
    for call, name in ((lambda: draw_bars(None, ["a"], [0.5], title="t", ylabel="y"), "ax"),
                       (lambda: draw_bars(_ax(), ["a", "b"], [0.5], title="t", ylabel="y"), "values"),
                       (lambda: draw_bars(_ax(), ["a"], [np.inf], title="t", ylabel="y"), "values"),
                       (lambda: draw_bars(_ax(), None, [0.5], title="t", ylabel="y"), "labels"),
                       (lambda: draw_bars(_ax(), ["a"], [0.5], title=3, ylabel="y"), "title"),
                       (lambda: draw_heatmap(_ax(), np.zeros((2, 2)), ["a"], ["x", "y"], title="t",
                                             cbar_label="c"), "values"),
                       (lambda: draw_heatmap(_ax(), np.zeros((1, 1)), ["a"], ["x"], title="t", cbar_label=None),
                        "cbar_label"),
                       (lambda: draw_matrix(_ax(), np.eye(2), ["a", "b", "c"], title="t"), "matrix"),
                       (lambda: draw_matrix(_ax(), np.eye(101), [str(i) for i in range(101)], title="t"), "labels"),
                       (lambda: png_base64(None), "fig"),
                       (lambda: png_base64(Figure(figsize=(1000, 1000))), "fig")):
        with pytest.raises(RedundancyError, match=name):
            call()
    assert 1000 * 1000 * 100 ** 2 > MAX_PIXELS


def test_draw_functions_accept_nan_cells_and_draw_them():
    ax = _ax()
    im = draw_heatmap(ax, np.array([[0.2, np.nan]]), ["l"], ["a", "b"], title="t", cbar_label="c")
    assert im.get_array().mask.tolist() == [[False, True]]
    im = draw_matrix(_ax(), np.array([[1.0, np.nan], [np.nan, 1.0]]), ["a", "b"], title="t")
    assert "n/a" in [t.get_text() for t in im.axes.texts]
    bars = draw_bars(_ax(), ["a", "b"], [0.3, np.nan], title="t", ylabel="y")
    assert [b.get_height() for b in bars] == [0.3, 0.0]
    data, w, h = png_base64(ax.figure)
    assert (w, h) == (640, 480) and len(data) > 100


# ----------------------------------------------------------------------------------- html / kernel scores
def test_headline_and_kernel_scores_refuse_what_they_cannot_read():
    for kw, name in (({"scoreboard": 3}, "scoreboard"), ({"report": "r"}, "report"), ({"roi": 1.5}, "roi")):
        with pytest.raises(RedundancyError, match=name):
            headline(**kw)
    for call, name in ((lambda: full_rank(None), "kernel_shape"), (lambda: full_rank((16, 0, 3)), "kernel_shape"),
                       (lambda: full_rank((16, 2), groups=3), "groups"), (lambda: report_scores(None), "report"),
                       (lambda: spectrum_scores(_net(), None), "report")):
        with pytest.raises(RedundancyError, match=name):
            call()
    assert full_rank((16, 2, 1, 1)) == 2 and full_rank((8, 1, 3, 3), groups=8) == 8


def test_spectrum_scores_refuse_a_report_of_another_model():
    net = _net()
    rep = analyze(net, (3,))
    with pytest.raises(RedundancyError, match="energy"):
        spectrum_scores(net, rep, energy=0.0)
    with pytest.raises(RedundancyError, match="not a module of model"):
        spectrum_scores(nn.Sequential(nn.Linear(3, 4)), rep)
    with pytest.raises(RedundancyError, match="layers contains '1'"):
        l1_importance(net, ["1"])  # a ReLU: no kernel
    wider = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))
    with pytest.raises(RedundancyError, match="report"):
        spectrum_scores(wider, rep)
    sb = scoreboard(net, input_shape=(3,))
    assert dict(headline(sb))["How much of the model is redundant?"].endswith(")")
