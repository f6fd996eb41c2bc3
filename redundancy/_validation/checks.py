"""Imperative checks: each ``check_*`` returns the normalised value or raises a
:class:`~redundancy.errors.RedundancyError` naming the argument, the value and what is allowed."""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import numpy as np

from redundancy._validation.limits import (MAX_BYTES, MAX_NUMEL, MAX_SEED, _as_finite_float, _first_line,
                                           _is_int, _short)
from redundancy.errors import RankError, RedundancyError



# ----------------------------------------------------------------------------------- scalars
def check_int(name: str, value: Any, *, min_value: int | None = None,
              max_value: int | None = None) -> int:
    """Return ``value`` as ``int`` or raise naming ``name`` and the allowed range."""
    lo = "-inf" if min_value is None else str(min_value)
    hi = "inf" if max_value is None else f"{max_value}"
    if not _is_int(value):
        raise RedundancyError(
            f"{name}={_short(value)} is not an integer; {name} must be an integer in [{lo}, {hi}]")
    value = int(value)
    if (min_value is not None and value < min_value) or (max_value is not None and value > max_value):
        raise RedundancyError(f"{name}={_short(value)} is out of range; {name} must be an integer in [{lo}, {hi}]")
    return value


def check_float(name: str, value: Any, *, min_value: float | None = None, max_value: float | None = None,
                min_inclusive: bool = True, max_inclusive: bool = True) -> float:
    """Return ``value`` as a finite float in the given range or raise naming the range."""
    lo = "-inf" if min_value is None else f"{min_value:g}"
    hi = "inf" if max_value is None else f"{max_value:g}"
    rng = f"{'[' if min_inclusive else '('}{lo}, {hi}{']' if max_inclusive else ')'}"
    v = _as_finite_float(value)
    bad = v is None
    if not bad and min_value is not None:
        bad = v < min_value or (not min_inclusive and v == min_value)
    if not bad and max_value is not None:
        bad = v > max_value or (not max_inclusive and v == max_value)
    if bad:
        raise RedundancyError(f"{name}={_short(value)} is not allowed; {name} must be a finite number in {rng}")
    return v


def check_positive_float(name: str, value: Any) -> float:
    """Return ``value`` as a finite float > 0 or raise."""
    v = _as_finite_float(value)
    if v is None or v <= 0:
        raise RedundancyError(f"{name}={_short(value)} is not allowed; {name} must be a finite number > 0")
    return v


