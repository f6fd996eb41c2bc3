"""Displays of a rank search: chosen rank per layer with its ``p(r)`` band; accuracy against size kept."""

from __future__ import annotations


import numpy as np

import redundancy._validation as _v
from redundancy.errors import RedundancyError
from redundancy.plotting._base import _Display, _axes

__all__ = ["RankBandDisplay", "RankParetoDisplay"]


class RankBandDisplay(_Display):
    """Per layer: the chosen rank ``r*`` (dot), the 5–95 % band of the final ``p(r)`` (bar), the expected
    rank (cross) and the largest rank searched (grey tick).

    Examples
    --------
    >>> import torch
    >>> from redundancy.rank_search.search import search_ranks
    >>> res = search_ranks(torch.nn.Sequential(torch.nn.Conv2d(4, 6, 3)), [1, 2, 3], input_shape=(4, 5, 5), iters=2)
    >>> disp = RankBandDisplay.from_result(res).plot()
    >>> disp.ax_.get_ylabel()
    'rank'
    """

    layers: list
    rank: np.ndarray
    low: np.ndarray
    high: np.ndarray
    expected: np.ndarray
    max_rank: np.ndarray
    title: str | None = None

    @classmethod
    def from_result(cls, result, title: str | None = None) -> "RankBandDisplay":
        rows = result.layers
        return cls([r.name for r in rows], np.array([r.rank for r in rows]), np.array([r.rank_low for r in rows]),
                   np.array([r.rank_high for r in rows]), np.array([r.expected_rank for r in rows]),
                   np.array([r.max_rank for r in rows]),
                   title or f"RENE ({result.method}, {result.mode}): chosen rank per layer")

    def plot(self, ax=None):
        ax = _axes(ax, (max(5.0, 0.45 * len(self.layers) + 2), 3.6))
        x = np.arange(len(self.layers))
        ax.vlines(x, self.low, self.high, color="C0", lw=6, alpha=0.35, label="p(r) 5–95 %")
        ax.plot(x, self.rank, "o", color="C0", label="chosen rank r*")
        ax.plot(x, self.expected, "x", color="C1", label="E_p[r]")
        ax.plot(x, self.max_rank, "_", color="grey", ms=14, label="largest rank searched")
        ax.set_xticks(x)
        ax.set_xticklabels(self.layers, rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("rank")
        ax.set_title(self.title, fontsize=9)
        ax.legend(fontsize=7)
        return self._drawn(ax)


MAX_POINTS = 10 ** 6


@_v.validate_params({"x": _v.Array(min_ndim=1, max_ndim=1, max_numel=MAX_POINTS),
                     "y": _v.Array(min_ndim=1, max_ndim=1, max_numel=MAX_POINTS)})
def pareto_front(x, y) -> np.ndarray:
    """Indices of the points not dominated (no other point with ``x' <= x`` and ``y' >= y``, one strictly),
    sorted by ``x``: the front of "smaller size, higher accuracy".

    One sweep in increasing ``x`` (``O(n log n)``): a point is dominated when a point of smaller ``x``
    has ``y' >= y``, or a point of the same ``x`` has ``y' > y``.

    Parameters
    ----------
    x, y : array-like of float
        1-D, finite, the same length (1 to ``MAX_POINTS``).

    Returns
    -------
    numpy.ndarray of int

    Examples
    --------
    >>> pareto_front([0.5, 0.6, 0.9, 0.5], [0.9, 0.8, 0.95, 0.7]).tolist()
    [0, 2]
    """
    if x.shape != y.shape:
        raise RedundancyError(f"x has {x.size} points but y has {y.size}; give one y per x")
    order = np.lexsort((-y, x))            # by x, then by y descending
    keep, best_before, i, n = [], -np.inf, 0, len(x)
    while i < n:
        j = i
        while j < n and x[order[j]] == x[order[i]]:
            j += 1
        group = order[i:j]
        top = y[group[0]]                  # the largest y at this x
        if top > best_before:
            keep.extend(int(k) for k in group if y[k] == top)
        best_before = max(best_before, top)
        i = j
    return np.array(sorted(keep, key=lambda k: (x[k], k)), dtype=int)


class RankParetoDisplay(_Display):
    """Accuracy against the fraction of parameters (or MACs) kept, one marker per method, Pareto front dashed.

    ``rows`` are dicts with ``method``, ``accuracy`` and ``params_kept`` (and ``macs_kept``); several
    rows per method (seeds, budgets) are drawn as points, the front over all rows as a line.

    Examples
    --------
    >>> rows = [{"method": "rene-tt", "accuracy": .9, "params_kept": .3, "macs_kept": .3},
    ...         {"method": "global-10%", "accuracy": .7, "params_kept": .1, "macs_kept": .1}]
    >>> RankParetoDisplay.from_rows(rows).plot().ax_.get_xlabel()
    'fraction of parameters kept'
    """

    rows: list
    x: str = "params_kept"
    title: str | None = None

    @classmethod
    def from_rows(cls, rows, *, x: str = "params_kept", title: str | None = None) -> "RankParetoDisplay":
        return cls([dict(r) for r in rows], x, title)

    def plot(self, ax=None):
        ax = _axes(ax, (5.5, 3.8))
        methods = list(dict.fromkeys(r["method"] for r in self.rows))
        markers = "osD^v<>PX*"
        for i, m in enumerate(methods):
            pts = [r for r in self.rows if r["method"] == m]
            ax.scatter([r[self.x] for r in pts], [r["accuracy"] for r in pts], marker=markers[i % len(markers)],
                       label=m, alpha=0.8)
        xs = np.array([r[self.x] for r in self.rows])
        ys = np.array([r["accuracy"] for r in self.rows])
        front = pareto_front(xs, ys)
        if len(front):
            ax.plot(xs[front], ys[front], "k--", lw=1, label="Pareto front")
        ax.set_xscale("log")
        ax.set_xlabel("fraction of parameters kept" if self.x == "params_kept" else "fraction of MACs kept")
        ax.set_ylabel("test accuracy")
        if self.title:
            ax.set_title(self.title, fontsize=9)
        ax.legend(fontsize=7)
        return self._drawn(ax)
