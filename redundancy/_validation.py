"""Argument checks at the edge of the public API.

Each helper either returns a normalised value or raises a :class:`~redundancy.errors.RedundancyError`
whose message names the argument, the value received and what is allowed, e.g.
``input_shape=(3, -1) has a non-positive entry -1; every size must be an integer >= 1``.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from redundancy.errors import RankError, RedundancyError

__all__ = [
    "check_int",
    "check_positive_float",
    "check_nonnegative_float",
    "check_shape",
    "check_tuple",
    "check_module",
    "check_choice",
    "check_ranks",
    "as_generator",
]


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int(name: str, value: Any, *, min_value: int | None = None,
              max_value: int | None = None) -> int:
    """Return ``value`` as ``int`` or raise naming ``name`` and the allowed range."""
    lo = "-inf" if min_value is None else str(min_value)
    hi = "inf" if max_value is None else str(max_value)
    if not _is_int(value):
        raise RedundancyError(
            f"{name}={value!r} is not an integer; {name} must be an integer in [{lo}, {hi}]")
    value = int(value)
    if (min_value is not None and value < min_value) or (max_value is not None and value > max_value):
        raise RedundancyError(f"{name}={value} is out of range; {name} must be an integer in [{lo}, {hi}]")
    return value


def check_positive_float(name: str, value: Any) -> float:
    """Return ``value`` as a finite float > 0 or raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value <= 0:
        raise RedundancyError(f"{name}={value!r} is not allowed; {name} must be a finite number > 0")
    return float(value)


def check_nonnegative_float(name: str, value: Any) -> float:
    """Return ``value`` as a finite float >= 0 or raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
        raise RedundancyError(f"{name}={value!r} is not allowed; {name} must be a finite number >= 0")
    return float(value)


def check_shape(name: str, value: Any, *, min_len: int = 1, max_len: int | None = None,
                min_value: int = 1) -> tuple[int, ...]:
    """Return a tuple of ints (a shape) or raise.

    A single integer is accepted as a shape of length one.
    """
    if _is_int(value):
        value = (value,)
    if not isinstance(value, Iterable) or isinstance(value, (str, bytes)):
        raise RedundancyError(f"{name}={value!r} is not a shape; {name} must be a tuple of integers")
    items = tuple(value)
    allowed = f"{min_len}" if max_len == min_len else f"{min_len}..{max_len if max_len is not None else 'any'}"
    if len(items) < min_len or (max_len is not None and len(items) > max_len):
        raise RedundancyError(
            f"{name}={items!r} has {len(items)} entries; {name} must have {allowed} entries")
    out = []
    for v in items:
        if not _is_int(v):
            raise RedundancyError(f"{name}={items!r} has a non-integer entry {v!r}; every size must be an integer >= {min_value}")
        if v < min_value:
            raise RedundancyError(f"{name}={items!r} has an entry {v} below {min_value}; every size must be an integer >= {min_value}")
        out.append(int(v))
    return tuple(out)


def check_tuple(name: str, value: Any, n: int, *, min_value: int = 1) -> tuple[int, ...]:
    """Expand an int to an ``n``-tuple, or check a sequence has length ``n``; entries >= ``min_value``."""
    if _is_int(value):
        value = (value,) * n
    return check_shape(name, value, min_len=n, max_len=n, min_value=min_value)


def check_module(name: str, value: Any):
    """Raise unless ``value`` is a ``torch.nn.Module``."""
    import torch

    if not isinstance(value, torch.nn.Module):
        raise RedundancyError(
            f"{name} must be a torch.nn.Module; got {type(value).__name__} ({value!r:.60})")
    return value


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """Raise unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise RedundancyError(f"{name}={value!r} is not allowed; choose one of {list(choices)!r}")
    return value


def check_ranks(name: str, ranks: Any, upper: Sequence[int], *, labels: Sequence[str] | None = None,
                context: str = "") -> tuple[int, ...]:
    """Check ranks against mode sizes: each rank an integer in ``[1, upper[i]]``.

    Raises :class:`~redundancy.errors.RankError` naming the offending mode.
    """
    n = len(upper)
    if _is_int(ranks):
        ranks = (ranks,) * n
    if not isinstance(ranks, Iterable) or isinstance(ranks, (str, bytes)):
        raise RankError(f"{name}={ranks!r} is not a rank tuple{context}; give {n} positive integers")
    ranks = tuple(ranks)
    if len(ranks) != n:
        raise RankError(f"{name}={ranks!r} has {len(ranks)} entries{context}; it must have {n}")
    labels = list(labels) if labels is not None else [f"mode {i}" for i in range(n)]
    for r, u, lab in zip(ranks, upper, labels):
        if not _is_int(r) or r < 1 or r > u:
            raise RankError(
                f"{name}={ranks!r}: rank {r!r} for {lab} is not allowed{context}; "
                f"each rank must be an integer in [1, {u}]")
    return tuple(int(r) for r in ranks)


def as_generator(seed: Any) -> np.random.Generator:
    """Return a NumPy Generator from ``None``, an int seed or a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or _is_int(seed):
        if seed is not None and seed < 0:
            raise RedundancyError(f"seed={seed} is negative; seed must be None, an integer >= 0 or a numpy Generator")
        return np.random.default_rng(seed)
    raise RedundancyError(f"seed={seed!r} is not allowed; seed must be None, an integer >= 0 or a numpy Generator")
