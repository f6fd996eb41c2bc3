"""`redundancy ranks` CLI and the rank-search displays."""

import json
import os

import matplotlib
import numpy as np
import pandas as pd
import torch

from redundancy.cli import main
from redundancy.rank_search.search import search_ranks
from redundancy.plotting import RankBandDisplay, RankParetoDisplay
from redundancy.plotting.ranks import pareto_front

matplotlib.use("Agg")


def test_cli_ranks_writes_json_csv_png(tmp_path, capsys):
    out = tmp_path / "r"
    code = main(["ranks", "resnet20", "--model-arg", "in_channels=1", "--model-arg", "widths=(4, 8)",
                 "--model-arg", "blocks_per_stage=1", "--data", "digits", "--iters", "2", "--warmup", "1",
                 "--warm-start", "2",
                 "--out", str(out), "--no-progress"])
    assert code == 0
    text = capsys.readouterr().out
    assert "parameters kept" in text and "held-out cross-entropy" in text
    data = json.loads((out / "ranks.json").read_text())
    table = pd.read_csv(out / "ranks.csv")
    assert len(table) == len(data["result"]["layers"]) > 0
    assert table["redundancy"].between(0, 1).all()
    assert data["summary"]["params_dense"] == data["result"]["params_dense"] > 0
    assert data["result"]["settings"]["warm_start"] == 2.0 and data["summary"]["val_loss_compressed"] > 0
    assert os.path.getsize(out / "ranks.png") > 1000


def test_cli_ranks_bad_arguments(capsys):
    assert main(["ranks", "resnet20", "--method", "svd"]) == 2
    assert main(["ranks", "nomodel", "--data", "none", "--iters", "1"]) == 2
    err = capsys.readouterr().err
    assert "nomodel" in err and "Traceback" not in err


def test_displays():
    torch.manual_seed(0)
    res = search_ranks(torch.nn.Sequential(torch.nn.Conv2d(4, 6, 3), torch.nn.Conv2d(6, 6, 3)), [1, 2, 3],
                       input_shape=(4, 7, 7), iters=2, warmup=1)
    disp = RankBandDisplay.from_result(res).plot()
    assert len(disp.ax_.get_xticklabels()) == 2 and disp.figure_ is disp.ax_.figure
    # the band drawn is the result's band
    segs = disp.ax_.collections[0].get_segments()
    assert [tuple(s[:, 1]) for s in segs] == [(r.rank_low, r.rank_high) for r in res.layers]
    rows = [{"method": "a", "accuracy": 0.9, "params_kept": 0.5, "macs_kept": 0.5},
            {"method": "b", "accuracy": 0.8, "params_kept": 0.6, "macs_kept": 0.4},
            {"method": "b", "accuracy": 0.95, "params_kept": 0.9, "macs_kept": 0.9}]
    d = RankParetoDisplay.from_rows(rows, x="macs_kept").plot()
    assert d.ax_.get_xlabel() == "fraction of MACs kept"
    # brute-force dominance check of the front
    x, y = np.array([0.5, 0.6, 0.9, 0.5]), np.array([0.9, 0.8, 0.95, 0.7])
    assert pareto_front(x, y).tolist() == [0, 2]
