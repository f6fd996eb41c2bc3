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


def _result_classes() -> list[str]:
    """Every result class of the package: the list above, every class named ``*Result`` and every
    subclass of the result base ``redundancy._validation.Result`` (found again on each run, so classes
    that move or convert to the base are followed)."""
    import importlib
    import inspect
    import pkgutil

    import redundancy

    found = set(CORE_RESULTS)
    for info in pkgutil.walk_packages(redundancy.__path__, prefix="redundancy."):
        if info.name.endswith("__main__"):
            continue
        try:
            mod = importlib.import_module(info.name)
        except ImportError:  # an optional dependency (torchvision, ...) is missing
            continue
        for name, obj in vars(mod).items():
            if (inspect.isclass(obj) and obj.__module__ == mod.__name__ and obj is not _v.Result
                    and not name.startswith("_")
                    and (name.endswith("Result") or issubclass(obj, _v.Result))):
                found.add(f"{mod.__name__}.{name}")
    return sorted(found)


RESULT_CLASSES = _result_classes()

#: result classes that had no finite-field check when this test was widened (issue 22): their areas
#: convert them to the ``Result`` base; they run as non-strict xfails until then, and each leaves this
#: set (the lead removes it) once its conversion is merged.
NOT_YET_CHECKED: set[str] = set()  # every result class is on the Result base now


def _params(paths):
    return [pytest.param(p, marks=pytest.mark.xfail(reason="issue 22: not converted to Result yet", strict=False))
            if p in NOT_YET_CHECKED else p for p in paths]


def _built_with_result(cls) -> bool:
    """True for a Result subclass decorated with ``@result`` itself (frozen, keyword-only, its own
    allowance list; not one that only inherits from a decorated parent)."""
    return (issubclass(cls, _v.Result) and "_allow_nonfinite" in cls.__dict__
            and hasattr(cls.__dict__.get("__post_init__"), "_own")
            and cls.__dataclass_params__.frozen)


def _allowed(cls) -> tuple[str, ...]:
    allowed = tuple(getattr(cls, "_allow_nonfinite", ()))
    doc = cls.__post_init__.__doc__ or ""
    if "(except " in doc:  # the old decorator names its allowances in the check's docstring
        allowed += tuple(n.strip() for n in doc.split("(except ", 1)[1].split(")", 1)[0].split(","))
    return allowed


def _refusable_field(cls):
    """A field that may hold a float (and is not allowed to be non-finite), with a non-finite value for it."""
    allowed = _allowed(cls)
    for f in dataclasses.fields(cls):
        text = str(f.type)
        if f.name in allowed or not f.init:
            continue
        if "float" in text:
            return f.name, float("nan")
        if "ndarray" in text or "Tensor" in text:
            return f.name, np.array([1.0, np.inf])
    return None, None


def test_the_result_classes_are_found():
    assert len(RESULT_CLASSES) >= len(CORE_RESULTS)
    assert "redundancy.bayes.result.SpikeSlabResult" in RESULT_CLASSES


@pytest.mark.parametrize("path", _params(RESULT_CLASSES))
def test_every_result_checks_its_fields(path):
    """Built with ``@result`` on the ``Result`` base, or (until it is converted) with the old finite
    check; either way a dataclass whose construction refuses NaN/inf."""
    cls = _cls(path)
    assert dataclasses.is_dataclass(cls), f"{path} is not a dataclass"
    assert _built_with_result(cls) or "NaN/inf" in (cls.__post_init__.__doc__ or ""), \
        f"{path} is neither built with @result nor has a finite-field check"


@pytest.mark.parametrize("path", _params(RESULT_CLASSES))
def test_every_result_refuses_a_nonfinite_field(path):
    """A non-finite value in a field outside the allowances is refused with a RedundancyError that
    names the class and the field (the class's own ``__post_init__`` runs first; where it cannot run
    on a bare instance, the check it delegates to is called with the class's allowances)."""
    cls = _cls(path)
    name, bad = _refusable_field(cls)
    if name is None:
        pytest.skip(f"{path} has no float or array field to refuse")
    obj = object.__new__(cls)
    for f in dataclasses.fields(cls):
        object.__setattr__(obj, f.name, None)
    object.__setattr__(obj, name, bad)
    try:
        cls.__post_init__(obj)
    except Exception as exc:  # noqa: BLE001 - the own __post_init__ may need the other fields
        if isinstance(exc, RedundancyError) and f"{cls.__name__}.{name}" in str(exc):
            return
        with pytest.raises(RedundancyError, match=f"{cls.__name__}.{name}"):
            _v.check_result_fields(obj, allow=_allowed(cls))
        return
    pytest.fail(f"{path} accepted {name}={bad!r}")


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
        LatencyPoint(batch_size=1, original_median_s=1e-3, original_q25_s=1e-3, original_q75_s=1e-3,
                     compressed_median_s=float("inf"), compressed_q25_s=1e-3, compressed_q75_s=1e-3,
                     ratio_median=1.0, ratio_q25=1.0, ratio_q75=1.0, threads=1)
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
