"""Tucker / CP decompositions: tensorly API shapes, planted ranks, exactness, error bounds, bad input."""

import math

import numpy as np
import pytest
import tensorly as tl
import torch
from hypothesis import given, strategies as st
from tensorly.decomposition import parafac, partial_tucker

from redundancy import RankError, RedundancyError, UnsupportedLayerError, whole_network_tensor
from redundancy.lowrank.decompose import (CPDecomposition, TuckerDecomposition, cp_decompose, cp_rank_bound,
                                  decompose_layer, decompose_whole_network, tucker_decompose)


def _unfold(t, m):
    return np.moveaxis(t, m, 0).reshape(t.shape[m], -1)


def _svals(t, m):
    return np.linalg.svd(_unfold(t, m), compute_uv=False)


def _planted_tucker(rng, shape, ranks):
    core = rng.normal(size=ranks)
    t = core
    for m, n in enumerate(shape):
        u = rng.normal(size=(n, ranks[m]))
        t = np.moveaxis(np.tensordot(u, t, axes=([1], [m])), 0, m)
    return t


@st.composite
def shapes_and_ranks(draw, min_order=2, max_order=4):
    order = draw(st.integers(min_order, max_order))
    shape = tuple(draw(st.integers(2, 6)) for _ in range(order))
    ranks = [draw(st.integers(1, n)) for n in shape]
    # a core of ranks R with R_i <= prod_{j != i} R_j, otherwise the planted rank is not attained
    for _ in range(order):
        ranks = [min(r, math.prod(ranks[:i] + ranks[i + 1:])) for i, r in enumerate(ranks)]
    return shape, tuple(ranks)


# --- tensorly's API, pinned at >= 0.8.1: the return shapes this adapter relies on -------------------

def test_tensorly_partial_tucker_return_shape():
    t = np.random.default_rng(0).normal(size=(4, 3, 2, 2))
    out = partial_tucker(t, rank=[2, 3], modes=[0, 1], n_iter_max=2, init="svd", tol=0, random_state=0)
    (core, factors), errors = out
    assert core.shape == (2, 3, 2, 2)
    assert [f.shape for f in factors] == [(4, 2), (3, 3)]
    assert isinstance(errors, list)


def test_tensorly_parafac_return_shape():
    t = np.random.default_rng(0).normal(size=(4, 3, 2))
    weights, factors = parafac(t, rank=2, n_iter_max=5, init="svd", tol=0, random_state=0)
    assert tuple(weights.shape) == (2,)
    assert [tuple(f.shape) for f in factors] == [(4, 2), (3, 2), (2, 2)]
    assert tl.get_backend() == "numpy"


# --- Tucker --------------------------------------------------------------------------------------------

@given(shapes_and_ranks(), st.integers(0, 2**31 - 1), st.sampled_from(["hosvd", "hooi"]))
def test_tucker_recovers_planted_ranks(sr, seed, method):
    shape, ranks = sr
    t = _planted_tucker(np.random.default_rng(seed), shape, ranks)
    dec = tucker_decompose(t, ranks, method=method, seed=seed)
    assert isinstance(dec, TuckerDecomposition)
    assert dec.ranks == ranks and dec.core.shape == ranks
    assert dec.rel_error < 1e-8
    assert np.linalg.norm(dec.to_tensor() - t) / np.linalg.norm(t) < 1e-8
    # the planted ranks are the true multilinear ranks (independent SVD of the unfoldings)
    assert all(np.sum(_svals(t, m) > 1e-9 * _svals(t, m)[0]) == r for m, r in enumerate(ranks))
    assert dec.n_params == math.prod(ranks) + sum(n * r for n, r in zip(shape, ranks))
    for u in dec.factors:
        np.testing.assert_allclose(u.T @ u, np.eye(u.shape[1]), atol=1e-10)


@given(st.lists(st.integers(1, 5), min_size=2, max_size=4), st.integers(0, 1000))
def test_full_ranks_reproduce_exactly(shape, seed):
    t = np.random.default_rng(seed).normal(size=shape)
    for method in ("hosvd", "hooi"):
        dec = tucker_decompose(t, tuple(shape), method=method, seed=seed)
        assert np.max(np.abs(dec.to_tensor() - t)) < 1e-10


@given(shapes_and_ranks(max_order=3), st.integers(0, 1000))
def test_truncation_error_within_hosvd_bounds(sr, seed):
    """max_n tail_n <= err_HOOI <= err_HOSVD <= sqrt(sum_n tail_n^2) (De Lathauwer et al. 2000)."""
    shape, ranks = sr
    t = np.random.default_rng(seed).normal(size=shape)
    norm = np.linalg.norm(t)
    tails = [np.sqrt(np.sum(_svals(t, m)[r:] ** 2)) / norm for m, r in enumerate(ranks)]
    hosvd = tucker_decompose(t, ranks, method="hosvd").rel_error
    hooi = tucker_decompose(t, ranks, method="hooi").rel_error
    assert max(tails) <= hooi + 1e-9
    assert hooi <= hosvd + 1e-9
    assert hosvd <= np.sqrt(np.sum(np.square(tails))) + 1e-9


def test_partial_tucker_on_channel_modes_of_a_kernel():
    rng = np.random.default_rng(1)
    core = rng.normal(size=(3, 2, 3, 3))
    k = np.einsum("abxy,oa,cb->ocxy", core, rng.normal(size=(8, 3)), rng.normal(size=(5, 2)))
    dec = tucker_decompose(k, (3, 2), modes=(0, 1))
    assert dec.modes == (0, 1) and dec.core.shape == (3, 2, 3, 3)
    assert dec.rel_error < 1e-10
    assert dec.n_params == 3 * 2 * 9 + 8 * 3 + 5 * 2
    assert dec.to_dict()["ranks"] == [3, 2]
    assert "ranks=(3, 2)" in repr(dec)


