"""Result objects check themselves: no NaN or inf in a field unless the class documents it.

``@finite_result(allow=("gap",))`` placed *under* ``@dataclass`` gives the class a ``__post_init__``
(running any ``__post_init__`` it already has first) that walks every field (numbers, numpy arrays,
torch tensors, and tuples, lists and dicts of them) and raises a
:class:`~redundancy.errors.RedundancyError` naming the class, the field and what was found. A result
built by the library therefore never carries a silent NaN, and neither does one a caller builds by
hand.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, Iterable

import numpy as np

from redundancy.errors import RedundancyError

__all__ = ["finite_result", "check_result_fields"]

_MAX_DEPTH = 4


def _bad(value: Any, depth: int = 0) -> str | None:
    """A description of the first non-finite entry of ``value``, or ``None`` when all are finite."""
    if value is None or isinstance(value, (bool, np.bool_, str, bytes)):
        return None
    if isinstance(value, numbers.Real):
        try:
            v = float(value)
        except OverflowError:
            return f"{str(value)[:20]}... (too large for a float)"
        return None if math.isfinite(v) else repr(v)
    if isinstance(value, numbers.Complex):
        return None if math.isfinite(abs(value)) else repr(value)
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "fc" and value.size and not np.isfinite(value).all():
            return f"{int((~np.isfinite(value)).sum())} NaN/inf entries in an array of shape {value.shape}"
        return None
    try:
        import torch
    except ImportError:  # pragma: no cover
        torch = None
    if torch is not None and isinstance(value, torch.Tensor):
        if value.is_meta or not (value.is_floating_point() or value.is_complex()) or value.numel() == 0:
            return None
        ok = bool(torch.isfinite(value.detach()).all())
        return None if ok else f"NaN/inf entries in a tensor of shape {tuple(value.shape)}"
    if depth >= _MAX_DEPTH:
        return None
    if isinstance(value, dict):
        items: Iterable = value.values()
    elif isinstance(value, (tuple, list)):
        items = value
    else:
        return None
    for item in items:
        found = _bad(item, depth + 1)
        if found is not None:
            return found
    return None


def check_result_fields(obj: Any, *, allow: tuple[str, ...] = ()) -> None:
    """Raise unless every field of the dataclass ``obj`` (outside ``allow``) is finite.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class R:
    ...     x: float
    >>> check_result_fields(R(1.0))
    >>> check_result_fields(R(float("nan")))
    Traceback (most recent call last):
    ...
    redundancy.errors.RedundancyError: R.x holds nan; a result field must be finite
    """
    for f in dataclasses.fields(obj):
        if f.name in allow:
            continue
        found = _bad(getattr(obj, f.name, None))
        if found is not None:
            raise RedundancyError(f"{type(obj).__name__}.{f.name} holds {found}; a result field must be finite")


def finite_result(*, allow: tuple[str, ...] = ()):
    """Class decorator (put it under ``@dataclass``): construction refuses non-finite fields.

    ``allow`` names the fields documented as possibly non-finite (e.g. a rank gap of ``inf``).

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... @finite_result(allow=("gap",))
    ... class R:
    ...     dof: int
    ...     gap: float
    >>> R(3, float("inf")).gap
    inf
    >>> R(float("nan"), 1.0)
    Traceback (most recent call last):
    ...
    redundancy.errors.RedundancyError: R.dof holds nan; a result field must be finite
    """
    def deco(cls):
        own = cls.__dict__.get("__post_init__")

        def __post_init__(self):
            if own is not None:
                own(self)
            check_result_fields(self, allow=allow)

        __post_init__.__doc__ = "Refuse NaN/inf fields" + (f" (except {', '.join(allow)})" if allow else "") + "."
        cls.__post_init__ = __post_init__
        return cls
    return deco
