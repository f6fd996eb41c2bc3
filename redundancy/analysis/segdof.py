"""Degrees of freedom of one maximal linear segment: closed form when the chain has one, numerical
(Jacobian rank) when small, otherwise skipped with a reason.

The numerical route calls :func:`redundancy.linear.dof.degrees_of_freedom` on a float64, eval-mode copy
of the segment with its offsets removed (so only ``theta -> W`` counts) at a reduced spatial size ``min(H, rf + s)`` per spatial axis (``rf`` the chain's
receptive field, ``s`` its total stride). The dof of ``theta -> W`` does not change: once the input
covers the receptive field, some output position sees every tap of the composite kernel, so the map
from kernels to operators is the same up to an injective restriction. Pooling to a fixed output
size (adaptive pooling) or a flatten pins the spatial size; then the segment is taken as it is.

Closed forms (generic weights), matched on the traced chain of real torch layers with only
BatchNorm (eval), identity and dropout between them, in 1-D, 2-D and 3-D (``route`` in brackets):

* one layer [``closed:one_layer``]: ``dof = numel(kernel)`` over the taps that reach an output
  (the map from a kernel to its convolution operator is linear and injective);
* pointwise chain (1x1 convs, ``nn.Linear``; an SVD pair of Linear layers) of widths
  ``n_0 -> ... -> n_m`` [``closed:pointwise``]: ``r(n_0 + n_m - r)``, ``r = min(n_i)``;
* Tucker-2 chain 1x1 -> kxk -> 1x1 [``closed:tucker2``] and tensor-train chains (full convs whose
  kernels act on disjoint spatial axes, e.g. 1x1 -> kx1 -> 1xk -> 1x1) [``closed:tensor_train``]:
  :func:`~redundancy.linear.dof_closed.tucker_dof` / :func:`~redundancy.linear.dof_closed.tt_dof`
  over the modes ``(C, T_1, ..., T_s, K)`` with bond ranks the narrowest widths between them;
* non-overlapping patch conv (stride = kernel, ConvNeXt's downsampling) then depthwise
  [``closed:patchify_depthwise``]: ``K(T_d + C T_s - 1)`` (one rank-one matrix per channel);
* CP chain 1x1 -> depthwise -> 1x1 [``closed:cp``]: ``R(C + T + K - 2)`` under Kruskal's condition
  with generic factors; depthwise then pointwise [``closed:depthwise_separable``]:
  ``C(T - 1) + w(K + C - w)``; pointwise then depthwise [``closed:cp_no_post``]: ``R(C + T - 1)``.

Every other chain (two spatial kernels on one axis, grouped convs, flatten into a Linear...) takes
the numerical route, within the size limits of :mod:`redundancy.linear.dof_numerical`; above them
the segment is skipped with the reason, and the report's coverage says so.
"""

from __future__ import annotations

import copy
import math

from torch import nn

from redundancy.analysis.records import LayerInfo, SegmentInfo
from redundancy.errors import RedundancyError
from redundancy.linear.dof_closed import (cp_closed_form_applies, cp_dof, depthwise_separable_dof,
                                          matrix_rank_dof, tt_dof, tt_effective_ranks, tucker_dof,
                                          tucker_effective_ranks)
import redundancy._validation as _v

__all__ = []  # the face is redundancy.analysis; the rest is importable from here

_SPATIAL_OK = (nn.modules.batchnorm._BatchNorm, nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d,
               nn.Dropout3d)


@_v.result
class SegmentDof(_v.Result):
    """dof and naive count of one segment, with the method, the reason it was skipped and the route."""

    dof: int | None
    naive: int
    method: str | None
    reason: str | None
    route: str = "skipped"


@_v.validate_params({"seg": _v.Instance(SegmentInfo, "SegmentInfo"), "modules": _v.Instance(dict)})
def segment_naive(seg: SegmentInfo, modules: dict[str, nn.Module]) -> int:
    """Parameters of the segment's layers that enter ``W``: kernels and their factors (no biases)."""
    return _segment_naive(seg, modules)


def _segment_naive(seg, modules) -> int:
    total, seen = 0, set()
    for name in seg.layers:
        for pname, p in modules[name].named_parameters():
            if pname.rsplit(".", 1)[-1] == "bias" or id(p) in seen:
                continue
            seen.add(id(p))
            total += p.numel()
    return int(total)


