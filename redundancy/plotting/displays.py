"""Displays (scikit-learn style): build from a result, then ``.plot(ax=None)`` draws.

Each Display holds the numbers it draws (computed by the library, never by the Display), and after
``plot`` keeps the Axes in ``ax_`` and the Figure in ``figure_``. matplotlib is imported inside
``plot`` only, and nothing here ever opens a window (no ``show`` call).

* :class:`BoundVsCountDisplay`: naive parameter count against degrees of freedom (or the two
  sample-complexity bounds ``n(eps)``), per linear segment, per block or per model, on a log scale,
  each pair annotated with its K/R.
* :class:`ErrorCurveDisplay`: estimation error against sample size ``n`` (log-log), with the spread
  over repetitions, the fitted slope and the two ``sqrt(d/n)`` reference curves.
* :class:`RoiDisplay`: compressed / original ratios (parameters, MACs, bytes, latency, samples) or
  the cumulative cost of the two designs over months with the break-even.
"""

from __future__ import annotations

import math
from dataclasses import field
from typing import Any

import numpy as np

from redundancy.analysis.count_bound import _get, count_bound_table
from redundancy.errors import RedundancyError
from redundancy.plotting._base import _Display, _axes as _new_axes

__all__ = ["BoundVsCountDisplay", "RoiDisplay"]


def _axes(ax, n_items: int = 0):
    """A new figure widened for ``n_items`` labels, or ``ax`` when it is a matplotlib Axes."""
    from matplotlib.axes import Axes

    if ax is not None and not isinstance(ax, Axes):
        raise RedundancyError(f"ax={ax!r:.60} is not a matplotlib Axes; pass ax=None or an Axes "
                              "(e.g. from plt.subplots())")
    return _new_axes(ax, (max(6.4, 0.28 * n_items), 4.8))


def _short(label: str, width: int = 22) -> str:
    return label if len(label) <= width else "…" + label[-(width - 1):]


def _num(v) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f


def _fmt_kr(kr: float) -> str:
    return "" if not np.isfinite(kr) else f"K/R={kr:.3g}"


class BoundVsCountDisplay(_Display):
    """Naive count against dof (or against the sample-complexity bound), log scale, K/R annotated.

    Parameters
    ----------
    table : CountBoundTable
        The numbers drawn (:func:`redundancy.analysis.count_bound.count_bound_table`): one point pair
        per segment, block or model (``labels``), the naive count ``naive`` and degrees of freedom
        ``dof`` (or, when ``eps`` is set, the two bounds ``n(eps)`` computed from them), and the K/R
        of each item (``kr_ratio``, NaN where there is none).
    title : str, optional
        Title of the plot.
    """

    table: Any
    title: str | None = None

    @classmethod
    def from_report(cls, report, *, by: str = "segment", eps: float | None = None, sigma: float = 1.0,
                    constant: float = 1.0, log_factor: float = 1.0) -> "BoundVsCountDisplay":
        """Build from a :class:`~redundancy.analysis.report.RedundancyReport` (or several).

        Parameters
        ----------
        report : RedundancyReport, or a list / dict of them
            With several reports (a dict's keys are the labels) one point pair per model is drawn.
        by : {"segment", "model"}
            ``"segment"``: one pair per maximal linear segment (each segment once; K/R is the largest
            of its layers); ``"model"``: the sums over segments of each report.
        eps : float, optional
            When given, plot ``n(eps)`` from :func:`redundancy.linear.bounds.sample_complexity` instead of
            the counts. The numbers come from :func:`redundancy.analysis.count_bound.count_bound_table`.

        Examples
        --------
        A report's rows may also be plain dicts (here one model labelled ``"toy"``):

        >>> rows = {"segments": [{"name": "conv1+conv2", "dof": 156, "naive": 160}]}
        >>> disp = BoundVsCountDisplay.from_report({"toy": rows}).plot()
        >>> disp.table.naive.tolist(), disp.ax_.get_yscale(), len(disp.ax_.get_lines())
        ([160.0], 'log', 2)
        """
        t = count_bound_table(report, by=by, eps=eps, sigma=sigma, constant=constant, log_factor=log_factor)
        return cls(table=t)

    def plot(self, ax=None, *, annotate: bool = True, **kwargs) -> "BoundVsCountDisplay":
        """Draw on ``ax`` (a new figure when ``None``); ``kwargs`` go to both ``ax.plot`` calls."""
        t = self.table
        n = len(t.labels)
        ax = _axes(ax, n)
        x = np.arange(n)
        ax.vlines(x, np.minimum(t.dof, t.naive), np.maximum(t.dof, t.naive), color="0.75",
                  lw=1, zorder=1)
        if t.eps is None:
            names = ("naive parameter count", "degrees of freedom")
        else:
            names = ("n(ε) from the naive count", "n(ε) from the dof")
        ax.plot(x, t.naive, "o", label=names[0], **{"mfc": "none", "ms": 10, "mew": 1.5, **kwargs})
        ax.plot(x, t.dof, "s", label=names[1], **{"ms": 5, **kwargs})
        ax.set_yscale("log")
        ax.set_xticks(x)
        many = n > 12
        ax.set_xticklabels([_short(str(lab)) for lab in t.labels] if many else t.labels,
                           rotation=(90 if many else 45) if n > 3 else 0,
                           ha="center" if many or n <= 3 else "right", fontsize=7 if many else None)
        if t.eps is None:
            ax.set_ylabel("parameters (naive count) / degrees of freedom")
        else:
            ax.set_ylabel(f"samples n(ε) for ε={t.eps:g}, σ={t.sigma:g}")
        ax.set_title(self.title or "naive count vs degrees of freedom")
        if annotate:
            for xi, top, kr in zip(x, np.maximum(t.dof, t.naive), t.kr_ratio):
                if np.isfinite(kr):
                    ax.annotate(_fmt_kr(kr), (xi, top), textcoords="offset points", xytext=(0, 7),
                                ha="center", va="bottom", fontsize=7 if many else 8,
                                rotation=90 if many else 0)
            lo, hi = ax.get_ylim()
            ax.set_ylim(lo, hi * (4.0 if many else 2.0))  # room for the annotations on the log axis
        ax.legend(loc="best")
        return self._drawn(ax)


