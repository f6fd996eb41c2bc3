"""The result of :func:`redundancy.analysis.roi.estimate_roi`, in named parts: :class:`RoiDesign`
(parameters, MACs, bytes), :class:`RoiData` (labelled samples from dof and from the naive count),
:class:`RoiMoney` (data and serving costs, break-even) and :class:`RoiRisk` (long-tail flips),
held by :class:`RoiResult` with the latency sweep and the inputs."""

from __future__ import annotations

from dataclasses import field
from typing import Any

import numpy as np

from redundancy.analysis.latency import LatencyPoint
from redundancy.errors import RedundancyError
import redundancy._validation as _v

__all__ = ["RoiResult"]


def _difference(minuend: str, subtrahend: str) -> property:
    """A derived field: ``self.<minuend> - self.<subtrahend>``."""
    return property(lambda self: getattr(self, minuend) - getattr(self, subtrahend),
                    doc=f"``{minuend} - {subtrahend}``.")


SLOWER_NOTE = ("Low-rank (factorised) layers replace one convolution by a chain of smaller ones; "
               "fewer MACs do not guarantee lower latency, and the chain can be slower.")


@_v.result
class RoiDesign(_v.Result):
    """What the two designs cost to hold and run: parameters, MACs per sample and weight bytes at
    ``dtype`` (upper bounds on what deployment gains)."""

    dtype: str
    params_original: int
    params_compressed: int
    macs_original: int
    macs_compressed: int
    bytes_original: int
    bytes_compressed: int

    params_saved = _difference("params_original", "params_compressed")
    macs_saved = _difference("macs_original", "macs_compressed")
    bytes_saved = _difference("bytes_original", "bytes_compressed")


@_v.result
class RoiData(_v.Result):
    """What the two designs need in labelled data for prediction error ``eps`` at noise ``sigma``:
    ``n_*`` from the dof bound, ``n_naive_*`` from the naive count, with the dof, naive counts,
    where the dof came from and how much of each design it covers."""

    eps: float
    sigma: float
    dof_original: int
    dof_compressed: int
    naive_original: int
    naive_compressed: int
    dof_source: str
    n_original: int
    n_compressed: int
    n_naive_original: int
    n_naive_compressed: int
    coverage_original: float = 1.0
    coverage_compressed: float = 1.0

    extra_samples = _difference("n_compressed", "n_original")
    extra_samples_naive = _difference("n_naive_compressed", "n_naive_original")


@_v.result(allow=("break_even_months",))
class RoiMoney(_v.Result):
    """Money, from the caller's unit costs (``None`` where a unit cost was not given): data cost of
    each design, serving cost per month, and the month their cumulative costs cross."""

    cost_per_sample: float | None = None
    cost_per_gmac: float | None = None
    inferences_per_month: float | None = None
    data_cost_original: float | None = None
    data_cost_compressed: float | None = None
    serving_cost_per_month_original: float | None = None
    serving_cost_per_month_compressed: float | None = None
    break_even_months: float | None = None
    cheaper_after_break_even: str | None = None

    def __post_init__(self):
        for a in ("data_cost", "serving_cost_per_month"):
            o, c = getattr(self, f"{a}_original"), getattr(self, f"{a}_compressed")
            if (o is None) != (c is None):
                raise RedundancyError(f"{a}_original={o!r} and {a}_compressed={c!r}: both or neither must be given")

    @property
    def extra_data_cost(self) -> float | None:
        if self.data_cost_original is None:
            return None
        return self.data_cost_compressed - self.data_cost_original

    @property
    def serving_saving_per_month(self) -> float | None:
        if self.serving_cost_per_month_original is None:
            return None
        return self.serving_cost_per_month_original - self.serving_cost_per_month_compressed

    def cumulative_cost(self, months) -> tuple[np.ndarray, np.ndarray]:
        """Cumulative cost ``data + months * serving`` of (original, compressed) at ``months``."""
        if self.data_cost_original is None or self.serving_cost_per_month_original is None:
            raise RedundancyError("cumulative_cost needs cost_per_sample, cost_per_gmac and "
                                  "inferences_per_month; estimate_roi was called without them")
        m = np.asarray(months, dtype=np.float64)
        return (self.data_cost_original + m * self.serving_cost_per_month_original,
                self.data_cost_compressed + m * self.serving_cost_per_month_compressed)


