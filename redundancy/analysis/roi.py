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

import numpy as np
import torch
from torch import nn

from redundancy.errors import RedundancyError
from redundancy.analysis.design_dof import _design_dof_coverage, design_dof, design_dof_coverage  # noqa: F401
from redundancy.analysis.latency import (DEFAULT_THREADS, MAX_THREADS, LatencyPoint, _dtype, _measure_latency,
                                        measure_latency)
import redundancy._validation as _v

__all__ = ["estimate_roi", "RoiResult"]  # the face is redundancy.analysis; the rest is importable from here


from redundancy.analysis.roi_result import (SLOWER_NOTE, RoiData, RoiDesign, RoiMoney, RoiResult,  # noqa: F401
                                        RoiRisk)


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
    return _cost_comparison(samples, macs, cost_per_sample, cost_per_gmac, inferences_per_month)


def _cost_comparison(samples, macs, cost_per_sample, cost_per_gmac, inferences_per_month):
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


def _check_float_dtype(name, value):
    return _dtype(value)


_POSITIVE = _v.Check(_v.check_positive_float)
_MONEY = _v.NoneOr(_v.Check(_v.check_nonnegative_float))

ESTIMATE_ROI_PARAMS = {
    "original": _v.Module(finite=True), "compressed": _v.Module(finite=True), "input_shape": _v.Shape(),
    "dtype": _v.Check(_check_float_dtype), "batch_sizes": _v.Shape(), "repeats": _v.Int(1, 10_000),
    "warmup": _v.Int(0, 10_000), "eps": _POSITIVE, "sigma": _POSITIVE, "constant": _POSITIVE,
    "log_factor": _POSITIVE, "cost_per_sample": _MONEY, "cost_per_gmac": _MONEY, "inferences_per_month": _MONEY,
    "dof": _v.NoneOr(_v.Shape(2, 2)), "naive": _v.NoneOr(_v.Shape(2, 2)), "measure": _v.Bool(),
    "seed": _v.Int(0, 2 ** 63 - 1), "progress": _v.Bool(), "allow_partial": _v.Bool(),
    "tail_fraction": _v.Float(0.0, 1.0, lo_open=True), "threads": _v.NoneOr(_v.Int(1, MAX_THREADS))}


@_v.validate_params(ESTIMATE_ROI_PARAMS)
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
    return _estimate_roi(original, compressed, tuple(input_shape), dtype=dtype, batch_sizes=tuple(batch_sizes),
                         repeats=repeats, warmup=warmup, eps=eps, sigma=sigma, constant=constant,
                         log_factor=log_factor, cost_per_sample=cost_per_sample, cost_per_gmac=cost_per_gmac,
                         inferences_per_month=inferences_per_month, dof=dof, naive=naive, measure=measure,
                         seed=seed, progress=progress, allow_partial=allow_partial, data=data,
                         tail_scores=tail_scores, tail_fraction=tail_fraction, threads=threads)


def _design(original, compressed, shape, dtype) -> RoiDesign:
    from redundancy.counts import parameter_count

    params = [parameter_count(original), parameter_count(compressed)]
    macs = [_macs(original, shape), _macs(compressed, shape)]
    itemsize = torch.empty((), dtype=dtype).element_size()
    return RoiDesign(dtype=str(dtype).replace("torch.", ""), params_original=params[0],
                     params_compressed=params[1], macs_original=macs[0], macs_compressed=macs[1],
                     bytes_original=params[0] * itemsize, bytes_compressed=params[1] * itemsize)


def _dofs(original, compressed, shape, design: RoiDesign, dof, naive, allow_partial):
    """``(dofs, naives, source, coverage, partial_note)`` of the two designs."""
    if dof is not None:
        naives = [design.params_original, design.params_compressed] if naive is None else list(naive)
        return list(dof), naives, "given", [1.0, 1.0], None
    do, dc = _design_dof_coverage(original, shape), _design_dof_coverage(compressed, shape)
    src = do["source"] if do["source"] == dc["source"] else f"{do['source']}/{dc['source']}"
    naives = [do["naive"], dc["naive"]] if naive is None else list(naive)
    partial_note = None
    if do["skipped"] or dc["skipped"]:
        partial_note = (f"INCOMPLETE COVERAGE: original: {do['coverage_text']}; compressed: "
                        f"{dc['coverage_text']}. The data and money figures compare dof sums over "
                        "different parts of the two designs and are not a like-for-like estimate.")
        if not allow_partial:
            raise RedundancyError(partial_note + " estimate_roi refuses to give them; pass "
                                  "allow_partial=True to get them with this warning, or dof=(...)")
        import warnings

        warnings.warn(partial_note, RuntimeWarning, stacklevel=6)  # the caller of estimate_roi
    return [do["dof"], dc["dof"]], naives, src, [do["coverage"], dc["coverage"]], partial_note


