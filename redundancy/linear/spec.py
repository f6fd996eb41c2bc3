"""A small declarative description of linear CNNs.

A :class:`LinearCNN` is an input shape ``(C, *spatial)`` (1, 2 or 3 spatial modes) and a sequence
of layers (:class:`Conv`, :class:`TuckerConv`, :class:`CPConv`, :class:`AvgPool`,
:class:`Dense`). It validates the shapes, builds the torch module (no activations: the network is
linear) and knows its naive parameter count, i.e. the number of scalars a practitioner would
count. Degrees of freedom, simulations and reports build on it.

Examples
--------
>>> from redundancy.linear.spec import LinearCNN, TuckerConv, AvgPool, Dense
>>> spec = LinearCNN((3, 12, 12), [TuckerConv(16, 3, ranks=(4, 2)), AvgPool(2), Dense(1)])
>>> spec.output_shapes()
[(16, 10, 10), (16, 5, 5), (1,)]
>>> spec.naive_parameter_count()
542
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import KW_ONLY, asdict, dataclass, field, fields
from typing import Any, Union

import torch
from torch import nn

import redundancy.linear.layers as _layers
from redundancy._validation import check_bool, check_int, check_ranks, check_shape, check_tuple
from redundancy.errors import RankError, RedundancyError

__all__ = ["LinearCNN", "Conv", "TuckerConv", "CPConv", "AvgPool", "Dense"]


#: largest channel count / rank in a spec, and most parameters build() allocates
_MAX_SIZE = 2 ** 20
_MAX_PARAMS = 2 ** 28


def _nt(value, n, name, min_value=1):
    return check_tuple(name, value, n, min_value=min_value)


@dataclass(frozen=True)
class Conv:
    """Plain convolution with ``out_channels`` kernels of size ``kernel_size``."""

    out_channels: int
    kernel_size: Any
    stride: Any = 1
    padding: Any = 0
    dilation: Any = 1
    groups: int = 1
    bias: bool = False


@dataclass(frozen=True)
class _FactorisedConvSpec:
    """The fields a factorised convolution shares: the positional ``out_channels``, ``kernel_size``
    (a subclass's own rank fields follow them) and the keyword-only geometry."""

    out_channels: int
    kernel_size: Any
    _: KW_ONLY
    stride: Any = 1
    padding: Any = 0
    dilation: Any = 1
    bias: bool = False


@dataclass(frozen=True)
class TuckerConv(_FactorisedConvSpec):
    """Tucker-compressed convolution: ranks ``(R_out, R_in)`` of the channel modes, optional
    ``spatial_ranks`` (``None``: spatial modes uncompressed, i.e. Tucker-2)."""

    ranks: tuple[int, int]
    spatial_ranks: Any = None


@dataclass(frozen=True)
class CPConv(_FactorisedConvSpec):
    """CP-compressed convolution of rank ``rank``."""

    rank: int


@dataclass(frozen=True)
class AvgPool:
    """Average pooling; ``stride=None`` means non-overlapping (stride = kernel)."""

    kernel_size: Any
    stride: Any = None


@dataclass(frozen=True)
class Dense:
    """Fully connected layer (the input is flattened first)."""

    out_features: int
    bias: bool = False


Layer = Union[Conv, TuckerConv, CPConv, AvgPool, Dense]
_CONVS = (Conv, TuckerConv, CPConv)


def _conv_out(d, l, s, p, dil):
    return (d + 2 * p - dil * (l - 1) - 1) // s + 1


@dataclass(frozen=True)
class LinearCNN:
    """A linear CNN: input shape ``(C, *spatial)`` and a list of layers.

    Parameters
    ----------
    input_shape : tuple of int
        ``(C, d_1, ..., d_N)`` with N = 1, 2 or 3.
    layers : sequence of Conv, TuckerConv, CPConv, AvgPool, Dense
        Applied in order; a :class:`Dense` flattens its input and must come after all convs/pools.
    """

    input_shape: tuple[int, ...]
    layers: tuple = field(default_factory=tuple)

    def __post_init__(self):
        shape = check_shape("input_shape", self.input_shape, min_len=2, max_len=4)
        object.__setattr__(self, "input_shape", shape)
        if isinstance(self.layers, (str, bytes)) or not hasattr(self.layers, "__iter__"):
            raise RedundancyError(f"layers={self.layers!r} must be a sequence of layer specs")
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.layers:
            raise RedundancyError("layers=() is empty; give at least one layer")
        self._normalised()  # validates

    @property
    def ndim(self) -> int:
        """Number of spatial modes N."""
        return len(self.input_shape) - 1

    def _normalised(self) -> list[tuple[Layer, dict, tuple]]:
        """Each layer with its normalised arguments and output shape; raises on bad specs."""
        shape = self.input_shape
        out = []
        flat = False
        for i, lay in enumerate(self.layers):
            where = f"layers[{i}] ({type(lay).__name__})"
            if isinstance(lay, (*_CONVS, AvgPool)) and flat:
                what = "convolutions" if isinstance(lay, _CONVS) else "pooling"
                raise RedundancyError(f"{where} comes after a Dense layer; {what} must come first")
            if isinstance(lay, _CONVS):
                kw, shape = _normalised_conv(lay, shape, self.ndim, where)
            elif isinstance(lay, AvgPool):
                kw, shape = _normalised_pool(lay, shape, self.ndim, where)
            elif isinstance(lay, Dense):
                o = check_int(f"{where}.out_features", lay.out_features, min_value=1, max_value=_MAX_SIZE)
                kw = dict(in_features=math.prod(shape), out_features=o, bias=check_bool(f"{where}.bias", lay.bias))
                flat = True
                shape = (o,)
            else:
                raise RedundancyError(
                    f"{where} is not a layer spec; allowed: Conv, TuckerConv, CPConv, AvgPool, Dense")
            out.append((lay, kw, shape))
        return out

    def output_shapes(self) -> list[tuple[int, ...]]:
        """Output shape (without batch) after each layer."""
        return [s for _, _, s in self._normalised()]

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.output_shapes()[-1]

    def layer_names(self) -> list[str]:
        """Names of the layers in the built module (``conv1``, ``pool1``, ``fc1``...)."""
        counts: dict[str, int] = {}
        names = []
        for lay in self.layers:
            kind = {Conv: "conv", TuckerConv: "tucker", CPConv: "cp", AvgPool: "pool", Dense: "fc"}[type(lay)]
            counts[kind] = counts.get(kind, 0) + 1
            names.append(f"{kind}{counts[kind]}")
        return names

    def layer_parameter_counts(self) -> list[int]:
        """Naive parameter count of each layer (factors counted separately, biases included)."""
        out = []
        for lay, kw, shape in self._normalised():
            if isinstance(lay, Conv):
                n = kw["out_channels"] * kw["in_channels"] // kw["groups"] * math.prod(kw["kernel_size"])
            elif isinstance(lay, TuckerConv):
                r_out, r_in = kw["ranks"]
                core_sp = kw["spatial_ranks"] or kw["kernel_size"]
                n = r_out * r_in * math.prod(core_sp) + kw["out_channels"] * r_out + kw["in_channels"] * r_in
                if kw["spatial_ranks"]:
                    n += sum(l * r for l, r in zip(kw["kernel_size"], kw["spatial_ranks"]))
            elif isinstance(lay, CPConv):
                n = kw["rank"] * (kw["out_channels"] + kw["in_channels"] + sum(kw["kernel_size"]))
            elif isinstance(lay, AvgPool):
                n = 0
            else:
                n = kw["in_features"] * kw["out_features"]
            if kw.get("bias"):
                n += kw["out_channels"] if "out_channels" in kw else kw["out_features"]
            out.append(int(n))
        return out

    def naive_parameter_count(self) -> int:
        """Total naive parameter count: every scalar of every factor, kernel, weight and bias.

        Formula per layer: plain conv ``K·C/g·Πl_i``; Tucker ``R_out·R_in·Π r_i + K·R_out + C·R_in
        (+ Σ l_i r_i)``; CP ``R(K + C + Σ l_i)``; dense ``in·out``; plus biases.
        """
        return int(sum(self.layer_parameter_counts()))

    def build(self, seed: int | None = 0, dtype: torch.dtype = torch.float64) -> nn.Sequential:
        """Build the torch module (``nn.Sequential`` with named layers), seeded, in ``dtype``.

        Examples
        --------
        >>> from redundancy.linear.spec import LinearCNN, Conv, Dense
        >>> net = LinearCNN((1, 8), [Conv(2, 3, stride=2), Dense(1)]).build(seed=0)
        >>> [n for n, _ in net.named_children()]
        ['conv1', 'flatten', 'fc1']
        """
        n = self.ndim
        if seed is not None:
            seed = check_int("seed", seed, min_value=0, max_value=2 ** 63 - 1)
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise RedundancyError(f"dtype={dtype!r:.40} is not allowed; give a floating torch.dtype")
        total = sum(self.layer_parameter_counts())
        if total > _MAX_PARAMS:
            raise RedundancyError(f"the spec has {total:,} parameters; build() refuses more than {_MAX_PARAMS:,}")
        mods: "OrderedDict[str, nn.Module]" = OrderedDict()
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            flat = False
            for name, (lay, kw, _) in zip(self.layer_names(), self._normalised()):
                if isinstance(lay, Conv):
                    cls = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[n]
                    m = cls(**kw)
                elif isinstance(lay, TuckerConv):
                    m = _layers.TuckerConvLayer(ndim=n, **kw)
                elif isinstance(lay, CPConv):
                    m = _layers.CPConvLayer(ndim=n, **kw)
                elif isinstance(lay, AvgPool):
                    cls = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}[n]
                    m = cls(**kw)
                else:
                    if not flat:
                        mods["flatten"] = nn.Flatten()
                        flat = True
                    m = nn.Linear(**kw)
                mods[name] = m
        return nn.Sequential(mods).to(dtype)

    def to_dict(self) -> dict[str, Any]:
        return {"input_shape": list(self.input_shape),
                "layers": [{"type": type(l).__name__, **_fields_in_call_order(l)} for l in self.layers]}


