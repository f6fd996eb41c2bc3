"""Bad input to the low-rank primitives and the rank-search chains: one clear RedundancyError naming the argument.

Also checks the module split of ``redundancy.lowrank.decompose`` (same public names, one object per
name) and that the hardened functions still compute the textbook quantities on legal input
(against explicit loops / numpy, not tensorly).
"""

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


# ----------------------------------------------------------------------------------- the split
def test_decompose_reexports_the_split_modules():
    for name in ("TuckerDecomposition", "CPDecomposition", "tucker_decompose", "cp_decompose", "decompose_layer",
                 "decompose_whole_network", "layer_kernel", "mode_product", "multi_mode_product", "cp_full", "unfold",
                 "cp_rank_bound"):
        assert hasattr(D, name), name
    assert D.unfold is TO.unfold and D.cp_full is TO.cp_full and D.multi_mode_product is TO.multi_mode_product
    assert D.tucker_decompose is TU.tucker_decompose and D.cp_decompose is CP.cp_decompose
    assert D.CPDecomposition is CP.CPDecomposition and D.TuckerDecomposition is TU.TuckerDecomposition
    assert D._as_array is TO._as_array  # ranks.py / evbmf.py import it from decompose


def test_only_the_documented_modules_import_tensorly():
    import pathlib

    import redundancy

    root = pathlib.Path(redundancy.__file__).parent
    stmt = re.compile(r"^\s*(import|from)\s+tensorly\b", re.MULTILINE)
    users = sorted(str(p.relative_to(root)) for p in root.rglob("*.py") if stmt.search(p.read_text()))
    assert users == ["lowrank/cp.py", "lowrank/tensor_ops.py", "lowrank/tucker.py", "rank_search/factors.py"]


# ----------------------------------------------------------------------------------- tensor_ops
def test_unfold_refuses_bad_tensor_and_mode():
    with pytest.raises(RedundancyError, match="mode"):
        TO.unfold(T3, 3)
    with pytest.raises(RedundancyError, match="mode"):
        TO.unfold(T3, None)
    with pytest.raises(RedundancyError, match="tensor"):
        TO.unfold(np.array([[np.nan, 1.0]]), 0)
    with pytest.raises(RedundancyError, match="tensor"):
        TO.unfold(np.zeros((0, 3)), 0)
    with pytest.raises(RedundancyError, match="tensor"):
        TO.unfold("abc", 0)
    # the textbook unfolding, by loops
    u = TO.unfold(T3, 1)
    for i, j, k in np.ndindex(*T3.shape):
        assert u[j, i * 5 + k] == T3[i, j, k]


def test_multi_mode_product_refuses_shapes_that_do_not_chain():
    A = RNG.normal(size=(2, 3))
    with pytest.raises(RedundancyError, match="matrices"):
        TO.multi_mode_product(T3, None, [0])
    with pytest.raises(RedundancyError, match=r"matrices\[0\] has shape \(2, 3\).*4 columns"):
        TO.multi_mode_product(T3, [A], [1])
    with pytest.raises(RedundancyError, match="modes"):
        TO.multi_mode_product(T3, [A, A], [0, 0])
    with pytest.raises(RedundancyError, match="modes"):
        TO.multi_mode_product(T3, [A], [0, 1])
    with pytest.raises(RedundancyError, match="modes"):
        TO.multi_mode_product(T3, [A], [5])
    with pytest.raises(RedundancyError, match=r"matrices\[0\]"):
        TO.multi_mode_product(T3, [np.full((2, 3), np.inf)], [0])
    with pytest.raises(RedundancyError, match="overflow"):
        TO.multi_mode_product(np.full((3, 2), 1e200), [np.full((2, 3), 1e200)], [0])
    with pytest.raises(RedundancyError, match="limit"):
        TO.multi_mode_product(np.ones((1, 1)), [np.ones((2 ** 16, 1)), np.ones((2 ** 16, 1))], [0, 1])
    out = TO.multi_mode_product(T3, [A, np.eye(5)[:2]], [0, 2])
    want = np.zeros((2, 4, 2))
    for i, j, k, a, c in np.ndindex(2, 4, 2, 3, 5):
        want[i, j, k] += A[i, a] * T3[a, j, c] * np.eye(5)[k, c]
    np.testing.assert_allclose(out, want, atol=1e-12)
    assert np.array_equal(TO.multi_mode_product(T3, [], []), T3)
    np.testing.assert_allclose(TO.mode_product(T3, A, 0), np.einsum("ia,ajk->ijk", A, T3), atol=1e-12)
    with pytest.raises(RedundancyError, match="matrix"):
        TO.mode_product(T3, A, 1)


