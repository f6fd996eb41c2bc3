"""The degrees of freedom and naive count of one design, as :func:`~redundancy.analysis.roi.estimate_roi`
uses them: the whole-network dof for a linear model, else the sum over its maximal linear segments,
with the coverage (how much of the design was counted)."""

from __future__ import annotations

from typing import Any

from torch import nn

import redundancy._validation as _v
from redundancy.errors import NotLinearError, RedundancyError

__all__ = ["design_dof"]  # the face is redundancy.analysis; the rest is importable from here



@_v.validate_params({"model": _v.Module(finite=True), "input_shape": _v.Shape(1, 6), "max_params": _v.Int(0, 10 ** 9)})
def design_dof(model: nn.Module, input_shape, *, max_params: int = 50_000) -> tuple[int, int, str]:
    """Degrees of freedom and naive count of one design, as used by :func:`estimate_roi`:
    ``(dof, naive, source)``; see :func:`design_dof_coverage` (which also says how much was covered)."""
    d = _design_dof_coverage(model, input_shape, max_params=max_params)
    return d["dof"], d["naive"], d["source"]


@_v.validate_params({"model": _v.Module(finite=True), "input_shape": _v.Shape(1, 6), "max_params": _v.Int(0, 10 ** 9)})
def design_dof_coverage(model: nn.Module, input_shape, *, max_params: int = 50_000) -> dict[str, Any]:
    """Degrees of freedom of one design with its coverage.

    A model that is linear in its input is measured as a whole (``redundancy.linear.dof.degrees_of_freedom``,
    ``source="whole-network"``, coverage 1). For a non-linear model there is no whole-network tensor; the
    design's dof is then the sum over its maximal linear segments of the segment dof reported by
    :func:`redundancy.analysis.report.analyze` (its ``summary.segment_dof``), and the naive count the
    sum of the segments' naive counts (``summary.segment_naive``, ``source="segments"``): a proxy
    that treats the segments as separately estimated linear maps. ``coverage`` is the fraction of
    the segments' kernel parameters whose dof was computed (``summary.coverage_params``) and
    ``skipped`` lists the segments left out with their reasons. A linear model with more than
    ``max_params`` parameters also takes the segment route.

    Returns
    -------
    dict with ``dof``, ``naive``, ``source``, ``coverage``, ``coverage_text``, ``skipped``.
    """
    return _design_dof_coverage(model, input_shape, max_params=max_params)


def _design_dof_coverage(model, input_shape, *, max_params: int = 50_000) -> dict[str, Any]:
    from redundancy.counts import parameter_count
    from redundancy.linear.dof import degrees_of_freedom
    from redundancy.linear.tensor import find_nonlinear_module

    if find_nonlinear_module(model) is None and parameter_count(model) <= max_params:
        try:
            res = degrees_of_freedom(model, input_shape, method="auto")
            return {"dof": int(res.dof), "naive": int(res.naive), "source": "whole-network", "coverage": 1.0,
                    "coverage_text": "whole network (linear model)", "skipped": ()}
        except (NotLinearError, RedundancyError):  # non-linear through functional calls, or too large
            pass
    from redundancy.analysis.report import analyze

    summ = analyze(model, input_shape, progress=False).summary
    if not summ.segment_dof:
        raise RedundancyError("the model has no analysable linear segment; pass dof=(dof_original, "
                              "dof_compressed) and naive=(...) to estimate_roi explicitly")
    return {"dof": int(summ.segment_dof), "naive": int(summ.segment_naive), "source": "segments",
            "coverage": float(summ.coverage_params), "coverage_text": summ.coverage_text(),
            "skipped": summ.skipped}
