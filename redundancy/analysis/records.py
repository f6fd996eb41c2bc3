"""What the tracer records and the op tables it reads: layer, segment, block and graph records,
the linear pass-through ops, and the dense kernel of a conv/linear layer.

Shared by :mod:`.graph`, :mod:`.hooks`, :mod:`.blocks`, :mod:`.segdof` and :mod:`.report`; it
imports none of them.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field, fields

import torch
import torch.nn.functional as F
from torch import nn

from redundancy.counts import _attention_macs, _mac_layer_types  # noqa: F401 - graph imports it from here
import redundancy._validation as _v

__all__ = []  # the face is redundancy.analysis; the rest is importable from here


def _layer_like(name, value):
    _v.check_module(name, value)
    if not (hasattr(value, "kernel") and callable(value.kernel)) and not isinstance(
            getattr(value, "weight", None), torch.Tensor) and not isinstance(value, nn.MultiheadAttention):
        raise _v.RedundancyError(f"{name} is a {type(value).__name__}, which has no weight (kernel); "
                                 "give a conv or linear layer")
    return value


_PASS_MODULES = (nn.modules.batchnorm._BatchNorm, nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d,
                 nn.Dropout3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d,
                 nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.Flatten, nn.Unflatten, nn.ZeroPad2d,
                 nn.ChannelShuffle, nn.PixelShuffle, nn.PixelUnshuffle)
_PASS_FUNCS = {torch.flatten, torch.reshape, torch.transpose, torch.permute, torch.squeeze,
               torch.unsqueeze, F.avg_pool1d, F.avg_pool2d, F.avg_pool3d, F.adaptive_avg_pool1d,
               F.adaptive_avg_pool2d, F.adaptive_avg_pool3d, operator.getitem, torch.chunk,
               torch.split, operator.neg, F.dropout, torch.channel_shuffle}
_PASS_METHODS = {"view", "reshape", "flatten", "transpose", "permute", "contiguous", "squeeze",
                 "unsqueeze", "chunk", "split", "mean", "neg", "clone"}
_MERGE = {operator.add, operator.sub, torch.add, torch.sub, operator.iadd, operator.isub}
_SCALE = {operator.mul, operator.truediv, torch.mul}


@dataclass(frozen=True, kw_only=True, repr=False)
class _LayerIdentity:
    """What names a conv/linear layer, in the tracer's :class:`LayerInfo` and in the report's
    ``LayerRow`` alike (keyword-only; the fields come first, in this order)."""

    name: str
    type: str
    kernel_shape: tuple[int, ...]
    groups: int
    in_channels: int
    out_channels: int

    def _identity(self) -> dict:
        """These fields by name (to build a report row from a record)."""
        return {f.name: getattr(self, f.name) for f in fields(_LayerIdentity)}


@dataclass(frozen=True, kw_only=True)
class LayerInfo(_LayerIdentity):
    """One conv/linear module: shapes from the first call, MACs summed over calls."""

    kernel_size: tuple[int, ...]
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    macs: int
    calls: int


@dataclass(frozen=True)
class SegmentInfo:
    """A maximal linear segment: its layers in order, its input shape and a module computing it
    (``None``, with ``reason``, when its ops have no module form)."""

    name: str
    layers: tuple[str, ...]
    input_shape: tuple[int, ...]
    module: nn.Module | None = field(repr=False, compare=False)
    reason: str | None = None


@dataclass(frozen=True)
class BlockInfo:
    """A detected block: main-path layers, the layers off it (``shortcut``: shortcut/downsample
    convs, squeeze-excitation gates), K, R and its kind."""

    name: str
    kind: str
    main_path: tuple[str, ...]
    shortcut: tuple[str, ...]
    K: int
    R: int | None
    kr_convention: str


@dataclass(frozen=True)
class ModelGraph:
    """Result of :func:`trace_model`."""

    layers: tuple[LayerInfo, ...]
    segments: tuple[SegmentInfo, ...]
    blocks: tuple[BlockInfo, ...]
    method: str
    notes: tuple[str, ...] = ()


def _layer_types():
    return _mac_layer_types() + (nn.MultiheadAttention,)


def _is_attention(mod) -> bool:
    return isinstance(mod, nn.MultiheadAttention)


@_v.validate_params({"module": _v.Check(_layer_like)})
def layer_kernel(module: nn.Module) -> torch.Tensor:
    """The dense weight of a conv/linear layer in the layout ``(out, in/groups, *kernel)``
    (a transposed conv's ``(in, out/groups, *kernel)`` weight is rearranged to it)."""
    if hasattr(module, "kernel") and callable(module.kernel):
        return module.kernel()
    if isinstance(module, nn.MultiheadAttention):   # the stacked q, k, v projections (3E x E)
        if module.in_proj_weight is not None:
            return module.in_proj_weight
        return torch.cat([module.q_proj_weight, module.k_proj_weight, module.v_proj_weight], dim=0)
    w = module.weight
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        g = module.groups
        w = w.reshape(g, w.shape[0] // g, *w.shape[1:]).transpose(1, 2).reshape(
            g * w.shape[1], w.shape[0] // g, *w.shape[2:])
    return w


def _is_depthwise(li: LayerInfo) -> bool:
    return li.groups > 1 and li.groups == li.in_channels and li.out_channels % li.groups == 0


def _is_pointwise(li: LayerInfo) -> bool:
    return li.groups == 1 and (li.type == "Linear" or all(k == 1 for k in li.kernel_size))
