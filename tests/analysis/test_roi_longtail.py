"""The ROI's long-tail line: estimate_roi(..., data=...) carries tail_flip_rates."""

import json

import numpy as np
import torch
from torch import nn

from redundancy.analysis.roi import estimate_roi
from redundancy.longtail import tail_flip_rates
from redundancy.longtail.compressions import magnitude_prune


def test_roi_gains_flip_rates_overall_and_tail():
    torch.manual_seed(0)
    a = nn.Sequential(nn.Conv1d(1, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 10, 3))
    b = magnitude_prune(a, 0.8)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 1, 12)).astype(np.float32)
    y = rng.integers(0, 3, 50)
    s = rng.random(50)
    roi = estimate_roi(a, b, (1, 12), measure=False, dof=(100, 50), data=(X, y), tail_scores=s, tail_fraction=0.2)
    direct = tail_flip_rates(a, b, (X, y), s, fraction=0.2)
    assert roi.long_tail == direct
    pa, pb = a(torch.as_tensor(X)).argmax(1).numpy(), b(torch.as_tensor(X)).argmax(1).numpy()
    mis = pa != pb
    assert roi.long_tail["flip_rate"] == np.mean(mis)
    assert roi.long_tail["tail_flip_rate"] == np.mean(mis[np.argsort(-s, kind="stable")[:10]])
    assert "flip rate" in repr(roi)
    json.dumps(roi.to_dict())
    assert estimate_roi(a, b, (1, 12), measure=False, dof=(100, 50)).long_tail is None
