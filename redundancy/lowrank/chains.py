"""Chains of ordinary torch layers that realise a Tucker-2 or CP decomposition of one layer exactly.

* **Tucker-2** ``K = G ×_0 U_out ×_1 U_in``: 1×1 conv ``C → R_in`` (weight ``U_inᵀ``), spatial conv
  ``R_in → R_out`` with the core ``G`` and the layer's stride, padding, dilation and padding mode,
  1×1 conv ``R_out → K_out`` (weight ``U_out``) carrying the bias.
* **CP** ``K = Σ_r w_r a_r ∘ b_r ∘ s^{(1)}_r ∘ ...``: 1×1 conv ``C → R`` (``b_r``), depthwise conv
  ``R → R`` (groups ``R``, kernel ``w_r ∘_i s^{(i)}_r``), 1×1 conv ``R → K_out`` (``a_r``) with the bias.

The chains are exact because a 1×1 conv acts on each pixel alone: it commutes with padding
(zero, reflect, replicate or circular) and with the strided, dilated sampling of the spatial conv.

**Grouped convs** (``groups = g``): the kernel is block-diagonal, with block ``j`` the stored slice
``weight[j·K/g : (j+1)·K/g]`` of shape ``(K/g, C/g, *k)``. Each block gets its own decomposition
(same ranks for every block) and the three convs of the chain are grouped with ``g`` groups, so
block ``j`` of the chain only sees input group ``j`` — exactly like the original layer.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import numpy as np
import torch
from torch import nn

from redundancy.lowrank.decompose import CPDecomposition, TuckerDecomposition
from redundancy.errors import RedundancyError


_CONV_CLS = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


class CompressedLayer(nn.Sequential):
    """A chain of ordinary layers realising a decomposition of one layer (``reduce``, ``core``, ``restore``).

    Attributes
    ----------
    method : {"tucker", "cp"}
    ranks : tuple of int
        ``(R_out, R_in)`` for Tucker-2, ``(R,)`` for CP (per group for a grouped conv).
    groups : int
    """

    def __init__(self, modules: "OrderedDict[str, nn.Module]", method: str, ranks: tuple[int, ...], groups: int = 1):
        super().__init__(modules)
        self.method = method
        self.ranks = tuple(ranks)
        self.groups = int(groups)

    def extra_repr(self) -> str:
        return f"method={self.method!r}, ranks={self.ranks}" + (f", groups={self.groups}" if self.groups > 1 else "")


def _new(cls, *args, like: torch.Tensor, weight: np.ndarray, bias=None, **kw):
    mod = cls(*args, bias=bias is not None, **kw).to(device=like.device, dtype=like.dtype)
    with torch.no_grad():
        mod.weight.copy_(torch.as_tensor(weight, dtype=like.dtype, device=like.device))
        if bias is not None:
            mod.bias.copy_(bias.detach())
    return mod


def _per_group(layer: nn.Module, dec, kind) -> list:
    decs = list(dec) if isinstance(dec, Sequence) else [dec]
    g = getattr(layer, "groups", 1)
    if len(decs) != g or not all(isinstance(d, kind) for d in decs):
        raise RedundancyError(f"the layer has groups={g}; give {g} {kind.__name__} objects (one per group)")
    if len({d.ranks for d in decs}) != 1:
        raise RedundancyError("every group's decomposition must have the same ranks")
    return decs


def tucker2_layer(layer: nn.Module, dec) -> CompressedLayer:
    """The chain 1×1 → spatial (core) → 1×1 realising a Tucker-2 decomposition (modes (0, 1)) of ``layer``.

    ``layer`` is a ``Conv1d/2d/3d`` or a ``Linear`` (then three ``Linear`` layers); ``dec`` is a
    :class:`~redundancy.lowrank.decompose.TuckerDecomposition` of its kernel, or for a conv with
    ``groups = g`` a sequence of ``g`` of them, one per block.

    Examples
    --------
    >>> import torch
    >>> from redundancy.lowrank.decompose import decompose_layer
    >>> conv = torch.nn.Conv2d(6, 8, 3, stride=2, padding=1).double()
    >>> chain = tucker2_layer(conv, decompose_layer(conv, (8, 6)))
    >>> x = torch.randn(1, 6, 7, 7, dtype=torch.float64)
    >>> bool(torch.allclose(chain(x), conv(x)))
    True
    """
    decs = _per_group(layer, dec, TuckerDecomposition)
    if decs[0].modes != (0, 1):
        raise RedundancyError(f"a Tucker-2 chain needs a decomposition of modes (0, 1); got modes={decs[0].modes}")
    w = layer.weight
    g = len(decs)
    r_out, r_in = decs[0].ranks
    u_out = np.concatenate([d.factors[0] for d in decs])        # (K, R_out), block j for output group j
    u_in_t = np.concatenate([d.factors[1].T for d in decs])     # (g R_in, C/g)
    core = np.concatenate([d.core for d in decs])               # (g R_out, R_in, *k)
    if isinstance(layer, nn.Linear):
        mods = OrderedDict(
            reduce=_new(nn.Linear, layer.in_features, r_in, like=w, weight=u_in_t),
            core=_new(nn.Linear, r_in, r_out, like=w, weight=core),
            restore=_new(nn.Linear, r_out, layer.out_features, like=w, weight=u_out, bias=layer.bias))
        return CompressedLayer(mods, "tucker", (r_out, r_in))
    nd = w.ndim - 2
    cls = _CONV_CLS[nd]
    one = (1,) * nd
    mods = OrderedDict(
        reduce=_new(cls, layer.in_channels, g * r_in, 1, like=w, weight=u_in_t.reshape(g * r_in, -1, *one), groups=g),
        core=_new(cls, g * r_in, g * r_out, layer.kernel_size, like=w, weight=core, stride=layer.stride,
                  padding=layer.padding, dilation=layer.dilation, padding_mode=layer.padding_mode, groups=g),
        restore=_new(cls, g * r_out, layer.out_channels, 1, like=w, weight=u_out.reshape(*u_out.shape, *one),
                     bias=layer.bias, groups=g))
    return CompressedLayer(mods, "tucker", (r_out, r_in), groups=g)


def cp_layer(layer: nn.Module, dec) -> CompressedLayer:
    """The chain 1×1 → depthwise spatial → 1×1 realising a CP decomposition of ``layer``'s kernel.

    For a ``Linear`` layer the chain is ``Linear(in, R) → Linear(R, out)`` (weights folded in); for
    a conv with ``groups = g``, ``dec`` is a sequence of ``g`` decompositions, one per block.

    Examples
    --------
    >>> import torch
    >>> from redundancy.lowrank.decompose import decompose_layer
    >>> conv = torch.nn.Conv1d(3, 4, 1).double()       # a 1x1 kernel is a 4x3 matrix: CP rank <= 3
    >>> chain = cp_layer(conv, decompose_layer(conv, 3, method="cp"))
    >>> x = torch.randn(2, 3, 5, dtype=torch.float64)
    >>> bool(torch.allclose(chain(x), conv(x)))
    True
    """
    decs = _per_group(layer, dec, CPDecomposition)
    w = layer.weight
    g = len(decs)
    r = decs[0].rank
    a = np.concatenate([d.factors[0] * d.weights for d in decs])   # (K, R), weights folded in
    b_t = np.concatenate([d.factors[1].T for d in decs])           # (g R, C/g)
    if isinstance(layer, nn.Linear):
        mods = OrderedDict(
            reduce=_new(nn.Linear, layer.in_features, r, like=w, weight=b_t),
            restore=_new(nn.Linear, r, layer.out_features, like=w, weight=a, bias=layer.bias))
        return CompressedLayer(mods, "cp", (r,))
    nd = w.ndim - 2
    cls = _CONV_CLS[nd]
    one = (1,) * nd
    letters = "tuv"[:nd]
    depth = np.concatenate([np.einsum(f"{','.join(c + 'r' for c in letters)}->r{letters}", *d.factors[2:])
                            for d in decs])                         # (g R, *k)
    mods = OrderedDict(
        reduce=_new(cls, layer.in_channels, g * r, 1, like=w, weight=b_t.reshape(g * r, -1, *one), groups=g),
        core=_new(cls, g * r, g * r, layer.kernel_size, like=w, weight=depth[:, None], stride=layer.stride,
                  padding=layer.padding, dilation=layer.dilation, groups=g * r, padding_mode=layer.padding_mode),
        restore=_new(cls, g * r, layer.out_channels, 1, like=w, weight=a.reshape(*a.shape, *one), bias=layer.bias,
                     groups=g))
    return CompressedLayer(mods, "cp", (r,), groups=g)