def test_cp_full_refuses_bad_weights_and_factors():
    f = [RNG.normal(size=(n, 2)) for n in (2, 3)]
    with pytest.raises(RedundancyError, match="factors"):
        TO.cp_full(None, None)
    with pytest.raises(RedundancyError, match="factors"):
        TO.cp_full(None, [])
    with pytest.raises(RedundancyError, match=r"factors\[1\].*columns"):
        TO.cp_full(None, [f[0], np.ones((3, 3))])
    with pytest.raises(RedundancyError, match="weights"):
        TO.cp_full(np.ones(3), f)
    with pytest.raises(RedundancyError, match="weights"):
        TO.cp_full(np.array([np.nan, 1.0]), f)
    with pytest.raises(RedundancyError, match="overflow"):
        TO.cp_full(np.ones(2) * 1e200, [np.ones((2, 2)) * 1e200, np.ones((2, 2))])
    with pytest.raises(RedundancyError, match="limit"):
        TO.cp_full(None, [np.ones((2 ** 12, 1))] * 4)
    w = np.array([2.0, -1.0])
    want = sum(w[r] * np.multiply.outer(f[0][:, r], f[1][:, r]) for r in range(2))
    np.testing.assert_allclose(TO.cp_full(w, f), want, atol=1e-12)
    np.testing.assert_allclose(TO.cp_full(None, f), f[0] @ f[1].T, atol=1e-12)


# ----------------------------------------------------------------------------------- tt_decompose
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


# ----------------------------------------------------------------------------------- rank_chains
def test_counts_refuse_bad_layers_ranks_methods_and_positions():
    conv, lin = nn.Conv2d(4, 6, 3), nn.Linear(5, 3)
    with pytest.raises(UnsupportedLayerError, match="layer"):
        RC.chain_params(nn.ReLU(), 1, "tt")
    with pytest.raises(UnsupportedLayerError, match="groups=2"):
        RC.dense_macs(nn.Conv2d(4, 4, 3, groups=2), 4, 4)
    with pytest.raises(RedundancyError, match="layer"):
        RC.chain_macs("conv", 1, "tt", 4, 4)
    with pytest.raises(RedundancyError, match="rank"):
        RC.chain_params(conv, 0, "tt")
    with pytest.raises(RedundancyError, match="rank"):
        RC.chain_params(conv, 10 ** 12, "tt")
    with pytest.raises(RedundancyError, match="method"):
        RC.chain_params(conv, 1, "svdd")
    with pytest.raises(RedundancyError, match="method='svd'"):
        RC.chain_macs(conv, 1, "svd", 4, 4)
    with pytest.raises(RedundancyError, match="in_positions"):
        RC.chain_macs(conv, 1, "tt", None, 4)
    with pytest.raises(RedundancyError, match="out_positions"):
        RC.dense_macs(conv, 4, 0)
    # the formulas, counted by building the chain and counting its parameters / the dense MACs by hand
    for method in ("tt", "tucker", "cp"):
        chain = RC.build_chain(conv, TT.init_factors(conv.weight.detach().double().numpy(), method, 2), method)
        assert RC.chain_params(conv, 2, method) == sum(p.numel() for p in chain.parameters())
    assert RC.chain_params(lin, 2, "svd") == 2 * (5 + 3) + 3
    assert RC.dense_macs(conv, 64, 36) == 36 * 6 * 4 * 9


def test_factors_kernel_refuses_factors_that_do_not_chain():
    a, g, b = np.ones((2, 1)), np.ones((1, 4, 1)), np.ones((1, 3))
    with pytest.raises(RedundancyError, match="factors"):
        RC.factors_kernel(None, "tt", (2, 2))
    with pytest.raises(RedundancyError, match="method"):
        RC.factors_kernel((a, g, b), None, (2, 2))
    with pytest.raises(RedundancyError, match="kernel_size"):
        RC.factors_kernel((a, g, b), "tt", (3, 2))
    with pytest.raises(RedundancyError, match="kernel_size"):
        RC.factors_kernel((a, g, b), "tt")
    with pytest.raises(RedundancyError, match="do not fit method='cp'"):
        RC.factors_kernel((a, g, b), "cp", (2, 2))
    with pytest.raises(RedundancyError, match="do not chain"):
        RC.factors_kernel((a, np.ones((2, 4, 1)), b), "tt", (2, 2))
    with pytest.raises(RedundancyError, match="SVD pair"):
        RC.factors_kernel((a, np.ones((2, 3))), "svd")
    with pytest.raises(RedundancyError, match=r"factors\[1\]"):
        RC.factors_kernel((a, np.full((1, 4, 1), np.nan), b), "tt", (2, 2))
    with pytest.raises(RedundancyError, match="dtype"):
        RC.factors_kernel((torch.ones(2, 1), torch.ones(1, 4, 1, dtype=torch.float64), torch.ones(1, 3)), "tt", (4,))
    with pytest.raises(RedundancyError, match="overflow"):
        RC.factors_kernel((torch.full((2, 1), 1e30), torch.full((1, 4, 1), 1e30), torch.ones(1, 3)), "tt", (4,))
    # differentiable for torch factors
    ta = torch.ones(2, 1, dtype=torch.float64, requires_grad=True)
    w = RC.factors_kernel((ta, torch.ones(1, 4, 1, dtype=torch.float64), torch.ones(1, 3, dtype=torch.float64)),
                          "tucker", (2, 2))
    w.sum().backward()
    assert w.shape == (2, 3, 2, 2) and float(ta.grad.sum()) == 2 * 3 * 4


