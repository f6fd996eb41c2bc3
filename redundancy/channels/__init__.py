"""The shared channel layer: coupled channel groups, masks, importances and the one removal route.

* :func:`find_groups`: the units of a CNN (one output channel with everything coupled to it:
  BatchNorm, the consumers' inputs, residual partners, depthwise and grouped convs), from
  Torch-Pruning's dependency graph (:mod:`.groups`);
* :func:`masked_forward`: the model with some units zeroed; many masked variants per forward pass
  (:mod:`.masks`);
* :class:`Importance` and its data-free and data-driven scores :class:`L1`, :class:`L2`,
  :class:`BatchNormScale`, :class:`Taylor` (:mod:`.importance`; CAR lives in
  :mod:`redundancy.pruning`, the inclusion probability in :mod:`redundancy.bayes`);
* :func:`prune_units`: the physically smaller copy, through Torch-Pruning (:mod:`.removal`).

Pruning, the Bayesian pruning, the scoreboard and the long-tail compressions use it; nothing else
removes channels or computes these scores.
"""

from redundancy.channels.groups import find_groups
from redundancy.channels.importance import L1, L2, BatchNormScale, Importance, Taylor
from redundancy.channels.masks import masked_forward
from redundancy.channels.removal import prune_units

__all__ = ["find_groups", "masked_forward", "prune_units", "Importance", "L1", "L2", "BatchNormScale", "Taylor"]
