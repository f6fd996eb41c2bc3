"""Data-free per-layer scores: what :func:`redundancy.analysis.analyze` found (segment dof, K/R of
the segment and the block, numerical rank) and the EVBMF and energy ranks of each kernel's
output-channel unfolding, all turned into redundancies in ``[0, 1]`` (higher = more redundant).

For a kernel ``W`` of shape ``(K, C/g, *k)`` with ``g`` groups the unfolding is block diagonal
with ``g`` blocks ``W_j`` of shape ``(K/g, C/g * prod(k))``; a rank is the sum of the blocks' ranks
and the full rank is ``g * min(K/g, C/g * prod(k))``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

import redundancy._validation as _v
from redundancy.analysis.records import layer_kernel
from redundancy.analysis.report import RedundancyReport
from redundancy.errors import RedundancyError
from redundancy.lowrank.ranks import energy_ranks, evbmf

__all__: list[str] = []  # the face is in the package's __init__

#: Largest unfolding (entries) given an SVD for the EVBMF and energy ranks; larger ones are skipped.
MAX_UNFOLDING = 40_000_000


_REPORT = _v.Instance(RedundancyReport, "RedundancyReport (from redundancy.analysis.analyze)")


@_v.validate_params({"kernel_shape": _v.Shape(2, 8, max_numel=10 ** 15), "groups": _v.Int(1, 10 ** 9)})
def full_rank(kernel_shape, groups: int = 1) -> int:
    """``g * min(K/g, C/g * prod(k))``: the largest possible rank of the output-channel unfolding.

    ``kernel_shape``: ``(K, C/g, *k)`` (2 to 8 positive sizes); ``groups``: ``g``, which must divide ``K``.

    Examples
    --------
    >>> full_rank((16, 2, 1, 1)), full_rank((8, 1, 3, 3), groups=8)
    (2, 8)
    """
    k = kernel_shape[0]
    if k % groups:
        raise RedundancyError(f"groups={groups} does not divide the {k} output channels of kernel_shape="
                              f"{kernel_shape}")
    cols = math.prod(kernel_shape[1:])
    return groups * min(k // groups, cols)


def _one_minus(num, den):
    return None if num is None or not den else float(min(max(1.0 - num / den, 0.0), 1.0))


@_v.validate_params({"report": _REPORT})
def report_scores(report) -> dict[str, dict[str, float | None]]:
    """``{score: {layer: redundancy or None}}`` for ``dof``, ``kr_segment``, ``kr_block`` and
    ``numerical`` from a :class:`~redundancy.analysis.report.RedundancyReport`.

    ``dof = 1 - dof(S)/naive(S)`` (``None`` when the segment was skipped), ``kr_segment = 1 - R/K``
    (0 when the layer has no architecture bottleneck ``R < K``), ``kr_block = 1 - R/K`` of the
    layer's block (``None`` outside a block or when the block has no ``R``), ``numerical =
    1 - rank / full_rank``.

    Examples
    --------
    >>> from torch import nn
    >>> from redundancy.analysis.report import analyze
    >>> net = nn.Sequential(nn.Conv2d(4, 2, 1), nn.Conv2d(2, 16, 1))
    >>> report_scores(analyze(net, (4, 5, 5)))["kr_segment"]
    {'0': 0.0, '1': 0.875}
    """
    blocks = {b.name: b for b in report.blocks}
    segments = {s.name: s for s in report.segments}
    out = {"dof": {}, "kr_segment": {}, "kr_block": {}, "numerical": {}}
    for r in report.layers:
        seg = segments.get(r.segment)
        if seg is None:
            raise RedundancyError(f"report layer {r.name!r} names the segment {r.segment!r}, which the report does "
                                  "not hold; pass a report from analyze()")
        out["dof"][r.name] = _one_minus(seg.dof, seg.naive) if seg.dof else None
        out["kr_segment"][r.name] = _one_minus(1.0, r.kr_ratio) if r.kr_ratio else 0.0
        b = blocks.get(r.block) if r.block else None
        out["kr_block"][r.name] = _one_minus(1.0, b.kr_ratio) if b is not None and b.kr_ratio else None
        out["numerical"][r.name] = (_one_minus(r.numerical_rank, full_rank(r.kernel_shape, r.groups))
                                    if r.numerical_rank is not None else None)
    return out


def _group_blocks(kernel: np.ndarray, groups: int) -> list[np.ndarray]:
    k = kernel.shape[0]
    mats = kernel.reshape(groups, k // groups, -1)
    return [mats[j] for j in range(groups)]


@_v.validate_params({"model": _v.Module(), "report": _REPORT, "energy": _v.Float(0.0, 1.0, lo_open=True)})
def spectrum_scores(model, report, *, energy: float = 0.9) -> tuple[dict, dict, dict]:
    """``(evbmf, energy, reasons)``: ``{layer: 1 - rank/full_rank}`` for the EVBMF rank and the
    energy-``energy`` rank of each layer's unfolding, and ``{"evbmf": {layer: why}, "energy":
    {layer: why}}`` for the layers a score leaves out (``None`` in its dict).

    Where EVBMF is not applicable to a layer's unfolding (too small, estimate at the method's rank
    bound, implausible noise estimate: see :func:`redundancy.lowrank.evbmf.evbmf`) the layer's EVBMF
    score is ``None`` with the reason, so it stays out of the consensus: a trained 10 x 16
    classifier head is not called 100 % redundant. Nor is a layer whose unfolding EVBMF reads as
    pure noise (rank 0 with the noise variance estimated, a non-zero kernel): the method then says
    only that it finds no low-rank signal, not that the weights can go (a trained head still near
    its random initialisation reads so). An all-zero kernel keeps its redundancy of 1.

    EVBMF runs on the unfolding with its numerically zero singular values (``s <= max(m, n)
eps(dtype) s_max``, the tolerance of the numerical rank) set to 0: the kernel's storage rounding
is not noise to be modelled, and EVBMF would otherwise keep rounding-level components of an
exactly low-rank float32 kernel.

    Parameters
    ----------
    model : torch.nn.Module
        The model ``report`` was computed for (every report layer must be one of its modules, with
        the kernel shape the report states).
    report : RedundancyReport
    energy : float in (0, 1]

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from redundancy.analysis.report import analyze
    >>> net = nn.Linear(6, 8, bias=False)
    >>> with torch.no_grad():
    ...     _ = net.weight.copy_(torch.randn(8, 1) @ torch.randn(1, 6))
    >>> ev, en, why = spectrum_scores(net, analyze(net, (6,)))
    >>> round(ev[""], 3), round(en[""], 3)   # rank 1 of 6
    (0.833, 0.833)
    """
    modules = dict(model.named_modules())
    ev, en, why = {}, {}, {"evbmf": {}, "energy": {}}
    for r in report.layers:
        full = full_rank(r.kernel_shape, r.groups)
        if math.prod(r.kernel_shape) > MAX_UNFOLDING:
            why["evbmf"][r.name] = why["energy"][r.name] = (
                f"unfolding of {r.name} has {math.prod(r.kernel_shape):,} entries, above MAX_UNFOLDING={MAX_UNFOLDING:,}")
            ev[r.name] = en[r.name] = None
            continue
        if r.name not in modules:
            raise RedundancyError(f"report layer {r.name!r} is not a module of model; pass the report of "
                                  "analyze(model, ...) for this model")
        kern = layer_kernel(modules[r.name]).detach()
        if tuple(kern.shape) != tuple(r.kernel_shape):
            raise RedundancyError(f"layer {r.name!r} has a kernel of shape {tuple(kern.shape)} but the report says "
                                  f"{tuple(r.kernel_shape)}; pass the report of this model")
        eps = float(torch.finfo(kern.dtype).eps) if kern.dtype.is_floating_point else 0.0
        w = kern.cpu().double().numpy()
        if not np.isfinite(w).all():
            why["evbmf"][r.name] = why["energy"][r.name] = f"kernel of {r.name} holds NaN or inf"
            ev[r.name] = en[r.name] = None
            continue
        r_ev, r_en, not_applicable = 0, 0, ""
        for mat in _group_blocks(w, r.groups):
            if not np.any(mat):
                continue  # an all-zero block has rank 0 under every rule
            u, sv, vt = np.linalg.svd(mat, full_matrices=False)
            sv = np.where(sv > max(mat.shape) * eps * sv[0], sv, 0.0)
            res = evbmf((u * sv) @ vt)
            r_ev += res.rank
            if not res.applicable and not not_applicable:
                not_applicable = f"EVBMF not applicable to {r.name} ({mat.shape[0]} x {mat.shape[1]}): {res.reason}"
            r_en += energy_ranks(mat, energy, modes=(0,)).ranks[0]
        if not not_applicable and r_ev == 0 and np.any(w):
            not_applicable = (f"EVBMF reads the whole unfolding of {r.name} as noise (rank 0, sigma2 estimated): "
                              "a kernel indistinguishable from i.i.d. noise, e.g. near its random initialisation, "
                              "is not thereby redundant")
        ev[r.name] = None if not_applicable else _one_minus(r_ev, full)
        if not_applicable:
            why["evbmf"][r.name] = not_applicable
        en[r.name] = _one_minus(r_en, full)
    return ev, en, why