def _fields_in_call_order(layer) -> dict[str, Any]:
    """``asdict(layer)`` with the keys in constructor order (keyword-only geometry last)."""
    d = asdict(layer)
    return {f.name: d[f.name] for f in sorted(fields(layer), key=lambda f: f.kw_only)}


def _normalised_conv(lay, shape: tuple, n: int, where: str) -> tuple[dict, tuple]:
    """A conv-like layer's normalised arguments and its output shape."""
    c = shape[0]
    k = check_int(f"{where}.out_channels", lay.out_channels, min_value=1, max_value=_MAX_SIZE)
    kw = dict(
        in_channels=c, out_channels=k,
        kernel_size=_nt(lay.kernel_size, n, f"{where}.kernel_size"),
        stride=_nt(lay.stride, n, f"{where}.stride"),
        padding=_nt(lay.padding, n, f"{where}.padding", 0),
        dilation=_nt(lay.dilation, n, f"{where}.dilation"),
        bias=check_bool(f"{where}.bias", lay.bias))
    if isinstance(lay, Conv):
        g = check_int(f"{where}.groups", lay.groups, min_value=1)
        if c % g or k % g:
            raise RedundancyError(
                f"{where}.groups={g} must divide in_channels={c} and out_channels={k}")
        kw["groups"] = g
    elif isinstance(lay, TuckerConv):
        if not isinstance(lay.ranks, (tuple, list)) or len(lay.ranks) != 2:
            raise RankError(f"{where}.ranks={lay.ranks!r:.60} must be a pair (R_out, R_in)")
        # checked here, not first in build(): each rank an integer in [1, mode size]
        kw["ranks"] = check_ranks(f"{where}.ranks", tuple(lay.ranks), (k, c),
                                  labels=[f"out_channels ({k})", f"in_channels ({c})"])
        kw["spatial_ranks"] = None if lay.spatial_ranks is None else check_ranks(
            f"{where}.spatial_ranks", lay.spatial_ranks, kw["kernel_size"],
            labels=[f"kernel mode {j} (size {l})" for j, l in enumerate(kw["kernel_size"])])
    else:
        kw["rank"] = check_int(f"{where}.rank", lay.rank, min_value=1, max_value=_MAX_SIZE)
    sp = tuple(_conv_out(d, l, s, p, dl) for d, l, s, p, dl in zip(
        shape[1:], kw["kernel_size"], kw["stride"], kw["padding"], kw["dilation"]))
    if min(sp) < 1:
        raise RedundancyError(
            f"{where}: kernel_size={kw['kernel_size']} (dilation {kw['dilation']}) is larger "
            f"than its padded input {tuple(d + 2 * p for d, p in zip(shape[1:], kw['padding']))}")
    return kw, (k, *sp)


def _normalised_pool(lay, shape: tuple, n: int, where: str) -> tuple[dict, tuple]:
    """An average pool's normalised arguments and its output shape."""
    q = _nt(lay.kernel_size, n, f"{where}.kernel_size")
    st = q if lay.stride is None else _nt(lay.stride, n, f"{where}.stride")
    sp = tuple((d - qq) // s + 1 for d, qq, s in zip(shape[1:], q, st))
    if min(sp) < 1:
        raise RedundancyError(f"{where}: kernel_size={q} is larger than its input {shape[1:]}")
    return dict(kernel_size=q, stride=st), (shape[0], *sp)
