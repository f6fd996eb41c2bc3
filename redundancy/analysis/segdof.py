"""Degrees of freedom of one maximal linear segment: closed form when the chain has one, numerical
(Jacobian rank) when small, otherwise skipped with a reason.

The numerical route calls :func:`redundancy.linear.dof.degrees_of_freedom` on a float64, eval-mode copy
of the segment with its offsets removed (so only ``theta -> W`` counts) at a reduced spatial size ``min(H, rf + s)`` per spatial axis (``rf`` the chain's
receptive field, ``s`` its total stride). The dof of ``theta -> W`` does not change: once the input
covers the receptive field, some output position sees every tap of the composite kernel, so the map
from kernels to operators is the same up to an injective restriction. Pooling to a fixed output
size (adaptive pooling) or a flatten pins the spatial size; then the segment is taken as it is.

Closed forms (generic weights):

* one layer (with BatchNorm/pool/dropout around it): ``dof = numel(kernel)`` (the map from a
  kernel to its convolution operator is linear and injective);
* depthwise (C channels, ``taps`` kernel taps) then pointwise to K: for each channel c the
  composite kernel is the outer product ``P[:, c] D[c, :]``, a rank-one ``K x taps`` matrix, so
  ``dof = C (taps + K - 1)``;
* a chain of pointwise layers (1x1 convs with ``groups=1``, or ``nn.Linear``) of widths
  ``n_0 -> n_1 -> ... -> n_m``: the product of matrices has rank ``r = min(n_i)``, and the set of
  ``n_m x n_0`` matrices of rank ``<= r`` has dimension ``r (n_0 + n_m - r)``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

from torch import nn

from redundancy.analysis.records import LayerInfo, SegmentInfo, _is_pointwise
import redundancy._validation as _v

_SPATIAL_OK = (nn.modules.batchnorm._BatchNorm, nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d,
               nn.Dropout3d)


@dataclass(frozen=True)
class SegmentDof:
    dof: int | None
    naive: int
    method: str | None
    reason: str | None


@_v.validate_params({"seg": _v.Instance(SegmentInfo, "SegmentInfo"), "modules": _v.Instance(dict)})
def segment_naive(seg: SegmentInfo, modules: dict[str, nn.Module]) -> int:
    """Parameters of the segment's layers that enter ``W``: kernels and their factors (no biases)."""
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


def _closed_form(seg: SegmentInfo, layers: dict[str, LayerInfo], modules) -> tuple[int, str] | None:
    infos = [layers[n] for n in seg.layers]
    if any(hasattr(modules[n], "kernel") for n in seg.layers):
        return None
    if len(infos) == 1:
        li, mod = infos[0], modules[seg.layers[0]]
        n = math.prod(li.kernel_shape[:2]) * math.prod(_observable_taps(li, mod))
        return int(n), "closed form: one layer, dof = kernel taps that reach an output"
    layer_ids = {id(modules[n]) for n in seg.layers}
    only_bn = seg.module is not None and all(id(m) in layer_ids or isinstance(m, _SPATIAL_OK)
                                             for m in seg.module)
    if (only_bn and len(infos) == 2 and infos[0].groups == infos[0].in_channels == infos[0].out_channels
            and _is_pointwise(infos[1])):
        c, k = infos[0].in_channels, infos[1].out_channels
        taps = math.prod(_observable_taps(infos[0], modules[seg.layers[0]]))
        return c * (taps + k - 1), "closed form: depthwise then pointwise, C (taps + K - 1)"
    if (seg.module is not None and all(_is_pointwise(li) for li in infos)
            and all(id(m) in layer_ids or isinstance(m, _SPATIAL_OK) for m in seg.module)):
        widths = [infos[0].in_channels] + [li.out_channels for li in infos]
        r = min(widths)
        return r * (widths[0] + widths[-1] - r), f"closed form: product of matrices, rank {r}"
    return None


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


@_v.validate_params({"seg": _v.Instance(SegmentInfo, "SegmentInfo"), "layers": _v.Instance(dict), "modules": _v.Instance(dict), "max_params": _v.Int(0, 10 ** 9), "route": _v.Choice("auto", "closed", "numerical"), "seed": _v.Seed(allow_generator=True)})
def segment_dof(seg: SegmentInfo, layers: dict[str, LayerInfo], modules: dict[str, nn.Module], *,
                max_params: int, route: str = "auto", seed=0) -> SegmentDof:
    """dof of ``theta -> W`` for one segment; see the module docstring for the routes.

    ``route``: ``"auto"`` (closed form when the chain has one, else numerical up to ``max_params``),
    ``"numerical"`` (numerical up to ``max_params``, closed form above), ``"none"`` (skip)."""
    naive = segment_naive(seg, modules)
    if any(layers[n].calls == 0 for n in seg.layers):
        return SegmentDof(None, naive, None, seg.reason)
    if route == "none":
        return SegmentDof(None, naive, None, "segment dof not requested (dof='none')")
    reason = seg.reason
    if route == "auto":
        cf = _closed_form(seg, layers, modules)
        if cf is not None:
            return SegmentDof(cf[0], naive, cf[1], None)
    if seg.module is not None and naive <= max_params:
        from redundancy.linear.dof import degrees_of_freedom

        shape = _reduced_shape(seg.module, seg.input_shape)
        try:
            res = degrees_of_freedom(_linear_part(seg.module), shape, method="numerical", seed=seed)
            return SegmentDof(int(res.dof), naive, f"numerical Jacobian rank at input {shape}", None)
        except Exception as exc:  # report, never crash the whole report
            reason = f"numerical dof failed: {type(exc).__name__}: {str(exc)[:120]}"
    elif seg.module is not None:
        reason = f"segment has {naive} kernel parameters, above dof_max_params={max_params}"
    cf = _closed_form(seg, layers, modules)
    if cf is not None:
        return SegmentDof(cf[0], naive, cf[1], None)
    return SegmentDof(None, naive, None, (reason or "no route") + "; no closed form for this chain")