@_v.result
class RoiRisk(_v.Result):
    """What compression risks on the long tail: ``long_tail`` is
    :func:`redundancy.longtail.tail_flip_rates` (flip rate overall and on the tail), or ``None``
    when no data set was given."""

    long_tail: dict | None = None


_PARTS = ("design", "data", "money", "risk")
_DERIVED = ("params_saved", "macs_saved", "bytes_saved", "extra_samples", "extra_samples_naive",
            "extra_data_cost", "serving_saving_per_month")


@_v.result
class RoiResult(_v.Result):
    """Everything :func:`estimate_roi` found, in named parts, with the inputs that produced it.

    ``design`` (:class:`RoiDesign`): parameters, MACs, bytes; ``data`` (:class:`RoiData`): labelled
    samples from the dof bound and from the naive count; ``money`` (:class:`RoiMoney`): data and
    serving costs and the break-even; ``risk`` (:class:`RoiRisk`): the long-tail flip rates;
    ``latency``: one :class:`LatencyPoint` per batch size. ``extra_samples = n_compressed -
    n_original`` (negative: the compressed design needs fewer). ``break_even_months`` is when the
    cumulative costs (data + serving) of the two designs are equal, ``None`` when they never cross;
    ``cheaper_after_break_even`` names the design that is cheaper from then on (or at all times
    when they never cross). Every field of a part also reads directly (``roi.params_original`` is
    ``roi.design.params_original``), as in 0.2.
    """

    input_shape: tuple[int, ...]
    batch_sizes: tuple[int, ...]
    repeats: int
    warmup: int
    seed: int
    design: RoiDesign
    data: RoiData
    money: RoiMoney = field(default_factory=RoiMoney)
    risk: RoiRisk = field(default_factory=RoiRisk)
    latency: tuple[LatencyPoint, ...] = ()
    notes: tuple[str, ...] = ()

    def __getattr__(self, name: str):
        # the 0.2 flat names: a field or derived quantity of one of the parts
        if not name.startswith("_"):
            for part in _PARTS:
                obj = self.__dict__.get(part)
                if obj is not None and (name in obj.__dataclass_fields__ or isinstance(
                        getattr(type(obj), name, None), property)):
                    return getattr(obj, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def cumulative_cost(self, months) -> tuple[np.ndarray, np.ndarray]:
        """Cumulative cost ``data + months * serving`` of (original, compressed) at ``months``."""
        return self.money.cumulative_cost(months)

    def _extra_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in _DERIVED}

    def ratios(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Labels, compressed/original ratios and their error bars as a ``(2, n)`` array of distances
        below and above each value (matplotlib's asymmetric ``yerr``): params, MACs, bytes, the two
        ``n(eps)``, then latency per batch size.

        Counts have no spread (zero bars). Latency ratios are the median of the per-repeat ratios
        and their error bar the measured 25th..75th percentiles of those ratios
        (:meth:`~redundancy.analysis.latency.LatencyPoint.ratio_interval`): skewed when the
        measurement is, never below zero. A ratio whose original is zero (a zero-dof or zero-MAC
        design) is 0 with the label saying so, not divided.
        """
        d, n = self.design, self.data
        labels = ["params", "MACs", "bytes", "n(ε) dof", "n(ε) naive"]
        pairs = [(d.params_compressed, d.params_original), (d.macs_compressed, d.macs_original),
                 (d.bytes_compressed, d.bytes_original), (n.n_compressed, n.n_original),
                 (n.n_naive_compressed, n.n_naive_original)]
        vals = []
        for i, (c, o) in enumerate(pairs):
            if o:
                vals.append(c / o)
            else:
                vals.append(0.0)
                labels[i] += " (original 0)"
        lows, highs = [0.0] * len(vals), [0.0] * len(vals)
        for p in self.latency:
            v, lo, hi = p.ratio_interval()
            labels.append(f"latency b={p.batch_size}")
            vals.append(v)
            lows.append(v - lo)
            highs.append(hi - v)
        vals_a = np.asarray(vals, dtype=float)
        errs = np.asarray([lows, highs], dtype=float)
        if not (np.isfinite(vals_a).all() and np.isfinite(errs).all()):
            raise RedundancyError("the ROI result holds a non-finite ratio; nothing sensible to draw")
        return labels, vals_a, errs

    def to_pandas(self):
        """One row per quantity with columns ``original``, ``compressed``, ``saved``."""
        import pandas as pd

        d, n, m = self.design, self.data, self.money
        rows = [("params", d.params_original, d.params_compressed),
                ("macs", d.macs_original, d.macs_compressed),
                ("bytes", d.bytes_original, d.bytes_compressed),
                ("dof", n.dof_original, n.dof_compressed),
                ("naive_count", n.naive_original, n.naive_compressed),
                ("samples_n_eps_dof", n.n_original, n.n_compressed),
                ("samples_n_eps_naive", n.n_naive_original, n.n_naive_compressed)]
        for p in self.latency:
            rows.append((f"latency_s_batch{p.batch_size}", p.original_median_s, p.compressed_median_s))
        if m.data_cost_original is not None:
            rows.append(("data_cost", m.data_cost_original, m.data_cost_compressed))
        if m.serving_cost_per_month_original is not None:
            rows.append(("serving_cost_per_month", m.serving_cost_per_month_original,
                         m.serving_cost_per_month_compressed))
        df = pd.DataFrame(rows, columns=["quantity", "original", "compressed"]).set_index("quantity")
        df["saved"] = df["original"] - df["compressed"]
        return df

    def __repr__(self) -> str:
        d, n, m = self.design, self.data, self.money
        lines = [f"RoiResult(input_shape={self.input_shape}, dtype={d.dtype}, eps={n.eps:g}, "
                 f"sigma={n.sigma:g})",
                 f"  params   {d.params_original:>14,d} -> {d.params_compressed:>14,d}",
                 f"  macs     {d.macs_original:>14,d} -> {d.macs_compressed:>14,d}",
                 f"  bytes    {d.bytes_original:>14,d} -> {d.bytes_compressed:>14,d}",
                 f"  n(eps)   {n.n_original:>14,d} -> {n.n_compressed:>14,d}  (dof bound, "
                 f"{n.dof_source}; coverage {100 * n.coverage_original:.0f}% / "
                 f"{100 * n.coverage_compressed:.0f}%)"]
        if self.notes and self.notes[0].startswith("INCOMPLETE"):
            lines.insert(1, "  WARNING: " + self.notes[0])
        for p in self.latency:
            lines.append(f"  latency  batch {p.batch_size:>4d}: {p.original_median_s * 1e3:.3f} ms -> "
                         f"{p.compressed_median_s * 1e3:.3f} ms (speed-up x{p.speedup:.2f}"
                         + (f", {p.threads} thread{'s' if p.threads != 1 else ''})" if p.threads else ")"))
        if m.break_even_months is not None:
            lines.append(f"  break-even after {m.break_even_months:.2f} months "
                         f"({m.cheaper_after_break_even} cheaper afterwards)")
        elif m.cheaper_after_break_even is not None:
            lines.append(f"  no break-even: {m.cheaper_after_break_even} is cheaper at all times")
        tail = self.risk.long_tail
        if tail is not None:
            lines.append(f"  flip rate {tail['flip_rate']:.4f} overall, "
                         f"{tail['tail_flip_rate']:.4f} on the {tail['tail']} (long tail)")
        return "\n".join(lines)
