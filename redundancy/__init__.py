"""redundancy: how much of a (compressed) CNN is redundant, in parameters, data and money.

The pipeline: a linear (or linearisable) torch model → whole-network tensor ``W`` → structure
(Tucker/CP) and degrees of freedom → sample-complexity bounds and K/R → report, plots, ROI.
"""

from .errors import (CheckpointError, NotLinearError, RankError, RedundancyError,
                     UnsupportedLayerError)
from .spec import LinearCNN
from .statmodel import BasicCNN
from .counts import parameter_count
from .tensor import WholeNetworkTensor, whole_network_tensor

__version__ = "0.1.0"

__all__ = [
    "RedundancyError", "NotLinearError", "UnsupportedLayerError", "RankError", "CheckpointError",
    "whole_network_tensor", "WholeNetworkTensor", "LinearCNN", "BasicCNN", "parameter_count",
]
