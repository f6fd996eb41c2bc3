"""Return on investment of a compressed design, estimated before deployment.

:func:`estimate_roi` compares an *original* and a *compressed* torch model on the same input shape:

* what compression saves: parameters, MACs and weight memory (bytes at a dtype); these are upper
  bounds on real savings;
* what it really does to CPU latency, measured (warm-up, repeats, a batch sweep; medians and
  quartiles). Low-rank (factorised) layers replace one convolution by a chain of smaller ones, and
  the chain can be **slower** than the original layer even though it has fewer MACs;
* what it changes in data: the number of labelled samples needed for a target prediction error
  ``eps`` from the sample-complexity bound of each design, ``n(eps) = C sigma^2 dof log / eps^2``,
  from the degrees of freedom (and, for comparison, from the naive parameter count);
* what that means in money, from unit costs the caller gives: data cost of each design, serving
  cost per month of each design, and the break-even month where their cumulative costs cross.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from redundancy._validation import check_int, check_nonnegative_float, check_positive_float, check_shape
from redundancy.errors import RedundancyError
from redundancy.analysis.design_dof import design_dof, design_dof_coverage
from redundancy.analysis.latency import DEFAULT_THREADS, MAX_THREADS, LatencyPoint, _dtype, measure_latency
import redundancy._validation as _v

__all__ = ["LatencyPoint", "RoiResult", "estimate_roi", "design_dof", "design_dof_coverage", "measure_latency",
           "cost_comparison"]

SLOWER_NOTE = ("Low-rank (factorised) layers replace one convolution by a chain of smaller ones; "
               "fewer MACs do not guarantee lower latency, and the chain can be slower.")


@dataclass(frozen=True)
@_v.finite_result(allow=("break_even_months",))
class RoiResult:
    """Everything :func:`estimate_roi` found, with the inputs that produced it.

    Counts are ints; ``*_bytes`` are bytes of weights at ``dtype``; ``n_*`` are labelled samples
    from the dof bound and ``n_naive_*`` from the naive count; money fields are in the caller's
    currency and are ``None`` when the matching unit cost was not given.
    ``extra_samples = n_compressed - n_original`` (negative: the compressed design needs fewer).
    ``break_even_months`` is when the cumulative costs (data + serving) of the two designs are
    equal, ``None`` when they never cross; ``cheaper_after_break_even`` names the design that is
    cheaper from then on (or at all times when they never cross).
    """

    input_shape: tuple[int, ...]
    dtype: str
    eps: float
    sigma: float
    cost_per_sample: float | None
    cost_per_gmac: float | None
    inferences_per_month: float | None
    batch_sizes: tuple[int, ...]
    repeats: int
    warmup: int
    seed: int
    params_original: int
    params_compressed: int
    macs_original: int
    macs_compressed: int
    bytes_original: int
    bytes_compressed: int
    dof_original: int
    dof_compressed: int
    naive_original: int
    naive_compressed: int
    dof_source: str
    n_original: int
    n_compressed: int
    n_naive_original: int
    n_naive_compressed: int
    latency: tuple[LatencyPoint, ...]
    data_cost_original: float | None
    data_cost_compressed: float | None
    serving_cost_per_month_original: float | None
    serving_cost_per_month_compressed: float | None
    break_even_months: float | None
    cheaper_after_break_even: str | None
    notes: tuple[str, ...] = field(default_factory=tuple)
    coverage_original: float = 1.0
    coverage_compressed: float = 1.0
    long_tail: dict | None = None  # redundancy.longtail.tail_flip_rates on ``data`` (flip rate overall / tail)

    @property
    def params_saved(self) -> int:
        return self.params_original - self.params_compressed

    @property
    def macs_saved(self) -> int:
        return self.macs_original - self.macs_compressed

    @property
    def bytes_saved(self) -> int:
        return self.bytes_original - self.bytes_compressed

    @property
    def extra_samples(self) -> int:
        return self.n_compressed - self.n_original

    @property
    def extra_samples_naive(self) -> int:
        return self.n_naive_compressed - self.n_naive_original

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

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        d["batch_sizes"] = list(self.batch_sizes)
        d["latency"] = [p.to_dict() for p in self.latency]
        d["notes"] = list(self.notes)
        for k in ("params_saved", "macs_saved", "bytes_saved", "extra_samples", "extra_samples_naive",
                  "extra_data_cost", "serving_saving_per_month"):
            d[k] = getattr(self, k)
        return d

    def to_pandas(self):
        """One row per quantity with columns ``original``, ``compressed``, ``saved``."""
        import pandas as pd

        rows = [("params", self.params_original, self.params_compressed),
                ("macs", self.macs_original, self.macs_compressed),
                ("bytes", self.bytes_original, self.bytes_compressed),
                ("dof", self.dof_original, self.dof_compressed),
                ("naive_count", self.naive_original, self.naive_compressed),
                ("samples_n_eps_dof", self.n_original, self.n_compressed),
                ("samples_n_eps_naive", self.n_naive_original, self.n_naive_compressed)]
        for p in self.latency:
            rows.append((f"latency_s_batch{p.batch_size}", p.original_median_s, p.compressed_median_s))
        if self.data_cost_original is not None:
            rows.append(("data_cost", self.data_cost_original, self.data_cost_compressed))
        if self.serving_cost_per_month_original is not None:
            rows.append(("serving_cost_per_month", self.serving_cost_per_month_original,
                         self.serving_cost_per_month_compressed))
        df = pd.DataFrame(rows, columns=["quantity", "original", "compressed"]).set_index("quantity")
        df["saved"] = df["original"] - df["compressed"]
        return df

    def __post_init__(self):
        for a in ("data_cost", "serving_cost_per_month"):
            o, c = getattr(self, f"{a}_original"), getattr(self, f"{a}_compressed")
            if (o is None) != (c is None):
                raise RedundancyError(f"{a}_original={o!r} and {a}_compressed={c!r}: both or neither must be given")

    def __repr__(self) -> str:
        lines = [f"RoiResult(input_shape={self.input_shape}, dtype={self.dtype}, eps={self.eps:g}, "
                 f"sigma={self.sigma:g})",
                 f"  params   {self.params_original:>14,d} -> {self.params_compressed:>14,d}",
                 f"  macs     {self.macs_original:>14,d} -> {self.macs_compressed:>14,d}",
                 f"  bytes    {self.bytes_original:>14,d} -> {self.bytes_compressed:>14,d}",
                 f"  n(eps)   {self.n_original:>14,d} -> {self.n_compressed:>14,d}  (dof bound, "
                 f"{self.dof_source}; coverage {100 * self.coverage_original:.0f}% / "
                 f"{100 * self.coverage_compressed:.0f}%)"]
        if self.notes and self.notes[0].startswith("INCOMPLETE"):
            lines.insert(1, "  WARNING: " + self.notes[0])
        for p in self.latency:
            lines.append(f"  latency  batch {p.batch_size:>4d}: {p.original_median_s * 1e3:.3f} ms -> "
                         f"{p.compressed_median_s * 1e3:.3f} ms (speed-up x{p.speedup:.2f}"
                         + (f", {p.threads} thread{'s' if p.threads != 1 else ''})" if p.threads else ")"))
        if self.break_even_months is not None:
            lines.append(f"  break-even after {self.break_even_months:.2f} months "
                         f"({self.cheaper_after_break_even} cheaper afterwards)")
        elif self.cheaper_after_break_even is not None:
            lines.append(f"  no break-even: {self.cheaper_after_break_even} is cheaper at all times")
        if self.long_tail is not None:
            lines.append(f"  flip rate {self.long_tail['flip_rate']:.4f} overall, "
                         f"{self.long_tail['tail_flip_rate']:.4f} on the {self.long_tail['tail']} (long tail)")
        return "\n".join(lines)


def _macs(model, input_shape) -> int:
    from redundancy.counts import count_macs

    res = count_macs(model, input_shape)  # {layer name: MACs}
    if isinstance(res, dict):
        return int(sum(res.values()))
    return int(getattr(res, "macs", res))


def _samples(dof: int, naive: int, eps: float, sigma: float, constant: float, log_factor: float):
    from redundancy.linear.bounds import sample_complexity

    sc = sample_complexity(dof, eps, sigma, naive=naive, constant=constant, log_factor=log_factor)
    return int(math.ceil(sc.n)), int(math.ceil(sc.n_naive))


@_v.validate_params({"samples": _v.Items(_v.Float(0.0, 1e300), min_len=2, max_len=2), "macs": _v.Items(_v.Float(0.0, 1e300), min_len=2, max_len=2), "cost_per_sample": _v.NoneOr(_v.Float(0.0)), "cost_per_gmac": _v.NoneOr(_v.Float(0.0)), "inferences_per_month": _v.NoneOr(_v.Float(0.0))})
def cost_comparison(samples, macs, cost_per_sample=None, cost_per_gmac=None, inferences_per_month=None):
    """Money of two designs (original, compressed) and the month where their cumulative costs cross.

    ``data_i = samples_i * cost_per_sample``; ``serving_i = macs_i / 1e9 * cost_per_gmac *
    inferences_per_month`` per month; cumulative cost ``data_i + t * serving_i``. The break-even
    ``t* = (data_c - data_o) / (serving_o - serving_c)`` is returned when it is positive, with the
    design that is cheaper after it; otherwise ``None`` and the design cheaper at all times
    (``None`` when they cost the same). Money fields are ``None`` when their unit costs are.

    Returns
    -------
    (data, serving, break_even_months, cheaper) with ``data`` and ``serving`` pairs.

    Examples
    --------
    >>> cost_comparison([100, 300], [2e9, 1e9], 1.0, 1.0, 10.0)
    ([100.0, 300.0], [20.0, 10.0], 20.0, 'compressed')
    """
    data = [None, None] if cost_per_sample is None else [float(n * cost_per_sample) for n in samples]
    serving = [None, None]
    if cost_per_gmac is not None and inferences_per_month is not None:
        serving = [float(m / 1e9 * cost_per_gmac * inferences_per_month) for m in macs]
    for what, pair in (("data cost (samples * cost_per_sample)", data),
                       ("serving cost per month (macs / 1e9 * cost_per_gmac * inferences_per_month)", serving)):
        if pair[0] is not None and not all(np.isfinite(v) and v < 1e300 for v in pair):
            raise RedundancyError(f"the {what} overflows ({pair[0]:.3g}, {pair[1]:.3g}); the unit costs are too "
                                  "large for float64 money figures")
    be, cheaper = None, None
    if data[0] is not None and serving[0] is not None:
        dd, ds = data[1] - data[0], serving[0] - serving[1]  # extra data cost, monthly saving
        if ds != 0 and dd / ds > 0:
            be, cheaper = dd / ds, ("compressed" if ds > 0 else "original")
        elif dd or ds:
            cheaper = "compressed" if (dd <= 0 and ds >= 0) else "original"
    return data, serving, be, cheaper


def estimate_roi(original: nn.Module, compressed: nn.Module, input_shape, *, dtype=torch.float32,
                 batch_sizes=(1, 8, 32), repeats: int = 20, warmup: int = 3, eps: float = 0.1,
                 sigma: float = 1.0, constant: float = 1.0, log_factor: float = 1.0,
                 cost_per_sample: float | None = None, cost_per_gmac: float | None = None,
                 inferences_per_month: float | None = None, dof=None, naive=None,
                 measure: bool = True, seed: int = 0, progress: bool = False,
                 allow_partial: bool = False, data=None, tail_scores=None,
                 tail_fraction: float = 0.1, threads: int | None = DEFAULT_THREADS) -> RoiResult:
    """Estimate what replacing ``original`` by ``compressed`` saves and costs, before deployment.

    Savings: parameters (each shared tensor once), MACs of conv/linear layers
    (:func:`redundancy.counts.count_macs`) and weight memory ``bytes = params * itemsize(dtype)``.
    These are *upper bounds* on what deployment gains. Latency is measured, not predicted:
    median and quartiles over ``repeats`` timed CPU forward passes after ``warmup`` untimed ones,
    at each batch size. Factorised (low-rank) layers can be slower than the layer they replace.

    Data: the number of labelled samples for prediction error ``eps`` from the bound of each design,

    .. math::  n(\\varepsilon) = C\\,\\sigma^2\\, d\\, \\mathrm{log\\_factor} / \\varepsilon^2,

    with ``d`` the design's degrees of freedom (and, for comparison, its naive count), computed by
    :func:`redundancy.linear.bounds.sample_complexity` and rounded up. The dof of each design comes from
    :func:`design_dof` unless ``dof=(dof_original, dof_compressed)`` is given (then ``naive``
    defaults to the parameter counts).

    Money (only for the unit costs given): data cost ``n * cost_per_sample`` of each design;
    serving cost per month ``macs / 1e9 * cost_per_gmac * inferences_per_month``; the break-even
    month ``t*`` solves ``data_o + t serving_o = data_c + t serving_c``.

    Parameters
    ----------
    original, compressed : torch.nn.Module
        The two designs; they must accept inputs of shape ``(batch, *input_shape)``.
    input_shape : tuple of int
        One input without the batch dimension, e.g. ``(3, 32, 32)``.
    dtype : torch.dtype
        Dtype for memory (bytes) and for latency measurement.
    batch_sizes, repeats, warmup
        The latency sweep. ``measure=False`` skips latency (``latency=()``).
    eps, sigma, constant, log_factor
        Target prediction error, noise level and the bound's constants.
    cost_per_sample, cost_per_gmac, inferences_per_month : float, optional
        Unit costs (any currency) and serving volume.
    dof, naive : pair of int, optional
        Override the designs' dof / naive counts.
    allow_partial : bool
        The two designs are compared only at full coverage (every linear segment of both designs
        has a dof). When a segment of either design was skipped, ``estimate_roi`` refuses
        (``RedundancyError`` naming the skipped segments) unless ``allow_partial=True``: then it
        warns (``RuntimeWarning`` and a note in the result) and the data and money figures compare
        sums over different coverage (``coverage_original``, ``coverage_compressed``).
    seed : int
        Seed of the latency inputs.
    progress : bool
        Show a progress bar over the latency sweep.
    threads : int or None
        torch intra-op threads while timing latency (default 1, so a busy machine does not inflate
        the numbers; ``None`` keeps torch's current setting). Recorded in every ``LatencyPoint``.
    data, tail_scores, tail_fraction : optional
        With a classification ``data`` set: the long-tail cost, ``long_tail`` =
        :func:`redundancy.longtail.tail_flip_rates` (flip rate overall and on the ``tail_fraction``
        of test examples with the highest ``tail_scores``, or of the rarest classes).

    Examples
    --------
    >>> from torch import nn
    >>> a = nn.Sequential(nn.Conv2d(8, 8, 3), nn.Flatten(), nn.Linear(8 * 4 * 4, 1))
    >>> b = nn.Sequential(nn.Conv2d(8, 2, 1), nn.Conv2d(2, 8, 3), nn.Flatten(), nn.Linear(128, 1))
    >>> roi = estimate_roi(a, b, (8, 6, 6), measure=False, eps=0.5)
    >>> roi.params_saved > 0 and roi.n_compressed < roi.n_original
    True
    """
    _v.check_finite_module("original", original)  # no lazy/meta parameters, no NaN/inf weights
    _v.check_finite_module("compressed", compressed)
    shape = check_shape("input_shape", input_shape)
    _v.check_bool("measure", measure)
    _v.check_bool("progress", progress)
    if threads is not None:
        _v.check_int("threads", threads, min_value=1, max_value=MAX_THREADS)
    dtype = _dtype(dtype)
    bs = check_shape("batch_sizes", batch_sizes)
    repeats = check_int("repeats", repeats, min_value=1, max_value=10_000)
    warmup = check_int("warmup", warmup, min_value=0, max_value=10_000)
    eps = check_positive_float("eps", eps)
    sigma = check_positive_float("sigma", sigma)
    constant = check_positive_float("constant", constant)
    log_factor = check_positive_float("log_factor", log_factor)
    seed = check_int("seed", seed, min_value=0, max_value=2 ** 63 - 1)
    cps = None if cost_per_sample is None else check_nonnegative_float("cost_per_sample", cost_per_sample)
    cpg = None if cost_per_gmac is None else check_nonnegative_float("cost_per_gmac", cost_per_gmac)
    ipm = None if inferences_per_month is None else check_nonnegative_float(
        "inferences_per_month", inferences_per_month)

    dof = None if dof is None else list(check_shape("dof", dof, min_len=2, max_len=2))
    naive = None if naive is None else list(check_shape("naive", naive, min_len=2, max_len=2))
    from redundancy.counts import parameter_count

    params = [parameter_count(original), parameter_count(compressed)]
    macs = [_macs(original, shape), _macs(compressed, shape)]
    itemsize = torch.empty((), dtype=dtype).element_size()
    if not isinstance(allow_partial, bool):
        raise RedundancyError(f"allow_partial={allow_partial!r} is not allowed; use True or False")
    cov, partial_note = [1.0, 1.0], None
    if dof is None:
        do, dc = design_dof_coverage(original, shape), design_dof_coverage(compressed, shape)
        src = do["source"] if do["source"] == dc["source"] else f"{do['source']}/{dc['source']}"
        dofs, naives = [do["dof"], dc["dof"]], [do["naive"], dc["naive"]] if naive is None else naive
        cov = [do["coverage"], dc["coverage"]]
        if do["skipped"] or dc["skipped"]:
            partial_note = (f"INCOMPLETE COVERAGE: original: {do['coverage_text']}; compressed: "
                            f"{dc['coverage_text']}. The data and money figures compare dof sums over "
                            "different parts of the two designs and are not a like-for-like estimate.")
            if not allow_partial:
                raise RedundancyError(partial_note + " estimate_roi refuses to give them; pass "
                                      "allow_partial=True to get them with this warning, or dof=(...)")
            import warnings

            warnings.warn(partial_note, RuntimeWarning, stacklevel=2)
    else:
        dofs, naives, src = dof, params if naive is None else naive, "given"
    samples = [_samples(d, nv, eps, sigma, constant, log_factor) for d, nv in zip(dofs, naives)]

    latency: tuple[LatencyPoint, ...] = ()
    notes = [SLOWER_NOTE, "Parameter, MAC and byte savings are upper bounds on deployment gains."]
    if partial_note:
        notes.insert(0, partial_note)
    if src != "whole-network":
        notes.append("The models are not linear in their input: dof and naive counts are sums over "
                     "maximal linear segments (a proxy), or given by the caller.")
    if measure:
        lat = measure_latency([original, compressed], shape, batch_sizes=bs, repeats=repeats,
                              warmup=warmup, dtype=dtype, seed=seed, progress=progress, threads=threads)
        latency = tuple(LatencyPoint.from_table(lat, b) for b in bs)
        slower = [p.batch_size for p in latency if p.speedup < 1]
        if slower:
            notes.append(f"Measured here: the compressed model is SLOWER at batch size(s) {slower}.")

    long_tail = None
    if data is not None:
        from redundancy.longtail.tail import tail_flip_rates

        long_tail = tail_flip_rates(original, compressed, data, tail_scores, fraction=tail_fraction)
    data_cost, serving, be, cheaper = cost_comparison([n for n, _ in samples], macs, cps, cpg, ipm)
    return RoiResult(
        input_shape=shape, dtype=str(dtype).replace("torch.", ""), eps=eps, sigma=sigma,
        cost_per_sample=cps, cost_per_gmac=cpg, inferences_per_month=ipm, batch_sizes=bs,
        repeats=repeats, warmup=warmup, seed=seed,
        params_original=params[0], params_compressed=params[1], macs_original=macs[0],
        macs_compressed=macs[1], bytes_original=params[0] * itemsize,
        bytes_compressed=params[1] * itemsize, dof_original=dofs[0], dof_compressed=dofs[1],
        naive_original=naives[0], naive_compressed=naives[1], dof_source=src,
        n_original=samples[0][0], n_compressed=samples[1][0], n_naive_original=samples[0][1],
        n_naive_compressed=samples[1][1], latency=latency, data_cost_original=data_cost[0],
        data_cost_compressed=data_cost[1], serving_cost_per_month_original=serving[0],
        serving_cost_per_month_compressed=serving[1], break_even_months=be,
        cheaper_after_break_even=cheaper, notes=tuple(notes), coverage_original=cov[0],
        coverage_compressed=cov[1], long_tail=long_tail)
