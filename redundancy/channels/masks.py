"""Channel masks: many variants of a model, each with some units zeroed, in one forward pass.

:func:`unit_masks` turns sets of removed units (see :mod:`redundancy.channels.groups`) into 0/1
channel masks per mask point; :func:`mask_hooks` applies them with forward hooks to a batch that
holds ``V`` copies of the examples (variant-major); :func:`masked_forward` is one masked forward.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

import redundancy._validation as _v
from redundancy.channels._checks import _check_removed
from redundancy.channels.groups import _check_groups
from redundancy.counts import preserved_state
from redundancy.errors import RedundancyError

__all__ = ["masked_forward"]


def unit_masks(groups: list, removed_sets) -> dict[str, torch.Tensor]:
    """Per mask point, a ``(V, C)`` 0/1 tensor: variant ``v`` removes the units ``removed_sets[v]``.

    ``groups``: the ChannelGroups of :func:`~redundancy.channels.groups.find_groups`; ``removed_sets[v]`` is
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


def _masked_forward(model: nn.Module, groups, removed, X: torch.Tensor) -> torch.Tensor:
    masks = unit_masks(groups, [list(removed)])
    with torch.no_grad(), preserved_state(model), mask_hooks(model, masks):
        out = model(X)
    if not torch.is_tensor(out):
        raise RedundancyError(f"the model returned a {type(out).__name__}; masked_forward needs a tensor output")
    if out.is_floating_point() and not bool(torch.isfinite(out).all()):
        raise RedundancyError("the masked model's output holds NaN or inf on X; its weights or inputs are not finite")
    return out


@_v.validate_params({"model": _v.Module(), "X": _v.Tensor(min_ndim=1)})
@_v.model_errors("masked_forward")
def masked_forward(model: nn.Module, groups, removed, X: torch.Tensor) -> torch.Tensor:
    """``model(X)`` with the units ``removed`` (iterable of ``(group, root index)``) zeroed.

    Parameters
    ----------
    model : torch.nn.Module
        Run as it is (its train/eval mode); its parameters and buffers are put back afterwards.
    groups : list of ChannelGroup
        :func:`find_groups` of this model.
    removed : iterable of (int, int)
        Units ``(group index, root index)`` to zero.
    X : torch.Tensor
        A finite input batch.

    Returns
    -------
    torch.Tensor
        The output (refused when it holds NaN or inf).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).eval()
    >>> X = torch.randn(5, 3)
    >>> from redundancy.channels.groups import find_groups
    >>> groups = find_groups(net, X[:1])
    >>> out = masked_forward(net, groups, [(0, r) for r in range(4)], X)
    >>> bool(torch.allclose(out, net[2].bias.expand(5, 2)))
    True
    """
    groups = _check_groups("groups", groups, model)
    return _masked_forward(model, groups, _check_removed("removed", removed, groups), X)
