"""Convolutions whose kernel is stored in factorised (Tucker or CP) form.

These modules keep the factors as parameters and rebuild the kernel on every forward pass, so the
set of kernels they can reach is exactly the Tucker / CP variety; the parameter map
``factors -> kernel`` is multilinear. They are the building blocks of the statistical model's
compressed CNNs (:mod:`redundancy.linear.spec`). Layer *chains* of ordinary convs that realise a
decomposition of a trained layer (Tucker-2: 1x1 -> kxk -> 1x1) live in :mod:`redundancy.lowrank.decompose`.

Kernel layout follows torch: ``(out_channels, in_channels, *kernel_size)``.

* Tucker: ``K[o, c, t] = sum G[a, b, u] U_out[o, a] U_in[c, b] prod_i U_i[t_i, u_i]``
  (``U_i`` present only when ``spatial_ranks`` is given; otherwise the core is the full spatial
  kernel, which is Tucker-2).
* CP: ``K[o, c, t] = sum_r U_out[o, r] U_in[c, r] prod_i U_i[t_i, r]``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from redundancy._validation import check_int, check_ranks, check_tuple
from redundancy.counts import DenseChargedConv
from redundancy.errors import RedundancyError
import redundancy._validation as _v

__all__ = []

_LETTERS = "tuvwxyz"


@_v.validate_params({"ndim": _v.Int(1, 3)})
def conv_fn(ndim: int):
    """Return ``torch.nn.functional.conv{ndim}d``."""
    try:
        return {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[ndim]
    except KeyError:
        raise RedundancyError(f"ndim={ndim!r} is not allowed; ndim must be 1, 2 or 3") from None


class _FactorisedConv(DenseChargedConv):
    def __init__(self, in_channels, out_channels, kernel_size, ndim, stride, padding, dilation, bias):
        super().__init__()
        self.ndim = check_int("ndim", ndim, min_value=1, max_value=3)
        self.in_channels = check_int("in_channels", in_channels, min_value=1)
        self.out_channels = check_int("out_channels", out_channels, min_value=1)
        self.kernel_size = check_tuple("kernel_size", kernel_size, ndim)
        self.stride = check_tuple("stride", stride, ndim)
        self.padding = check_tuple("padding", padding, ndim, min_value=0)
        self.dilation = check_tuple("dilation", dilation, ndim)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def kernel(self) -> torch.Tensor:  # pragma: no cover - overridden
        raise RedundancyError("abstract")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv_fn(self.ndim)(x, self.kernel(), self.bias, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}")


class TuckerConvLayer(_FactorisedConv):
    """N-d convolution with a Tucker-factorised kernel.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or tuple
    ranks : tuple (R_out, R_in)
        Ranks of the output- and input-channel modes.
    spatial_ranks : tuple of int, optional
        Ranks of the spatial modes; ``None`` keeps the spatial modes uncompressed (Tucker-2).
    ndim : {1, 2, 3}
    stride, padding, dilation, bias : as in ``torch.nn.Conv2d``.

    Examples
    --------
    >>> import torch
    >>> conv = TuckerConvLayer(4, 8, 3, ranks=(2, 3), ndim=2)
    >>> conv(torch.randn(1, 4, 6, 6)).shape
    torch.Size([1, 8, 4, 4])
    """

    def __init__(self, in_channels, out_channels, kernel_size, ranks, spatial_ranks=None, *, ndim=2,
                 stride=1, padding=0, dilation=1, bias=False):
        super().__init__(in_channels, out_channels, kernel_size, ndim, stride, padding, dilation, bias)
        self.ranks = check_ranks("ranks", ranks, (self.out_channels, self.in_channels),
                                 labels=("the output channels", "the input channels"))
        if spatial_ranks is not None:
            spatial_ranks = check_ranks("spatial_ranks", spatial_ranks, self.kernel_size,
                                        labels=[f"spatial mode {i}" for i in range(ndim)])
        self.spatial_ranks = spatial_ranks
        core_sp = spatial_ranks if spatial_ranks is not None else self.kernel_size
        r_out, r_in = self.ranks
        scale = 1.0 / math.sqrt(r_in * math.prod(core_sp))
        self.core = nn.Parameter(torch.randn(r_out, r_in, *core_sp) * scale)
        self.u_out = nn.Parameter(torch.randn(self.out_channels, r_out) / math.sqrt(r_out))
        self.u_in = nn.Parameter(torch.randn(self.in_channels, r_in) / math.sqrt(self.in_channels))
        self.u_spatial = nn.ParameterList(
            [nn.Parameter(torch.randn(l, r) / math.sqrt(r)) for l, r in zip(self.kernel_size, spatial_ranks)]
            if spatial_ranks is not None else [])

    def kernel(self) -> torch.Tensor:
        sp = _LETTERS[: self.ndim]
        core = self.core
        if self.spatial_ranks is not None:
            for i, u in enumerate(self.u_spatial):
                core = torch.movedim(torch.tensordot(core, u, dims=([2 + i], [1])), -1, 2 + i)
        return torch.einsum(f"ab{sp},oa,cb->oc{sp}", core, self.u_out, self.u_in)


class CPConvLayer(_FactorisedConv):
    """N-d convolution with a rank-R CP kernel ``sum_r u_out[:, r] ∘ u_in[:, r] ∘ u_1[:, r] ∘ ...``.

    Examples
    --------
    >>> import torch
    >>> conv = CPConvLayer(3, 5, (3, 3), rank=2, ndim=2)
    >>> conv.kernel().shape
    torch.Size([5, 3, 3, 3])
    """

    def __init__(self, in_channels, out_channels, kernel_size, rank, *, ndim=2, stride=1, padding=0,
                 dilation=1, bias=False):
        super().__init__(in_channels, out_channels, kernel_size, ndim, stride, padding, dilation, bias)
        self.rank = check_int("rank", rank, min_value=1)
        r = self.rank
        self.u_out = nn.Parameter(torch.randn(self.out_channels, r) / math.sqrt(r))
        self.u_in = nn.Parameter(torch.randn(self.in_channels, r) / math.sqrt(self.in_channels))
        self.u_spatial = nn.ParameterList(
            [nn.Parameter(torch.randn(l, r) / math.sqrt(l)) for l in self.kernel_size])

    def kernel(self) -> torch.Tensor:
        sp = _LETTERS[: self.ndim]
        ops = [self.u_out, self.u_in, *self.u_spatial]
        subs = ",".join(["or", "cr"] + [f"{c}r" for c in sp])
        return torch.einsum(f"{subs}->oc{sp}", *ops)
