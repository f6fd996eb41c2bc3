"""Argument checks at the edge of the public API, declarative and shared.

Each ``check_*`` helper either returns a normalised value or raises a
:class:`~redundancy.errors.RedundancyError` whose message names the argument, the value received
and what is allowed, e.g. ``input_shape=(3, -1) has an entry -1 below 1; every size must be an
integer >= 1``. Upper bounds on sizes and counts are part of the checks (the limit is stated in the
message), so an absurd request is refused before anything is allocated or looped over.

:func:`validate_params` is the declarative form (scikit-learn's ``validate_params``): one decorator
per public function maps each argument to a constraint (:class:`Int`, :class:`Float`,
:class:`Shape`, :class:`Choice`, :class:`Module`, :class:`Seed`, ...). Only the arguments the
caller passed are checked (defaults are trusted); an unknown keyword argument is a
:class:`~redundancy.errors.RedundancyError` naming the allowed ones.

Limits (override with environment variables of the same name, e.g. ``REDUNDANCY_MAX_BYTES``):

- :data:`MAX_NUMEL` elements in one shape (2**27, 1 GiB in float64),
- :data:`MAX_BYTES` bytes for one array the library is about to allocate (4 GiB),
- :data:`MAX_COUNT` for repeat/iteration counts (10**6), :data:`MAX_SEED` for seeds (2**63 - 1).
"""

from __future__ import annotations

import abc

import functools
import inspect
import math
import numbers
import os
from collections.abc import Hashable, Iterable, Sequence
from typing import Any, Callable

import numpy as np

from redundancy.errors import RankError, RedundancyError  # noqa: F401 - RedundancyError re-exported for _v users

__all__ = [
    "check_int",
    "check_float",
    "check_positive_float",
    "check_nonnegative_float",
    "check_bool",
    "check_shape",
    "check_tuple",
    "check_module",
    "check_materialised",
    "check_finite_module",
    "check_choice",
    "check_ranks",
    "check_array",
    "check_memory",
    "check_finite_result",
    "check_seed",
    "as_generator",
    "validate_params",
    "model_errors",
    "MAX_NUMEL",
    "MAX_BYTES",
    "MAX_COUNT",
    "MAX_SEED",
]


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


#: most elements in one shape (input shape, batch x input, kernel, W)
MAX_NUMEL = _env_int("REDUNDANCY_MAX_NUMEL", 2 ** 27)
#: most bytes of one array the library allocates after a check
MAX_BYTES = _env_int("REDUNDANCY_MAX_BYTES", 4 * 2 ** 30)
#: most repeats / iterations / restarts / blocks of any counted loop
MAX_COUNT = _env_int("REDUNDANCY_MAX_COUNT", 10 ** 6)
#: largest seed (numpy and torch both accept it)
MAX_SEED = 2 ** 63 - 1


# ----------------------------------------------------------------------------------- helpers
def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _short(value: Any, width: int = 60) -> str:
    """``repr(value)`` on one line, cut to ``width`` characters (huge ints and arrays stay readable)."""
    if _is_int(value) and abs(int(value)) > 10 ** 30:
        text = f"{'-' if value < 0 else ''}<{len(str(abs(int(value))))}-digit integer>"
    else:
        try:
            text = repr(value)
        except Exception:  # noqa: BLE001 - a repr that fails is not worth a traceback
            text = f"<{type(value).__name__}>"
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 3] + "..."


def _as_finite_float(value: Any) -> float | None:
    """``float(value)`` for a finite real number (not a bool), else ``None`` (10**400, NaN, a string...)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        return None
    try:
        v = float(value)
    except (OverflowError, ValueError, TypeError):
        return None
    return v if math.isfinite(v) else None


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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


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
def check_finite_result(what: str, value: Any, hint: str = "") -> Any:
    """Refuse a non-finite result (overflow at extreme arguments) instead of returning it."""
    try:
        finite = bool(np.isfinite(np.asarray(value, dtype=np.float64)).all())
    except (TypeError, ValueError, OverflowError):
        finite = False
    if not finite:
        raise RedundancyError(f"{what} is not finite (overflow or NaN at these arguments){'; ' + hint if hint else ''}")
    return value


def as_generator(seed: Any) -> np.random.Generator:
    """Return a NumPy Generator from ``None``, an int seed in ``[0, MAX_SEED]`` or a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(check_seed("seed", seed, allow_none=True, allow_generator=True))


