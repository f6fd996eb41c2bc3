"""The tensor algebra of :mod:`redundancy.lowrank.tensor_ops` (and the split of ``decompose``): bad input is one clear RedundancyError naming the argument.

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
