"""cp_decompose under another tensorly backend and at extreme scales."""

import numpy as np
import pytest
import torch
from torch import nn

import redundancy as R
from redundancy.errors import CheckpointError, NotLinearError, RankError, RedundancyError


def test_decompositions_after_tensorly_pytorch_backend():
    import tensorly as tl

    t = np.random.default_rng(0).normal(size=(3, 4, 5))
    ref = R.cp_decompose(t, 2).rel_error
    tl.set_backend("pytorch")
    try:
        assert R.cp_decompose(t, 2).rel_error == pytest.approx(ref)
        assert R.compress(nn.Conv2d(3, 4, 3).double(), 2, method="cp").layers[0].rel_error >= 0
    finally:
        tl.set_backend("numpy")

def test_cp_at_extreme_scales_reports_the_unit_scale_error():
    t = np.random.default_rng(0).normal(size=(3, 4, 5))
    ref = R.cp_decompose(t, 2).rel_error
    for s in (1e-200, 1e200):
        assert R.cp_decompose(t * s, 2).rel_error == pytest.approx(ref, rel=1e-6)