# ----------------------------------------------------------------------------------- declarative
class Constraint(abc.ABC):
    """A named check: ``constraint(name, value)`` returns the normalised value or raises."""

    @abc.abstractmethod
    def __call__(self, name: str, value: Any) -> Any:
        """Return ``value`` normalised, or raise a RedundancyError naming ``name``."""

    def __or__(self, other: "Constraint") -> "AnyOf":
        return AnyOf(self, other)


class Int(Constraint):
    def __init__(self, lo: int | None = None, hi: int | None = None):
        self.lo, self.hi = lo, hi

    def __call__(self, name, value):
        return check_int(name, value, min_value=self.lo, max_value=self.hi)


class Float(Constraint):
    def __init__(self, lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
                 hi_open: bool = False):
        self.lo, self.hi, self.lo_open, self.hi_open = lo, hi, lo_open, hi_open

    def __call__(self, name, value):
        return check_float(name, value, min_value=self.lo, max_value=self.hi, min_inclusive=not self.lo_open,
                           max_inclusive=not self.hi_open)


class Bool(Constraint):
    def __call__(self, name, value):
        return check_bool(name, value)


class Choice(Constraint):
    def __init__(self, *choices):
        self.choices = choices

    def __call__(self, name, value):
        return check_choice(name, value, self.choices)


class Shape(Constraint):
    def __init__(self, min_len: int = 1, max_len: int | None = None, *, min_value: int = 1,
                 max_numel: int | None = None):
        self.kw = dict(min_len=min_len, max_len=max_len, min_value=min_value, max_numel=max_numel)

    def __call__(self, name, value):
        return check_shape(name, value, **self.kw)


class Module(Constraint):
    """A torch module; ``materialised`` (no lazy/meta parameters), ``finite`` (no NaN/inf weights)."""

    def __init__(self, *, materialised: bool = True, finite: bool = False):
        self.materialised, self.finite = materialised, finite

    def __call__(self, name, value):
        if self.finite:
            return check_finite_module(name, value)
        return check_materialised(name, value) if self.materialised else check_module(name, value)


class Seed(Constraint):
    def __init__(self, *, allow_none: bool = False, allow_generator: bool = False):
        self.allow_none, self.allow_generator = allow_none, allow_generator

    def __call__(self, name, value):
        return check_seed(name, value, allow_none=self.allow_none, allow_generator=self.allow_generator)


class Array(Constraint):
    def __init__(self, **kw):
        self.kw = kw

    def __call__(self, name, value):
        return check_array(name, value, **self.kw)


class Tensor(Constraint):
    """A torch tensor with values (not meta), finite when floating, ``min_ndim`` dimensions or more."""

    def __init__(self, *, min_ndim: int = 0, finite: bool = True):
        self.min_ndim, self.finite = min_ndim, finite

    def __call__(self, name, value):
        import torch

        if not isinstance(value, torch.Tensor):
            raise RedundancyError(f"{name}={_short(value)} is not a torch.Tensor")
        if value.is_meta:
            raise RedundancyError(f"{name} is a meta tensor (no values)")
        if value.dim() < self.min_ndim:
            raise RedundancyError(f"{name} has shape {tuple(value.shape)}; it needs >= {self.min_ndim} dimensions")
        if self.finite and value.is_floating_point() and not bool(torch.isfinite(value.detach()).all()):
            raise RedundancyError(f"{name} holds NaN or infinite values; every entry must be finite")
        return value


class Instance(Constraint):
    """``isinstance(value, types)``; ``what`` names the expected kind in the message."""

    def __init__(self, types, what: str | None = None):
        self.types = types if isinstance(types, tuple) else (types,)
        self.what = what or " or ".join(t.__name__ for t in self.types)

    def __call__(self, name, value):
        if not isinstance(value, self.types) or isinstance(value, bool) and bool not in self.types:
            raise RedundancyError(f"{name}={_short(value)} is not allowed; {name} must be a {self.what}")
        return value


class CallableArg(Constraint):
    def __call__(self, name, value):
        if not callable(value):
            raise RedundancyError(f"{name}={_short(value)} is not callable")
        return value


class PathArg(Constraint):
    def __call__(self, name, value):
        if not isinstance(value, (str, os.PathLike)) or (isinstance(value, str) and not value):
            raise RedundancyError(f"{name}={_short(value)} is not a path; give a file or directory name")
        return value


