"""3-D convolution as a sum of 2-D convolutions, for batched Jacobians in float64 on a CPU.

:func:`~redundancy.linear.tensor.whole_network_tensor` differentiates the model with a ``vmap`` over
``torch.func.vjp``; every backward op then runs once on a batch of ``n_outputs`` cotangents.
Torch's float64 CPU ``conv3d`` backward (``slow_conv3d``, vol2col per sample) is slow on such
batches, about twice slower than the same arithmetic done by ``conv2d`` (measured in
``benchmarks/bench_whole_network_tensor.py``). A 3-D convolution is therefore rewritten as a sum
over the depth taps ``j < l_d`` of 2-D convolutions of depth slices,

.. math::  y[b, :, p] = \\sum_{j < l_d} \\operatorname{conv2d}\\bigl(x_{\\mathrm{pad}}[b, :, s_d p + d_d j],\\,
           w[:, :, j]\\bigr) + \\beta ,

with the depth slices of all ``(b, p)`` stacked in the batch of one ``conv2d`` per tap; stride,
dilation, groups and the height/width padding are passed through to ``conv2d``, the depth padding
is an explicit zero pad.

:class:`FastConv3dMode` is a ``TorchFunctionMode`` that routes float64 CPU ``conv3d`` calls (hence
``nn.Conv3d`` with zero padding; other padding modes pad first and call ``conv3d`` with zero padding)
to :func:`conv3d_by_2d` while it is active; any call it does not recognise goes to torch unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode



def _ints(value, n: int) -> tuple[int, ...] | None:
    """``value`` as an n-tuple of ints (an int or a length-1 sequence is repeated), else ``None``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * n
    if isinstance(value, (tuple, list, torch.Size)) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        if len(value) == n:
            return tuple(value)
        if len(value) == 1:
            return tuple(value) * n
    return None


def _is_cpu64(t) -> bool:
    return isinstance(t, torch.Tensor) and t.dtype == torch.float64 and t.device.type == "cpu" and t.layout == torch.strided


def conv3d_by_2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: tuple[int, int, int],
                 padding: tuple[int, int, int], dilation: tuple[int, int, int], groups: int) -> torch.Tensor:
    """``F.conv3d(x, weight, bias, stride, padding, dilation, groups)`` (zero padding) as 2-D convolutions.

    ``x`` has shape ``(B, C, D, H, W)`` or ``(C, D, H, W)``; ``padding`` is a 3-tuple of ints.
    """
    unbatched = x.dim() == 4
    if unbatched:
        x = x.unsqueeze(0)
    if padding[0]:
        x = F.pad(x, (0, 0, 0, 0, padding[0], padding[0]))
    batch, c_in, depth, height, width = x.shape
    taps, s_d, d_d = weight.shape[2], stride[0], dilation[0]
    out_d = (depth - d_d * (taps - 1) - 1) // s_d + 1
    x = x.transpose(1, 2).contiguous()  # (B, D, C, H, W): a depth slice of one example is then a view
    y = None
    for j in range(taps):
        xs = x[:, d_d * j: d_d * j + s_d * (out_d - 1) + 1: s_d].reshape(batch * out_d, c_in, height, width)
        yj = F.conv2d(xs, weight[:, :, j], None, stride[1:], padding[1:], dilation[1:], groups)
        y = yj if y is None else y + yj
    y = y.reshape(batch, out_d, *y.shape[1:]).transpose(1, 2)
    if bias is not None:
        y = y + bias.reshape(-1, 1, 1, 1)
    return y.squeeze(0) if unbatched else y


_CONV3D = {torch.conv3d, F.conv3d}
_CONV_ARGS = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")


def _bind(names, args, kwargs) -> dict | None:
    if len(args) > len(names) or any(k not in names for k in kwargs):
        return None
    call = dict(zip(names, args))
    for k, v in kwargs.items():
        if k in call:
            return None
        call[k] = v
    return call


def _conv3d_call(args, kwargs):
    call = _bind(_CONV_ARGS, args, kwargs)
    if call is None:
        return None
    x, w, b = call.get("input"), call.get("weight"), call.get("bias")
    if not (_is_cpu64(x) and _is_cpu64(w) and w.dim() == 5 and x.dim() in (4, 5)):
        return None
    if b is not None and not (_is_cpu64(b) and b.shape == w.shape[:1]):
        return None
    groups = call.get("groups", 1)
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        return None
    stride, dilation = _ints(call.get("stride", 1), 3), _ints(call.get("dilation", 1), 3)
    padding = call.get("padding", 0)
    if stride is None or dilation is None or min(stride) < 1 or min(dilation) < 1:
        return None
    if padding == "valid":
        padding = (0, 0, 0)
    elif padding == "same":
        if max(stride) > 1 or any(d * (k - 1) % 2 for k, d in zip(w.shape[2:], dilation)):
            return None  # asymmetric 'same' padding: left to torch
        padding = tuple(d * (k - 1) // 2 for k, d in zip(w.shape[2:], dilation))
    else:
        padding = _ints(padding, 3)
        if padding is None or min(padding) < 0:
            return None
    c_in = x.shape[-4]
    if c_in % groups or w.shape[0] % groups or w.shape[1] * groups != c_in:
        return None
    spans = [d * (k - 1) + 1 for k, d in zip(w.shape[2:], dilation)]
    if any(sz + 2 * p < sp for sz, p, sp in zip(x.shape[-3:], padding, spans)):
        return None  # torch raises its own error for a kernel larger than the padded input
    return x, w, b, stride, padding, dilation, groups


class FastConv3dMode(TorchFunctionMode):
    """While active, float64 CPU ``conv3d`` calls run as :func:`conv3d_by_2d`."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _CONV3D:
            call = _conv3d_call(args, kwargs)
            if call is not None:
                return conv3d_by_2d(*call)
        return func(*args, **kwargs)
