"""The one route that physically removes channels: Torch-Pruning on a copy, checked against the masks.

Removing unit ``r`` of a :class:`~redundancy.channels.groups.ChannelGroup` deletes the output
channels of every member, the matching BatchNorm entries and the consumers' input channels
(residual partners and concat offsets included), exactly as Torch-Pruning's group pruning does.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

import redundancy._validation as _v
from redundancy.channels._checks import _check_removed
from redundancy.channels.groups import _check_groups, _dependency_graph
from redundancy.channels.masks import _masked_forward
from redundancy.counts import preserved_state
from redundancy.errors import RedundancyError

__all__ = ["prune_units"]


@_v.validate_params({"model": _v.Module(), "example": _v.Tensor(min_ndim=1), "check": _v.Bool(),
                     "atol": _v.Float(0.0, 1e6)})
@_v.model_errors("prune_units")
def prune_units(model: nn.Module, groups, removed, example: torch.Tensor, *, check: bool = True,
                atol: float = 1e-5) -> tuple[nn.Module, float]:
    """A physically smaller copy of ``model`` without the units ``removed``.

    Each affected group is rebuilt on a deep copy with ``DependencyGraph.get_pruning_group`` from its
    root layer and pruned once (``group.prune()``), so BatchNorms, consumers, residual partners
    and concat offsets shrink with it. With ``check``, the copy's output on ``example`` is compared
    with the masked model's and a difference above ``atol`` (relative to the output scale) is refused.

    Parameters
    ----------
    model : torch.nn.Module
        Not changed (the copy is pruned; its train/eval flags and state are put back).
    groups : list of ChannelGroup
        :func:`find_groups` of this model.
    removed : iterable of (int, int)
        Units ``(group index, root index)``; every group keeps at least one.
    example : torch.Tensor
        A finite input batch (traced, and used for the check).
    check : bool
    atol : float in [0, 1e6]

    Returns
    -------
    (nn.Module, float)
        The pruned model (eval mode) and the largest absolute output difference to the masked model.

    Examples
    --------
    >>> from redundancy.channels.groups import find_groups
    >>> net = nn.Sequential(nn.Conv1d(1, 4, 3), nn.BatchNorm1d(4), nn.ReLU(), nn.Flatten(), nn.Linear(24, 2)).eval()
    >>> X = torch.randn(5, 1, 8)
    >>> small, diff = prune_units(net, find_groups(net, X[:1]), [(0, 1), (0, 3)], X)
    >>> small[0].out_channels, small[4].in_features, diff < 1e-5
    (2, 12, True)
    """
    groups = _check_groups("groups", groups, model)
    removed = sorted(set(_check_removed("removed", removed, groups)))
    by_group: dict[int, list[int]] = {}
    for g, r in removed:
        by_group.setdefault(g, []).append(r)
    for g, rs in by_group.items():
        if len(rs) >= groups[g].size:
            raise RedundancyError(f"cannot remove all {groups[g].size} channels of layer {groups[g].layer!r}; "
                                  "keep at least one")
    with _v.guard_model(model, eval=True), preserved_state(model):
        return _prune_copy(model, groups, removed, by_group, example, check, atol)


def _prune_copy(model, groups, removed, by_group, example, check, atol):
    pruned = copy.deepcopy(model).eval()
    if by_group:
        DG = _dependency_graph(pruned, example)
        mods = dict(pruned.named_modules())
        for g, rs in by_group.items():
            root = mods[groups[g].root]
            fn = DG.get_pruner_of_module(root).prune_out_channels
            group = DG.get_pruning_group(root, fn, idxs=sorted(rs))
            group.prune()
    diff = 0.0
    if check:
        with torch.no_grad():
            ref = _masked_forward(model, groups, removed, example)
            out = pruned(example)
        if out.shape != ref.shape:
            raise RedundancyError(f"the pruned model's output shape {tuple(out.shape)} differs from {tuple(ref.shape)}")
        diff = float((out - ref).abs().max())
        scale = max(1.0, float(ref.abs().max()))
        if not diff <= atol * scale:
            raise RedundancyError(
                f"the pruned model differs from the masked model by {diff:.3g} (> {atol} x {scale:.3g}); an "
                "operation between a channel and its consumers does not map 0 to 0 (e.g. a sigmoid or a bias "
                "outside a conv/linear/BatchNorm), so zeroing is not removing for this model")
    return pruned, diff
