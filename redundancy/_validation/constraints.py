"""Declarative validation (scikit-learn's ``validate_params``): constraints mapped to arguments by one
decorator per public function, and :func:`model_errors` for functions that run the caller's model."""

from __future__ import annotations

import abc
import functools
import inspect
import os
from collections.abc import Iterable, Sequence
from typing import Any, Callable

from redundancy._validation.checks import (check_array, check_bool, check_choice, check_finite_module,
                                           check_float, check_int, check_materialised, check_module, check_seed,
                                           check_shape)
from redundancy._validation.limits import _first_line, _short
from redundancy.errors import RedundancyError



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
        if value.layout != torch.strided:
            raise RedundancyError(f"{name} is a {value.layout} tensor; give a dense tensor (tensor.to_dense())")
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
