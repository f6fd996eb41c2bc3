"""Hypothesis strategies for shapes, ranks and linear CNN specs.

Public, like ``xarray.testing.strategies``: the test suite and users share them.

Examples
--------
>>> from hypothesis import given
>>> from redundancy.testing.strategies import linear_cnn_specs
>>> @given(linear_cnn_specs(max_layers=2))
... def test_builds(spec):
...     assert spec.build() is not None
"""

from __future__ import annotations

import math

from hypothesis import strategies as st

from redundancy.linear.spec import AvgPool, Conv, CPConv, Dense, LinearCNN, TuckerConv

__all__ = ["ndims", "spatial_shapes", "conv_layers", "linear_cnn_specs", "basic_cnns"]


def ndims() -> st.SearchStrategy[int]:
    """Number of spatial modes: 1, 2 or 3."""
    return st.integers(1, 3)


@st.composite
def spatial_shapes(draw, ndim: int, min_size: int = 3, max_size: int | None = None):
    """Spatial sizes; 3-D shapes are kept small so Jacobians stay cheap."""
    hi = max_size or {1: 16, 2: 9, 3: 6}[ndim]
    return tuple(draw(st.integers(min_size, hi)) for _ in range(ndim))


@st.composite
def conv_layers(draw, in_shape, kinds=("conv", "tucker", "cp"), max_channels: int = 4):
    """One conv-like layer that fits ``in_shape = (C, *spatial)``; stride below/equal/above kernel."""
    c, sp = in_shape[0], in_shape[1:]
    n = len(sp)
    kind = draw(st.sampled_from(kinds))
    k = draw(st.integers(1, max_channels))
    pad = tuple(draw(st.integers(0, 1)) for _ in range(n))
    dil = tuple(draw(st.integers(1, 2)) for _ in range(n))
    ker = []
    for d, p, dl in zip(sp, pad, dil):
        max_l = max(1, min(4, (d + 2 * p - 1) // dl + 1))
        ker.append(draw(st.integers(1, max_l)))
    ker = tuple(ker)
    stride = tuple(draw(st.integers(1, l + 1)) for l in ker)
    if kind == "conv":
        groups = draw(st.sampled_from([g for g in (1, 2) if c % g == 0 and k % g == 0]))
        return Conv(k, ker, stride=stride, padding=pad, dilation=dil, groups=groups,
                    bias=draw(st.booleans()))
    if kind == "tucker":
        ranks = (draw(st.integers(1, k)), draw(st.integers(1, c)))
        sr = draw(st.none() | st.tuples(*[st.integers(1, l) for l in ker]))
        return TuckerConv(k, ker, ranks=ranks, spatial_ranks=sr, stride=stride, padding=pad, dilation=dil)
    return CPConv(k, ker, rank=draw(st.integers(1, 3)), stride=stride, padding=pad, dilation=dil)


@st.composite
def linear_cnn_specs(draw, ndim: int | None = None, max_layers: int = 3, kinds=("conv", "tucker", "cp"),
                     pooling: bool = True, dense: bool | None = None):
    """A valid :class:`~redundancy.linear.spec.LinearCNN` with 1..``max_layers`` conv layers, optional
    average pooling after each and an optional dense head."""
    n = draw(ndims()) if ndim is None else ndim
    shape = (draw(st.integers(1, 3)), *draw(spatial_shapes(n)))
    layers = []
    cur = shape
    for _ in range(draw(st.integers(1, max_layers))):
        lay = draw(conv_layers(cur, kinds=kinds))
        trial = LinearCNN(shape, layers + [lay])
        layers.append(lay)
        cur = trial.output_shape
        if pooling and min(cur[1:]) >= 2 and draw(st.booleans()):
            q = tuple(draw(st.integers(1, min(2, s))) for s in cur[1:])
            layers.append(AvgPool(q))
            cur = LinearCNN(shape, layers).output_shape
        if min(cur[1:]) < 1 or math.prod(cur[1:]) == 1:
            break
    use_dense = draw(st.booleans()) if dense is None else dense
    if use_dense:
        layers.append(Dense(draw(st.integers(1, 3)), bias=draw(st.booleans())))
    return LinearCNN(shape, layers)


@st.composite
def basic_cnns(draw, ndim: int | None = None):
    """A :class:`~redundancy.linear.statmodel.BasicCNN` (stride below, equal to and above the kernel)."""
    from redundancy.linear.statmodel import BasicCNN

    n = draw(ndims()) if ndim is None else ndim
    hi = {1: 14, 2: 9, 3: 6}[n]
    d = tuple(draw(st.integers(2, hi)) for _ in range(n))
    l = tuple(draw(st.integers(1, x)) for x in d)
    s = tuple(draw(st.integers(1, li + 1)) for li in l)
    m = tuple((x - li) // si + 1 for x, li, si in zip(d, l, s))
    q = tuple(draw(st.integers(1, mi)) for mi in m)
    return BasicCNN(d, l, s, q, K=draw(st.integers(1, 4)))


@st.composite
def closed_form_specs(draw, ndim: int | None = None, kinds=("conv", "tucker", "cp", "depthwise"),
                      max_channels: int = 4):
    """A small :class:`~redundancy.linear.spec.LinearCNN` in the closed-form pattern of
    :func:`redundancy.linear.dof.closed_form`: optional bias-free 1x1 convs, one conv-like layer (plain,
    depthwise, Tucker or CP, ranks possibly above the dimensions), optional 1x1 convs, optional
    average pooling, optional dense layer. Strides below, equal to and above the kernel; padding
    and dilation sometimes."""
    n = draw(ndims()) if ndim is None else ndim
    c = draw(st.integers(1, 3))
    sp = draw(spatial_shapes(n, min_size=2, max_size={1: 12, 2: 7, 3: 5}[n]))
    kind = draw(st.sampled_from(kinds))
    layers: list = []
    chans = c
    if draw(st.booleans()):
        chans = draw(st.integers(1, max_channels + 2))
        layers.append(Conv(chans, 1))
    pad = tuple(draw(st.integers(0, 1)) if draw(st.integers(0, 3)) == 0 else 0 for _ in range(n))
    dil = tuple(draw(st.integers(1, 2)) if draw(st.integers(0, 3)) == 0 else 1 for _ in range(n))
    ker = tuple(draw(st.integers(1, max(1, min(3, (d + 2 * p - 1) // dl + 1)))) for d, p, dl in zip(sp, pad, dil))
    stride = tuple(draw(st.integers(1, dl * (l - 1) + 2)) for l, dl in zip(ker, dil))
    k = draw(st.integers(1, max_channels))
    geo = dict(stride=stride, padding=pad, dilation=dil)
    if kind == "conv":
        layers.append(Conv(k, ker, **geo))
    elif kind == "depthwise":
        k = chans
        layers.append(Conv(chans, ker, groups=chans, **geo))
    elif kind == "tucker":
        sr = draw(st.none() | st.tuples(*[st.integers(1, l) for l in ker]))
        layers.append(TuckerConv(k, ker, ranks=(draw(st.integers(1, k)), draw(st.integers(1, chans))),
                                 spatial_ranks=sr, **geo))
    else:
        layers.append(CPConv(k, ker, rank=draw(st.integers(1, 5)), **geo))
    if draw(st.booleans()):
        layers.append(Conv(draw(st.integers(1, max_channels + 2)), 1))
    cur = LinearCNN((c, *sp), layers).output_shape
    if min(cur[1:]) >= 2 and draw(st.booleans()):
        layers.append(AvgPool(tuple(draw(st.integers(1, min(2, s))) for s in cur[1:])))
    if draw(st.booleans()):
        layers.append(Dense(draw(st.integers(1, 2)), bias=draw(st.booleans())))
    return LinearCNN((c, *sp), layers)
