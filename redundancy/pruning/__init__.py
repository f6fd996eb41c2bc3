"""Channel pruning by Classification Accuracy Reduction (CAR) and its baselines.

* :func:`car_scores` / :class:`CARResult`: accuracy (or loss, R², a caller's metric) drop of every
  channel, class-wise CAR, layer redundancy curves; many masked variants per forward pass.
* :func:`car_prune` / :func:`prune` / :class:`PruneResult`: greedy CAR pruning with recomputation
  (or a baseline criterion), physical removal with Torch-Pruning, optional fine-tuning.
* Baselines: :func:`l1_scores`, :func:`l2_scores`, :func:`random_scores`, :func:`activation_scores`,
  :func:`taylor_scores`.
"""

from redundancy.pruning.baselines import (BASELINES, ChannelScores, activation_scores, baseline_scores, l1_scores,
                                          l2_scores, random_scores, taylor_scores)
from redundancy.pruning.car import CARResult, car_scores, layer_redundancy
from redundancy.pruning.greedy import CRITERIA, PruneResult, car_prune, finetuned_curve, prune
from redundancy.channels import find_groups, masked_forward, prune_units
from redundancy.channels.groups import ChannelGroup
from redundancy.pruning.models import simple_cnn

__all__ = ["CARResult", "car_scores", "layer_redundancy", "PruneResult", "prune", "car_prune", "finetuned_curve",
           "CRITERIA",
           "ChannelScores", "baseline_scores", "l1_scores", "l2_scores", "random_scores", "activation_scores",
           "taylor_scores", "BASELINES", "ChannelGroup", "find_groups", "masked_forward", "prune_units",
           "simple_cnn"]
