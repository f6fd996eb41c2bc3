"""Run one call and classify what happened.

Classes (in this order of precedence):

``ok``
    the call returned, the result (and its ``repr``, ``to_dict``, ``to_pandas`` where present)
    holds no NaN/inf outside the documented fields, and the oracle (if any) agrees;
``clear``
    a :class:`~redundancy.errors.RedundancyError` whose message is one non-empty line;
``raw``
    any other exception (or a RedundancyError with an empty or multi-line message);
``nonfinite``
    a NaN or inf in the result;
``hang``
    the call did not finish within the per-call time limit (a worker thread is used; the stuck call
    is interrupted with an asynchronous exception and counted);
``wrong``
    the call returned, but an independent oracle disagrees.

Only ``ok`` and ``clear`` pass.
"""

from __future__ import annotations

import ctypes
import dataclasses
import math
import os
import threading
import warnings
from collections import Counter, defaultdict
from typing import Any, Callable

import numpy as np

CLASSES = ("ok", "clear", "raw", "nonfinite", "hang", "wrong")
PASSING = ("ok", "clear")

#: counts[target][class]; the fuzz conftest prints them at the end of the session
COUNTS: dict[str, Counter] = defaultdict(Counter)
#: one example detail per (target, failing class)
EXAMPLES: dict[tuple[str, str], str] = {}

TIME_LIMIT = float(os.environ.get("FUZZ_TIMEOUT", "20"))

#: result fields documented as possibly infinite (a rank gap of inf for an exact rank)
DOCUMENTED_NONFINITE = ("gap", "rank_gap", "gaps")


class CallTimeout(BaseException):
    """Raised asynchronously inside a call that ran past the time limit."""


class Outcome:
    def __init__(self, cls: str, detail: str = "", value: Any = None):
        self.cls, self.detail, self.value = cls, detail, value

    def __repr__(self) -> str:
        return f"Outcome({self.cls!r}, {self.detail[:300]!r})"


def _run_with_timeout(fn: Callable[[], Any], limit: float):
    box: dict[str, Any] = {}

    def target():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                box["value"] = fn()
        except CallTimeout:
            box["timeout"] = True
        except BaseException as exc:  # noqa: BLE001 - classified by the caller
            box["exc"] = exc

    th = threading.Thread(target=target, daemon=True)
    th.start()
    th.join(limit)
    if th.is_alive():
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(th.ident), ctypes.py_object(CallTimeout))
        th.join(5.0)
        return "hang", None
    if "timeout" in box:
        return "hang", None
    if "exc" in box:
        return "exc", box["exc"]
    return "value", box.get("value")


