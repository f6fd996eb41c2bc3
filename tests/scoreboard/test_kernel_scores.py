"""The data-free kernel scores and the report headline: what they cannot read is refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from redundancy.analysis.report import analyze
from redundancy.errors import RedundancyError
from redundancy.scoreboard import scoreboard
from redundancy.scoreboard.channel_scores import l1_importance
from redundancy.scoreboard.html import headline
from redundancy.scoreboard.kernel_scores import full_rank, report_scores, spectrum_scores


def _net(bn: bool = False):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), *([nn.BatchNorm1d(4)] if bn else []), nn.ReLU(), nn.Linear(4, 2))


_GOOD = pd.DataFrame({"a": [0.1, 0.5, 0.9], "b": [0.2, 0.4, np.nan]})


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
