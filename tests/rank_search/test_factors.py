"""Initial factors of the rank search (:mod:`redundancy.rank_search.factors`): bad input is one clear
RedundancyError naming the argument; legal input gives exact, finite factors."""

import math
import re
import numpy as np
import pytest
import torch
from torch import nn
from redundancy.errors import RankError, RedundancyError, UnsupportedLayerError
from redundancy.lowrank import cp as CP
from redundancy.lowrank import decompose as D
from redundancy.rank_search import chains as RC
from redundancy.lowrank import tensor_ops as TO
from redundancy.rank_search import factors as TT
from redundancy.lowrank import tucker as TU
from redundancy.lowrank.chains import tucker2_layer

RNG = np.random.default_rng(0)
T3 = RNG.normal(size=(3, 4, 5))


def test_max_ranks_refuse_non_sizes():
    assert TT.tt_max_rank(8, 9, 4) == max(min(8, 36), min(72, 4))
    assert TT.cp3_max_rank(8, 9, 4) == 8 * 9 * 4 // 9
    for bad in (0, -1, 1.5, None, np.ones(3), 10 ** 12):
        with pytest.raises(RedundancyError, match="s="):
            TT.tt_max_rank(2, bad, 2)
        with pytest.raises(RedundancyError, match="c_in"):
            TT.cp3_max_rank(2, 2, bad)


def test_conv_view_and_factor_inits_refuse_bad_views_ranks_and_seeds():
    with pytest.raises(RedundancyError, match="kernel"):
        TT.conv_view(np.zeros((0, 3)))
    with pytest.raises(RedundancyError, match="kernel"):
        TT.conv_view(np.ones(3))
    with pytest.raises(RedundancyError, match="kernel"):
        TT.conv_view(np.full((2, 2, 3), np.nan))
    view = TT.conv_view(RNG.normal(size=(4, 3, 2)))
    for fn in (TT.tt_svd_factors, TT.tucker_factors, TT.cp3_factors):
        with pytest.raises(RedundancyError, match="view"):
            fn(None, 1)
        with pytest.raises(RedundancyError, match="view"):
            fn(np.ones((3, 3)), 1)
        with pytest.raises(RankError, match="rank"):
            fn(view, 0)
        with pytest.raises(RankError, match="rank"):
            fn(view, 10 ** 6)
        with pytest.raises(RankError, match="rank"):
            fn(view, np.zeros((3, 3)))
    with pytest.raises(RedundancyError, match="seed"):
        TT.tucker_factors(view, 1, seed=-1)
    with pytest.raises(RedundancyError, match="n_iter_max"):
        TT.cp3_factors(view, 1, n_iter_max=0)
    with pytest.raises(RedundancyError, match="matrix"):
        TT.svd_factors(np.ones((2, 2, 2)), 1)
    with pytest.raises(RankError, match="rank"):
        TT.svd_factors(np.ones((2, 3)), 3)
    with pytest.raises(RedundancyError, match="method"):
        TT.init_factors(np.ones((2, 2, 3)), "abc", 1)
    with pytest.raises(RedundancyError, match="method='svd'"):
        TT.init_factors(np.ones((2, 2, 3)), "svd", 1)
    with pytest.raises(RedundancyError, match="kernel"):
        TT.init_factors(nn.Identity(), "tt", 1)


@pytest.mark.parametrize("scale", [1e-200, 1.0, 1e200])
def test_factor_inits_are_exact_and_finite_at_extreme_scales(scale):
    """A planted TT rank 2 / SVD rank 1 is recovered at every scale, factors finite (loops as the reference)."""
    a, g, b = RNG.normal(size=(4, 2)), RNG.normal(size=(2, 3, 2)), RNG.normal(size=(2, 5))
    T = np.einsum("ta,asb,bc->tsc", a, g, b) * scale
    for fn in (TT.tt_svd_factors, TT.tucker_factors):
        A, G, B = fn(T, 2)
        assert all(np.isfinite(x).all() for x in (A, G, B))
        rec = np.zeros_like(T)
        for t, s, c in np.ndindex(*T.shape):
            rec[t, s, c] = sum(A[t, i] * G[i, s, j] * B[j, c] for i in range(2) for j in range(2))
        assert np.abs(rec - T).max() <= 1e-9 * np.abs(T).max()
    M = np.outer([1.0, -2.0, 3.0], [4.0, 5.0]) * scale
    A, B = TT.svd_factors(M, 1)
    assert np.isfinite(A).all() and np.isfinite(B).all()
    assert np.abs(A @ B - M).max() <= 1e-12 * np.abs(M).max()