def nonfinite_paths(value: Any, allowed: tuple[str, ...] = (), path: str = "result", depth: int = 0,
                    seen: set | None = None) -> list[str]:
    """Paths of NaN/inf inside ``value`` (floats, arrays, tensors, dataclasses, dicts, lists, modules)."""
    import torch

    seen = set() if seen is None else seen
    if "*" in allowed or depth > 6 or id(value) in seen:
        return []
    name = path.rsplit(".", 1)[-1].split("[")[0]
    if name in allowed or path in allowed:
        return []
    if isinstance(value, bool) or value is None or isinstance(value, (str, bytes, int)):
        return []
    if isinstance(value, float) or isinstance(value, np.floating):
        return [] if math.isfinite(value) else [f"{path}={value}"]
    if isinstance(value, complex):
        return [] if math.isfinite(abs(value)) else [f"{path}={value}"]
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "fc" and value.size and not np.isfinite(value).all():
            return [f"{path} (array {value.shape})"]
        if value.dtype == object:
            out = []
            for i, v in enumerate(value.reshape(-1)[:200]):
                out += nonfinite_paths(v, allowed, f"{path}[{i}]", depth + 1, seen)
            return out
        return []
    if isinstance(value, torch.Tensor):
        if value.is_meta or not value.is_floating_point():
            return []
        t = value.detach()
        return [] if bool(torch.isfinite(t).all()) else [f"{path} (tensor {tuple(t.shape)})"]
    seen.add(id(value))
    if isinstance(value, torch.nn.Module):
        return [p for n, t in list(value.state_dict().items())[:500]
                for p in nonfinite_paths(t, allowed, f"{path}.{n}", depth + 1, seen)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = []
        for f in dataclasses.fields(value):
            out += nonfinite_paths(getattr(value, f.name, None), allowed, f"{path}.{f.name}", depth + 1, seen)
        return out
    if isinstance(value, dict):
        out = []
        for k, v in list(value.items())[:500]:
            out += nonfinite_paths(v, allowed, f"{path}.{k}", depth + 1, seen)
        return out
    if isinstance(value, (list, tuple)):
        out = []
        for i, v in enumerate(value[:500]):
            out += nonfinite_paths(v, allowed, f"{path}[{i}]", depth + 1, seen)
        return out
    try:
        import pandas as pd

        if isinstance(value, pd.DataFrame):
            num = value.select_dtypes("number")
            num = num[[c for c in num.columns if c not in allowed]]
            if num.size and np.isinf(num.to_numpy(dtype=float)).any():  # NaN = a missing (None) entry
                return [f"{path} (frame)"]
    except ImportError:  # pragma: no cover
        pass
    return []


def _is_clear(exc: BaseException) -> tuple[bool, str]:
    from redundancy.errors import RedundancyError

    msg = str(exc)
    if not isinstance(exc, RedundancyError):
        return False, f"{type(exc).__name__}: {msg[:400]}"
    if not msg.strip() or "\n" in msg.strip():
        return False, f"RedundancyError with an empty or multi-line message: {msg[:400]!r}"
    return True, msg


def classify(fn: Callable[[], Any], *, allowed_nonfinite: tuple[str, ...] = (),
             oracle: Callable[[Any], str | None] | None = None, limit: float | None = None,
             inspect_result: bool = True) -> Outcome:
    """Call ``fn()`` under the time limit and classify the outcome (see the module docstring)."""
    limit = TIME_LIMIT if limit is None else limit

    def call_and_inspect():
        value = fn()
        extras = {}
        if inspect_result and value is not None:
            extras["repr"] = repr(value)
            for meth in ("to_dict", "to_pandas"):
                m = getattr(value, meth, None)
                if callable(m) and not isinstance(value, type):
                    extras[meth] = m()
        return value, extras

    allowed_nonfinite = tuple(allowed_nonfinite) + DOCUMENTED_NONFINITE
    kind, got = _run_with_timeout(call_and_inspect, limit)
    if kind == "hang":
        return Outcome("hang", f"no answer within {limit:g} s")
    if kind == "exc":
        ok, detail = _is_clear(got)
        return Outcome("clear" if ok else "raw", detail)
    value, extras = got
    bad = nonfinite_paths(value, allowed_nonfinite) + nonfinite_paths(extras, allowed_nonfinite, "extras")
    if bad:
        return Outcome("nonfinite", "; ".join(bad[:5]), value)
    if oracle is not None:
        kind2, why = _run_with_timeout(lambda: oracle(value), limit)
        if kind2 == "exc":
            return Outcome("wrong", f"oracle raised {type(why).__name__}: {why}", value)
        if kind2 == "value" and why:
            return Outcome("wrong", str(why), value)
    return Outcome("ok", "", value)


def record(target: str, outcome: Outcome, args_text: str = "") -> None:
    COUNTS[target][outcome.cls] += 1
    if outcome.cls not in PASSING:
        EXAMPLES.setdefault((target, outcome.cls), f"{args_text[:400]} -> {outcome.detail[:400]}")


def totals() -> Counter:
    out = Counter({c: 0 for c in CLASSES})
    for c in COUNTS.values():
        out.update(c)
    return out


def summary_lines() -> list[str]:
    tot = totals()
    lines = ["fuzz counts: " + "  ".join(f"{c}={tot[c]}" for c in CLASSES) + f"  (calls={sum(tot.values())})"]
    for (target, cls), ex in sorted(EXAMPLES.items()):
        lines.append(f"  {cls:9s} {target}: {ex}")
    return lines
