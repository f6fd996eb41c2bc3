"""The numbers :class:`~redundancy.plotting.BoundVsCountDisplay` draws: naive parameter count against
degrees of freedom (or the two sample-complexity bounds ``n(eps)`` computed from them), per linear
segment or per model, each with its K/R.

:func:`count_bound_table` reads one or several :class:`~redundancy.analysis.report.RedundancyReport`
(or objects / dicts with the same ``layers`` / ``segments`` rows) and returns a
:class:`CountBoundTable`; the bound is :func:`redundancy.linear.bounds.sample_complexity`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

import redundancy._validation as _v
from redundancy.errors import RedundancyError

__all__ = ["count_bound_table"]  # the face is redundancy.analysis; the rest is importable from here


@_v.result(allow=("kr_ratio",))
class CountBoundTable(_v.Result):
    """One point pair per segment (or model): ``naive`` and ``dof`` (or, with ``eps``, the bounds
    ``n(eps)`` from the naive count and from the dof) and ``kr_ratio`` (NaN where there is none)."""

    labels: list
    naive: np.ndarray
    dof: np.ndarray
    kr_ratio: np.ndarray
    eps: float | None = None
    sigma: float = 1.0


def _get(row, name, default=None):
    if isinstance(row, Mapping):
        return row.get(name, default)
    return getattr(row, name, default)


def _num(v, what: str = "value") -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan
    except OverflowError:
        raise RedundancyError(f"{what}={str(v)[:20]}... is too large for a float; nothing sensible to "
                              "plot on a log axis") from None


def _model_label(rep, i):
    name = _get(rep, "model_name", None)
    if name:
        return str(name)
    summ = _get(rep, "summary", {}) or {}
    return _get(summ, "model", None) or f"model {i}"


def _segments(rep) -> list[dict[str, Any]]:
    """Distinct linear segments of a report with a dof: label, dof, naive count, largest K/R.

    Uses the report's ``segments`` rows (name, dof, naive) when it has them; otherwise groups the
    layer rows by their ``segment`` (taking ``segment_dof`` / ``segment_naive`` once per segment).
    K/R of a segment is the largest ``kr_ratio`` of its layers.
    """
    kr: dict[Any, float] = {}
    first: dict[Any, dict[str, Any]] = {}
    for row in _get(rep, "layers", None) or []:
        seg = _get(row, "segment")
        if seg is None:
            continue
        k = _num(_get(row, "kr_ratio"), "kr_ratio")
        if np.isfinite(k) and not (np.isfinite(kr.get(seg, math.nan)) and kr[seg] >= k):
            kr[seg] = k
        if seg not in first:
            first[seg] = {"label": str(_get(row, "name", seg)), "dof": _num(_get(row, "segment_dof"), "segment_dof"),
                          "naive": _num(_get(row, "segment_naive"), "segment_naive"), "n": 0}
        first[seg]["n"] += 1
    segs = _get(rep, "segments", None)
    if segs:
        items = [(_get(r, "name"), str(_get(r, "name")), _num(_get(r, "dof"), "dof"),
                  _num(_get(r, "naive"), "naive")) for r in segs]
    else:
        items = [(seg, f["label"] + ("…" if f["n"] > 1 else ""), f["dof"], f["naive"])
                 for seg, f in first.items()]
    return [{"label": label, "dof": d, "naive": n, "kr": kr.get(seg, math.nan)}
            for seg, label, d, n in items if np.isfinite(d) and np.isfinite(n)]


def _items(report, by: str) -> tuple[list, str]:
    if isinstance(report, Mapping):
        items = list(report.items())
    elif isinstance(report, Sequence) and not isinstance(report, (str, bytes)):
        items = [(_model_label(r, i), r) for i, r in enumerate(report)]
        by = "model"
    else:
        items = [(_model_label(report, 0), report)]
    if len(items) > 1 or isinstance(report, Mapping):
        by = "model"
    if not items:
        raise RedundancyError("report=[] is empty; give at least one RedundancyReport")
    return items, by


def _columns(items, by: str) -> tuple[list, list, list, list]:
    labels, naive, dof, kr = [], [], [], []
    for name, rep in items:
        segs = _segments(rep)
        if by == "segment":
            for s in segs:
                labels.append(s["label"]), naive.append(s["naive"]), dof.append(s["dof"])
                kr.append(s["kr"])
        else:
            labels.append(str(name))
            naive.append(sum(s["naive"] for s in segs))
            dof.append(sum(s["dof"] for s in segs))
            krs = [s["kr"] for s in segs if np.isfinite(s["kr"])]
            kr.append(max(krs) if krs else math.nan)
    if not labels:
        raise RedundancyError("the report has no layer with a segment dof and naive count to plot")
    if not (np.isfinite(naive).all() and np.isfinite(dof).all()):
        raise RedundancyError("the summed dof / naive counts overflow float64; nothing sensible to plot")
    return labels, naive, dof, kr


@_v.validate_params({"by": _v.Choice("segment", "model"), "eps": _v.NoneOr(_v.Float(0.0, lo_open=True)),
                     "sigma": _v.Float(0.0), "constant": _v.Float(0.0, lo_open=True),
                     "log_factor": _v.Float(0.0, lo_open=True)})
def count_bound_table(report, *, by: str = "segment", eps: float | None = None, sigma: float = 1.0,
                      constant: float = 1.0, log_factor: float = 1.0) -> CountBoundTable:
    """Naive count and dof per segment (``by="segment"``) or summed per model (``by="model"``, and
    always with several reports; a dict's keys are the labels), or with ``eps`` the two bounds
    ``n(eps)`` of :func:`redundancy.linear.bounds.sample_complexity`.

    Examples
    --------
    >>> from torch import nn
    >>> from redundancy.analysis.report import analyze
    >>> net = nn.Sequential(nn.Conv2d(8, 2, 1), nn.Conv2d(2, 8, 3), nn.ReLU(), nn.Flatten(),
    ...                     nn.Linear(8 * 4 * 4, 1))
    >>> t = count_bound_table(analyze(net, (8, 6, 6)))
    >>> t.naive.tolist(), t.dof.tolist()
    ([160.0, 128.0], [156.0, 128.0])
    """
    items, by = _items(report, by)
    labels, naive, dof, kr = _columns(items, by)
    if eps is not None:
        from redundancy.linear.bounds import sample_complexity

        pairs = [sample_complexity(int(d), eps, sigma, naive=int(n), constant=constant,
                                   log_factor=log_factor) for d, n in zip(dof, naive)]
        dof = [p.n for p in pairs]
        naive = [p.n_naive for p in pairs]
    return CountBoundTable(labels=labels, naive=np.asarray(naive, dtype=float), dof=np.asarray(dof, dtype=float),
                           kr_ratio=np.asarray(kr, dtype=float), eps=eps, sigma=sigma)