# --- CP ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,rank,seed", [((4, 5, 6), 3, 0), ((3, 4, 3, 3), 2, 1), ((8, 6, 3), 3, 2),
                                             ((6, 5), 3, 3), ((5, 3, 3, 3), 4, 4), ((4, 4, 4), 1, 5)])
def test_cp_recovers_planted_rank(shape, rank, seed):
    rng = np.random.default_rng(seed)
    factors = [rng.normal(size=(n, rank)) for n in shape]
    letters = "abcd"[: len(shape)]
    t = np.einsum(",".join(c + "r" for c in letters) + "->" + letters, *factors)
    dec = cp_decompose(t, rank, seed=seed, n_restarts=2)
    assert isinstance(dec, CPDecomposition)
    assert dec.rank == rank and dec.ranks == (rank,)
    assert dec.rel_error < 1e-8
    # independent reconstruction
    rec = np.einsum("r," + ",".join(c + "r" for c in letters) + "->" + letters, dec.weights, *dec.factors)
    assert np.linalg.norm(rec - t) / np.linalg.norm(t) < 1e-8
    assert dec.n_params == rank * sum(shape)


def test_cp_same_seed_same_result():
    t = np.random.default_rng(0).normal(size=(4, 3, 3))
    a = cp_decompose(t, 3, seed=7, n_restarts=3, init="random")
    b = cp_decompose(t, 3, seed=7, n_restarts=3, init="random")
    np.testing.assert_array_equal(a.to_tensor(), b.to_tensor())


# --- layers and W ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("layer", [torch.nn.Conv1d(3, 4, 3), torch.nn.Conv2d(3, 4, (2, 3)),
                                   torch.nn.Conv3d(2, 3, 2), torch.nn.Linear(5, 4)])
def test_decompose_layer_full_ranks(layer):
    w = layer.weight.detach().double().numpy()
    dec = decompose_layer(layer, w.shape[:2])
    assert dec.rel_error < 1e-10 and dec.shape == w.shape
    full = decompose_layer(layer, w.shape, modes="all")
    assert full.modes == tuple(range(w.ndim)) and full.rel_error < 1e-10


def test_decompose_whole_network_tensor_of_a_linear_cnn():
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 2, bias=False), torch.nn.Flatten(),
                              torch.nn.Linear(3 * 3 * 3, 2, bias=False)).double()
    W = whole_network_tensor(net, (2, 4, 4))
    dec = decompose_whole_network(W, (2, 2, 4, 4))
    assert dec.shape == (2, 2, 4, 4) and dec.rel_error < 1e-10
    cp = decompose_whole_network(W.W, 3, method="cp")
    assert cp.shape == (2, 2, 4, 4) and 0 <= cp.rel_error < 1


# --- bad input -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("ranks,match", [((5, 2), r"\[1, 4\]"), ((0, 2), "not allowed"), ((-1, 2), "not allowed"),
                                         ((2, 2, 2), "3 entries"), ((2.5, 2), "not allowed"), ("ab", "not a rank tuple")])
def test_bad_tucker_ranks(ranks, match):
    with pytest.raises(RankError, match=match):
        tucker_decompose(np.ones((4, 3, 2)), ranks, modes=(0, 1))


def test_bad_cp_rank_and_tensors():
    t = np.ones((4, 3, 2))
    assert cp_rank_bound(t.shape) == 6
    for r in (0, -2, 7, 2.0, True):
        with pytest.raises(RankError, match="CP rank"):
            cp_decompose(t, r)
    with pytest.raises(RedundancyError, match="at least 2 modes"):
        tucker_decompose(np.ones(3), 1)
    with pytest.raises(RedundancyError, match="non-finite"):
        tucker_decompose(np.full((2, 2), np.nan), (1, 1))
    with pytest.raises(RedundancyError, match="method"):
        tucker_decompose(t, 1, method="svd")
    with pytest.raises(RedundancyError, match="modes"):
        tucker_decompose(t, (1, 1), modes=(0, 0))


def test_unsupported_layers():
    with pytest.raises(UnsupportedLayerError, match="ReLU"):
        decompose_layer(torch.nn.ReLU(), 1)
    with pytest.raises(UnsupportedLayerError, match="groups=2"):
        decompose_layer(torch.nn.Conv2d(4, 4, 3, groups=2), (2, 2))


def test_tensorly_backed_products_match_direct_formulas():
    """unfold / mode products / CP reconstruction (tensorly) against the textbook definitions."""
    from redundancy.lowrank.decompose import cp_full, mode_product, multi_mode_product, unfold

    rng = np.random.default_rng(0)
    T = rng.normal(size=(3, 4, 5))
    for m in range(3):
        assert np.array_equal(unfold(T, m), np.moveaxis(T, m, 0).reshape(T.shape[m], -1))
    A = rng.normal(size=(6, 4))
    direct = np.einsum("ij,ajc->aic", A, T)
    np.testing.assert_allclose(mode_product(T, A, 1), direct, rtol=1e-12, atol=1e-12)
    B, C = rng.normal(size=(2, 3)), rng.normal(size=(7, 5))
    np.testing.assert_allclose(multi_mode_product(T, [B, C], [0, 2]), np.einsum("ia,kc,abc->ibk", B, C, T),
                               rtol=1e-12, atol=1e-12)
    w, f = rng.normal(size=2), [rng.normal(size=(n, 2)) for n in (3, 4, 5)]
    np.testing.assert_allclose(cp_full(w, f), np.einsum("z,az,bz,cz->abc", w, *f), rtol=1e-12, atol=1e-12)
