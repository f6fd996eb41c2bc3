"""Argument checks shared by the channel layer and its users: removed units, layer names."""

from __future__ import annotations

import itertools
import numbers

import redundancy._validation as _v
from redundancy.errors import RedundancyError

#: Most units (channels) a model may have to be scored or pruned.
_MAX_UNITS = 100_000


def _int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


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

