"""Channel groups of a CNN (via Torch-Pruning's ``DependencyGraph``): the units that masks zero and removal deletes.

A *unit* is what CAR scores and what pruning removes: one output channel of a conv or linear layer
together with everything coupled to it. Torch-Pruning's :class:`torch_pruning.DependencyGraph`
finds the couplings: a conv and its BatchNorm, the next layer's matching input channel, the
channels of a residual sum (every conv writing into the sum and every consumer reading it), concat
and split index shifts, depthwise convs. One *group* holds the channels that must go together; its
units are its root channels ``r = 0..C-1``.

Removal, precisely: removing unit ``r`` of a group sets to zero, on every forward pass, the output
channel(s) that map to root index ``r`` of every conv or linear layer of the group whose output
channels are pruned and of every BatchNorm of the group. A conv followed by a BatchNorm therefore
contributes exactly 0 (not the BatchNorm shift ``beta - gamma * mu / sigma``). Deleting the channels
with Torch-Pruning computes the same function whenever the operations between these outputs and
their consumers map 0 to 0 (ReLU, max/avg pooling, flatten, dropout in eval mode, residual sums,
concat): :func:`~redundancy.channels.removal.prune_units` checks it on a batch and refuses a mismatch.

The classifier (a conv/linear whose output channels reach the model output: its group has no
consumer) is never scored.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

import redundancy._validation as _v
from redundancy.counts import preserved_state
from redundancy.errors import RedundancyError, UnsupportedLayerError
from redundancy.channels._checks import _MAX_UNITS, _check_layers, _int

__all__ = ["find_groups"]

_CONV_LINEAR = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


@dataclass(frozen=True)
class ChannelGroup:
    """Channels that are removed together.

    Attributes
    ----------
    index : int
        Position of the group among the model's groups.
    layer : str
        Qualified name of the group's label layer: its first conv/linear (in ``named_modules`` order)
        whose output channels are pruned.
    root : str
        Torch-Pruning's root layer of the group (used to rebuild it on a copy of the model).
    members : tuple of str
        Every conv/linear whose output channels are pruned with the group.
    size : int
        Number of units (root channels).
    channels : tuple of int
        ``channels[r]`` = the label layer's output channel of unit ``r``.
    points : tuple of (str, tuple of tuple of int)
        Mask points: (module name, for each unit ``r`` the module's channel indices of that unit).
    feeds_bn : tuple of str
        Members whose output goes straight into a BatchNorm of the group (statistics of those are
        read at the BatchNorm).
    """

    index: int
    layer: str
    root: str
    members: tuple[str, ...]
    size: int
    channels: tuple[int, ...]
    points: tuple[tuple[str, tuple[tuple[int, ...], ...]], ...]
    feeds_bn: tuple[str, ...]

    @property
    def stat_points(self) -> tuple[tuple[str, tuple[tuple[int, ...], ...]], ...]:
        """Mask points where a channel's activation is read: BatchNorms and members not feeding one."""
        return tuple(p for p in self.points if p[0] not in self.feeds_bn)


def _bad_group(name: str, why: str):
    raise RedundancyError(f"{name} is not a valid ChannelGroup ({why}); pass what find_groups(model, ...) returned")


def _check_group(name: str, g) -> None:
    """The fields of one ChannelGroup are consistent (sizes, per-unit channel lists of ints >= 0)."""
    if not isinstance(g, ChannelGroup):
        raise RedundancyError(f"{name}={_v._short(g)} is not a ChannelGroup; pass what find_groups(model, ...) "
                              "returned")
    if not _int(g.size) or not 1 <= g.size <= _MAX_UNITS:
        _bad_group(name, f"size={_v._short(g.size)} is not an integer in [1, {_MAX_UNITS}]")
    for f in ("layer", "root"):
        if not isinstance(getattr(g, f), str):
            _bad_group(name, f"{f} is not a module name")
    if not isinstance(g.members, tuple) or not g.members or not all(isinstance(m, str) for m in g.members):
        _bad_group(name, "members is not a non-empty tuple of module names")
    if not isinstance(g.feeds_bn, tuple) or not all(isinstance(m, str) for m in g.feeds_bn):
        _bad_group(name, "feeds_bn is not a tuple of module names")
    if not isinstance(g.channels, tuple) or len(g.channels) != g.size or not all(_int(c) for c in g.channels):
        _bad_group(name, f"channels is not a tuple of {g.size} integers")
    if not isinstance(g.points, tuple) or not g.points:
        _bad_group(name, "points is empty")
    for p in g.points:
        if not (isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) and isinstance(p[1], tuple)
                and len(p[1]) == g.size):
            _bad_group(name, f"a mask point is not (module name, {g.size} channel tuples)")
        for per in p[1]:
            if not isinstance(per, tuple) or not all(_int(c) and 0 <= c < _MAX_UNITS for c in per):
                _bad_group(name, f"the channels of point {p[0]!r} are not tuples of integers in [0, {_MAX_UNITS})")


