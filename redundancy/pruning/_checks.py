"""Argument checks shared by the pruning modules: channel groups, removed units, layer names."""

from __future__ import annotations

import itertools
import numbers

from torch import nn

import redundancy._validation as _v
from redundancy.errors import RedundancyError

#: Most units (channels) a model may have to be scored or pruned.
_MAX_UNITS = 100_000


def _int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _bad_group(name: str, why: str):
    raise RedundancyError(f"{name} is not a valid ChannelGroup ({why}); pass what find_groups(model, ...) returned")


def _check_group(name: str, g) -> None:
    """The fields of one ChannelGroup are consistent (sizes, per-unit channel lists of ints >= 0)."""
    from redundancy.pruning.groups import ChannelGroup

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
    from redundancy.pruning.groups import ChannelGroup

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


def _check_removed(name: str, removed, groups) -> list[tuple[int, int]]:
    """``removed`` as a list of ``(group index, root index)`` pairs inside ``groups``."""
    if (isinstance(removed, (str, bytes, dict)) or getattr(removed, "ndim", 1) == 0
            or not hasattr(removed, "__iter__")):
        raise RedundancyError(f"{name}={_v._short(removed)} is not allowed; {name} must be an iterable of "
                              "(group index, root index) pairs")
    items = list(itertools.islice(iter(removed), _MAX_UNITS + 1))
    if len(items) > _MAX_UNITS:
        raise RedundancyError(f"{name} has more than {_MAX_UNITS} units")
    out = []
    for u in items:
        if isinstance(u, (str, bytes)) or not hasattr(u, "__len__") or len(u) != 2 \
                or not all(_int(v) for v in u):
            raise RedundancyError(f"{name} holds {_v._short(u)}; every unit must be a pair of integers "
                                  "(group index, root index)")
        g, r = int(u[0]), int(u[1])
        if not 0 <= g < len(groups) or not 0 <= r < groups[g].size:
            raise RedundancyError(f"{name} holds the unit {(g, r)}; a unit must be (g, r) with g in [0, {len(groups)}) "
                                  "and r in [0, size of group g)")
        out.append((g, r))
    return out


def _check_layers(name: str, layers):
    if layers is None or isinstance(layers, str):
        return layers
    return _v.Items(_v.Instance(str, "module name (str)"), min_len=1, max_len=_MAX_UNITS)(name, layers)


def _restores_modes(fn):
    """Decorator for a function ``fn(model, ...)`` that puts the model in eval mode: every submodule's
    own train/eval flag is put back when it returns or raises (the caller's model is not changed)."""
    import functools

    @functools.wraps(fn)
    def wrapper(model, *args, **kw):
        flags = [(m, m.training) for m in model.modules()] if isinstance(model, nn.Module) else []
        try:
            return fn(model, *args, **kw)
        finally:
            for m, flag in flags:
                m.training = flag
    return wrapper
