"""K and R of single layers: the numerical rank of a kernel's output-channel unfolding, and the
architecture rank bound carried along a linear segment."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from redundancy.analysis.graph import LayerInfo
import redundancy._validation as _v

__all__ = ["numerical_rank"]  # the face is redundancy.analysis; the rest is importable from here


def _graph_like(name, value):
    if not hasattr(value, "segments") or not hasattr(value, "layers"):
        raise _v.RedundancyError(f"{name}={_v._short(value)} is not a ModelGraph (from trace_model)")
    return value


LAYER_KR_CONVENTION = (
    "arch_rank = r_j when r_j < K (else None): the bottleneck width feeding the layer inside "
    "its linear segment, r_1 = min(K_1, C_in * prod(kernel_1)), r_j = min(K_j, r_(j-1) * "
    "prod(kernel_j) * f_j) with f_j the features per channel when a flatten precedes layer j, "
    "capped by a factorised conv's output rank; kr_ratio = K / arch_rank")


def _singular_values(mats: torch.Tensor, tol: float) -> torch.Tensor:
    """Singular values of a batch of float64 matrices. Through the eigenvalues of the smaller
    Gram matrix (``s = sqrt(eig(A A^T))``, about 10x faster than an SVD) when the cut is at least
    ``1e-6 * s_max``: float64 resolves singular values down to about ``1e-8 * s_max`` that way;
    a finer cut (float64 weights, or a small ``rank_tol``) uses a full SVD."""
    m, n = mats.shape[1:]
    if tol < 1e-6:
        return torch.from_numpy(np.linalg.svd(mats.numpy(), compute_uv=False))
    gram = mats @ mats.transpose(1, 2) if m <= n else mats.transpose(1, 2) @ mats
    ev = torch.linalg.eigvalsh(gram).clamp_min(0.0).sqrt()
    return ev.flip(-1)


@_v.validate_params({"weight": _v.Tensor(min_ndim=2), "groups": _v.Int(1, _v.MAX_NUMEL), "rank_tol": _v.NoneOr(_v.Float(0.0, 1.0, lo_open=True, hi_open=True))})
def numerical_rank(weight: torch.Tensor, groups: int = 1, rank_tol: float | None = None
                   ) -> tuple[int, float, float]:
    """Rank of the mode-0 (output-channel) unfolding of a dense conv/linear kernel.

    For ``groups`` g the dense kernel is block diagonal, so its rank is the sum of the ranks of the
    g blocks ``W_g`` of shape ``(K/g, C/g * prod(kernel))``. Singular values ``s`` (float64) count
    when ``s > tol * s_max`` (``s_max`` over all groups; see :func:`_singular_values`), with
    ``tol = rank_tol`` or, by default, ``max(rows, cols) * eps(weight dtype)``.

    Returns ``(rank, tol, gap)`` where ``gap = s_r / s_(r+1)`` (``inf`` when nothing was cut).

    Examples
    --------
    >>> import torch
    >>> w = torch.randn(8, 2, dtype=torch.float64) @ torch.randn(2, 27, dtype=torch.float64)
    >>> numerical_rank(w.reshape(8, 3, 3, 3))[0]
    2
    """
    w = weight.detach().to("cpu", torch.float64)
    k = w.shape[0]
    mats = w.reshape(groups, k // groups, -1)
    m, n = mats.shape[1:]
    tol = rank_tol if rank_tol is not None else max(m, n) * torch.finfo(weight.dtype).eps
    sv = _singular_values(mats, tol)           # (groups, min(m, n))
    smax = float(sv.max()) if sv.numel() else 0.0
    if smax == 0.0:
        return 0, float(tol), math.inf
    keep = sv > tol * smax
    rank = int(keep.sum())
    kept = sv[keep]
    dropped = sv[~keep]
    gap = math.inf if dropped.numel() == 0 else float(kept.min() / max(float(dropped.max()), 1e-300))
    return rank, float(tol), gap


def _factor_rank(mod: nn.Module) -> int:
    """Output-mode rank a factorised conv is built with (Tucker ``ranks[0]``, CP ``rank``)."""
    if isinstance(getattr(mod, "ranks", None), tuple):
        return int(mod.ranks[0])
    if isinstance(getattr(mod, "rank", None), int):
        return int(mod.rank)
    return math.inf


@_v.validate_params({"g": _v.Check(_graph_like), "layers": _v.Instance(dict), "modules": _v.Instance(dict)})
def arch_ranks(g, layers: dict[str, LayerInfo], modules: dict[str, nn.Module]) -> dict[str, int]:
    out = {}
    for seg in g.segments:
        r, prev = None, None
        for name in seg.layers:
            li = layers[name]
            taps = math.prod(li.kernel_size) if li.kernel_size else 1
            if r is None:
                r = li.in_channels * taps
            else:   # a flatten between turns each channel into in/out_prev features
                r = r * taps * max(1, li.in_channels // prev.out_channels)
            prev = li
            r = min(r, li.out_channels, _factor_rank(modules[name]))
            out[name] = r
    return out
