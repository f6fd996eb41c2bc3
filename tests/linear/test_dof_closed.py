"""Closed-form dof against independent numerical ranks (numpy unit-perturbation Jacobians, torch models)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redundancy import RankError, RedundancyError
from redundancy.linear.dof import (closed_form, cp_closed_form_applies, cp_dof, degrees_of_freedom,
                            depthwise_separable_dof, patch_injective, patch_matrix_1d, tucker_dof,
                            tucker_effective_ranks, vanilla_dof)
from redundancy.linear.spec import AvgPool, Conv, CPConv, Dense, LinearCNN, TuckerConv
from redundancy.linear.statmodel import BasicCNN
from redundancy.testing.strategies import basic_cnns, closed_form_specs


# ---- independent numpy Jacobian ranks of the parametrisations (multilinear: exact unit columns) ----
def _jac_rank(blocks, build):
    """Rank of d build(*blocks) / d blocks by unit perturbations (exact for a multilinear map)."""
    base = [b.copy() for b in blocks]
    cols = []
    for i, b in enumerate(base):
        for idx in np.ndindex(b.shape):
            e = [x for x in base]
            u = np.zeros_like(b)
            u[idx] = 1.0
            e[i] = u
            cols.append(build(*e).ravel())
    J = np.array(cols).T
    J = J / np.maximum(np.linalg.norm(J, axis=0), 1e-300)
    return int(np.linalg.matrix_rank(J, tol=1e-9 * np.linalg.norm(J, 2)))


def _tucker_full(core, *factors):
    T = core
    for i, U in enumerate(factors):
        T = np.moveaxis(np.tensordot(U, T, axes=([1], [i])), 0, i)
    return T


def _outer(vs):
    out = vs[0]
    for v in vs[1:]:
        out = np.multiply.outer(out, v)
    return out


@given(shape=st.lists(st.integers(1, 4), min_size=2, max_size=4), data=st.data())
def test_tucker_dof_matches_jacobian_rank(shape, data):
    ranks = [data.draw(st.integers(1, n + 2)) for n in shape]  # ranks above the dimensions too
    rng = np.random.default_rng(0)
    eff = [min(r, n) for r, n in zip(ranks, shape)]
    blocks = [rng.normal(size=eff)] + [rng.normal(size=(n, r)) for n, r in zip(shape, eff)]
    assert tucker_dof(shape, ranks) == _jac_rank(blocks, _tucker_full)


@given(shape=st.lists(st.integers(1, 4), min_size=2, max_size=4), R=st.integers(1, 5))
def test_cp_dof_matches_jacobian_rank_where_applicable(shape, R):
    rng = np.random.default_rng(1)
    blocks = [rng.normal(size=(n, R)) for n in shape]
    assert np.allclose(_outer_sum(blocks), np.einsum(",".join(f"{c}r" for c in "ijkl"[:len(shape)])
                                                     + "->" + "ijkl"[:len(shape)], *blocks))
    rank = _jac_rank(blocks, lambda *f: _outer_sum(f))
    if cp_closed_form_applies(shape, R):
        assert cp_dof(shape, R) == rank
    else:
        with pytest.raises(RankError):
            cp_dof(shape, R)


def test_cp_defective_case_2222_rank3_is_not_closed_form():
    """(2, 2, 2, 2) at R = 3 meets the 3-way Kruskal bound 2R + 2 = 8 but is defective: dim 14, not 15."""
    rng = np.random.default_rng(0)
    blocks = [rng.normal(size=(2, 3)) for _ in range(4)]
    assert _jac_rank(blocks, lambda *f: _outer_sum(f)) == 14
    assert not cp_closed_form_applies((2, 2, 2, 2), 3)
    with pytest.raises(RankError, match="Kruskal"):
        cp_dof((2, 2, 2, 2), 3)


def _outer_sum(factors):
    return sum(_outer([f[:, r] for f in factors]) for r in range(factors[0].shape[1]))


def test_note_examples():
    # paper_redundancy.md §3.4: Tucker l=(3,3,8), ranks (3,3,4), R=4, P=16 -> 208; CP -> 108
    assert tucker_dof((3, 3, 8, 16), (3, 3, 4, 4)) == 208
    assert cp_dof((3, 3, 8, 16), 4) == 108
    assert vanilla_dof(9, 16, 4) == 4 * (9 + 16 - 4)
    assert vanilla_dof(9, 16, 12) == 9 * 16


@settings(max_examples=8)
@given(K=st.integers(1, 6), R=st.integers(1, 3), P=st.integers(2, 6))
def test_tucker_and_cp_dof_independent_of_K(K, R, P):
    """At fixed R the reachable W does not depend on K >= R (numerical rank, torch model)."""
    R = min(R, K)
    dofs_t, dofs_c = set(), set()
    for KK in (K, K + 3):
        t = LinearCNN((2, 2 * P), [TuckerConv(KK, 2, ranks=(R, 2), stride=2), Dense(1)])
        c = LinearCNN((2, 2 * P), [CPConv(KK, 2, rank=R, stride=2), Dense(1)])
        dofs_t.add(degrees_of_freedom(t, method="numerical").dof)
        dofs_c.add(degrees_of_freedom(c, method="numerical").dof)
    assert len(dofs_t) == 1 and len(dofs_c) == 1


@settings(max_examples=30)
@given(spec=closed_form_specs(), seed=st.integers(0, 1000))
def test_closed_form_equals_numerical_on_raw_input_when_injective(spec, seed):
    cf, reason = closed_form(spec)
    num = degrees_of_freedom(spec, method="numerical", seed=seed)
    assert num.gap > 1e4
    if cf is None:
        assert reason
        return
    if cf.raw_injective:
        assert num.dof == cf.dof_patch, (spec, cf)
        auto = degrees_of_freedom(spec)
        assert auto.method == "closed" and auto.dof == num.dof
    else:
        # the raw-input map W -> M^T W can only lose dimensions
        assert num.dof <= cf.dof_patch
        auto = degrees_of_freedom(spec)
        assert auto.method == "numerical" and auto.dof == num.dof and auto.dof_patch == cf.dof_patch


@given(net=basic_cnns())
def test_basic_cnn_patch_closed_form(net):
    """On the patch tensor W = sum_k A_k o B_k has dof r(L + P - r), r = min(K, L, P), for every
    stride (independent check: numpy Jacobian of (A, B) -> W)."""
    rng = np.random.default_rng(2)
    A, B = net.random_weights(rng)
    rank = _jac_rank([A, B], lambda a, b: net.whole_tensor(a, b))
    assert rank == vanilla_dof(net.L, net.P, net.K)
    cf, _ = closed_form(net)
    assert cf.dof_patch == rank
    # on the raw input: equal when M^T is injective, otherwise never larger
    raw = _jac_rank([A, B], lambda a, b: net.effective_weight(a, b))
    assert (raw == rank) if cf.raw_injective else (raw <= rank)


@given(d=st.integers(3, 14), l=st.integers(1, 4), data=st.data())
def test_du_et_al_special_case(d, l, data):
    """N = 1, K = 1, one channel, non-overlapping stride: dof = l + P - 1."""
    l = min(l, d)
    s = data.draw(st.integers(l, l + 2))
    net = BasicCNN((d,), (l,), (s,), 1, K=1)
    res = degrees_of_freedom(net, method="numerical")
    assert res.dof == l + net.P - 1 == degrees_of_freedom(net).dof


def test_overlap_lowers_raw_dof_and_both_are_reported():
    # the note's §1.1 example: d = 3, l = 2, s = 1; with K = 2 the patch dof is 4, the raw input has 3 entries
    spec = LinearCNN((1, 3), [Conv(2, 2), Dense(1)])
    res = degrees_of_freedom(spec)
    assert (res.dof, res.dof_patch, res.method, res.raw_equals_patch) == (3, 4, "numerical", False)
    assert degrees_of_freedom(spec, method="closed").dof == 4
    # K = 1 overlaps too, yet loses nothing: injectivity is sufficient, not necessary
    assert degrees_of_freedom(LinearCNN((1, 3), [Conv(1, 2), Dense(1)])).dof == 3


def test_patch_injective_rules():
    assert patch_injective((8,), (2,), (2,))                      # s = l
    assert patch_injective((9,), (2,), (3,))                      # s > l
    assert not patch_injective((8,), (3,), (2,))                  # s < l, no pooling
    assert patch_injective((3,), (2,), (1,), pool=2)              # overlapping but pooled: rows x0+x1, x1+x2
    M = patch_matrix_1d(6, 2, 2, padding=1)
    assert M.shape == (2 * 4, 6) and not M[0].any()               # the first row reads only padding


def test_depthwise_separable_and_inverted_residual():
    v1 = LinearCNN((4, 6, 6), [Conv(4, 3, groups=4, stride=3), Conv(3, 1), Dense(4)])
    assert degrees_of_freedom(v1).dof == depthwise_separable_dof(4, 9, 16, 3) == \
        degrees_of_freedom(v1, method="numerical").dof
    # expansion R = 12 > K = 3: collapses to a Tucker variety (the R > K collapse)
    v2 = LinearCNN((2, 6, 6), [Conv(12, 1), Conv(12, 3, groups=12, stride=3), Conv(3, 1), Dense(2)])
    res = degrees_of_freedom(v2)
    assert res.formula.startswith("R > K collapse")
    assert res.dof == degrees_of_freedom(v2, method="numerical").dof == tucker_dof((2, 9, 8), (2, 9, 3))


def test_effective_rank_clipping():
    assert tucker_effective_ranks((3, 3, 8), (5, 2, 8)) == (3, 2, 6)
    assert tucker_effective_ranks((2, 2, 3), (1, 2, 3)) == (1, 2, 2)
    # R > K: output rank capped by K (Tucker layer with R_out = K, since the layer needs R_out <= K)
    a = LinearCNN((2, 8), [Conv(2, 1), TuckerConv(2, 2, ranks=(2, 2), stride=2), Dense(1)])
    b = LinearCNN((2, 8), [Conv(6, 1), TuckerConv(6, 2, ranks=(6, 6), stride=2), Conv(2, 1), Dense(1)])
    assert degrees_of_freedom(a).dof == degrees_of_freedom(b).dof == degrees_of_freedom(b, method="numerical").dof


@pytest.mark.parametrize("call", [
    lambda: tucker_dof((3, 3), (0, 1)),
    lambda: tucker_dof((3, 3), (1.5, 1)),
    lambda: tucker_dof((3, 2.0), (1, 1)),
    lambda: tucker_dof((3, 3), (1, 1, 1)),
    lambda: cp_dof((3, 3), 0),
    lambda: vanilla_dof(0, 3, 1),
    lambda: depthwise_separable_dof(2, 3, 4, -1),
    lambda: patch_matrix_1d(2, 3, 1),
    lambda: degrees_of_freedom(LinearCNN((1, 8), [Conv(2, 3)]), method="exact"),
    lambda: degrees_of_freedom(LinearCNN((1, 8), [Conv(2, 3), AvgPool(2), Conv(1, 1), Conv(1, 2)]), method="closed"),
    lambda: degrees_of_freedom(LinearCNN((1, 8), [Conv(2, 3)]), (1, 9)),
])
def test_bad_input_raises(call):
    with pytest.raises(RedundancyError):
        call()
