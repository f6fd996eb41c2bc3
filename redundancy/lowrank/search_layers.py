"""Which layers a rank search touches, where they sit, and how they are swapped (helpers of
:mod:`redundancy.lowrank.search`)."""

from __future__ import annotations

import torch
from torch import nn

from redundancy.counts import eval_mode
from redundancy.errors import RedundancyError
from redundancy.lowrank.rank_chains import skip_reason

__all__: list[str] = []


def _searchable(name, value):
    """A Conv1d/2d/3d with groups 1 or a Linear (what the search decomposes)."""
    if not isinstance(value, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
        raise RedundancyError(f"{name}={type(value).__name__} is not allowed; {name} must be a Conv1d, Conv2d, "
                              "Conv3d (groups 1) or Linear layer")
    reason = skip_reason(value)
    if reason is not None:
        raise RedundancyError(f"{name} cannot be searched: {reason}")
    return value


def _layer_positions(model: nn.Module, names, input_shape) -> dict[str, list[tuple[int, int]]]:
    """Per named layer and call, ``(P_in, P_out)``: input and output positions of one input example."""
    pos: dict[str, list] = {n: [] for n in names}
    handles = []
    for n in names:
        mod = model.get_submodule(n)

        def hook(m, args, out, n=n):
            ch_in = m.in_features if isinstance(m, nn.Linear) else m.in_channels
            ch_out = m.out_features if isinstance(m, nn.Linear) else m.out_channels
            pos[n].append((args[0].numel() // ch_in, out.numel() // ch_out))
        handles.append(mod.register_forward_hook(hook))
    p = next(iter(model.parameters()))
    try:
        with torch.no_grad(), eval_mode(model):
            model(torch.zeros((1, *input_shape), dtype=p.dtype, device=p.device))
    finally:
        for h in handles:
            h.remove()
    return pos


def _replace_layers(model: nn.Module, new: dict[str, nn.Module]) -> nn.Module:
    """Set ``model.<name> = new[name]`` for every qualified name (in place); returns ``model``."""
    for name, mod in new.items():
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, attr, mod)
    return model


def _select(model, layers):
    if layers is None:
        names = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear))]
    else:
        names = [layers] if isinstance(layers, str) else list(layers)
        known = dict(model.named_modules())
        for n in names:
            if n not in known or not n:
                raise RedundancyError(f"layers entry {n!r} is not a submodule name of the model")
    keep, skipped = [], []
    for n in names:
        mod = model.get_submodule(n)
        reason = skip_reason(mod)
        if reason is not None:
            skipped.append({"name": n, "layer_type": type(mod).__name__, "reason": reason})
        else:
            keep.append(n)
    return keep, skipped