def _check_groups(name: str, groups, model: nn.Module | None = None) -> list:
    """``groups`` as a list of consistent ChannelGroups numbered ``0..G-1`` whose modules are in ``model``."""
    if isinstance(groups, ChannelGroup):
        groups = [groups]
    if not isinstance(groups, (list, tuple)) or not groups:
        raise RedundancyError(f"{name}={_v._short(groups)} is not allowed; {name} must be a non-empty list of "
                              "ChannelGroup (what find_groups(model, ...) returns)")
    if len(groups) > _MAX_UNITS:
        raise RedundancyError(f"{name} has {len(groups)} groups; at most {_MAX_UNITS}")
    for i, g in enumerate(groups):
        _check_group(f"{name}[{i}]", g)
        if g.index != i:
            raise RedundancyError(f"{name}[{i}].index={_v._short(g.index)}; group i must have index i (pass the "
                                  "list find_groups returned, not a subset)")
    if model is not None:
        mods = dict(model.named_modules())
        for i, g in enumerate(groups):
            for n in {p[0] for p in g.points} | set(g.members) | {g.root}:
                if n not in mods:
                    raise RedundancyError(f"{name}[{i}] names the layer {n!r}, which is not a module of the model; "
                                          "the groups must come from find_groups on this model")
    return list(groups)


def _dependency_graph(model: nn.Module, example: torch.Tensor):
    import torch_pruning as tp

    try:  # Torch-Pruning switches the model to eval mode; the tracing forward must not move BatchNorm statistics
        with _v.guard_model(model), preserved_state(model):
            return tp.DependencyGraph().build_dependency(model, example_inputs=example)
    except Exception as exc:  # tracing failed: say which model, no traceback
        raise UnsupportedLayerError(f"torch_pruning could not trace the model ({type(exc).__name__}: "
                                    f"{_v._short(_v._first_line(exc), 200)})") from None


def _is_out(DG, dep) -> bool:
    return DG.is_out_channel_pruning_fn(dep.handler)


@_v.validate_params({"model": _v.Module(), "example": _v.Tensor(min_ndim=1), "layers": _v.Check(_check_layers)})
@_v.model_errors("find_groups")
def find_groups(model: nn.Module, example: torch.Tensor, layers=None) -> list[ChannelGroup]:
    """The prunable channel groups of ``model`` (one forward of ``example``, batch of 1 suffices).

    Parameters
    ----------
    model : torch.nn.Module
    example : torch.Tensor
        One input batch (traced by Torch-Pruning; finite values, at least one dimension). The
        tracing forward does not change the model (parameters and buffers are put back).
    layers : str or sequence of str, optional
        Conv/linear module names; only groups with one of them as a member are kept
        (default: every group but the classifier's).

    Returns
    -------
    list of ChannelGroup
        Ordered by their label layer; at most 100,000 units in all.

    Raises
    ------
    RedundancyError
        A model that is not a module, an example that is not a finite tensor, an unknown layer, a
        model Torch-Pruning cannot trace (:class:`~redundancy.errors.UnsupportedLayerError`), no
        prunable channel.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 3))
    >>> [(g.layer, g.size) for g in find_groups(net.eval(), torch.zeros(1, 1, 8, 8))]
    [('0', 4)]
    """
    names = {m: n for n, m in model.named_modules()}
    order = {n: i for i, n in enumerate(names.values())}
    DG = _dependency_graph(model, example)
    groups = [g for g in (_group_of(model, DG, list(items), names, order)
                          for items in DG.get_all_groups(root_module_types=_CONV_LINEAR)) if g is not None]
    if layers is not None:
        groups = _keep_layers(groups, layers, order)
    groups = sorted(groups, key=lambda g: order[g.layer])
    groups = [dataclasses.replace(g, index=i) for i, g in enumerate(groups)]
    if not groups:
        raise RedundancyError("the model has no prunable conv/linear channels (only a classifier, or none)")
    if sum(g.size for g in groups) > _MAX_UNITS:
        raise RedundancyError(f"the model has {sum(g.size for g in groups)} channels to score; at most {_MAX_UNITS}")
    return groups


