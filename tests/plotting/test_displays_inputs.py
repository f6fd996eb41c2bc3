"""RoiDisplay on odd inputs."""

import numpy as np
import pytest
import torch
from torch import nn

import redundancy as R
from redundancy.errors import CheckpointError, NotLinearError, RankError, RedundancyError


def test_displays_refuse_string_ax_and_survive_zero_originals():
    import dataclasses

    from redundancy.plotting import RoiDisplay

    a = nn.Sequential(nn.Conv1d(1, 4, 3), nn.Flatten(), nn.Linear(16, 1))
    roi = R.estimate_roi(a, a, (1, 6), measure=False, dof=(4, 4), naive=(12, 12))
    with pytest.raises(RedundancyError, match="Axes"):
        RoiDisplay.from_result(roi).plot(ax="abc")
    zero = dataclasses.replace(roi, n_original=0, n_naive_original=0)
    labels, vals, _ = RoiDisplay.from_result(zero).ratios()
    assert np.isfinite(vals).all() and "original 0" in labels[3]
