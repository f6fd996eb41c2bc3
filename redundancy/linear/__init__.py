"""The linear model and its theory.

With linear activations the weights of all layers collapse into one whole-network tensor ``W``
(``model(x) = <W, x> + b``). This subpackage holds that tensor (:mod:`.tensor`), the statistical
model of the paper (:mod:`.statmodel`), linear-CNN specs and their factorised layers
(:mod:`.spec`, :mod:`.layers`), the degrees of freedom of the reachable ``(W, b)`` (:mod:`.dof`,
closed forms in :mod:`.dof_closed`, the numerical rank in :mod:`.dof_numerical`) and the
sample-complexity bounds with K/R (:mod:`.bounds`).

Imports: only the top-level base modules (``errors``, ``_validation``, ``counts``).
"""

from redundancy.linear.bounds import ErrorBound, SampleComplexity, error_bound, kr_ratio, sample_complexity
from redundancy.linear.dof import DofResult, degrees_of_freedom
from redundancy.linear.spec import AvgPool, Conv, CPConv, Dense, LinearCNN, TuckerConv
from redundancy.linear.statmodel import BasicCNN
from redundancy.linear.tensor import WholeNetworkTensor, whole_network_tensor

__all__ = [
    "whole_network_tensor", "WholeNetworkTensor", "degrees_of_freedom", "DofResult",
    "LinearCNN", "Conv", "TuckerConv", "CPConv", "AvgPool", "Dense", "BasicCNN",
    "sample_complexity", "SampleComplexity", "error_bound", "ErrorBound", "kr_ratio",
]