def _is_consumed(DG, mods, names) -> bool:
    """Some module of the model reads the group's channels (False for the classifier's group)."""
    return any(DG.is_in_channel_pruning_fn(it.dep.handler) and isinstance(m, nn.Module) and m in names
               for m, it in mods)


def _unit_channels(it, size: int) -> list[list[int]]:
    """For each root index ``r``, the channels of one dependency item that belong to unit ``r``."""
    per = [[] for _ in range(size)]
    for idx, r in zip(it.idxs, it.root_idxs):
        per[int(r)].append(int(idx))
    return per


def _points(DG, mods, names, size: int):
    """Members (pruned conv/linear outputs), BatchNorms and mask points of one dependency group."""
    members, points, bns = [], {}, []
    for m, it in mods:
        if not isinstance(m, nn.Module) or m not in names:
            continue  # Torch-Pruning's own element-wise / reshape / concat nodes
        name = names[m]
        if isinstance(m, _CONV_LINEAR) and _is_out(DG, it.dep):
            members.append(name)
        elif isinstance(m, _BN):
            bns.append(name)
        elif isinstance(m, _CONV_LINEAR):
            continue  # a consumer: its input channels go, its outputs stay
        else:
            raise UnsupportedLayerError(
                f"layer {name!r} ({type(m).__name__}) is coupled to the channels of "
                f"{names.get(mods[0][0])!r}; CAR supports conv, linear and BatchNorm layers only")
        old = points.get(name, [[] for _ in range(size)])
        points[name] = [sorted(set(a + b)) for a, b in zip(old, _unit_channels(it, size))]
    return members, points, bns


def _feeds_bn(model, DG, members, names, bns) -> tuple[str, ...]:
    """The members whose output goes straight into one of the group's BatchNorms."""
    mods = dict(model.named_modules())
    feeds = []
    for name in members:
        outs = [o.module for o in DG.module2node[mods[name]].outputs]
        if any(isinstance(o, _BN) and names.get(o) in bns for o in outs):
            feeds.append(name)
    return tuple(feeds)


def _group_of(model, DG, items, names, order) -> ChannelGroup | None:
    """The ChannelGroup of one Torch-Pruning group (index set later), or None for the classifier's."""
    mods = [(it.dep.target.module, it) for it in items]
    if not _is_consumed(DG, mods, names):
        return None  # the classifier: no layer reads these channels
    size = len(items[0].root_idxs)
    members, points, bns = _points(DG, mods, names, size)
    members = sorted(set(members), key=order.get)
    label = members[0]
    lab = points[label]
    channels = tuple(lab[r][0] if lab[r] else -1 for r in range(size))
    pts = tuple((n, tuple(tuple(v) for v in points[n])) for n in sorted(points, key=order.get))
    return ChannelGroup(index=-1, layer=label, root=names[items[0].dep.target.module], members=tuple(members),
                        size=size, channels=channels, points=pts, feeds_bn=_feeds_bn(model, DG, members, names, bns))


def _keep_layers(groups, layers, order):
    """The groups with one of ``layers`` as a member (an unknown layer is refused)."""
    wanted = [layers] if isinstance(layers, str) else list(layers)
    scorable = {n for g in groups for n in g.members}
    for n in wanted:
        if n not in scorable:
            raise RedundancyError(f"layers contains {n!r}, which is not a prunable conv/linear layer of the "
                                  f"model; choose from {sorted(scorable, key=order.get)}")
    return [g for g in groups if set(g.members) & set(wanted)]
