"""Channel masks: many variants of a model, each with some units zeroed, in one forward pass.

:func:`unit_masks` turns sets of removed units (see :mod:`redundancy.pruning.groups`) into 0/1
channel masks per mask point; :func:`mask_hooks` applies them with forward hooks to a batch that
holds ``V`` copies of the examples (variant-major).
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from redundancy.errors import RedundancyError

__all__ = ["mask_hooks"]


def unit_masks(groups: list, removed_sets) -> dict[str, torch.Tensor]:
    """Per mask point, a ``(V, C)`` 0/1 tensor: variant ``v`` removes the units ``removed_sets[v]``.

    ``groups``: the ChannelGroups of :func:`~redundancy.pruning.groups.find_groups`; ``removed_sets[v]`` is
    an iterable of ``(group index, root index)``.
    """
    V = len(removed_sets)
    shapes: dict[str, int] = {}
    lookup = {}
    for g in groups:
        for name, per in g.points:
            c = max((max(p) for p in per if p), default=-1) + 1
            shapes[name] = max(shapes.get(name, 0), c)
            lookup[(g.index, name)] = per
    masks: dict[str, torch.Tensor] = {}
    for v, removed in enumerate(removed_sets):
        for gi, r in removed:
            for name, per in groups[gi].points:
                if name not in masks:
                    masks[name] = torch.ones(V, shapes[name])
                masks[name][v, list(per[r])] = 0.0
    return masks


def _apply(zeros, V: int, out: torch.Tensor, module: nn.Module) -> torch.Tensor:
    """Set to 0 the channels ``zeros = (variant indices, channel indices)`` of ``out`` (``V`` blocks
    of rows, variant-major); only the removed channels are touched."""
    if out.shape[0] % V:
        raise RedundancyError(f"a batch of {out.shape[0]} cannot hold {V} mask variants")
    n = out.shape[0] // V
    vs, cs = zeros
    last = isinstance(module, nn.Linear) or out.dim() == 2
    C = out.shape[-1] if last else out.shape[1]
    if len(cs) and int(cs.max()) >= C:
        raise RedundancyError(f"an output with {C} channels cannot lose channel {int(cs.max())}")
    o = out.reshape(V, n, -1, C) if last else out.reshape(V, n, C, -1)
    if last:
        o[vs, :, :, cs] = 0
    else:
        o[vs, :, cs, :] = 0
    return o.reshape(out.shape)


@contextlib.contextmanager
def mask_hooks(model: nn.Module, masks: dict[str, torch.Tensor]):
    """Inside the block, a forward of a batch of ``V * n`` examples (``V`` copies of ``n``) runs
    variant ``v`` on rows ``v*n .. (v+1)*n - 1``, with the output channels of module ``name`` multiplied
    by ``masks[name][v]`` (the forward hook sets the channels where the mask is 0 to 0)."""
    mods = dict(model.named_modules())
    handles = []
    try:
        for name, mask in masks.items():
            module = mods[name]
            dev = next(iter(module.parameters()), mask).device
            vs, cs = (mask == 0).nonzero(as_tuple=True)
            z = (vs.to(dev), cs.to(dev))
            handles.append(module.register_forward_hook(
                lambda mod, a, out, z=z, V=mask.shape[0]: _apply(z, V, out, mod)))
        yield model
    finally:
        for h in handles:
            h.remove()
