"""Layer chains of the rank search: TT, CP3 and Tucker-2 of a conv, SVD of a ``Linear``, with exact counts.

For a conv ``W (C_out, C_in, *k)`` with ``S = prod(k)`` kernel positions and factors ``(A, G, B)`` of
:mod:`redundancy.rank_search.factors`:

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

Every function checks its arguments at entry: a layer that is not a ``Conv1d/2d/3d`` with
``groups=1`` or a ``Linear`` is an :class:`~redundancy.errors.UnsupportedLayerError`; ranks and
position counts are integers in ``[1, REDUNDANCY_MAX_NUMEL]``; factors must be finite and their
shapes must chain (the message names the factor and the shape it needs); ``method="svd"`` is for a
``Linear`` only. A kernel or chain that would overflow its dtype is refused, never returned.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

import redundancy._validation as _v
from redundancy._validation import MAX_NUMEL
from redundancy.errors import RedundancyError, UnsupportedLayerError
from redundancy.lowrank.chains import CompressedLayer
from redundancy.rank_search.factors import _brief


SEARCH_METHODS = ("tt", "cp", "tucker")
#: methods a chain can be built with: the three conv decompositions and ``"svd"`` (a Linear only)
CHAIN_METHODS = (*SEARCH_METHODS, "svd")
_CONV_CLS = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_METHOD = _v.Choice(*CHAIN_METHODS)
_COUNT = _v.Int(1, MAX_NUMEL)


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


def _check_layer(layer: nn.Module, method: str | None = None) -> nn.Module:
    """A chain-able layer (Conv1d/2d/3d with groups=1, or Linear) and a method that fits it."""
    reason = skip_reason(layer)
    if reason is not None:
        raise UnsupportedLayerError(f"layer: {reason}")
    if method == "svd" and not isinstance(layer, nn.Linear):
        raise RedundancyError(f"method='svd' is for a Linear layer; a {type(layer).__name__} needs one of "
                              f"{list(SEARCH_METHODS)}")
    return layer


def _as_factors(factors) -> tuple:
    """Two or three finite factors, all torch tensors (kept, differentiable) or all arrays (float64)."""
    if (not isinstance(factors, (tuple, list)) or len(factors) not in (2, 3)):
        raise RedundancyError(f"factors={_brief(factors)} must be a tuple of 2 factors (A, B) or 3 (A, G, B)")
    if any(torch.is_tensor(f) for f in factors):
        out = tuple(_v.Tensor(min_ndim=2)(f"factors[{i}]", f) for i, f in enumerate(factors))
        for i, f in enumerate(out):
            if not f.is_floating_point() or f.dtype != out[0].dtype or f.device != out[0].device:
                raise RedundancyError(f"factors[{i}] has dtype {f.dtype} on {f.device}; every factor must be a "
                                      f"floating tensor of one dtype on one device ({out[0].dtype}, {out[0].device})")
        return out
    return tuple(_v.check_array(f"factors[{i}]", f, min_ndim=2) for i, f in enumerate(factors))


def _check_shapes(factors: tuple, method: str, kernel_size) -> tuple[int, ...]:
    """Check that ``factors`` chain for ``method``; return the kernel shape they rebuild."""
    shapes = [tuple(f.shape) for f in factors]
    if method == "svd":
        if len(factors) != 2 or any(len(s) != 2 for s in shapes) or shapes[0][1] != shapes[1][0]:
            raise RedundancyError(f"factors of shapes {shapes} are not an SVD pair; method='svd' needs "
                                  "A (out, r) and B (r, in)")
        if kernel_size not in (None, ()):
            raise RedundancyError(f"kernel_size={_brief(kernel_size)} is not allowed with method='svd' "
                                  "(a matrix has no kernel positions); leave it None")
        return (shapes[0][0], shapes[1][1])
    if len(factors) != 3:
        raise RedundancyError(f"method={method!r} needs three factors (A, G, B); got {len(factors)}")
    (a, g, b) = shapes
    cp = method == "cp"
    want_g = 2 if cp else 3
    if len(a) != 2 or len(b) != 2 or len(g) != want_g:
        raise RedundancyError(f"factors of shapes {shapes} do not fit method={method!r}: it needs A (C_out, r), "
                              f"G {'(S, r)' if cp else '(r, S, r)'} and B (r, C_in)")
    s = g[0] if cp else g[1]
    ok = (g[1] == a[1] and b[0] == a[1]) if cp else (g[0] == a[1] and g[2] == b[0])
    if not ok:
        raise RedundancyError(f"factors of shapes {shapes} do not chain for method={method!r}: A's columns, "
                              f"G's rank modes and B's rows must agree")
    kernel_size = _v.check_shape("kernel_size", kernel_size, min_len=1, max_len=3)
    if math.prod(kernel_size) != s:
        raise RedundancyError(f"kernel_size={kernel_size} has {math.prod(kernel_size)} positions; G has {s}")
    _v.check_memory("the rebuilt kernel", a[0] * b[1] * s)
    return (a[0], b[1], *kernel_size)


def _kernel(factors, cp: bool, shape):
    """``Ŵ`` from checked factors (torch stays differentiable; numpy in float64)."""
    lib = torch if torch.is_tensor(factors[0]) else np
    if len(factors) == 2:
        return factors[0] @ factors[1]
    a, g, b = factors
    w = lib.einsum("ta,sa,ac->tcs", a, g, b) if cp else lib.einsum("ta,asb,bc->tcs", a, g, b)
    return w.reshape(*shape)


def _finite_kernel(w, what: str):
    ok = bool(torch.isfinite(w.detach()).all()) if torch.is_tensor(w) else bool(np.isfinite(w).all())
    if not ok:
        raise RedundancyError(f"{what} overflows its dtype (inf/NaN in the rebuilt kernel); rescale the factors")
    return w


@_v.validate_params({"method": _METHOD})
def factors_kernel(factors, method: str, kernel_size=None):
    """The kernel ``Ŵ`` (torch layout) rebuilt from torch or numpy factors (differentiable for torch).

    .. math::  \\hat W = A B \\;(\\text{svd}), \\qquad
               \\hat W[t,c,s] = \\sum_{a,b} A[t,a] G[a,s,b] B[b,c] \\;(\\text{tt, tucker}), \\qquad
               \\hat W[t,c,s] = \\sum_a A[t,a] G[s,a] B[a,c] \\;(\\text{cp})

    Parameters
    ----------
    factors : tuple
        ``(A, B)`` for ``"svd"``; ``(A, G, B)`` for ``"tt"``/``"tucker"`` (``G`` 3-way, its two rank
        modes may differ) or ``"cp"`` (``G (S, r)``). All torch tensors (one floating dtype and
        device; the result keeps the graph) or all array-likes (float64); finite.
    method : {"tt", "tucker", "cp", "svd"}
    kernel_size : tuple of int, optional
        The spatial shape (product ``S``) for three factors; None for ``"svd"``.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        ``(out, in)`` or ``(C_out, C_in, *kernel_size)``.

    Examples
    --------
    >>> a, g, b = np.ones((2, 1)), np.ones((1, 4, 1)), np.ones((1, 3))
    >>> factors_kernel((a, g, b), "tt", (2, 2)).shape
    (2, 3, 2, 2)
    """
    factors = _as_factors(factors)
    shape = _check_shapes(factors, method, kernel_size)
    return _finite_kernel(_kernel(factors, method == "cp", shape), "factors_kernel")


def _new(cls, *args, like, weight, bias=None, **kw):
    mod = cls(*args, bias=bias is not None, **kw).to(device=like.device, dtype=like.dtype)
    with torch.no_grad():
        mod.weight.copy_(torch.as_tensor(np.asarray(weight), dtype=like.dtype, device=like.device))
        if bias is not None:
            mod.bias.copy_(bias.detach())
    return mod


@_v.validate_params({"layer": _v.Module(finite=True), "method": _METHOD})
def build_chain(layer: nn.Module, factors, method: str) -> CompressedLayer:
    """The chain of plain layers realising ``factors`` (from :func:`~redundancy.rank_search.factors.init_factors`).

    ``layer`` is a finite ``Conv1d/2d/3d`` (groups 1) or ``Linear`` with a real floating weight; it
    is not changed (its bias is copied). ``factors`` are ``(A, B)`` of shapes ``(out, r)``,
    ``(r, in)`` for a ``Linear`` (any ``method``), or ``(A, G, B)`` for a conv: ``A (C_out, r)``,
    ``G (r, S, r)`` (``"tt"``/``"tucker"``, tied ranks) or ``G (S, r)`` (``"cp"``), ``B (r, C_in)``
    with ``S = prod(kernel_size)``.

    Examples
    --------
    >>> import torch
    >>> from redundancy.rank_search.factors import init_factors
    >>> conv = torch.nn.Conv2d(4, 6, 3, stride=2, padding=1).double()
    >>> chain = build_chain(conv, init_factors(conv.weight.detach().numpy(), "tt", 6), "tt")
    >>> x = torch.randn(1, 4, 7, 7, dtype=torch.float64)
    >>> bool(torch.allclose(chain(x), conv(x)))
    True
    """
    _check_layer(layer, method)
    w = layer.weight
    if not w.is_floating_point():
        raise RedundancyError(f"layer has a {w.dtype} weight; a chain needs a real floating weight")
    factors = tuple(np.asarray(f.detach().cpu().double() if torch.is_tensor(f) else f, dtype=np.float64)
                    for f in _as_factors(factors))
    if isinstance(layer, nn.Linear):
        _check_shapes(factors, "svd", None)
        a, b = factors
        if a.shape[0] != layer.out_features or b.shape[1] != layer.in_features:
            raise RedundancyError(f"factors of shapes {a.shape}, {b.shape} do not fit a Linear({layer.in_features}, "
                                  f"{layer.out_features}); they need ({layer.out_features}, r) and (r, {layer.in_features})")
        mods = OrderedDict(reduce=_new(nn.Linear, layer.in_features, a.shape[1], like=w, weight=b),
                           restore=_new(nn.Linear, a.shape[1], layer.out_features, like=w, weight=a,
                                        bias=layer.bias))
        return _finite_chain(CompressedLayer(mods, "svd", (a.shape[1],)))
    k = tuple(layer.kernel_size)
    _check_shapes(factors, method, k)
    a, g, b = factors
    r = a.shape[1]
    if a.shape[0] != layer.out_channels or b.shape[1] != layer.in_channels or (method != "cp" and g.shape[0] != g.shape[2]):
        raise RedundancyError(f"factors of shapes {[f.shape for f in factors]} do not fit the layer "
                              f"({layer.out_channels} out, {layer.in_channels} in, kernel {k}); they need "
                              f"A ({layer.out_channels}, r), B (r, {layer.in_channels})"
                              + ("" if method == "cp" else " and a tied-rank G (r, S, r)"))
    nd = w.ndim - 2
    cls, one = _CONV_CLS[nd], (1,) * nd
    geo = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation, padding_mode=layer.padding_mode)
    if method == "cp":
        core = _new(cls, r, r, k, like=w, weight=g.T.reshape(r, 1, *k), groups=r, **geo)
    else:
        core = _new(cls, r, r, k, like=w, weight=g.transpose(0, 2, 1).reshape(r, r, *k), **geo)
    mods = OrderedDict(reduce=_new(cls, layer.in_channels, r, 1, like=w, weight=b.reshape(r, -1, *one)),
                       core=core,
                       restore=_new(cls, r, layer.out_channels, 1, like=w, weight=a.reshape(*a.shape, *one),
                                    bias=layer.bias))
    return _finite_chain(CompressedLayer(mods, method, (r,)))


def _finite_chain(chain: CompressedLayer) -> CompressedLayer:
    if not all(bool(torch.isfinite(p.detach()).all()) for p in chain.parameters()):
        raise RedundancyError("the factors overflow the layer's dtype (inf in the chain's weights); rescale "
                              "them or use a wider dtype")
    return chain


def _chain_parts(chain: CompressedLayer):
    """``("linear", mods)`` or ``("conv", (reduce, core, restore), cp)`` after checking the structure."""
    mods = list(chain.children())
    if mods and all(isinstance(m, nn.Linear) for m in mods):
        for i in range(1, len(mods)):
            if mods[i].in_features != mods[i - 1].out_features:
                raise RedundancyError(f"chain: layer {i} takes {mods[i].in_features} features but layer {i - 1} "
                                      f"gives {mods[i - 1].out_features}")
        return "linear", mods, False
    bad = RedundancyError(f"chain={type(chain).__name__} with layers {[type(m).__name__ for m in mods]} is not a "
                          "rank-search chain: it needs Linear layers, or three convs of one dimension "
                          "(1×1 reduce, core, 1×1 restore; groups 1 or a depthwise core)")
    if len(mods) != 3 or not all(isinstance(m, _CONVS) for m in mods) or len({type(m) for m in mods}) != 1:
        raise bad
    reduce, core, restore = mods
    for m in (reduce, restore):
        no_pad = m.padding in ("valid", "same") if isinstance(m.padding, str) else all(v == 0 for v in m.padding)
        if m.groups != 1 or not no_pad or any(v != 1 for v in (*m.kernel_size, *m.stride)):
            raise bad
    if reduce.out_channels != core.in_channels or core.out_channels != restore.in_channels:
        raise bad
    cp = core.groups != 1
    if cp and not (core.groups == core.in_channels == core.out_channels):
        raise RedundancyError(f"chain: a core with groups={core.groups} is neither dense nor depthwise")
    return "conv", mods, cp


@_v.validate_params({"chain": _v.Instance(CompressedLayer)})
def chain_kernel(chain: CompressedLayer) -> torch.Tensor:
    """The kernel the chain computes, rebuilt from the chain's own weights (differentiable).

    Conv chains: ``Ŵ[t,c,s] = Σ A[t,a] G[a,s,b] B[b,c]`` (``G`` diagonal in ``a, b`` for a depthwise
    core); Linear chains: the product of the weights. ``chain`` is a
    :class:`~redundancy.lowrank.chains.CompressedLayer` with finite weights: the chains of
    :func:`build_chain` and the ungrouped chains of :mod:`redundancy.lowrank.chains`.

    Examples
    --------
    >>> import torch
    >>> from redundancy.rank_search.factors import init_factors
    >>> lin = torch.nn.Linear(5, 3).double()
    >>> chain = build_chain(lin, init_factors(lin.weight.detach().numpy(), "svd", 3), "svd")
    >>> bool(torch.allclose(chain_kernel(chain), lin.weight))
    True
    """
    _v.check_finite_module("chain", chain)
    kind, mods, cp = _chain_parts(chain)
    if kind == "linear":
        out = mods[0].weight
        for m in mods[1:]:
            out = m.weight @ out
        return _finite_kernel(out, "chain_kernel")
    reduce, core, restore = mods
    b = reduce.weight.flatten(1)                      # (r, C_in)
    a = restore.weight.flatten(1)                     # (C_out, r)
    k = tuple(core.kernel_size)
    if cp:
        g = core.weight.flatten(1).T                  # (S, r)
    else:
        g = core.weight.flatten(2).permute(0, 2, 1)   # (r_out, S, r_in) = G[a, s, b]
    return _finite_kernel(_kernel((a, g, b), cp, (a.shape[0], b.shape[1], *k)), "chain_kernel")


@_v.validate_params({"layer": _v.Module(), "rank": _COUNT, "method": _METHOD})
def chain_params(layer: nn.Module, rank: int, method: str) -> int:
    """Parameters of the chain of ``layer`` at ``rank`` (bias included), by the formulas above.

    ``r (in + out)`` (Linear, any method), ``r (C_in + C_out) + r² S`` (``"tt"``, ``"tucker"``),
    ``r (C_in + C_out) + r S`` (``"cp"``), plus the bias; ``rank`` in ``[1, REDUNDANCY_MAX_NUMEL]``.

    Examples
    --------
    >>> import torch
    >>> chain_params(torch.nn.Conv2d(4, 6, 3), 2, "tt")
    62
    """
    _check_layer(layer, method)
    bias = 0 if layer.bias is None else layer.bias.numel()
    if isinstance(layer, nn.Linear):
        return rank * (layer.in_features + layer.out_features) + bias
    s = math.prod(layer.kernel_size)
    core = rank * s if method == "cp" else rank * rank * s
    return rank * (layer.in_channels + layer.out_channels) + core + bias


@_v.validate_params({"layer": _v.Module(), "in_positions": _COUNT, "out_positions": _COUNT})
def dense_macs(layer: nn.Module, in_positions: int, out_positions: int) -> int:
    """MACs of the dense layer: ``P_out C_out C_in S`` (conv) or ``out in`` per row (Linear).

    Position counts are integers in ``[1, REDUNDANCY_MAX_NUMEL]`` (``in_positions`` is not used by
    the dense formula; it is checked so the call mirrors :func:`chain_macs`).

    Examples
    --------
    >>> import torch
    >>> dense_macs(torch.nn.Conv1d(2, 3, 3), 8, 6)
    108
    """
    _check_layer(layer)
    if isinstance(layer, nn.Linear):
        return out_positions * layer.out_features * layer.in_features
    return out_positions * layer.out_channels * layer.in_channels * math.prod(layer.kernel_size)


@_v.validate_params({"layer": _v.Module(), "rank": _COUNT, "method": _METHOD, "in_positions": _COUNT,
                     "out_positions": _COUNT})
def chain_macs(layer: nn.Module, rank: int, method: str, in_positions: int, out_positions: int) -> int:
    """MACs of the chain of ``layer`` at ``rank`` for one input with ``in_positions`` spatial positions
    (``P_in``) producing ``out_positions`` (``P_out``); for a Linear, positions = rows.

    ``P_in C_in r + P_out (r_core + r C_out)`` with ``r_core = r² S`` (``"tt"``, ``"tucker"``) or
    ``r S`` (``"cp"``); ``P_out r (in + out)`` for a Linear.

    Examples
    --------
    >>> import torch
    >>> chain_macs(torch.nn.Conv1d(2, 3, 3), 1, "cp", 8, 6)
    52
    """
    _check_layer(layer, method)
    if isinstance(layer, nn.Linear):
        return out_positions * rank * (layer.in_features + layer.out_features)
    s = math.prod(layer.kernel_size)
    core = rank * s if method == "cp" else rank * rank * s
    return in_positions * layer.in_channels * rank + out_positions * (core + rank * layer.out_channels)