def _reduced_shape(seq: nn.Sequential, shape: tuple[int, ...]) -> tuple[int, ...]:
    nd = len(shape) - 1
    if nd < 1:
        return shape
    rf, jump = [1] * nd, [1] * nd
    for m in seq:
        if isinstance(m, _SPATIAL_OK):
            continue
        k = getattr(m, "kernel_size", None)
        if k is None or isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)):
            return shape
        k = (k,) * nd if isinstance(k, int) else tuple(k)
        s = getattr(m, "stride", 1) or k
        s = (s,) * nd if isinstance(s, int) else tuple(s)
        d = getattr(m, "dilation", 1)
        d = (d,) * nd if isinstance(d, int) else tuple(d)
        if len(k) != nd:
            return shape
        for i in range(nd):
            rf[i] += (k[i] - 1) * d[i] * jump[i]
            jump[i] *= s[i]
    return (shape[0], *[min(h, r + j) for h, r, j in zip(shape[1:], rf, jump)])


def _observable_taps(li: LayerInfo, mod: nn.Module) -> list[int]:
    """Per spatial axis, the kernel taps that touch the input at some output position (a tap
    that only ever meets padding does not act on the input, so it adds no freedom to W)."""
    pad = getattr(mod, "padding", 0)
    if (not isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) or isinstance(pad, str)
            or not li.kernel_size or len(li.input_shape) != len(li.kernel_size) + 1):
        return list(li.kernel_size)
    out = []
    for ax, k in enumerate(li.kernel_size):
        h_in, h_out = li.input_shape[ax + 1], li.output_shape[ax + 1]
        s, d, p = mod.stride[ax], mod.dilation[ax], pad[ax]
        out.append(sum(any(0 <= q * s - p + i * d < h_in for q in range(h_out)) for i in range(k)))
    return out


_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _kind(li: LayerInfo, mod: nn.Module) -> str | None:
    """'P' pointwise (1x1 conv / Linear, groups 1), 'S' spatial full conv, 'D' depthwise
    (groups = in = out), 'G' other grouped conv, None for layers without a closed form."""
    if isinstance(mod, nn.Linear):
        return "P"
    if not isinstance(mod, _CONVS) or hasattr(mod, "kernel"):
        return None
    if li.groups == 1:
        return "P" if all(k == 1 for k in li.kernel_size) else "S"
    if li.groups == li.in_channels == li.out_channels:
        return "D"
    return "G"


def _plain_pointwise(mod: nn.Module) -> bool:
    if isinstance(mod, nn.Linear):
        return True
    pad = mod.padding
    return (not isinstance(pad, str) and all(p == 0 for p in pad) and all(s == 1 for s in mod.stride))


def _patchify(mod: nn.Module) -> bool:
    """A conv whose windows do not overlap and need no padding (stride = kernel, dilation 1)."""
    pad = mod.padding
    return (not isinstance(pad, str) and all(p == 0 for p in pad) and tuple(mod.stride) == tuple(mod.kernel_size)
            and all(d == 1 for d in mod.dilation))


def _axes(li: LayerInfo) -> set[int]:
    return {i for i, k in enumerate(li.kernel_size) if k > 1}


def _chain_closed_form(seg: SegmentInfo, layers: dict[str, LayerInfo], modules) -> tuple[int, str, str] | None:
    """Closed form of a chain of layers joined by BatchNorm/identity/dropout: ``(dof, route, text)``.

    The composite kernel of ``L_m ∘ ... ∘ L_1`` (widths ``a_0 = C, a_1, ..., a_m = K``) is
    ``W[a_m, a_0, t_1..t_m] = Σ L_m[a_m, a_(m-1), t_m] ... L_1[a_1, a_0, t_1]``, a tensor train over
    the modes of size > 1. Full convs whose kernels act on pairwise disjoint spatial axes keep their
    taps apart, so ``W`` ranges over the tensor-train variety of shape ``(C, T_1, ..., T_s, K)``
    (``T_j`` the observable taps of spatial layer j) with bond ranks the narrowest width between
    consecutive spatial layers: :func:`~redundancy.linear.dof_closed.tt_dof` (Tucker-2 for one
    spatial layer, ``r(C + K - r)`` for pointwise chains). One depthwise layer (R channels, T taps)
    between pointwise chains is a CP chain: ``W = Σ_r b_r ∘ d_r ∘ a_r`` with CP dof
    ``R(C + T + K - 2)`` where Kruskal's condition holds and the factors are generic
    (:func:`~redundancy.linear.dof_closed.cp_dof`); without a pre chain it is depthwise separable
    ``C(T - 1) + w(K + C - w)``; without a post chain ``R(C + T - 1)``.
    """

    chain = _chain(seg, layers, modules)
    if chain is None:
        return None
    infos, mods, kinds = chain
    widths = [infos[0].in_channels] + [li.out_channels for li in infos]
    if kinds == ["S", "D"] and _patchify(mods[0]):
        return _patchify_form(infos, mods, widths[0])
    if "D" in kinds:
        return _depthwise_form(infos, mods, kinds, widths)
    return _tt_form(infos, mods, kinds, widths)


