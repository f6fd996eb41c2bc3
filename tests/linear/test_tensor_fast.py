"""The fast 3-D convolution route of whole_network_tensor, against torch's own conv3d and forward pass."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from redundancy import whole_network_tensor
from redundancy.linear._fastconv import FastConv3dMode, conv3d_by_2d
from redundancy.errors import RedundancyError
from redundancy.linear.tensor import _linear_head


@st.composite
def conv3d_cases(draw):
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(3))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(3))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(3))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(3))
    size = tuple(max(1, d * (k - 1) + 1 - 2 * p) + draw(st.integers(0, 4))
                 for k, d, p in zip(kernel, dilation, padding))
    batch = draw(st.sampled_from([None, 1, 2]))
    bias = draw(st.booleans())
    seed = draw(st.integers(0, 2**16))
    return groups, c_in, c_out, kernel, stride, dilation, padding, size, batch, bias, seed


@settings(deadline=None)
@given(conv3d_cases())
def test_conv3d_by_2d_equals_conv3d(case):
    groups, c_in, c_out, kernel, stride, dilation, padding, size, batch, bias, seed = case
    gen = torch.Generator().manual_seed(seed)
    shape = (c_in, *size) if batch is None else (batch, c_in, *size)
    x = torch.randn(shape, generator=gen, dtype=torch.float64)
    w = torch.randn((c_out, c_in // groups, *kernel), generator=gen, dtype=torch.float64)
    b = torch.randn(c_out, generator=gen, dtype=torch.float64) if bias else None
    ref = F.conv3d(x, w, b, stride, padding, dilation, groups)
    got = conv3d_by_2d(x, w, b, stride, padding, dilation, groups)
    assert got.shape == ref.shape
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)
    with FastConv3dMode():  # the mode routes the functional call (positional and keyword forms)
        via_mode = F.conv3d(x, w, bias=b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    torch.testing.assert_close(via_mode, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("padding", [1, "same", "valid", (0, 1, 2)])
def test_mode_matches_module_forward(padding_mode, padding):
    torch.manual_seed(0)
    conv = nn.Conv3d(2, 4, (3, 1, 3), padding=padding, padding_mode=padding_mode, bias=True).double()
    x = torch.randn(2, 2, 5, 6, 7, dtype=torch.float64)
    ref = conv(x)
    with FastConv3dMode():
        got = conv(x)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)


def test_mode_leaves_other_calls_to_torch():
    torch.manual_seed(1)
    x32 = torch.randn(1, 2, 4, 4, 4)
    w32 = torch.randn(3, 2, 2, 2, 2)
    with FastConv3dMode():
        y32 = F.conv3d(x32, w32)
        y2d = F.conv2d(x32[:, :, 0].double(), w32[:, :, 0].double())
    assert y32.dtype == torch.float32
    torch.testing.assert_close(y32, F.conv3d(x32, w32))
    torch.testing.assert_close(y2d, F.conv2d(x32[:, :, 0].double(), w32[:, :, 0].double()))
    with FastConv3dMode(), pytest.raises(RuntimeError):  # torch's own error for a too large kernel
        F.conv3d(x32.double(), torch.randn(1, 2, 5, 1, 1, dtype=torch.float64))


def _model3d(seed: int, stride: int, dilation: int, groups: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv3d(2, 4, 3, stride=stride, padding=1, dilation=dilation, groups=groups, padding_mode="zeros"),
        nn.Conv3d(4, 2, (2, 1, 2), padding=(1, 0, 0), padding_mode="circular"),
        nn.Flatten(), nn.LazyLinear(5)).double()


@settings(deadline=None, max_examples=6)
@given(st.integers(0, 1000), st.integers(1, 2), st.integers(1, 2), st.sampled_from([1, 2]),
       st.sampled_from(["vjp", "jvp"]))
def test_whole_network_tensor_fast_equals_slow_and_forward(seed, stride, dilation, groups, method):
    shape = (2, 5, 6, 6)
    net = _model3d(seed, stride, dilation, groups)
    net(torch.zeros(1, *shape, dtype=torch.float64))  # materialise the lazy layer
    fast = whole_network_tensor(net, shape, method=method)
    slow = whole_network_tensor(net, shape, method=method, fast=False)
    np.testing.assert_allclose(fast.W, slow.W, rtol=0, atol=1e-12 * max(1.0, np.abs(slow.W).max()))
    x = torch.randn(3, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ref = net(x).numpy()
    np.testing.assert_allclose(fast.apply(x.numpy()), ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())


def test_float64_model_is_not_modified():
    net = _model3d(3, 1, 1, 1)
    shape = (2, 5, 5, 5)
    net(torch.zeros(1, *shape, dtype=torch.float64))
    before = copy.deepcopy(net.state_dict())
    res = whole_network_tensor(net, shape)
    for name, mod in net.named_modules():
        assert not mod._forward_hooks and not mod._forward_pre_hooks, name
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert res.W.shape == (5, *shape)


def test_float32_model_keeps_its_dtype():
    torch.manual_seed(4)
    net = nn.Sequential(nn.Conv3d(1, 2, 2), nn.Flatten(), nn.Linear(2 * 27, 3))
    res = whole_network_tensor(net, (1, 4, 4, 4))
    assert next(net.parameters()).dtype == torch.float32
    assert res.W.dtype == np.float64


@pytest.mark.parametrize("bad", [1, "yes", None])
def test_fast_must_be_bool(bad):
    net = nn.Sequential(nn.Conv1d(1, 1, 2)).double()
    with pytest.raises(RedundancyError, match="fast"):
        whole_network_tensor(net, (1, 4), fast=bad)


def _relu_free_head_model(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(2, 3, 3, stride=2, padding=1), nn.AvgPool2d(2), nn.Flatten(),
                         nn.Linear(3 * 3 * 3, 7)).double()


@settings(deadline=None, max_examples=10)
@given(st.integers(0, 1000), st.sampled_from([None, 3]))
def test_linear_head_shortcut_equals_full_vjp_and_forward(seed, chunk_size):
    shape = (2, 11, 12)
    net = _relu_free_head_model(seed)
    assert _linear_head(net, (7,)) is not None  # the shortcut is taken
    fast = whole_network_tensor(net, shape, method="vjp", chunk_size=chunk_size)
    slow = whole_network_tensor(net, shape, method="vjp", fast=False)
    jvp = whole_network_tensor(net, shape, method="jvp", fast=False)
    np.testing.assert_allclose(fast.W, slow.W, rtol=0, atol=1e-12 * np.abs(slow.W).max())
    np.testing.assert_allclose(fast.W, jvp.W, rtol=0, atol=1e-12 * np.abs(slow.W).max())
    x = torch.randn(4, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ref = net(x).numpy()
    np.testing.assert_allclose(fast.apply(x.numpy()), ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())


def test_linear_head_shortcut_skipped_when_not_applicable():
    torch.manual_seed(5)
    # a hook that rescales the head's output: the shortcut would miss it
    net = _relu_free_head_model(5)
    net[-1].register_forward_hook(lambda mod, args, out: 2.0 * out)
    assert _linear_head(net, (7,)) is None
    res = whole_network_tensor(net, (2, 11, 12), method="vjp")
    x = torch.randn(2, 2, 11, 12, dtype=torch.float64)
    with torch.no_grad():
        np.testing.assert_allclose(res.apply(x.numpy()), net(x).numpy(), rtol=1e-10, atol=1e-12)
    # a Linear acting on the last axis of a 3-D tensor (prefix output not (1, in_features))
    seq = nn.Sequential(nn.Conv1d(2, 3, 2), nn.Linear(4, 2)).double()
    res = whole_network_tensor(seq, (2, 5), method="vjp")
    x = torch.randn(3, 2, 5, dtype=torch.float64)
    with torch.no_grad():
        np.testing.assert_allclose(res.apply(x.numpy()), seq(x).reshape(3, -1).numpy(), rtol=1e-10, atol=1e-12)


def test_linear_head_shortcut_with_local_linearisation():
    torch.manual_seed(6)
    net = nn.Sequential(nn.Conv1d(1, 2, 3), nn.Tanh(), nn.Flatten(), nn.Linear(2 * 6, 3)).double()
    x0 = torch.randn(1, 8, dtype=torch.float64)
    fast = whole_network_tensor(net, (1, 8), at=x0.numpy(), method="vjp")
    ref = torch.autograd.functional.jacobian(lambda x: net(x[None])[0], x0).numpy()
    np.testing.assert_allclose(fast.W, ref, rtol=1e-12, atol=1e-14)



def test_stateful_forward_never_touches_the_callers_model():
    """A forward that updates Python state: only the internal copy is changed."""
    class Counting(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 2, dtype=torch.float64)
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            return self.lin(x)

    m = Counting()
    whole_network_tensor(m, (3,))
    assert m.calls == 0


def test_inplace_buffer_update_is_a_clear_error():
    class Counting(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 2, dtype=torch.float64)
            self.register_buffer("calls", torch.zeros((), dtype=torch.float64))

        def forward(self, x):
            self.calls += 1
            return self.lin(x)

    m = Counting()
    with pytest.raises(RedundancyError, match="cannot be differentiated"):
        whole_network_tensor(m, (3,))
    assert float(m.calls) == 0.0
