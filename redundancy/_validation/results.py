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


# --------------------------------------------------------------------------------------------------
# The one result base.
# --------------------------------------------------------------------------------------------------

#: ``dataclasses.field(metadata=NOT_EXPORTED)`` keeps a field (a model, a large array) out of
#: :meth:`Result.to_dict` and the repr.
NOT_EXPORTED = {"export": False}


def _plain(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON-ready Python: arrays and tensors to lists, results to dicts, keys to str."""
    if value is None or isinstance(value, (bool, str, int, float)):
        return value
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return value.to_dict()
    try:
        import torch
    except ImportError:  # pragma: no cover
        torch = None
    if torch is not None:
        if isinstance(value, torch.Tensor):
            return value.detach().cpu().tolist()
        if isinstance(value, torch.dtype):
            return str(value)
    if depth > 8:
        return repr(value)
    if isinstance(value, dict):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (tuple, list, set, frozenset)):
        return [_plain(v, depth + 1) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value)
                if f.metadata.get("export", True)}
    if isinstance(value, numbers.Real):
        return float(value)
    return str(value)


def _short_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, np.ndarray):
        return f"array(shape={value.shape})"
    if isinstance(value, (list, tuple)) and len(value) > 6:
        return f"<{len(value)} items>"
    if isinstance(value, dict) and len(value) > 6:
        return f"<{len(value)} entries>"
    if type(value).__name__ == "Tensor":
        return f"tensor(shape={tuple(value.shape)})"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_SCALAR_TYPES = {"int": numbers.Integral, "float": numbers.Real, "bool": (bool, np.bool_), "str": str}


def _check_scalar_fields(obj: Any) -> None:
    """Refuse a value of the wrong kind in a field annotated ``int``, ``float``, ``bool`` or ``str``
    (optionally ``| None``): an array in a count, a string in a float, before the class's own code
    formats or compares it."""
    for f in dataclasses.fields(obj):
        ann = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
        parts = [a.strip() for a in ann.split("|")]
        optional = "None" in parts
        kinds = [a for a in parts if a != "None"]
        if len(kinds) != 1 or kinds[0] not in _SCALAR_TYPES:
            continue
        value = getattr(obj, f.name, None)
        if value is None and optional:
            continue
        want = _SCALAR_TYPES[kinds[0]]
        ok = isinstance(value, want) and (kinds[0] in ("bool", "str") or not isinstance(value, (bool, np.bool_)))
        if not ok:
            raise RedundancyError(f"{type(obj).__name__}.{f.name}={_short_value(value)} is not allowed; "
                                  f"{f.name} must be {'a' if kinds[0] != 'int' else 'an'} {kinds[0]}"
                                  + (" or None" if optional else ""))


class Result:
    """Base of every result object: keyword-only, frozen, self-checking, exportable.

    Subclasses are declared with :func:`result` (which applies ``dataclass(frozen=True,
    kw_only=True)``); they get from here

    - :meth:`to_dict`: every exported field (``metadata=NOT_EXPORTED`` leaves one out) as JSON-ready
      Python, plus whatever :meth:`_extra_dict` adds (derived quantities);
    - :meth:`to_json`: that dictionary as JSON text, optionally written to a file;
    - :meth:`to_pandas`: a one-row table of the scalar entries (subclasses with a natural table
      override it);
    - a short ``repr`` of the fields declared with ``repr=True``.

    Examples
    --------
    >>> @result(allow=("gap",))
    ... class R(Result):
    ...     rank: int
    ...     gap: float
    >>> r = R(rank=3, gap=float("inf"))
    >>> r.to_dict()
    {'rank': 3, 'gap': inf}
    >>> r
    R(rank=3, gap=inf)
    """

    __slots__ = ()

    def _extra_dict(self) -> dict[str, Any]:
        """Derived entries added to :meth:`to_dict` (none by default)."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)
               if f.metadata.get("export", True)}
        out.update({k: _plain(v) for k, v in self._extra_dict().items()})
        return out

    def to_json(self, path: Any = None, *, indent: int = 2) -> str:
        """The result as JSON text (also written to ``path`` when one is given)."""
        import json
        from pathlib import Path

        text = json.dumps(self.to_dict(), indent=indent, default=str)
        if path is not None:
            Path(path).write_text(text)
        return text

    def to_pandas(self):
        """A one-row :class:`pandas.DataFrame` of the scalar entries of :meth:`to_dict`."""
        import pandas as pd

        row = {k: v for k, v in self.to_dict().items() if v is None or isinstance(v, (bool, int, float, str))}
        return pd.DataFrame([row])

    def __repr__(self) -> str:
        parts = [f"{f.name}={_short_value(getattr(self, f.name))}" for f in dataclasses.fields(self)
                 if f.repr and f.metadata.get("export", True)]
        return f"{type(self).__name__}({', '.join(parts)})"


def result(cls=None, *, allow: tuple[str, ...] = ()):
    """Class decorator that makes ``cls`` (a :class:`Result` subclass) a frozen keyword-only dataclass
    whose construction refuses NaN/inf in any field outside ``allow``.

    A name in ``allow`` that is not a field is a ``TypeError`` when the class is created (a misspelled
    allowance is never silently ignored). Inherited allowances are kept.

    Examples
    --------
    >>> @result(allow=("gapp",))
    ... class Bad(Result):
    ...     gap: float
    Traceback (most recent call last):
    ...
    TypeError: Bad: allow names ['gapp'], which are not fields (fields: ['gap'])
    """
    def deco(klass):
        if not issubclass(klass, Result):
            raise TypeError(f"{klass.__name__}: @result needs a subclass of Result")
        own_repr = "__repr__" in klass.__dict__
        own = klass.__dict__.get("__post_init__")
        if own is None:  # a parent's own check still runs (not the parent's wrapper, which would check twice)
            inherited = getattr(klass, "__post_init__", None)
            own = getattr(inherited, "_own", inherited)

        def __post_init__(self):
            _check_scalar_fields(self)
            if own is not None:
                own(self)
            check_result_fields(self, allow=type(self)._allow_nonfinite)

        __post_init__._own = own
        __post_init__.__doc__ = "Refuse NaN/inf fields" + (f" (except {', '.join(allow)})" if allow else "") + "."
        klass.__post_init__ = __post_init__  # before dataclass(): its __init__ calls it only if it exists
        klass = dataclasses.dataclass(frozen=True, kw_only=True, repr=False)(klass)
        names = [f.name for f in dataclasses.fields(klass)]
        unknown = sorted(set(allow) - set(names))
        if unknown:
            raise TypeError(f"{klass.__name__}: allow names {unknown}, which are not fields (fields: {names})")
        inherited_allow = tuple(getattr(klass, "_allow_nonfinite", ()))
        klass._allow_nonfinite = tuple(dict.fromkeys(inherited_allow + tuple(allow)))
        if not own_repr:
            klass.__repr__ = Result.__repr__
        return klass
    return deco if cls is None else deco(cls)
