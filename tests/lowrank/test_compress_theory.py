"""Link to the theory: a Tucker-compressed linear CNN has a W of multilinear rank <= its ranks, and K drops out."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from redundancy import RankError, UnsupportedLayerError
from redundancy.lowrank.compression import compress
from redundancy.lowrank.multilinear import multilinear_rank, multilinear_rank_check
from redundancy.linear.spec import AvgPool, Conv, Dense, LinearCNN, TuckerConv


@st.composite
def tucker_cnns(draw):
    nd = draw(st.integers(1, 2))
    c = draw(st.integers(1, 3))
    k = draw(st.integers(1, 5))
    ks = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    st_ = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    pad = tuple(draw(st.integers(0, 1)) for _ in range(nd))
    dil = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    size = tuple(d * (l - 1) + 1 + draw(st.integers(0, 5)) for d, l in zip(dil, ks))
    ranks = (draw(st.integers(1, k)), draw(st.integers(1, c)))
    sr = draw(st.none() | st.tuples(*[st.integers(1, l) for l in ks]))
    layers = [TuckerConv(k, ks, ranks=ranks, spatial_ranks=sr, stride=st_, padding=pad, dilation=dil)]
    spec = LinearCNN((c, *size), layers)
    out = spec.output_shape
    if min(out[1:]) >= 2 and draw(st.booleans()):
        layers.append(AvgPool(2))
    layers.append(Dense(draw(st.integers(1, 3))))
    spec = LinearCNN((c, *size), layers)
    return spec, ranks + (sr or ks)


@settings(max_examples=20)  # each example runs three Jacobians; 20 keep the file under ~6 s
@given(tucker_cnns(), st.integers(0, 100))
def test_multilinear_rank_of_W_is_at_most_the_tucker_ranks(case, seed):
    spec, ranks = case
    net = spec.build(seed=seed)
    chk = multilinear_rank_check(net, spec.input_shape, ranks)
    assert chk.holds, chk
    assert all(o <= r for o, r in zip(chk.observed, ranks))
    assert chk.patch_error < 1e-10  # the patch form reproduces the model's own W
    # ranks read from the TuckerConv itself
    assert multilinear_rank_check(net, spec.input_shape).expected == ranks


def test_generic_weights_attain_the_ranks_and_K_drops_out():
    dofs, dofs_num, naive = set(), set(), []
    for k in (2, 4, 8):
        spec = LinearCNN((3, 8, 8), [TuckerConv(k, 3, ranks=(2, 2)), Dense(3)])
        chk = multilinear_rank_check(spec.build(seed=k), spec.input_shape, (2, 2), numerical_dof=True)
        assert chk.holds and chk.observed == (2, 2, 3, 3) and chk.K == k
        assert chk.sizes == (3 * 36, 3, 3, 3)
        dofs.add(chk.dof)
        dofs_num.add(chk.dof_numerical)  # independent: Jacobian rank of theta -> W on the raw input
        naive.append(chk.naive_parameter_count)
    # both routes agree, for every K: 250 (while the parameter count is 262, 482, 922)
    assert dofs_num == dofs
    # dof of W: prod R + sum (I R - R^2) over modes ((n, j), c, t1, t2) -- no K in it
    assert dofs == {2 * 2 * 3 * 3 + (108 * 2 - 4) + (3 * 2 - 4) + 0 + 0}
    assert naive[0] < naive[1] < naive[2]


def test_compressed_plain_cnn_and_a_check_that_fails():
    spec = LinearCNN((2, 9, 9), [Conv(6, 3, stride=2, padding=1), AvgPool(2), Dense(2)])
    net = spec.build(seed=0)
    full = multilinear_rank_check(net, spec.input_shape)
    assert full.holds and full.observed == (6, 2, 3, 3)
    # the check can fail: the plain conv is not of rank (2, 1)
    assert not multilinear_rank_check(net, spec.input_shape, (2, 1)).holds
    small = compress(net, ranks=(2, 1)).model
    chk = multilinear_rank_check(small, spec.input_shape)
    assert chk.expected == (2, 1, 3, 3) and chk.holds and chk.observed == (2, 1, 3, 3)
    assert chk.patch_error < 1e-10
    assert len(chk.to_pandas()) == 4 and chk.to_dict()["holds"] is True


def test_cp_compressed_first_layer():
    from redundancy.linear.spec import CPConv

    spec = LinearCNN((3, 8, 8), [CPConv(6, 3, rank=2), Dense(2)])
    chk = multilinear_rank_check(spec.build(seed=1), spec.input_shape)
    assert chk.expected == (2, 2, 2, 2) and chk.holds and chk.observed == (2, 2, 2, 2)
    plain = LinearCNN((3, 8, 8), [Conv(6, 3), Dense(2)])
    small = compress(plain.build(seed=0), ranks=2, method="cp").model
    chk = multilinear_rank_check(small, plain.input_shape)
    assert chk.expected == (2, 2, 2, 2) and chk.holds and chk.patch_error < 1e-10


def test_multilinear_rank_and_tucker_dof():
    rng = np.random.default_rng(0)
    t = np.einsum("abc,ia,jb,kc->ijk", rng.normal(size=(2, 3, 2)), rng.normal(size=(5, 2)),
                  rng.normal(size=(6, 3)), rng.normal(size=(4, 2)))
    ranks, gaps = multilinear_rank(t)
    assert ranks == (2, 3, 2) and min(gaps) > 1e6


def test_bad_input():
    spec = LinearCNN((2, 6, 6), [Conv(3, 3), Dense(1)])
    net = spec.build()
    with pytest.raises(RankError, match="positive integers"):
        multilinear_rank_check(net, spec.input_shape, (2, 0))
    with pytest.raises(RankError, match="input_shape"):
        multilinear_rank_check(net, (3, 6, 6))
    with pytest.raises(UnsupportedLayerError, match="Sequential"):
        multilinear_rank_check(torch.nn.Conv2d(2, 3, 3), (2, 6, 6))
    with pytest.raises(UnsupportedLayerError, match="AvgPool"):
        multilinear_rank_check(torch.nn.Sequential(torch.nn.AvgPool2d(2)), (2, 6, 6))