class Items(Constraint):
    """A non-string sequence whose items all satisfy ``item`` (returned as a tuple)."""

    def __init__(self, item: Constraint, *, min_len: int = 0, max_len: int | None = None):
        self.item, self.min_len, self.max_len = item, min_len, max_len

    def __call__(self, name, value):
        if (not isinstance(value, Iterable) or isinstance(value, (str, bytes, dict, set))
                or getattr(value, "ndim", 1) == 0):
            raise RedundancyError(f"{name}={_short(value)} is not a sequence")
        items = tuple(value)
        if len(items) < self.min_len or (self.max_len is not None and len(items) > self.max_len):
            hi = "any" if self.max_len is None else self.max_len
            raise RedundancyError(f"{name} has {len(items)} items; it must have {self.min_len}..{hi}")
        return tuple(self.item(f"{name}[{i}]", v) for i, v in enumerate(items))


class AnyOf(Constraint):
    """The first constraint that accepts the value; the message lists every alternative."""

    def __init__(self, *constraints: Constraint):
        self.constraints = constraints

    def __call__(self, name, value):
        msgs = []
        for c in self.constraints:
            try:
                return c(name, value)
            except RedundancyError as exc:
                msgs.append(str(exc))
        raise RedundancyError(" | ".join(dict.fromkeys(msgs)))


class NoneOr(AnyOf):
    def __init__(self, constraint: Constraint):
        super().__init__(constraint)

    def __call__(self, name, value):
        return None if value is None else super().__call__(name, value)


class Check(Constraint):
    """Wrap a plain ``check(name, value)`` function."""

    def __init__(self, fn: Callable[[str, Any], Any]):
        self.fn = fn

    def __call__(self, name, value):
        return self.fn(name, value)


def model_errors(what: str):
    """Decorator for a function that runs the caller's model: an exception raised from inside that
    model's forward (or refused by ``torch.func``: in-place updates of module state) becomes one
    :class:`~redundancy.errors.RedundancyError` naming ``what``; a RedundancyError passes through."""
    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kw):
            try:
                return fn(*args, **kw)
            except RedundancyError:
                raise
            except (RuntimeError, ValueError, TypeError, IndexError, KeyError, AttributeError) as exc:
                raise RedundancyError(f"{what} failed on this model ({type(exc).__name__}: "
                                      f"{_short(_first_line(exc), 200)})") from exc
        return wrapper
    return deco


def validate_params(constraints: dict[str, Constraint | Callable[[str, Any], Any]], *,
                    kwargs: Sequence[str] | None = None):
    """Decorator: check the arguments the caller passed against ``constraints`` before the call.

    ``kwargs`` lists the keys a ``**kwargs`` parameter accepts (anything else is refused with the
    allowed keys in the message). A call that does not bind to the signature (a missing argument,
    an unknown keyword) raises :class:`~redundancy.errors.RedundancyError` rather than ``TypeError``.

    Examples
    --------
    >>> @validate_params({"n": Int(1, 10)})
    ... def f(n):
    ...     return n
    >>> f(3)
    3
    """
    def deco(fn):
        sig = inspect.signature(fn)
        var_kw = next((p.name for p in sig.parameters.values() if p.kind is p.VAR_KEYWORD), None)
        unknown = set(constraints) - set(sig.parameters) - set(kwargs or ())
        if unknown:
            raise TypeError(f"validate_params: {fn.__qualname__} has no parameter(s) {sorted(unknown)}")

        @functools.wraps(fn)
        def wrapper(*args, **kw):
            try:
                bound = sig.bind(*args, **kw)
            except TypeError as exc:
                raise RedundancyError(f"{fn.__name__}(): {_first_line(exc)}") from None
            for name, value in list(bound.arguments.items()):
                if name == var_kw:
                    if kwargs is not None:
                        extra = sorted(set(value) - set(kwargs))
                        if extra:
                            raise RedundancyError(
                                f"{fn.__name__}() got unknown option(s) {extra}; allowed: {sorted(kwargs)}")
                    for k in list(value):
                        if k in constraints:
                            value[k] = constraints[k](k, value[k])
                    continue
                c = constraints.get(name)
                if c is not None:
                    bound.arguments[name] = c(name, value)
            return fn(*bound.args, **bound.kwargs)

        wrapper.__validation__ = dict(constraints)
        return wrapper
    return deco