def test_build_chain_refuses_bad_layers_factors_and_methods():
    conv = nn.Conv1d(3, 4, 3).double()
    w = conv.weight.detach().numpy()
    fs = TT.init_factors(w, "tt", 2)
    with pytest.raises(UnsupportedLayerError, match="groups=3"):
        RC.build_chain(nn.Conv1d(3, 3, 3, groups=3), fs, "tt")
    with pytest.raises(RedundancyError, match="layer"):
        RC.build_chain(None, fs, "tt")
    bad = nn.Conv1d(3, 4, 3)
    with torch.no_grad():
        bad.weight[0, 0, 0] = float("nan")
    with pytest.raises(RedundancyError, match="layer"):
        RC.build_chain(bad, fs, "tt")
    with pytest.raises(RedundancyError, match="method"):
        RC.build_chain(conv, fs, "abc")
    with pytest.raises(RedundancyError, match="method='svd'"):
        RC.build_chain(conv, fs, "svd")
    with pytest.raises(RedundancyError, match="factors"):
        RC.build_chain(conv, None, "tt")
    with pytest.raises(RedundancyError, match="factors"):
        RC.build_chain(conv, fs[:2], "tt")
    with pytest.raises(RedundancyError, match="do not fit the layer"):
        RC.build_chain(conv, TT.init_factors(np.ones((5, 3, 3)), "tt", 2), "tt")
    with pytest.raises(RedundancyError, match="do not fit method='cp'"):
        RC.build_chain(conv, fs, "cp")
    with pytest.raises(RedundancyError, match="Linear"):
        RC.build_chain(nn.Linear(5, 3), TT.svd_factors(np.ones((3, 4)), 1), "svd")
    with pytest.raises(RedundancyError, match="overflow"):
        RC.build_chain(nn.Conv1d(3, 4, 3).half(), [f * 1e10 for f in fs], "tt")
    # legal input: torch factors are accepted, and the caller's layer is unchanged
    before = {k: v.clone() for k, v in conv.state_dict().items()}
    chain = RC.build_chain(conv, [torch.from_numpy(f) for f in fs], "tt")
    assert all(torch.equal(before[k], v) for k, v in conv.state_dict().items())
    x = torch.randn(2, 3, 7, dtype=torch.float64)
    assert torch.allclose(chain(x), nn.functional.conv1d(x, RC.chain_kernel(chain), conv.bias))


def test_chain_kernel_refuses_what_is_not_an_ungrouped_chain():
    from collections import OrderedDict

    from redundancy.lowrank.chains import CompressedLayer

    with pytest.raises(RedundancyError, match="chain"):
        RC.chain_kernel(nn.Conv2d(2, 2, 3))
    grouped = nn.Conv2d(4, 4, 3, groups=2)
    decs = [D.decompose_layer(nn.Conv2d(2, 2, 3), (1, 1)) for _ in range(2)]
    with pytest.raises(RedundancyError, match="not a rank-search chain"):
        RC.chain_kernel(tucker2_layer(grouped, decs))
    strided = CompressedLayer(OrderedDict(reduce=nn.Conv1d(2, 1, 1, stride=2), core=nn.Conv1d(1, 1, 3),
                                          restore=nn.Conv1d(1, 2, 1)), "tt", (1,))
    with pytest.raises(RedundancyError, match="not a rank-search chain"):
        RC.chain_kernel(strided)
    broken = CompressedLayer(OrderedDict(a=nn.Linear(3, 2), b=nn.Linear(4, 1)), "svd", (2,))
    with pytest.raises(RedundancyError, match="features"):
        RC.chain_kernel(broken)
    chain = tucker2_layer(nn.Conv2d(3, 2, 3), D.decompose_layer(nn.Conv2d(3, 2, 3), (2, 3)))
    with torch.no_grad():
        chain.core.weight.view(-1)[0] = float("inf")
    with pytest.raises(RedundancyError, match="chain"):
        RC.chain_kernel(chain)
    # an ungrouped Tucker-2 chain of lowrank.chains (untied ranks) rebuilds its layer's kernel
    conv = nn.Conv2d(3, 2, 3).double()
    chain = tucker2_layer(conv, D.decompose_layer(conv, (2, 3)))
    assert torch.allclose(RC.chain_kernel(chain), conv.weight, atol=1e-10)
    assert math.prod(RC.chain_kernel(chain).shape) == conv.weight.numel()
