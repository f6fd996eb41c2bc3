"""measure_latency and the ROI latency bars: threads recorded, bars from measured quantiles."""

import numpy as np
import pytest
import torch
from torch import nn

import redundancy as R
from redundancy.errors import CheckpointError, NotLinearError, RankError, RedundancyError


def test_latency_threads_recorded_and_error_bars_from_measured_quantiles():
    from redundancy.analysis.latency import measure_latency
    from redundancy.plotting import RoiDisplay

    before = torch.get_num_threads()
    lat = measure_latency([nn.Linear(8, 8), nn.Linear(8, 2)], (8,), batch_sizes=(1,), repeats=7, warmup=0)
    assert lat.threads == 1 and torch.get_num_threads() == before
    a = nn.Sequential(nn.Conv1d(1, 4, 3), nn.Flatten(), nn.Linear(16, 1))
    b = nn.Sequential(nn.Conv1d(1, 1, 3), nn.Flatten(), nn.Linear(4, 1))
    roi = R.estimate_roi(a, b, (1, 6), batch_sizes=(1,), repeats=9, warmup=0)
    p = roi.latency[0]
    assert p.threads == 1
    # the bar is the median of the per-repeat ratios and its bar ends are their quartiles
    _, vals, errs = RoiDisplay.from_result(roi).ratios()
    assert vals[-1] == pytest.approx(p.ratio_median)
    assert vals[-1] - errs[0, -1] == pytest.approx(p.ratio_q25) and vals[-1] + errs[1, -1] == pytest.approx(p.ratio_q75)
    assert (vals - errs[0] >= 0).all()
