"""counts on odd inputs: the MAC formula, bounded sizes, clear errors, the caller's buffers untouched."""

import numpy as np
import pytest
import torch
from torch import nn

import redundancy as R
from redundancy.errors import CheckpointError, NotLinearError, RankError, RedundancyError


class Counter(nn.Module):
    def __init__(self):
        super().__init__()
        self.l = nn.Linear(6, 2)
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x):
        self.calls += 1
        return self.l(x.flatten(1))

def test_one_layer_model_macs_match_the_formula():
    # nn.Conv2d(1, 2, 3) on 1x5x5: 2 * 3 * 3 outputs, each 1 * 3 * 3 MACs
    rep = R.analyze(nn.Conv2d(1, 2, 3), (1, 5, 5))
    assert rep.summary.macs == 2 * 3 * 3 * 9 == R.count_macs(nn.Conv2d(1, 2, 3), (1, 5, 5))[""]

def test_counts_and_shapes_are_bounded_with_the_limit_stated():
    with pytest.raises(RedundancyError, match="limit"):
        R.count_macs(nn.Linear(2, 2), (10 ** 12,))
    with pytest.raises(RedundancyError, match="1000"):
        R.cp_decompose(np.random.default_rng(0).normal(size=(3, 4)), 1, n_restarts=2 ** 64)
    with pytest.raises(RedundancyError, match="10000"):
        from redundancy.analysis.latency import measure_latency

        measure_latency([nn.Linear(2, 2)], (2,), repeats=10 ** 12)
    with pytest.raises(RedundancyError, match="256"):
        R.zoo.resnet20(blocks_per_stage=10 ** 12)

@pytest.mark.parametrize("bad", [np.array(3), torch.tensor([6]), "abc", 10 ** 400, (1.5,)])
def test_odd_shapes_are_clear_errors(bad):
    with pytest.raises(RedundancyError):
        R.count_macs(nn.Linear(6, 2), bad)

def test_counting_and_analysis_leave_the_callers_buffers_alone():
    m = Counter()
    R.count_macs(m, (1, 6))
    R.analyze(m, (1, 6))
    R.estimate_roi(m, Counter(), (1, 6), measure=False, dof=(4, 4), naive=(12, 12))
    assert float(m.calls) == 0