def _chain(seg: SegmentInfo, layers, modules):
    """``(infos, mods, kinds)`` of a chain a closed form may apply to, or ``None``."""
    if seg.module is None:
        return None
    layer_ids = {id(modules[n]) for n in seg.layers}
    if not all(id(m) in layer_ids or isinstance(m, _SPATIAL_OK) for m in seg.module):
        return None
    infos = [layers[n] for n in seg.layers]
    mods = [modules[n] for n in seg.layers]
    kinds = [_kind(li, m) for li, m in zip(infos, mods)]
    if any(k in (None, "G") for k in kinds):
        return None
    if len(infos) == 1 and kinds[0] != "P":
        return None  # single layers: the one-layer rule
    spatial = [i for i, k in enumerate(kinds) if k in ("S", "D")]
    if any(kinds[i] == "P" and not _plain_pointwise(mods[i]) for i in range(len(infos))) and spatial:
        return None
    return infos, mods, kinds


def _patchify_form(infos, mods, C):
    """Non-overlapping patches (stride = kernel, ConvNeXt's downsampling) then depthwise: the
    composite taps a*s + b are distinct, W[k] = d_k (x) S[k] is a rank-one T_d x (C T_s) matrix."""
    Kc = infos[1].out_channels
    Td = math.prod(_observable_taps(infos[1], mods[1]))
    Ts = math.prod(infos[0].kernel_size)
    return (Kc * (Td + C * Ts - 1), "closed:patchify_depthwise",
            f"K(T_d + C T_s - 1), K = {Kc}, C = {C}, T_s = {Ts}, T_d = {Td}")


def _depthwise_form(infos, mods, kinds, widths):
    """One depthwise layer between pointwise chains: CP, depthwise-separable or CP without post."""
    if kinds.count("D") != 1 or "S" in kinds:
        return None
    C, K = widths[0], widths[-1]
    d = kinds.index("D")
    R = infos[d].out_channels
    T = math.prod(_observable_taps(infos[d], mods[d]))
    w_in, w_out = min(widths[:d + 1]), min(widths[d + 1:])
    if d == len(infos) - 1:   # pointwise chain, then depthwise: W[r] = d_r ∘ a_r
        if w_in < min(R, C):
            return None
        return R * (C + T - 1), "closed:cp_no_post", f"R(C + T - 1), R = {R}, C = {C}, T = {T}"
    if d == 0:
        w = min(w_out, C, K)
        return (depthwise_separable_dof(C, T, K, w), "closed:depthwise_separable",
                f"C(T - 1) + w(K + C - w), C = {C}, T = {T}, K = {K}, w = {w}")
    if w_in < min(R, C) or w_out < min(R, K) or not cp_closed_form_applies((C, T, K), R):
        return None
    return cp_dof((C, T, K), R), "closed:cp", f"CP rank {R} in {(C, T, K)}: R(sum n_i - M + 1)"


def _tt_separable(infos, mods, spatial) -> bool:
    """The spatial layers act on pairwise disjoint axes, unstrided after them, every tap observed."""
    seen: set[int] = set()
    for i in spatial:
        ax = _axes(infos[i])
        if ax & seen:
            return False   # two spatial kernels on one axis: the composite kernel is a convolution
        seen |= ax
    if len(spatial) > 1:
        for i in spatial:
            ax = _axes(infos[i])
            if any(mods[q].stride[a] != 1 for q in range(i + 1, len(mods)) if not isinstance(mods[q], nn.Linear)
                   for a in ax):
                return False
            if math.prod(_observable_taps(infos[i], mods[i])) != math.prod(infos[i].kernel_size):
                return False
    return True


def _tt_form(infos, mods, kinds, widths):
    """Tensor train over ``(C, T_1, ..., T_s, K)`` (pointwise and Tucker-2 as special cases)."""
    C, K = widths[0], widths[-1]
    spatial = [i for i, k in enumerate(kinds) if k in ("S", "D")]
    if not _tt_separable(infos, mods, spatial):
        return None
    taps = [math.prod(_observable_taps(infos[i], mods[i])) for i in spatial]
    bounds = [-1] + spatial + [len(infos)]
    bonds = [min(widths[bounds[j] + 1:bounds[j + 1] + 1]) for j in range(len(bounds) - 1)]
    shape = (C, *taps, K)
    if len(spatial) == 0:
        r = min(bonds[0], C, K)
        return matrix_rank_dof(C, K, r), "closed:pointwise", f"product of matrices, rank {r}: r(C + K - r)"
    if len(spatial) == 1:
        ranks = (bonds[0], taps[0], bonds[1])
        return (tucker_dof(shape, ranks), "closed:tucker2",
                f"Tucker-2 {shape} ranks {tucker_effective_ranks(shape, ranks)}: prod r + sum(n r - r^2)")
    return tt_dof(shape, bonds), "closed:tensor_train", f"TT{shape} ranks {tt_effective_ranks(shape, bonds)}"


