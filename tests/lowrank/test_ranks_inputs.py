"""evbmf at extreme scales."""

import numpy as np
import pytest
import torch
from torch import nn

import redundancy as R
from redundancy.errors import CheckpointError, NotLinearError, RankError, RedundancyError


def test_evbmf_is_scale_equivariant():
    V = np.random.default_rng(0).normal(size=(12, 3)) @ np.random.default_rng(1).normal(size=(3, 10))
    V = V + 0.05 * np.random.default_rng(2).normal(size=V.shape)
    ref = R.evbmf(V)
    for s in (1e-100, 1e100):
        out = R.evbmf(V * s)
        assert out.rank == ref.rank
        np.testing.assert_allclose(out.sigma2 / s ** 2, ref.sigma2, rtol=1e-6)
    for s in (1e-200, 1e200):
        with pytest.raises(RedundancyError, match="float64"):
            R.evbmf(V * s)
