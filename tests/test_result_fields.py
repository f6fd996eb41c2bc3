"""Result objects refuse NaN/inf fields at construction (issue 12: results never hold NaN/inf unless
the field documents it), whoever builds them."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

import redundancy._validation as _v
from redundancy.analysis.latency import LatencyPoint
from redundancy.errors import RedundancyError
from redundancy.linear.bounds import SampleComplexity
from redundancy.linear.dof import DofResult
from redundancy.lowrank.evbmf import EVBMFResult
from redundancy.training.evaluation import EvalResult

CORE_RESULTS = [
    "redundancy.linear.dof.DofResult", "redundancy.linear.dof_numerical.NumericalRank",
    "redundancy.linear.bounds.SampleComplexity", "redundancy.linear.bounds.ErrorBound",
    "redundancy.linear.bounds.KRResult", "redundancy.linear.tensor.WholeNetworkTensor",
    "redundancy.analysis.report.LayerRow", "redundancy.analysis.report.BlockRow",
    "redundancy.analysis.report.SegmentRow", "redundancy.analysis.report.RedundancyReport",
    "redundancy.analysis.latency.LatencyPoint", "redundancy.analysis.segdof.SegmentDof",
    "redundancy.analysis.summary.ReportSummary", "redundancy.analysis.roi.RoiResult",
    "redundancy.lowrank.compression.LayerCompression", "redundancy.lowrank.compression.CompressionResult",
    "redundancy.lowrank.multilinear.MultilinearRankCheck", "redundancy.lowrank.ranks.RankSelection",
    "redundancy.lowrank.evbmf.EVBMFResult", "redundancy.validation.fit.FitResult",
    "redundancy.lowrank.cp.CPDecomposition", "redundancy.lowrank.tucker.TuckerDecomposition",
    "redundancy.validation.validate.ErrorCurveResult", "redundancy.training.evaluation.EvalResult",
    "redundancy.training.loop.TrainResult", "redundancy.training.ensemble.EnsembleTrainResult",
]


def _cls(path):
    import importlib

    mod, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(mod), name)


@pytest.mark.parametrize("path", CORE_RESULTS)
def test_every_core_result_checks_its_fields(path):
    cls = _cls(path)
    assert dataclasses.is_dataclass(cls)
    assert "NaN/inf" in (cls.__post_init__.__doc__ or ""), f"{path} has no finite-field check"


def test_dof_result_refuses_nan_but_keeps_an_infinite_gap():
    ok = DofResult(dof=3, gap=math.inf, method="numerical", naive=4)
    assert ok.gap == math.inf
    with pytest.raises(RedundancyError, match=r"DofResult\.tol holds nan"):
        DofResult(dof=3, gap=None, method="numerical", naive=4, tol=float("nan"))


def test_arrays_tensors_and_nested_fields_are_checked():
    sv = np.array([3.0, np.inf])
    with pytest.raises(RedundancyError, match=r"EVBMFResult\.singular_values holds 1 NaN/inf"):
        EVBMFResult(rank=1, singular_values=sv, shrunk=np.zeros(2), sigma2=1.0, threshold=1.0, tau=1.0, alpha=0.5,
                    shape=(2, 2), transposed=False, sigma2_estimated=True, n_degenerate=0)
    with pytest.raises(RedundancyError, match=r"EvalResult\.\w+ holds"):
        EvalResult(task="classification", n=3, loss=0.1, accuracy=float("nan"), per_class_accuracy=np.ones(1),
                   r2=None, predictions=np.zeros(3), correct=np.ones(3))
    with pytest.raises(RedundancyError, match=r"LatencyPoint\.\w+ holds"):
        LatencyPoint(1, 1e-3, 1e-3, 1e-3, float("inf"), 1e-3, 1e-3, 1.0, 1.0, 1.0, threads=1)
    finite = torch.ones(3)
    with pytest.raises(RedundancyError):
        _v.check_result_fields(_Holder({"a": (1.0, [2.0, float("nan")])}))
    _v.check_result_fields(_Holder({"a": (1.0, [2.0, finite])}))


@dataclasses.dataclass
class _Holder:
    value: object


def test_sample_complexity_constructed_with_inf_is_refused():
    fields = {f.name for f in dataclasses.fields(SampleComplexity)}
    assert "eps" in fields
    kw = {f.name: 1 for f in dataclasses.fields(SampleComplexity)
          if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    kw["eps"] = float("inf")
    with pytest.raises(RedundancyError, match="eps"):
        SampleComplexity(**kw)


def test_check_finite_result_on_tensors_and_tuples():
    """The shared overflow check sees inside tuples and tensors (with gradients) and passes finite ones."""
    t = torch.ones(3, requires_grad=True) * 2
    assert _v.check_finite_result("x", t) is t
    pair = (np.ones(2), np.zeros((3, 1)))
    assert _v.check_finite_result("pair", pair) is pair
    with pytest.raises(RedundancyError, match=r"pair is not finite.*rescale"):
        _v.check_finite_result("pair", (np.ones(2), np.array([[np.inf]])), "rescale")
    with pytest.raises(RedundancyError, match="t is not finite"):
        _v.check_finite_result("t", torch.tensor([1.0, float("nan")], requires_grad=True))
    _v.check_param_count("net", 10, 10)
    with pytest.raises(RedundancyError, match="net would have 11 parameters; the limit is 10"):
        _v.check_param_count("net", 11, 10)