def _closed_form(seg: SegmentInfo, layers: dict[str, LayerInfo], modules) -> tuple[int, str, str] | None:
    """``(dof, route, text)`` of the first closed form that matches the segment, or None."""
    infos = [layers[n] for n in seg.layers]
    if any(hasattr(modules[n], "kernel") for n in seg.layers):
        return None
    if len(infos) == 1:
        li, mod = infos[0], modules[seg.layers[0]]
        n = math.prod(li.kernel_shape[:2]) * math.prod(_observable_taps(li, mod))
        return int(n), "closed:one_layer", "one layer, dof = kernel taps that reach an output"
    return _chain_closed_form(seg, layers, modules)


def _linear_part(seq: nn.Sequential) -> nn.Sequential:
    """A float64, eval-mode copy of ``seq`` with every offset removed (conv/linear biases dropped,
    BatchNorm shift and running mean zeroed as constants), so ``b == 0`` and the Jacobian rank of
    ``theta -> (W, b)`` is that of ``theta -> W``."""
    sub = copy.deepcopy(seq).double().eval()
    for m in sub.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            if m.running_mean is not None:
                m.running_mean.zero_()
            if m.bias is not None:
                m.bias = None
        elif isinstance(getattr(m, "bias", None), nn.Parameter):
            m.bias = None
    return sub


@_v.validate_params({"seg": _v.Instance(SegmentInfo, "SegmentInfo"), "layers": _v.Instance(dict), "modules": _v.Instance(dict), "max_params": _v.Int(0, 10 ** 9), "route": _v.Choice("auto", "closed", "numerical", "none"), "seed": _v.Seed(allow_generator=True), "progress": _v.Bool()})
def segment_dof(seg: SegmentInfo, layers: dict[str, LayerInfo], modules: dict[str, nn.Module], *,
                max_params: int, route: str = "auto", seed=0, progress: bool = False) -> SegmentDof:
    """dof of ``theta -> W`` for one segment; see the module docstring for the routes.

    ``route``: ``"auto"`` (closed form when the chain has one, else numerical up to ``max_params``
    kernel parameters and :data:`~redundancy.linear.dof_numerical.NUMERICAL_MAX_RANK`),
    ``"numerical"`` (numerical within those limits, closed form above), ``"none"`` (skip).
    The result's ``route`` is ``"closed:<structure>"``, ``"numerical"`` or ``"skipped"``."""
    return _segment_dof(seg, layers, modules, max_params=max_params, route=route, seed=seed, progress=progress)


def _segment_dof(seg, layers, modules, *, max_params, route="auto", seed=0, progress=False) -> SegmentDof:
    """The kernel of :func:`segment_dof` (arguments already checked)."""
    naive = _segment_naive(seg, modules)
    if any(layers[n].calls == 0 or isinstance(modules[n], nn.MultiheadAttention) for n in seg.layers):
        return SegmentDof(dof=None, naive=naive, method=None, reason=seg.reason, route="skipped")
    if route == "none":
        return SegmentDof(dof=None, naive=naive, method=None, reason="segment dof not requested (dof='none')",
                          route="skipped")
    reason = seg.reason
    cf = _closed_form(seg, layers, modules)
    if route == "auto" and cf is not None:
        return SegmentDof(dof=cf[0], naive=naive, method="closed form: " + cf[2], reason=None, route=cf[1])
    if seg.module is not None and naive <= max_params:
        from redundancy.linear.dof import degrees_of_freedom

        shape = _reduced_shape(seg.module, seg.input_shape)
        try:
            res = degrees_of_freedom(_linear_part(seg.module), shape, method="numerical", seed=seed,
                                     progress=progress)
            return SegmentDof(dof=int(res.dof), naive=naive, method=f"numerical Jacobian rank at input {shape}",
                              reason=None, route="numerical")
        except RedundancyError as exc:  # size refusal or a model the numerical route cannot run
            reason = f"numerical dof refused: {str(exc)[:200]}"
        except (RuntimeError, ValueError, TypeError) as exc:  # report, never crash the whole report
            reason = f"numerical dof failed: {type(exc).__name__}: {str(exc)[:120]}"
    elif seg.module is not None:
        reason = f"segment has {naive} kernel parameters, above dof_max_params={max_params}"
    if cf is not None:
        return SegmentDof(dof=cf[0], naive=naive, method="closed form: " + cf[2], reason=None, route=cf[1])
    return SegmentDof(dof=None, naive=naive, method=None,
                      reason=(reason or "no route") + "; no closed form for this chain", route="skipped")
