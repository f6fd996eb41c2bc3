"""Limits on sizes and counts, and the small helpers every check uses (a short ``repr``, int and float tests)."""

from __future__ import annotations

import math
import numbers
import os
from typing import Any

import numpy as np



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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