class ErrorCurveDisplay(_Display):
    """Estimation error against sample size, one curve per result, with the ``sqrt(d/n)`` references.

    ``results`` are :class:`redundancy.validation.validate.ErrorCurveResult` (``n_grid``, ``errors`` of shape
    ``(len(n_grid), n_reps)``, ``dof``, ``naive``, ``sigma``, ``slope``, ``slope_ci``,
    ``constant_dof``, ``constant_naive``, ``label``). The curve is the RMS error over repetitions,
    ``sqrt(mean_j e_{n,j}^2)`` (the quantity the slope and constants are fitted on); the reference
    curves are ``constant * sigma * sqrt(d / n)`` with ``d`` the dof and the naive count and the
    fitted constants, so the ``dof`` reference passes through the data when the bound is tight.
    """

    results: list

    @classmethod
    def from_result(cls, result) -> "ErrorCurveDisplay":
        """Build from one result or a list of them (objects or dicts with the fields above).

        Examples
        --------
        >>> import numpy as np
        >>> n = np.array([10.0, 20, 40])
        >>> res = {"n_grid": n, "errors": np.sqrt(5 / n)[:, None] * [0.9, 1.1], "dof": 5, "naive": 20,
        ...        "sigma": 1.0, "constant_dof": 1.0, "constant_naive": 0.5, "label": "toy"}
        >>> disp = ErrorCurveDisplay.from_result(res).plot()
        >>> disp.ax_.get_xscale(), len(disp.lines_)
        ('log', 1)
        """
        results = list(result) if isinstance(result, (list, tuple)) else [result]
        if not results:
            raise RedundancyError("result=[] is empty; give at least one ErrorCurveResult")
        for i, r in enumerate(results):
            n, e = np.asarray(_get(r, "n_grid")), np.asarray(_get(r, "errors"))
            if n.ndim != 1 or e.ndim not in (1, 2) or e.shape[0] != n.shape[0]:
                raise RedundancyError(
                    f"result[{i}] has n_grid of shape {n.shape} and errors of shape {e.shape}; errors "
                    "must have shape (len(n_grid), n_reps)")
        return cls(results=results)

    def plot(self, ax=None, *, references: bool = True, band: tuple[float, float] = (10, 90),
             **kwargs) -> "ErrorCurveDisplay":
        """Draw the RMS error per ``n`` with a percentile ``band`` over repetitions (log-log)."""
        ax = _axes(ax)
        self.lines_ = []
        for i, r in enumerate(self.results):
            n = np.asarray(_get(r, "n_grid"), dtype=float)
            e = np.asarray(_get(r, "errors"), dtype=float).reshape(len(n), -1)
            med = np.sqrt(np.nanmean(e ** 2, axis=1))
            lo, hi = np.nanpercentile(e, band, axis=1)
            label = _get(r, "label") or f"result {i}"
            slope, ci = _get(r, "slope"), _get(r, "slope_ci")
            if slope is not None and np.isfinite(_num(slope)):
                label += f" (slope {float(slope):.2f}"
                if ci is not None:
                    label += f", CI [{float(ci[0]):.2f}, {float(ci[1]):.2f}]"
                label += ")"
            (line,) = ax.plot(n, med, "o-", label=label, **kwargs)
            self.lines_.append(line)
            if e.shape[1] > 1:
                ax.fill_between(n, lo, hi, color=line.get_color(), alpha=0.2, lw=0)
            if references:
                for key, cname, style in (("dof", "constant_dof", "--"), ("naive", "constant_naive", ":")):
                    d, c = _num(_get(r, key)), _num(_get(r, cname))
                    sig = _num(_get(r, "sigma", 1.0))
                    if np.isfinite(d) and np.isfinite(c) and np.isfinite(sig):
                        ax.plot(n, c * sig * np.sqrt(d / n), style, color=line.get_color(), lw=1,
                                label=f"{c:.3g}·σ·√({key} {int(d)}/n)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("sample size n")
        ax.set_ylabel("RMS estimation error")
        ax.set_title("error vs sample size")
        ax.legend(loc="best", fontsize=8)
        return self._drawn(ax)


class RoiDisplay(_Display):
    """ROI of a compressed design: ratios to the original, or cumulative cost over months."""

    result: Any
    months: np.ndarray = field(default_factory=lambda: np.linspace(0, 24, 97))

    @classmethod
    def from_result(cls, roi, *, months=None) -> "RoiDisplay":
        """Build from a :class:`redundancy.analysis.roi.RoiResult`; ``months`` is the horizon of ``kind="cost"``.

        Examples
        --------
        >>> from torch import nn
        >>> from redundancy.analysis.roi import estimate_roi
        >>> a = nn.Sequential(nn.Conv2d(8, 8, 3), nn.Flatten(), nn.Linear(8 * 4 * 4, 1))
        >>> b = nn.Sequential(nn.Conv2d(8, 2, 1), nn.Conv2d(2, 8, 3), nn.Flatten(), nn.Linear(128, 1))
        >>> roi = estimate_roi(a, b, (8, 6, 6), batch_sizes=(1,), repeats=2, warmup=0)
        >>> disp = RoiDisplay.from_result(roi).plot()
        >>> len(disp.bars_)          # params, MACs, bytes, two n(eps), one latency
        6
        """
        from redundancy.analysis.roi import RoiResult

        if not isinstance(roi, RoiResult):
            raise RedundancyError(f"roi={type(roi).__name__} is not a RoiResult")
        if months is None:
            be = roi.money.break_even_months
            horizon = 24.0 if be is None or not np.isfinite(be) else max(24.0, 2 * be)
            months = np.linspace(0, horizon, 97)
        from redundancy._validation import check_array

        return cls(result=roi, months=check_array("months", months, min_ndim=1, max_ndim=1, min_size=2,
                                                  max_numel=10 ** 6))

    def ratios(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Labels, compressed/original ratios and their error bars as a ``(2, n)`` array of distances
        below and above each bar (matplotlib's asymmetric ``yerr``).

        Counts have no spread (zero bars). Latency bars are the median of the per-repeat ratios
        and their error bar the measured 25th..75th percentiles of those ratios
        (:meth:`~redundancy.analysis.latency.LatencyPoint.ratio_interval`): skewed when the
        measurement is, never below zero. A ratio whose original is zero (a zero-dof or zero-MAC
        design) is drawn as 0 with the label saying so, not divided.
        """
        return self.result.ratios()

    def plot(self, ax=None, *, kind: str = "ratios", **kwargs) -> "RoiDisplay":
        """``kind="ratios"``: bars of compressed / original (1 = no change; latency above 1 means
        slower). ``kind="cost"``: cumulative cost (data + serving) of both designs over months."""
        if kind not in ("ratios", "cost"):
            raise RedundancyError(f"kind={kind!r} is not allowed; choose one of ['ratios', 'cost']")
        r = self.result
        ax = _axes(ax)
        if kind == "ratios":
            labels, vals, errs = self.ratios()
            x = np.arange(len(labels))
            colors = ["C2" if v < 0.999 else "C3" if v > 1.001 else "0.6" for v in vals]
            self.bars_ = ax.bar(x, vals, yerr=errs, color=colors, **kwargs)
            ax.axhline(1.0, color="k", lw=1, ls="--")
            ax.set_xticks(x)
            ax.set_xticklabels(labels, rotation=45, ha="right")
            ax.set_ylabel("compressed / original")
            ax.set_title("what compression changes (below 1: saved)")
        else:
            money = r.money
            if money.data_cost_original is None or money.serving_cost_per_month_original is None:
                raise RedundancyError("kind='cost' needs a RoiResult computed with cost_per_sample, "
                                      "cost_per_gmac and inferences_per_month")
            co, cc = money.cumulative_cost(self.months)
            ax.plot(self.months, co, label="original", **kwargs)
            ax.plot(self.months, cc, label="compressed", **kwargs)
            if money.break_even_months is not None:
                ax.axvline(money.break_even_months, color="k", ls="--", lw=1,
                           label=f"break-even {money.break_even_months:.2f} months")
            ax.set_xlabel("months in service")
            ax.set_ylabel("cumulative cost (data + serving)")
            ax.set_title("cost of the two designs")
            ax.legend(loc="best")
        return self._drawn(ax)