def check_nonnegative_float(name: str, value: Any) -> float:
    """Return ``value`` as a finite float >= 0 or raise."""
    v = _as_finite_float(value)
    if v is None or v < 0:
        raise RedundancyError(f"{name}={_short(value)} is not allowed; {name} must be a finite number >= 0")
    return v


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` as ``bool`` (Python or numpy bool only) or raise."""
    if not isinstance(value, (bool, np.bool_)):
        raise RedundancyError(f"{name}={_short(value)} is not allowed; {name} must be True or False")
    return bool(value)


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """Raise unless ``value`` is one of ``choices`` (same type and equal)."""
    try:
        ok = isinstance(value, Hashable) and any(type(value) is type(c) and value == c for c in choices)
    except Exception:  # noqa: BLE001 - an object whose == fails is not a choice
        ok = False
    if not ok:
        raise RedundancyError(f"{name}={_short(value)} is not allowed; choose one of {list(choices)!r}")
    return value


def check_seed(name: str, value: Any, *, allow_none: bool = False, allow_generator: bool = False) -> Any:
    """An integer seed in ``[0, MAX_SEED]`` (or ``None`` / a numpy Generator where allowed)."""
    if value is None and allow_none:
        return None
    if allow_generator and isinstance(value, np.random.Generator):
        return value
    if _is_int(value) and 0 <= value <= MAX_SEED:
        return int(value)
    extra = (", None" if allow_none else "") + (" or a numpy Generator" if allow_generator else "")
    raise RedundancyError(f"{name}={_short(value)} is not allowed; {name} must be an integer in "
                          f"[0, {MAX_SEED}]{extra}")


# ----------------------------------------------------------------------------------- shapes
def check_shape(name: str, value: Any, *, min_len: int = 1, max_len: int | None = None,
                min_value: int = 1, max_numel: int | None = None) -> tuple[int, ...]:
    """Return a tuple of ints (a shape) or raise.

    A single integer is accepted as a shape of length one. Every entry is at most :data:`MAX_NUMEL`;
    the product of the sizes is bounded by ``max_numel`` (default :data:`MAX_NUMEL` when ``name``
    names a shape, e.g. ``input_shape``), so an absurd shape is refused before anything is allocated.
    """
    if _is_int(value):
        value = (value,)
    if (not isinstance(value, Iterable) or isinstance(value, (str, bytes, dict, set, frozenset))
            or getattr(value, "ndim", 1) == 0):
        raise RedundancyError(f"{name}={_short(value)} is not a shape; {name} must be a tuple of integers")
    items = tuple(value)
    allowed = f"{min_len}" if max_len == min_len else f"{min_len}..{max_len if max_len is not None else 'any'}"
    if len(items) < min_len or (max_len is not None and len(items) > max_len):
        raise RedundancyError(
            f"{name}={_short(items)} has {len(items)} entries; {name} must have {allowed} entries")
    out = []
    for v in items:
        if not _is_int(v):
            raise RedundancyError(f"{name}={_short(items)} has a non-integer entry {_short(v, 20)}; "
                                  f"every size must be an integer >= {min_value}")
        if v < min_value:
            raise RedundancyError(f"{name}={_short(items)} has an entry {v} below {min_value}; "
                                  f"every size must be an integer >= {min_value}")
        if v > MAX_NUMEL:
            raise RedundancyError(f"{name}={_short(items)} has an entry {_short(v, 30)} above the limit "
                                  f"{MAX_NUMEL:,}")
        out.append(int(v))
    limit = max_numel if max_numel is not None else (MAX_NUMEL if "shape" in name else None)
    numel = math.prod(max(v, 1) for v in out)
    if limit is not None and numel > limit:
        raise RedundancyError(f"{name}={_short(tuple(out))} has {numel:.3g} elements; the limit is {limit:,}")
    return tuple(out)


def check_tuple(name: str, value: Any, n: int, *, min_value: int = 1) -> tuple[int, ...]:
    """Expand an int to an ``n``-tuple, or check a sequence has length ``n``; entries >= ``min_value``."""
    if _is_int(value):
        value = (value,) * n
    return check_shape(name, value, min_len=n, max_len=n, min_value=min_value)


def check_ranks(name: str, ranks: Any, upper: Sequence[int], *, labels: Sequence[str] | None = None,
                context: str = "") -> tuple[int, ...]:
    """Check ranks against mode sizes: each rank an integer in ``[1, upper[i]]``.

    Raises :class:`~redundancy.errors.RankError` naming the offending mode.
    """
    n = len(upper)
    if _is_int(ranks):
        ranks = (ranks,) * n
    if not isinstance(ranks, Iterable) or isinstance(ranks, (str, bytes, dict, set)) or getattr(ranks, "ndim", 1) == 0:
        raise RankError(f"{name}={_short(ranks)} is not a rank tuple{context}; give {n} positive integers")
    ranks = tuple(ranks)
    if len(ranks) != n:
        raise RankError(f"{name}={_short(ranks)} has {len(ranks)} entries{context}; it must have {n}")
    labels = list(labels) if labels is not None else [f"mode {i}" for i in range(n)]
    for r, u, lab in zip(ranks, upper, labels):
        if not _is_int(r) or r < 1 or r > u:
            raise RankError(
                f"{name}={_short(ranks)}: rank {_short(r, 20)} for {lab} is not allowed{context}; "
                f"each rank must be an integer in [1, {u}]")
    return tuple(int(r) for r in ranks)


def check_memory(what: str, n_elements: int, itemsize: int = 8, *, limit: int | None = None) -> None:
    """Refuse to allocate ``n_elements * itemsize`` bytes above ``limit`` (default :data:`MAX_BYTES`)."""
    limit = MAX_BYTES if limit is None else limit
    need = int(n_elements) * int(itemsize)
    if need > limit:
        raise RedundancyError(f"{what} would need {need / 2 ** 30:.3g} GiB ({int(n_elements):,} elements); "
                              f"the limit is {limit / 2 ** 30:.3g} GiB (set REDUNDANCY_MAX_BYTES to change it)")


# ----------------------------------------------------------------------------------- arrays
def check_array(name: str, value: Any, *, min_ndim: int = 0, max_ndim: int | None = None,
                finite: bool = True, min_size: int = 1, max_numel: int | None = None,
                dtype=np.float64) -> np.ndarray:
    """Return ``value`` as a numpy array of ``dtype`` (real numbers only) or raise.

    Accepts numpy arrays, torch tensors (detached, moved to CPU) and nested sequences of numbers.
    """
    try:
        import torch

        if isinstance(value, torch.Tensor):
            if value.is_meta:
                raise RedundancyError(f"{name} is a meta tensor (no data); give a tensor with values")
            if value.layout != torch.strided:
                raise RedundancyError(f"{name} is a {value.layout} tensor; give a dense tensor (tensor.to_dense())")
            value = value.detach().cpu()
            if value.is_complex():
                raise RedundancyError(f"{name} is complex; {name} must hold real numbers")
            value = value.to(torch.float64).numpy() if value.dtype == torch.bfloat16 else value.numpy()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(value, (str, bytes)) or value is None or isinstance(value, (dict, set)):
        raise RedundancyError(f"{name}={_short(value)} is not an array of numbers")
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise RedundancyError(f"{name}={_short(value)} is not an array of numbers ({_first_line(exc)})") from None
    if arr.dtype.kind not in "biuf":
        raise RedundancyError(f"{name} has dtype {arr.dtype} ({_short(value)}); {name} must hold real numbers")
    if arr.ndim < min_ndim or (max_ndim is not None and arr.ndim > max_ndim):
        want = f">= {min_ndim}" if max_ndim is None else (f"{min_ndim}" if min_ndim == max_ndim
                                                           else f"{min_ndim}..{max_ndim}")
        raise RedundancyError(f"{name} has {arr.ndim} dimensions (shape {arr.shape}); {name} must have {want}")
    if arr.size < min_size:
        raise RedundancyError(f"{name} has shape {arr.shape} with {arr.size} elements; it needs >= {min_size}")
    limit = MAX_NUMEL if max_numel is None else max_numel
    if arr.size > limit:
        raise RedundancyError(f"{name} has {arr.size:,} elements; the limit is {limit:,}")
    try:
        arr = arr.astype(dtype, copy=False)
    except OverflowError as exc:  # pragma: no cover - huge python ints in an object array
        raise RedundancyError(f"{name} holds numbers too large for {np.dtype(dtype)}") from exc
    if finite and arr.dtype.kind == "f" and not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise RedundancyError(f"{name} holds {bad} NaN or infinite value(s); every entry must be finite")
    return arr


# ----------------------------------------------------------------------------------- modules
def check_module(name: str, value: Any):
    """Raise unless ``value`` is a ``torch.nn.Module``."""
    import torch

    if not isinstance(value, torch.nn.Module):
        raise RedundancyError(
            f"{name} must be a torch.nn.Module; got {type(value).__name__} ({_short(value)})")
    return value


def check_materialised(name: str, module: Any):
    """Raise unless every parameter and buffer of ``module`` holds data: no lazy
    (uninitialised) parameter, no meta-device tensor."""
    import torch
    from torch.nn.parameter import UninitializedBuffer, UninitializedParameter

    check_module(name, module)
    for pname, t in list(module.named_parameters()) + list(module.named_buffers()):
        if isinstance(t, (UninitializedParameter, UninitializedBuffer)):
            raise RedundancyError(
                f"{name} has an uninitialised (lazy) parameter '{pname}'; run one forward pass on a "
                "real input first (or replace the Lazy* layer) so the weights exist")
        if isinstance(t, torch.Tensor) and t.is_meta:
            raise RedundancyError(
                f"{name} has parameter '{pname}' on the meta device (no values); materialise it first, "
                "e.g. model.to_empty(device='cpu') and load the weights")
    return module


def check_finite_module(name: str, module: Any):
    """:func:`check_materialised`, and every floating parameter and buffer finite (no NaN/inf)."""
    import torch

    check_materialised(name, module)
    for pname, t in list(module.named_parameters()) + list(module.named_buffers()):
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t.detach()).all()):
            raise RedundancyError(f"{name} has NaN or infinite values in '{pname}'; every weight must be finite")
    return module


# ----------------------------------------------------------------------------------- results
def _all_finite(value: Any) -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover
        torch = None
    if torch is not None and isinstance(value, torch.Tensor):
        return not (value.is_floating_point() or value.is_complex()) or bool(torch.isfinite(value.detach()).all())
    if isinstance(value, (tuple, list)):
        return all(_all_finite(v) for v in value)
    try:
        return bool(np.isfinite(np.asarray(value, dtype=np.float64)).all())
    except (TypeError, ValueError, OverflowError):
        return False


def check_finite_result(what: str, value: Any, hint: str = "") -> Any:
    """Refuse a non-finite result (overflow at extreme arguments) instead of returning it.

    ``value`` is a number, an array, a tensor, or a tuple/list of them; it is returned unchanged.
    """
    if not _all_finite(value):
        raise RedundancyError(f"{what} is not finite (overflow or NaN at these arguments){'; ' + hint if hint else ''}")
    return value


def check_param_count(what: str, n: int, limit: int) -> None:
    """Refuse to build a network of ``n`` parameters above ``limit`` (sized before anything is allocated)."""
    if n > limit:
        raise RedundancyError(f"{what} would have {n:,} parameters; the limit is {limit:,} "
                              "(use smaller widths or a smaller input_shape)")


def as_generator(seed: Any) -> np.random.Generator:
    """Return a NumPy Generator from ``None``, an int seed in ``[0, MAX_SEED]`` or a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(check_seed("seed", seed, allow_none=True, allow_generator=True))
