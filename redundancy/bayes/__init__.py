"""Bayesian redundancy: node-level spike-and-slab variational networks.

* :func:`fit_spike_slab` fits ``q(γ_j) = Bern(p_j)``, ``q(w_j | γ_j = 1) = N(μ_j, diag σ_j²)`` for
  every node (output unit or channel) of an ``nn.Sequential`` MLP or plain CNN, and optionally for
  its input features; the posterior inclusion probability ``p_j`` is the node's importance.
* :func:`prune_by_inclusion` keeps the nodes with ``p_j > 1/2`` (the median-probability model) as a
  plain, smaller deterministic network.
"""

from redundancy.bayes.convert import SpikeSlabNet, mlp, small_cnn, to_spike_slab
from redundancy.bayes.fit import expected_calibration_error, fit_spike_slab
from redundancy.bayes.kl import kl_bernoulli, kl_normal, relaxed_bernoulli, spike_slab_kl
from redundancy.bayes.layers import (SpikeSlabConv1d, SpikeSlabConv2d, SpikeSlabConv3d, SpikeSlabLayer,
                                     SpikeSlabLinear)
from redundancy.bayes.prune import FeatureSelect, InclusionPruneResult, prune_by_inclusion, prune_by_magnitude, prune_to_counts
from redundancy.bayes.result import SpikeSlabResult
from redundancy.bayes.curve import InclusionCurve, inclusion_curve

__all__ = ["fit_spike_slab", "SpikeSlabResult", "prune_by_inclusion", "InclusionPruneResult", "prune_by_magnitude",
           "prune_to_counts", "FeatureSelect", "inclusion_curve", "InclusionCurve",
           "SpikeSlabNet", "to_spike_slab", "mlp", "small_cnn",
           "SpikeSlabLayer", "SpikeSlabLinear", "SpikeSlabConv1d", "SpikeSlabConv2d", "SpikeSlabConv3d",
           "kl_bernoulli", "kl_normal", "spike_slab_kl", "relaxed_bernoulli", "expected_calibration_error"]