def _data(original, compressed, shape, design, *, dof, naive, allow_partial, eps, sigma, constant, log_factor):
    dofs, naives, src, cov, partial_note = _dofs(original, compressed, shape, design, dof, naive, allow_partial)
    samples = [_samples(d, nv, eps, sigma, constant, log_factor) for d, nv in zip(dofs, naives)]
    return RoiData(eps=eps, sigma=sigma, dof_original=dofs[0], dof_compressed=dofs[1], naive_original=naives[0],
                   naive_compressed=naives[1], dof_source=src, n_original=samples[0][0], n_compressed=samples[1][0],
                   n_naive_original=samples[0][1], n_naive_compressed=samples[1][1], coverage_original=cov[0],
                   coverage_compressed=cov[1]), partial_note


def _money(data: RoiData, design: RoiDesign, cps, cpg, ipm) -> RoiMoney:
    cost, serving, be, cheaper = _cost_comparison([data.n_original, data.n_compressed],
                                                  [design.macs_original, design.macs_compressed], cps, cpg, ipm)
    return RoiMoney(cost_per_sample=cps, cost_per_gmac=cpg, inferences_per_month=ipm, data_cost_original=cost[0],
                    data_cost_compressed=cost[1], serving_cost_per_month_original=serving[0],
                    serving_cost_per_month_compressed=serving[1], break_even_months=be,
                    cheaper_after_break_even=cheaper)


def _notes(partial_note, src, latency) -> tuple[str, ...]:
    notes = [SLOWER_NOTE, "Parameter, MAC and byte savings are upper bounds on deployment gains."]
    if partial_note:
        notes.insert(0, partial_note)
    if src != "whole-network":
        notes.append("The models are not linear in their input: dof and naive counts are sums over "
                     "maximal linear segments (a proxy), or given by the caller.")
    slower = [p.batch_size for p in latency if p.speedup < 1]
    if slower:
        notes.append(f"Measured here: the compressed model is SLOWER at batch size(s) {slower}.")
    return tuple(notes)


def _estimate_roi(original, compressed, shape, *, dtype=torch.float32, batch_sizes=(1, 8, 32), repeats=20,
                  warmup=3, eps=0.1, sigma=1.0, constant=1.0, log_factor=1.0, cost_per_sample=None,
                  cost_per_gmac=None, inferences_per_month=None, dof=None, naive=None, measure=True, seed=0,
                  progress=False, allow_partial=False, data=None, tail_scores=None, tail_fraction=0.1,
                  threads=DEFAULT_THREADS) -> RoiResult:
    """The kernel of :func:`estimate_roi` (arguments already checked)."""
    design = _design(original, compressed, shape, dtype)
    needs, partial_note = _data(original, compressed, shape, design, dof=dof, naive=naive,
                                allow_partial=allow_partial, eps=eps, sigma=sigma, constant=constant,
                                log_factor=log_factor)
    latency: tuple[LatencyPoint, ...] = ()
    if measure:
        lat = _measure_latency([original, compressed], shape, batch_sizes=batch_sizes, repeats=repeats,
                               warmup=warmup, dtype=dtype, seed=seed, progress=progress, threads=threads)
        latency = tuple(LatencyPoint.from_table(lat, b) for b in batch_sizes)
    risk = RoiRisk()
    if data is not None:
        from redundancy.longtail.tail import tail_flip_rates

        risk = RoiRisk(long_tail=tail_flip_rates(original, compressed, data, tail_scores, fraction=tail_fraction))
    return RoiResult(input_shape=shape, batch_sizes=batch_sizes, repeats=repeats, warmup=warmup, seed=seed,
                     design=design, data=needs,
                     money=_money(needs, design, cost_per_sample, cost_per_gmac, inferences_per_month),
                     risk=risk, latency=latency, notes=_notes(partial_note, needs.dof_source, latency))
