"""Explicit fuzz rows for redundancy.pruning and redundancy.scoreboard (merged into ``_explicit()`` of
:mod:`tests.fuzz.registry`): strategies that build legal calls (a small MLP with fitting data, real
channel groups, score frames, matplotlib Axes and Figures, an ``analyze`` report) and then make one
argument odd now and then, so the targets see both legal and bad input."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st

from tests.fuzz import values as V


def _opt(**strats):
    """A dict strategy where each key is present or not."""
    return st.fixed_dictionaries({}, optional=strats)


@st.composite
def _h12b_pruning_call(draw, key):
    from torch import nn

    from redundancy.channels import find_groups

    torch.manual_seed(draw(st.integers(0, 3)))
    net = nn.Sequential(nn.Linear(3, 4), *([nn.BatchNorm1d(4)] if draw(st.booleans()) else []), nn.ReLU(),
                        nn.Linear(4, 2))
    if draw(st.booleans()):
        net.eval()
    X = torch.randn(draw(st.integers(2, 5)), 3) * draw(st.sampled_from([1.0, 1e30]))
    kw = {"model": net, key: X}
    if key != "example" or draw(st.booleans()):  # find_groups takes no groups / removed
        kw.update(groups=find_groups(net, X[:2]), removed=draw(st.lists(st.tuples(st.just(0), st.integers(0, 3)),
                                                                        max_size=4)))
    odd = draw(st.sampled_from([None, None, "model", key, "groups", "removed"]))
    if odd in kw:
        kw[odd] = draw(V.anything() | st.sampled_from([[(1, 0)], [(0, -1)], [(0, 1, 2)], [("a", 0)],
                                                       torch.full((2, 3), float("nan")), torch.zeros(2, 5)]))
    return kw


@st.composite
def _importance_call(draw):
    """A legal call of a channel Importance: a small MLP (eval mode), its groups and fitting data (the
    importances are kernels behind checked functions: they get legal input only)."""
    from torch import nn

    from redundancy.channels import find_groups

    torch.manual_seed(draw(st.integers(0, 3)))
    net = nn.Sequential(nn.Linear(3, 4), *([nn.BatchNorm1d(4)] if draw(st.booleans()) else []), nn.ReLU(),
                        nn.Linear(4, 2)).eval()
    X = torch.randn(draw(st.integers(2, 5)), 3)
    return {"model": net, "groups": find_groups(net, X[:1]), "X": X, "y": torch.randint(0, 2, (len(X),))}


def _importance_target(cls):
    def call(model, groups, X, y):
        return cls()(model, groups, X, y)
    call.__name__ = call.__qualname__ = f"{cls.__name__}()"
    return call


#: score frames hold NaN where a score is not defined (documented: a missing entry, an undefined correlation)
_H12B_NAN = ("s0", "s1", "s2", "t", "consensus", "consensus_rank", "spread", "rank_spread", "spearman", "kendall")


@st.composite
def _h12b_frame(draw):
    import pandas as pd

    n, k = draw(st.integers(0, 6)), draw(st.integers(0, 3))
    cell = st.floats(-1e308, 1e308) | st.sampled_from([np.nan, 0.0, 0.5, 1.0])
    df = pd.DataFrame({f"s{j}": draw(st.lists(cell, min_size=n, max_size=n)) for j in range(k)},
                      index=[f"l{i}" for i in range(n)], dtype=float)
    odd = draw(st.sampled_from([None, None, None, "inf", "text", "other"]))
    if odd == "inf" and n and k:
        df.iloc[0, 0] = np.inf
    elif odd == "text":
        df["t"] = ["x"] * n
    elif odd == "other":
        return draw(V.anything())
    return df


@st.composite
def _h12b_draw_call(draw, kind):
    from matplotlib.figure import Figure

    n, m = draw(st.integers(0, 4)), draw(st.integers(0, 3))
    shape = {"bars": (n,), "heatmap": (n, m), "matrix": (n, n)}[kind]
    if draw(st.integers(0, 4)) == 0:
        shape = (n + 1,) + shape[1:]
    cell = st.floats(-2, 2) | st.sampled_from([np.nan, np.inf, 1e308])
    values = np.array(draw(st.lists(cell, min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))).reshape(shape)
    kw = {"ax": Figure().subplots() if draw(st.integers(0, 5)) else draw(V.anything()), "title": "t"}
    labels = [f"l{i}" for i in range(n)]
    if kind == "bars":
        kw.update(labels=labels, values=values, ylabel="y")
    elif kind == "heatmap":
        kw.update(values=values, rows=labels, cols=[f"c{j}" for j in range(m)], cbar_label="c")
    else:
        kw.update(matrix=values, labels=labels)
    odd = draw(st.sampled_from([None, None, None] + sorted(kw)))
    if odd:
        kw[odd] = draw(V.anything())
    return kw


@st.composite
def _h12b_net_call(draw, kind):
    """A small MLP (a BatchNorm in train mode now and then) with fitting (X, y) and options, some odd."""
    from torch import nn

    torch.manual_seed(draw(st.integers(0, 3)))
    net = nn.Sequential(nn.Linear(3, 4), *([nn.BatchNorm1d(4)] if draw(st.booleans()) else []), nn.ReLU(),
                        nn.Linear(4, 2))
    if draw(st.booleans()):
        net.eval()
    rng = np.random.default_rng(draw(st.integers(0, 3)))
    X = rng.normal(size=(draw(st.integers(6, 24)), 3)).astype("float32")
    y = (X[:, 0] > 0).astype(int) if draw(st.integers(0, 3)) else X[:, 0].astype("float64")
    kw = {"model": net, "data": (X, y)}
    opts = {"seed": V.seeds(), "layers": st.sampled_from([None, "0", ["0"], ["2"], ["nope"], 3])}
    if kind == "scores":
        opts.update(split=st.sampled_from(["train", "test", "x"]), max_examples=st.none() | V.ints())
    elif kind == "car_prune":
        opts = {"target": st.sampled_from([1, 2, 0.5, 0.25, 0, 4, None, 1.5]), "per_step": st.integers(1, 3) | V.ints(),
                "recompute": st.booleans(), "seed": V.seeds(), "min_quality": st.none() | V.floats()}
    elif kind == "finetuned_curve":
        kw["layer"] = draw(st.sampled_from(["0", "0", "nope", 3]))
        opts = {"fractions": st.sampled_from([(0.5,), (0.25, 0.75), (1.5,), (), 0.5]),
                "finetune_epochs": st.integers(0, 1) | V.ints(), "criterion": st.sampled_from(["car", "l1", "x"])}
    elif kind == "taylor":
        kw["layers"] = draw(st.sampled_from([["0"], ["0", "3"], "0", ["2"], ["nope"], 3]))
        opts = {"n_examples": st.integers(1, 30) | V.ints(), "batch_size": st.integers(1, 8) | V.ints(),
                "seed": V.seeds()}
    elif kind == "l1":
        kw = {"model": net, "layers": draw(st.sampled_from([["0"], ["0", "3"], "0", ["2"], ["nope"], 3, []]))}
        opts = {}
    elif kind == "baseline":
        kw["criterion"] = draw(st.sampled_from(["l1", "l2", "random", "activation", "taylor", "car", 3]))
        opts.update(split=st.sampled_from(["train", "test", "x"]), max_examples=st.none() | V.ints())
    elif kind == "car":
        opts.update(metric=st.sampled_from([None, "accuracy", "loss", "r2", "x", 3, lambda o, t: float(o.sum())]),
                    classwise=st.booleans() | V.odd_scalars(), curves=st.booleans(), replay=st.booleans(),
                    batch_masks=st.integers(1, 8) | V.ints(), batch_size=st.integers(1, 64) | V.ints(),
                    removed=st.sampled_from([(), [(0, 1)], [(0, 9)], [(1, 0)], "x"]), split=st.sampled_from(["train", "test", "x"]))
    elif kind == "prune":
        opts.update(criterion=st.sampled_from(["car", "l1", "random", "taylor", "x"]),
                    target=st.sampled_from([1, 2, 0.5, 0, 4, None, 1.5, "x"]), scope=st.sampled_from(["network", "layer", "x"]),
                    recompute=st.booleans(), min_quality=st.none() | V.floats(), finetune_epochs=st.integers(0, 1) | V.ints())
    elif kind == "scoreboard":
        if draw(st.booleans()):
            kw = {"model": net, "input_shape": (3,)}
        opts = {"scores": st.sampled_from([None, ["l1", "taylor"], ["car"], ["evbmf", "energy", "kr_segment"], ["nope"], 3]),
                "seed": V.seeds(), "taylor_examples": st.integers(1, 30) | V.ints(), "progress": st.booleans() | V.odd_scalars()}
    kw.update(draw(_opt(**opts)))
    odd = draw(st.sampled_from([None, None, None] + sorted(kw)))
    if odd:
        kw[odd] = draw(V.anything())
    return kw


def _h12b_scoreboard(**kw):
    from redundancy.scoreboard import scoreboard

    sb = scoreboard(**kw)
    sb.to_json()  # the JSON text must hold no NaN/inf (allow_nan=False)
    return sb


@st.composite
def _h12b_report_call(draw):
    from torch import nn

    from redundancy.analysis.report import analyze

    net = draw(st.sampled_from([lambda: nn.Sequential(nn.Conv2d(2, 4, 3, groups=2), nn.Conv2d(4, 8, 1)),
                                lambda: nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))]))()
    shape = (2, 5, 5) if isinstance(net[0], nn.Conv2d) else (3,)
    kw = {"model": net, "report": analyze(net, shape)}
    kw.update(draw(_opt(energy=V.pos_floats())))
    odd = draw(st.sampled_from([None, None, "model", "report"]))
    if odd:
        kw[odd] = draw(V.anything() | st.just(nn.Sequential(nn.Linear(3, 5))))
    return kw



def rows() -> dict:
    """``{dotted name: Target}`` for the pruning and scoreboard callables."""
    from redundancy.pruning import baselines as _pb
    from redundancy.pruning import car as _pc
    from redundancy.pruning import greedy as _pgr
    from redundancy.channels import groups as _pg
    from redundancy.channels import importance as _pi
    from redundancy.channels import masks as _pm
    from redundancy.channels import removal as _prm
    from redundancy.scoreboard import channel_scores as _scs
    from redundancy.scoreboard import correlation as _sc
    from redundancy.scoreboard import figures as _sf
    from redundancy.scoreboard import kernel_scores as _sks
    from tests.fuzz.registry import Target

    def T(fn, kwargs, **kw):
        return Target(fn=fn, kwargs=kwargs, **kw)

    return {
        "redundancy.channels.groups.find_groups": T(_pg.find_groups, st.builds(
            lambda kw, o: {k: v for k, v in {**kw, **o}.items() if k in ("model", "example", "layers")},
            _h12b_pruning_call("example"), _opt(layers=st.sampled_from([None, "0", ["0"], ["nope"], 3, []])))),
        "redundancy.channels.masks.masked_forward": T(_pm.masked_forward, _h12b_pruning_call("X")),
        **{f"redundancy.channels.importance.{c}": T(_importance_target(getattr(_pi, c)), _importance_call())
           for c in ("L1", "L2", "BatchNormScale", "Taylor")},
        **{f"redundancy.pruning.baselines.{c}_scores": T(getattr(_pb, f"{c}_scores"), _h12b_net_call("scores"))
           for c in ("l1", "l2", "random", "activation", "taylor")},
        "redundancy.pruning.greedy.car_prune": T(_pgr.car_prune, _h12b_net_call("car_prune")),
        "redundancy.pruning.baselines.baseline_scores": T(_pb.baseline_scores, _h12b_net_call("baseline")),
        "redundancy.pruning.car.car_scores": T(_pc.car_scores, _h12b_net_call("car")),
        "redundancy.pruning.greedy.prune": T(_pgr.prune, _h12b_net_call("prune")),
        "redundancy.scoreboard.board.scoreboard": T(_h12b_scoreboard, _h12b_net_call("scoreboard")),
        "redundancy.pruning.greedy.finetuned_curve": T(_pgr.finetuned_curve, _h12b_net_call("finetuned_curve")),
        "redundancy.pruning.car.layer_redundancy": T(_pc.layer_redundancy, st.builds(lambda q: {"q": q}, st.lists(
            st.floats(-1e308, 1e308) | st.sampled_from([0.0, 1.0, np.nan]), max_size=6) | V.arrays())),
        "redundancy.scoreboard.channel_scores.l1_importance": T(_scs.l1_importance, _h12b_net_call("l1")),
        "redundancy.scoreboard.channel_scores.taylor_importance": T(_scs.taylor_importance, _h12b_net_call("taylor")),
        "redundancy.scoreboard.kernel_scores.spectrum_scores": T(_sks.spectrum_scores, _h12b_report_call()),
        "redundancy.scoreboard.kernel_scores.report_scores": T(_sks.report_scores, _h12b_report_call().map(
            lambda kw: {"report": kw["report"]})),
        "redundancy.scoreboard.kernel_scores.full_rank": T(_sks.full_rank, st.builds(
            lambda k, o: {"kernel_shape": k, **o}, st.lists(st.integers(1, 9), min_size=2, max_size=4) | V.anything(),
            _opt(groups=st.integers(1, 4) | V.ints()))),
        "redundancy.channels.removal.prune_units": T(_prm.prune_units, st.builds(
            lambda kw, o: {**kw, **o}, _h12b_pruning_call("example").filter(lambda kw: "groups" in kw),
            _opt(check=st.booleans() | V.odd_scalars(), atol=V.pos_floats()))),
        "redundancy.scoreboard.correlation.consensus": T(_sc.consensus, st.builds(lambda f: {"frame": f}, _h12b_frame()),
                                                          allowed_nonfinite=_H12B_NAN),
        "redundancy.scoreboard.correlation.rank_normalise": T(_sc.rank_normalise, st.builds(
            lambda f: {"frame": f}, _h12b_frame()), allowed_nonfinite=_H12B_NAN),
        "redundancy.scoreboard.correlation.correlation_matrix": T(_sc.correlation_matrix, st.builds(
            lambda f, o: {"frame": f, **o}, _h12b_frame(), _opt(method=st.sampled_from(["spearman", "kendall", "x", 3]))),
            allowed_nonfinite=_H12B_NAN),
        "redundancy.scoreboard.correlation.reference_table": T(_sc.reference_table, st.builds(
            lambda f, r: {"frame": f, "reference": r}, _h12b_frame(), st.sampled_from(["s0", "s1", "nope", None, ["s0"]])),
            allowed_nonfinite=_H12B_NAN),
        "redundancy.scoreboard.figures.draw_bars": T(_sf.draw_bars, _h12b_draw_call("bars")),
        "redundancy.scoreboard.figures.draw_heatmap": T(_sf.draw_heatmap, _h12b_draw_call("heatmap")),
        "redundancy.scoreboard.figures.draw_matrix": T(_sf.draw_matrix, _h12b_draw_call("matrix")),
        "redundancy.scoreboard.figures.png_base64": T(_sf.png_base64, st.builds(
            lambda w, h: {"fig": __import__("matplotlib.figure").figure.Figure(figsize=(w, h))},
            st.floats(0.5, 4) | st.just(1000.0), st.floats(0.5, 4)) | st.builds(lambda v: {"fig": v}, V.anything())),
    }
