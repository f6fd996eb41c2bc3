"""`redundancy prune` and the pruning Displays."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pytest
import torch

from redundancy.cli import commands as cli
from redundancy.errors import RedundancyError
from redundancy.plotting import CARCurveDisplay, ClasswiseCARDisplay, FilterDisplay, PruningAccuracyDisplay
from redundancy.pruning import car_scores
from redundancy.zoo import simple_cnn

from tests.pruning.test_car import _cnn, _data

matplotlib.use("Agg")


def test_prune_command_writes_results(tmp_path, capsys):
    out = tmp_path / "o"
    rc = cli.main(["prune", "cnn", "--data", "digits", "--target", "0.5", "--epochs", "1", "--model-arg",
                   "widths=(4,6)", "--max-examples", "60", "--max-accuracy-drop", "-1", "--out", str(out),
                   "--no-progress"])
    printed, err = capsys.readouterr()
    assert rc == 0, err
    d = json.loads((out / "prune.json").read_text())
    assert d["channels_after"] == {"0": d["channels_after"]["0"], "4": d["channels_after"]["4"]}
    assert sum(d["channels_before"].values()) - sum(d["channels_after"].values()) == 5  # round(0.5 * 10)
    assert d["params_after"] < d["params_before"] and (out / "car_curves.png").exists()
    assert d["verdict"]["budget"] is None and printed.splitlines()[1].startswith("verdict: ")
    assert {"layer", "redundancy"} <= set(d["car_layers"][0])
    state = torch.load(out / "pruned_state_dict.pt", weights_only=True)
    assert state["0.weight"].shape[0] == d["channels_after"]["0"]
    assert "test accuracy" in printed


@pytest.mark.parametrize("argv", [["prune", "cnn", "--data", "cifar"], ["prune", "cnn", "--data", "digits", "--target", "2.5"],
                                  ["prune", "cnn", "--data", "digits", "--criterion", "magic"]])
def test_prune_command_bad_arguments_exit_2(argv, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert len([ln for ln in err.splitlines() if ln.strip()]) == 1


def test_prune_command_bad_layer_is_one_line(capsys):
    rc = cli.main(["prune", "cnn", "--data", "digits", "--epochs", "0", "--layers", "nope", "--model-arg",
                   "widths=(3,)", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "nope" in err and len(err.strip().splitlines()) == 1


def test_displays_draw_from_results():
    import matplotlib.pyplot as plt

    net = _cnn(0)
    X, y = _data(net, 0, n=40)
    res = car_scores(net, (X, y), classwise=True)
    d = CARCurveDisplay.from_result(res, finetuned={"0": (np.array([1.0, 0.5]), np.array([res.base, 0.5]))}).plot()
    assert len(d.ax_.lines) == 3 and d.figure_ is d.ax_.figure
    h = ClasswiseCARDisplay.from_result(res, "4").plot()
    assert h.matrix.shape == (6, 4)
    f = FilterDisplay.from_module(net[0], [1, 3]).plot()
    assert f.kept.tolist() == [True, False, True, False, True]
    p = PruningAccuracyDisplay.from_records([{"criterion": "car", "fraction": 0.5, "test_after": 0.9},
                                             {"criterion": "l1", "fraction": 0.5, "test_after": 0.7}]).plot()
    assert len(p.ax_.containers) == 2
    plt.close("all")
    with pytest.raises(RedundancyError, match="layer"):
        ClasswiseCARDisplay.from_result(res, "9")
    with pytest.raises(RedundancyError, match="class-wise"):
        ClasswiseCARDisplay.from_result(car_scores(net, (X, y), curves=False))
    with pytest.raises(RedundancyError, match="removed channel"):
        FilterDisplay.from_module(net[0], [7])


def test_simple_cnn_shapes():
    for ndim, shape in ((1, (2, 1, 40)), (2, (2, 1, 8, 8))):
        net = simple_cnn(ndim=ndim, widths=(4, 8), seed=0)
        assert net(torch.zeros(shape)).shape == (2, 10)
