"""Layer chains of the rank search: TT, CP3 and Tucker-2 of a conv, SVD of a ``Linear``, with exact counts.

For a conv ``W (C_out, C_in, *k)`` with ``S = prod(k)`` kernel positions and factors ``(A, G, B)`` of
:mod:`redundancy.lowrank.tt_decompose`:

* **TT / Tucker-2** (tied rank ``r``): 1×1 conv ``C_in → r`` (weight ``B``), spatial conv
  ``r → r`` (weight ``G[a, s, b]`` as ``(r, r, *k)``, the layer's stride, padding, dilation and
  padding mode), 1×1 conv ``r → C_out`` (weight ``A``, the layer's bias). Reconstructed kernel
  ``Ŵ[t, c, s] = Σ_{a,b} A[t,a] G[a,s,b] B[b,c]``; parameters ``r C_in + r² S + r C_out`` (+ bias).
* **CP3**: 1×1 ``C_in → r``, depthwise spatial conv ``r → r`` (groups ``r``, filter ``G[:, a]``),
  1×1 ``r → C_out``; ``Ŵ[t,c,s] = Σ_a A[t,a] G[s,a] B[a,c]``; parameters ``r (C_in + S + C_out)``.
* **SVD** of a ``Linear`` ``W (out, in)``: ``Linear(in, r) → Linear(r, out)``, ``Ŵ = A B``,
  parameters ``r (in + out)`` (+ bias).

MACs of a conv chain for an input with ``P_in`` positions and an output with ``P_out`` positions:
``P_in C_in r + P_out r_core + P_out r C_out`` with ``r_core = r² S`` (TT/Tucker) or ``r S`` (CP3).
A chain is a :class:`~redundancy.lowrank.chains.CompressedLayer` of plain torch layers, so
``count_macs`` and ``parameter_count`` see it as they see any model.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from redundancy.errors import RedundancyError, UnsupportedLayerError
from redundancy.lowrank.chains import CompressedLayer

__all__ = ["SEARCH_METHODS", "skip_reason", "build_chain", "chain_kernel", "chain_params", "chain_macs",
           "dense_macs", "factors_kernel"]

SEARCH_METHODS = ("tt", "cp", "tucker")
_CONV_CLS = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def skip_reason(layer: nn.Module) -> str | None:
    """Why ``layer`` is not decomposed by the rank search (``None`` when it is)."""
    if isinstance(layer, _CONVS):
        if layer.groups != 1:
            return (f"grouped/depthwise conv (groups={layer.groups}): its kernel is block-diagonal and the "
                    "TT/CP/Tucker chains are defined for groups=1")
        return None
    if isinstance(layer, nn.Linear):
        return None
    return f"{type(layer).__name__} is not a Conv1d/2d/3d or Linear"


def factors_kernel(factors, method: str, kernel_size=None):
    """The kernel ``Ŵ`` (torch layout) rebuilt from torch or numpy factors (differentiable for torch).

    ``(A, B)`` -> ``A @ B``; ``(A, G, B)`` of TT/Tucker (``G`` 3-way) or CP3 (``G`` 2-way) ->
    ``(C_out, C_in, *kernel_size)``.
    """
    lib = torch if torch.is_tensor(factors[0]) else np
    if len(factors) == 2:
        return factors[0] @ factors[1]
    a, g, b = factors
    if g.ndim == 3:
        w = lib.einsum("ta,asb,bc->tcs", a, g, b)
    else:
        w = lib.einsum("ta,sa,ac->tcs", a, g, b)
    return w.reshape(a.shape[0], b.shape[1], *kernel_size)


def _new(cls, *args, like, weight, bias=None, **kw):
    mod = cls(*args, bias=bias is not None, **kw).to(device=like.device, dtype=like.dtype)
    with torch.no_grad():
        mod.weight.copy_(torch.as_tensor(np.asarray(weight), dtype=like.dtype, device=like.device))
        if bias is not None:
            mod.bias.copy_(bias.detach())
    return mod


def build_chain(layer: nn.Module, factors, method: str) -> CompressedLayer:
    """The chain of plain layers realising ``factors`` (from :func:`~redundancy.lowrank.tt_decompose.init_factors`).

    Examples
    --------
    >>> import torch
    >>> from redundancy.lowrank.tt_decompose import init_factors
    >>> conv = torch.nn.Conv2d(4, 6, 3, stride=2, padding=1).double()
    >>> chain = build_chain(conv, init_factors(conv.weight.detach().numpy(), "tt", 6), "tt")
    >>> x = torch.randn(1, 4, 7, 7, dtype=torch.float64)
    >>> bool(torch.allclose(chain(x), conv(x)))
    True
    """
    reason = skip_reason(layer)
    if reason is not None:
        raise UnsupportedLayerError(reason)
    w = layer.weight
    factors = [np.asarray(f.detach().cpu() if torch.is_tensor(f) else f, dtype=np.float64) for f in factors]
    if isinstance(layer, nn.Linear):
        if len(factors) != 2:
            raise RedundancyError("a Linear layer's chain needs the two SVD factors (A, B)")
        a, b = factors
        mods = OrderedDict(reduce=_new(nn.Linear, layer.in_features, a.shape[1], like=w, weight=b),
                           restore=_new(nn.Linear, a.shape[1], layer.out_features, like=w, weight=a,
                                        bias=layer.bias))
        return CompressedLayer(mods, "svd", (a.shape[1],))
    if len(factors) != 3:
        raise RedundancyError("a conv layer's chain needs three factors (A, G, B)")
    a, g, b = factors
    r = a.shape[1]
    nd = w.ndim - 2
    cls, one, k = _CONV_CLS[nd], (1,) * nd, tuple(layer.kernel_size)
    geo = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation, padding_mode=layer.padding_mode)
    if method == "cp":
        core = _new(cls, r, r, k, like=w, weight=g.T.reshape(r, 1, *k), groups=r, **geo)
    elif method in ("tt", "tucker"):
        core = _new(cls, r, r, k, like=w, weight=g.transpose(0, 2, 1).reshape(r, r, *k), **geo)
    else:
        raise RedundancyError(f"method={method!r} is not allowed; choose one of {list(SEARCH_METHODS)}")
    mods = OrderedDict(reduce=_new(cls, layer.in_channels, r, 1, like=w, weight=b.reshape(r, -1, *one)),
                       core=core,
                       restore=_new(cls, r, layer.out_channels, 1, like=w, weight=a.reshape(*a.shape, *one),
                                    bias=layer.bias))
    return CompressedLayer(mods, method, (r,))


def chain_kernel(chain: CompressedLayer) -> torch.Tensor:
    """The kernel the chain computes, rebuilt from the chain's own weights (differentiable).

    Conv chains: ``Ŵ[t,c,s] = Σ A[t,a] G[a,s,b] B[b,c]`` (``G`` diagonal in ``a, b`` for a depthwise
    core); Linear chains: ``A B``.
    """
    mods = list(chain.children())
    if isinstance(mods[0], nn.Linear):
        out = mods[0].weight
        for m in mods[1:]:
            out = m.weight @ out
        return out
    reduce, core, restore = mods
    b = reduce.weight.flatten(1)                      # (r, C_in)
    a = restore.weight.flatten(1)                     # (C_out, r)
    k = tuple(core.kernel_size)
    if core.groups == 1:
        g = core.weight.flatten(2).permute(0, 2, 1)   # (r_out, S, r_in) = G[a, s, b]
        return factors_kernel((a, g, b), "tt", k)
    if core.groups != core.in_channels:
        raise RedundancyError(f"a chain core with groups={core.groups} is neither dense nor depthwise")
    g = core.weight.flatten(1).T                      # (S, r)
    return factors_kernel((a, g, b), "cp", k)


def chain_params(layer: nn.Module, rank: int, method: str) -> int:
    """Parameters of the chain of ``layer`` at ``rank`` (bias included), by the formulas above."""
    bias = 0 if layer.bias is None else layer.bias.numel()
    if isinstance(layer, nn.Linear):
        return rank * (layer.in_features + layer.out_features) + bias
    s = math.prod(layer.kernel_size)
    core = rank * s if method == "cp" else rank * rank * s
    return rank * (layer.in_channels + layer.out_channels) + core + bias


def dense_macs(layer: nn.Module, in_positions: int, out_positions: int) -> int:
    """MACs of the dense layer: ``P_out C_out C_in S`` (conv) or ``out in`` per row (Linear)."""
    if isinstance(layer, nn.Linear):
        return out_positions * layer.out_features * layer.in_features
    return out_positions * layer.out_channels * layer.in_channels * math.prod(layer.kernel_size)


def chain_macs(layer: nn.Module, rank: int, method: str, in_positions: int, out_positions: int) -> int:
    """MACs of the chain of ``layer`` at ``rank`` for one input with ``in_positions`` spatial positions
    (``P_in``) producing ``out_positions`` (``P_out``); for a Linear, positions = rows."""
    if isinstance(layer, nn.Linear):
        return out_positions * rank * (layer.in_features + layer.out_features)
    s = math.prod(layer.kernel_size)
    core = rank * s if method == "cp" else rank * rank * s
    return in_positions * layer.in_channels * rank + out_positions * (core + rank * layer.out_channels)
