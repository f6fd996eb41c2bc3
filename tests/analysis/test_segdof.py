"""Closed forms of traced compressed chains (Tucker-2, CP, tensor-train, depthwise-separable,
pointwise/SVD pairs, with BatchNorm/identity/dropout between, 1-D/2-D/3-D) against the rank of the
Jacobian of theta -> W computed here directly with torch.func.jacrev (an independent route)."""

import math

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

from redundancy.analysis.report import analyze
from redundancy.linear.dof_closed import matrix_rank_dof, tt_dof, tucker_dof
from .helpers import jacobian_dof

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
BN = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


def one_segment(model, shape):
    rep = analyze(model, shape)
    assert len(rep.segments) == 1, [s.layers for s in rep.segments]
    seg = rep.segments[0]
    return seg


def _mid(nd, c, kind):
    return {"bn": BN[nd](c), "id": nn.Identity(), "drop": nn.Dropout(0.3)}[kind]


mids = st.sampled_from(["bn", "id", "drop"])
width = st.integers(1, 4)


@settings(max_examples=6)
@given(nd=st.integers(1, 3), C=width, a=width, b=width, K=width, k=st.integers(2, 3), s=st.integers(1, 2),
       p=st.integers(0, 1), m1=mids, m2=mids)
def test_tucker2_chain(nd, C, a, b, K, k, s, p, m1, m2):
    size = (5, 4, 3)[nd - 1]
    model = nn.Sequential(CONV[nd](C, a, 1, bias=False), _mid(nd, a, m1),
                          CONV[nd](a, b, k, stride=s, padding=p), _mid(nd, b, m2), CONV[nd](b, K, 1))
    shape = (C,) + (size,) * nd
    seg = one_segment(model, shape)
    assert seg.route in ("closed:tucker2", "closed:one_layer"), seg
    assert seg.dof == jacobian_dof(model, shape)


@settings(max_examples=6)
@given(nd=st.integers(1, 3), C=width, R=st.integers(1, 5), K=width, k=st.integers(2, 3), m1=mids, m2=mids)
def test_cp_chain(nd, C, R, K, k, m1, m2):
    size = (5, 4, 3)[nd - 1]
    model = nn.Sequential(CONV[nd](C, R, 1, bias=False), _mid(nd, R, m1),
                          CONV[nd](R, R, k, groups=R, padding=1, bias=False), _mid(nd, R, m2), CONV[nd](R, K, 1))
    shape = (C,) + (size,) * nd
    seg = one_segment(model, shape)
    assert seg.dof is not None
    assert seg.dof == jacobian_dof(model, shape), seg   # closed or numerical: both must be right
    if 1 < R <= min(C, K):
        assert seg.route == "closed:cp"


@settings(max_examples=6)
@given(nd=st.integers(1, 3), C=width, w=width, K=width, k=st.integers(2, 3), pre=st.booleans(), m1=mids)
def test_depthwise_separable_and_pointwise_depthwise(nd, C, w, K, k, pre, m1):
    size = (5, 4, 3)[nd - 1]
    if pre:   # 1x1 -> 1x1 -> depthwise (no post chain)
        model = nn.Sequential(CONV[nd](C, w, 1), CONV[nd](w, K, 1), _mid(nd, K, m1),
                              CONV[nd](K, K, k, groups=K, padding=1))
    else:     # depthwise -> 1x1 -> 1x1
        model = nn.Sequential(CONV[nd](C, C, k, groups=C), _mid(nd, C, m1), CONV[nd](C, w, 1), CONV[nd](w, K, 1))
    shape = (C,) + (size,) * nd
    seg = one_segment(model, shape)
    assert seg.dof == jacobian_dof(model, shape), seg
    if not pre and C > 1:
        assert seg.route == "closed:depthwise_separable"


@settings(max_examples=6)
@given(widths=st.lists(st.integers(1, 6), min_size=3, max_size=5), tokens=st.booleans(), m1=mids)
def test_pointwise_and_svd_linear_chain(widths, tokens, m1):
    layers = []
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        layers.append(nn.Linear(a, b, bias=i == len(widths) - 2))
        if i == 0:
            layers.append(nn.Dropout(0.1) if m1 == "bn" else _mid(1, b, m1))
    model = nn.Sequential(*layers)
    shape = (3, widths[0]) if tokens else (widths[0],)
    seg = one_segment(model, shape)
    r = min(widths)
    assert seg.route == "closed:pointwise"
    assert seg.dof == matrix_rank_dof(widths[0], widths[-1], r) == jacobian_dof(model, shape)


@settings(max_examples=6)
@given(C=width, a=width, b=width, c=width, K=width, k=st.integers(2, 3), three=st.booleans())
def test_tensor_train_chain(C, a, b, c, K, k, three):
    nd = 3 if three else 2
    k1, k2 = ((k, 1, 1), (1, k, 1)) if three else ((k, 1), (1, k))
    model = nn.Sequential(CONV[nd](C, a, 1, bias=False), CONV[nd](a, b, k1, bias=False), BN[nd](b),
                          CONV[nd](b, c, k2, padding=(0, 1, 0)[:nd]), CONV[nd](c, K, 1))
    shape = (C,) + ((4, 4, 2) if three else (4, 5))
    seg = one_segment(model, shape)
    assert seg.route == "closed:tensor_train", seg
    assert seg.dof == jacobian_dof(model, shape)


def test_tt_and_tucker_formulas_agree_on_three_modes():
    for shape, ranks in [((8, 9, 16), (4, 4)), ((3, 9, 2), (3, 2)), ((5, 4, 7), (1, 1)), ((6, 25, 6), (2, 6))]:
        assert tt_dof(shape, ranks) == tucker_dof(shape, (ranks[0], shape[1], ranks[1]))


def test_two_kernels_on_one_axis_is_not_a_tensor_train():
    model = nn.Sequential(nn.Conv2d(2, 3, 3, bias=False), nn.Conv2d(3, 2, 3, bias=False))
    seg = one_segment(model, (2, 6, 6))
    assert seg.route == "numerical"
    assert seg.dof == jacobian_dof(model, (2, 6, 6))


@settings(max_examples=6)
@given(nd=st.integers(1, 2), C=width, K=width, s=st.integers(1, 2), k=st.integers(2, 3), m1=mids)
def test_patchify_then_depthwise(nd, C, K, s, k, m1):
    """ConvNeXt's downsampling: a stride = kernel conv, BN, then the next block's depthwise conv."""
    model = nn.Sequential(CONV[nd](C, K, s, stride=s), _mid(nd, K, m1),
                          CONV[nd](K, K, k, groups=K, padding=1))
    shape = (C,) + (8 if nd == 1 else 6,) * nd
    seg = one_segment(model, shape)
    assert seg.dof == jacobian_dof(model, shape), seg
    if K > 1 and s > 1:
        assert seg.route == "closed:patchify_depthwise"
