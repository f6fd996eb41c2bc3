"""Counting what a model costs: parameters (deduplicated), and (see below) MACs and memory."""

from __future__ import annotations

from torch import nn

from ._validation import check_module

__all__ = ["parameter_count"]


def parameter_count(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of scalar parameters, each shared tensor counted once.

    .. math::  n = \\sum_{\\theta \\in \\mathrm{unique}(\\mathrm{params})} \\mathrm{numel}(\\theta)

    Parameters are deduplicated by identity (``model.parameters()`` already does this for tensors
    registered twice; tied weights shared across modules are counted once).

    Examples
    --------
    >>> from torch import nn
    >>> lin = nn.Linear(3, 3, bias=False)
    >>> parameter_count(nn.Sequential(lin, lin))
    9
    """
    check_module("model", model)
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return int(total)
