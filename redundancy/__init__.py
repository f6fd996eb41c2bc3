"""redundancy: how much of a (compressed) CNN is redundant, in parameters, data and money.

The pipeline: a linear (or linearisable) torch model → whole-network tensor ``W`` → structure
(Tucker/CP) and degrees of freedom → sample-complexity bounds and K/R → report, plots, ROI.
Everything else is importable from its module (``redundancy.lowrank.ranks``, ``redundancy.linear.spec``, ...).
"""

from importlib import import_module
from typing import Any

from redundancy.linear.bounds import ErrorBound, KRResult, SampleComplexity, error_bound, kr_ratio, sample_complexity
from redundancy.counts import count_macs, memory_bytes, parameter_count
from redundancy.linear.dof import DofResult, degrees_of_freedom
from redundancy.errors import (CheckpointError, NotLinearError, RankError, RedundancyError,
                               UnsupportedLayerError)
from redundancy.linear.spec import LinearCNN
from redundancy.linear.statmodel import BasicCNN
from redundancy.linear.tensor import WholeNetworkTensor, whole_network_tensor

__version__ = "0.1.0"

# Heavier parts (tensorly, the tracer) load on first use, so `import redundancy` stays light.
_LAZY = {
    "zoo": ("zoo", None),
    "compress": ("lowrank.compression", "compress"), "CompressionResult": ("lowrank.compression", "CompressionResult"),
    "tucker_decompose": ("lowrank.decompose", "tucker_decompose"), "cp_decompose": ("lowrank.decompose", "cp_decompose"),
    "decompose_layer": ("lowrank.decompose", "decompose_layer"),
    "decompose_whole_network": ("lowrank.decompose", "decompose_whole_network"),
    "multilinear_rank_check": ("lowrank.multilinear", "multilinear_rank_check"),
    "evbmf": ("lowrank.ranks", "evbmf"), "rank_rule": ("lowrank.ranks", "rank_rule"),
    "analyze": ("analysis.report", "analyze"), "RedundancyReport": ("analysis.report", "RedundancyReport"),
    "estimate_roi": ("analysis.roi", "estimate_roi"), "RoiResult": ("analysis.roi", "RoiResult"),
    "BoundVsCountDisplay": ("plotting", "BoundVsCountDisplay"),
    "ErrorCurveDisplay": ("plotting", "ErrorCurveDisplay"), "RoiDisplay": ("plotting", "RoiDisplay"),
    "load_weights": ("checkpoint", "load_weights"),
}


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'redundancy' has no attribute {name!r}") from None
    mod = import_module(f".{module}", __name__)
    value = mod if attr is None else getattr(mod, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

__all__ = [
    # errors
    "RedundancyError", "NotLinearError", "UnsupportedLayerError", "RankError", "CheckpointError",
    # the whole-network tensor and the statistical model
    "whole_network_tensor", "WholeNetworkTensor", "LinearCNN", "BasicCNN",
    # counts, degrees of freedom, bounds, K/R
    "parameter_count", "count_macs", "memory_bytes", "degrees_of_freedom", "DofResult",
    "sample_complexity", "SampleComplexity", "error_bound", "ErrorBound", "kr_ratio", "KRResult",
    # structure
    "tucker_decompose", "cp_decompose", "decompose_layer", "decompose_whole_network",
    "compress", "CompressionResult", "evbmf", "rank_rule", "multilinear_rank_check",
    # analyst surface
    "analyze", "RedundancyReport", "zoo", "estimate_roi", "RoiResult", "load_weights",
    "BoundVsCountDisplay", "ErrorCurveDisplay", "RoiDisplay",
]
