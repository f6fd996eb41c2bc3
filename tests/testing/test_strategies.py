"""The public hypothesis strategies of ``redundancy.testing``: what they draw is what they promise."""

from __future__ import annotations

import math

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import redundancy.testing as T
from redundancy.linear.spec import LinearCNN
from redundancy.linear.statmodel import BasicCNN
from redundancy.testing.strategies import closed_form_specs

FAST = settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


def test_the_face_is_the_five_strategies():
    assert sorted(T.__all__) == ["basic_cnns", "conv_layers", "linear_cnn_specs", "ndims", "spatial_shapes"]
    for name in T.__all__:
        assert getattr(T, name) is getattr(__import__("redundancy.testing.strategies", fromlist=[name]), name)


@FAST
@given(T.ndims().flatmap(lambda n: st.tuples(st.just(n), T.spatial_shapes(n))))
def test_spatial_shapes_have_ndim_sizes_in_range(pair):
    n, shape = pair
    assert 1 <= n <= 3 and len(shape) == n
    assert all(3 <= s <= {1: 16, 2: 9, 3: 6}[n] for s in shape)


@FAST
@given(st.data())
def test_conv_layers_fit_their_input(data):
    shape = (2, 6, 5)
    layer = data.draw(T.conv_layers(shape))
    out = LinearCNN(shape, [layer]).output_shape
    assert len(out) == 3 and min(out[1:]) >= 1


@FAST
@given(T.linear_cnn_specs(max_layers=2))
def test_linear_cnn_specs_build_and_run(spec):
    assert isinstance(spec, LinearCNN)
    net = spec.build(seed=0)
    dtype = next(net.parameters()).dtype
    y = net(torch.zeros(1, *spec.input_shape, dtype=dtype))
    assert tuple(y.shape[1:]) == tuple(spec.output_shape) or y.numel() == math.prod(spec.output_shape)


@FAST
@given(T.basic_cnns(ndim=2))
def test_basic_cnns_are_valid(net):
    assert isinstance(net, BasicCNN)
    assert len(net.input_shape) == 2 and all(l <= d for l, d in zip(net.kernel, net.input_shape))


@FAST
@given(closed_form_specs(ndim=1))
def test_closed_form_specs_are_linear_cnns(spec):
    assert isinstance(spec, LinearCNN) and len(spec.input_shape) == 2
