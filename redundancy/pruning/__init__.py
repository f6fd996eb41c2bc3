"""Channel pruning by Classification Accuracy Reduction (CAR) and its baselines.

* :func:`car_scores` / :class:`CARResult`: accuracy (or loss, R², a caller's metric) drop of every
  channel, class-wise CAR, layer redundancy curves (:func:`layer_redundancy`); many masked variants
  per forward pass.
* :func:`prune` / :func:`car_prune` / :class:`PruneResult`: greedy CAR pruning with recomputation
  (or a baseline criterion), physical removal through :func:`redundancy.channels.prune_units`,
  optional fine-tuning; :func:`finetuned_curve`.
* :func:`baseline_scores` / :class:`ChannelScores`: the baselines ``l1``, ``l2``, ``random``,
  ``activation``, ``taylor`` (the shortcuts ``l1_scores``, ... stay in :mod:`.baselines`).
* The small CNN the experiment, the CLI and the docs prune is :func:`redundancy.zoo.simple_cnn`.

Channel groups, masks, importances and removal live in :mod:`redundancy.channels`.
"""

from redundancy.pruning.baselines import ChannelScores, baseline_scores
from redundancy.pruning.car import CARResult, car_scores, layer_redundancy
from redundancy.pruning.greedy import PruneResult, car_prune, finetuned_curve, prune

__all__ = ["car_scores", "CARResult", "layer_redundancy", "prune", "car_prune", "PruneResult", "finetuned_curve",
           "baseline_scores", "ChannelScores"]
